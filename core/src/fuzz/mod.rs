//! Fuzz entry points: each takes arbitrary bytes and drives one part of the core.
//!
//! A panic here means a bug in meshtalk, never bad input: the entry points only
//! `assert!` invariants the core promises. They are `no_std` and allocate
//! nothing, so a fuzzer can call them as they are; `tests/tests/fuzz.rs` runs
//! them over a fixed corpus in `cargo test` (as rustls runs `fuzz_deframer`).

use core::fmt::{self, Write};
use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use heapless::{String, Vec};

use crate::command::{self, Command, Grammar, Target, validate_alias};
use crate::display::{Safe, SafeStr, is_safe};
use crate::frame::{Decoded, FrameDecoder};
use crate::node::{Config, Handled, Input, Node, NodeError, Output};
use crate::peers::PeerId;
use crate::time::Instant;
use crate::wire::Message;

mod discovery;
mod handshake;
mod sealed;

pub use discovery::discovery_beacon;
pub use handshake::handshake;
pub use sealed::sealed;

/// The body limit of the fuzzed frame decoders: small, so oversized frames are common.
const FRAME_MAX: usize = 64;

/// Feeds `data` to a frame decoder in chunks whose sizes come from the data,
/// and checks every call's contract and that the items are those of feeding
/// the same bytes in one piece.
///
/// The first byte picks the chunking; the rest is the stream.
pub fn frame_decoder(data: &[u8]) {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let whole = decode_stream(stream, |_| stream.len());
    let chunked = decode_stream(stream, |at| {
        // A chunk size from 1 to 16 (or 1 to 256 when the seed's top bit is set),
        // read from the stream itself.
        let b = stream.get(at).copied().unwrap_or(0) ^ seed;
        if seed & 0x80 == 0 {
            1 + usize::from(b & 0x0f)
        } else {
            1 + usize::from(b)
        }
    });
    assert_eq!(whole, chunked, "the chunking changed what was decoded");
}

/// What a decoder made of a stream, as a digest: `(items, fnv hash, failed)`.
type Digest = (usize, u64, bool);

fn decode_stream(stream: &[u8], mut chunk_len: impl FnMut(usize) -> usize) -> Digest {
    let mut decoder = FrameDecoder::<FRAME_MAX>::new();
    let mut hash = Fnv::new();
    let mut items = 0;
    let mut at = 0;
    while at < stream.len() {
        let end = at.saturating_add(chunk_len(at).max(1)).min(stream.len());
        let chunk = &stream[at..end];
        at = end;
        let mut rest = chunk;
        // Every call but the last on a chunk takes at least one byte.
        let mut calls = 0;
        loop {
            calls += 1;
            assert!(calls <= chunk.len() + 1, "the decoder made no progress");
            let (used, found) = decoder.decode(rest);
            assert!(used <= rest.len(), "consumed more than was given");
            match found {
                Decoded::NeedMore => {
                    assert_eq!(used, rest.len(), "NeedMore left bytes unread");
                    break;
                }
                Decoded::Frame(body) => {
                    assert!(used > 0, "a frame from no bytes");
                    assert!(body.len() <= FRAME_MAX, "a frame over the limit");
                    items += 1;
                    hash.write(&[0]);
                    hash.write(&(body.len() as u32).to_le_bytes());
                    hash.write(body);
                    assert!(decoder.is_at_boundary(), "not at a boundary after a frame");
                }
                Decoded::Error(e) => {
                    assert!(used > 0, "an error from no bytes");
                    items += 1;
                    hash.write(&[1]);
                    let _ = write!(hash, "{e}");
                    if e.is_fatal() {
                        assert!(decoder.is_failed(), "a fatal error that is not sticky");
                        let after = rest.get(used..).unwrap_or_default();
                        assert!(
                            matches!(decoder.decode(after), (0, Decoded::Error(e2)) if e2 == e),
                            "a failed decoder went on decoding"
                        );
                        return (items, hash.0, true);
                    }
                }
            }
            rest = rest.get(used..).unwrap_or_default();
        }
    }
    (items, hash.0, false)
}

/// Decodes `data` as one frame body; a message that decodes must encode into
/// at most `frame_len()` bytes and decode back to itself.
pub fn wire_decode(data: &[u8]) {
    let msg = match Message::decode(data) {
        Ok(msg) => msg,
        Err(e) => {
            let _ = write!(Sink::default(), "{e}");
            return;
        }
    };
    round_trip(&msg);
}

/// The room for one re-encoded frame in [`wire_decode`] and [`node`].
const ENCODE_ROOM: usize = 1024;

/// Encodes `msg` as a frame, decodes it again, and checks it is the same.
fn round_trip(msg: &Message<'_>) {
    let mut buf = [0u8; ENCODE_ROOM];
    let bound = msg.frame_len();
    let Some(out) = buf.get_mut(..bound) else {
        return;
    };
    let n = match msg.encode_frame(out) {
        Ok(n) => n,
        // An oracle, like every assert here: reaching it is a bug in the core.
        Err(e) => panic!("frame_len() is not enough room: {e}"),
    };
    assert!(n <= bound, "frame_len() is below the encoded length");
    let mut decoder = FrameDecoder::<ENCODE_ROOM>::new();
    let frame = buf.get(..n).unwrap_or_default();
    let (used, found) = decoder.decode(frame);
    assert_eq!(used, n, "an encoded frame was not one whole frame");
    let Decoded::Frame(body) = found else {
        // An oracle: a frame we encoded must decode as one.
        panic!("an encoded frame did not decode as a frame");
    };
    assert_eq!(
        Message::decode(body),
        Ok(*msg),
        "a message did not round-trip"
    );
}

/// Parses `data` (as text, invalid UTF-8 replaced) as a command line and shows
/// the command or the error; an error's text must be safe for a terminal.
pub fn command_parse(data: &[u8]) {
    let mut line = String::<1024>::new();
    lossy(data, &mut line);
    for grammar in [Grammar::Commands, Grammar::Chat] {
        match command::parse_in(&line, grammar) {
            Ok(None) => assert!(line.trim().is_empty(), "a command line taken as blank"),
            Ok(Some(command)) => {
                let _ = write!(Sink::default(), "{command:?}");
                check_command(&command);
            }
            Err(e) => {
                let mut sink = Sink::default();
                let _ = write!(sink, "{e}");
                assert!(sink.safe, "a parse error shows unsafe text: {e:?}");
            }
        }
    }
}

/// What the command language promises about a parsed command.
fn check_command(command: &Command<'_>) {
    let check_target = |target: &Target<'_>| {
        let mut sink = Sink::default();
        let _ = write!(sink, "{target}");
        assert!(sink.safe, "a target shows unsafe text");
        if let Target::Id(n) = target {
            assert!(*n >= 1, "peer number 0");
        }
    };
    match command {
        Command::Connect { port, alias, .. } => {
            assert!(*port >= 1, "port 0");
            if let Some(alias) = alias {
                assert!(validate_alias(alias).is_ok(), "a bad alias got through");
            }
        }
        Command::Send { target, text, all } => {
            assert!(!all.is_empty(), "send with nothing to send");
            assert!(all.ends_with(text), "send text is not a suffix of all");
            assert_eq!(
                target.is_none(),
                text.len() == all.len(),
                "send target/text split"
            );
            if let Some(target) = target {
                check_target(target);
            }
        }
        Command::Broadcast { text } | Command::Say { text } => {
            assert!(!text.is_empty(), "a message of nothing")
        }
        Command::Me { action } => assert!(!action.is_empty(), "an action of nothing"),
        Command::Nick { name } => assert!(validate_alias(name).is_ok(), "a bad name got through"),
        Command::Log { file } => assert!(file.is_none_or(|f| !f.is_empty()), "an empty file name"),
        Command::ConnectName { name } => {
            assert!(
                !name.is_empty()
                    && !name.contains(':')
                    && name.parse::<core::net::IpAddr>().is_err(),
                "an address taken for a node's name"
            )
        }
        Command::Whoami | Command::Nearby => {}
        Command::Verify { target } => {
            if let Some(target) = target {
                check_target(target);
            }
        }
        Command::Trust { name } => assert!(validate_alias(name).is_ok(), "a bad name got through"),
        Command::Disconnect { target } => {
            if let Some(target) = target {
                check_target(target);
            }
        }
        Command::SetAlias { target, alias } => {
            check_target(target);
            assert!(validate_alias(alias).is_ok(), "a bad alias got through");
        }
        Command::Help { topic } => {
            if let Some(topic) = topic {
                assert!(
                    command::help_text(Some(topic)).is_some(),
                    "help for no command"
                );
            }
        }
        Command::List | Command::Exit => {}
    }
}

/// Shows `data` with [`Safe`]: nothing that drives a terminal may come out, and
/// text that needs no escaping comes out unchanged.
pub fn display(data: &[u8]) {
    let mut sink = Sink::default();
    let _ = write!(sink, "{}", Safe(data));
    assert!(sink.safe, "Safe let a control character through");
    assert!(sink.len >= data.len().min(1), "Safe dropped everything");
    if let Ok(text) = core::str::from_utf8(data) {
        let mut same = Same::new(data);
        let _ = write!(same, "{}", SafeStr(text));
        assert_eq!(
            is_safe(text),
            same.equal && same.rest.is_empty(),
            "SafeStr changed safe text, or left unsafe text alone"
        );
        // Into a fixed string too, where it fits.
        let mut fixed = String::<256>::new();
        if write!(fixed, "{}", Safe(data)).is_ok() {
            assert!(is_safe(&fixed), "Safe let a control character through");
        }
    }
}

/// The node under fuzz: 4 peers, frames of 256 bytes, 1024 bytes of outputs.
type FuzzNode = Node<4, 256, 1024>;

/// This node's id; a hello with it is the node talking to itself.
const NODE_ID: u64 = 0x4d54;

/// Most polls one drain may take: every job queue slot, each a fan-out to every peer.
const MAX_POLLS: usize = 64 * 5 + 8;

/// Interprets `data` as a sequence of inputs to a small node and checks that it
/// never panics, that every drain ends within [`MAX_POLLS`] polls, and that a
/// drained node takes the next input.
///
/// Each input is an opcode byte and its operands; the data running out ends the run.
pub fn node(data: &[u8]) {
    let Ok(config) = Config::new("me", NODE_ID) else {
        return;
    };
    let mut run = Run {
        node: FuzzNode::new(config),
        now: Instant::ZERO,
        wake: None,
        peers: Vec::new(),
        data,
    };
    run.drain();
    while let Some(op) = run.byte() {
        run.step(op);
    }
}

struct Run<'d> {
    node: FuzzNode,
    now: Instant,
    wake: Option<Instant>,
    /// Peers seen, stale ones included (the oldest forgotten first).
    peers: Vec<PeerId, 16>,
    data: &'d [u8],
}

impl<'d> Run<'d> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    fn take(&mut self, n: usize) -> &'d [u8] {
        let (taken, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        taken
    }

    fn peer(&mut self) -> Option<PeerId> {
        let b = usize::from(self.byte()?);
        self.peers.get(b % self.peers.len().max(1)).copied()
    }

    fn remember(&mut self, peer: PeerId) {
        if self.peers.contains(&peer) {
            return;
        }
        if self.peers.is_full() {
            self.peers.remove(0);
        }
        let _ = self.peers.push(peer);
    }

    fn addr(b: u8) -> SocketAddr {
        let ip = Ipv4Addr::new(10, 0, 0, 1 + b % 3);
        SocketAddr::new(IpAddr::V4(ip), 1000 + u16::from(b >> 6))
    }

    fn step(&mut self, op: u8) {
        match op % 10 {
            0 => {
                let Some(b) = self.byte() else { return };
                let addr = Self::addr(b);
                self.input(Input::Accepted {
                    addr,
                    entropy: [0; 32],
                });
            }
            1 => {
                // A banner, then whatever follows.
                let Some(peer) = self.peer() else { return };
                let n = usize::from(self.byte().unwrap_or(0) % 32);
                let mut bytes = Vec::<u8, 64>::new();
                let _ = bytes.extend_from_slice(b"MESHTALK/1 x\n");
                let _ = bytes.extend_from_slice(self.take(n));
                self.receive(peer, &bytes);
            }
            2 => {
                let Some(peer) = self.peer() else { return };
                let n = usize::from(self.byte().unwrap_or(0));
                let bytes = self.take(n);
                self.receive(peer, bytes);
            }
            3 => {
                // A well-formed frame.
                let Some(peer) = self.peer() else { return };
                let mut frame = [0u8; 300];
                if let Some(n) = self.frame(&mut frame) {
                    self.receive(peer, &frame[..n]);
                }
            }
            4 => {
                // A command typed as text.
                let n = usize::from(self.byte().unwrap_or(0) % 48);
                let bytes = self.take(n);
                let mut line = String::<256>::new();
                lossy(bytes, &mut line);
                if let Ok(Some(command)) = command::parse(&line) {
                    self.input(Input::Command(command));
                }
            }
            5 => {
                // A command likely to do something.
                let Some(b) = self.byte() else { return };
                let n = self.byte().unwrap_or(1) % 8;
                let mut line = String::<64>::new();
                let _ = match b % 9 {
                    0 => write!(line, "send #{n} hi"),
                    1 => write!(line, "send hello there"),
                    2 => write!(line, "broadcast room {n}"),
                    3 => write!(line, "connect 10.0.0.{n} 7000"),
                    4 => write!(line, "connect 10.0.0.{n} 7000 al{n}"),
                    5 => write!(line, "disconnect #{n}"),
                    6 => write!(line, "set_alias #{n} x{n}"),
                    7 => write!(line, "send 10.0.0.{n} hi"),
                    _ => write!(line, "exit"),
                };
                if let Ok(Some(command)) = command::parse(&line) {
                    self.input(Input::Command(command));
                }
            }
            6 => {
                let Some(peer) = self.peer() else { return };
                let b = self.byte().unwrap_or(0);
                if b & 1 == 0 {
                    let addr = Self::addr(b >> 1);
                    self.input(Input::Connected {
                        peer,
                        addr,
                        entropy: [0; 32],
                    });
                } else {
                    let reason = "refused";
                    self.input(Input::ConnectFailed { peer, reason });
                }
            }
            7 | 8 => {
                // Time passes: to the wake-up asked for, or by a step from the data.
                let b = self.byte().unwrap_or(0);
                let next = match self.wake {
                    Some(at) if b & 1 == 0 => at,
                    _ => Instant::from_millis(u64::from(b) * 20),
                };
                self.now = self.now.max(next);
                // With 8, the shell holds bytes of every peer it knows (flow control).
                let known = self.peers.clone();
                let held: &[PeerId] = if op % 10 == 8 { &known } else { &[] };
                self.input(Input::Timeout { held });
            }
            _ => {
                let Some(peer) = self.peer() else { return };
                let b = self.byte().unwrap_or(0);
                let error = if b & 1 == 0 { None } else { Some("reset") };
                self.input(Input::Closed { peer, error });
            }
        }
    }

    /// Encodes a message chosen by the data into `out`.
    fn frame(&mut self, out: &mut [u8]) -> Option<usize> {
        let kind = self.byte()?;
        let a = self.byte().unwrap_or(0);
        let n = usize::from(self.byte().unwrap_or(0) % 40);
        let raw = self.take(n);
        let text = match core::str::from_utf8(raw) {
            Ok(text) => text,
            Err(e) => core::str::from_utf8(&raw[..e.valid_up_to()]).unwrap_or_default(),
        };
        let msg = match kind % 6 {
            0 => Message::Hello {
                minor: 0,
                // Sometimes this very node.
                node: if a == 0 { NODE_ID } else { u64::from(a) },
                name: if text.is_empty() { "peer" } else { text },
            },
            1 => Message::Chat {
                id: u32::from(a),
                text,
            },
            2 => Message::Ack { id: u32::from(a) },
            3 => Message::Broadcast {
                origin: u64::from(a % 4),
                seq: u32::from(a >> 2),
                hops: a % 3,
                name: "o",
                text,
            },
            4 => Message::Bye { reason: text },
            _ => Message::Hello {
                minor: 1,
                node: 7,
                name: "x",
            },
        };
        msg.encode_frame(out).ok()
    }

    /// Gives a peer bytes, draining and feeding the rest until all are taken.
    fn receive(&mut self, peer: PeerId, bytes: &[u8]) {
        let mut rest = bytes;
        let mut rounds = 0;
        loop {
            rounds += 1;
            // Each round takes a byte, or makes room (a drain) for the next to.
            assert!(
                rounds <= 2 * bytes.len() + 2,
                "the node stopped taking bytes"
            );
            let result = self
                .node
                .handle_input(self.now, Input::Received { peer, bytes: rest });
            let taken = match result {
                Ok(Handled::Consumed(n)) => n,
                // An oracle: the node's contract is that Received answers Consumed.
                other => panic!("Received answered {other:?}"),
            };
            assert!(taken <= rest.len(), "took more bytes than given");
            rest = &rest[taken..];
            self.drain();
            if rest.is_empty() {
                return;
            }
        }
    }

    fn input(&mut self, input: Input<'_>) {
        match self.node.handle_input(self.now, input) {
            Ok(Handled::Accepted(peer)) => self.remember(peer),
            // An oracle: after a full drain the node must take input.
            Err(NodeError::Busy) => panic!("a drained node is busy"),
            Ok(_) | Err(_) => {}
        }
        self.drain();
    }

    /// Polls until the timeout, as the run loop does.
    fn drain(&mut self) {
        let mut connects: Vec<PeerId, MAX_POLLS> = Vec::new();
        let mut polls = 0;
        loop {
            polls += 1;
            assert!(polls <= MAX_POLLS, "a drain did not end");
            match self.node.poll_output(self.now) {
                Output::Timeout(at) => {
                    self.wake = at;
                    break;
                }
                Output::Connect { peer, .. } => {
                    let _ = connects.push(peer);
                }
                Output::Transmit { data, .. } => assert!(!data.is_empty(), "an empty write"),
                Output::Close { .. } => {}
                Output::Event(event) => {
                    let _ = write!(Sink::default(), "{event:?}");
                }
            }
        }
        for peer in connects {
            self.remember(peer);
        }
        let mut count = 0;
        for (i, p) in self.node.peers().enumerate() {
            count += 1;
            assert!(
                self.node
                    .peers()
                    .skip(i + 1)
                    .all(|q| q.id != p.id && q.alias != p.alias),
                "two peers share an id or an alias"
            );
        }
        assert!(count <= 4, "more peers than slots");
    }
}

/// `data` as text into `out`, each invalid sequence as U+FFFD, as much as fits.
fn lossy<const N: usize>(data: &[u8], out: &mut String<N>) {
    for chunk in data.utf8_chunks() {
        for c in chunk.valid().chars() {
            if out.push(c).is_err() {
                return;
            }
        }
        if !chunk.invalid().is_empty() && out.push(char::REPLACEMENT_CHARACTER).is_err() {
            return;
        }
    }
}

/// A `fmt::Write` that counts what is written and notes anything unsafe for a terminal.
pub(super) struct Sink {
    len: usize,
    safe: bool,
}

impl Default for Sink {
    fn default() -> Self {
        Sink { len: 0, safe: true }
    }
}

impl Write for Sink {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.len += s.len();
        self.safe &= is_safe(s);
        Ok(())
    }
}

/// A `fmt::Write` that compares what is written with `rest`.
struct Same<'a> {
    rest: &'a [u8],
    equal: bool,
}

impl<'a> Same<'a> {
    fn new(expected: &'a [u8]) -> Self {
        Same {
            rest: expected,
            equal: true,
        }
    }
}

impl Write for Same<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        match self.rest.strip_prefix(s.as_bytes()) {
            Some(rest) => self.rest = rest,
            None => {
                self.equal = false;
                self.rest = &[];
            }
        }
        Ok(())
    }
}

/// FNV-1a, to compare what two decoders saw without keeping it.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

impl Write for Fnv {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write(s.as_bytes());
        Ok(())
    }
}
