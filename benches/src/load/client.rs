//! The load's clients: one sender and many receivers, speaking plain lines or
//! meshtalk's native protocol. Every message carries its sequence number and
//! the time it was sent, so each receiver checks its stream for lost,
//! duplicated, merged and reordered messages and measures one-way latency.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use meshtalk_core::frame::{Decoded, FrameDecoder};
use meshtalk_core::wire::{self, Message};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use super::now_ns;

/// What the clients speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Wire {
    /// Newline-terminated text, as netcat would.
    Lines,
    /// `MESHTALK/1 name`, hello, then framed postcard `Broadcast` messages.
    Native,
}

/// The marker that starts a message's text: `#m <seq> <sent_ns>` and padding.
const MARK: &[u8] = b"#m ";
/// The sender's node id in native broadcasts.
const SENDER_NODE: u64 = 0x5e4d_e700_0000_0001;
/// The largest frame body a receiver accepts.
const MAX_FRAME: usize = 4096;

/// Writes message `seq`'s text, `size` bytes long without the newline.
pub fn message_text(seq: u32, sent_ns: u64, size: usize, out: &mut Vec<u8>) {
    let start = out.len();
    let _ = write!(out, "#m {seq} {sent_ns} ");
    while out.len() - start < size {
        out.push(b'.');
    }
}

/// Appends one message as it goes on the wire.
pub fn encode_message(wire: Wire, seq: u32, size: usize, out: &mut Vec<u8>, text: &mut Vec<u8>) {
    text.clear();
    message_text(seq, now_ns(), size, text);
    match wire {
        Wire::Lines => {
            out.extend_from_slice(text);
            out.push(b'\n');
        }
        Wire::Native => {
            let body = std::str::from_utf8(text).unwrap_or("");
            let msg = Message::Broadcast {
                origin: SENDER_NODE,
                seq,
                hops: 8,
                name: "s",
                text: body,
            };
            let at = out.len();
            out.resize(at + msg.frame_len(), 0);
            let n = msg.encode_frame(&mut out[at..]).unwrap_or(0);
            out.truncate(at + n);
        }
    }
}

/// The banner and hello a native client opens with.
pub fn native_greeting(name: &str, node: u64) -> Vec<u8> {
    let mut out = vec![0u8; 256];
    let n = wire::write_banner(name, &mut out).unwrap_or(0);
    let hello = Message::Hello {
        minor: wire::MINOR,
        node,
        name,
    };
    let m = hello.encode_frame(&mut out[n..]).unwrap_or(0);
    out.truncate(n + m);
    out
}

/// What one receiver saw.
#[derive(Default, Debug, Clone)]
pub struct Tally {
    pub received: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub merged: u64,
    pub reordered: u64,
    pub garbled: u64,
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
        self.paced_us.extend(other.paced_us);
        self.blast_us.extend(other.blast_us);
    }

    /// Anything wrong with the stream at all.
    pub fn faults(&self) -> u64 {
        self.lost + self.duplicated + self.merged + self.reordered + self.garbled
    }
}

struct Receiver {
    stream: TcpStream,
    wire: Wire,
    quickack: bool,
    banner_done: bool,
    ready: bool,
    pending: Vec<u8>,
    decoder: Box<FrameDecoder<MAX_FRAME>>,
    check: Check,
    closed: bool,
}

/// The checks of one receiver's stream.
struct Check {
    seen: Vec<u8>,
    max_seq: u32,
    tally: Tally,
}

/// Shared counters between the receivers and the sender.
#[derive(Default)]
pub struct Shared {
    pub delivered: AtomicU64,
    pub ready: AtomicUsize,
    pub stop: AtomicBool,
    pub closed: AtomicUsize,
}

/// Settings the receivers need to read their streams.
#[derive(Clone, Copy)]
pub struct RxConfig {
    pub wire: Wire,
    pub quickack: bool,
    pub paced: u32,
}

impl Check {
    fn on_message(&mut self, text: &[u8], paced: u32, shared: &Shared) {
        let now = now_ns();
        let marks = text.windows(MARK.len()).filter(|w| *w == MARK).count();
        let Some(at) = text.windows(MARK.len()).position(|w| w == MARK) else {
            // ncat's join notices and the like.
            return;
        };
        if marks > 1 {
            self.tally.merged += 1;
        }
        let mut fields = text[at + MARK.len()..].split(|&b| b == b' ');
        let mut num = || {
            fields
                .next()
                .and_then(|f| std::str::from_utf8(f).ok())
                .and_then(|f| f.parse::<u64>().ok())
        };
        let (Some(seq), Some(sent)) = (num(), num()) else {
            self.tally.garbled += 1;
            return;
        };
        let seq = seq as u32;
        let idx = seq as usize;
        if idx >= self.seen.len() {
            self.seen.resize((idx + 1).max(self.seen.len() * 2), 0);
        }
        if self.seen[idx] > 0 {
            self.tally.duplicated += 1;
        } else if seq < self.max_seq {
            self.tally.reordered += 1;
        }
        self.seen[idx] = self.seen[idx].saturating_add(1);
        self.max_seq = self.max_seq.max(seq);
        self.tally.received += 1;
        shared.delivered.fetch_add(1, Ordering::Relaxed);
        let us = (now.saturating_sub(sent) / 1000).min(u32::MAX as u64) as u32;
        if seq <= paced {
            self.tally.paced_us.push(us);
        } else {
            self.tally.blast_us.push(us);
        }
    }

    fn finish(mut self, expected: u32) -> Tally {
        let upto = (expected as usize + 1).min(self.seen.len());
        let have = self
            .seen
            .get(1..upto)
            .map_or(0, |s| s.iter().filter(|&&c| c > 0).count());
        self.tally.lost = u64::from(expected).saturating_sub(have as u64);
        self.tally
    }
}

impl Receiver {
    fn on_bytes(&mut self, data: &[u8], cfg: RxConfig, shared: &Shared) {
        match self.wire {
            Wire::Lines => {
                self.pending.extend_from_slice(data);
                let Some(end) = self.pending.iter().rposition(|&b| b == b'\n') else {
                    return;
                };
                let lines: Vec<u8> = self.pending.drain(..=end).collect();
                for line in lines[..lines.len() - 1].split(|&b| b == b'\n') {
                    self.check.on_message(line, cfg.paced, shared);
                }
            }
            Wire::Native => {
                if !self.banner_done {
                    self.pending.extend_from_slice(data);
                    let Some(nl) = self.pending.iter().position(|&b| b == b'\n') else {
                        return;
                    };
                    self.banner_done = true;
                    let rest: Vec<u8> = self.pending.split_off(nl + 1);
                    self.pending.clear();
                    self.on_frames(&rest, cfg, shared);
                    return;
                }
                self.on_frames(data, cfg, shared);
            }
        }
    }

    fn on_frames(&mut self, mut data: &[u8], cfg: RxConfig, shared: &Shared) {
        let Receiver {
            decoder,
            check,
            ready,
            ..
        } = self;
        loop {
            let (used, found) = decoder.decode(data);
            let stop = match found {
                Decoded::NeedMore => true,
                Decoded::Frame(body) => {
                    match Message::decode(body) {
                        Ok(Message::Broadcast { text, .. }) => {
                            check.on_message(text.as_bytes(), cfg.paced, shared)
                        }
                        Ok(Message::Hello { .. }) if !*ready => {
                            *ready = true;
                            shared.ready.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(_) => check.tally.garbled += 1,
                    }
                    false
                }
                Decoded::Error(e) => {
                    check.tally.garbled += 1;
                    e.is_fatal()
                }
            };
            data = &data[used..];
            if stop || data.is_empty() {
                break;
            }
        }
    }
}

/// Connects a client socket to the hub (blocking), with a small receive buffer if asked.
pub fn connect(addr: SocketAddr, rcvbuf: Option<usize>) -> io::Result<StdStream> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    if let Some(size) = rcvbuf {
        sock.set_recv_buffer_size(size)?;
    }
    sock.connect(&addr.into())?;
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
    /// Connects `count` receivers and starts `threads` threads reading them.
    pub fn start(
        addr: SocketAddr,
        count: usize,
        threads: usize,
        cfg: RxConfig,
    ) -> io::Result<Receivers> {
        let shared = Arc::new(Shared::default());
        let mut groups: Vec<Vec<Receiver>> = (0..threads.max(1)).map(|_| Vec::new()).collect();
        for i in 0..count {
            let mut s = connect(addr, None)?;
            if cfg.wire == Wire::Native {
                s.write_all(&native_greeting(
                    &format!("r{i}"),
                    0x7ece_0000_0000_0000 + i as u64,
                ))?;
            } else {
                shared.ready.fetch_add(1, Ordering::Relaxed);
            }
            s.set_nonblocking(true)?;
            let n = groups.len();
            groups[i % n].push(Receiver {
                stream: TcpStream::from_std(s),
                wire: cfg.wire,
                quickack: cfg.quickack,
                banner_done: false,
                ready: false,
                pending: Vec::new(),
                decoder: Box::new(FrameDecoder::new()),
                check: Check {
                    seen: vec![0; 1024],
                    max_seq: 0,
                    tally: Tally::default(),
                },
                closed: false,
            });
        }
        let threads = groups
            .into_iter()
            .map(|group| {
                let shared = shared.clone();
                thread::spawn(move || read_loop(group, cfg, &shared))
            })
            .collect();
        Ok(Receivers { threads, shared })
    }

    /// Waits until every receiver is ready (native: the hub's hello came), at most `limit`.
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
        self.shared.stop.store(true, Ordering::Relaxed);
        let mut tallies = Vec::new();
        let mut busiest: f64 = 0.0;
        for t in self.threads {
            if let Ok((group, cpu)) = t.join() {
                busiest = busiest.max(cpu);
                tallies.extend(group.into_iter().map(|r| r.check.finish(expected)));
            }
        }
        (tallies, busiest)
    }
}

fn read_loop(mut group: Vec<Receiver>, cfg: RxConfig, shared: &Shared) -> (Vec<Receiver>, f64) {
    let cpu0 = super::own_cpu(true);
    let Ok(mut poll) = Poll::new() else {
        return (group, 0.0);
    };
    for (i, r) in group.iter_mut().enumerate() {
        let _ = poll
            .registry()
            .register(&mut r.stream, Token(i), Interest::READABLE);
    }
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 256 * 1024];
    while !shared.stop.load(Ordering::Relaxed) {
        if poll
            .poll(&mut events, Some(Duration::from_millis(20)))
            .is_err()
        {
            continue;
        }
        for event in events.iter() {
            let Some(r) = group.get_mut(event.token().0) else {
                continue;
            };
            loop {
                match r.stream.read(&mut buf) {
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
                        r.on_bytes(&buf[..n], cfg, shared);
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
    }
    (group, super::own_cpu(true) - cpu0)
}
