//! The event vocabulary: what the node tells the person, and why peers leave.
//! A leaf: the outbox stores these events, and imports nothing else of the node.

use core::fmt;
use core::net::SocketAddr;

use crate::frame::FrameError;
use crate::noise::PeerError;
use crate::peers::{Direction, PeerId};
use crate::time::Duration;
pub use crate::wire::{BUSY, BUSY_SERVING, Refusal};
use crate::wire::{BannerError, WireError};

/// How a peer talks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Another meshtalk: binary frames, receipts, rooms.
    Native,
    /// A plain-text program (netcat, telnet, the older chat programs).
    Text(TextMode),
}

/// How a text peer separates its messages, and so how it is written to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextMode {
    /// One message per line.
    Lines,
    /// One message per write, with no newline (the older programs).
    Bare,
}

/// Something that happened, for the person. `S` is the text type: `&str` when polled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<S> {
    /// A peer is ready to chat.
    Connected {
        /// The peer's id, for later inputs and commands (`#id`).
        peer: PeerId,
        /// What the person calls it.
        alias: S,
        /// Its remote address.
        addr: SocketAddr,
        /// Who dialled whom.
        direction: Direction,
        /// Whether it is another meshtalk or a plain-text program.
        kind: Kind,
        /// The link is encrypted and the peer authenticated (protocol 2); its
        /// key is [`Node::remote_key`](crate::node::Node::remote_key). A text
        /// peer never is.
        encrypted: bool,
    },
    /// A `connect` failed.
    ConnectFailed {
        /// The dial's peer id, gone unless it is dialled again.
        peer: PeerId,
        /// What the person called the dial.
        alias: S,
        /// The shell's error, for the person.
        reason: S,
    },
    /// A message: from a peer directly, or a room message (`room` set) that
    /// arrived over the link `peer` from the node `from`.
    Message {
        /// The link it came over.
        peer: PeerId,
        /// Who said it: the link's alias, or a room message's sender.
        from: S,
        /// What was said, as the peer sent it (make it safe to show).
        text: S,
        /// Where a room message began; `None` for a direct message.
        room: Option<Room>,
    },
    /// A message of ours left for `peer`; a native peer's receipt follows as
    /// [`Event::Delivered`] or [`Event::Undelivered`] when `receipt` is true.
    Sent {
        /// Who it went to.
        peer: PeerId,
        /// Our id of the message, named again by its receipt.
        id: u32,
        /// A receipt will follow (a native peer); a text peer sends none.
        receipt: bool,
    },
    /// The peer confirmed message `id`.
    Delivered {
        /// Who confirmed it.
        peer: PeerId,
        /// Our id of the message.
        id: u32,
    },
    /// The link to `peer` ended before it confirmed message `id`.
    Undelivered {
        /// The link that ended.
        peer: PeerId,
        /// Our id of the message that went unconfirmed.
        id: u32,
    },
    /// A connection was told why it may not join, and closed.
    Refused {
        /// Where the connection came from.
        addr: SocketAddr,
        /// What it was told.
        why: Refusal,
    },
    /// Our broadcast `seq` left for `peers` direct peers.
    Broadcast {
        /// Our sequence number of the room message.
        seq: u32,
        /// How many direct peers it left for.
        peers: usize,
    },
    /// The peer's alias changed (a person's choice, or the name it announced).
    Alias {
        /// Whose alias changed.
        peer: PeerId,
        /// The alias now.
        alias: S,
    },
    /// A secure link's handshake is done and the peer proved its key
    /// ([`Node::remote_key`](crate::node::Node::remote_key)): the shell answers
    /// [`Input::Vetted`](crate::node::Input::Vetted) before the peer is ready
    /// (only with [`Secure::vet`](crate::node::Secure::vet)).
    Vet {
        /// The peer's id.
        peer: PeerId,
        /// The name it announced, as its alias here.
        alias: S,
    },
    /// A direct message across the mesh, to or from a node that may be no
    /// neighbour: ours left, was delivered or not, or one came for us.
    Routed {
        /// The link it concerns: the next hop ours left by, or the one theirs came in on.
        peer: PeerId,
        /// The far node's id: where ours goes, or where theirs began.
        node: u64,
        /// The far node's name.
        name: S,
        /// The sender's id of the message.
        id: u32,
        /// What happened.
        what: Routed<S>,
    },
    /// The peer is gone.
    Disconnected {
        /// The peer's id, no longer valid.
        peer: PeerId,
        /// What the person called it.
        alias: S,
        /// Why it left.
        reason: Reason<S>,
    },
}

/// What happened to a direct message across the mesh ([`Event::Routed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routed<S> {
    /// One came for us, through the mesh (the `peer` is the last relay, unless
    /// `hops` is 1), and its receipt went back.
    Received {
        /// What was said (make it safe to show).
        text: S,
        /// Nodes it crossed: 1 when it came straight from its sender.
        hops: u8,
        /// It was sealed to our key by the node it names ([`crate::noise::sealed`]):
        /// the relays could not read it, nor forge its sender.
        sealed: bool,
    },
    /// Ours left for the next hop; a receipt or a reason follows.
    Sent,
    /// The far node showed ours: its receipt came back.
    Delivered,
    /// Ours was not delivered, and why.
    Undelivered(Unroutable),
}

/// Why a direct message across the mesh went undelivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unroutable {
    /// A node on the way (or this one) knows no route to the destination.
    NoRoute,
    /// The message ran out of hops on the way.
    HopLimit,
    /// The link it left by dropped before the receipt came back.
    LinkLost,
    /// No receipt came back in time (a link further on failed).
    Timeout,
    /// The destination could not open it: it was not sealed to its key, or
    /// was changed on the way.
    Unreadable,
    /// A newer node said so with a code this one does not know.
    Unknown,
}

impl Unroutable {
    /// Its code in [`Message::RoutedAck`](crate::wire::Message::RoutedAck)
    /// (0 is delivered).
    pub fn code(self) -> u8 {
        match self {
            Unroutable::NoRoute => 1,
            Unroutable::HopLimit => 2,
            Unroutable::LinkLost => 3,
            Unroutable::Timeout => 4,
            Unroutable::Unreadable => 5,
            Unroutable::Unknown => u8::MAX,
        }
    }

    /// The reason a code names; `None` for 0 (delivered).
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => return None,
            1 => Unroutable::NoRoute,
            2 => Unroutable::HopLimit,
            3 => Unroutable::LinkLost,
            4 => Unroutable::Timeout,
            5 => Unroutable::Unreadable,
            _ => Unroutable::Unknown,
        })
    }
}

impl fmt::Display for Unroutable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unroutable::NoRoute => {
                "no route to it is known on the way; try again once it is heard from"
            }
            Unroutable::HopLimit => "it is farther away than the hop limit",
            Unroutable::LinkLost => "the link it left by dropped before its receipt came back",
            Unroutable::Timeout => {
                "no receipt came back in time; a link on the way may have failed"
            }
            Unroutable::Unreadable => {
                "its node could not open it: the key it was sealed to is not its own"
            }
            Unroutable::Unknown => "a node on the way could not deliver it",
        })
    }
}

/// Where a room message came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Room {
    /// The node id of the room message's first sender.
    pub origin: u64,
    /// That node's sequence number of it.
    pub seq: u32,
}

/// Why a peer left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason<S> {
    /// A person here disconnected it.
    Local,
    /// The peer said goodbye, with its reason.
    Bye(S),
    /// The connection closed.
    Closed,
    /// The connection failed (the shell's error).
    Lost(S),
    /// The peer broke the protocol.
    Fault(Fault),
    /// A second link to a node already linked as `keep` (known as `alias`): this one goes.
    Duplicate {
        /// The link that stays.
        keep: PeerId,
        /// The alias of the link that stays.
        alias: S,
    },
    /// Nothing came from the peer for this long, not even an answer to a ping.
    NoAnswer(Duration),
    /// The node we dialled would not take us, and said why.
    Refused(Refusal),
    /// The shell did not trust the key the peer proved (`known_peers` pins
    /// another key to its name, or `--strict-keys` knows none).
    Untrusted,
}

/// Ways a peer breaks the protocol; each closes that peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A frame could not be read.
    Frame(FrameError),
    /// A frame's body is no valid message.
    Wire(WireError),
    /// The banner line is wrong.
    Banner(BannerError),
    /// The banner was started but not finished in time.
    BannerUnfinished,
    /// A message other than hello came first.
    NoHello,
    /// The banner came but no hello followed in time.
    HelloMissing,
    /// A frame was started but not finished in time.
    FrameUnfinished,
    /// The connection loops back to this very node.
    Itself,
    /// The secure link failed: its handshake, or a message's integrity check.
    Secure(PeerError),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Frame(e) => write!(f, "{e}"),
            Fault::Wire(e) => write!(f, "{e}"),
            Fault::Banner(e) => write!(f, "{e}"),
            Fault::BannerUnfinished => f.write_str("banner not finished in time"),
            Fault::NoHello => f.write_str("message before hello"),
            Fault::HelloMissing => f.write_str("no hello after the banner"),
            Fault::FrameUnfinished => f.write_str("frame not finished in time"),
            Fault::Itself => f.write_str("connected to this node itself"),
            Fault::Secure(e) => write!(f, "{e}"),
        }
    }
}

impl<S: fmt::Display> fmt::Display for Reason<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Local => f.write_str("disconnected here"),
            Reason::Bye(why) => write!(f, "peer left: {why}"),
            Reason::Closed => f.write_str("connection closed"),
            Reason::Lost(why) => write!(f, "connection lost: {why}"),
            Reason::Fault(fault) => write!(f, "protocol error: {fault}"),
            Reason::Duplicate { keep, alias } => write!(f, "already connected to {alias} ({keep})"),
            Reason::NoAnswer(silent) => write!(f, "no answer for {silent}"),
            Reason::Refused(why) => write!(f, "refused: {why}"),
            Reason::Untrusted => f.write_str("its key is not the one trusted for its name here"),
        }
    }
}

impl<S> Reason<S> {
    /// Whether an outbound peer that dropped for this reason is dialled again
    /// (`--reconnect`): not one a person disconnected, a second link the node closed,
    /// one that refused us as busy (a typed [`Refusal`]), or this very node.
    pub fn redials(&self) -> bool {
        match self {
            Reason::Local
            | Reason::Untrusted
            | Reason::Duplicate { .. }
            | Reason::Fault(Fault::Itself | Fault::Secure(PeerError::RoomKey)) => false,
            Reason::Refused(why) => !why.is_busy(),
            Reason::Bye(_)
            | Reason::Closed
            | Reason::Lost(_)
            | Reason::NoAnswer(_)
            | Reason::Fault(_) => true,
        }
    }
}

impl<S> Reason<S> {
    pub(super) fn map<T>(self, mut f: impl FnMut(S) -> T) -> Reason<T> {
        match self {
            Reason::Local => Reason::Local,
            Reason::Bye(s) => Reason::Bye(f(s)),
            Reason::Closed => Reason::Closed,
            Reason::Lost(s) => Reason::Lost(f(s)),
            Reason::Fault(x) => Reason::Fault(x),
            Reason::Duplicate { keep, alias } => Reason::Duplicate {
                keep,
                alias: f(alias),
            },
            Reason::NoAnswer(silent) => Reason::NoAnswer(silent),
            Reason::Refused(why) => Reason::Refused(why),
            Reason::Untrusted => Reason::Untrusted,
        }
    }
}

impl<S> Event<S> {
    /// The peer the event is about; `None` for a room broadcast's count and a refused
    /// connection, which no peer was made for.
    pub fn peer(&self) -> Option<PeerId> {
        match self {
            Event::Connected { peer, .. }
            | Event::ConnectFailed { peer, .. }
            | Event::Message { peer, .. }
            | Event::Sent { peer, .. }
            | Event::Delivered { peer, .. }
            | Event::Undelivered { peer, .. }
            | Event::Alias { peer, .. }
            | Event::Vet { peer, .. }
            | Event::Routed { peer, .. }
            | Event::Disconnected { peer, .. } => Some(*peer),
            Event::Broadcast { .. } | Event::Refused { .. } => None,
        }
    }

    /// The same event with its text converted by `f`. Inline: `event_text`, in
    /// another module (so another codegen unit), calls it once per polled event.
    #[inline]
    pub fn map<T>(self, mut f: impl FnMut(S) -> T) -> Event<T> {
        match self {
            Event::Connected {
                peer,
                alias,
                addr,
                direction,
                kind,
                encrypted,
            } => Event::Connected {
                encrypted,
                peer,
                alias: f(alias),
                addr,
                direction,
                kind,
            },
            Event::ConnectFailed {
                peer,
                alias,
                reason,
            } => Event::ConnectFailed {
                peer,
                alias: f(alias),
                reason: f(reason),
            },
            Event::Message {
                peer,
                from,
                text,
                room,
            } => Event::Message {
                peer,
                from: f(from),
                text: f(text),
                room,
            },
            Event::Sent { peer, id, receipt } => Event::Sent { peer, id, receipt },
            Event::Delivered { peer, id } => Event::Delivered { peer, id },
            Event::Undelivered { peer, id } => Event::Undelivered { peer, id },
            Event::Refused { addr, why } => Event::Refused { addr, why },
            Event::Broadcast { seq, peers } => Event::Broadcast { seq, peers },
            Event::Alias { peer, alias } => Event::Alias {
                peer,
                alias: f(alias),
            },
            Event::Vet { peer, alias } => Event::Vet {
                peer,
                alias: f(alias),
            },
            Event::Routed {
                peer,
                node,
                name,
                id,
                what,
            } => Event::Routed {
                peer,
                node,
                name: f(name),
                id,
                what: match what {
                    Routed::Received { text, hops, sealed } => Routed::Received {
                        text: f(text),
                        hops,
                        sealed,
                    },
                    Routed::Sent => Routed::Sent,
                    Routed::Delivered => Routed::Delivered,
                    Routed::Undelivered(why) => Routed::Undelivered(why),
                },
            },
            Event::Disconnected {
                peer,
                alias,
                reason,
            } => Event::Disconnected {
                peer,
                alias: f(alias),
                reason: reason.map(f),
            },
        }
    }
}
