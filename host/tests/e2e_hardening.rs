//! End to end: hardening of the host. Real `meshtalk` processes on 127.0.0.1: a
//! signal says goodbye and exits 0, `mesh --reconnect` dials a dropped peer again,
//! a flooding peer does not hold up the others, and `--rate-limit` slows a flooder.
//! Every wait is bounded; children are killed on drop.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The longest any one expected event may take.
const WAIT: Duration = Duration::from_secs(10);
/// How soon another peer's message must be shown while one peer floods.
const FAIR_WAIT: Duration = Duration::from_secs(5);

/// A running `meshtalk mesh --json` and the events it printed, in order.
struct Node {
    name: &'static str,
    child: Child,
    /// Kept open: the node must not end because its input did.
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    port: u16,
}

impl Node {
    /// Starts a node on `port` (0: any free one) and waits for its `listening` event.
    fn start(name: &'static str, port: u16, extra: &[&str]) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_meshtalk"))
            .args(["mesh", "--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--name", name, "--json"])
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
        let mut node = Node {
            name,
            child,
            stdin,
            lines,
            port,
        };
        let listening = node.expect("listening", WAIT, |_| true);
        node.port = u16::try_from(listening["port"].as_u64().expect("port")).expect("u16");
        node
    }

    /// Writes one command line to the node's stdin.
    fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .expect("write stdin");
        stdin.flush().expect("flush stdin");
    }

    /// The next event named `event` for which `matches` holds, within `wait`;
    /// `None` when none came.
    fn wait_for(
        &self,
        event: &str,
        wait: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let line = self.lines.recv_timeout(left).ok()?;
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("{}: stdout line is no JSON ({e}): {line}", self.name));
            if value["event"] == event && matches(&value) {
                return Some(value);
            }
        }
    }

    /// Every event up to the next one named `event` (bounded).
    fn events_until(&self, event: &str) -> Vec<Value> {
        let mut seen = Vec::new();
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|e| {
                panic!("{}: no '{event}' event within {WAIT:?} ({e})", self.name)
            });
            let value: Value = serde_json::from_str(&line).expect("JSON");
            if value["event"] == event {
                return seen;
            }
            seen.push(value);
        }
    }

    /// Like [`Node::wait_for`], failing the test when the event does not come.
    fn expect(&self, event: &str, wait: Duration, matches: impl Fn(&Value) -> bool) -> Value {
        self.wait_for(event, wait, matches)
            .unwrap_or_else(|| panic!("{}: no '{event}' event within {wait:?}", self.name))
    }

    /// Sends the process a signal by name (`TERM`, `INT`, `KILL`) with kill(1).
    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits (bounded) for the process to exit.
    fn wait_exit(&mut self) -> ExitStatus {
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

/// A text peer that writes `flood` lines as fast as the node takes them, until dropped.
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
        let chunk = "flood\n".repeat(1000);
        let thread = thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match stream.write_all(chunk.as_bytes()) {
                    Ok(()) => {}
                    // Blocked by flow control for the write timeout: look at `stop`.
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
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
    bob.type_line(&format!("connect 127.0.0.1 {}", alice.port));
    bob.expect("connected", WAIT, |e| e["alias"] == "alice");
    alice.expect("connected", WAIT, |e| e["alias"] == "bob");
    (alice, bob)
}

/// Sends `signal` to alice, whose stdin is an open pipe; bob must hear her goodbye
/// and she must exit 0.
fn signal_says_goodbye_and_exits_0(signal: &str) {
    let (mut alice, bob) = alice_with_bob(&[]);
    alice.signal(signal);
    let gone = bob.expect("disconnected", WAIT, |e| e["alias"] == "alice");
    assert_eq!(gone["reason"], "peer left: exit", "{gone}");
    let status = alice.wait_exit();
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshtalk"))
        .args(["serve", "--port", "0", "--bind", "127.0.0.1", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start meshtalk serve");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("listening line");
    assert!(first.contains("listening"), "{first}");
    let mut node = Node {
        name: "serve",
        child,
        stdin: None,
        lines: channel().1,
        port: 0,
    };
    // Its input has ended, yet it serves on until told to stop.
    thread::sleep(Duration::from_millis(200));
    assert!(node.child.try_wait().expect("try_wait").is_none());
    node.signal("TERM");
    let status = node.wait_exit();
    assert_eq!(status.code(), Some(0), "serve after SIGTERM: {status}");
}

#[test]
fn reconnect_dials_a_dropped_peer_again_until_it_is_back() {
    let carol = Node::start("carol", 0, &[]);
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
    let carol = Node::start("carol", port, &[]);
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
fn rate_limit_shows_a_flooder_no_faster_than_the_limit() {
    let node = Node::start("hub", 0, &["--rate-limit", "10"]);
    let flooder = Flooder::start(&node);
    let (mut quiet, quiet_peer) = text_peer(&node, "quiet here");
    // Counted from a flood message on, for a window of 2 s: 10 a second with a
    // burst of 10 is 30; anything up to 40 passes.
    node.expect("message", WAIT, |e| e["peer"] == flooder.peer);
    let window = Duration::from_secs(2);
    let start = Instant::now();
    let mut shown = 0;
    while let Some(left) = (start + window).checked_duration_since(Instant::now()) {
        let Ok(line) = node.lines.recv_timeout(left) else {
            break;
        };
        let value: Value = serde_json::from_str(&line).expect("JSON");
        if value["event"] == "message" && value["peer"] == flooder.peer {
            shown += 1;
        }
    }
    assert!(shown <= 40, "{shown} flood messages shown in {window:?}");
    // The others are still heard.
    quiet.write_all(b"still here\n").expect("write");
    node.expect("message", FAIR_WAIT, |e| {
        e["peer"] == quiet_peer && e["text"] == "still here"
    });
}
