//! The I/O threads: listener, dialers and one writer thread for all; they only move
//! bytes, and wake the driver through [`ToDriver`]. Sockets are read on the driver
//! thread itself, when its [`Readers`] poll says they are readable.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::thread;
use std::time::{Duration, Instant};

use meshtalk_core::peers::PeerId;
use meshtalk_core::time;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use socket2::{SockRef, TcpKeepalive};

use crate::channel::{Msg, ToDriver};
use crate::clock::Clock;
use crate::log::{debug, diag};

/// How long a dial may take before it is given up.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// After we close our side, how long to wait for the peer to close its side.
const LINGER: time::Duration = time::Duration::from_secs(5);
/// One read's buffer.
const READ_BUF: usize = 64 * 1024;
/// An emptied output buffer keeps at most this much room (memory per peer).
const KEEP: usize = 32 * 1024;
/// Written bytes at the front of a waiting buffer are dropped once this many.
const COMPACT_AT: usize = 64 * 1024;
/// Unanswered keepalive probes after which a connection is dead.
const KEEPALIVE_PROBES: u32 = 3;

/// Starts a thread that passes what comes on the returned plain channel on to the
/// driver (for threads that know only a `Sender`: the prompt's and the signal's).
pub fn spawn_forwarder(to_driver: ToDriver) -> Sender<Msg> {
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = thread::Builder::new()
        .name("forward".into())
        .spawn(move || {
            for msg in rx {
                if to_driver.send(msg).is_err() {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        diag!("cannot start the forwarding thread: {e}");
    }
    tx
}

/// Accepts connections forever and hands them to the driver.
pub fn spawn_listener(listener: TcpListener, to_driver: ToDriver) {
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
pub fn dial(peer: PeerId, host: String, port: u16, to_driver: ToDriver) {
    let report = to_driver.clone();
    let spawned = thread::Builder::new().name("dial".into()).spawn(move || {
        let dialed = connect(&host, port).map_err(|e| {
            debug!("dial {peer} {host}:{port} failed: {e}");
            // What the person reads: where, and why in plain words.
            io::Error::new(e.kind(), format!("{host} port {port}: {}", plain_error(&e)))
        });
        if dialed.is_ok() {
            debug!("dialled {peer} {host}:{port}");
        }
        let _ = to_driver.send(Msg::Dialed(peer, dialed));
    });
    if let Err(e) = spawned {
        let _ = report.send(Msg::Dialed(peer, Err(e)));
    }
}

/// An error as a person reads it: `connection refused`, not `Connection refused (os error 111)`.
pub fn plain_error(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => &text[..at],
        _ => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Tries each address of `host` in turn, each with [`DIAL_TIMEOUT`].
pub fn connect(host: &str, port: u16) -> io::Result<TcpStream> {
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

/// Token of the writer thread's waker in its poll.
const WAKER: Token = Token(usize::MAX);

/// The one writer thread and what the driver shares with it: each connection's
/// output buffer, written when its socket becomes writable again.
pub struct Writers {
    shared: Arc<Shared>,
}

/// What the driver and the writer thread share.
struct Shared {
    registry: Registry,
    waker: Waker,
    /// Every connection with a socket, by token, until it is closed or cut.
    entries: Mutex<HashMap<usize, Arc<Entry>>>,
    /// Tokens of connections closing with bytes still to write.
    closing: Mutex<Vec<usize>>,
    next: AtomicUsize,
    to_driver: ToDriver,
    /// A closing connection that takes none of its bytes this long is cut.
    stall: Duration,
}

/// One connection as the writer thread sees it.
struct Entry {
    peer: PeerId,
    token: usize,
    stream: TcpStream,
    out: Mutex<Out>,
    /// Held until the entry is gone, so the driver can wait for every flush at exit.
    _done: Sender<()>,
}

/// Bytes that would not go at once; `buf[at..]` is still to write.
struct Out {
    buf: Vec<u8>,
    at: usize,
    /// Close was asked for: shut our side once `buf` is written.
    closing: bool,
    /// While closing: when the last bytes went (or closing began).
    progress: Instant,
}

impl Writers {
    /// Starts the writer thread; `stall` bounds how long a closing connection may
    /// take none of its bytes.
    pub fn start(to_driver: ToDriver, stall: Duration) -> io::Result<Writers> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let shared = Arc::new(Shared {
            registry,
            waker,
            entries: Mutex::new(HashMap::new()),
            closing: Mutex::new(Vec::new()),
            next: AtomicUsize::new(0),
            to_driver,
            stall,
        });
        let for_thread = Arc::clone(&shared);
        thread::Builder::new()
            .name("writer".into())
            .spawn(move || write_loop(poll, &for_thread))?;
        Ok(Writers { shared })
    }
}

/// The driver's handle on one connection: bytes staged for it in this turn and
/// the chunk last read that the node has not taken. (How many bytes wait in all
/// is the driver's [`meshtalk_core::shell::flow::Flow`].)
pub struct Conn {
    entry: Arc<Entry>,
    shared: Arc<Shared>,
    /// The driver's poll, in which the socket is registered for reading.
    readers: Arc<Registry>,
    /// Bytes queued in this drain, written (or handed on) by [`Conn::flush`].
    staged: Vec<u8>,
    /// Or, while `staged` is empty: the bytes queued are this range of the
    /// driver's pool, which holds a room message once for all its peers.
    pooled: Option<Range<usize>>,
    /// The last chunk read, of which `taken` bytes were fed to the node; the
    /// socket is not read again until all are (so TCP slows a sender the node
    /// cannot keep up with).
    pending: Vec<u8>,
    taken: usize,
    /// The poll said readable and no read has found the socket empty since
    /// (readiness is edge-triggered: it is not said again until then).
    pub readable: bool,
    /// In the driver's queue of sockets to read.
    pub queued: bool,
    /// Closed or cut already: nothing to do when dropped.
    ended: bool,
}

/// What one read of a connection found.
pub enum Got {
    /// Bytes, now the connection's pending chunk.
    Data,
    /// Nothing to read now.
    Empty,
    /// End of stream (`None`) or an error.
    Closed(Option<String>),
}

impl Conn {
    /// Registers a connection's socket for reading in the driver's poll, under
    /// `read_token`, and hands it to the writer thread. `done` is held until the
    /// connection is flushed and closed, so the driver can wait for every one at exit.
    pub fn start(
        peer: PeerId,
        stream: TcpStream,
        writers: &Writers,
        readers: &Readers,
        read_token: Token,
        done: Sender<()>,
    ) -> io::Result<Conn> {
        let shared = Arc::clone(&writers.shared);
        stream.set_nonblocking(true)?;
        let token = shared.next.fetch_add(1, Ordering::Relaxed);
        let fd = stream.as_raw_fd();
        let entry = Arc::new(Entry {
            peer,
            token,
            stream,
            out: Mutex::new(Out {
                buf: Vec::new(),
                at: 0,
                closing: false,
                progress: Instant::now(),
            }),
            _done: done,
        });
        lock(&shared.entries).insert(token, Arc::clone(&entry));
        // Edge-triggered: an event comes only after a write would have blocked.
        if let Err(e) =
            shared
                .registry
                .register(&mut SourceFd(&fd), Token(token), Interest::WRITABLE)
        {
            lock(&shared.entries).remove(&token);
            return Err(e);
        }
        // Edge-triggered too: said once per arrival, so a socket is read until empty.
        if let Err(e) =
            readers
                .registry
                .register(&mut SourceFd(&fd), read_token, Interest::READABLE)
        {
            shared.forget(&entry);
            return Err(e);
        }
        Ok(Conn {
            entry,
            shared,
            readers: Arc::clone(&readers.registry),
            staged: Vec::new(),
            pooled: None,
            pending: Vec::new(),
            taken: 0,
            // Bytes may have come before the registration.
            readable: true,
            queued: false,
            ended: false,
        })
    }

    /// Reads one chunk into `buf`, kept as the pending chunk; call it only once
    /// the last chunk is all taken. A short read emptied the socket: it is not
    /// readable until the poll says so again.
    pub fn read(&mut self, buf: &mut [u8]) -> Got {
        loop {
            match (&self.entry.stream).read(buf) {
                Ok(0) => return Got::Closed(None),
                Ok(n) => {
                    self.readable = n == buf.len();
                    self.pending = buf.get(..n).unwrap_or_default().to_vec();
                    self.taken = 0;
                    return Got::Data;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.readable = false;
                    return Got::Empty;
                }
                Err(e) => return Got::Closed(Some(e.to_string())),
            }
        }
    }

    /// Queues `pool[range]` for the peer, without copying it while its queued
    /// bytes are one range of `pool`; they go at the next [`Conn::flush_from`],
    /// which must get the same pool (or [`Conn::settle`] first).
    pub fn send_shared(&mut self, pool: &[u8], range: Range<usize>) {
        if self.ended {
            return;
        }
        match &mut self.pooled {
            None if self.staged.is_empty() => self.pooled = Some(range),
            Some(queued) if queued.end == range.start => queued.end = range.end,
            _ => {
                self.settle(pool);
                self.staged
                    .extend_from_slice(pool.get(range).unwrap_or_default());
            }
        }
    }

    /// Copies the queued range of `pool` into the connection's own staging
    /// buffer: needed before the pool is reused or the connection dropped.
    pub fn settle(&mut self, pool: &[u8]) {
        if let Some(range) = self.pooled.take() {
            self.staged
                .extend_from_slice(pool.get(range).unwrap_or_default());
        }
    }

    /// [`Conn::flush`] for a connection whose queued bytes may be in `pool`: they
    /// are written from there, and only what the socket would not take is copied.
    pub fn flush_from(&mut self, pool: &[u8]) -> usize {
        let Some(range) = self.pooled.take() else {
            return self.flush();
        };
        if self.ended {
            return 0;
        }
        let bytes = pool.get(range).unwrap_or_default();
        let mut out = lock(&self.entry.out);
        if out.at < out.buf.len() {
            // Bytes already wait for writability: these go after them.
            out.buf.extend_from_slice(bytes);
            return 0;
        }
        let result = send_now(&self.entry.stream, bytes);
        if let Ok(n) = result
            && n < bytes.len()
        {
            out.buf.clear();
            out.buf
                .extend_from_slice(bytes.get(n..).unwrap_or_default());
            out.at = 0;
        }
        if result.as_ref().is_ok_and(|&n| n > 0) && out.closing {
            out.progress = Instant::now();
        }
        drop(out);
        self.took(result)
    }

    /// Writes the staged bytes now, as many as the socket takes without blocking;
    /// the rest go to the writer thread, which writes them when it can.
    /// Returns how many bytes the socket took now.
    pub fn flush(&mut self) -> usize {
        if self.staged.is_empty() || self.ended {
            return 0;
        }
        let mut out = lock(&self.entry.out);
        if out.at < out.buf.len() {
            // Bytes already wait for writability: these go after them.
            out.buf.extend_from_slice(&self.staged);
            self.staged.clear();
            return 0;
        }
        std::mem::swap(&mut out.buf, &mut self.staged);
        out.at = 0;
        let result = write_out(&self.entry.stream, &mut out);
        // All went (the usual case): the staging buffer keeps its room for next time.
        if out.buf.is_empty() {
            std::mem::swap(&mut out.buf, &mut self.staged);
        }
        self.staged.clear();
        if self.staged.capacity() > KEEP {
            self.staged = Vec::new();
        }
        drop(out);
        self.took(result)
    }

    /// How many bytes a write took; a failed write cuts the connection and
    /// tells the driver it closed.
    fn took(&mut self, result: io::Result<usize>) -> usize {
        result.unwrap_or_else(|e| {
            self.shared.fail(&self.entry, e);
            self.ended = true;
            0
        })
    }

    /// Bytes queued since the last [`Conn::flush`].
    pub fn staged(&self) -> usize {
        self.staged.len() + self.pooled.as_ref().map_or(0, Range::len)
    }

    /// What the node has not taken yet of the last chunk read.
    pub fn pending(&self) -> &[u8] {
        self.pending.get(self.taken..).unwrap_or_default()
    }

    /// The node took `n` more bytes; true when that was the last of the chunk
    /// (the socket may be read on).
    pub fn consume(&mut self, n: usize) -> bool {
        self.taken = (self.taken + n).min(self.pending.len());
        if self.taken == self.pending.len() && !self.pending.is_empty() {
            self.pending = Vec::new();
            self.taken = 0;
            return true;
        }
        false
    }

    /// Sends what is queued, then closes our side of the connection; until the
    /// peer closes its side (or [`LINGER`]) what it still sends is read and dropped,
    /// so that our last bytes are not lost to a reset.
    pub fn close(self, readers: &mut Readers) {
        if !self.ended {
            readers.linger(&self.entry);
        }
    }

    /// Cuts the connection now, dropping whatever is queued.
    pub fn abort(mut self) {
        self.ended = true;
        let _ = self.entry.stream.shutdown(Shutdown::Both);
        self.shared.forget(&self.entry);
    }
}

impl Drop for Conn {
    /// Flushes what is staged, then closes our side once the writer has written it
    /// all (or gives up after the stall timeout with no progress).
    fn drop(&mut self) {
        let fd = self.entry.stream.as_raw_fd();
        let _ = self.readers.deregister(&mut SourceFd(&fd));
        self.flush();
        if self.ended {
            return;
        }
        let mut out = lock(&self.entry.out);
        if out.at < out.buf.len() {
            out.closing = true;
            out.progress = Instant::now();
            drop(out);
            lock(&self.shared.closing).push(self.entry.token);
            // The writer thread may sleep with no timeout: it now needs one.
            let _ = self.shared.waker.wake();
        } else {
            drop(out);
            self.shared.shut(&self.entry);
        }
    }
}

impl Shared {
    /// Stops watching a connection; once nobody holds its entry, it is gone.
    fn forget(&self, entry: &Entry) {
        let fd = entry.stream.as_raw_fd();
        let _ = self.registry.deregister(&mut SourceFd(&fd));
        lock(&self.entries).remove(&entry.token);
    }

    /// All written: closes our side (a lingering connection is read on by the
    /// driver until the peer closes its side, or [`LINGER`]).
    fn shut(&self, entry: &Entry) {
        let _ = entry.stream.shutdown(Shutdown::Write);
        self.forget(entry);
    }

    /// A write failed: cuts the connection and tells the driver.
    fn fail(&self, entry: &Entry, error: io::Error) {
        let _ = entry.stream.shutdown(Shutdown::Both);
        self.forget(entry);
        let _ = self
            .to_driver
            .send(Msg::Closed(entry.peer, Some(error.to_string())));
    }
}

/// Locks a mutex, whether or not a thread panicked while holding it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sends `bytes` until all are sent or the socket would block; returns how many
/// went. A socket that takes nothing is an error.
fn send_now(stream: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    let socket = SockRef::from(stream);
    let mut at = 0;
    while at < bytes.len() {
        let rest = bytes.get(at..).unwrap_or_default();
        match socket.send_with_flags(rest, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) {
            Ok(0) => {
                return Err(io::Error::new(
                    ErrorKind::WriteZero,
                    "connection wrote nothing",
                ));
            }
            Ok(n) => at += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(at)
}

/// Writes `out.buf[out.at..]` until all is written or the socket would block
/// (through [`send_now`], the one write loop); returns the bytes written. A
/// socket that takes nothing is an error.
fn write_out(stream: &TcpStream, out: &mut Out) -> io::Result<usize> {
    let total = send_now(stream, out.buf.get(out.at..).unwrap_or_default())?;
    out.at += total;
    if out.at == out.buf.len() {
        out.buf.clear();
        if out.buf.capacity() > KEEP {
            out.buf = Vec::new();
        }
        out.at = 0;
    } else if out.at >= COMPACT_AT {
        out.buf.drain(..out.at);
        out.at = 0;
    }
    if total > 0 && out.closing {
        out.progress = Instant::now();
    }
    Ok(total)
}

/// The writer thread: whenever a socket with bytes waiting becomes writable,
/// writes them and tells the driver how many went; closes closing connections
/// once written, and cuts those that take nothing for the stall timeout.
fn write_loop(mut poll: Poll, shared: &Shared) {
    // Closing connections with bytes left are checked this often for a stall.
    let tick = (shared.stall / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut events = Events::with_capacity(256);
    loop {
        let timeout = (!lock(&shared.closing).is_empty()).then_some(tick);
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            diag!("the writer thread stops: {e}");
            return;
        }
        for event in &events {
            if event.token() == WAKER {
                continue;
            }
            let entry = lock(&shared.entries).get(&event.token().0).cloned();
            if let Some(entry) = entry {
                write_ready(shared, &entry);
            }
        }
        give_up_stalled(shared);
    }
}

/// Writes what waits for a writable connection; closes it once all is written.
fn write_ready(shared: &Shared, entry: &Entry) {
    let mut out = lock(&entry.out);
    if out.at == out.buf.len() {
        return;
    }
    match write_out(&entry.stream, &mut out) {
        Ok(n) => {
            let finished = out.closing && out.at == out.buf.len();
            drop(out);
            if finished {
                shared.shut(entry);
            } else if n > 0 {
                let _ = shared.to_driver.send(Msg::Wrote(entry.peer, n));
            }
        }
        Err(e) => {
            drop(out);
            shared.fail(entry, e);
        }
    }
}

/// Cuts closing connections that took none of their bytes for the stall timeout,
/// and forgets those already finished.
fn give_up_stalled(shared: &Shared) {
    let mut closing = lock(&shared.closing);
    if closing.is_empty() {
        return;
    }
    closing.retain(|token| {
        let Some(entry) = lock(&shared.entries).get(token).cloned() else {
            return false;
        };
        let stalled = lock(&entry.out).progress.elapsed() >= shared.stall;
        if stalled {
            let _ = entry.stream.shutdown(Shutdown::Both);
            shared.forget(&entry);
        }
        !stalled
    });
}

/// Token of the driver's waker in its poll.
pub const DRIVER_WAKER: Token = Token(usize::MAX);
/// Lingering connections' tokens in the driver's poll start here (those below
/// are the driver's own: peers' slots).
const LINGER_TOKENS: usize = 1 << 40;

/// A closed connection still read: its own handle on the socket (not the entry,
/// which holds the exit's `done`), the entry while the writer thread still writes
/// to it, and when it was last heard from or written.
struct Linger {
    stream: TcpStream,
    entry: Weak<Entry>,
    at: time::Instant,
}

/// The driver's readiness for reading: its poll, a waker for the other threads,
/// one read buffer for all connections, and the closed connections that linger.
pub struct Readers {
    poll: Poll,
    registry: Arc<Registry>,
    waker: Arc<Waker>,
    events: Events,
    /// One chunk's room, shared by every read.
    pub buf: Vec<u8>,
    /// Closed connections read (and dropped) until the peer closes too, by token.
    lingering: HashMap<usize, Linger>,
    next_linger: usize,
    /// The driver's clock, for when lingering connections were last heard from.
    clock: Clock,
}

impl Readers {
    pub fn new(clock: Clock) -> io::Result<Readers> {
        let poll = Poll::new()?;
        let registry = Arc::new(poll.registry().try_clone()?);
        let waker = Arc::new(Waker::new(poll.registry(), DRIVER_WAKER)?);
        Ok(Readers {
            poll,
            registry,
            waker,
            events: Events::with_capacity(1024),
            buf: vec![0; READ_BUF],
            lingering: HashMap::new(),
            next_linger: LINGER_TOKENS,
            clock,
        })
    }

    /// The driver's channel, waking this poll.
    pub fn to_driver(&self, tx: Sender<Msg>) -> ToDriver {
        ToDriver::new(tx, Arc::clone(&self.waker))
    }

    /// Sleeps until a socket is readable, a wake-up or `timeout`; each readable
    /// peer's slot (the token it was registered under) is put in `readable`.
    /// Lingering connections are read and dropped here.
    pub fn wait(&mut self, timeout: Option<Duration>, readable: &mut Vec<usize>) {
        if let Err(e) = self.poll.poll(&mut self.events, timeout) {
            if e.kind() != ErrorKind::Interrupted {
                diag!("polling the sockets failed: {e}");
                // Not a busy loop, whatever the cause.
                thread::sleep(Duration::from_millis(10));
            }
            return;
        }
        let mut heard = Vec::new();
        for event in &self.events {
            match event.token() {
                DRIVER_WAKER => {}
                Token(t) if t >= LINGER_TOKENS => heard.push(t),
                Token(slot) => readable.push(slot),
            }
        }
        for token in heard {
            self.drain_lingering(token);
        }
    }

    /// Keeps a closed connection's socket read until the peer closes (if it
    /// can: else the socket is left as it is).
    fn linger(&mut self, entry: &Arc<Entry>) {
        let Ok(stream) = entry.stream.try_clone() else {
            return;
        };
        let token = self.next_linger;
        self.next_linger += 1;
        let fd = stream.as_raw_fd();
        if self
            .registry
            .register(&mut SourceFd(&fd), Token(token), Interest::READABLE)
            .is_err()
        {
            return;
        }
        let linger = Linger {
            stream,
            entry: Arc::downgrade(entry),
            at: self.clock.now(),
        };
        self.lingering.insert(token, linger);
        // Bytes may already wait, with no edge to come.
        self.drain_lingering(token);
    }

    /// Reads and drops what a lingering connection sent; forgets it at its end.
    fn drain_lingering(&mut self, token: usize) {
        let Some(linger) = self.lingering.get_mut(&token) else {
            return;
        };
        let ended = loop {
            match (&linger.stream).read(&mut self.buf) {
                Ok(0) => break true,
                Ok(_) => linger.at = self.clock.now(),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                Err(_) => break true,
            }
        };
        if ended {
            self.end_lingering(token);
        }
    }

    fn end_lingering(&mut self, token: usize) {
        if let Some(linger) = self.lingering.remove(&token) {
            let fd = linger.stream.as_raw_fd();
            let _ = self.registry.deregister(&mut SourceFd(&fd));
        }
    }

    /// When the next lingering connection may be given up.
    pub fn linger_until(&self) -> Option<time::Instant> {
        self.lingering.values().map(|l| l.at + LINGER).min()
    }

    /// Gives up lingering connections quiet for [`LINGER`] since written out
    /// (one the writer thread still writes to lingers on).
    pub fn expire(&mut self) {
        let now = self.clock.now();
        let mut over = Vec::new();
        for (token, linger) in &mut self.lingering {
            if linger.entry.strong_count() > 0 {
                linger.at = now;
            } else if now.saturating_since(linger.at) >= LINGER {
                over.push(*token);
            }
        }
        for token in over {
            self.end_lingering(token);
        }
    }

    /// Stops every lingering connection (the program ends).
    pub fn clear(&mut self) {
        let tokens: Vec<usize> = self.lingering.keys().copied().collect();
        for token in tokens {
            self.end_lingering(token);
        }
    }
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
    fn an_os_error_reads_in_plain_words_without_its_number() {
        let refused = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(plain_error(&refused), "connection refused");
        let other = io::Error::other("Name or service not known");
        assert_eq!(plain_error(&other), "name or service not known");
    }

    /// A connection's near end with its poll and writer thread, and the far end.
    struct Opened {
        conn: Conn,
        far: TcpStream,
        readers: Readers,
        writers: Writers,
        /// What the writer thread tells the driver.
        progress: std::sync::mpsc::Receiver<Msg>,
        /// Disconnected once every holder of the connection's `done` is gone.
        done: std::sync::mpsc::Receiver<()>,
    }

    fn open() -> Opened {
        let (tx, progress) = std::sync::mpsc::channel();
        let readers = Readers::new(Clock::start()).expect("poll");
        let writers =
            Writers::start(readers.to_driver(tx), Duration::from_secs(5)).expect("writers");
        let (listener, near) = stream();
        let (far, _) = listener.accept().expect("accept");
        let (done_tx, done) = std::sync::mpsc::channel();
        let mut table = meshtalk_core::peers::PeerTable::<(), 1>::new(1);
        let peer = table
            .insert(None, meshtalk_core::peers::Direction::Inbound, None, ())
            .map_err(|_| "table full")
            .expect("peer");
        let conn = Conn::start(peer, near, &writers, &readers, Token(0), done_tx).expect("conn");
        Opened {
            conn,
            far,
            readers,
            writers,
            progress,
            done,
        }
    }

    #[test]
    fn bytes_a_socket_cannot_take_at_once_arrive_whole_and_in_order_then_the_close() {
        let Opened {
            mut conn,
            mut far,
            mut readers,
            writers: _writers,
            progress: rx,
            done: done_rx,
        } = open();
        // Far more than a loopback socket buffers: most of it waits for the writer thread.
        let sent: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 251) as u8).collect();
        for start in (0..sent.len()).step_by(1000) {
            conn.send_shared(&sent, start..(start + 1000).min(sent.len()));
        }
        let taken = conn.flush_from(&sent);
        assert!(
            taken < sent.len(),
            "the socket took all {taken} bytes at once"
        );
        let _ = far.set_read_timeout(Some(Duration::from_secs(10)));
        // Bytes past those the socket took at once come from the writer thread,
        // which reports them while the connection is open (a closing one's last
        // write may go unreported: nobody waits for it).
        let mut got = vec![0; taken + 1];
        far.read_exact(&mut got)
            .expect("read past what the socket took at once");
        let wrote = std::iter::from_fn(|| rx.recv_timeout(Duration::from_secs(5)).ok())
            .any(|msg| matches!(msg, Msg::Wrote(..)));
        assert!(wrote, "the writer thread reported its progress");
        conn.close(&mut readers);
        far.read_to_end(&mut got).expect("read to the close");
        assert!(
            got == sent,
            "{} bytes of {} arrived, or out of order",
            got.len(),
            sent.len()
        );
        let finished = done_rx.recv_timeout(Duration::from_secs(5));
        assert!(
            matches!(
                finished,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
            ),
            "every holder of `done` is gone once closed"
        );
    }

    #[test]
    fn pieces_of_the_pool_apart_from_each_other_arrive_whole_and_in_order() {
        let Opened {
            mut conn,
            mut far,
            mut readers,
            writers: _writers,
            progress: _progress,
            done: _done,
        } = open();
        let pool: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 251) as u8).collect();
        let mut want = Vec::new();
        // Five pieces of 1 MiB with gaps, more than the socket takes at once;
        // then many small pieces, which go after them.
        for (count, len, stride) in [(5, 1 << 20, 3 << 19), (24, 1000, 2000)] {
            for k in 0..count {
                let range = k * stride..k * stride + len;
                want.extend_from_slice(&pool[range.clone()]);
                conn.send_shared(&pool, range);
            }
            let taken = conn.flush_from(&pool);
            if count == 5 {
                assert!(taken > 0, "the socket took none of the pieces");
                assert!(taken < 5 << 20, "the socket took all {taken} bytes at once");
            }
        }
        conn.close(&mut readers);
        let _ = far.set_read_timeout(Some(Duration::from_secs(10)));
        let mut got = Vec::new();
        far.read_to_end(&mut got).expect("read to the close");
        assert!(
            got == want,
            "{} bytes of {} arrived, or out of order",
            got.len(),
            want.len()
        );
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
