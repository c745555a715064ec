//! The load's clients: one sender and many receivers, speaking plain lines or
//! meshtalk's native protocol. Every message carries its sequence number and
//! the time it was sent, so each receiver checks its stream for lost,
//! duplicated, merged, reordered and damaged messages and measures one-way
//! latency. Every message also names its sender, so in the all-to-all scenario
//! (every client sends and receives) each sender's stream is checked on its own.
//! A message's bytes follow from (sender, seq, send time, size) alone, so each
//! one received is compared whole with what was sent.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use meshtalk_core::frame::{self, Decoded, FrameDecoder};
use meshtalk_core::noise::{Session, TAG};
use meshtalk_core::wire::Message;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use super::now_ns;
use super::secure::{self, Dialler, Fed};

/// What the clients speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Wire {
    /// Newline-terminated text, as netcat would.
    Lines,
    /// The same lines under TLS (`ncat --chat --ssl`), see [`super::tls`].
    Tls,
    /// meshtalk's protocol 2: `MESHTALK/2 XX`, a Noise handshake carrying the hellos, then
    /// framed postcard `Broadcast` messages, each frame's body sealed (see [`super::secure`]).
    Native,
}

/// What a hub writes before each message on a line, which the check strips.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefix {
    /// Nothing: the line is the message (the relay; native frames carry the text alone).
    Bare,
    /// A `<name> ` tag before every line, as meshtalk's hub writes to text peers.
    Tag,
    /// A `<name> ` tag before the first line of each of its reads, as ncat --chat writes
    /// (so most lines have none); `<announce>` lines are its join and leave notices.
    ReadTag,
}

/// The marker that starts a message's text: `#m <seq> <sent_ns> <from>` and padding.
const MARK: &[u8] = b"#m ";
/// The sender's node id in native broadcasts.
const SENDER_NODE: u64 = 0x5e4d_e700_0000_0001;
/// The largest frame body a receiver accepts.
const MAX_FRAME: usize = 4096;

/// The largest sender number a receiver keeps a stream for (anything above is garbled).
const MAX_FROM: u64 = 1 << 16;
/// How far past a sender's highest seq so far a message may be before it is taken for
/// garbled (its seq is not believed, so no table grows to it).
const MAX_AHEAD: u32 = 1 << 20;

/// The sender number of probes: they mark a receiver as having heard the room, nothing more.
pub const PROBE: u32 = 0xffff;

/// The native broadcast's sender name.
const NATIVE_NAME: &str = "s";

/// The node id of sender `from` in native broadcasts and hellos (0: the fan-out sender).
pub fn origin_of(from: u32) -> u64 {
    SENDER_NODE + u64::from(from)
}

/// Writes sender `from`'s message `seq`, `len` bytes of text (more only if the header
/// `#m <seq> <sent_ns> <from> ` alone is longer).
pub fn message_text(from: u32, seq: u32, sent_ns: u64, len: usize, out: &mut Vec<u8>) {
    let start = out.len();
    let _ = write!(out, "#m {seq} {sent_ns} {from} ");
    while out.len() - start < len {
        out.push(b'.');
    }
}

/// Bytes of a postcard varint holding `v`.
fn varint_len(v: u64) -> usize {
    ((u64::BITS - (v | 1).leading_zeros()) as usize).div_ceil(7)
}

/// Bytes of text in sender `from`'s message `seq` so that it takes `size` bytes on the wire:
/// the newline included for lines, the whole sealed frame (length header and tag included)
/// for native.
pub fn text_len(wire: Wire, from: u32, seq: u32, size: usize) -> usize {
    match wire {
        Wire::Lines | Wire::Tls => size.saturating_sub(1),
        Wire::Native => {
            // Body: variant, origin, seq, hops (one byte), name (length, bytes), text (length, bytes).
            let fixed = 1
                + varint_len(origin_of(from))
                + varint_len(u64::from(seq))
                + 1
                + 1
                + NATIVE_NAME.len();
            // A sealed message of one whole frame: the frame's header is inside.
            let frame_of = |len: usize| {
                let body = fixed + varint_len(len as u64) + len;
                let sealed = frame::header_len(body) + body + TAG;
                frame::header_len(sealed) + sealed
            };
            // A guess within a few bytes (the two varints), then bounded steps to the largest fit.
            let mut len = size.saturating_sub(fixed + 3 + TAG);
            for _ in 0..8 {
                if len > 0 && frame_of(len) > size {
                    len -= 1;
                } else if frame_of(len + 1) <= size {
                    len += 1;
                }
            }
            len
        }
    }
}

/// A client's end of its link: the wire, the session once the link is secure, and scratch
/// space, so that encoding a message allocates nothing once warm and makes one frame.
pub struct Link {
    wire: Wire,
    session: Option<Session>,
    /// A message's text, then (native) its plain frame before sealing, or an opened body.
    text: Vec<u8>,
    plain: Vec<u8>,
}

impl Link {
    /// A link speaking `wire`; a native one sends nothing until [`Link::secure`].
    pub fn new(wire: Wire) -> Link {
        Link {
            wire,
            session: None,
            text: Vec::with_capacity(MAX_FRAME),
            plain: Vec::with_capacity(MAX_FRAME + TAG),
        }
    }

    /// A native link whose handshake is done.
    pub fn sealed(session: Session) -> Link {
        let mut link = Link::new(Wire::Native);
        link.secure(session);
        link
    }

    /// The handshake is done: from now on every frame is sealed and opened by `session`.
    pub fn secure(&mut self, session: Session) {
        self.session = Some(session);
    }

    /// Appends sender `from`'s message `seq` as it goes on the wire, `size` bytes there.
    pub fn encode(&mut self, from: u32, seq: u32, size: usize, out: &mut Vec<u8>) {
        let Link {
            wire,
            session,
            text,
            plain,
        } = self;
        text.clear();
        message_text(from, seq, now_ns(), text_len(*wire, from, seq, size), text);
        match wire {
            Wire::Lines | Wire::Tls => {
                out.extend_from_slice(text);
                out.push(b'\n');
            }
            Wire::Native => {
                let msg = Message::Broadcast {
                    origin: origin_of(from),
                    seq,
                    hops: 8,
                    name: NATIVE_NAME,
                    text: std::str::from_utf8(text).unwrap_or(""),
                };
                put(session, plain, &msg, out);
            }
        }
    }

    /// Appends `msg` as one frame, sealed alone; false when the link is not secure (yet).
    pub fn put(&mut self, msg: &Message<'_>, out: &mut Vec<u8>) -> bool {
        put(&mut self.session, &mut self.plain, msg, out)
    }

    /// Opens the sealed frame body `sealed`: its plaintext (1 to `MAX_BATCH` whole frames),
    /// or `None` when it fails its tag
    /// (the session is then dead) or the link is not secure.
    pub fn open(&mut self, sealed: &[u8]) -> Option<&[u8]> {
        let session = self.session.as_mut()?;
        self.plain.resize(sealed.len(), 0);
        let n = session.decrypt(sealed, &mut self.plain).ok()?;
        Some(&self.plain[..n])
    }

    /// Steps the session over a frame skipped unread (over the size limit).
    pub fn skip(&mut self) {
        if let Some(s) = &mut self.session {
            s.skip();
        }
    }
}

/// Appends `msg` to `out` as one frame sealed by `session`, its plain frame put together in
/// `plain` first; false (nothing appended) without a session.
fn put(
    session: &mut Option<Session>,
    plain: &mut Vec<u8>,
    msg: &Message<'_>,
    out: &mut Vec<u8>,
) -> bool {
    let Some(session) = session else {
        return false;
    };
    plain.resize(msg.frame_len(), 0);
    let Ok(n) = msg.encode_frame(plain) else {
        return false;
    };
    secure::seal(session, &plain[..n], out)
}

/// The fan-out sender: its socket, and its link once connected.
pub struct Sender {
    pub stream: StdStream,
    pub link: Link,
    /// TLS: the connection every write goes through.
    tls: Option<Box<rustls::ClientConnection>>,
}

impl Sender {
    /// Connects to the hub, runs the handshake (native) and has a thread read and drop
    /// whatever the hub sends it (ncat announces every join to everyone, and blocks the
    /// whole room on a client that does not read).
    pub fn connect(addr: SocketAddr, wire: Wire) -> io::Result<Sender> {
        let mut stream = connect(addr, None)?;
        let mut link = Link::new(wire);
        if wire == Wire::Native {
            link.secure(secure::dial(&mut stream, "s", 0x5e4d)?);
        }
        if wire == Wire::Tls {
            // No reader thread: one TLS connection is not read and written from two
            // threads; the sender hears only join notices, far below a socket's buffer.
            let tls = Some(Box::new(super::tls::handshake(&mut stream)?));
            return Ok(Sender { stream, link, tls });
        }
        let mut sink = stream.try_clone()?;
        thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            while matches!(sink.read(&mut buf), Ok(n) if n > 0) {}
        });
        Ok(Sender {
            stream,
            link,
            tls: None,
        })
    }

    /// Appends sender `from`'s message `seq`, `size` bytes on the wire, to `out`.
    pub fn encode(&mut self, from: u32, seq: u32, size: usize, out: &mut Vec<u8>) {
        self.link.encode(from, seq, size, out);
    }
}

impl Write for Sender {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.tls {
            Some(tls) => super::tls::write_all(tls, &mut self.stream, buf).map(|()| buf.len()),
            None => self.stream.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// What one receiver saw.
#[derive(Default, Debug, Clone)]
pub struct Tally {
    /// Messages that arrived whole (duplicates included).
    pub received: u64,
    /// Messages that never arrived in any form.
    pub lost: u64,
    pub duplicated: u64,
    /// Lines holding the start of more than one message (counted instead of `garbled`).
    pub merged: u64,
    pub reordered: u64,
    /// Messages whose header names them but whose bytes differ from what was sent.
    pub garbled: u64,
    /// Lines or frames that name no message at all (and are not a hub's known notices).
    pub unknown: u64,
    /// The first few runs of lost messages: (receiver, sender, first seq, last seq).
    pub gaps: Vec<(u32, u32, u32, u32)>,
    /// Latencies in microseconds of messages with seq <= the paced count.
    pub paced_us: Vec<u32>,
    /// Latencies in microseconds of the other messages.
    pub blast_us: Vec<u32>,
}

impl Tally {
    pub fn add(&mut self, other: Tally) {
        self.received += other.received;
        self.lost += other.lost;
        self.duplicated += other.duplicated;
        self.merged += other.merged;
        self.reordered += other.reordered;
        self.garbled += other.garbled;
        self.unknown += other.unknown;
        if self.gaps.len() < 8 {
            self.gaps.extend(other.gaps.into_iter().take(8));
        }
        self.paced_us.extend(other.paced_us);
        self.blast_us.extend(other.blast_us);
    }

    /// Anything wrong with the stream at all.
    pub fn faults(&self) -> u64 {
        self.lost + self.duplicated + self.merged + self.reordered + self.garbled + self.unknown
    }
}

struct Receiver {
    stream: TcpStream,
    /// Its own sender number when it also talks (all-to-all).
    own: Option<u32>,
    /// Bytes of whole messages not yet written, from `out_at`.
    out: Vec<u8>,
    out_at: usize,
    /// The last sequence number it encoded.
    last_seq: u32,
    wire: Wire,
    quickack: bool,
    /// Native: the handshake under way (its banner is written), until the link is secure.
    dialler: Option<Box<Dialler>>,
    link: Link,
    /// TLS: the connection every read goes through.
    tls: Option<Box<rustls::ClientConnection>>,
    /// Lines: the start of a line not yet ended.
    pending: Vec<u8>,
    decoder: Box<FrameDecoder<MAX_FRAME>>,
    check: Check,
    closed: bool,
}

/// What a receiver expects of every message: the wire, the size on it, the hub's prefix.
#[derive(Clone, Copy, Debug)]
pub struct Expect {
    pub wire: Wire,
    /// Bytes a message takes on the wire (see [`text_len`]).
    pub size: usize,
    pub prefix: Prefix,
}

/// The checks of one receiver's stream, per sender.
pub struct Check {
    /// The receiver's index, for reports.
    id: u32,
    expect: Expect,
    streams: Vec<Stream>,
    heard: bool,
    tally: Tally,
    /// When the last whole message came, not yet told to [`Shared::last_delivery_ns`]
    /// (told once a read, not once a message: the readers share that counter).
    last_ns: u64,
}

/// In [`Stream::seen`]: the message was counted lost when a later one came first.
const RELEASED: u8 = 0x80;
/// In [`Stream::seen`]: how many times the message came (saturating).
const ARRIVALS: u8 = 0x7f;

/// What a receiver saw of one sender: per seq, how often it came (and whether it was
/// counted lost early), and the highest seq so far.
#[derive(Default)]
struct Stream {
    seen: Vec<u8>,
    max_seq: u32,
}

/// Shared counters between the receivers and the sender.
#[derive(Default)]
pub struct Shared {
    /// Messages that arrived whole, summed over receivers.
    pub delivered: AtomicU64,
    /// Messages known not to have arrived whole (a later one came first, or it came
    /// damaged), summed over receivers: their window slots are free again.
    pub lost: AtomicU64,
    /// When the last whole message arrived, in ns since [`super::epoch`].
    pub last_delivery_ns: AtomicU64,
    pub ready: AtomicUsize,
    pub stop: AtomicBool,
    pub closed: AtomicUsize,
    /// Receivers connected so far.
    pub connected: AtomicUsize,
    /// Receivers that got at least one message.
    pub heard: AtomicUsize,
    /// All-to-all: clients start sending when set, and finish what they encoded once `quiet`.
    pub go: AtomicBool,
    pub quiet: AtomicBool,
    /// All-to-all: messages encoded by all clients.
    pub sent: AtomicU64,
    /// Per receiver (by index), the highest seq of the fan-out sender (sender 0) it has had,
    /// whole or known lost: the closed loop's sender waits for the lowest.
    pub progress: Vec<AtomicU32>,
    /// A thread the readers unpark after each read that moved a receiver on (the closed
    /// loop's sender, parked while its window is full).
    pub waiter: OnceLock<thread::Thread>,
    /// Why the first receiver that failed its handshake or its link was closed.
    pub why_closed: OnceLock<String>,
}

impl Shared {
    /// Deliveries settled either way: arrived whole or known lost.
    pub fn settled(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed) + self.lost.load(Ordering::Relaxed)
    }

    /// Counters for `receivers` receivers, each with its own [`Shared::progress`].
    pub fn for_receivers(receivers: usize) -> Shared {
        Shared {
            progress: (0..receivers).map(|_| AtomicU32::new(0)).collect(),
            ..Shared::default()
        }
    }

    /// The highest seq of sender 0 that every receiver has had (0 when none has any).
    pub fn slowest(&self) -> u32 {
        self.progress
            .iter()
            .map(|p| p.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0)
    }
}

/// Settings the receivers need to read their streams.
#[derive(Clone, Copy)]
pub struct RxConfig {
    pub wire: Wire,
    /// Bytes a message takes on the wire.
    pub size: usize,
    pub prefix: Prefix,
    pub quickack: bool,
    pub paced: u32,
    /// Every client also sends (all-to-all).
    pub talk: Option<Talk>,
}

/// How all-to-all clients send.
#[derive(Clone, Copy)]
pub struct Talk {
    /// Messages per write.
    pub batch: u32,
    /// Each message reaches this many receivers (N - 1).
    pub fanout: u64,
    /// At most this many deliveries outstanding in the whole room.
    pub in_flight: u64,
}

/// Splits `<tag> rest` into the tag and the rest.
fn split_tag(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = line.strip_prefix(b"<")?;
    let gt = rest.iter().position(|&b| b == b'>')?;
    let (tag, after) = rest.split_at(gt);
    Some((tag, after.strip_prefix(b"> ")?))
}

/// A message's header `#m <seq> <sent_ns> <from> ` read from the start of `text`.
struct Header {
    seq: u64,
    sent_ns: u64,
    from: u64,
    /// Its length, the last space included.
    len: usize,
    /// Whether every number is written as [`message_text`] writes it (no leading zero).
    canonical: bool,
}

/// Reads the header `text` starts with, if it does (numbers of at most 19 digits).
fn parse_header(text: &[u8]) -> Option<Header> {
    let mut at = MARK.len();
    if !text.starts_with(MARK) {
        return None;
    }
    let mut nums = [0u64; 3];
    let mut canonical = true;
    for n in &mut nums {
        let digits = text[at..].iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 19 || text.get(at + digits) != Some(&b' ') {
            return None;
        }
        canonical &= digits == 1 || text[at] != b'0';
        *n = text[at..at + digits]
            .iter()
            .fold(0, |v, &d| v * 10 + u64::from(d - b'0'));
        at += digits + 1;
    }
    Some(Header {
        seq: nums[0],
        sent_ns: nums[1],
        from: nums[2],
        len: at,
        canonical,
    })
}

/// Whether `text`, which starts with `head`, is byte for byte what [`message_text`] writes for
/// the header's numbers and `len` bytes: a header written that way is the same bytes again,
/// so what is left to compare is the padding after it.
fn is_exact(text: &[u8], head: &Header, len: usize) -> bool {
    head.canonical && text.len() == len.max(head.len) && text[head.len..].iter().all(|&b| b == b'.')
}

impl Check {
    /// A check for receiver `id` of messages as `expect` says.
    pub fn new(id: u32, expect: Expect) -> Check {
        Check {
            id,
            expect,
            streams: Vec::new(),
            heard: false,
            tally: Tally::default(),
            last_ns: 0,
        }
    }

    /// Tells `shared` when the last whole message came, if one came since the last call.
    pub fn publish(&mut self, shared: &Shared) {
        if self.last_ns > 0 {
            shared
                .last_delivery_ns
                .fetch_max(self.last_ns, Ordering::Relaxed);
            self.last_ns = 0;
        }
    }

    /// One line as the hub wrote it, newline removed.
    pub fn on_line(&mut self, line: &[u8], paced: u32, shared: &Shared) {
        let text = match (self.expect.prefix, split_tag(line)) {
            (Prefix::ReadTag, Some((b"announce", _))) => return,
            // meshtalk's hub notices (joins, leaves, new names) begin with `* `; every
            // message line begins with `<`, so neither passes for the other.
            (Prefix::Tag, None) if line.starts_with(b"* ") => return,
            (Prefix::Tag | Prefix::ReadTag, Some((_, rest))) => rest,
            (Prefix::ReadTag | Prefix::Bare, None) => line,
            (Prefix::Tag, None) | (Prefix::Bare, Some(_)) => {
                if line.windows(MARK.len()).any(|w| w == MARK) {
                    self.damaged(line);
                } else {
                    self.tally.unknown += 1;
                }
                return;
            }
        };
        self.on_message(text, paced, shared);
    }

    /// One message's text (after the hub's prefix, or a native broadcast's text).
    pub fn on_message(&mut self, text: &[u8], paced: u32, shared: &Shared) {
        let now = now_ns();
        let Some(head) = parse_header(text) else {
            if text.windows(MARK.len()).any(|w| w == MARK) {
                self.damaged(text);
            } else {
                self.tally.unknown += 1;
            }
            return;
        };
        let (seq, sent, from) = (head.seq, head.sent_ns, head.from);
        let max_seq = self.streams.get(from as usize).map_or(0, |st| st.max_seq);
        if from >= MAX_FROM || seq > u64::from(max_seq.saturating_add(MAX_AHEAD)) {
            self.damaged(text);
            return;
        }
        let (from, seq) = (from as u32, seq as u32);
        let len = text_len(self.expect.wire, from, seq, self.expect.size);
        if !is_exact(text, &head, len) {
            self.damaged(text);
            // Known now: it will never arrive whole.
            if from != PROBE {
                self.arrived(from, seq, shared);
                shared.lost.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        if !self.heard {
            self.heard = true;
            shared.heard.fetch_add(1, Ordering::Relaxed);
        }
        if from == PROBE {
            return;
        }
        self.arrived(from, seq, shared);
        self.tally.received += 1;
        shared.delivered.fetch_add(1, Ordering::Relaxed);
        self.last_ns = now;
        let us = (now.saturating_sub(sent) / 1000).min(u32::MAX as u64) as u32;
        if seq <= paced {
            self.tally.paced_us.push(us);
        } else {
            self.tally.blast_us.push(us);
        }
    }

    /// Counts a message that came damaged: merged when it holds the start of another.
    fn damaged(&mut self, text: &[u8]) {
        if text.windows(MARK.len()).filter(|w| *w == MARK).count() > 1 {
            self.tally.merged += 1;
        } else {
            self.tally.garbled += 1;
        }
    }

    /// Notes that sender `from`'s message `seq` came (whole or not): a duplicate, one out of
    /// order, or one past a gap, whose missing messages are counted lost at once.
    fn arrived(&mut self, from: u32, seq: u32, shared: &Shared) {
        let from = from as usize;
        if from >= self.streams.len() {
            self.streams.resize_with(from + 1, Stream::default);
        }
        let st = &mut self.streams[from];
        let idx = seq as usize;
        if idx >= st.seen.len() {
            st.seen.resize((idx + 1).max(st.seen.len() * 2).max(64), 0);
        }
        let mark = st.seen[idx];
        if mark & ARRIVALS > 0 {
            self.tally.duplicated += 1;
        } else if seq < st.max_seq {
            self.tally.reordered += 1;
            if mark & RELEASED != 0 {
                // Counted lost when its successor came; it was late, not lost.
                shared.lost.fetch_sub(1, Ordering::Relaxed);
            }
        }
        st.seen[idx] = (mark & RELEASED) | (mark & ARRIVALS).saturating_add(1).min(ARRIVALS);
        if seq > st.max_seq + 1 {
            let mut gap = 0;
            for m in &mut st.seen[st.max_seq as usize + 1..idx] {
                if *m == 0 {
                    *m = RELEASED;
                    gap += 1;
                }
            }
            shared.lost.fetch_add(gap, Ordering::Relaxed);
        }
        st.max_seq = st.max_seq.max(seq);
        if from == 0
            && let Some(p) = shared.progress.get(self.id as usize)
        {
            p.fetch_max(st.max_seq, Ordering::Relaxed);
        }
    }

    fn note_gap(&mut self, from: u32, first: u32, last: u32) {
        if self.tally.gaps.len() < 4 {
            self.tally.gaps.push((self.id, from, first, last));
        }
    }

    /// The tally, given how many messages each sender sent (`expected[from]`), not counting `own`.
    pub fn finish(mut self, expected: &[u32], own: Option<u32>) -> Tally {
        let streams = std::mem::take(&mut self.streams);
        for (from, &want) in expected.iter().enumerate() {
            if own == Some(from as u32) {
                continue;
            }
            let seen = streams.get(from).map_or(&[][..], |st| &st.seen[..]);
            let mut gap: Option<(u32, u32)> = None;
            for seq in 1..=want {
                if seen.get(seq as usize).is_some_and(|&c| c & ARRIVALS > 0) {
                    if let Some((a, b)) = gap.take() {
                        self.note_gap(from as u32, a, b);
                    }
                    continue;
                }
                self.tally.lost += 1;
                gap = Some(gap.map_or((seq, seq), |(a, _)| (a, seq)));
            }
            if let Some((a, b)) = gap {
                self.note_gap(from as u32, a, b);
            }
        }
        self.tally
    }
}

impl Receiver {
    /// All-to-all: writes what is left of its batch, then a new batch if the room has room.
    /// Returns false when the socket failed.
    fn pump(&mut self, talk: Talk, cfg: RxConfig, shared: &Shared) -> bool {
        let Some(from) = self.own else { return true };
        if self.dialler.is_some() {
            return true;
        }
        loop {
            while self.out_at < self.out.len() {
                match self.stream.write(&self.out[self.out_at..]) {
                    Ok(n) => self.out_at += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return false,
                }
            }
            self.out.clear();
            self.out_at = 0;
            if shared.quiet.load(Ordering::Relaxed) {
                return true;
            }
            // Messages known lost free their slots, so a lossy hub is not throttled by its losses.
            let sent = shared.sent.load(Ordering::Relaxed);
            if (sent * talk.fanout).saturating_sub(shared.settled()) >= talk.in_flight {
                return true;
            }
            for _ in 0..talk.batch {
                self.last_seq += 1;
                self.link
                    .encode(from, self.last_seq, cfg.size, &mut self.out);
            }
            shared
                .sent
                .fetch_add(u64::from(talk.batch), Ordering::Relaxed);
        }
    }

    /// Takes bytes the hub sent; an error closes the receiver (it says why).
    fn on_bytes(&mut self, data: &[u8], cfg: RxConfig, shared: &Shared) -> Result<(), String> {
        match self.wire {
            Wire::Lines | Wire::Tls => {
                self.pending.extend_from_slice(data);
                let Some(end) = self.pending.iter().rposition(|&b| b == b'\n') else {
                    return Ok(());
                };
                let lines: Vec<u8> = self.pending.drain(..=end).collect();
                for line in lines[..lines.len() - 1].split(|&b| b == b'\n') {
                    self.check.on_line(line, cfg.paced, shared);
                }
                Ok(())
            }
            Wire::Native => {
                let mut data = data;
                if let Some(d) = self.dialler.as_mut() {
                    let mut out = Vec::new();
                    let fed = d.feed(data, &mut out);
                    // A fresh socket's buffer takes a handshake message whole.
                    let mut at = 0;
                    while at < out.len() {
                        match self.stream.write(&out[at..]) {
                            Ok(n) => at += n,
                            Err(e) if e.kind() == ErrorKind::Interrupted => {}
                            Err(e) => return Err(format!("writing the handshake: {e}")),
                        }
                    }
                    let Fed::Done { used } = fed.map_err(|e| e.to_string())? else {
                        return Ok(());
                    };
                    let session = self
                        .dialler
                        .take()
                        .and_then(|d| d.into_session())
                        .ok_or("the handshake did not finish")?;
                    self.link.secure(session);
                    shared.ready.fetch_add(1, Ordering::Relaxed);
                    data = &data[used..];
                }
                self.on_frames(data, cfg, shared)
            }
        }
    }

    /// Sealed frames: each opened, decoded and checked.
    fn on_frames(&mut self, mut data: &[u8], cfg: RxConfig, shared: &Shared) -> Result<(), String> {
        let Receiver {
            decoder,
            check,
            link,
            ..
        } = self;
        while !data.is_empty() {
            let (used, found) = decoder.decode(data);
            data = &data[used..];
            match found {
                Decoded::NeedMore => {}
                Decoded::Frame(sealed) => {
                    let Some(mut opened) = link.open(sealed) else {
                        check.tally.garbled += 1;
                        return Err("a sealed frame failed its tag".into());
                    };
                    // 1 to MAX_BATCH whole frames.
                    while !opened.is_empty() {
                        let Some((head, len)) = frame::first(opened) else {
                            check.tally.garbled += 1;
                            return Err("an opened message is not whole frames".into());
                        };
                        match Message::decode(&opened[head..head + len]) {
                            Ok(Message::Broadcast { text, .. }) => {
                                check.on_message(text.as_bytes(), cfg.paced, shared)
                            }
                            Ok(_) => {}
                            Err(_) => check.tally.garbled += 1,
                        }
                        opened = &opened[head + len..];
                    }
                }
                Decoded::Error(e) => {
                    check.tally.garbled += 1;
                    if e.is_fatal() {
                        return Err(format!("framing: {e}"));
                    }
                    link.skip();
                }
            }
        }
        Ok(())
    }
}

/// Connects a client socket to the hub (blocking), with a small receive buffer if asked.
pub fn connect(addr: SocketAddr, rcvbuf: Option<usize>) -> io::Result<StdStream> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    if let Some(size) = rcvbuf {
        sock.set_recv_buffer_size(size)?;
    }
    // A hub that stopped accepting must not hold the tool for the kernel's 2 minutes of SYNs.
    sock.connect_timeout(&addr.into(), Duration::from_secs(10))?;
    let stream: StdStream = sock.into();
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The receivers of one run, read by a few threads with mio.
pub struct Receivers {
    threads: Vec<thread::JoinHandle<(Vec<Receiver>, f64)>>,
    pub shared: Arc<Shared>,
}

impl Receivers {
    /// Starts `threads` threads and connects `count` receivers, each read from the moment it
    /// is connected (a hub may write to the first while the last are connecting).
    pub fn start(
        addr: SocketAddr,
        count: usize,
        threads: usize,
        cfg: RxConfig,
    ) -> io::Result<Receivers> {
        Receivers::start_until(addr, count, threads, cfg, None)
    }

    /// As [`Receivers::start`], but stops connecting at `deadline` (`shared.connected` says
    /// how many made it).
    pub fn start_until(
        addr: SocketAddr,
        count: usize,
        threads: usize,
        cfg: RxConfig,
        deadline: Option<Instant>,
    ) -> io::Result<Receivers> {
        let shared = Arc::new(Shared::for_receivers(count));
        let mut feeds = Vec::new();
        let mut handles = Vec::new();
        for _ in 0..threads.max(1) {
            let poll = Poll::new()?;
            let waker = mio::Waker::new(poll.registry(), WAKER)?;
            let (tx, rx) = mpsc::channel();
            let shared = shared.clone();
            handles.push(thread::spawn(move || read_loop(poll, rx, cfg, &shared)));
            feeds.push((tx, waker));
        }
        let receivers = Receivers {
            threads: handles,
            shared,
        };
        match receivers.connect_all(addr, count, cfg, &feeds, deadline) {
            Ok(()) => Ok(receivers),
            Err(e) => {
                receivers.finish(0);
                Err(e)
            }
        }
    }

    fn connect_all(
        &self,
        addr: SocketAddr,
        count: usize,
        cfg: RxConfig,
        feeds: &[(mpsc::Sender<Receiver>, mio::Waker)],
        deadline: Option<Instant>,
    ) -> io::Result<()> {
        let shared = &self.shared;
        for i in 0..count {
            if deadline.is_some_and(|d| Instant::now() > d) {
                break;
            }
            let mut s = connect(addr, None).map_err(|e| {
                io::Error::new(e.kind(), format!("client {} of {count}: {e}", i + 1))
            })?;
            // Talking clients are senders 1..=count; the fan-out sender is 0.
            let own = cfg.talk.map(|_| i as u32 + 1);
            // Native: the banner now, the rest of the handshake as the reader thread reads.
            let dialler = if cfg.wire == Wire::Native {
                let node = own.map_or(0x7ece_0000_0000_0000 + i as u64, origin_of);
                let d = Dialler::new(&format!("r{i}"), node);
                s.write_all(d.banner())?;
                Some(Box::new(d))
            } else {
                shared.ready.fetch_add(1, Ordering::Relaxed);
                None
            };
            let tls = match cfg.wire {
                Wire::Tls => Some(Box::new(super::tls::handshake(&mut s)?)),
                _ => None,
            };
            s.set_nonblocking(true)?;
            let (feed, waker) = &feeds[i % feeds.len()];
            let r = Receiver {
                stream: TcpStream::from_std(s),
                own,
                out: Vec::new(),
                out_at: 0,
                last_seq: 0,
                wire: cfg.wire,
                quickack: cfg.quickack,
                dialler,
                link: Link::new(cfg.wire),
                tls,
                pending: Vec::new(),
                decoder: Box::new(FrameDecoder::new()),
                check: Check::new(
                    i as u32,
                    Expect {
                        wire: cfg.wire,
                        size: cfg.size,
                        prefix: cfg.prefix,
                    },
                ),
                closed: false,
            };
            feed.send(r)
                .map_err(|_| io::Error::other("a reader thread ended"))?;
            waker.wake()?;
            shared.connected.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Waits until every receiver is ready (native: its handshake is done), at most `limit`.
    pub fn wait_ready(&self, count: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.shared.ready.load(Ordering::Relaxed) < count {
            if Instant::now() > deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// Stops reading; returns each receiver's tally for `expected` messages and the
    /// busiest reader thread's CPU seconds.
    pub fn finish(self, expected: u32) -> (Vec<Tally>, f64) {
        let (tallies, _, busiest) = self.finish_talk(expected);
        (tallies, busiest)
    }

    /// Stops reading; returns each receiver's tally, the messages each talking client sent
    /// (index = sender number; 0 = the fan-out sender, which sent `fanout_sent`), and the
    /// busiest reader thread's CPU seconds.
    pub fn finish_talk(self, fanout_sent: u32) -> (Vec<Tally>, Vec<u32>, f64) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let mut groups = Vec::new();
        let mut busiest: f64 = 0.0;
        for t in self.threads {
            if let Ok((group, cpu)) = t.join() {
                busiest = busiest.max(cpu);
                groups.push(group);
            }
        }
        let mut expected = vec![fanout_sent];
        for r in groups.iter().flatten() {
            if let Some(own) = r.own {
                let i = own as usize;
                if expected.len() <= i {
                    expected.resize(i + 1, 0);
                }
                expected[i] = r.last_seq;
            }
        }
        let tallies = groups
            .into_iter()
            .flatten()
            .map(|r| {
                let own = r.own;
                r.check.finish(&expected, own)
            })
            .collect();
        (tallies, expected, busiest)
    }
}

/// The token of a reader thread's waker: new receivers are waiting in its channel.
const WAKER: Token = Token(usize::MAX);

fn read_loop(
    mut poll: Poll,
    feed: mpsc::Receiver<Receiver>,
    cfg: RxConfig,
    shared: &Shared,
) -> (Vec<Receiver>, f64) {
    let cpu0 = super::own_cpu(true);
    let interest = if cfg.talk.is_some() {
        Interest::READABLE | Interest::WRITABLE
    } else {
        Interest::READABLE
    };
    let mut group: Vec<Receiver> = Vec::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 256 * 1024];
    while !shared.stop.load(Ordering::Relaxed) {
        let talking = cfg.talk.is_some() && shared.go.load(Ordering::Relaxed);
        if let (Some(talk), true) = (cfg.talk, talking) {
            for r in group.iter_mut().filter(|r| !r.closed) {
                if !r.pump(talk, cfg, shared) {
                    r.closed = true;
                    shared.closed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        while let Ok(mut r) = feed.try_recv() {
            let token = Token(group.len());
            // Unregistered, it would never be read: count it closed so the run shows it.
            if poll
                .registry()
                .register(&mut r.stream, token, interest)
                .is_err()
            {
                r.closed = true;
                shared.closed.fetch_add(1, Ordering::Relaxed);
            }
            group.push(r);
        }
        let wait = Duration::from_millis(if talking { 1 } else { 20 });
        if poll.poll(&mut events, Some(wait)).is_err() {
            continue;
        }
        let mut moved = false;
        for event in events.iter() {
            let Some(r) = group.get_mut(event.token().0) else {
                continue;
            };
            loop {
                let got = match &mut r.tls {
                    Some(tls) => super::tls::read(tls, &mut r.stream, &mut buf),
                    None => r.stream.read(&mut buf),
                };
                match got {
                    Ok(0) => {
                        if !r.closed {
                            r.closed = true;
                            shared.closed.fetch_add(1, Ordering::Relaxed);
                        }
                        break;
                    }
                    Ok(n) => {
                        if r.quickack {
                            let _ = socket2::SockRef::from(&r.stream).set_tcp_quickack(true);
                        }
                        let fed = r.on_bytes(&buf[..n], cfg, shared);
                        r.check.publish(shared);
                        moved = true;
                        if let Err(why) = fed {
                            // Said once a run: one failed handshake is usually all of them.
                            if shared.why_closed.set(why.clone()).is_ok() {
                                eprintln!("load: a client's link closed: {why}");
                            }
                            let _ = r.stream.shutdown(std::net::Shutdown::Both);
                            if !r.closed {
                                r.closed = true;
                                shared.closed.fetch_add(1, Ordering::Relaxed);
                            }
                            break;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => {
                        if !r.closed {
                            r.closed = true;
                            shared.closed.fetch_add(1, Ordering::Relaxed);
                        }
                        break;
                    }
                }
            }
        }
        if moved && let Some(t) = shared.waiter.get() {
            t.unpark();
        }
    }
    (group, super::own_cpu(true) - cpu0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(from: u32, seq: u32, size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        Link::new(Wire::Lines).encode(from, seq, size, &mut out);
        out.pop();
        out
    }

    impl Check {
        fn size_for_test(&mut self, size: usize) {
            self.expect.size = size;
        }
    }

    fn check(prefix: Prefix) -> Check {
        Check::new(
            0,
            Expect {
                wire: Wire::Lines,
                size: 64,
                prefix,
            },
        )
    }

    #[test]
    fn every_message_takes_the_asked_size_on_the_wire_in_both_wires() {
        let mut out = Vec::new();
        let (session, _) = secure::tests::paired(Dialler::new("c1", 1));
        let mut links = [Link::new(Wire::Lines), Link::sealed(session)];
        for size in [64, 65, 200, 1000] {
            for from in [0, 1, 99, PROBE] {
                for seq in [1, 127, 128, 16_383, 16_384, 1 << 21, u32::MAX] {
                    for link in &mut links {
                        let wire = link.wire;
                        out.clear();
                        link.encode(from, seq, size, &mut out);
                        // A sealed frame of the probe's origin and a 5-byte seq
                        // with no padding needs 64 or 65 bytes: the header's
                        // send time has 5 or 6 digits by how fast the loop ran.
                        let least = match wire {
                            Wire::Native if from == PROBE && seq >= 1 << 28 => 64..=65,
                            _ => 0..=0,
                        };
                        let fits = out.len() == size
                            || (size < *least.end() && least.contains(&out.len()));
                        assert!(
                            fits,
                            "{wire:?} size {size} from {from} seq {seq}: {}",
                            out.len()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_sealed_message_opens_to_the_broadcast_the_sender_encoded() {
        let (client, hub) = secure::tests::paired(Dialler::new("c1", 1));
        let (mut tx, mut rx) = (Link::sealed(client), Link::sealed(hub));
        let mut out = Vec::new();
        tx.encode(3, 9, 100, &mut out);
        let opened = rx.open(frame::body_of(&out).unwrap()).unwrap();
        let body = frame::body_of(opened).expect("one whole frame");
        let Ok(Message::Broadcast { seq, text, .. }) = Message::decode(body) else {
            panic!("a broadcast")
        };
        assert_eq!((seq, parse_header(text.as_bytes()).unwrap().from), (9, 3));
        // The next frame sealed under the same nonce again would fail: a tampered one does.
        out.clear();
        tx.encode(3, 10, 100, &mut out);
        let at = out.len() - 1;
        out[at] ^= 1;
        assert!(rx.open(frame::body_of(&out).unwrap()).is_none());
    }

    #[test]
    fn a_whole_message_counts_as_received_and_nothing_else() {
        let shared = Shared::default();
        let mut c = check(Prefix::Bare);
        c.on_line(&line(0, 1, 64), 0, &shared);
        let mut tagged = b"<hub> ".to_vec();
        tagged.extend(line(0, 2, 64));
        let mut t = check(Prefix::Tag);
        t.on_line(&tagged, 0, &shared);
        for c in [c, t] {
            assert_eq!((c.tally.received, c.tally.faults()), (1, 0));
        }
        assert_eq!(shared.delivered.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_truncated_or_mangled_body_and_an_unmarked_line_are_faults() {
        let shared = Shared::default();
        let mut c = check(Prefix::Bare);
        let whole = line(0, 1, 64);
        // Truncated body: the header is intact, a padding byte is gone.
        c.on_line(&whole[..whole.len() - 1], 0, &shared);
        // Mangled body: one padding byte changed.
        let mut mangled = line(0, 2, 64);
        mangled[50] = b'x';
        c.on_line(&mangled, 0, &shared);
        // One byte too many.
        let mut longer = line(0, 3, 64);
        longer.push(b'.');
        c.on_line(&longer, 0, &shared);
        // A seq far beyond any sent: not believed, and no table grows to it.
        c.on_line(&line(0, 1 << 30, 64), 0, &shared);
        // A header number written differently (a leading zero).
        let zero = line(0, 4, 64);
        let zero = [&b"#m 04"[..], &zero[4..zero.len() - 1]].concat();
        c.on_line(&zero, 0, &shared);
        // No marker at all.
        c.on_line(b"hello there", 0, &shared);
        // Two messages in one line.
        c.on_line(&[line(0, 5, 20), line(0, 6, 64)].concat(), 0, &shared);
        assert_eq!(c.tally.received, 0);
        assert_eq!(
            (c.tally.garbled, c.tally.unknown, c.tally.merged),
            (5, 1, 1)
        );
        assert_eq!(shared.delivered.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn the_check_passes_exactly_the_bytes_that_were_sent() {
        // Every one-byte change, cut and addition of a few messages: whole only when unchanged.
        for (seq, size) in [(1, 64), (10, 64), (123_456, 64), (7, 200)] {
            let whole = line(3, seq, size);
            let mut variants = vec![whole.clone(), whole[..whole.len() - 1].to_vec()];
            variants.push([&whole[..], b"."].concat());
            for at in 0..whole.len() {
                for b in [b'.', b'0', b'1', b' ', b'#', b'x'] {
                    let mut v = whole.clone();
                    v[at] = b;
                    variants.push(v);
                }
                variants.push([&whole[..at], &whole[at + 1..]].concat());
                variants.push([&whole[..at], b"0", &whole[at..]].concat());
            }
            for v in variants {
                let shared = Shared::default();
                let mut c = check(Prefix::Bare);
                c.size_for_test(size);
                c.on_line(&v, 0, &shared);
                // Whole exactly when the line is what its own header's numbers give again
                // (a changed digit may name another message, just as whole), and believable.
                let regenerated = parse_header(&v).is_some_and(|h| {
                    let mut again = Vec::new();
                    let len = text_len(Wire::Lines, h.from as u32, h.seq as u32, size);
                    message_text(h.from as u32, h.seq as u32, h.sent_ns, len, &mut again);
                    again == v && h.seq <= u64::from(MAX_AHEAD) && h.from < MAX_FROM
                });
                assert!(regenerated || v != whole);
                assert_eq!(
                    c.tally.received == 1,
                    regenerated,
                    "{}",
                    String::from_utf8_lossy(&v)
                );
            }
        }
    }

    #[test]
    fn meshtalk_hub_notices_are_skipped_and_never_taken_for_messages() {
        let shared = Shared::default();
        let mut t = check(Prefix::Tag);
        t.on_line(b"* 127.0.0.1 is now known as dave", 0, &shared);
        t.on_line(b"* 127.0.0.1-2 joined", 0, &shared);
        t.on_line(
            &[&b"<127.0.0.1-2> "[..], &line(0, 1, 64)].concat(),
            0,
            &shared,
        );
        assert_eq!(
            (t.tally.received, t.tally.faults(), t.tally.unknown),
            (1, 0, 0)
        );
        // A message's text that looks like a notice is still a message, behind its tag.
        let mut fake = b"<x> * ".to_vec();
        fake.extend(line(0, 2, 64));
        t.on_line(&fake, 0, &shared);
        assert_eq!(
            (t.tally.received, t.tally.garbled),
            (1, 1),
            "a tagged line is judged as a message, never skipped as a notice"
        );
    }

    #[test]
    fn ncat_tags_only_the_first_line_of_a_read_and_its_notices_are_not_messages() {
        let shared = Shared::default();
        let mut c = check(Prefix::ReadTag);
        c.on_line(b"<announce> 127.0.0.1 is connected as <user5>.", 0, &shared);
        c.on_line(&[&b"<user5> "[..], &line(0, 1, 64)].concat(), 0, &shared);
        c.on_line(&line(0, 2, 64), 0, &shared);
        assert_eq!((c.tally.received, c.tally.faults()), (2, 0));
        // A line cut by a read boundary: the next read's tag lands inside it.
        let cut = line(0, 3, 64);
        c.on_line(&[&cut[..30], b"<user5> ", &cut[30..]].concat(), 0, &shared);
        // meshtalk's hub tags every line: one without is a fault there.
        let mut t = check(Prefix::Tag);
        t.on_line(&line(0, 1, 64), 0, &shared);
        assert_eq!((c.tally.received, c.tally.garbled), (2, 1));
        assert_eq!((t.tally.received, t.tally.garbled), (0, 1));
    }

    #[test]
    fn the_slowest_receiver_sets_the_closed_loop_and_a_known_loss_moves_it_on() {
        let shared = Shared::for_receivers(2);
        let expect = Expect {
            wire: Wire::Lines,
            size: 64,
            prefix: Prefix::Bare,
        };
        let (mut a, mut b) = (Check::new(0, expect), Check::new(1, expect));
        assert_eq!(shared.slowest(), 0);
        for seq in 1..=3 {
            a.on_line(&line(0, seq, 64), 0, &shared);
        }
        b.on_line(&line(0, 1, 64), 0, &shared);
        b.on_line(&line(0, 2, 64), 0, &shared);
        // Probes and other senders' messages are no progress of the fan-out sender's.
        b.on_line(&line(PROBE, 9, 64), 0, &shared);
        b.on_line(&line(4, 9, 64), 0, &shared);
        assert_eq!(shared.slowest(), 2);
        // 3 and 4 never come to b: once 5 does, they are known lost and b is past them.
        b.on_line(&line(0, 5, 64), 0, &shared);
        assert_eq!(shared.slowest(), 3);
        a.on_line(&line(0, 6, 64), 0, &shared);
        assert_eq!(shared.slowest(), 5);
    }

    #[test]
    fn a_gap_frees_its_window_slots_at_once_and_a_late_message_takes_its_slot_back() {
        let shared = Shared::default();
        let mut c = check(Prefix::Bare);
        for seq in [1, 2, 5] {
            c.on_line(&line(0, seq, 64), 0, &shared);
        }
        assert_eq!(shared.lost.load(Ordering::Relaxed), 2);
        c.on_line(&line(0, 3, 64), 0, &shared);
        assert_eq!(shared.lost.load(Ordering::Relaxed), 1);
        // Damaged: known lost, but not lost again at the end.
        let mut bad = line(0, 6, 64);
        bad[40] = b'!';
        c.on_line(&bad, 0, &shared);
        assert_eq!(shared.lost.load(Ordering::Relaxed), 2);
        assert_eq!(shared.settled(), 6);
        let t = c.finish(&[7], None);
        assert_eq!(
            (t.received, t.lost, t.reordered, t.garbled),
            (4, 2, 1, 1),
            "4 and 7 never came"
        );
        assert_eq!(t.gaps, vec![(0, 0, 4, 4), (0, 0, 7, 7)]);
    }
}
