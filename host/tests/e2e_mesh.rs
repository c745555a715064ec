//! End to end: real `meshtalk mesh --json` processes on loopback, driven through
//! stdin, watched through stdout. Every wait is bounded; children are killed on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The longest any one expected event may take.
const WAIT: Duration = Duration::from_secs(10);

/// A running `meshtalk mesh --json` and the events it printed, in order.
struct Node {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    port: u16,
}

impl Node {
    /// Starts a node on a free loopback port and waits for its `listening` event.
    fn start(name: &'static str) -> Node {
        let mut node = Node::spawn(name, &["--json"]);
        let listening = node.expect("listening", |_| true);
        node.port = u16::try_from(listening["port"].as_u64().expect("port")).expect("u16");
        node
    }

    /// Starts a node printing human text; the caller reads its port from the first line.
    fn start_human(name: &'static str) -> Node {
        let mut node = Node::spawn(name, &[]);
        let first = node.next_line();
        let port = first.rsplit(':').next().expect("listening on ADDR:PORT");
        node.port = port
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{e}: {first}"));
        node
    }

    fn spawn(name: &'static str, extra: &[&str]) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_meshtalk"))
            .args(["mesh", "--port", "0", "--bind", "127.0.0.1"])
            .args(["--name", name])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start meshtalk");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Node {
            name,
            child,
            stdin,
            lines,
            port: 0,
        }
    }

    /// The next line on stdout, waiting at most [`WAIT`].
    fn next_line(&self) -> String {
        self.lines
            .recv_timeout(WAIT)
            .unwrap_or_else(|e| panic!("{}: no output within {WAIT:?} ({e})", self.name))
    }

    /// Writes command lines to the node's stdin.
    fn type_lines(&mut self, lines: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(lines.as_bytes()).expect("write stdin");
        stdin.flush().expect("flush stdin");
    }

    /// Waits for the next event named `event` for which `matches` holds, skipping others.
    fn expect(&self, event: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|e| {
                panic!("{}: no '{event}' event within {WAIT:?} ({e})", self.name)
            });
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("{}: stdout line is no JSON ({e}): {line}", self.name));
            if value["event"] == event && matches(&value) {
                return value;
            }
            if value["event"] == "error" {
                eprintln!("{}: {value}", self.name);
            }
        }
    }

    /// Ends stdin and waits (bounded) for the process to exit.
    fn end_input_and_wait(&mut self) -> ExitStatus {
        self.stdin = None;
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "{} did not exit", self.name);
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts alice and bob, connects bob to alice, waits until both say connected.
/// Returns them with the peer number each has for the other.
fn alice_and_bob() -> (Node, u64, Node, u64) {
    let alice = Node::start("alice");
    let mut bob = Node::start("bob");
    bob.type_lines(&format!("connect 127.0.0.1 {}\n", alice.port));
    let at_bob = bob.expect("connected", |e| e["alias"] == "alice");
    assert_eq!(at_bob["direction"], "out");
    assert_eq!(at_bob["kind"], "native");
    let at_alice = alice.expect("connected", |e| e["alias"] == "bob");
    assert_eq!(at_alice["direction"], "in");
    let alice_peer = at_bob["peer"].as_u64().expect("peer number");
    let bob_peer = at_alice["peer"].as_u64().expect("peer number");
    (alice, bob_peer, bob, alice_peer)
}

#[test]
fn two_nodes_chat_with_a_receipt_and_part_when_input_ends() {
    let (alice, bob_peer, mut bob, alice_peer) = alice_and_bob();

    bob.type_lines("send alice hello\n");
    let sent = bob.expect("sent", |_| true);
    assert_eq!(sent["peer"], alice_peer);
    let message = alice.expect("message", |_| true);
    assert_eq!(message["text"], "hello");
    assert_eq!(message["from"], "bob");
    assert_eq!(message["peer"], bob_peer);
    let delivered = bob.expect("delivered", |_| true);
    assert_eq!(delivered["id"], sent["id"]);

    let status = bob.end_input_and_wait();
    assert!(status.success(), "bob exited with {status}");
    let gone = alice.expect("disconnected", |_| true);
    assert_eq!(gone["alias"], "bob");
}

#[test]
fn plain_tcp_client_is_a_text_peer_in_both_directions() {
    let mut alice = Node::start("alice");
    let mut client = TcpStream::connect(("127.0.0.1", alice.port)).expect("connect");
    client.set_read_timeout(Some(WAIT)).expect("timeout");
    client.write_all(b"hi there\n").expect("write");

    let connected = alice.expect("connected", |_| true);
    assert_eq!(connected["kind"], "text");
    let message = alice.expect("message", |_| true);
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

    let status = alice.end_input_and_wait();
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
            bob.expect("delivered", |_| true);
        }
    }
    for i in 0..100 {
        let message = alice.expect("message", |_| true);
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
        let message = alice.expect("message", |_| true);
        assert_eq!(message["text"], format!("line {i}"));
    }
}

#[test]
fn bad_command_prints_an_error_and_the_node_keeps_serving() {
    let (alice, _, mut bob, _) = alice_and_bob();
    bob.type_lines("frobnicate\nsend #99 x\nsend alice still here\n");
    let first = bob.expect("error", |_| true);
    assert!(
        first["message"]
            .as_str()
            .unwrap_or("")
            .contains("frobnicate"),
        "{first}"
    );
    bob.expect("error", |e| {
        e["message"].as_str().unwrap_or("").contains("#99")
    });
    let message = alice.expect("message", |_| true);
    assert_eq!(message["text"], "still here");
}

#[test]
fn silent_client_becomes_a_text_peer_when_the_greeting_time_runs_out() {
    let alice = Node::start("alice");
    let started = Instant::now();
    let _client = TcpStream::connect(("127.0.0.1", alice.port)).expect("connect");
    let connected = alice.expect("connected", |_| true);
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
    let failed = alice.expect("connect_failed", |_| true);
    assert_eq!(failed["alias"], "ghost");
    assert!(
        !failed["reason"].as_str().unwrap_or("").is_empty(),
        "{failed}"
    );
    alice.type_lines("list\n");
    let peers = alice.expect("peers", |_| true);
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
        let line = alice.next_line();
        if line.contains("red") {
            break line;
        }
    };
    assert!(!message.chars().any(|c| c.is_control()), "{message:?}");
    assert!(
        message.contains("^[[2Jred ^[]0;title^G \\u{202e} rtl"),
        "{message:?}"
    );
    let status = alice.end_input_and_wait();
    assert!(status.success(), "alice exited with {status}");
}
