//! End to end: hardening of the host. Real `meshtalk` processes on 127.0.0.1: a
//! signal says goodbye and exits 0 (in `send --text` too), `mesh --reconnect` dials a dropped peer again,
//! a flooding peer does not hold up the others, and `--rate-limit` slows a flooder.
//! Every wait is bounded; children are killed on drop.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::home::TempDir;
use common::proc::{Proc as Node, link};
use serde_json::Value;

/// The longest any one expected event may take.
const WAIT: Duration = Duration::from_secs(10);
/// How soon another peer's message must be shown while one peer floods.
const FAIR_WAIT: Duration = Duration::from_secs(5);

impl Node {
    /// Starts a node on `port` (0: any free one) and waits for its `listening` event.
    fn start(name: &str, port: u16, extra: &[&str]) -> Node {
        Node::json_mesh(name, port, extra, WAIT)
    }

    /// Every event up to the next one named `event` (bounded).
    fn events_until(&self, event: &str) -> Vec<Value> {
        let mut seen = Vec::new();
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.recv(left).unwrap_or_else(|e| {
                panic!("{}: no '{event}' event within {WAIT:?} ({e})", self.name)
            });
            let value: Value = serde_json::from_str(&line).expect("JSON");
            if value["event"] == event {
                return seen;
            }
            seen.push(value);
        }
    }

    /// Sends the process a signal by name (`TERM`, `INT`, `KILL`) with kill(1).
    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }
}

/// A plain TCP client (a text peer) that has said `first` and been shown.
fn text_peer(node: &Node, first: &str) -> (TcpStream, u64) {
    let mut stream = TcpStream::connect(("127.0.0.1", node.port)).expect("connect");
    stream
        .set_write_timeout(Some(Duration::from_secs(1)))
        .expect("write timeout");
    stream
        .write_all(format!("{first}\n").as_bytes())
        .expect("write");
    let shown = node.expect("message", WAIT, |e| e["text"] == first);
    (stream, shown["peer"].as_u64().expect("peer number"))
}

/// A text peer that writes numbered lines (`flood 0`, `flood 1`, ...) as fast as
/// the node takes them, until dropped: a gap in the numbers shown is a lost line.
struct Flooder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    peer: u64,
}

impl Flooder {
    fn start(node: &Node) -> Flooder {
        let (mut stream, peer) = text_peer(node, "flooder here");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = thread::spawn(move || {
            let mut next = 0u64;
            let mut chunk = Vec::new();
            let mut written = 0;
            while !stopped.load(Ordering::Relaxed) {
                if written == chunk.len() {
                    chunk.clear();
                    written = 0;
                    for n in next..next + 1000 {
                        chunk.extend_from_slice(format!("flood {n}\n").as_bytes());
                    }
                    next += 1000;
                }
                // Blocked by flow control for the write timeout: look at `stop`,
                // then go on from the byte where the write stopped.
                match stream.write(&chunk[written..]) {
                    Ok(0) => return,
                    Ok(n) => written += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => return,
                }
            }
        });
        Flooder {
            stop,
            thread: Some(thread),
            peer,
        }
    }

    /// The number of the flood line `event` shows, if it is one of this flooder's.
    fn number(&self, event: &Value) -> Option<u64> {
        if event["event"] != "message" || event["peer"] != self.peer {
            return None;
        }
        let text = event["text"].as_str()?;
        let n = text.strip_prefix("flood ")?.parse();
        Some(n.unwrap_or_else(|_| panic!("a flood line garbled: {text:?}")))
    }
}

impl Drop for Flooder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts `alice` (with `extra` flags) and a native peer `bob` that dials her;
/// returns both once each has the other.
fn alice_with_bob(extra: &[&str]) -> (Node, Node) {
    let alice = Node::start("alice", 0, extra);
    let mut bob = Node::start("bob", 0, &[]);
    link(&mut bob, &alice, None, WAIT);
    (alice, bob)
}

/// Sends `signal` to alice, whose stdin is an open pipe; bob must hear her goodbye
/// and she must exit 0.
fn signal_says_goodbye_and_exits_0(signal: &str) {
    let (mut alice, bob) = alice_with_bob(&[]);
    alice.signal(signal);
    let gone = bob.expect("disconnected", WAIT, |e| e["alias"] == "alice");
    assert_eq!(gone["reason"], "peer left: exit", "{gone}");
    let status = alice.wait_exit(WAIT);
    assert_eq!(status.code(), Some(0), "alice after SIG{signal}: {status}");
}

#[test]
fn sigterm_says_goodbye_to_every_peer_and_exits_0() {
    signal_says_goodbye_and_exits_0("TERM");
}

#[test]
fn sigint_with_piped_stdin_says_goodbye_and_exits_0() {
    signal_says_goodbye_and_exits_0("INT");
}

#[test]
fn sigterm_ends_serve_which_outlives_the_end_of_its_input() {
    let mut node = Node::meshtalk(
        "serve",
        &["serve", "--port", "0", "--bind", "127.0.0.1", "--json"],
    );
    node.stdin = None;
    let first = node.next_line(WAIT);
    assert!(first.contains("listening"), "{first}");
    // Its input has ended, yet it serves on until told to stop.
    thread::sleep(Duration::from_millis(200));
    assert!(node.child.try_wait().expect("try_wait").is_none());
    node.signal("TERM");
    let status = node.wait_exit(WAIT);
    assert_eq!(status.code(), Some(0), "serve after SIGTERM: {status}");
}

#[test]
fn sigterm_makes_send_text_say_quit_and_exit_0() {
    let server = Node::meshtalk(
        "serve",
        &["serve", "--port", "0", "--bind", "127.0.0.1", "--json"],
    );
    let port = common::proc::port_of(&server.expect("listening", WAIT, |_| true));
    let mut sender = Node::meshtalk(
        "send",
        &["send", "127.0.0.1", &port.to_string(), "--text", "--json"],
    );
    sender.type_line("hello");
    server.expect("message", WAIT, |e| e["text"] == "hello");
    // Its input still open, the sender is told to stop.
    sender.signal("TERM");
    // `quit` is the older protocol's goodbye: the server answers with the log.
    let sent = server.expect("log_sent", WAIT, |_| true);
    assert_eq!(sent["lines"], 1, "{sent}");
    let status = sender.wait_exit(WAIT);
    assert_eq!(
        status.code(),
        Some(0),
        "send --text after SIGTERM: {status}"
    );
}

#[test]
fn reconnect_dials_a_dropped_peer_again_until_it_is_back() {
    // Carol comes back as herself: her key, which dave pinned, with her.
    let home = TempDir::new("carol");
    let carol = Node::json_mesh_in(home.path(), "carol", 0, &[], WAIT);
    let port = carol.port;
    let mut dave = Node::start("dave", 0, &["--reconnect"]);
    dave.type_line(&format!("connect 127.0.0.1 {port}"));
    dave.expect("connected", WAIT, |e| e["alias"] == "carol");
    carol.signal("KILL");
    drop(carol);
    dave.expect("disconnected", WAIT, |e| e["alias"] == "carol");
    let again = dave.expect("reconnecting", WAIT, |_| true);
    assert_eq!(again["host"], "127.0.0.1", "{again}");
    assert_eq!(again["port"], port, "{again}");
    assert!(again["in_ms"].as_u64().is_some(), "{again}");
    let carol = Node::json_mesh_in(home.path(), "carol", port, &[], WAIT);
    dave.expect("connected", WAIT, |e| e["alias"] == "carol");
    carol.expect("connected", WAIT, |e| e["alias"] == "dave");
}

#[test]
fn reconnect_leaves_a_peer_the_person_disconnected() {
    let carol = Node::start("carol", 0, &[]);
    let mut dave = Node::start("dave", 0, &["--reconnect"]);
    dave.type_line(&format!("connect 127.0.0.1 {}", carol.port));
    dave.expect("connected", WAIT, |e| e["alias"] == "carol");
    dave.type_line("disconnect carol");
    dave.expect("disconnected", WAIT, |e| e["alias"] == "carol");
    // `help` is answered after anything the disconnect set off.
    dave.type_line("help");
    let said = dave.events_until("help");
    assert!(
        said.iter().all(|e| e["event"] != "reconnecting"),
        "dialled again: {said:?}"
    );
}

#[test]
fn a_flooding_peer_does_not_hold_up_another_peers_message() {
    let node = Node::start("hub", 0, &[]);
    let (mut quiet, quiet_peer) = text_peer(&node, "quiet here");
    let flooder = Flooder::start(&node);
    node.expect("message", WAIT, |e| e["peer"] == flooder.peer);
    quiet
        .write_all(b"hello through the flood\n")
        .expect("write");
    node.expect("message", FAIR_WAIT, |e| {
        e["peer"] == quiet_peer && e["text"] == "hello through the flood"
    });
}

#[test]
fn rate_limit_shows_a_flooder_at_the_limit_in_order_and_loses_none_of_its_lines() {
    let node = Node::start("hub", 0, &["--rate-limit", "10"]);
    let (mut quiet, quiet_peer) = text_peer(&node, "quiet here");
    let flooder = Flooder::start(&node);
    // Counted from the first flood line on, for a window of 2 s: 10 a second with
    // a burst of 10 is at most 30 (anything up to 40 passes), and at least 15
    // (a limiter that freezes the flooder shows fewer).
    let first = node.expect("message", WAIT, |e| e["peer"] == flooder.peer);
    assert_eq!(first["text"], "flood 0", "the first flood line");
    let window = Duration::from_secs(2);
    let start = Instant::now();
    let mut shown = 0;
    let mut next = 1;
    while let Some(left) = (start + window).checked_duration_since(Instant::now()) {
        let Ok(line) = node.recv(left) else {
            break;
        };
        let value: Value = serde_json::from_str(&line).expect("JSON");
        if let Some(n) = flooder.number(&value) {
            // Lines are held back, never dropped: each is the next one written.
            assert_eq!(n, next, "flood line {next} was not shown (next came {n})");
            next += 1;
            shown += 1;
        }
    }
    eprintln!("rate limit 10/s: {shown} flood lines shown in {window:?}, none missing");
    assert!(shown <= 40, "{shown} flood messages shown in {window:?}");
    assert!(
        shown >= 15,
        "only {shown} flood messages shown in {window:?}"
    );
    // The others are still heard.
    quiet.write_all(b"still here\n").expect("write");
    node.expect("message", FAIR_WAIT, |e| {
        e["peer"] == quiet_peer && e["text"] == "still here"
    });
}
