//! The node's errors: commands it could not carry out, and misuses by the shell.

use core::fmt;

use crate::command::Verb;
use crate::limits::{MAX_BANNER, MAX_HOST, WINDOW};
use crate::peers::{InsertError, LookupError, PeerId};
use crate::wire::{self, Refusal};

/// An accepted connection the node cannot take (its peer table is full), as
/// quinn-proto's `AcceptError`: the shell writes [`AcceptError::response`] to the
/// connection, then closes it. No protocol text is the shell's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcceptError {
    /// Why the node could not take it, for the person here.
    pub cause: InsertError,
    /// What the connection is told, typed.
    pub refusal: Refusal,
    response: [u8; MAX_BANNER],
    len: usize,
}

impl AcceptError {
    /// The refusal for `cause`, with its line ready for the connection.
    pub(super) fn new(cause: InsertError) -> Self {
        let refusal = match cause {
            InsertError::Full { limit } => Refusal::Full { limit },
            _ => Refusal::Unknown,
        };
        let mut response = [0; MAX_BANNER];
        // A refusal line fits MAX_BANNER by construction; an empty one if not.
        let len = wire::write_refusal_line(refusal, &mut response).unwrap_or(0);
        AcceptError {
            cause,
            refusal,
            response,
            len,
        }
    }

    /// The bytes to write to the refused connection before closing it: one line
    /// that netcat shows and a meshtalk that dialled reads as a typed refusal.
    pub fn response(&self) -> &[u8] {
        self.response.get(..self.len).unwrap_or_default()
    }
}

impl fmt::Display for AcceptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.cause)
    }
}

/// A command the node could not carry out, or a misuse by the shell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeError<'a> {
    /// The target names no peer, or more than one.
    Lookup(LookupError<'a>),
    /// The peer could not be added or renamed.
    Table(InsertError),
    /// An accepted connection could not be taken: write its response, then close it.
    Accept(AcceptError),
    /// Nobody is connected.
    NoPeers,
    /// Several peers are connected and the command (`verb`) did not say which.
    WhichPeer {
        /// How many peers are connected.
        peers: usize,
        /// The command that needs a target.
        verb: Verb,
    },
    /// A `send` in a many-peer node without both a target and a message: the first
    /// word is always the target there, so a mistyped one never reaches the only peer.
    SendNeedsTarget,
    /// The peer is still connecting.
    NotReady(PeerId),
    /// The peer dropped and is being dialled again (`--reconnect`).
    Reconnecting(PeerId),
    /// A one-peer node is in a chat already.
    AlreadyConnected,
    /// Too many messages to this peer await their receipt.
    WindowFull(PeerId),
    /// The message is longer than a frame can carry.
    TooLong {
        /// The message's length in bytes.
        len: usize,
        /// The longest a message may be.
        max: usize,
    },
    /// The host name is longer than any host name can be.
    HostTooLong,
    /// No peer has this name, and the node of this name heard through the mesh
    /// has no usable route now (its next hop dropped, or it was not heard for long).
    NoRoute(&'a str),
    /// The node of this name heard through the mesh has not announced its key
    /// here yet, so a direct message cannot be sealed to it.
    NoKey(&'a str),
    /// Too many direct messages across the mesh await their receipt.
    RoutedFull,
    /// The shell did not drain the outputs before giving a new input.
    Busy,
}

impl fmt::Display for NodeError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeError::Lookup(e) => write!(f, "{e}"),
            NodeError::Table(e) => write!(f, "{e}"),
            NodeError::Accept(e) => write!(f, "{e}"),
            NodeError::NoPeers => {
                f.write_str("not connected to anyone; use connect <host> <port> first")
            }
            NodeError::WhichPeer { peers, verb } => {
                // The target, optional with one peer, is what is missing here.
                let usage = match verb {
                    Verb::Disconnect => "disconnect <alias|ip|#id>",
                    verb => verb.usage(),
                };
                write!(f, "{peers} peers are connected; say which: {usage}")
            }
            NodeError::SendNeedsTarget => {
                f.write_str("send needs a peer and a message; usage: send <alias|ip|#id> <message>")
            }
            NodeError::AlreadyConnected => {
                f.write_str("already connected to a chat; disconnect before connecting to another")
            }
            NodeError::NotReady(id) => write!(f, "{id} is still connecting; try again in a moment"),
            NodeError::Reconnecting(id) => write!(
                f,
                "{id} is disconnected and being dialled again; send once it is back, or `disconnect {id}` to stop"
            ),
            NodeError::WindowFull(id) => write!(
                f,
                "{WINDOW} messages to {id} still await their receipt; wait for them or check the link"
            ),
            NodeError::TooLong { len, max } => {
                write!(f, "message of {len} bytes is too long (max {max})")
            }
            NodeError::HostTooLong => write!(f, "host name longer than {MAX_HOST} characters"),
            NodeError::NoRoute(name) => write!(
                f,
                "{name} was heard through the mesh, but no link leads to it now; try again once it speaks in the room"
            ),
            NodeError::NoKey(name) => write!(
                f,
                "{name}'s key has not reached this node yet, so nothing can be sealed to it; nodes announce their keys as their links come up, try again in a moment"
            ),
            NodeError::RoutedFull => f.write_str(
                "as many messages across the mesh as this node can track still await their receipt; wait for them",
            ),
            NodeError::Busy => f.write_str("outputs not drained before the next input"),
        }
    }
}

impl From<InsertError> for NodeError<'_> {
    fn from(e: InsertError) -> Self {
        NodeError::Table(e)
    }
}

impl<'a> From<LookupError<'a>> for NodeError<'a> {
    fn from(e: LookupError<'a>) -> Self {
        NodeError::Lookup(e)
    }
}
