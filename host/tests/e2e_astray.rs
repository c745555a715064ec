//! End to end: no message goes astray. A `send` in `mesh` always names its target,
//! `serve` takes `quit` as the end of the client's talk, a hub makes what it writes to
//! text peers safe for their terminals, and a repeated `connect` keeps the live link.
//! Real processes on 127.0.0.1, driven through stdin and watched through stdout;
//! every wait is bounded and children are killed on drop.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use common::proc::{Proc, link, parse, port_of};
use serde_json::Value;

/// The longest any one expected event may take.
const WAIT: Duration = Duration::from_secs(10);
/// How long a negative check watches for something that must not happen.
const QUIET: Duration = Duration::from_millis(500);

/// A `--json` mesh node on a free loopback port, with `extra` arguments.
fn mesh(name: &str, extra: &[&str]) -> Proc {
    Proc::json_mesh(name, 0, extra, WAIT)
}

/// Waits for the next `error` event and returns its message.
fn expect_error(node: &Proc) -> String {
    let error = node.expect("error", WAIT, |_| true);
    error["message"].as_str().expect("message").to_string()
}

/// Every event `node` prints within [`QUIET`].
fn events_for_a_while(node: &Proc) -> Vec<Value> {
    let deadline = Instant::now() + QUIET;
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match node.recv_raw(left) {
            Ok(line) => out.push(parse(&node.name, &line)),
            Err(RecvTimeoutError::Timeout) => return out,
            Err(RecvTimeoutError::Disconnected) => panic!("{}: stdout closed", node.name),
        }
    }
}

/// Fails if `node` prints an event named `event` within [`QUIET`].
fn expect_no(node: &Proc, event: &str) {
    for value in events_for_a_while(node) {
        assert_ne!(value["event"], event, "{}: unexpected {value}", node.name);
    }
}

// ---- 1: a mistyped target is an error, not a message to the only peer ----

#[test]
fn in_mesh_a_send_to_an_unknown_alias_is_an_error_naming_it_and_sends_nothing() {
    let mut alice = mesh("alice", &[]);
    let bob = mesh("bob", &[]);
    link(&mut alice, &bob, None, WAIT);

    for line in ["send carol can you hear me?", "send alicee typo"] {
        alice.type_line(line);
        let error = expect_error(&alice);
        let word = line.split(' ').nth(1).expect("a target word");
        assert!(
            error.contains(&format!("'{word}'")) && error.contains("list_connections"),
            "{line}: {error}"
        );
    }
    expect_no(&bob, "message");
    expect_no(&alice, "sent");
}

#[test]
fn in_mesh_a_send_to_a_peers_old_alias_after_a_rename_is_an_error() {
    let mut alice = mesh("alice", &[]);
    let bob = mesh("bob", &[]);
    link(&mut alice, &bob, None, WAIT);
    alice.type_line("set_alias bob bobby");
    alice.expect("alias", WAIT, |e| e["alias"] == "bobby");

    alice.type_line("send bob hi");
    let error = expect_error(&alice);
    assert!(error.contains("'bob'"), "{error}");
    expect_no(&bob, "message");

    alice.type_line("send bobby hi");
    let message = bob.expect("message", WAIT, |_| true);
    assert_eq!(message["text"], "hi");
}

#[test]
fn in_mesh_a_send_of_one_word_asks_for_a_target_and_a_message() {
    let mut alice = mesh("alice", &[]);
    let bob = mesh("bob", &[]);
    link(&mut alice, &bob, None, WAIT);

    alice.type_line("send hello");
    let error = expect_error(&alice);
    assert!(error.contains("send <alias|ip|#id> <message>"), "{error}");
    expect_no(&bob, "message");
}

// ---- 10: serve takes `quit` as the end of the client's talk ----

/// `meshtalk serve` on a free loopback port, `--json` or human.
fn serve(json: bool) -> Proc {
    let mut args = vec!["-q", "serve", "--port", "0", "--bind", "127.0.0.1"];
    if json {
        args.push("--json");
    }
    let mut proc = Proc::meshtalk("serve", &args);
    proc.port = if json {
        port_of(&proc.expect("listening", WAIT, |_| true))
    } else {
        let first = proc.next_line(WAIT);
        let port = first.trim_end().rsplit(':').next().expect("ADDR:PORT");
        port.parse().unwrap_or_else(|e| panic!("{e}: {first}"))
    };
    proc
}

/// A plain TCP client of `serve` (as the seed client is) that has sent `hello`, seen by the
/// server as a message (`--json`) or a line (human).
fn plain_client_said_hello(serve: &Proc, json: bool) -> TcpStream {
    let mut client = TcpStream::connect(("127.0.0.1", serve.port)).expect("connect");
    client.set_read_timeout(Some(WAIT)).expect("timeout");
    client.write_all(b"hello").expect("write");
    if json {
        serve.expect("message", WAIT, |e| e["text"] == "hello");
    } else {
        expect_line(serve, "hello");
    }
    client
}

/// Waits for a human line containing `text`; returns every line read, that one last.
fn expect_line(node: &Proc, text: &str) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = node.recv(left).unwrap_or_else(|e| {
            panic!("{}: no line with {text:?} ({e}); saw {seen:#?}", node.name)
        });
        let found = line.contains(text);
        seen.push(line);
        if found {
            return seen;
        }
    }
}

#[test]
fn serve_shows_a_clients_quit_as_the_end_of_its_talk_never_as_a_message() {
    let serve = serve(false);
    let mut client = plain_client_said_hello(&serve, false);
    client.write_all(b"quit").expect("write");
    let seen = expect_line(&serve, "the client is quitting; sent the log (1 line)");
    assert!(
        !seen.iter().any(|l| l.trim_end().ends_with(": quit")),
        "quit shown as a message: {seen:#?}"
    );
    let mut log = String::new();
    client.read_to_string(&mut log).expect("read the log");
    assert_eq!(log, "hello");
}

#[test]
fn serve_with_json_reports_a_clients_quit_as_log_sent_and_no_message() {
    let serve = serve(true);
    let mut client = plain_client_said_hello(&serve, true);
    client.write_all(b"quit").expect("write");
    let events = {
        let mut events = Vec::new();
        let deadline = Instant::now() + WAIT;
        while !events.iter().any(|e: &Value| e["event"] == "disconnected") {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = serve
                .recv_raw(left)
                .expect("events until the client is gone");
            events.push(parse(&serve.name, &line));
        }
        events
    };
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "log_sent" && e["lines"] == 1),
        "{events:#?}"
    );
    assert!(
        !events.iter().any(|e| e["event"] == "message"),
        "quit reported as a message: {events:#?}"
    );
}

#[test]
fn serve_refusing_a_second_client_does_not_call_it_a_chat() {
    let serve = serve(true);
    let _first = plain_client_said_hello(&serve, true);
    let second = TcpStream::connect(("127.0.0.1", serve.port)).expect("connect");
    second.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut line = String::new();
    BufReader::new(second)
        .read_line(&mut line)
        .expect("read the refusal");
    assert!(line.starts_with("meshtalk: busy"), "{line:?}");
    assert!(!line.contains("chat"), "{line:?}");
    let refused = serve.expect("refused", WAIT, |_| true);
    let reason = refused["reason"].as_str().expect("reason");
    assert!(!reason.contains("chat"), "{reason}");
}

// ---- 5: what a node writes to a text peer (a terminal) is made safe ----

/// Text full of what drives a terminal: colour, BEL, a window title, OSC 52 (clipboard
/// write), a C1 CSI, a bidi override, a carriage return and a backspace.
const NASTY: &str = "red\x1b[31m bel\x07 title\x1b]0;pwned\x07 clip\x1b]52;c;aGk=\x07 csi\u{9b}2J rtl\u{202e}txt cr\rbs\x08 end";

/// Fails unless `raw` (one line a text peer got, newline included) has no byte or
/// character that drives a terminal; returns it as text.
fn assert_terminal_safe(raw: &[u8]) -> String {
    let line = std::str::from_utf8(raw).expect("UTF-8");
    let body = line.strip_suffix('\n').expect("one line");
    assert!(
        !body.chars().any(|c| c.is_control()
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)),
        "a terminal would obey {body:?}"
    );
    // The escapes are still there, to be seen.
    assert!(
        body.contains("^[[31m") && body.contains("52;c;aGk="),
        "{body:?}"
    );
    body.to_string()
}

/// A plain TCP client (netcat) of `node` that the node has announced as a text peer;
/// returns it with its alias.
fn text_peer(node: &Proc) -> (BufReader<TcpStream>, String) {
    let client = TcpStream::connect(("127.0.0.1", node.port)).expect("connect");
    client.set_read_timeout(Some(WAIT)).expect("timeout");
    let addr = client.local_addr().expect("addr").to_string();
    let connected = node.expect("connected", WAIT, |e| e["addr"] == addr.as_str());
    let alias = connected["alias"].as_str().expect("alias").to_string();
    (BufReader::new(client), alias)
}

/// The next line a text client gets that contains `marker`, raw.
fn line_with(client: &mut BufReader<TcpStream>, marker: &str) -> Vec<u8> {
    loop {
        let mut raw = Vec::new();
        let n = client.read_until(b'\n', &mut raw).expect("a line");
        assert!(n > 0, "closed before a line with {marker:?}");
        if String::from_utf8_lossy(&raw).contains(marker) {
            return raw;
        }
    }
}

#[test]
fn a_hub_relays_a_text_peers_escape_sequences_to_other_text_peers_only_as_visible_text() {
    let hub = mesh("hub", &["--hub"]);
    let (mut one, alias_one) = text_peer(&hub);
    let (mut two, _) = text_peer(&hub);
    one.get_mut()
        .write_all(format!("{NASTY}\n").as_bytes())
        .expect("write");
    let line = assert_terminal_safe(&line_with(&mut two, "end"));
    assert!(line.starts_with(&format!("<{alias_one}> red")), "{line:?}");
}

#[test]
fn a_hub_relays_a_native_peers_room_message_to_text_peers_only_as_visible_text() {
    let mut hub = mesh("hub", &["--hub"]);
    let mut native = mesh("n", &[]);
    link(&mut native, &hub, None, WAIT);
    let (mut client, _) = text_peer(&hub);
    native.type_line(&format!("broadcast {NASTY}"));
    let line = assert_terminal_safe(&line_with(&mut client, "end"));
    assert!(line.starts_with("<n> red"), "{line:?}");

    // The hub's own words to a text peer, too. Its number: the native peer is #1.
    hub.type_line(&format!("send #2 {NASTY}"));
    assert_terminal_safe(&line_with(&mut client, "end"));
}

#[test]
fn json_output_writes_c1_and_bidi_controls_as_escapes_with_the_same_value() {
    let hub = mesh("hub", &[]);
    let (mut one, _) = text_peer(&hub);
    one.get_mut()
        .write_all("mark csi\u{9b}2J rtl\u{202e}txt del\x7f end\n".as_bytes())
        .expect("write");
    let deadline = Instant::now() + WAIT;
    let raw = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let raw = hub.recv_raw(left).expect("the message event");
        if raw.windows(4).any(|w| w == b"mark") {
            break raw;
        }
    };
    for bad in ["\u{9b}", "\u{202e}", "\x7f"] {
        assert!(
            !raw.windows(bad.len()).any(|w| w == bad.as_bytes()),
            "raw {bad:?} on stdout: {}",
            String::from_utf8_lossy(&raw)
        );
    }
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.contains("\\u009b") && text.contains("\\u202e"),
        "{text}"
    );
    let value = parse(&hub.name, &raw);
    assert_eq!(value["text"], "mark csi\u{9b}2J rtl\u{202e}txt del\x7f end");
}

// ---- 8: a repeated connect keeps the live link and its alias ----

/// A `--json` mesh node whose node id (which decides between two links) is `id`.
fn mesh_with_id(name: &str, id: &str) -> Proc {
    spawn_mesh(name, "127.0.0.1", Some(id))
}

/// A `--json` mesh node on a free port of `bind`, its node id `id` if given.
fn spawn_mesh(name: &str, bind: &str, id: Option<&str>) -> Proc {
    let mut command = Command::new(env!("CARGO_BIN_EXE_meshtalk"));
    command
        .args(["mesh", "--port", "0", "--bind", bind, "--json"])
        .args(["--name", name]);
    if let Some(id) = id {
        command.env("MESHTALK_NODE_ID", id);
    }
    let mut node = Proc::spawn(name, &mut command);
    node.port = port_of(&node.expect("listening", WAIT, |_| true));
    node
}

/// Alice with bob connected to her (inbound) and renamed `bobby`; then alice dials bob
/// again. Returns alice, bob, bobby's peer number at alice and the event the dial got.
fn alice_dials_bob_again(alice_id: &str, bob_id: &str) -> (Proc, Proc, u64, Value) {
    let mut alice = mesh_with_id("alice", alice_id);
    let mut bob = mesh_with_id("bob", bob_id);
    let (at_bob, at_alice) = link(&mut bob, &alice, None, WAIT);
    let bobby = at_alice["peer"].as_u64().expect("peer");
    let _ = at_bob;
    alice.type_line(&format!("set_alias #{bobby} bobby"));
    alice.expect("alias", WAIT, |e| e["alias"] == "bobby");
    alice.type_line(&format!("connect 127.0.0.1 {}", bob.port));
    let gone = alice.expect("disconnected", WAIT, |_| true);
    (alice, bob, bobby, gone)
}

/// The checks of a repeated connect, whichever node has the lower id.
fn a_repeated_connect_keeps_the_link_and_alias(alice_id: &str, bob_id: &str) {
    let (mut alice, bob, bobby, gone) = alice_dials_bob_again(alice_id, bob_id);
    assert_ne!(gone["peer"], bobby, "the live link was dropped: {gone}");
    assert_eq!(
        gone["reason"],
        format!("already connected to bobby (#{bobby})"),
        "{gone}"
    );
    alice.type_line("list_connections");
    let peers = alice.expect("peers", WAIT, |_| true);
    let peers = peers["peers"].as_array().expect("peers");
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert_eq!(peers[0]["alias"], "bobby");
    assert_eq!(peers[0]["peer"], bobby);
    alice.type_line("send bobby still here");
    assert_eq!(bob.expect("message", WAIT, |_| true)["text"], "still here");
    expect_no(&bob, "disconnected");
}

#[test]
fn a_repeated_connect_by_the_lower_node_id_keeps_the_live_link_and_its_alias() {
    a_repeated_connect_keeps_the_link_and_alias("1", "2");
}

#[test]
fn a_repeated_connect_by_the_higher_node_id_keeps_the_live_link_and_its_alias() {
    a_repeated_connect_keeps_the_link_and_alias("2", "1");
}

// ---- 11: small things that mislead ----

/// Runs `meshtalk <args>` with no stdin for at most 3 s; returns whether it exited (and
/// how) and what it wrote to stderr. A program still running then is killed.
fn run_briefly(args: &[&str]) -> (Option<std::process::ExitStatus>, String) {
    let home = common::home::TempDir::new("briefly");
    let mut command = Command::new(env!("CARGO_BIN_EXE_meshtalk"));
    let mut child = common::home::live_in(&mut command, home.path())
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start meshtalk");
    let deadline = Instant::now() + Duration::from_secs(3);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    (status, stderr)
}

#[test]
fn disconnect_without_a_target_among_two_peers_asks_which_with_its_own_usage() {
    let mut alice = mesh("alice", &[]);
    let bob = mesh("bob", &[]);
    let carol = mesh("carol", &[]);
    link(&mut alice, &bob, None, WAIT);
    link(&mut alice, &carol, None, WAIT);
    alice.type_line("disconnect");
    let error = expect_error(&alice);
    assert!(error.contains("disconnect <alias|ip|#id>"), "{error}");
    assert!(!error.contains("send"), "{error}");
}

#[test]
fn a_name_with_a_letter_outside_ascii_is_refused_asking_for_ascii_letters() {
    let (status, stderr) = run_briefly(&[
        "mesh",
        "--port",
        "0",
        "--bind",
        "127.0.0.1",
        "--name",
        "Zoë",
    ]);
    assert!(status.is_some_and(|s| !s.success()), "{status:?}: {stderr}");
    assert!(stderr.contains("ASCII letters"), "{stderr}");
}

#[test]
fn max_peers_outside_1_to_1024_is_refused_naming_the_range() {
    for n in ["0", "5000"] {
        let (status, stderr) = run_briefly(&[
            "mesh",
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--max-peers",
            n,
        ]);
        assert!(
            status.is_some_and(|s| !s.success()),
            "{n}: {status:?}: {stderr}"
        );
        assert!(
            stderr.contains("1-1024") || stderr.contains("1..=1024"),
            "{n}: {stderr}"
        );
    }
}

#[test]
fn list_connections_is_sorted_by_peer_number() {
    let mut alice = mesh("alice", &[]);
    let bob = mesh("bob", &[]);
    let carol = mesh("carol", &[]);
    let dave = mesh("dave", &[]);
    link(&mut alice, &bob, None, WAIT);
    link(&mut alice, &carol, None, WAIT);
    alice.type_line("disconnect bob");
    alice.expect("disconnected", WAIT, |e| e["alias"] == "bob");
    link(&mut alice, &dave, None, WAIT);
    alice.type_line("list_connections");
    let peers = alice.expect("peers", WAIT, |_| true);
    let numbers: Vec<u64> = peers["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .map(|p| p["peer"].as_u64().expect("number"))
        .collect();
    let mut sorted = numbers.clone();
    sorted.sort_unstable();
    assert_eq!(numbers, sorted);
    assert_eq!(numbers.len(), 2);
}

#[test]
fn a_relayed_room_line_names_its_author_first_and_the_relayer_after_via() {
    let a = Proc::human_mesh("a", WAIT);
    let mut b = mesh("b", &[]);
    let mut c = mesh("c", &[]);
    b.type_line(&format!("connect 127.0.0.1 {}", a.port));
    b.expect("connected", WAIT, |_| true);
    link(&mut c, &b, None, WAIT);
    c.type_line("broadcast hello from c");
    let seen = expect_line(&a, "hello from c");
    let line = seen.last().expect("the line");
    assert!(line.contains("c (room, via b): hello from c"), "{line}");
}

#[test]
fn connect_takes_host_colon_port_and_bracketed_ipv6_addresses() {
    let mut alice = mesh("alice", &[]);
    let bob = mesh("bob", &[]);
    alice.type_line(&format!("connect 127.0.0.1:{}", bob.port));
    alice.expect("connected", WAIT, |e| e["alias"] == "bob");

    let carol = spawn_mesh("carol", "::", None);
    let dave = spawn_mesh("dave", "::", None);
    alice.type_line(&format!("connect [::1]:{}", carol.port));
    alice.expect("connected", WAIT, |e| e["alias"] == "carol");
    alice.type_line(&format!("connect [::1] {}", dave.port));
    alice.expect("connected", WAIT, |e| e["alias"] == "dave");
}

#[test]
fn a_failed_dial_says_where_it_could_not_connect_and_why_in_plain_words() {
    let mut alice = Proc::human_mesh("alice", WAIT);
    // Port 1 on loopback: nothing listens there, so the dial is refused at once.
    alice.type_line("connect 127.0.0.1 1");
    let seen = expect_line(&alice, "could not connect");
    let line = seen.last().expect("the line");
    assert!(
        line.contains("could not connect to 127.0.0.1 port 1: connection refused"),
        "{line}"
    );
    assert!(!line.contains("os error"), "{line}");
}

#[test]
fn an_ipv4_peer_of_a_node_bound_to_every_ipv6_address_shows_its_ipv4_address() {
    let bob = spawn_mesh("bob", "::", None);
    let mut alice = mesh("alice", &[]);
    alice.type_line(&format!("connect 127.0.0.1 {}", bob.port));
    let connected = bob.expect("connected", WAIT, |_| true);
    let addr = connected["addr"].as_str().expect("addr");
    assert!(addr.starts_with("127.0.0.1:"), "{connected}");
}

#[test]
fn verbose_diagnostics_at_a_prompt_are_printed_above_the_half_typed_line() {
    use rexpect::session::spawn_command;
    let home = common::home::TempDir::new("verbose");
    let mut command = Command::new(env!("CARGO_BIN_EXE_meshtalk"));
    common::home::live_in(&mut command, home.path())
        .args([
            "-v",
            "mesh",
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--name",
            "alice",
        ])
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .env("TERM", "xterm");
    let timeout = u64::try_from(WAIT.as_millis()).expect("ms");
    let mut alice = spawn_command(command, Some(timeout)).expect("start meshtalk on a pty");
    let (_, listening) = alice
        .exp_regex(r"listening on 127\.0\.0\.1:[0-9]+")
        .expect("listening line");
    let port: u16 = listening
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    alice.exp_string("meshtalk> ").expect("the prompt");
    alice.send("send bob hel").expect("type");
    alice.flush().expect("flush");
    alice
        .exp_string("send bob hel")
        .expect("the typed text echoed");

    // A plain client: announced only after the greeting time, well after `accepted`.
    let _client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    alice
        .exp_string("debug: accepted 127.0.0.1:")
        .expect("the diagnostic");
    let between = alice
        .exp_string("meshtalk> send bob hel")
        .expect("the half-typed line redrawn");
    assert!(
        !between.contains("connected"),
        "the prompt was drawn again only for a later event: {between:?}"
    );
}
