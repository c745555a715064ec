//! The driver's one channel: what every other thread (listener, dialers, writer,
//! prompt, signals) tells the driver thread, and the sender that also wakes its poll.
//! A leaf of the host: the I/O threads and the driver both import it, and it
//! imports neither, so no I/O file depends on the driver.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::mpsc::{SendError, Sender};

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
    Nearby(crate::discover::Change, crate::discover::Seen),
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
