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
        Command::Whoami => {}
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
struct Sink {
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

// ---- the Noise handshake ----

use crate::noise::{
    self, KEY_LEN, LocalError, MAX_MESSAGE, NoiseError, PeerError, Role, Session, Step,
};

/// The banner both sides bind into the prologue, unless the data picks another.
const HANDSHAKE_BANNER: &[u8] = b"MESHTALK/2\n";

/// The longest message or payload the data gives in one piece.
const MAX_PIECE: usize = 512;

/// Room for a handshake message, a payload, or a transport message of a piece.
const NOISE_ROOM: usize = MAX_PIECE + 128;

/// Calls one attacker-driven session takes at most.
const MAX_ATTACK_CALLS: usize = 8;

/// Transport messages an honest pair exchanges at most.
const MAX_TRANSPORT: u8 = 4;

/// A message one byte over Noise's limit, to reach the length checks.
static TOO_LONG: [u8; MAX_MESSAGE + 1] = [0; MAX_MESSAGE + 1];

/// Drives Noise sessions with data-chosen keys and checks what a session
/// promises: no panic; a [`NoiseError::Peer`] error leaves it [`Step::Failed`]
/// for good, blamed on the right message; a [`NoiseError::Local`] one changes
/// nothing; an honest exchange completes with one handshake hash and
/// round-trips transport messages; a damaged one never completes on both sides.
///
/// Byte 0 picks the mode (its low 2 bits) and flags, byte 1 varies the keys:
/// 0 is a responder and 1 an initiator fed the data as every message they
/// read; 2 and 3 an honest pair whose data says which message to damage.
pub fn handshake(data: &[u8]) {
    let mut data = Pieces { data };
    let (Some(mode), Some(vary)) = (data.byte(), data.byte()) else {
        return;
    };
    match mode & 3 {
        0 => attack(Role::Responder, mode, vary, &mut data),
        1 => attack(Role::Initiator, mode, vary, &mut data),
        _ => pair(mode, vary, &mut data),
    }
}

/// A 32-byte secret per `label`, varied by the data's byte `vary`.
fn secret(label: u8, vary: u8) -> [u8; KEY_LEN] {
    core::array::from_fn(|i| match i {
        0 => vary,
        1 => label ^ vary.rotate_left(3),
        _ => label.wrapping_mul(29).wrapping_add(i as u8),
    })
}

/// The data read as bytes and as length-prefixed pieces.
struct Pieces<'d> {
    data: &'d [u8],
}

impl<'d> Pieces<'d> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    /// A piece: a length byte and that many bytes; 254 is [`TOO_LONG`], and 255
    /// the rest of the data (at most [`MAX_PIECE`] bytes).
    fn piece(&mut self) -> &'d [u8] {
        let n = match self.byte() {
            None => 0,
            Some(254) => return &TOO_LONG,
            Some(255) => MAX_PIECE,
            Some(n) => usize::from(n),
        };
        let (taken, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        taken
    }

    /// A length for a short output buffer, when the flag asks for misuse.
    fn short(&mut self, misuse: bool) -> Option<usize> {
        if !misuse {
            return None;
        }
        match self.byte()? {
            b if b & 1 == 1 => Some(usize::from(b >> 1)),
            _ => None,
        }
    }
}

/// One session call.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Call {
    Write,
    Read,
    Encrypt,
    Decrypt,
}

/// One session and what the blame of its errors depends on.
struct Side {
    session: Session,
    role: Role,
    room: bool,
    /// Handshake messages it has read.
    reads: u8,
}

impl Side {
    fn new(role: Role, vary: u8, room: Option<&[u8; KEY_LEN]>, banner: &[u8]) -> Option<Side> {
        let label = if role == Role::Initiator { 1 } else { 3 };
        let made = Session::new(
            role,
            &secret(label, vary),
            &secret(label + 1, vary),
            room,
            banner,
        );
        match made {
            Ok(session) => {
                assert!(
                    banner.len() <= crate::limits::MAX_BANNER,
                    "a long banner taken"
                );
                let step = if role == Role::Initiator {
                    Step::Write
                } else {
                    Step::Read
                };
                assert_eq!(session.step(), step, "a new session expects the wrong step");
                Some(Side {
                    session,
                    role,
                    room: room.is_some(),
                    reads: 0,
                })
            }
            Err(e) => {
                assert_eq!(
                    e,
                    LocalError::BannerTooLong { len: banner.len() },
                    "a new session refused"
                );
                show(&e);
                None
            }
        }
    }

    /// Makes `call` with `input` into `out` and checks the result; a short
    /// buffer from the data is tried first and must change nothing.
    fn call(
        &mut self,
        call: Call,
        input: &[u8],
        out: &mut [u8],
        short: Option<usize>,
    ) -> Option<usize> {
        if let Some(len) = short.filter(|&len| len < out.len()) {
            let (before, overhead) = (self.session.step(), self.session.overhead());
            match self.raw(call, input, &mut out[..len]) {
                Err(NoiseError::Local(LocalError::BufferTooSmall { needed })) => {
                    assert!(needed > len, "BufferTooSmall with room enough");
                    assert_eq!(
                        self.session.step(),
                        before,
                        "a local error changed the step"
                    );
                }
                result => return self.check(call, input, (before, overhead), result, len),
            }
        }
        let (before, overhead) = (self.session.step(), self.session.overhead());
        let result = self.raw(call, input, out);
        self.check(call, input, (before, overhead), result, out.len())
    }

    fn raw(&mut self, call: Call, input: &[u8], out: &mut [u8]) -> Result<usize, NoiseError> {
        let s = &mut self.session;
        match call {
            Call::Write => s.write_handshake(input, out),
            Call::Read => s.read_handshake(input, out),
            Call::Encrypt => s.encrypt(input, out),
            Call::Decrypt => s.decrypt(input, out),
        }
    }

    /// Checks one call's result against what the session promises.
    fn check(
        &mut self,
        call: Call,
        input: &[u8],
        (before, overhead): (Step, usize),
        result: Result<usize, NoiseError>,
        room: usize,
    ) -> Option<usize> {
        let after = self.session.step();
        let _ = write!(Sink::default(), "{:?}", self.session);
        if before == Step::Failed {
            assert_eq!(
                result,
                Err(LocalError::Failed.into()),
                "a failed session took a call"
            );
            return None;
        }
        let first = self.reads == 0;
        if call == Call::Read && !matches!(result, Err(NoiseError::Local(_))) {
            self.reads += 1;
        }
        match result {
            Ok(n) => {
                assert!(n <= room, "wrote past the buffer");
                assert_ne!(after, Step::Failed, "failed with no error");
                // The overhead said what a message adds to its payload.
                match call {
                    Call::Write | Call::Encrypt => {
                        assert_eq!(n, input.len() + overhead, "wrong length")
                    }
                    Call::Read | Call::Decrypt => {
                        assert_eq!(n + overhead, input.len(), "wrong length")
                    }
                }
                if after == Step::Transport {
                    assert!(
                        self.session.handshake_hash().is_some(),
                        "a transport with no hash"
                    );
                    assert!(
                        self.session.remote_static().is_some(),
                        "a transport with no peer key"
                    );
                }
                Some(n)
            }
            Err(NoiseError::Peer(e)) => {
                show(&e);
                assert!(
                    matches!(call, Call::Read | Call::Decrypt),
                    "our own write blamed on the peer"
                );
                let expected = if input.len() > MAX_MESSAGE {
                    PeerError::TooLong { len: input.len() }
                } else if call == Call::Decrypt {
                    PeerError::Integrity
                } else if self.room && first {
                    PeerError::RoomKey
                } else {
                    let message = match self.role {
                        Role::Initiator => 2,
                        Role::Responder => 1 + 2 * self.reads.saturating_sub(1),
                    };
                    PeerError::Handshake { message }
                };
                assert_eq!(e, expected, "a peer error blamed on the wrong thing");
                assert_dead(&mut self.session);
                None
            }
            Err(NoiseError::Local(e)) => {
                show(&e);
                assert_ne!(e, LocalError::Failed, "a live session answered Failed");
                assert_eq!(after, before, "a local error changed the step");
                None
            }
        }
    }

    /// Makes a call that does not fit the step: a local error that changes nothing.
    fn out_of_turn(&mut self, pick: u8) {
        let before = self.session.step();
        let call = match (before, pick % 3) {
            (Step::Failed, _) => return,
            (Step::Write, 0) | (Step::Transport, 0) => Call::Read,
            (Step::Read, 0) | (Step::Transport, _) => Call::Write,
            (_, 1) => Call::Encrypt,
            _ => Call::Decrypt,
        };
        let mut out = [0u8; 128];
        let result = self.raw(call, &[0; 96], &mut out);
        assert_eq!(
            result,
            Err(LocalError::OutOfTurn { expected: before }.into()),
            "a call out of turn"
        );
        assert_eq!(
            self.session.step(),
            before,
            "a call out of turn changed the step"
        );
    }
}

/// A failed session refuses every call with [`LocalError::Failed`] and shows no keys.
fn assert_dead(s: &mut Session) {
    let failed = Err(NoiseError::Local(LocalError::Failed));
    let mut out = [0u8; 128];
    assert_eq!(
        s.step(),
        Step::Failed,
        "a peer error did not fail the session"
    );
    assert_eq!(
        s.read_handshake(&[0; 96], &mut out),
        failed,
        "read after failing"
    );
    assert_eq!(
        s.write_handshake(&[], &mut out),
        failed,
        "write after failing"
    );
    assert_eq!(s.encrypt(b"x", &mut out), failed, "encrypt after failing");
    assert_eq!(
        s.decrypt(&TOO_LONG, &mut out),
        failed,
        "decrypt after failing"
    );
    assert!(
        s.remote_static().is_none(),
        "a failed session shows a peer key"
    );
    assert!(
        s.handshake_hash().is_none(),
        "a failed session shows a hash"
    );
    assert_eq!(s.overhead(), 0, "a failed session has an overhead");
}

/// Shows an error: its text must say something and be safe for a terminal.
fn show(e: &dyn fmt::Display) {
    let mut sink = Sink::default();
    let _ = write!(sink, "{e}");
    assert!(
        sink.len > 0 && sink.safe,
        "an error's text is empty or unsafe"
    );
}

/// One session of `role` against an attacker: the data is every message it
/// reads, every payload it writes, and the transport messages it decrypts.
///
/// Flags in `mode`: 4 a room key, 32 a banner from the data, 64 misuse calls.
fn attack(role: Role, mode: u8, vary: u8, data: &mut Pieces<'_>) {
    let room = secret(5, vary);
    let banner = if mode & 32 != 0 {
        data.piece()
    } else {
        HANDSHAKE_BANNER
    };
    let misuse = mode & 64 != 0;
    let Some(mut side) = Side::new(role, vary, (mode & 4 != 0).then_some(&room), banner) else {
        return;
    };
    let mut out = [0u8; NOISE_ROOM];
    for _ in 0..MAX_ATTACK_CALLS {
        if data.data.is_empty() {
            return;
        }
        if misuse {
            let pick = data.byte().unwrap_or(0);
            if pick & 1 == 1 {
                side.out_of_turn(pick >> 1);
            }
        }
        let short = data.short(misuse);
        let call = match side.session.step() {
            Step::Write => Call::Write,
            Step::Read => Call::Read,
            Step::Transport if data.byte().unwrap_or(0) & 1 == 1 => Call::Encrypt,
            Step::Transport => Call::Decrypt,
            Step::Failed => return,
        };
        let input = data.piece();
        side.call(call, input, &mut out, short);
    }
}

/// How the data damages one message of an honest pair.
#[derive(Clone, Copy)]
struct Damage {
    /// Which message: 0 to 2 the handshake's, 3 on the transport messages.
    at: u8,
    /// 0 flip bits, 1 truncate, 2 extend, 3 empty it (a transport message: replay it).
    kind: u8,
    /// Where to flip or truncate, or how much to add.
    pos: u8,
    /// The bits to flip, or the byte to add.
    mask: u8,
}

impl Damage {
    /// Damages `msg[..len]` in `buf`, returning the new length (never `len` with the same bytes).
    fn apply(self, buf: &mut [u8], len: usize) -> usize {
        match self.kind {
            0 if len > 0 => {
                let at = usize::from(self.pos) % len;
                buf[at] ^= self.mask.max(1);
                len
            }
            1 if len > 0 => usize::from(self.pos) % len,
            2 => {
                let end = (len + 1 + usize::from(self.pos % 16)).min(buf.len());
                buf[len..end].fill(self.mask);
                end
            }
            _ => 0,
        }
    }
}

/// An initiator and a responder with keys from the data exchange the handshake
/// and transport messages, one of which the data may damage.
///
/// Flags in `mode`: 4 the responder has a room key, 8 the initiator has one,
/// 16 theirs differ, 32 the responder binds another banner, 64 misuse calls.
fn pair(mode: u8, vary: u8, data: &mut Pieces<'_>) {
    let (room_r, room_i) = (
        secret(5, vary),
        secret(if mode & 16 != 0 { 6 } else { 5 }, vary),
    );
    let room_r = (mode & 4 != 0).then_some(&room_r);
    let room_i = (mode & 8 != 0).then_some(&room_i);
    let banner_r = if mode & 32 != 0 {
        data.piece()
    } else {
        HANDSHAKE_BANNER
    };
    let misuse = mode & 64 != 0;
    let damage = Damage {
        at: data.byte().unwrap_or(0) % 8,
        kind: data.byte().unwrap_or(0) % 4,
        pos: data.byte().unwrap_or(0),
        mask: data.byte().unwrap_or(0),
    };
    let (Some(mut i), Some(mut r)) = (
        Side::new(Role::Initiator, vary, room_i, HANDSHAKE_BANNER),
        Side::new(Role::Responder, vary, room_r, banner_r),
    ) else {
        return;
    };
    let matched = room_i == room_r && banner_r == HANDSHAKE_BANNER;
    let mut msg = [0u8; NOISE_ROOM];
    let mut got = [0u8; NOISE_ROOM];

    // The handshake: messages 1 and 3 from the initiator, 2 from the responder.
    for at in 0..3u8 {
        let (from, to) = if at % 2 == 0 {
            (&mut i, &mut r)
        } else {
            (&mut r, &mut i)
        };
        let payload = payload(from, Call::Write, data);
        if misuse {
            from.out_of_turn(data.byte().unwrap_or(0));
            to.out_of_turn(data.byte().unwrap_or(0));
        }
        let short = data.short(misuse);
        let Some(n) = from.call(Call::Write, payload, &mut msg, short) else {
            panic!("an honest handshake message was not written");
        };
        let damaged = damage.at == at;
        let n = if damaged {
            damage.apply(&mut msg, n)
        } else {
            n
        };
        let short = data.short(misuse);
        let read = to.call(Call::Read, &msg[..n], &mut got, short);
        match read {
            Some(len) if matched && damage.at > at => {
                assert_eq!(&got[..len], payload, "a payload changed")
            }
            Some(_) => {}
            None => {
                assert!(!matched || damage.at <= at, "an honest handshake failed");
                if room_r.is_some() && room_i != room_r {
                    assert_eq!(at, 0, "a node without our room key passed message 1");
                }
                return;
            }
        }
    }
    // Every message was read: that takes the same keys, banner and bytes.
    assert!(
        matched && damage.at >= 3,
        "a damaged or mismatched handshake completed"
    );
    let steps = (i.session.step(), r.session.step());
    assert_eq!(
        steps,
        (Step::Transport, Step::Transport),
        "an honest handshake did not finish"
    );
    assert_eq!(
        i.session.handshake_hash(),
        r.session.handshake_hash(),
        "the two sides' handshake hashes differ"
    );
    assert_eq!(
        i.session.remote_static(),
        Some(&noise::public_key(&secret(3, vary))),
        "the initiator took another static key"
    );
    assert_eq!(
        r.session.remote_static(),
        Some(&noise::public_key(&secret(1, vary))),
        "the responder took another static key"
    );

    // Transport messages, either way; the damaged one must fail its decrypt.
    let count = data.byte().unwrap_or(0);
    for k in 0..(count % (MAX_TRANSPORT + 1)) {
        let (from, to) = if count >> (4 + k) & 1 == 0 {
            (&mut i, &mut r)
        } else {
            (&mut r, &mut i)
        };
        let text = payload(from, Call::Encrypt, data);
        let short = data.short(misuse);
        let Some(n) = from.call(Call::Encrypt, text, &mut msg, short) else {
            panic!("a transport message was not written");
        };
        if damage.at != 3 + k {
            let short = data.short(misuse);
            let len = to.call(Call::Decrypt, &msg[..n], &mut got, short);
            assert_eq!(
                len.map(|len| &got[..len]),
                Some(text),
                "a message did not round-trip"
            );
            continue;
        }
        let n = if damage.kind == 3 {
            // A replay: the first copy is read, the second refused.
            let len = to.call(Call::Decrypt, &msg[..n], &mut got, None);
            assert_eq!(
                len.map(|len| &got[..len]),
                Some(text),
                "a message did not round-trip"
            );
            n
        } else {
            damage.apply(&mut msg, n)
        };
        let read = to.call(Call::Decrypt, &msg[..n], &mut got, None);
        assert!(read.is_none(), "a tampered transport message was read");
        // The reader's failure is its own: the sender still encrypts.
        let sent = from.call(Call::Encrypt, b"after", &mut msg, None);
        assert!(sent.is_some(), "a reader's failure failed the sender");
        return;
    }
}

/// A payload from the data for `side`'s next `call`; a [`TOO_LONG`] one is
/// tried first (a local error that changes nothing), then sent empty.
fn payload<'d>(side: &mut Side, call: Call, data: &mut Pieces<'d>) -> &'d [u8] {
    let piece = data.piece();
    if piece.len() <= MAX_PIECE {
        return piece;
    }
    let before = side.session.step();
    let mut out = [0u8; 16];
    let result = side.raw(call, piece, &mut out);
    assert!(
        matches!(result, Err(NoiseError::Local(LocalError::TooLong { .. }))),
        "a payload over a Noise message was not refused as too long"
    );
    assert_eq!(
        side.session.step(),
        before,
        "a local error changed the step"
    );
    &[]
}
