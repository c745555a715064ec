//! End to end: `meshtalk mesh --json` driven by a script piped to its stdin, as
//! `printf '...' | meshtalk mesh --json` is. Commands run in order, each finished
//! before the next needs it; end of input waits for owed receipts; the exit
//! status says whether everything was done. Every wait is bounded.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::process::ExitStatus;
use std::thread;
use std::time::{Duration, Instant};

use common::proc::{Proc, parse};
use common::{Native, Node};
use serde_json::Value;

/// The longest any one expected event may take.
const WAIT: Duration = Duration::from_secs(20);

/// Starts a JSON mesh node on a free loopback port, waiting until it listens.
fn node(name: &str, extra: &[&str]) -> Proc {
    Proc::json_mesh(name, 0, extra, WAIT)
}

/// Writes `script` to `node`'s stdin on a thread of its own (the pipe may hold
/// the writer while meshtalk waits), then ends the input.
fn pipe_script(node: &mut Proc, script: String) -> thread::JoinHandle<()> {
    let mut stdin = node.stdin.take().expect("stdin still open");
    thread::spawn(move || {
        // meshtalk may exit (or be killed) before reading all of it.
        let _ = stdin.write_all(script.as_bytes());
    })
}

/// Every JSON event `node` prints until it exits (within `wait`), and its status.
fn events_until_exit(node: &mut Proc, wait: Duration) -> (Vec<Value>, ExitStatus) {
    let deadline = Instant::now() + wait;
    let mut events = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "{} still running after {wait:?}",
            node.name
        );
        match node.recv_raw(left) {
            Ok(line) => events.push(parse(&node.name, &line)),
            // Stdout closed: the process is on its way out.
            Err(_) => break,
        }
    }
    (events, node.wait_exit(WAIT))
}

/// The events named `name`.
fn named<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

/// A loopback port nobody listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Counts `bob`'s `message` events (direct, room) until both reach the wanted
/// numbers or `wait` passes.
fn count_messages(bob: &Proc, direct: usize, room: usize, wait: Duration) -> (usize, usize) {
    let deadline = Instant::now() + wait;
    let (mut d, mut r) = (0, 0);
    while d < direct || r < room {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = bob.recv_raw(left) else {
            break;
        };
        let event = parse(&bob.name, &line);
        if event["event"] == "message" {
            match event["broadcast"] == true {
                true => r += 1,
                false => d += 1,
            }
        }
    }
    (d, r)
}

#[test]
fn a_send_piped_right_after_connect_waits_for_the_link_and_is_delivered() {
    let bob = node("bob", &[]);
    let mut alice = node("alice", &[]);
    let script = format!("connect 127.0.0.1 {}\nsend bob hi\n", bob.port);
    pipe_script(&mut alice, script);
    let (events, status) = events_until_exit(&mut alice, WAIT);
    assert!(named(&events, "error").is_empty(), "{events:#?}");
    assert_eq!(named(&events, "delivered").len(), 1, "{events:#?}");
    assert!(status.success(), "{status:?}");
    bob.expect("message", WAIT, |e| e["text"] == "hi");
}

#[test]
fn commands_waiting_on_a_failed_dial_each_fail_with_their_line() {
    let mut alice = node("alice", &[]);
    let script = format!(
        "connect 127.0.0.1 {}\nsend bob hi\nbroadcast all\n",
        closed_port()
    );
    pipe_script(&mut alice, script);
    let (events, status) = events_until_exit(&mut alice, WAIT);
    assert_eq!(named(&events, "connect_failed").len(), 1, "{events:#?}");
    let errors = named(&events, "error");
    let lines: Vec<&Value> = errors.iter().map(|e| &e["line"]).collect();
    assert_eq!(lines, [2, 3], "{events:#?}");
    // The dial came first: neither command was tried before it failed.
    let failed_at = events.iter().position(|e| e["event"] == "connect_failed");
    let first_error = events.iter().position(|e| e["event"] == "error");
    assert!(failed_at < first_error, "{events:#?}");
    assert_eq!(status.code(), Some(1), "{status:?}");
}

#[test]
fn two_hundred_piped_sends_are_all_sent_and_delivered() {
    let bob = node("bob", &[]);
    let mut alice = node("alice", &[]);
    let mut script = format!("connect 127.0.0.1 {}\n", bob.port);
    for n in 1..=200 {
        script.push_str(&format!("send bob msg {n}\n"));
    }
    pipe_script(&mut alice, script);
    let (events, status) = events_until_exit(&mut alice, WAIT);
    assert!(
        named(&events, "error").is_empty(),
        "{:#?}",
        named(&events, "error")
    );
    assert_eq!(named(&events, "sent").len(), 200);
    assert_eq!(named(&events, "delivered").len(), 200);
    assert!(status.success(), "{status:?}");
    assert_eq!(count_messages(&bob, 200, 0, WAIT), (200, 0));
}

#[test]
fn end_of_input_waits_for_the_receipts_of_the_last_sends() {
    let bob = node("bob", &[]);
    let mut alice = node("alice", &[]);
    let script = format!(
        "connect 127.0.0.1 {}\nsend bob one\nsend bob two\nsend bob three\n",
        bob.port
    );
    pipe_script(&mut alice, script);
    let (events, status) = events_until_exit(&mut alice, WAIT);
    let delivered: Vec<&Value> = named(&events, "delivered")
        .iter()
        .map(|e| &e["id"])
        .collect();
    assert_eq!(delivered, [1, 2, 3], "{events:#?}");
    // Each receipt names the line of its send.
    let lines: Vec<&Value> = named(&events, "delivered")
        .iter()
        .map(|e| &e["line"])
        .collect();
    assert_eq!(lines, [2, 3, 4], "{events:#?}");
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_disconnect_piped_after_sends_waits_for_their_receipts() {
    let bob = node("bob", &[]);
    let mut alice = node("alice", &[]);
    let mut script = format!("connect 127.0.0.1 {}\n", bob.port);
    for n in 1..=100 {
        script.push_str(&format!("send bob msg {n}\n"));
    }
    script.push_str("disconnect bob\n");
    pipe_script(&mut alice, script);
    let (events, status) = events_until_exit(&mut alice, WAIT);
    assert_eq!(named(&events, "delivered").len(), 100, "{events:#?}");
    assert!(named(&events, "undelivered").is_empty(), "{events:#?}");
    assert_eq!(named(&events, "disconnected").len(), 1, "{events:#?}");
    assert!(status.success(), "{status:?}");
}

#[test]
fn receipts_still_owed_when_the_wait_ends_are_reported_undelivered() {
    let mut alice = Node::mesh("alice", &["--dead-after", "1"]);
    // A peer that reads but never confirms anything.
    let _mute = Native::join(&alice, "mute", true);
    pipe_script(&mut alice, "send mute one\nsend mute two\n".into());
    let started = Instant::now();
    let (events, status) = events_until_exit(&mut alice, WAIT);
    let undelivered: Vec<(&Value, &Value)> = named(&events, "undelivered")
        .iter()
        .map(|e| (&e["id"], &e["line"]))
        .collect();
    assert_eq!(undelivered.len(), 2, "{events:#?}");
    assert_eq!(undelivered[0].1, 1, "{events:#?}");
    assert_eq!(undelivered[1].1, 2, "{events:#?}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(status.code(), Some(4), "{status:?}");
}

#[test]
fn an_error_event_names_the_input_line_it_answers() {
    let mut alice = node("alice", &[]);
    pipe_script(&mut alice, "help\nfrobnicate\nsend nobody hi\n".into());
    let (events, status) = events_until_exit(&mut alice, WAIT);
    let lines: Vec<&Value> = named(&events, "error").iter().map(|e| &e["line"]).collect();
    assert_eq!(lines, [2, 3], "{events:#?}");
    assert_eq!(status.code(), Some(1), "{status:?}");
}

/// `connect`, `sends` sends and `broadcasts` broadcasts to bob, as one piped script.
fn big_script(port: u16, sends: usize, broadcasts: usize) -> String {
    let mut script = format!("connect 127.0.0.1 {port}\n");
    for n in 1..=sends {
        script.push_str(&format!("send bob msg {n}\n"));
    }
    for n in 1..=broadcasts {
        script.push_str(&format!("broadcast room {n}\n"));
    }
    script
}

#[test]
fn ten_thousand_piped_sends_and_broadcasts_are_all_delivered_and_exit_is_zero() {
    let bob = node("bob", &[]);
    let mut alice = node("alice", &[]);
    let started = Instant::now();
    pipe_script(&mut alice, big_script(bob.port, 10_000, 10_000));
    let (events, status) = events_until_exit(&mut alice, Duration::from_secs(120));
    assert!(
        named(&events, "error").is_empty(),
        "{:#?}",
        named(&events, "error")
    );
    assert_eq!(named(&events, "delivered").len(), 10_000);
    assert!(named(&events, "undelivered").is_empty());
    assert_eq!(named(&events, "broadcast").len(), 10_000);
    assert!(status.success(), "{status:?}");
    assert_eq!(count_messages(&bob, 10_000, 10_000, WAIT), (10_000, 10_000));
    eprintln!("20,000 piped commands took {:?}", started.elapsed());
}

#[test]
fn a_peer_killed_midway_leaves_every_later_send_undelivered_or_failed_and_exit_nonzero() {
    let mut bob = node("bob", &[]);
    let mut alice = node("alice", &[]);
    pipe_script(&mut alice, big_script(bob.port, 10_000, 10_000));
    // Midway through the sends.
    let (got, _) = count_messages(&bob, 3_000, 0, WAIT);
    assert_eq!(got, 3_000);
    bob.child.kill().expect("kill bob");
    let (events, status) = events_until_exit(&mut alice, Duration::from_secs(120));
    let delivered = named(&events, "delivered").len();
    let undelivered = named(&events, "undelivered").len();
    let sent = named(&events, "sent").len();
    assert!((3_000..10_000).contains(&delivered), "{delivered}");
    assert_eq!(delivered + undelivered, sent, "every send has its answer");
    // Each send line is sent (then delivered or not), or failed with its line.
    let failed_sends = named(&events, "error")
        .iter()
        .filter(|e| {
            e["line"]
                .as_u64()
                .is_some_and(|l| (2..=10_001).contains(&l))
        })
        .count();
    assert_eq!(sent + failed_sends, 10_000);
    assert_eq!(status.code(), Some(5), "{status:?}");
}
