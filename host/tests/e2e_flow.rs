//! End to end: flow control. A `meshtalk mesh --hub --json` process on loopback
//! relays plain-text peers' lines to each other; a peer that stops reading is cut
//! after the stall timeout, and a peer that reads slowly gets every line. Every
//! wait is bounded; children are killed on drop.

mod common;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::{Duration, Instant};

use common::proc::Proc as Hub;

/// The longest any one expected event may take.
const WAIT: Duration = Duration::from_secs(10);
/// The stall timeout the hub runs with, as given on its command line.
const STALL: &str = "2";
/// The longest a whole flood may take to pass through the hub.
const FLOOD_WAIT: Duration = Duration::from_secs(60);

/// The hub: a running `meshtalk mesh --hub --json` and the events it printed.
impl Hub {
    /// Starts a hub on a free loopback port and waits for its `listening` event.
    fn start() -> Hub {
        Hub::json_mesh("hub", 0, &["--hub", "--stall-timeout", STALL], WAIT)
    }

    /// Connects a plain TCP client (a text peer) and waits until the hub has it.
    fn text_peer(&self, first_line: &str) -> (TcpStream, u64) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream.set_read_timeout(Some(WAIT)).expect("read timeout");
        stream
            .set_write_timeout(Some(FLOOD_WAIT))
            .expect("write timeout");
        stream
            .write_all(format!("{first_line}\n").as_bytes())
            .expect("write");
        let connected = self.expect("connected", WAIT, |_| true);
        assert_eq!(connected["kind"], "text");
        self.expect("message", WAIT, |e| e["text"] == first_line);
        (stream, connected["peer"].as_u64().expect("peer number"))
    }

    /// The hub's resident memory now and at its peak, from /proc (Linux only).
    fn memory(&self) -> String {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM"))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `count` lines of `len` bytes each (newline included), numbered so order shows.
fn numbered_lines(count: usize, len: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            let head = format!("line {i:06} ");
            format!("{head}{}", "x".repeat(len - head.len() - 1))
        })
        .collect()
}

/// Writes every line on a thread of its own; reports how many bytes went out.
fn send_on_a_thread(mut stream: TcpStream, lines: Vec<String>) -> Receiver<io::Result<usize>> {
    let (done, result) = channel();
    thread::spawn(move || {
        let mut sent = 0;
        let outcome = lines.iter().try_for_each(|line| {
            stream.write_all(line.as_bytes())?;
            stream.write_all(b"\n")?;
            sent += line.len() + 1;
            Ok(())
        });
        let _ = done.send(outcome.map(|()| sent));
    });
    result
}

/// The text of a line the hub relayed: it comes as `<sender> text`.
fn relayed_text(line: &str) -> &str {
    line.split_once("> ").map_or(line, |(_, text)| text)
}

#[test]
fn a_reader_that_stops_is_disconnected_after_the_stall_timeout_and_the_others_keep_chatting() {
    let hub = Hub::start();
    // Says one line, then never reads what the hub relays to it.
    let (_stuck, stuck_peer) = hub.text_peer("i will stop reading");
    // Reads (and drops) everything, until the line that comes after the stall.
    let (listener, _) = hub.text_peer("i keep reading");
    let (seen, heard_after) = channel();
    thread::spawn(move || {
        for line in BufReader::new(listener).lines() {
            let Ok(line) = line else { break };
            if relayed_text(&line) == "after the stall" {
                let _ = seen.send(());
                break;
            }
        }
    });
    let (flooder, _) = hub.text_peer("here comes a flood");
    let mut after = flooder.try_clone().expect("clone");

    // 20 MB: far more than the socket buffers and the hub's high-water mark hold.
    let flood = send_on_a_thread(flooder, numbered_lines(5000, 4000));
    let gone = hub.expect("disconnected", FLOOD_WAIT, |e| e["peer"] == stuck_peer);
    eprintln!("hub memory when the stuck reader was cut: {}", hub.memory());
    let reason = gone["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("not reading"), "{gone}");

    let sent = flood
        .recv_timeout(FLOOD_WAIT)
        .expect("the flood ends once the stuck reader is gone");
    assert_eq!(sent.expect("flood written"), 5000 * 4000);
    after.write_all(b"after the stall\n").expect("write");
    heard_after
        .recv_timeout(FLOOD_WAIT)
        .expect("the reading peer hears the line sent after the stall");
    eprintln!("hub memory after the flood: {}", hub.memory());
}

/// Reads at most `chunk` bytes at a time, pausing before each read.
struct SlowReader {
    inner: TcpStream,
    chunk: usize,
    pause: Duration,
}

impl Read for SlowReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        thread::sleep(self.pause);
        let len = buf.len().min(self.chunk);
        self.inner.read(&mut buf[..len])
    }
}

#[test]
fn a_slow_reader_loses_nothing() {
    let mut hub = Hub::start();
    let (reader, reader_peer) = hub.text_peer("i read slowly");
    let (sender, _) = hub.text_peer("i send fast");
    // 8 MB: more than the loopback socket buffers between the three hold (about
    // 5 MB), so the hub's queue for the reader goes over its high-water mark.
    let lines = numbered_lines(8000, 1024);
    let flood = send_on_a_thread(sender, lines.clone());

    let slow = SlowReader {
        inner: reader,
        chunk: 1024,
        pause: Duration::from_millis(1),
    };
    // The hub's notices (its welcome, the sender's join) are no relayed lines.
    let mut received = BufReader::with_capacity(1024, slow)
        .lines()
        .filter(|line| !matches!(line, Ok(line) if line.starts_with("* ")));
    let first = received
        .next()
        .expect("a line")
        .expect("the sender's greeting");
    assert_eq!(relayed_text(&first), "i send fast");
    let deadline = Instant::now() + FLOOD_WAIT;
    for (i, expected) in lines.iter().enumerate() {
        assert!(Instant::now() < deadline, "still reading at line {i}");
        let line = received
            .next()
            .unwrap_or_else(|| panic!("the hub closed after {i} lines"))
            .unwrap_or_else(|e| panic!("line {i} did not come: {e}"));
        assert_eq!(relayed_text(&line), expected, "line {i}");
    }
    let sent = flood.recv_timeout(WAIT).expect("the sender finished");
    assert_eq!(sent.expect("all written"), 8000 * 1024);
    eprintln!("hub memory after the slow read: {}", hub.memory());

    // The slow reader was never taken for a stopped one.
    hub.type_line("list");
    let list = hub.expect("peers", WAIT, |_| true);
    let peers = list["peers"].as_array().expect("peers array");
    assert!(peers.iter().any(|p| p["peer"] == reader_peer), "{list}");
}
