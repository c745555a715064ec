//! End to end: real `meshtalk mesh --json` processes on loopback, driven through
//! stdin, watched through stdout. Every wait is bounded; children are killed on drop.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::proc::{Proc as Node, link};

/// The longest any one expected event may take.
const WAIT: Duration = Duration::from_secs(10);

impl Node {
    /// Starts a node on a free loopback port and waits for its `listening` event.
    fn start(name: &str) -> Node {
        Node::json_mesh(name, 0, &[], WAIT)
    }

    /// Starts a node printing human text; its port comes from the first line.
    fn start_human(name: &str) -> Node {
        Node::human_mesh(name, WAIT)
    }
}

/// Starts alice and bob, connects bob to alice, waits until both say connected.
/// Returns them with the peer number each has for the other.
fn alice_and_bob() -> (Node, u64, Node, u64) {
    let alice = Node::start("alice");
    let mut bob = Node::start("bob");
    let (at_bob, at_alice) = link(&mut bob, &alice, None, WAIT);
    assert_eq!(at_bob["direction"], "out");
    assert_eq!(at_bob["kind"], "native");
    assert_eq!(at_alice["direction"], "in");
    let alice_peer = at_bob["peer"].as_u64().expect("peer number");
    let bob_peer = at_alice["peer"].as_u64().expect("peer number");
    (alice, bob_peer, bob, alice_peer)
}

#[test]
fn two_nodes_chat_with_a_receipt_and_part_when_input_ends() {
    let (alice, bob_peer, mut bob, alice_peer) = alice_and_bob();

    bob.type_lines("send alice hello\n");
    let sent = bob.expect("sent", WAIT, |_| true);
    assert_eq!(sent["peer"], alice_peer);
    let message = alice.expect("message", WAIT, |_| true);
    assert_eq!(message["text"], "hello");
    assert_eq!(message["from"], "bob");
    assert_eq!(message["peer"], bob_peer);
    let delivered = bob.expect("delivered", WAIT, |_| true);
    assert_eq!(delivered["id"], sent["id"]);

    let status = bob.end_input_and_wait(WAIT);
    assert!(status.success(), "bob exited with {status}");
    let gone = alice.expect("disconnected", WAIT, |_| true);
    assert_eq!(gone["alias"], "bob");
}

#[test]
fn plain_tcp_client_is_a_text_peer_in_both_directions() {
    let mut alice = Node::start("alice");
    let mut client = TcpStream::connect(("127.0.0.1", alice.port)).expect("connect");
    client.set_read_timeout(Some(WAIT)).expect("timeout");
    client.write_all(b"hi there\n").expect("write");

    let connected = alice.expect("connected", WAIT, |_| true);
    assert_eq!(connected["kind"], "text");
    let message = alice.expect("message", WAIT, |_| true);
    assert_eq!(message["text"], "hi there");

    let peer = connected["peer"].as_u64().expect("peer number");
    alice.type_lines(&format!("send #{peer} back\n"));
    let mut reader = BufReader::new(client.try_clone().expect("clone"));
    let mut line = String::new();
    // Whatever came before (a greeting, say) is skipped; `back` must come as one line.
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("read a line from alice");
        assert!(n > 0, "alice closed before sending 'back'");
        if line == "back\n" {
            break;
        }
    }

    let status = alice.end_input_and_wait(WAIT);
    assert!(status.success(), "alice exited with {status}");
    // Alice closed: the client reads end of stream.
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).expect("read to end");
}

#[test]
fn hundred_messages_sent_back_to_back_arrive_separately_and_in_order() {
    let (alice, _, mut bob, _) = alice_and_bob();
    // At most 32 messages may await their receipt, so bob sends in batches of 25,
    // each batch one write to its stdin, and waits for the batch's receipts.
    for batch in 0..4 {
        let lines: String = (0..25)
            .map(|i| format!("send alice message {}\n", batch * 25 + i))
            .collect();
        bob.type_lines(&lines);
        for _ in 0..25 {
            bob.expect("delivered", WAIT, |_| true);
        }
    }
    for i in 0..100 {
        let message = alice.expect("message", WAIT, |_| true);
        assert_eq!(message["text"], format!("message {i}"));
    }
}

#[test]
fn many_lines_in_one_write_from_a_text_peer_are_separate_messages_in_order() {
    let alice = Node::start("alice");
    let mut client = TcpStream::connect(("127.0.0.1", alice.port)).expect("connect");
    let lines: String = (0..100).map(|i| format!("line {i}\n")).collect();
    client.write_all(lines.as_bytes()).expect("write");
    for i in 0..100 {
        let message = alice.expect("message", WAIT, |_| true);
        assert_eq!(message["text"], format!("line {i}"));
    }
}

#[test]
fn bad_command_prints_an_error_and_the_node_keeps_serving() {
    let (alice, _, mut bob, _) = alice_and_bob();
    bob.type_lines("frobnicate\nsend #99 x\nsend alice still here\n");
    let first = bob.expect("error", WAIT, |_| true);
    assert!(
        first["message"]
            .as_str()
            .unwrap_or("")
            .contains("frobnicate"),
        "{first}"
    );
    bob.expect("error", WAIT, |e| {
        e["message"].as_str().unwrap_or("").contains("#99")
    });
    let message = alice.expect("message", WAIT, |_| true);
    assert_eq!(message["text"], "still here");
}

#[test]
fn silent_client_becomes_a_text_peer_when_the_greeting_time_runs_out() {
    let alice = Node::start("alice");
    let started = Instant::now();
    let _client = TcpStream::connect(("127.0.0.1", alice.port)).expect("connect");
    let connected = alice.expect("connected", WAIT, |_| true);
    assert_eq!(connected["kind"], "text");
    // The node's greeting timeout is 500 ms: the driver must wake for it, not earlier.
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "{connected}"
    );
}

#[test]
fn dialling_a_closed_port_reports_connect_failed_and_keeps_running() {
    let mut alice = Node::start("alice");
    // A port that was free a moment ago: nothing listens there now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    alice.type_lines(&format!("connect 127.0.0.1 {port} ghost\n"));
    let failed = alice.expect("connect_failed", WAIT, |_| true);
    assert_eq!(failed["alias"], "ghost");
    assert!(
        !failed["reason"].as_str().unwrap_or("").is_empty(),
        "{failed}"
    );
    alice.type_lines("list\n");
    let peers = alice.expect("peers", WAIT, |_| true);
    assert_eq!(peers["peers"], serde_json::json!([]));
}

#[test]
fn human_output_shows_a_peers_escape_sequences_as_visible_text() {
    let mut alice = Node::start_human("alice");
    let mut client = TcpStream::connect(("127.0.0.1", alice.port)).expect("connect");
    client
        .write_all(b"\x1b[2Jred \x1b]0;title\x07 \xe2\x80\xae rtl\n")
        .expect("write");
    let message = loop {
        let line = alice.next_line(WAIT);
        if line.contains("red") {
            break line;
        }
    };
    assert!(!message.chars().any(|c| c.is_control()), "{message:?}");
    assert!(
        message.contains("^[[2Jred ^[]0;title^G \\u{202e} rtl"),
        "{message:?}"
    );
    let status = alice.end_input_and_wait(WAIT);
    assert!(status.success(), "alice exited with {status}");
}
