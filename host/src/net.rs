//! The I/O threads: listener, stdin, dialers, and a reader and a writer per
//! connection. They only move bytes; every decision is the driver's.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread;
use std::time::Duration;

use meshtalk_core::peers::PeerId;

use crate::driver::Msg;
use crate::log::{debug, diag};

/// How long a dial may take before it is given up.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// After we close our side, how long to wait for the peer to close its side.
const LINGER: Duration = Duration::from_secs(5);
/// One read's buffer.
const READ_BUF: usize = 64 * 1024;
/// Bytes gathered into one write at most (the rest waits for the next write).
const WRITE_BATCH: usize = 256 * 1024;

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

/// What the driver asks of a connection's writer.
enum ToWriter {
    Data(Vec<u8>),
    /// Write what is queued, then close our side.
    Close,
}

/// The driver's handle on one connection: its writer's queue.
pub struct Conn {
    to_writer: Sender<ToWriter>,
}

impl Conn {
    /// Starts the reader and the writer threads of a connection. `done` is held by
    /// the writer until it ends, so the driver can wait for every writer at exit.
    pub fn start(
        peer: PeerId,
        stream: TcpStream,
        to_driver: &Sender<Msg>,
        done: Sender<()>,
    ) -> io::Result<Conn> {
        let reader = stream.try_clone()?;
        let (to_writer, queue) = channel();
        let from_writer = to_driver.clone();
        thread::Builder::new()
            .name(format!("write {peer}"))
            .spawn(move || write_loop(peer, stream, queue, from_writer, done))?;
        let from_reader = to_driver.clone();
        thread::Builder::new()
            .name(format!("read {peer}"))
            .spawn(move || read_loop(peer, reader, from_reader))?;
        Ok(Conn { to_writer })
    }

    /// Queues bytes for the peer.
    pub fn send(&self, data: Vec<u8>) {
        let _ = self.to_writer.send(ToWriter::Data(data));
    }

    /// Sends what is queued, then closes our side of the connection.
    pub fn close(self) {
        let _ = self.to_writer.send(ToWriter::Close);
    }
}

/// Blocking reads until end of stream or an error, each read handed to the driver.
fn read_loop(peer: PeerId, mut stream: TcpStream, to_driver: Sender<Msg>) {
    let mut buf = vec![0; READ_BUF];
    let error = loop {
        match stream.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => {
                if to_driver.send(Msg::Data(peer, buf[..n].to_vec())).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => break Some(e.to_string()),
        }
    };
    let _ = to_driver.send(Msg::Closed(peer, error));
}

/// Writes what the driver queues, batching whatever is waiting into one write.
fn write_loop(
    peer: PeerId,
    mut stream: TcpStream,
    queue: Receiver<ToWriter>,
    to_driver: Sender<Msg>,
    _done: Sender<()>,
) {
    let mut batch = Vec::new();
    // The queue closes when the driver forgets the connection: nothing more to write.
    while let Ok(first) = queue.recv() {
        let mut close = false;
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                ToWriter::Data(data) => batch.extend_from_slice(&data),
                ToWriter::Close => close = true,
            }
            if close || batch.len() >= WRITE_BATCH {
                break;
            }
            // Empty or closed: write what we have.
            next = queue.try_recv().ok();
        }
        if !batch.is_empty() {
            if let Err(e) = stream.write_all(&batch) {
                let _ = stream.shutdown(Shutdown::Both);
                let _ = to_driver.send(Msg::Closed(peer, Some(e.to_string())));
                return;
            }
            batch.clear();
        }
        if close {
            let _ = stream.flush();
            let _ = stream.shutdown(Shutdown::Write);
            // The reader ends when the peer closes its side, or after this long.
            let _ = stream.set_read_timeout(Some(LINGER));
            return;
        }
    }
}
