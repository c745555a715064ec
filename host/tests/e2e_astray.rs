//! End to end: no message goes astray. A `send` in `mesh` always names its target,
//! `serve` takes `quit` as the end of the client's talk, a hub makes what it writes to
//! text peers safe for their terminals, and a repeated `connect` keeps the live link.
//! Real processes on 127.0.0.1, driven through stdin and watched through stdout;
//! every wait is bounded and children are killed on drop.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
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
