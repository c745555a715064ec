//! What can go wrong in a Noise session, split by blame: the peer's bytes, or
//! this side's call (a buffer too small, a call out of turn).

use core::fmt;

use super::MAX_MESSAGE;
use super::sealed::MAX_AD;
use crate::limits::{MAX_BANNER, MAX_BATCH};

/// A call to a [`super::Session`], or to seal or open a [`super::sealed`]
/// message, that failed, by who is to blame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoiseError {
    /// The peer's bytes are wrong: close the link and show the reason. The
    /// session is failed for good (keys wiped) and refuses every later call.
    /// (A sealed message that fails is dropped; there is no session.)
    Peer(PeerError),
    /// This side's call is wrong (a bug in the caller, or a buffer to grow):
    /// the session is unchanged and the call may be made again.
    Local(LocalError),
}

/// Bytes from the peer that the session refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerError {
    /// With a room key, the first handshake message from the peer did not
    /// authenticate: the peer holds another room key (or none), or does not
    /// speak meshtalk's Noise at all. No static key was sent to it or taken from it.
    RoomKey,
    /// A handshake message (numbered from 1, counting both sides') that is too
    /// short, fails its tag or was made with another prologue: damaged in transit,
    /// another protocol version or banner, or not a meshtalk node.
    Handshake {
        /// Which handshake message, 1 to 3.
        message: u8,
    },
    /// A transport message failed its integrity check: damaged, forged,
    /// replayed or reordered in transit.
    Integrity,
    /// An opened transport message is not whole frames, one to [`MAX_BATCH`]
    /// of them: the peer's sender is broken.
    Batch,
    /// A sealed message ([`super::sealed`]) that does not open: sealed to
    /// another node's key, damaged, bound to other associated data or another
    /// protocol version, or forged. Drop it; nothing else changes.
    Sealed,
    /// A sealed message that opens but names a sender key of low order, which
    /// no node holds and anyone can write as: a forgery. Drop it.
    WeakSender,
    /// A message longer than Noise allows ([`MAX_MESSAGE`] bytes).
    TooLong {
        /// Its length.
        len: usize,
    },
}

/// A call this side got wrong; nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalError {
    /// The output buffer is too small for what the call writes.
    BufferTooSmall {
        /// Bytes of room the call needs.
        needed: usize,
    },
    /// What would be written exceeds one Noise message ([`MAX_MESSAGE`] bytes).
    TooLong {
        /// The length it would have.
        len: usize,
    },
    /// The banner bound into the prologue is longer than [`MAX_BANNER`].
    BannerTooLong {
        /// Its length.
        len: usize,
    },
    /// The associated data bound into a sealed message is longer than
    /// [`super::sealed::MAX_AD`].
    AdTooLong {
        /// Its length.
        len: usize,
    },
    /// The recipient's key given to [`super::sealed::seal`] is of low order:
    /// anyone could open what is sealed to it, so nothing is.
    WeakKey,
    /// The call does not fit the session's step (e.g. `encrypt` during the
    /// handshake, or reading when it is our turn to write).
    OutOfTurn {
        /// What the session expects instead.
        expected: super::Step,
    },
    /// The session failed earlier (a [`NoiseError::Peer`] error) and takes no calls.
    Failed,
    /// This direction has sent 2^64 - 1 messages (or the cipher refused): the
    /// link must be made again for fresh keys.
    Exhausted,
}

impl fmt::Display for NoiseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoiseError::Peer(e) => e.fmt(f),
            NoiseError::Local(e) => e.fmt(f),
        }
    }
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerError::RoomKey => {
                f.write_str("handshake failed: not the same room key, or not a meshtalk node")
            }
            PeerError::Handshake { message } => write!(
                f,
                "handshake failed at message {message}: damaged in transit, another \
                 protocol version, or not a meshtalk node"
            ),
            PeerError::Integrity => f.write_str(
                "message failed its integrity check (damaged, forged or replayed in \
                 transit); the link is closed",
            ),
            PeerError::Batch => write!(
                f,
                "an opened message was not 1 to {MAX_BATCH} whole frames; the link is closed"
            ),
            PeerError::Sealed => f.write_str(
                "a sealed message did not open: not for this node, damaged in transit, \
                 another protocol version, or forged; it was dropped",
            ),
            PeerError::WeakSender => f.write_str(
                "a sealed message names a sender key that anyone can write as (low \
                 order); it was dropped as a forgery",
            ),
            PeerError::TooLong { len } => write!(
                f,
                "peer sent a {len}-byte message, over the {MAX_MESSAGE} bytes a Noise \
                 message may have"
            ),
        }
    }
}

impl fmt::Display for LocalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocalError::BufferTooSmall { needed } => {
                write!(f, "buffer is too small: {needed} bytes needed")
            }
            LocalError::TooLong { len } => write!(
                f,
                "message would be {len} bytes, over the {MAX_MESSAGE} bytes of one Noise \
                 message; send less at once"
            ),
            LocalError::BannerTooLong { len } => write!(
                f,
                "banner is {len} bytes, over the {MAX_BANNER} a prologue binds"
            ),
            LocalError::AdTooLong { len } => write!(
                f,
                "associated data is {len} bytes, over the {MAX_AD} a sealed message binds"
            ),
            LocalError::WeakKey => f.write_str(
                "the recipient's key is of low order (anyone could read what is sealed \
                 to it); check where the key came from",
            ),
            LocalError::OutOfTurn { expected } => {
                write!(f, "call out of turn: the session expects {expected}")
            }
            LocalError::Failed => {
                f.write_str("the secure session failed earlier; connect again for a new one")
            }
            LocalError::Exhausted => f.write_str(
                "this link has used up its message counter; connect again for fresh keys",
            ),
        }
    }
}

impl From<PeerError> for NoiseError {
    fn from(e: PeerError) -> Self {
        NoiseError::Peer(e)
    }
}

impl From<LocalError> for NoiseError {
    fn from(e: LocalError) -> Self {
        NoiseError::Local(e)
    }
}
