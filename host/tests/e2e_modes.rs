//! End to end: `meshtalk chat`, `serve` and `send` as real processes on loopback,
//! with each other, with plain TCP clients and with the seed programs. Every wait is
//! bounded; children are killed on drop.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::proc::{Proc, link, port_of};

/// The longest any one expected output may take.
const WAIT: Duration = Duration::from_secs(10);
/// Where the seed programs are (run from there, never copied): `shared/` beside
/// the checkout, wherever the checkout is.
const SEEDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/seed-programs");

impl Proc {
    /// `python3 -u <seed>`, run in the seed programs' folder.
    fn seed(name: &str, seed: &str) -> Proc {
        let mut command = Command::new("python3");
        command.arg("-u").arg(seed).current_dir(Path::new(SEEDS));
        Proc::spawn(name, &mut command)
    }

    /// Waits for a line containing `text`, skipping others; returns the lines read.
    fn expect_line(&self, text: &str) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.recv(left).unwrap_or_else(|e| {
                panic!(
                    "{}: no line with {text:?} within {WAIT:?} ({e}); saw {seen:#?}",
                    self.name
                )
            });
            let found = line.contains(text);
            seen.push(line);
            if found {
                return seen;
            }
        }
    }

    /// Every line still to come until the child closes stdout (bounded).
    fn rest(&self) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left) {
                Ok(line) => lines.push(line),
                Err(_) => return lines,
            }
        }
    }
}

/// A `meshtalk` listening mode on a free loopback port; returns it with its port.
fn listening(name: &'static str, args: &[&str]) -> (Proc, u16) {
    let mut all = args.to_vec();
    all.extend(["--port", "0", "--bind", "127.0.0.1", "--json"]);
    let mut proc = Proc::meshtalk(name, &all);
    proc.port = port_of(&proc.expect("listening", WAIT, |_| true));
    let port = proc.port;
    (proc, port)
}

/// Alice and bob in a two-peer chat, bob having connected to alice; with alice's port.
fn chatting() -> (Proc, Proc, u16) {
    let (alice, port) = listening("alice", &["chat", "--name", "alice"]);
    let (mut bob, _) = listening("bob", &["chat", "--name", "bob"]);
    link(&mut bob, &alice, None, WAIT);
    (alice, bob, port)
}

/// `meshtalk send --json` to a local port with this stdin; returns the log it printed.
fn send_native(port: u16, input: &str) -> Vec<String> {
    let port = port.to_string();
    let mut send = Proc::meshtalk("send", &["send", "127.0.0.1", &port, "--json"]);
    send.type_lines(input);
    send.stdin = None;
    let log = send.expect("log", WAIT, |_| true);
    let status = send.wait_exit(WAIT);
    assert!(status.success(), "send exited with {status}");
    log["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l.as_str().expect("a line").to_string())
        .collect()
}

/// Connects to `serve`, writes each message as one bare write, waiting until the
/// server has taken it as a message, then `quit`; returns what ONE read gets back,
/// and asserts the server then closes.
fn plain_client_log(serve: &Proc, port: u16, messages: &[&str]) -> String {
    let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    client.set_read_timeout(Some(WAIT)).expect("timeout");
    for message in messages {
        client.write_all(message.as_bytes()).expect("write");
        serve.expect("message", WAIT, |e| e["text"] == *message);
    }
    client.write_all(b"quit").expect("write");
    serve.expect("log_sent", WAIT, |e| e["lines"] == messages.len());
    let mut buf = [0; 2048];
    let n = client.read(&mut buf).expect("read the log");
    let log = String::from_utf8_lossy(&buf[..n]).into_owned();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).expect("read to the end");
    assert!(rest.is_empty(), "more after the log: {rest:?}");
    log
}

/// A port from 10000-20000 that was free a moment ago (the seed programs take no other).
fn free_seed_port() -> u16 {
    for port in (10000..=20000).step_by(97) {
        if TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 10000-20000");
}

/// Waits until something listens on `port`: the seed server prints its port
/// before it calls `listen()`, so a client started at once may be refused.
fn wait_listening(port: u16) {
    let hex = format!(":{port:04X} ");
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        let listening = ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
            std::fs::read_to_string(table).is_ok_and(|text| {
                text.lines().any(|row| {
                    let cols: Vec<&str> = row.split_whitespace().collect();
                    // Column 1 is the local address, column 3 the state (0A: LISTEN).
                    cols.len() > 3 && format!("{} ", cols[1]).ends_with(&hex) && cols[3] == "0A"
                })
            })
        });
        if listening {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("nothing listens on port {port}");
}

#[test]
fn chat_refuses_a_second_plain_tcp_peer_telling_it_busy() {
    let (alice, _bob, port) = chatting();
    let client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    client.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut line = String::new();
    BufReader::new(client)
        .read_line(&mut line)
        .expect("read the refusal");
    assert!(line.starts_with("meshtalk: busy"), "{line:?}");
    alice.expect("refused", WAIT, |e| {
        e["reason"].as_str().is_some_and(|r| r.starts_with("busy"))
    });
}

#[test]
fn chat_refuses_a_second_meshtalk_chat_telling_it_busy() {
    let (alice, _bob, port) = chatting();
    let (mut carol, _) = listening("carol", &["chat", "--name", "carol"]);
    carol.type_lines(&format!("connect 127.0.0.1 {port}\n"));
    let gone = carol.expect("disconnected", WAIT, |_| true);
    assert!(
        gone["reason"].as_str().is_some_and(|r| r.contains("busy")),
        "{gone}"
    );
    alice.expect("refused", WAIT, |_| true);
}

#[test]
fn chat_connect_while_in_a_chat_is_an_error() {
    let (_alice, mut bob, port) = chatting();
    bob.type_lines(&format!("connect 127.0.0.1 {port}\n"));
    let error = bob.expect("error", WAIT, |_| true);
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("already connected")),
        "{error}"
    );
}

#[test]
fn chat_send_and_disconnect_are_seen_on_both_sides() {
    let (alice, mut bob, _) = chatting();
    bob.type_lines("send hello  there\n");
    let message = alice.expect("message", WAIT, |_| true);
    assert_eq!(message["text"], "hello  there");
    bob.expect("delivered", WAIT, |_| true);

    bob.type_lines("disconnect\n");
    bob.expect("disconnected", WAIT, |e| e["alias"] == "alice");
    alice.expect("disconnected", WAIT, |e| e["alias"] == "bob");
}

#[test]
fn serve_returns_the_log_to_a_native_send_and_disconnects_it() {
    let (serve, port) = listening("serve", &["serve"]);
    assert_eq!(send_native(port, "a\nb\nquit\n"), ["a", "b"]);
    let sent = serve.expect("log_sent", WAIT, |_| true);
    assert_eq!(sent["lines"], 2);
    serve.expect("disconnected", WAIT, |_| true);
}

#[test]
fn serve_returns_a_log_longer_than_the_longest_message_whole_in_several() {
    let (serve, port) = listening("serve", &["serve"]);
    // 6,000 bytes of log: more than one message may carry (--max-text, 4096).
    let lines: Vec<String> = (0..120)
        .map(|i| format!("line {i:03} {}", "x".repeat(40)))
        .collect();
    let input = format!("{}\nquit\n", lines.join("\n"));
    assert_eq!(send_native(port, &input), lines);
    let sent = serve.expect("log_sent", WAIT, |_| true);
    assert_eq!(sent["lines"], 120);
}

#[test]
fn send_gets_every_line_of_a_script_longer_than_its_queue_to_the_server_in_order() {
    let (serve, port) = listening("serve", &["serve"]);
    // 50,000 bytes of lines: three times what send's queue holds, within the log's limit.
    let lines: Vec<String> = (0..5000).map(|i| format!("line {i:04}")).collect();
    let input = format!("{}\n", lines.join("\n"));
    assert!(input.len() > 3 * meshtalk_core::limits::SEND_QUEUE);
    assert!(input.len() < meshtalk_core::limits::SERVE_LOG);
    assert_eq!(send_native(port, &input), lines);
    let sent = serve.expect("log_sent", WAIT, |_| true);
    assert_eq!(sent["lines"], 5000);
}

#[test]
fn send_asks_for_the_log_when_its_input_ends() {
    let (_serve, port) = listening("serve", &["serve"]);
    assert_eq!(send_native(port, "only line\n"), ["only line"]);
}

#[test]
fn serve_returns_the_log_in_one_piece_to_a_plain_tcp_client() {
    let (serve, port) = listening("serve", &["serve"]);
    assert_eq!(plain_client_log(&serve, port, &["a", "b"]), "a\nb");
}

#[test]
fn serve_takes_the_next_client_with_a_fresh_log() {
    let (serve, port) = listening("serve", &["serve"]);
    assert_eq!(plain_client_log(&serve, port, &["a", "b"]), "a\nb");
    serve.expect("disconnected", WAIT, |_| true);
    assert_eq!(send_native(port, "c\nquit\n"), ["c"]);
    assert_eq!(plain_client_log(&serve, port, &["d"]), "d");
}

#[test]
fn serve_without_a_port_off_a_terminal_listens_on_10000_to_20000() {
    let serve = Proc::meshtalk("serve", &["serve", "--bind", "127.0.0.1", "--json"]);
    let port = port_of(&serve.expect("listening", WAIT, |_| true));
    assert!((10000..=20000).contains(&port), "port {port}");
}

#[test]
fn seed_client_gets_its_log_from_serve() {
    let serve = Proc::meshtalk("serve", &["serve", "--json"]);
    let port = port_of(&serve.expect("listening", WAIT, |_| true));
    let mut client = Proc::seed("client.py", "client.py");
    client.type_lines(&format!("{port}\n127.0.0.1\n"));
    // The seed sends each line as it is typed: typed too fast, two lines would be one
    // message. So each line waits until serve has shown the one before.
    for line in ["hello", "world"] {
        client.type_lines(&format!("{line}\n"));
        serve.expect("message", WAIT, |e| e["text"] == line);
    }
    client.type_lines("quit\n");
    serve.expect("log_sent", WAIT, |e| e["lines"] == 2);
    let status = client.wait_exit(WAIT);
    let out = client.rest().join("\n");
    assert!(status.success(), "client.py exited with {status}:\n{out}");
    assert!(
        out.contains("Client received messages log:\n\nhello\nworld\n"),
        "{out}"
    );
}

#[test]
fn send_text_talks_to_the_seed_server_one_message_per_line() {
    let port = free_seed_port();
    let mut server = Proc::seed("server.py", "server.py");
    server.type_lines(&format!("{port}\n"));
    server.expect_line("Server is using port");
    wait_listening(port);
    let port = port.to_string();
    let mut send = Proc::meshtalk("send", &["send", "127.0.0.1", &port, "--text", "--json"]);
    // All at once: meshtalk spaces the writes out itself.
    send.type_lines("one\ntwo\nquit\n");
    let log = send.expect("log", WAIT, |_| true);
    assert_eq!(log["lines"], serde_json::json!(["one", "two"]));
    assert!(send.end_input_and_wait(WAIT).success());

    let status = server.wait_exit(WAIT);
    let out = server.rest();
    assert!(status.success(), "server.py exited with {status}: {out:#?}");
    let received: Vec<&String> = out
        .iter()
        .filter(|l| l.starts_with("Server received message"))
        .collect();
    assert_eq!(
        received,
        [
            "Server received message: one",
            "Server received message: two"
        ],
        "{out:#?}"
    );
    assert!(
        out.iter()
            .any(|l| l.contains("client has informed the server that it is quitting"))
    );
}
