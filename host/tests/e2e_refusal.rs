//! End to end: a node that cannot take a connection says why in the core's own
//! words, one line that netcat shows and that a meshtalk which dialled reads as a
//! typed refusal. Real `meshtalk` processes on 127.0.0.1; every wait is bounded.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::proc::Proc as Node;
use serde_json::Value;

/// The longest any one expected event may take.
const WAIT: Duration = Duration::from_secs(10);

/// A node that holds one peer, with a text peer in that place.
fn full_node() -> (Node, TcpStream) {
    let node = Node::json_mesh("full", 0, &["--max-peers", "1"], WAIT);
    let mut stream = TcpStream::connect(("127.0.0.1", node.port)).expect("connect");
    stream.write_all(b"here first\n").expect("write");
    node.expect("message", WAIT, |e| e["text"] == "here first");
    (node, stream)
}

/// Every event up to the first for which `done` holds, that one included (bounded).
fn events_until(node: &Node, done: impl Fn(&Value) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = node
            .recv(left)
            .unwrap_or_else(|e| panic!("no end within {WAIT:?} ({e}); saw {seen:?}"));
        let value: Value = serde_json::from_str(&line).expect("JSON");
        let end = done(&value);
        seen.push(value);
        if end {
            return seen;
        }
    }
}

#[test]
fn a_meshtalk_refused_by_a_full_node_shows_that_the_node_is_full() {
    let (full, _first) = full_node();
    let mut dialer = Node::json_mesh("dialer", 0, &[], WAIT);
    dialer.type_line(&format!("connect 127.0.0.1 {}", full.port));
    let seen = events_until(&dialer, |e| {
        e["event"] == "disconnected" || e["event"] == "connect_failed"
    });
    let last = seen.last().expect("an end");
    assert_eq!(last["event"], "disconnected", "{seen:?}");
    let reason = last["reason"].as_str().expect("reason");
    assert!(
        reason.starts_with("refused: this node is full (1 peers)"),
        "{reason:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|e| e["event"] == "connected" || e["event"] == "message"),
        "the refusal is no peer and no message: {seen:?}"
    );
}

#[test]
fn a_plain_client_refused_by_a_full_node_reads_one_line_saying_it_is_full() {
    let (full, _first) = full_node();
    let mut stream = TcpStream::connect(("127.0.0.1", full.port)).expect("connect");
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    let mut told = Vec::new();
    // The node closes after the line: read to the end (bounded by the timeout).
    stream.read_to_end(&mut told).expect("read until closed");
    let told = String::from_utf8(told).expect("text");
    assert_eq!(told.matches('\n').count(), 1, "{told:?}");
    assert!(told.ends_with('\n'), "{told:?}");
    assert!(told.contains("this node is full"), "{told:?}");
    assert!(told.contains("try again later"), "{told:?}");
}
