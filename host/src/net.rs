//! The I/O threads: listener, dialers, and a reader and a writer per
//! connection. They only move bytes; every decision is the driver's.

use std::collections::VecDeque;
use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError, channel, sync_channel};
use std::thread;
use std::time::{Duration, Instant};

use meshtalk_core::peers::PeerId;
use socket2::{SockRef, TcpKeepalive};

use crate::driver::Msg;
use crate::log::{debug, diag};

/// How long a dial may take before it is given up.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// After we close our side, how long to wait for the peer to close its side.
const LINGER: Duration = Duration::from_secs(5);
/// One read's buffer.
const READ_BUF: usize = 64 * 1024;
/// Bytes gathered for one write at most (the rest waits for the next write).
const WRITE_BATCH: usize = 256 * 1024;
/// Buffers gathered into one vectored write at most.
const WRITE_SLICES: usize = 64;
/// Unanswered keepalive probes after which a connection is dead.
const KEEPALIVE_PROBES: u32 = 3;

/// Accepts connections forever and hands them to the driver.
pub fn spawn_listener(listener: TcpListener, to_driver: Sender<Msg>) {
    let spawned = thread::Builder::new()
        .name("listener".into())
        .spawn(move || {
            loop {
                match listener.accept() {
                    Ok((stream, addr)) => {
                        debug!("accepted {addr}");
                        let _ = stream.set_nodelay(true);
                        if to_driver.send(Msg::Accepted(stream, addr)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        diag!("accept failed: {e}");
                        // Out of descriptors and the like: give the system a moment.
                        thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        });
    if let Err(e) = spawned {
        diag!("cannot start the listener thread: {e}");
    }
}

/// Resolves `host:port` and dials it on a thread of its own; reports [`Msg::Dialed`].
pub fn dial(peer: PeerId, host: String, port: u16, to_driver: Sender<Msg>) {
    let report = to_driver.clone();
    let spawned = thread::Builder::new().name("dial".into()).spawn(move || {
        let dialed = connect(&host, port);
        match &dialed {
            Ok(_) => debug!("dialled {peer} {host}:{port}"),
            Err(e) => debug!("dial {peer} {host}:{port} failed: {e}"),
        }
        let _ = to_driver.send(Msg::Dialed(peer, dialed));
    });
    if let Err(e) = spawned {
        let _ = report.send(Msg::Dialed(peer, Err(e)));
    }
}

/// Tries each address of `host` in turn, each with [`DIAL_TIMEOUT`].
fn connect(host: &str, port: u16) -> io::Result<TcpStream> {
    let mut last = io::Error::new(ErrorKind::NotFound, "host name has no address");
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, DIAL_TIMEOUT) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Turns on TCP keepalive: after `idle` (at least 1 s) with nothing heard, a probe
/// every third of it (at least 1 s); [`KEEPALIVE_PROBES`] unanswered end the
/// connection. On Linux, bytes unacknowledged for as long end it too, so a pulled
/// cable is found in about twice `idle` whether or not anything was being sent.
pub fn keepalive(stream: &TcpStream, idle: Duration) -> io::Result<()> {
    let idle = idle.max(Duration::from_secs(1));
    let interval = (idle / 3).max(Duration::from_secs(1));
    let params = TcpKeepalive::new()
        .with_time(idle)
        .with_interval(interval)
        .with_retries(KEEPALIVE_PROBES);
    let socket = SockRef::from(stream);
    socket.set_tcp_keepalive(&params)?;
    #[cfg(target_os = "linux")]
    socket.set_tcp_user_timeout(Some(idle + interval * KEEPALIVE_PROBES))?;
    Ok(())
}

/// What the driver asks of a connection's writer.
enum ToWriter {
    Data(Vec<u8>),
    /// Write what is queued, then close our side.
    Close,
}

/// The driver's handle on one connection: its writer's queue and how many bytes
/// wait in it, and the chunk its reader handed over that the node has not taken.
pub struct Conn {
    to_writer: Sender<ToWriter>,
    /// One credit lets the reader read its next chunk.
    credit: SyncSender<()>,
    /// For cutting the connection short (both threads then end).
    stream: TcpStream,
    /// Bytes handed to the writer and not yet written.
    queued: usize,
    /// When the writer last made progress, or when bytes began to wait.
    progress: Instant,
    /// The reader's last chunk, of which `taken` bytes were fed to the node.
    pending: Vec<u8>,
    taken: usize,
}

impl Conn {
    /// Starts the reader and the writer threads of a connection. `done` is held by
    /// the writer until it ends, so the driver can wait for every writer at exit.
    /// A writer closing the connection gives up after `stall` with no progress.
    pub fn start(
        peer: PeerId,
        stream: TcpStream,
        to_driver: &Sender<Msg>,
        done: Sender<()>,
        stall: Duration,
    ) -> io::Result<Conn> {
        let reader = stream.try_clone()?;
        let writer = stream.try_clone()?;
        let (to_writer, queue) = channel();
        let (credit, credits) = sync_channel(1);
        let from_writer = to_driver.clone();
        thread::Builder::new()
            .name(format!("write {peer}"))
            .spawn(move || write_loop(peer, writer, queue, from_writer, stall, done))?;
        let from_reader = to_driver.clone();
        thread::Builder::new()
            .name(format!("read {peer}"))
            .spawn(move || read_loop(peer, reader, from_reader, credits))?;
        Ok(Conn {
            to_writer,
            credit,
            stream,
            queued: 0,
            progress: Instant::now(),
            pending: Vec::new(),
            taken: 0,
        })
    }

    /// Queues bytes for the peer; true when they are the first to wait.
    pub fn send(&mut self, data: Vec<u8>) -> bool {
        let first = self.queued == 0;
        if first {
            self.progress = Instant::now();
        }
        self.queued += data.len();
        let _ = self.to_writer.send(ToWriter::Data(data));
        first
    }

    /// The writer wrote `n` bytes of the queue.
    pub fn wrote(&mut self, n: usize) {
        self.queued = self.queued.saturating_sub(n);
        self.progress = Instant::now();
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// While bytes wait: when the peer last took some (or they began to wait).
    pub fn waiting_since(&self) -> Option<Instant> {
        (self.queued > 0).then_some(self.progress)
    }

    /// Keeps the reader's chunk until the node has taken all of it.
    pub fn hold(&mut self, data: Vec<u8>) {
        self.pending = data;
        self.taken = 0;
    }

    /// What the node has not taken yet of the reader's chunk.
    pub fn pending(&self) -> &[u8] {
        self.pending.get(self.taken..).unwrap_or_default()
    }

    /// The node took `n` more bytes; once it has taken all, the reader may read on.
    pub fn consume(&mut self, n: usize) {
        self.taken = (self.taken + n).min(self.pending.len());
        if self.taken == self.pending.len() && !self.pending.is_empty() {
            self.pending = Vec::new();
            self.taken = 0;
            // The reader waits for exactly this credit: the slot is free.
            let _ = self.credit.try_send(());
        }
    }

    /// Sends what is queued, then closes our side of the connection.
    pub fn close(self) {
        let _ = self.to_writer.send(ToWriter::Close);
    }

    /// Cuts the connection now, dropping whatever is queued.
    pub fn abort(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// Blocking reads until end of stream or an error, each read handed to the driver.
/// After each chunk the reader waits until the driver has fed all of it to the node,
/// so a paused driver leaves the socket unread and TCP slows the sender.
fn read_loop(peer: PeerId, mut stream: TcpStream, to_driver: Sender<Msg>, credits: Receiver<()>) {
    let mut buf = vec![0; READ_BUF];
    // Once the driver has forgotten the connection, what still comes is read and dropped.
    let mut heard = true;
    let error = loop {
        match stream.read(&mut buf) {
            Ok(0) => break None,
            Ok(_) if !heard => {}
            Ok(n) => {
                if to_driver.send(Msg::Data(peer, buf[..n].to_vec())).is_err() {
                    return;
                }
                heard = credits.recv().is_ok();
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => break Some(e.to_string()),
        }
    };
    if heard {
        let _ = to_driver.send(Msg::Closed(peer, error));
    }
}

/// Writes what the driver queues, whatever is waiting gathered into one vectored
/// write, and tells the driver how many bytes each write took.
fn write_loop(
    peer: PeerId,
    mut stream: TcpStream,
    queue: Receiver<ToWriter>,
    to_driver: Sender<Msg>,
    stall: Duration,
    _done: Sender<()>,
) {
    // A blocked write returns now and then with what it wrote so far, so the
    // driver hears of a slow reader's progress and a closing writer can give up.
    let tick = (stall / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let _ = stream.set_write_timeout(Some(tick));
    let mut bufs: VecDeque<Vec<u8>> = VecDeque::new();
    // Bytes of the front buffer already written.
    let mut front = 0;
    // Bytes in `bufs` not yet written.
    let mut held = 0;
    // Close was asked for, or the driver forgot the connection.
    let mut closing = false;
    let mut progress = Instant::now();
    loop {
        // Take what is queued; wait only when there is nothing to write.
        while !closing && held < WRITE_BATCH {
            let job = match held {
                0 => queue.recv().map_err(|_| TryRecvError::Disconnected),
                _ => queue.try_recv(),
            };
            match job {
                Ok(ToWriter::Data(data)) => {
                    held += data.len();
                    bufs.push_back(data);
                }
                Ok(ToWriter::Close) | Err(TryRecvError::Disconnected) => closing = true,
                Err(TryRecvError::Empty) => break,
            }
        }
        if held == 0 {
            if closing {
                let _ = stream.flush();
                let _ = stream.shutdown(Shutdown::Write);
                // The reader ends when the peer closes its side, or after this long.
                let _ = stream.set_read_timeout(Some(LINGER));
                return;
            }
            continue;
        }
        let slices: Vec<IoSlice<'_>> = bufs
            .iter()
            .enumerate()
            .map(|(i, b)| {
                IoSlice::new(if i == 0 {
                    b.get(front..).unwrap_or_default()
                } else {
                    b
                })
            })
            .take(WRITE_SLICES)
            .collect();
        match stream.write_vectored(&slices) {
            Ok(0) => {
                let _ = stream.shutdown(Shutdown::Both);
                let _ = to_driver.send(Msg::Closed(peer, Some("connection wrote nothing".into())));
                return;
            }
            Ok(n) => {
                held -= n;
                front = advance(&mut bufs, front, n);
                progress = Instant::now();
                let _ = to_driver.send(Msg::Wrote(peer, n));
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                // The driver cuts a stalled peer; a closing writer gives up by itself.
                if closing && progress.elapsed() >= stall {
                    let _ = stream.shutdown(Shutdown::Both);
                    return;
                }
            }
            Err(e) => {
                let _ = stream.shutdown(Shutdown::Both);
                let _ = to_driver.send(Msg::Closed(peer, Some(e.to_string())));
                return;
            }
        }
    }
}

/// Drops `n` written bytes from the front of `bufs`; returns the new offset into
/// the front buffer.
fn advance(bufs: &mut VecDeque<Vec<u8>>, mut front: usize, mut n: usize) -> usize {
    while let Some(first) = bufs.front() {
        let left = first.len() - front;
        if n < left {
            return front + n;
        }
        n -= left;
        front = 0;
        bufs.pop_front();
    }
    0
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, TcpListener, TcpStream};
    use std::time::Duration;

    use socket2::SockRef;

    use super::*;

    /// A connected loopback stream (its listener kept alive alongside).
    fn stream() -> (TcpListener, TcpStream) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stream = TcpStream::connect(addr).expect("connect");
        (listener, stream)
    }

    #[test]
    fn keepalive_probes_after_idle_every_third_of_it_three_times() {
        let (_listener, stream) = stream();
        keepalive(&stream, Duration::from_secs(9)).expect("keepalive");
        let socket = SockRef::from(&stream);
        assert!(socket.keepalive().expect("SO_KEEPALIVE"));
        assert_eq!(socket.tcp_keepalive_time().expect("idle").as_secs(), 9);
        assert_eq!(
            socket.tcp_keepalive_interval().expect("interval").as_secs(),
            3
        );
        assert_eq!(socket.tcp_keepalive_retries().expect("retries"), 3);
        #[cfg(target_os = "linux")]
        assert_eq!(
            socket.tcp_user_timeout().expect("user timeout"),
            Some(Duration::from_secs(18))
        );
    }

    #[test]
    fn keepalive_never_probes_more_often_than_once_a_second() {
        let (_listener, stream) = stream();
        keepalive(&stream, Duration::from_millis(100)).expect("keepalive");
        let socket = SockRef::from(&stream);
        assert_eq!(socket.tcp_keepalive_time().expect("idle").as_secs(), 1);
        assert_eq!(
            socket.tcp_keepalive_interval().expect("interval").as_secs(),
            1
        );
    }
}
