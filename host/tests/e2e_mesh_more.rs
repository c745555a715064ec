//! End to end, more of `meshtalk mesh`: aliases, `#id` and IP targets, disconnects
//! seen on both sides, a three-node line, `--hub` with text peers, bare text writes,
//! terminal safety in human mode, `list_connections` and dial errors.
//! Real processes on 127.0.0.1, driven through stdin and watched through stdout;
//! every wait is bounded and children are killed on drop.

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::RecvTimeoutError;
use std::thread;
use std::time::{Duration, Instant};

use common::proc::{Proc as Node, link, parse};
use serde_json::Value;

/// The longest any one expected event may take.
const WAIT: Duration = Duration::from_secs(10);
/// How long a negative check watches for something that must not happen.
const QUIET: Duration = Duration::from_millis(500);

impl Node {
    /// Starts a `--json` node on a free loopback port and waits for its `listening` event.
    fn start(name: &str) -> Node {
        Node::start_with(name, &[])
    }

    /// Like [`Node::start`], with more command-line arguments.
    fn start_with(name: &str, extra: &[&str]) -> Node {
        Node::json_mesh(name, 0, extra, WAIT)
    }

    /// Starts a node printing human text; its port comes from the first line.
    fn start_human(name: &str) -> Node {
        Node::human_mesh(name, WAIT)
    }

    /// Waits until the driver answers a command: past this, a connection is read at once
    /// (between `listening` and this, it waits in the listen backlog).
    fn wait_serving(&mut self) {
        self.type_lines("list_connections\n");
        self.expect("peers", WAIT, |_| true);
    }

    /// Waits for the next `error` event and returns its message.
    fn expect_error(&self) -> String {
        let error = self.expect("error", WAIT, |_| true);
        error["message"].as_str().expect("message").to_string()
    }

    /// Watches stdout for [`QUIET`] and fails if an event named `event` shows up.
    fn expect_no(&self, event: &str) {
        let deadline = Instant::now() + QUIET;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_raw(left) {
                Ok(line) => {
                    let value = parse(&self.name, &line);
                    assert_ne!(value["event"], event, "{}: unexpected {value}", self.name);
                }
                Err(RecvTimeoutError::Timeout) => return,
                Err(RecvTimeoutError::Disconnected) => panic!("{}: stdout closed", self.name),
            }
        }
    }
}

/// The peer number in an event.
fn peer(event: &Value) -> u64 {
    event["peer"].as_u64().expect("peer number")
}

/// A plain TCP client, as netcat would be, with bounded reads and no Nagle delay.
fn text_client(port: u16) -> TcpStream {
    let client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    client.set_read_timeout(Some(WAIT)).expect("read timeout");
    client.set_nodelay(true).expect("nodelay");
    client
}

/// Reads lines from a text client until one equals `wanted` (skipping, say, a greeting).
fn read_until_line(reader: &mut BufReader<TcpStream>, wanted: &str) {
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("no line {wanted:?} ({e})"));
        assert!(n > 0, "closed before the line {wanted:?}");
        if line == wanted {
            return;
        }
    }
}

/// Reads whatever a text client gets for [`QUIET`]; fails if it contains `unwanted`.
fn read_nothing_like(client: &mut TcpStream, unwanted: &str) {
    client.set_read_timeout(Some(QUIET)).expect("read timeout");
    let mut got = Vec::new();
    let mut buf = [0; 4096];
    let deadline = Instant::now() + QUIET;
    while Instant::now() < deadline {
        match client.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("read: {e}"),
        }
    }
    let got = String::from_utf8_lossy(&got);
    assert!(!got.contains(unwanted), "the client got {got:?}");
}

// ---- aliases ----

#[test]
fn connect_with_an_alias_names_the_peer_and_set_alias_renames_it() {
    let mut alice = Node::start("alice");
    let bob = Node::start("bob");
    let (at_alice, _) = link(&mut alice, &bob, Some("robert"), WAIT);
    assert_eq!(at_alice["alias"], "robert");

    alice.type_lines("set_alias robert bob2\nsend bob2 hi\n");
    let renamed = alice.expect("alias", WAIT, |_| true);
    assert_eq!(renamed["alias"], "bob2");
    assert_eq!(renamed["peer"], at_alice["peer"]);
    let message = bob.expect("message", WAIT, |_| true);
    assert_eq!(message["text"], "hi");
    assert_eq!(message["from"], "alice");
}

#[test]
fn set_alias_to_an_alias_already_taken_is_an_error_and_the_node_keeps_serving() {
    let mut alice = Node::start("alice");
    let bob = Node::start("bob");
    let carol = Node::start("carol");
    link(&mut alice, &bob, None, WAIT);
    link(&mut alice, &carol, None, WAIT);

    alice.type_lines("set_alias bob carol\nsend bob still bob\n");
    let error = alice.expect_error();
    assert!(error.contains("taken"), "{error}");
    let message = bob.expect("message", WAIT, |_| true);
    assert_eq!(message["text"], "still bob");
}

#[test]
fn set_alias_to_an_invalid_alias_is_an_error_naming_it_and_the_node_keeps_serving() {
    let mut alice = Node::start("alice");
    let bob = Node::start("bob");
    link(&mut alice, &bob, None, WAIT);

    alice.type_lines("set_alias bob b@d\nsend bob still bob\n");
    let error = alice.expect_error();
    assert!(
        error.contains("b@d") && error.contains("not allowed"),
        "{error}"
    );
    let message = bob.expect("message", WAIT, |_| true);
    assert_eq!(message["text"], "still bob");
}

#[test]
fn connect_with_an_invalid_alias_is_an_error_and_dials_nothing() {
    let mut alice = Node::start("alice");
    let bob = Node::start("bob");
    alice.type_lines(&format!("connect 127.0.0.1 {} #bob\n", bob.port));
    let error = alice.expect_error();
    assert!(error.contains("#bob"), "{error}");
    bob.expect_no("connected");
}

// ---- targets: #id and IP ----

#[test]
fn send_to_a_peer_number_reaches_that_peer() {
    let mut alice = Node::start("alice");
    let bob = Node::start("bob");
    let (at_alice, _) = link(&mut alice, &bob, None, WAIT);
    assert_eq!(peer(&at_alice), 1, "the first peer is #1: {at_alice}");

    alice.type_lines("send #1 hi\n");
    let message = bob.expect("message", WAIT, |_| true);
    assert_eq!(message["text"], "hi");
}

#[test]
fn send_to_an_unknown_peer_number_is_an_error_naming_it() {
    let mut alice = Node::start("alice");
    let bob = Node::start("bob");
    link(&mut alice, &bob, None, WAIT);

    alice.type_lines("send #9 hi\n");
    let error = alice.expect_error();
    assert!(error.contains("#9"), "{error}");
    bob.expect_no("message");
}

#[test]
fn send_to_the_ip_of_the_only_peer_there_reaches_it() {
    let mut alice = Node::start("alice");
    let bob = Node::start("bob");
    link(&mut alice, &bob, None, WAIT);

    alice.type_lines("send 127.0.0.1 by address\n");
    let message = bob.expect("message", WAIT, |_| true);
    assert_eq!(message["text"], "by address");
}

#[test]
fn send_to_an_ip_shared_by_two_peers_is_an_error_asking_for_an_alias_or_id() {
    let mut alice = Node::start("alice");
    let mut bob = Node::start("bob");
    let mut carol = Node::start("carol");
    link(&mut bob, &alice, None, WAIT);
    link(&mut carol, &alice, None, WAIT);

    alice.type_lines("send 127.0.0.1 hi\n");
    let error = alice.expect_error();
    assert_eq!(error, "2 peers at 127.0.0.1; use an alias or #id");
    bob.expect_no("message");
    carol.expect_no("message");
}

// ---- disconnect ----

#[test]
fn disconnect_by_alias_is_seen_on_both_sides() {
    let mut alice = Node::start("alice");
    let bob = Node::start("bob");
    link(&mut alice, &bob, None, WAIT);

    alice.type_lines("disconnect bob\n");
    let here = alice.expect("disconnected", WAIT, |_| true);
    assert_eq!(here["alias"], "bob");
    let there = bob.expect("disconnected", WAIT, |_| true);
    assert_eq!(there["alias"], "alice");
    let reason = there["reason"].as_str().expect("reason");
    assert!(reason.contains("peer left"), "{there}");

    alice.type_lines("list_connections\n");
    assert_eq!(
        alice.expect("peers", WAIT, |_| true)["peers"],
        serde_json::json!([])
    );
}

// ---- the room ----

#[test]
fn broadcast_along_a_line_of_three_reaches_each_other_node_once_and_never_comes_back() {
    let mut a = Node::start("a");
    let b = Node::start("b");
    let mut c = Node::start("c");
    link(&mut a, &b, None, WAIT);
    link(&mut c, &b, None, WAIT);

    a.type_lines("broadcast hi all\n");
    for node in [&b, &c] {
        let message = node.expect("message", WAIT, |_| true);
        assert_eq!(message["text"], "hi all", "{}: {message}", node.name);
        assert_eq!(message["from"], "a", "{}: {message}", node.name);
        assert_eq!(message["broadcast"], true, "{}: {message}", node.name);
    }
    for node in [&a, &b, &c] {
        node.expect_no("message");
    }
}

// ---- text peers and --hub ----

/// Starts a node with `extra` arguments, two text clients and a native node `n`
/// connected to it; returns them once the node has seen all three.
fn node_with_two_text_peers(extra: &[&str]) -> (Node, TcpStream, String, TcpStream, Node) {
    let hub = Node::start_with("hub", extra);
    // Silent clients become text peers when the greeting time runs out.
    let one = text_client(hub.port);
    let one_addr = one.local_addr().expect("addr").to_string();
    let two = text_client(hub.port);
    let mut alias_one = None;
    for _ in 0..2 {
        let connected = hub.expect("connected", WAIT, |e| e["kind"] == "text");
        if connected["addr"] == one_addr.as_str() {
            alias_one = Some(connected["alias"].as_str().expect("alias").to_string());
        }
    }
    let alias_one = alias_one.expect("client one connected");
    let mut native = Node::start("n");
    link(&mut native, &hub, None, WAIT);
    (hub, one, alias_one, two, native)
}

#[test]
fn hub_relays_a_text_peers_line_to_text_peers_with_its_alias_and_to_native_peers() {
    let (hub, mut one, alias_one, two, native) = node_with_two_text_peers(&["--hub"]);

    one.write_all(b"hello room\n").expect("write");
    let mut two = BufReader::new(two);
    read_until_line(&mut two, &format!("<{alias_one}> hello room\n"));
    let message = native.expect("message", WAIT, |_| true);
    assert_eq!(message["text"], "hello room");
    assert_eq!(message["from"], alias_one.as_str());
    assert_eq!(message["broadcast"], true);
    let at_hub = hub.expect("message", WAIT, |_| true);
    assert_eq!(at_hub["text"], "hello room");
}

#[test]
fn without_hub_a_text_peers_line_reaches_no_other_peer() {
    let (hub, mut one, _, mut two, native) = node_with_two_text_peers(&[]);

    one.write_all(b"hello room\n").expect("write");
    let at_node = hub.expect("message", WAIT, |_| true);
    assert_eq!(at_node["text"], "hello room");
    read_nothing_like(&mut two, "hello room");
    native.expect_no("message");
}

#[test]
fn a_bare_write_from_a_text_peer_becomes_one_message_after_the_idle_time() {
    let mut alice = Node::start("alice");
    alice.wait_serving();
    let mut client = text_client(alice.port);
    // As the seed programs send: the bytes alone, no newline.
    client.write_all(b"just this").expect("write");
    let message = alice.expect("message", WAIT, |_| true);
    assert_eq!(message["text"], "just this");
    alice.expect_no("message");
}

#[test]
fn two_bare_writes_apart_from_a_text_peer_become_two_messages() {
    let mut alice = Node::start("alice");
    alice.wait_serving();
    let mut client = text_client(alice.port);
    client.write_all(b"first").expect("write");
    thread::sleep(Duration::from_millis(300));
    client.write_all(b"second").expect("write");
    assert_eq!(alice.expect("message", WAIT, |_| true)["text"], "first");
    assert_eq!(alice.expect("message", WAIT, |_| true)["text"], "second");
    alice.expect_no("message");
}

// ---- terminal safety ----

/// Reads the human-mode lines of `node` until one contains `marker`; fails unless
/// every line read is valid UTF-8 with no control, C1 or bidi-override characters.
fn human_line_with(node: &Node, marker: &str) -> String {
    loop {
        let raw = node.next_raw_line(WAIT);
        for bad in [
            b"\x1b".as_slice(),
            b"\r",
            b"\x08",
            b"\x07",
            "\u{9b}".as_bytes(),
        ] {
            assert!(
                !raw.windows(bad.len()).any(|w| w == bad),
                "raw {bad:?} on stdout: {raw:?}"
            );
        }
        let line = String::from_utf8(raw).expect("stdout is UTF-8");
        assert!(
            !line
                .chars()
                .any(|c| c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c)),
            "{line:?}"
        );
        if line.contains(marker) {
            return line;
        }
    }
}

#[test]
fn a_native_peers_escape_sequences_reach_a_human_terminal_only_as_visible_text() {
    let alice = Node::start_human("alice");
    let mut bob = Node::start("bob");
    bob.type_lines(&format!("connect 127.0.0.1 {}\n", alice.port));
    bob.expect("connected", WAIT, |_| true);
    bob.type_lines(
        "send alice clear\x1b[2J copy\x1b]52;c;aGk=\x07 csi\u{9b}31m rtl\u{202e}txt cr\rback\x08 end\n",
    );
    let line = human_line_with(&alice, "clear");
    // The escapes are still there, to be seen.
    for shown in ["2J", "52;c;aGk=", "31m", "txt", "back", "end"] {
        assert!(line.contains(shown), "{shown} missing from {line:?}");
    }
}

#[test]
fn a_text_peers_c1_carriage_return_and_backspace_reach_a_human_terminal_only_as_visible_text() {
    let alice = Node::start_human("alice");
    let mut client = text_client(alice.port);
    client
        .write_all(b"mark csi\xc2\x9b2J osc\x1b]52;c;aGk=\x07 cr\rover bs\x08\x08 raw\x9b end\n")
        .expect("write");
    let line = human_line_with(&alice, "mark");
    for shown in ["2J", "52;c;aGk=", "over", "end"] {
        assert!(line.contains(shown), "{shown} missing from {line:?}");
    }
}

// ---- list_connections ----

#[test]
fn list_connections_lists_every_peer_with_its_alias_and_address() {
    let mut alice = Node::start("alice");
    let mut bob = Node::start("bob");
    let carol = Node::start("carol");
    let (_, bob_at_alice) = link(&mut bob, &alice, None, WAIT);
    let (carol_at_alice, _) = link(&mut alice, &carol, None, WAIT);

    alice.type_lines("list_connections\n");
    let peers = alice.expect("peers", WAIT, |_| true);
    let mut listed: Vec<(u64, String, String)> = peers["peers"]
        .as_array()
        .expect("peers list")
        .iter()
        .map(|p| {
            (
                peer(p),
                p["alias"].as_str().expect("alias").to_string(),
                p["addr"].as_str().expect("addr").to_string(),
            )
        })
        .collect();
    listed.sort();
    let mut wanted: Vec<(u64, String, String)> = [bob_at_alice, carol_at_alice]
        .iter()
        .map(|e| {
            (
                peer(e),
                e["alias"].as_str().expect("alias").to_string(),
                e["addr"].as_str().expect("addr").to_string(),
            )
        })
        .collect();
    wanted.sort();
    assert_eq!(listed, wanted, "{peers}");
}

// ---- dialling ----

/// A loopback port that was free a moment ago: nothing listens there now.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

#[test]
fn connect_to_a_closed_port_fails_with_connect_failed_and_the_node_keeps_serving() {
    let mut alice = Node::start("alice");
    let bob = Node::start("bob");
    alice.type_lines(&format!("connect 127.0.0.1 {} ghost\n", closed_port()));
    let failed = alice.expect("connect_failed", WAIT, |_| true);
    assert_eq!(failed["alias"], "ghost");

    let (_, _) = link(&mut alice, &bob, None, WAIT);
    alice.type_lines("send bob after the failure\n");
    assert_eq!(
        bob.expect("message", WAIT, |_| true)["text"],
        "after the failure"
    );
}

#[test]
fn connect_with_a_port_that_is_no_number_is_an_error_about_the_port() {
    let mut alice = Node::start("alice");
    alice.type_lines("connect localhost abc\nlist_connections\n");
    let error = alice.expect_error();
    assert!(error.contains("port") && error.contains("abc"), "{error}");
    assert_eq!(
        alice.expect("peers", WAIT, |_| true)["peers"],
        serde_json::json!([])
    );
}

#[test]
fn connect_by_host_name_localhost_reaches_the_node() {
    let mut alice = Node::start("alice");
    let bob = Node::start("bob");
    alice.type_lines(&format!("connect localhost {}\n", bob.port));
    alice.expect("connected", WAIT, |e| e["alias"] == "bob");
    bob.expect("connected", WAIT, |e| e["alias"] == "alice");
}

// ---- more edges ----

#[test]
fn two_peers_announcing_the_same_name_get_distinct_aliases() {
    let alice = Node::start("alice");
    let mut bob1 = Node::start("bob");
    let mut bob2 = Node::start("bob");
    bob1.type_lines(&format!("connect 127.0.0.1 {}\n", alice.port));
    bob2.type_lines(&format!("connect 127.0.0.1 {}\n", alice.port));
    let first = alice.expect("connected", WAIT, |_| true);
    let second = alice.expect("connected", WAIT, |_| true);
    assert_ne!(first["alias"], second["alias"], "{first} {second}");
}

#[test]
fn a_disconnected_peer_can_be_connected_again_under_its_alias() {
    let mut alice = Node::start("alice");
    let bob = Node::start("bob");
    link(&mut alice, &bob, None, WAIT);
    alice.type_lines("disconnect bob\n");
    alice.expect("disconnected", WAIT, |_| true);
    bob.expect("disconnected", WAIT, |_| true);

    link(&mut alice, &bob, None, WAIT);
    alice.type_lines("send bob again\n");
    assert_eq!(bob.expect("message", WAIT, |_| true)["text"], "again");
}

#[test]
fn connect_twice_to_the_same_node_closes_the_second_link_and_keeps_the_first() {
    let mut alice = Node::start("alice");
    let bob = Node::start("bob");
    link(&mut alice, &bob, None, WAIT);
    alice.type_lines(&format!("connect 127.0.0.1 {}\n", bob.port));
    let gone = alice.expect("disconnected", WAIT, |_| true);
    let reason = gone["reason"].as_str().expect("reason");
    assert!(reason.contains("already connected"), "{gone}");
    alice.type_lines("send bob one\n");
    assert_eq!(bob.expect("message", WAIT, |_| true)["text"], "one");
    bob.expect_no("connected");
}

#[test]
fn connect_to_this_node_itself_is_refused_and_the_node_keeps_serving() {
    let mut alice = Node::start("alice");
    let bob = Node::start("bob");
    alice.type_lines(&format!("connect 127.0.0.1 {} me\n", alice.port));
    let gone = alice.expect("disconnected", WAIT, |e| e["alias"] == "me");
    let reason = gone["reason"].as_str().expect("reason");
    assert!(reason.contains("itself"), "{gone}");

    link(&mut alice, &bob, None, WAIT);
    alice.type_lines("list_connections\n");
    let peers = alice.expect("peers", WAIT, |_| true);
    assert_eq!(peers["peers"].as_array().map(Vec::len), Some(1), "{peers}");
}

#[test]
fn disconnect_by_an_ip_shared_by_two_peers_is_an_error_and_keeps_both() {
    let mut alice = Node::start("alice");
    let mut bob = Node::start("bob");
    let mut carol = Node::start("carol");
    link(&mut bob, &alice, None, WAIT);
    link(&mut carol, &alice, None, WAIT);

    alice.type_lines("disconnect 127.0.0.1\n");
    let error = alice.expect_error();
    assert_eq!(error, "2 peers at 127.0.0.1; use an alias or #id");
    bob.expect_no("disconnected");
    carol.expect_no("disconnected");
}

#[test]
fn connect_with_a_port_out_of_range_is_an_error_about_the_port() {
    let mut alice = Node::start("alice");
    alice.type_lines("connect 127.0.0.1 70000\n");
    let error = alice.expect_error();
    assert!(
        error.contains("70000") && error.contains("range"),
        "{error}"
    );
    alice.type_lines("connect 127.0.0.1 0\n");
    let error = alice.expect_error();
    assert!(error.contains('0') && error.contains("range"), "{error}");
}

#[test]
fn broadcast_in_a_triangle_reaches_each_other_node_once() {
    let mut a = Node::start("a");
    let mut b = Node::start("b");
    let c = Node::start("c");
    link(&mut a, &b, None, WAIT);
    link(&mut b, &c, None, WAIT);
    link(&mut a, &c, None, WAIT);

    a.type_lines("broadcast round\n");
    for node in [&b, &c] {
        let message = node.expect("message", WAIT, |_| true);
        assert_eq!(message["text"], "round", "{}: {message}", node.name);
    }
    for node in [&a, &b, &c] {
        node.expect_no("message");
    }
}

#[test]
fn hub_relays_with_the_alias_set_for_the_text_peer() {
    let (mut hub, mut one, alias_one, two, _native) = node_with_two_text_peers(&["--hub"]);
    // Its default alias may be the IP the others share: name it by number.
    hub.type_lines("list_connections\n");
    let peers = hub.expect("peers", WAIT, |_| true);
    let number = peers["peers"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|p| p["alias"] == alias_one.as_str())
        .expect("client one listed")["peer"]
        .clone();
    hub.type_lines(&format!("set_alias #{number} dora\n"));
    hub.expect("alias", WAIT, |e| e["alias"] == "dora");

    one.write_all(b"renamed\n").expect("write");
    let mut two = BufReader::new(two);
    read_until_line(&mut two, "<dora> renamed\n");
}

#[test]
fn hub_relays_a_bare_write_to_text_peers_as_a_line() {
    let (_hub, mut one, alias_one, two, native) = node_with_two_text_peers(&["--hub"]);
    one.write_all(b"no newline").expect("write");
    let mut two = BufReader::new(two);
    read_until_line(&mut two, &format!("<{alias_one}> no newline\n"));
    assert_eq!(
        native.expect("message", WAIT, |_| true)["text"],
        "no newline"
    );
}

#[test]
fn a_broadcast_reaches_the_nodes_own_text_peers_as_a_plain_line() {
    let (mut hub, _one, _, two, native) = node_with_two_text_peers(&[]);
    hub.type_lines("broadcast to everyone\n");
    let mut two = BufReader::new(two);
    read_until_line(&mut two, "to everyone\n");
    assert_eq!(
        native.expect("message", WAIT, |_| true)["text"],
        "to everyone"
    );
}

#[test]
fn hub_relays_a_native_peers_broadcast_to_text_peers_with_its_name() {
    let (_hub, _one, _, two, mut native) = node_with_two_text_peers(&["--hub"]);
    native.type_lines("broadcast to everyone\n");
    let mut two = BufReader::new(two);
    read_until_line(&mut two, "<n> to everyone\n");
}

#[test]
fn a_text_peer_that_closes_is_reported_disconnected() {
    let alice = Node::start("alice");
    let client = text_client(alice.port);
    let connected = alice.expect("connected", WAIT, |_| true);
    drop(client);
    let gone = alice.expect("disconnected", WAIT, |_| true);
    assert_eq!(gone["peer"], connected["peer"]);
}

#[test]
fn disconnect_of_a_text_peer_closes_its_connection() {
    let mut alice = Node::start("alice");
    let mut client = text_client(alice.port);
    let connected = alice.expect("connected", WAIT, |_| true);
    alice.type_lines(&format!("disconnect #{}\n", peer(&connected)));
    alice.expect("disconnected", WAIT, |_| true);
    let mut rest = Vec::new();
    client
        .read_to_end(&mut rest)
        .expect("the node closes the connection");
}

#[test]
fn a_node_that_dials_a_silent_text_server_sends_it_bare_messages() {
    // An older program's listener: it sends nothing and reads bare writes.
    let server = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = server.local_addr().expect("addr").port();
    let mut alice = Node::start("alice");
    alice.type_lines(&format!("connect 127.0.0.1 {port} old\n"));
    let (mut conn, _) = server.accept().expect("accept");
    conn.set_read_timeout(Some(WAIT)).expect("timeout");
    let connected = alice.expect("connected", WAIT, |e| e["alias"] == "old");
    assert_eq!(connected["kind"], "text-bare");

    alice.type_lines("send old hello\n");
    alice.expect("sent", WAIT, |_| true);
    // Whatever came before (a banner) is skipped; the message is the bytes alone.
    let mut got = Vec::new();
    let mut buf = [0; 4096];
    while !got.ends_with(b"hello") {
        let n = conn.read(&mut buf).expect("read the message");
        assert!(n > 0, "closed; got {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    conn.write_all(b"reply").expect("write");
    assert_eq!(alice.expect("message", WAIT, |_| true)["text"], "reply");
}

#[test]
fn send_to_an_ip_shared_by_two_text_peers_is_an_error_asking_for_an_alias_or_id() {
    let mut alice = Node::start("alice");
    let mut one = text_client(alice.port);
    let mut two = text_client(alice.port);
    alice.expect("connected", WAIT, |_| true);
    alice.expect("connected", WAIT, |_| true);

    alice.type_lines("send 127.0.0.1 hi\n");
    let error = alice.expect_error();
    assert_eq!(error, "2 peers at 127.0.0.1; use an alias or #id");
    read_nothing_like(&mut one, "hi");
    read_nothing_like(&mut two, "hi");
}

#[test]
fn connect_with_an_alias_already_taken_is_an_error_and_dials_nothing() {
    let mut alice = Node::start("alice");
    let bob = Node::start("bob");
    let carol = Node::start("carol");
    link(&mut alice, &bob, None, WAIT);
    alice.type_lines(&format!("connect 127.0.0.1 {} bob\n", carol.port));
    let error = alice.expect_error();
    assert!(error.contains("taken"), "{error}");
    carol.expect_no("connected");
}

#[test]
fn a_message_keeps_its_inner_spaces_tabs_and_unicode_exactly() {
    let mut alice = Node::start("alice");
    let bob = Node::start("bob");
    link(&mut alice, &bob, None, WAIT);
    alice.type_lines("send bob a  b\tc héllo 👋  \n");
    assert_eq!(
        bob.expect("message", WAIT, |_| true)["text"],
        "a  b\tc héllo 👋  "
    );
}
