//! What the shell hands the node and what it polls back.

use core::net::SocketAddr;

use super::Event;
use crate::command::Command;
use crate::noise::KEY_LEN;
use crate::peers::PeerId;
use crate::time::Instant;

/// What the shell hands the node.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// A person's command.
    Command(Command<'a>),
    /// Someone connected to our listener.
    Accepted {
        /// The remote address (its IP counts toward the per-address limit).
        addr: SocketAddr,
        /// 32 fresh random bytes (the OS's; a test's seed): the ephemeral key of
        /// the connection's Noise handshake. Never reuse them.
        entropy: [u8; KEY_LEN],
    },
    /// The dial asked for by [`Output::Connect`] succeeded.
    Connected {
        /// The peer the dial was for.
        peer: PeerId,
        /// The address actually connected to.
        addr: SocketAddr,
        /// 32 fresh random bytes, as for [`Input::Accepted`].
        entropy: [u8; KEY_LEN],
    },
    /// The dial asked for by [`Output::Connect`] failed; `reason` is shown to the person.
    ConnectFailed {
        /// The peer the dial was for.
        peer: PeerId,
        /// The shell's error, in words.
        reason: &'a str,
    },
    /// Bytes read from a peer's connection.
    Received {
        /// Whose connection they came from.
        peer: PeerId,
        /// The bytes, in the order read.
        bytes: &'a [u8],
    },
    /// The connection ended: `None` for an orderly close, else the error.
    Closed {
        /// Whose connection ended.
        peer: PeerId,
        /// The error, in words; `None` for an orderly close.
        error: Option<&'a str>,
    },
    /// The time asked for by [`Output::Timeout`] has come. `held` names the peers
    /// whose received bytes the shell holds unfed (flow control, a turn's budget):
    /// they are alive, and a frame they are in the middle of is late by our doing.
    Timeout {
        /// The peers with received bytes not fed yet.
        held: &'a [PeerId],
    },
    /// The shell's verdict on the key of a peer it was told to vet
    /// ([`Event::Vet`](super::Event::Vet)): trusted, the peer is ready; not,
    /// it is told so and closed ([`Reason::Untrusted`](super::Reason::Untrusted)).
    Vetted {
        /// The peer vetted.
        peer: PeerId,
        /// Whether its key is trusted.
        trusted: bool,
    },
    /// Dial again a peer in [`Phase::Reconnecting`](super::Phase::Reconnecting) (the shell keeps where it was
    /// dialled, and when to try); answered like a `connect`'s [`Output::Connect`].
    Redial {
        /// The peer to dial, as [`Phase::Reconnecting`](super::Phase::Reconnecting).
        peer: PeerId,
        /// The host it was dialled at.
        host: &'a str,
        /// The port it was dialled at.
        port: u16,
    },
}

/// What the node made of an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a Received input may have been taken only in part"]
pub enum Handled {
    /// The input was taken whole.
    Done,
    /// This many bytes of a [`Input::Received`] were taken; feed the rest after draining.
    Consumed(usize),
    /// The accepted connection is this peer.
    Accepted(PeerId),
}

/// What the node wants done, polled until [`Output::Timeout`].
#[derive(Debug)]
#[must_use = "every output must be carried out, until Output::Timeout"]
pub enum Output<'a> {
    /// Write these bytes to the peer's connection, in order. `shared`: they are
    /// the same bytes as the previous `Transmit` of this drain (a room message's
    /// next receiver), so a shell that copies them may reuse that copy.
    Transmit {
        /// Whose connection to write to.
        peer: PeerId,
        /// The bytes, lent until the next poll.
        data: &'a [u8],
        /// The bytes are those of the previous `Transmit` of this drain.
        shared: bool,
    },
    /// Dial `host:port` for this peer, then report [`Input::Connected`] or [`Input::ConnectFailed`].
    Connect {
        /// The peer the connection is for.
        peer: PeerId,
        /// The host name or address to dial.
        host: &'a str,
        /// The TCP port to dial.
        port: u16,
    },
    /// Send what is queued for the peer, then close its connection.
    Close {
        /// Whose connection to close.
        peer: PeerId,
    },
    /// Something to show the person.
    Event(Event<&'a str>),
    /// Nothing more to do now: call again with [`Input::Timeout`] at this time, if any.
    Timeout(Option<Instant>),
}
