//! The driver's one channel: what every other thread (listener, dialers, writer,
//! prompt, signals) tells the driver thread, and the sender that also wakes its poll.
//! A leaf of the host: the I/O threads and the driver both import it, and it
//! imports neither, so no I/O file depends on the driver.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::mpsc::{SendError, Sender};
use std::time::Instant;

use meshtalk_core::noise::KEY_LEN;
use meshtalk_core::peers::PeerId;
use mio::Waker;

/// Everything the driver hears about, from every other thread.
pub enum Msg {
    /// A line typed (or piped) on stdin.
    Line(String),
    /// Stdin ended: say goodbye and quit.
    EndOfInput,
    /// The listener accepted a connection.
    Accepted(TcpStream, SocketAddr),
    /// A dial asked for by the node finished.
    Dialed(PeerId, io::Result<TcpStream>),
    /// A peer's writer wrote this many of the bytes queued for it.
    Wrote(PeerId, usize),
    /// A peer's connection ended: `None` for an orderly close, else the error.
    Closed(PeerId, Option<String>),
    /// SIGINT or SIGTERM (named): say goodbye and quit, whatever the mode.
    Signal(&'static str),
    /// LAN discovery found, updated or lost a node nearby.
    Nearby(Change, Seen),
}

/// The driver's channel, which also wakes the driver's poll: every thread but the
/// driver's own talks to it through this.
#[derive(Clone)]
pub struct ToDriver {
    tx: Sender<Msg>,
    waker: Arc<Waker>,
}

impl ToDriver {
    pub fn new(tx: Sender<Msg>, waker: Arc<Waker>) -> ToDriver {
        ToDriver { tx, waker }
    }

    /// Queues `msg` for the driver and wakes it; an error once the driver is gone.
    pub fn send(&self, msg: Msg) -> Result<(), SendError<Msg>> {
        self.tx.send(msg)?;
        let _ = self.waker.wake();
        Ok(())
    }
}

/// A node heard nearby, as the driver shows and dials it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// Its static key, as its beacon says (the Noise handshake proves it).
    pub key: [u8; KEY_LEN],
    /// Its name; empty when its beacon gave none we could read.
    pub name: String,
    /// The addresses to dial it at (source address, TCP port), IPv4 first.
    pub addrs: Vec<SocketAddr>,
    /// When a beacon from it last came.
    pub last_seen: Instant,
    /// Whether it is in our room.
    pub in_room: bool,
}

/// What changed about a node nearby.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Found,
    Changed,
    Lost,
}

impl Change {
    pub fn name(self) -> &'static str {
        match self {
            Change::Found => "found",
            Change::Changed => "changed",
            Change::Lost => "lost",
        }
    }
}
