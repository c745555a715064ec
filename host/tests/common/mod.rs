//! Shared by the attack tests: a running `meshtalk mesh` whose stdout is read
//! line by line (JSON events or raw human text), a hand-made native peer that
//! speaks the wire protocol (2: a Noise handshake, then sealed frames) through
//! `meshtalk_core`, and the check every attack ends with: two well-behaved
//! peers still exchange a message.

// Each test file uses its own share of these helpers.
#![allow(dead_code)]

/// A home of its own (HOME, XDG directories) for every `meshtalk` a test starts.
pub mod home;
/// Whether the network-namespace tests can run here.
pub mod netns;
/// `meshtalk` (or any program) as a child process, as the other end-to-end tests drive it.
pub mod proc;
/// `meshtalk` on a pseudo-terminal.
pub mod pty;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::ops::{Deref, DerefMut};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::{Duration, Instant};

use meshtalk_core::frame::body_of;
use meshtalk_core::noise::{Role, Session, Step, TAG};
use meshtalk_core::wire::{MINOR, Message};

use proc::Proc;
use socket2::{Domain, Socket, Type};

/// The longest any one expected event or close may take.
pub const WAIT: Duration = Duration::from_secs(20);

/// A running `meshtalk mesh` (a [`Proc`] that listens), in JSON or human mode.
pub struct Node {
    proc: Proc,
    pub json: bool,
}

impl Deref for Node {
    type Target = Proc;
    fn deref(&self) -> &Proc {
        &self.proc
    }
}

impl DerefMut for Node {
    fn deref_mut(&mut self) -> &mut Proc {
        &mut self.proc
    }
}

impl Node {
    /// `meshtalk mesh --port 0 --bind 127.0.0.1 --json --name <name>` plus `extra`.
    pub fn mesh(name: &str, extra: &[&str]) -> Node {
        Node::start(name, true, extra)
    }

    /// As [`Node::mesh`], printing human text instead of JSON (stdout is a pipe: no colour).
    pub fn mesh_human(name: &str, extra: &[&str]) -> Node {
        Node::start(name, false, extra)
    }

    /// Starts `meshtalk mesh` on a free loopback port and waits until it listens.
    pub fn start(name: &str, json: bool, extra: &[&str]) -> Node {
        Node::spawn(
            Command::new(env!("CARGO_BIN_EXE_meshtalk"))
                .args(["-q", "mesh", "--port", "0", "--bind", "127.0.0.1"])
                .args(["--name", name])
                .args(if json { &["--json"][..] } else { &[][..] })
                .args(extra),
            name,
            json,
        )
    }

    /// Spawns `command` (a `meshtalk mesh` with `--port 0`) and waits until it listens.
    pub fn spawn(command: &mut Command, name: &str, json: bool) -> Node {
        let mut node = Node {
            proc: Proc::spawn(name, command),
            json,
        };
        node.proc.port = if json {
            proc::port_of(&node.expect("listening", WAIT, |_| true))
        } else {
            let line = node.expect_raw(WAIT, |l| l.contains("listening on"));
            let port = line.trim_end().rsplit(':').next().expect("an address");
            port.parse().expect("a port number")
        };
        node
    }

    /// The node's address, for dialling it.
    pub fn addr(&self) -> (&'static str, u16) {
        ("127.0.0.1", self.port)
    }

    /// Waits at most `wait` for the next stdout line (lossily decoded) for which
    /// `matches` holds, skipping others.
    pub fn expect_raw(&self, wait: Duration, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let text = self
                .recv(left)
                .unwrap_or_else(|e| panic!("{}: no such line within {wait:?} ({e})", self.name));
            if matches(&text) {
                return text;
            }
        }
    }

    /// Every stdout line printed so far and until `quiet` passes with no new line,
    /// raw, at most `wait` in all.
    pub fn raw_lines_until_quiet(&self, quiet: Duration, wait: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        while Instant::now() < deadline {
            match self.recv_raw(quiet) {
                Ok(line) => out.push(line),
                Err(_) => break,
            }
        }
        out
    }

    /// A number from the node's `/proc/<pid>/status` line `key` (e.g. `VmRSS`, in KiB).
    pub fn status_kib(&self, key: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in /proc status"))
    }

    /// How many file descriptors the node has open.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Waits at most `wait` until the node (a JSON one) has at most `fds`
    /// descriptors open; returns how many it has then.
    ///
    /// First a fresh connection must get a line through and be seen to close:
    /// the node has then accepted every connection made before it (they queue
    /// in order), so descriptors not yet accepted are never taken for closed.
    pub fn settle_fds(&self, fds: usize, wait: Duration) -> usize {
        assert!(self.json, "settle_fds reads the node's JSON events");
        let deadline = Instant::now() + wait;
        let n = FRIENDS.fetch_add(1, Ordering::Relaxed);
        let said = format!("descriptor probe {n}");
        let mut probe = connect(self);
        probe
            .write_all(format!("{said}\n").as_bytes())
            .expect("write the probe's line");
        let shown = self.expect("message", wait, |e| e["text"] == said.as_str());
        drop(probe);
        let peer = shown["peer"].clone();
        let left = deadline.saturating_duration_since(Instant::now());
        self.expect("disconnected", left, |e| e["peer"] == peer);
        loop {
            let now = self.open_fds();
            if now <= fds || Instant::now() >= deadline {
                return now;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// Names the well-behaved peers of [`assert_still_serving`], each one new.
static FRIENDS: AtomicU32 = AtomicU32::new(0);

/// The check every attack ends with: the node is alive, a fresh `meshtalk` dials
/// it, and a message goes each way within a few seconds.
pub fn assert_still_serving(node: &mut Node) {
    assert!(node.is_running(), "{} has exited", node.name);
    let n = FRIENDS.fetch_add(1, Ordering::Relaxed);
    let friend_name = format!("friend{n}");
    let mut friend = Node::mesh(&friend_name, &[]);
    friend.type_line(&format!("connect 127.0.0.1 {} target", node.port));
    friend.expect("connected", WAIT, |e| e["alias"] == "target");
    friend.type_line(&format!("send target still there {n}?"));
    let question = format!("still there {n}?");
    let answer = format!("still here {n}");
    // The node names the friend by its announced name (or that with a suffix).
    let alias = if node.json {
        let connected = node.expect("connected", WAIT, |e| {
            e["alias"]
                .as_str()
                .is_some_and(|a| a.starts_with(&friend_name))
        });
        node.expect("message", WAIT, |e| e["text"] == question.as_str());
        connected["alias"].as_str().expect("alias").to_string()
    } else {
        node.expect_raw(WAIT, |l| l.contains(&question));
        friend_name.clone()
    };
    friend.expect("delivered", WAIT, |_| true);
    node.type_line(&format!("send {alias} {answer}"));
    friend.expect("message", WAIT, |e| e["text"] == answer.as_str());
    friend.type_line("exit");
}

/// A seeded xorshift generator, so a failing run of random bytes reproduces.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

/// One frame carrying `msg`, as a native peer sends it.
pub fn frame(msg: &Message<'_>) -> Vec<u8> {
    let mut buf = vec![0; msg.frame_len()];
    let n = msg.encode_frame(&mut buf).expect("frame fits");
    buf.truncate(n);
    buf
}

/// A TCP connection to the node, with bounded reads and writes. Each comes from
/// another loopback address (127.0.0.2 to 127.0.0.250, in turn), as attackers on
/// a network would: the node's limit per address then hides no attack, and the
/// well-behaved peers (from 127.0.0.1) are never counted with them.
pub fn connect(node: &Node) -> TcpStream {
    let n = SOURCES.fetch_add(1, Ordering::Relaxed) % 249;
    let source = SocketAddr::from(([127, 0, 0, 2 + n as u8], 0));
    let (host, port) = node.addr();
    let target: SocketAddr = format!("{host}:{port}").parse().expect("node address");
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket.bind(&source.into()).expect("bind a loopback source");
    socket.connect(&target.into()).expect("connect");
    let stream = TcpStream::from(socket);
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    stream.set_write_timeout(Some(WAIT)).expect("write timeout");
    stream
}

/// The next source address [`connect`] uses.
static SOURCES: AtomicU32 = AtomicU32::new(0);

/// The banner both sides of a secure link without a room key send (protocol 2);
/// the handshake's prologue binds it.
pub const BANNER: &[u8] = b"MESHTALK/2 XX\n";

/// 32 bytes from the OS: a hand-made peer's identity or ephemeral key.
pub fn random32() -> [u8; 32] {
    let mut bytes = [0; 32];
    getrandom::fill(&mut bytes).expect("random bytes");
    bytes
}

/// `len` as a frame header (a LEB128 varint).
pub fn frame_header(len: usize) -> Vec<u8> {
    let mut out = [0; 5];
    let n = meshtalk_core::frame::write_header(u32::try_from(len).expect("u32"), &mut out)
        .expect("a header fits 5 bytes");
    out[..n].to_vec()
}

/// Reads one frame's body from `stream` (a handshake message or a sealed body).
pub fn read_frame(stream: &mut TcpStream) -> Vec<u8> {
    let mut len = 0usize;
    for i in 0..5 {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).expect("read a frame header");
        len |= usize::from(byte[0] & 0x7f) << (7 * i);
        if byte[0] & 0x80 == 0 {
            let mut body = vec![0; len];
            stream.read_exact(&mut body).expect("read a frame body");
            return body;
        }
    }
    panic!("a frame header over 5 bytes")
}

/// Reads one line (newline included) from `stream`, a byte at a time so that
/// nothing after it is taken.
pub fn read_line(stream: &mut TcpStream) -> Vec<u8> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") {
        stream.read_exact(&mut byte).expect("read a line");
        line.push(byte[0]);
    }
    line
}

/// The bodies of the plain frames `frames`, back to back (as [`frame`] makes them).
pub fn bodies(frames: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = frames;
    while !rest.is_empty() {
        let mut len = 0usize;
        let mut head = 0;
        loop {
            let b = rest[head];
            len |= usize::from(b & 0x7f) << (7 * head);
            head += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
        out.push(&rest[head..head + len]);
        rest = &rest[head + len..];
    }
    out
}

/// `body` framed and sealed by `session` as one message, in a frame: the
/// header of the sealed length, then the ciphertext and its tag.
pub fn seal_body(session: &mut Session, body: &[u8]) -> Vec<u8> {
    let plain = [frame_header(body.len()), body.to_vec()].concat();
    let mut sealed = vec![0; plain.len() + TAG];
    let n = session.encrypt(&plain, &mut sealed).expect("seal a body");
    let mut out = frame_header(n);
    out.extend_from_slice(&sealed[..n]);
    out
}

/// The plain frames `frames` each sealed alone by `session`, as a secure peer
/// may send them.
pub fn seal_frames(session: &mut Session, frames: &[u8]) -> Vec<u8> {
    bodies(frames)
        .into_iter()
        .flat_map(|body| seal_body(session, body))
        .collect()
}

/// The dialler's side of a secure link's opening on `stream`, as `name`: our
/// banner, the node's, then the handshake, our hello in message 3. Returns the
/// session, in transport, and the hello the node sent in message 2.
pub fn handshake(stream: &mut TcpStream, name: &str) -> (Session, Vec<u8>) {
    stream.write_all(BANNER).expect("write banner");
    let answer = read_line(stream);
    assert_eq!(
        answer,
        BANNER,
        "the node's banner: {:?}",
        String::from_utf8_lossy(&answer)
    );
    let mut session =
        Session::new(Role::Initiator, &random32(), &random32(), None, BANNER).expect("a session");
    let mut message = vec![0; 1024];
    let n = session
        .write_handshake(&[], &mut message)
        .expect("message 1");
    stream
        .write_all(&[frame_header(n), message[..n].to_vec()].concat())
        .expect("write message 1");
    let reply = read_frame(stream);
    let mut hello = vec![0; reply.len()];
    let got = session
        .read_handshake(&reply, &mut hello)
        .expect("the node's message 2");
    hello.truncate(got);
    let node_id = 0x6174_7461_636b_0000 | u64::from(FRIENDS.fetch_add(1, Ordering::Relaxed));
    let ours = frame(&Message::Hello {
        minor: MINOR,
        node: node_id,
        name,
    });
    let ours = body_of(&ours).expect("one frame");
    let n = session
        .write_handshake(ours, &mut message)
        .expect("message 3");
    stream
        .write_all(&[frame_header(n), message[..n].to_vec()].concat())
        .expect("write message 3");
    assert_eq!(session.step(), Step::Transport);
    (session, hello)
}

/// A native peer made by hand, speaking protocol 2 through `meshtalk_core`'s
/// Noise [`Session`]: banner, handshake (its hello in message 3), then sealed
/// frames. The node's answers are read and dropped on a thread of its own
/// unless the peer is made with `read: false`.
pub struct Native {
    pub stream: TcpStream,
    /// The node's number for this peer.
    pub peer: u64,
    /// Seals what [`Native::write`] sends.
    pub session: Session,
    /// Tells when the node closed the connection (the reading thread saw its end).
    closed: Option<Receiver<()>>,
}

impl Native {
    /// Dials `node` (a JSON one), greets it as `name` and waits until it shows the peer.
    pub fn join(node: &Node, name: &str, read: bool) -> Native {
        let mut stream = connect(node);
        let (session, _) = handshake(&mut stream, name);
        let connected = node.expect("connected", WAIT, |e| {
            e["alias"].as_str().is_some_and(|a| a.starts_with(name))
        });
        let closed = read.then(|| drain_until_closed(&stream));
        Native {
            stream,
            peer: connected["peer"].as_u64().expect("peer number"),
            session,
            closed,
        }
    }

    /// Writes the plain frames `frames` (made by [`frame`]), each body sealed.
    pub fn write(&mut self, frames: &[u8]) {
        let sealed = self.seal(frames);
        self.write_raw(&sealed);
    }

    /// The plain frames `frames` sealed, to be written later (the session's
    /// nonces advance now: write them before anything sealed after).
    pub fn seal(&mut self, frames: &[u8]) -> Vec<u8> {
        seal_frames(&mut self.session, frames)
    }

    /// `body` (any bytes) framed and sealed, to be written later.
    pub fn seal_body(&mut self, body: &[u8]) -> Vec<u8> {
        seal_body(&mut self.session, body)
    }

    /// Writes raw bytes, not sealed (a frame header, garbage, ...).
    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to the node");
    }

    /// Waits at most `wait` until the node has closed the connection.
    pub fn assert_closed(&self, wait: Duration) {
        match &self.closed {
            Some(closed) => closed
                .recv_timeout(wait)
                .unwrap_or_else(|_| panic!("peer #{} still open after {wait:?}", self.peer)),
            None => {
                assert_closed(&self.stream, wait);
            }
        }
    }
}

/// Reads and drops everything on a thread of its own; the receiver hears when the
/// stream ends (closed or reset by the other side).
pub fn drain_until_closed(stream: &TcpStream) -> Receiver<()> {
    let mut reader = stream.try_clone().expect("clone");
    reader.set_read_timeout(None).expect("no read timeout");
    let (tx, rx) = channel();
    thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = tx.send(());
    });
    rx
}

/// Reads (and drops) until the other side closes or resets `stream`; panics if it
/// is still open after `wait`. Returns what was read.
pub fn assert_closed(stream: &TcpStream, wait: Duration) -> Vec<u8> {
    let deadline = Instant::now() + wait;
    let mut reader = stream;
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "connection still open after {wait:?}; it sent {} bytes: {:?}",
            got.len(),
            String::from_utf8_lossy(&got[..got.len().min(200)])
        );
        reader.set_read_timeout(Some(left)).expect("read timeout");
        match reader.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return got,
        }
    }
}

/// Closes our side for writing only, keeping the read side open.
pub fn half_close(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
}
