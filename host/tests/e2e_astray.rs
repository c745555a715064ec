//! End to end: no message goes astray. A `send` in `mesh` always names its target,
//! `serve` takes `quit` as the end of the client's talk, a hub makes what it writes to
//! text peers safe for their terminals, and a repeated `connect` keeps the live link.
//! Real processes on 127.0.0.1, driven through stdin and watched through stdout;
//! every wait is bounded and children are killed on drop.

mod common;

use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use common::proc::{Proc, link, parse};
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
