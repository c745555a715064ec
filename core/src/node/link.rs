//! A connection's state: its phase, receive buffer, receipts and timers' marks.

use heapless::{String, Vec};

use super::{Kind, Refusal};
use crate::frame::FrameDecoder;
use crate::limits::WINDOW;
use crate::noise::{KEY_LEN, Session};
use crate::time::Instant;
use crate::wire::{MAX_BANNER, MAX_NAME};

/// A connection's progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The shell is dialling.
    Dialing,
    /// Connected; waiting for the first bytes or a banner.
    Greeting,
    /// Banners exchanged; waiting for the peer's hello (protocol 1), or the
    /// Noise handshake under way, whose last messages carry the hellos (2).
    Hello,
    /// Ready to chat.
    Ready(Kind),
    /// Dropped, and dialled again by the shell ([`Input::Redial`](super::Input::Redial)) until it is back
    /// or a person disconnects it: it keeps its id and alias meanwhile.
    Reconnecting,
}

pub(super) enum Rx<const F: usize> {
    /// The first bytes, and the room's lines held for the connection until it is
    /// known to be a text peer (they go out then, in its form).
    Banner(Vec<u8, MAX_BANNER>, Vec<u8, F>),
    Frames(FrameDecoder<F>),
    Text(Vec<u8, F>),
}

/// A connection's secure session, from its first entropy to its transport keys.
#[allow(clippy::large_enum_variant)] // no alloc: the slot is always a session's size
pub(super) enum Noise {
    /// Plaintext: protocol 1, or a text peer.
    Plain,
    /// The shell's 32 random bytes for our ephemeral key, kept until the
    /// banners say the connection speaks protocol 2.
    Entropy([u8; KEY_LEN]),
    /// The handshake, then the transport ciphers.
    Session(Session),
}

/// The node's state for one connection.
pub struct Link<const F: usize> {
    pub(super) noise: Noise,
    pub(super) phase: Phase,
    pub(super) rx: Rx<F>,
    pub(super) unacked: Vec<u32, WINDOW>,
    pub(super) next_id: u32,
    pub(super) deadline: Option<Instant>,
    /// Tell this peer why it may not join once we know how it talks, then close.
    pub(super) refuse: Option<Refusal>,
    /// The node id the peer announced in its hello (native peers).
    pub(super) remote: u64,
    /// When the last byte came from the peer: the start of its silence.
    pub(super) last_rx: Instant,
    /// When we pinged the silent peer (none since its last byte); it has
    /// `dead_after` from then to send anything.
    pub(super) pinged: Option<Instant>,
    /// The peer answers pings (its hello says minor version 1 or later).
    pub(super) pings: bool,
    /// The peer relays direct messages across the mesh (its hello says minor
    /// version 3 or later): only then is it a next hop.
    pub(super) routes: bool,
    /// The peer takes announces and sealed direct messages (its hello says
    /// minor version 4 or later).
    pub(super) seals: bool,
    /// The nonce of the next ping.
    pub(super) ping_nonce: u32,
    /// When the frame now partial began (native peers, off a frame boundary).
    pub(super) frame_since: Option<Instant>,
    /// The text peer has ended a message with a newline: from then on only a
    /// newline ends one, so a stream paused mid-line (by TCP or flow control)
    /// is not cut in two by the idle timer.
    pub(super) sends_lines: bool,
    /// The hello came, but a ready link to the same node exists and that node (the
    /// lower id) decides which of the two stays: this one waits, not ready, until it
    /// closes one of them (see [`Node::on_twin`](super::Node::on_twin)).
    pub(super) awaits_twin: bool,
    /// The handshake is done and the shell vets the peer's key: nothing more
    /// is taken from it until its verdict.
    pub(super) vetting: bool,
    /// The name its first hello announced (its alias may differ: a clash, or
    /// a person's choice): what a twin link hands over.
    pub(super) name: String<MAX_NAME>,
    /// An outbound link that got through once (or is dialled again): with
    /// `reconnect`, kept as [`Phase::Reconnecting`] when it drops by itself.
    pub(super) redial: bool,
}

impl<const F: usize> Link<F> {
    pub(super) fn new(phase: Phase) -> Self {
        Link {
            noise: Noise::Plain,
            phase,
            rx: Rx::Banner(Vec::new(), Vec::new()),
            unacked: Vec::new(),
            next_id: 1,
            deadline: None,
            refuse: None,
            remote: 0,
            last_rx: Instant::ZERO,
            pinged: None,
            pings: false,
            routes: false,
            seals: false,
            ping_nonce: 0,
            frame_since: None,
            sends_lines: false,
            awaits_twin: false,
            vetting: false,
            name: String::new(),
            redial: false,
        }
    }
}
