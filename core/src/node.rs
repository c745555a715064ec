//! The node: one state machine that owns the peer table, each connection's
//! codec, routing and delivery receipts. It does no I/O and reads no clock.

use core::fmt;
use core::net::SocketAddr;

use heapless::{String, Vec};

use crate::command::{AliasError, Command, EMOTE_MAX, Emote, Target, Verb, validate_alias};
use crate::display::{SafeLines, SafeStr};
use crate::frame::{Decoded, FrameDecoder, FrameError};
use crate::limits;
use crate::outbox::{Job, Outbox, Span};
use crate::peers::{Alias, AliasSource, Direction, InsertError, LookupError, PeerId, PeerTable};
use crate::route::{self, SeenCache, Sight};
use crate::time::{Duration, Instant};
use crate::wire::{
    self, BANNER_PREFIX, BannerError, MAX_BANNER, MAX_NAME, Message, Sniff, WireError,
};

pub use crate::limits::{FRAME_OVERHEAD, MAX_HOST, ORIGINS, WINDOW};
/// The longest line the node composes for a text peer (a notice, a `/who` answer).
const MAX_LINE: usize = 1024;
/// What a one-peer node tells a second peer before closing its connection.
pub const BUSY: &str = "busy: in a chat with someone else; try again later";
/// What a one-peer server tells a second client before closing its connection.
pub const BUSY_SERVING: &str = "busy: serving another client; try again later";

/// How a node behaves; see [`Config::new`] for the defaults.
#[derive(Clone, Debug)]
pub struct Config {
    /// The name announced in the banner, and shown as the origin of broadcasts.
    pub name: String<MAX_NAME>,
    /// This node's id for loop and duplicate checks; random, from the caller.
    pub node_id: u64,
    /// The most peers at once (never more than the node's capacity).
    pub max_peers: usize,
    /// Relay text peers' lines to the room, like `ncat --chat`, and give text peers
    /// the room: every line tagged `<name>`, join and leave notices, `/nick` and `/who`.
    pub hub: bool,
    /// Keep an outbound peer that drops by itself (see [`Reason::redials`]) under its
    /// id and alias as [`Phase::Reconnecting`], for the shell to dial again
    /// ([`Input::Redial`]) until it is back or a person disconnects it.
    pub reconnect: bool,
    /// One peer at a time (the two-peer chat): a second one is told [`BUSY`] and closed.
    pub single_peer: bool,
    /// The one peer is a client being served (`serve`), not a chat: a second one is
    /// told [`BUSY_SERVING`] instead of [`BUSY`].
    pub serving: bool,
    /// How many nodes a broadcast may cross.
    pub hops: u8,
    /// A connection that says nothing for this long is a text peer.
    pub greeting_timeout: Duration,
    /// A banner must be complete this long after its first byte, and the hello
    /// this long after the banner.
    pub banner_timeout: Duration,
    /// Text with no newline becomes a message after the stream is idle this long.
    pub text_idle: Duration,
    /// The longest text of one message, in bytes; the node's frames cap it
    /// (see [`Node::max_text`]). A text peer's longer line is cut into messages.
    pub max_text: usize,
    /// The most connections accepted at once from one remote IP; the next one
    /// is told why and closed.
    pub max_per_ip: usize,
    /// A native peer's frame that stays partial this long closes the peer (slowloris).
    pub frame_timeout: Duration,
    /// A native peer heard nothing from for this long is pinged; `None`: never
    /// (and never dropped for silence).
    pub ping_after: Option<Duration>,
    /// A pinged peer that sends nothing at all for this long is dropped.
    pub dead_after: Duration,
}

impl Config {
    /// Defaults: every slot usable, no hub, 8 hops, and the limits of
    /// [`crate::limits`]. `node_id` should be random (it names this node's broadcasts).
    pub fn new(name: &str, node_id: u64) -> Result<Self, AliasError> {
        validate_alias(name)?;
        let mut owned = String::new();
        // Cannot fail: a valid alias is at most 32 bytes.
        let _ = owned.push_str(name);
        Ok(Config {
            name: owned,
            node_id,
            max_peers: usize::MAX,
            hub: false,
            reconnect: false,
            single_peer: false,
            serving: false,
            hops: route::DEFAULT_HOPS,
            greeting_timeout: limits::GREETING_TIMEOUT,
            banner_timeout: limits::BANNER_TIMEOUT,
            text_idle: limits::TEXT_IDLE,
            max_text: limits::MAX_TEXT,
            max_per_ip: limits::MAX_PER_IP,
            frame_timeout: limits::FRAME_TIMEOUT,
            ping_after: Some(limits::PING_AFTER),
            dead_after: limits::DEAD_AFTER,
        })
    }
}

/// What the shell hands the node.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// A person's command.
    Command(Command<'a>),
    /// Someone connected to our listener.
    Accepted { addr: SocketAddr },
    /// The dial asked for by [`Output::Connect`] succeeded.
    Connected { peer: PeerId, addr: SocketAddr },
    /// The dial asked for by [`Output::Connect`] failed; `reason` is shown to the person.
    ConnectFailed { peer: PeerId, reason: &'a str },
    /// Bytes read from a peer's connection.
    Received { peer: PeerId, bytes: &'a [u8] },
    /// The connection ended: `None` for an orderly close, else the error.
    Closed {
        peer: PeerId,
        error: Option<&'a str>,
    },
    /// The time asked for by [`Output::Timeout`] has come.
    Timeout,
    /// Dial again a peer in [`Phase::Reconnecting`] (the shell keeps where it was
    /// dialled, and when to try); answered like a `connect`'s [`Output::Connect`].
    Redial {
        peer: PeerId,
        host: &'a str,
        port: u16,
    },
    /// The shell holds bytes from this peer that it has not fed yet (flow
    /// control): the peer is alive, and a frame it is in the middle of is late
    /// by our doing, not its own. Give it before [`Input::Timeout`].
    Held { peer: PeerId },
}

/// What the node made of an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handled {
    Done,
    /// This many bytes of a [`Input::Received`] were taken; feed the rest after draining.
    Consumed(usize),
    /// The accepted connection is this peer.
    Accepted(PeerId),
}

/// What the node wants done, polled until [`Output::Timeout`].
#[derive(Debug)]
pub enum Output<'a> {
    /// Write these bytes to the peer's connection, in order.
    Transmit { peer: PeerId, data: &'a [u8] },
    /// Dial `host:port` for this peer, then report [`Input::Connected`] or [`Input::ConnectFailed`].
    Connect {
        peer: PeerId,
        host: &'a str,
        port: u16,
    },
    /// Send what is queued for the peer, then close its connection.
    Close { peer: PeerId },
    /// Something to show the person.
    Event(Event<&'a str>),
    /// Nothing more to do now: call again with [`Input::Timeout`] at this time, if any.
    Timeout(Option<Instant>),
}

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
        peer: PeerId,
        alias: S,
        addr: SocketAddr,
        direction: Direction,
        kind: Kind,
    },
    /// A `connect` failed.
    ConnectFailed { peer: PeerId, alias: S, reason: S },
    /// A message: from a peer directly, or a room message (`room` set) that
    /// arrived over the link `peer` from the node `from`.
    Message {
        peer: PeerId,
        from: S,
        text: S,
        room: Option<Room>,
    },
    /// A message of ours left for `peer`; a native peer's receipt follows as
    /// [`Event::Delivered`] or [`Event::Undelivered`] when `receipt` is true.
    Sent {
        peer: PeerId,
        id: u32,
        receipt: bool,
    },
    /// The peer confirmed message `id`.
    Delivered { peer: PeerId, id: u32 },
    /// The link to `peer` ended before it confirmed message `id`.
    Undelivered { peer: PeerId, id: u32 },
    /// A connection was told why it may not join, and closed.
    Refused { addr: SocketAddr, why: Refusal },
    /// Our broadcast `seq` left for `peers` direct peers.
    Broadcast { seq: u32, peers: usize },
    /// The peer's alias changed (a person's choice, or the name it announced).
    Alias { peer: PeerId, alias: S },
    /// The peer is gone.
    Disconnected {
        peer: PeerId,
        alias: S,
        reason: Reason<S>,
    },
}

/// Where a room message came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Room {
    pub origin: u64,
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
    Duplicate { keep: PeerId, alias: S },
    /// Nothing came from the peer for this long, not even an answer to a ping.
    NoAnswer(Duration),
}

/// Why an accepted connection was turned away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A one-peer node is in a chat already: [`BUSY`].
    Busy,
    /// A one-peer server is serving another client: [`BUSY_SERVING`].
    Serving,
    /// Already this many connections from the same IP address.
    PerIp { max: usize },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Busy => f.write_str(BUSY),
            Refusal::Serving => f.write_str(BUSY_SERVING),
            Refusal::PerIp { max } => write!(
                f,
                "too many connections from your address (at most {max}); close one and try again"
            ),
        }
    }
}

/// Ways a peer breaks the protocol; each closes that peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Frame(FrameError),
    Wire(WireError),
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
        }
    }
}

impl<S: AsRef<str>> Reason<S> {
    /// Whether an outbound peer that dropped for this reason is dialled again
    /// (`--reconnect`): not one a person disconnected, a second link the node closed,
    /// one that refused us as busy, or this very node.
    pub fn redials(&self) -> bool {
        match self {
            Reason::Local | Reason::Duplicate { .. } | Reason::Fault(Fault::Itself) => false,
            Reason::Bye(why) => why.as_ref() != BUSY && why.as_ref() != BUSY_SERVING,
            Reason::Closed | Reason::Lost(_) | Reason::NoAnswer(_) | Reason::Fault(_) => true,
        }
    }
}

impl<S> Reason<S> {
    fn map<T>(self, mut f: impl FnMut(S) -> T) -> Reason<T> {
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
        }
    }
}

impl<S> Event<S> {
    /// The same event with its text converted by `f`.
    pub fn map<T>(self, mut f: impl FnMut(S) -> T) -> Event<T> {
        match self {
            Event::Connected {
                peer,
                alias,
                addr,
                direction,
                kind,
            } => Event::Connected {
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

/// A command the node could not carry out, or a misuse by the shell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeError<'a> {
    /// The target names no peer, or more than one.
    Lookup(LookupError<'a>),
    /// The peer could not be added or renamed.
    Table(InsertError),
    /// Nobody is connected.
    NoPeers,
    /// Several peers are connected and the command (`verb`) did not say which.
    WhichPeer { peers: usize, verb: Verb },
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
    TooLong { len: usize, max: usize },
    /// The host name is longer than any host name can be.
    HostTooLong,
    /// The shell did not drain the outputs before giving a new input.
    Busy,
}

impl fmt::Display for NodeError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeError::Lookup(e) => write!(f, "{e}"),
            NodeError::Table(e) => write!(f, "{e}"),
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

/// Counters of what the node dropped or refused, for diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames skipped for being over the size limit.
    pub oversized: u64,
    /// Broadcasts seen before (suppressed duplicates).
    pub duplicates: u64,
    /// Receipts for messages not awaiting one.
    pub stray_acks: u64,
    /// Peers closed for breaking the protocol.
    pub faults: u64,
    /// Room lines not held for a connection not yet known to be text (its buffer was full).
    pub unheld: u64,
}

/// A connection's progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The shell is dialling.
    Dialing,
    /// Connected; waiting for the first bytes or a banner.
    Greeting,
    /// Banners exchanged; waiting for the peer's hello.
    Hello,
    /// Ready to chat.
    Ready(Kind),
    /// Dropped, and dialled again by the shell ([`Input::Redial`]) until it is back
    /// or a person disconnects it: it keeps its id and alias meanwhile.
    Reconnecting,
}

enum Rx<const F: usize> {
    /// The first bytes, and the room's lines held for the connection until it is
    /// known to be a text peer (they go out then, in its form).
    Banner(Vec<u8, MAX_BANNER>, Vec<u8, F>),
    Frames(FrameDecoder<F>),
    Text(Vec<u8, F>),
}

/// The node's state for one connection.
pub struct Link<const F: usize> {
    phase: Phase,
    rx: Rx<F>,
    unacked: Vec<u32, WINDOW>,
    next_id: u32,
    deadline: Option<Instant>,
    /// Tell this peer why it may not join once we know how it talks, then close.
    refuse: Option<Refusal>,
    /// The node id the peer announced in its hello (native peers).
    remote: u64,
    /// When the last byte came from the peer: the start of its silence.
    last_rx: Instant,
    /// When we pinged the silent peer (none since its last byte); it has
    /// `dead_after` from then to send anything.
    pinged: Option<Instant>,
    /// The peer answers pings (its hello says minor version 1 or later).
    pings: bool,
    /// The nonce of the next ping.
    ping_nonce: u32,
    /// When the frame now partial began (native peers, off a frame boundary).
    frame_since: Option<Instant>,
    /// The text peer has ended a message with a newline: from then on only a
    /// newline ends one, so a stream paused mid-line (by TCP or flow control)
    /// is not cut in two by the idle timer.
    sends_lines: bool,
    /// The hello came, but a ready link to the same node exists and that node (the
    /// lower id) decides which of the two stays: this one waits, not ready, until it
    /// closes one of them (see [`Node::on_twin`]).
    awaits_twin: bool,
    /// An outbound link that got through once (or is dialled again): with
    /// `reconnect`, kept as [`Phase::Reconnecting`] when it drops by itself.
    redial: bool,
}

impl<const F: usize> Link<F> {
    fn new(phase: Phase) -> Self {
        Link {
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
            ping_nonce: 0,
            frame_since: None,
            sends_lines: false,
            awaits_twin: false,
            redial: false,
        }
    }
}

/// What [`Node::peers`] shows of a peer.
#[derive(Clone, Copy, Debug)]
pub struct PeerInfo<'a> {
    pub id: PeerId,
    pub alias: &'a str,
    pub addr: Option<SocketAddr>,
    pub direction: Direction,
    pub phase: Phase,
    /// Messages awaiting their receipt.
    pub unacked: usize,
}

/// The meshtalk protocol engine for at most `P` peers, frames of at most `F`
/// bytes, and `A` bytes of room for pending outputs (at least `4 * F`).
///
/// The run loop, which the shell owns:
///
/// ```text
/// loop {
///     wait for an input (a command, a connection, bytes, a close) or the timeout;
///     node.handle_input(now, input);          // for Received, feed the rest
///                                             // after draining if Consumed(n) < len
///     loop {                                   // after EVERY input, drain:
///         match node.poll_output(now) {
///             Output::Timeout(t) => { timeout = t; break }
///             other => carry it out (write, dial, close, show),
///         }
///     }
/// }
/// ```
///
/// Rules: drain outputs until `Timeout` after every input (an undrained node
/// answers [`NodeError::Busy`] or consumes nothing); give [`Input::Timeout`] no
/// later than asked; inputs for a peer that is gone are ignored.
pub struct Node<const P: usize, const F: usize, const A: usize> {
    config: Config,
    peers: PeerTable<Link<F>, P>,
    seen: SeenCache<ORIGINS>,
    last_seq: u32,
    outbox: Outbox<A>,
    wake: Option<Instant>,
    stats: Stats,
    /// The ready peers in slot order, with their phase: fan-outs walk this, not
    /// the table, whose slots each hold a receive buffer (a cache miss per peer
    /// per message). Built by the first fan-out polled after an input.
    roster: heapless::Vec<(PeerId, Phase), P>,
    /// An input came since the roster was built: phases may have changed.
    roster_stale: bool,
    /// Where in the roster the front fan-out goes on (checked before use).
    cursor: usize,
}

impl<const P: usize, const F: usize, const A: usize> Node<P, F, A> {
    /// The longest text one message may carry.
    pub const MAX_TEXT: usize = F - FRAME_OVERHEAD;
    /// Arena room kept free before taking one more frame: the worst a frame can
    /// need (its event, a relay as a frame and as a line, a receipt).
    const RESERVE: usize = 3 * F + 256;
    /// Job slots kept free before taking one more frame: enough to drop a peer.
    const RESERVE_JOBS: usize = WINDOW + 8;

    pub fn new(config: Config) -> Self {
        const {
            assert!(F >= 256, "frames must allow at least 256 bytes");
            assert!(A >= 4 * F, "the output arena must hold 4 frames");
        }
        // A one-peer node keeps a second slot to tell a newcomer that it is busy.
        let limit = match config.single_peer {
            true => config.max_peers.min(2),
            false => config.max_peers,
        };
        Node {
            peers: PeerTable::new(limit),
            config,
            seen: SeenCache::new(),
            last_seq: 0,
            outbox: Outbox::default(),
            wake: None,
            stats: Stats::default(),
            roster: heapless::Vec::new(),
            roster_stale: true,
            cursor: 0,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The longest text one message may carry here: the configured limit,
    /// capped by what a frame can carry ([`Self::MAX_TEXT`]).
    pub fn max_text(&self) -> usize {
        self.config.max_text.clamp(1, Self::MAX_TEXT)
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Every peer, in slot order.
    pub fn peers(&self) -> impl Iterator<Item = PeerInfo<'_>> {
        self.peers.iter().map(|p| PeerInfo {
            id: p.id,
            alias: p.alias(),
            addr: p.addr,
            direction: p.direction,
            phase: p.state.phase,
            unacked: p.state.unacked.len(),
        })
    }

    /// The ids of our messages to `peer` that await its receipt, oldest first
    /// (none for a peer that is gone): what a shell that leaves now must report
    /// as undelivered.
    pub fn awaiting(&self, peer: PeerId) -> &[u32] {
        self.peers.get(peer).map_or(&[], |p| &p.state.unacked)
    }

    /// Feeds one input; see the type's doc for the run loop.
    pub fn handle_input<'a>(
        &mut self,
        now: Instant,
        input: Input<'a>,
    ) -> Result<Handled, NodeError<'a>> {
        self.roster_stale = true;
        if let Input::Received { peer, bytes } = input {
            return Ok(Handled::Consumed(self.on_received(now, peer, bytes)));
        }
        if let Input::Held { peer } = input {
            if let Some(p) = self.peers.get_mut(peer) {
                p.state.last_rx = now;
                p.state.pinged = None;
                if p.state.frame_since.is_some() {
                    p.state.frame_since = Some(now);
                }
            }
            return Ok(Handled::Done);
        }
        if !self.ready_for_input() {
            return Err(NodeError::Busy);
        }
        match input {
            Input::Command(command) => self.on_command(command).map(|()| Handled::Done),
            Input::Accepted { addr } => {
                let mut link = Link::new(Phase::Greeting);
                link.refuse = self.refusal(addr);
                let id = self
                    .peers
                    .insert(Some(addr), Direction::Inbound, None, link)
                    .map_err(|(e, _)| NodeError::Table(e))?;
                self.set_deadline(id, now + self.config.greeting_timeout);
                Ok(Handled::Accepted(id))
            }
            Input::Connected { peer, addr } => {
                self.on_connected(now, peer, addr);
                Ok(Handled::Done)
            }
            Input::ConnectFailed { peer, reason } => {
                let again = self.config.reconnect;
                let alias = match self.peers.get_mut(peer) {
                    // A re-dial that failed waits for the next one.
                    Some(p) if again && p.state.redial && p.state.phase == Phase::Dialing => {
                        p.state.phase = Phase::Reconnecting;
                        self.outbox.put(&[p.alias().as_bytes()])
                    }
                    Some(_) => self
                        .peers
                        .remove(peer)
                        .and_then(|p| self.outbox.put(&[p.alias().as_bytes()])),
                    None => None,
                };
                let reason = self.outbox.put(&[reason.as_bytes()]);
                if let (Some(alias), Some(reason)) = (alias, reason) {
                    self.event(Event::ConnectFailed {
                        peer,
                        alias,
                        reason,
                    });
                }
                Ok(Handled::Done)
            }
            Input::Redial { peer, host, port } => {
                if host.len() > MAX_HOST {
                    return Err(NodeError::HostTooLong);
                }
                let Some(p) = self
                    .peers
                    .get_mut(peer)
                    .filter(|p| p.state.phase == Phase::Reconnecting)
                else {
                    return Err(NodeError::Lookup(LookupError::NoSuchId(peer.number())));
                };
                p.state.phase = Phase::Dialing;
                if let Some(host) = self.outbox.put(&[host.as_bytes()]) {
                    self.outbox.push(Job::Connect { peer, host, port });
                }
                Ok(Handled::Done)
            }
            Input::Closed { peer, error } => {
                let reason = match error {
                    None => Some(Reason::Closed),
                    Some(e) => self.outbox.put(&[e.as_bytes()]).map(Reason::Lost),
                };
                self.drop_peer(peer, reason.unwrap_or(Reason::Closed), false);
                Ok(Handled::Done)
            }
            Input::Timeout => {
                self.on_timeout(now);
                Ok(Handled::Done)
            }
            Input::Received { .. } | Input::Held { .. } => Ok(Handled::Done),
        }
    }

    /// The next thing to do; [`Output::Timeout`] once there is nothing.
    pub fn poll_output(&mut self, _now: Instant) -> Output<'_> {
        let job = loop {
            let Some(&job) = self.outbox.jobs.front() else {
                self.outbox.reset_if_empty();
                return Output::Timeout(self.wake);
            };
            let Job::Fanout {
                except,
                native,
                line,
                next,
            } = job
            else {
                self.outbox.jobs.pop_front();
                break job;
            };
            if self.roster_stale {
                self.build_roster();
            }
            // The roster is in slot order: the fan-out goes on at the first
            // slot from `next`, most often where the last poll left it.
            let roster = &self.roster;
            let slot_at = |i: usize| roster.get(i).map(|(id, _)| id.slot());
            let cursor = self.cursor;
            let resumes = (cursor == 0 || slot_at(cursor - 1).is_some_and(|s| s < next))
                && slot_at(cursor).is_none_or(|s| s >= next);
            let from = match resumes {
                true => cursor,
                false => roster.partition_point(|(id, _)| id.slot() < next),
            };
            let found = roster
                .iter()
                .enumerate()
                .skip(from)
                .find_map(|(i, &(id, phase))| {
                    let data = match phase {
                        _ if Some(id) == except => None,
                        // Not known yet how it talks: its line is held for it.
                        Phase::Greeting => return line.map(|_| (i, id, None)),
                        Phase::Ready(Kind::Native) => native,
                        Phase::Ready(Kind::Text(TextMode::Lines)) => line,
                        Phase::Ready(Kind::Text(TextMode::Bare)) => line.map(|l| l.shorter(1)),
                        _ => None,
                    }?;
                    Some((i, id, Some(data)))
                });
            let Some((i, peer, data)) = found else {
                self.cursor = 0;
                self.outbox.jobs.pop_front();
                continue;
            };
            self.cursor = i + 1;
            let slot = peer.slot();
            if let Some(Job::Fanout { next, .. }) = self.outbox.jobs.front_mut() {
                *next = slot + 1;
            }
            let Some(data) = data else {
                self.hold(peer, line);
                continue;
            };
            return Output::Transmit {
                peer,
                data: self.outbox.bytes(data),
            };
        };
        let outbox = &self.outbox;
        match job {
            Job::Send { peer, data } => Output::Transmit {
                peer,
                data: outbox.bytes(data),
            },
            Job::Connect { peer, host, port } => Output::Connect {
                peer,
                host: outbox.text(host),
                port,
            },
            Job::Close { peer } => Output::Close { peer },
            Job::Event(event) => Output::Event(event_text(outbox, event)),
            // Handled in the loop above.
            Job::Fanout { .. } => Output::Timeout(self.wake),
        }
    }

    /// Lists the ready peers for the fan-outs of this drain (phases change only
    /// with inputs, and a drain comes between two of them).
    fn build_roster(&mut self) {
        self.roster.clear();
        for slot in 0..self.peers.slots() {
            // A connection not yet known to be native or text is in the room too.
            if let Some(p) = self.peers.at(slot)
                && (matches!(p.state.phase, Phase::Ready(_))
                    || (p.state.phase == Phase::Greeting && p.state.refuse.is_none()))
            {
                // Fits: the roster holds as many as the table.
                let _ = self.roster.push((p.id, p.state.phase));
            }
        }
        self.roster_stale = false;
    }

    /// Keeps a room line for a connection whose kind is not known yet, if it fits
    /// (the connection's receive buffer bounds what is held); see [`Node::deliver_held`].
    fn hold(&mut self, peer: PeerId, line: Option<Span>) {
        let Some(line) = line else {
            return;
        };
        let bytes = self.outbox.bytes(line);
        if let Some(p) = self.peers.get_mut(peer)
            && let Rx::Banner(_, held) = &mut p.state.rx
            && held.extend_from_slice(bytes).is_err()
        {
            self.stats.unheld += 1;
        }
    }

    fn ready_for_input(&self) -> bool {
        self.outbox.is_empty() || self.outbox.has_room(Self::RESERVE, Self::RESERVE_JOBS)
    }

    fn event(&mut self, event: Event<Span>) {
        // Room was checked before the input was taken (RESERVE_JOBS).
        self.outbox.push(Job::Event(event));
    }

    fn set_deadline(&mut self, id: PeerId, at: Instant) {
        if let Some(p) = self.peers.get_mut(id) {
            p.state.deadline = Some(at);
            self.wake_by(at);
        }
    }

    /// Makes sure the node wakes no later than `at`. Waking early is harmless:
    /// the timeout looks at every peer's timers and sets the next wake-up.
    fn wake_by(&mut self, at: Instant) {
        self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
    }

    // ---- commands ----

    fn on_command<'a>(&mut self, command: Command<'a>) -> Result<(), NodeError<'a>> {
        match command {
            Command::Connect { host, port, alias } => {
                if host.len() > MAX_HOST {
                    return Err(NodeError::HostTooLong);
                }
                if self.config.single_peer && self.only_peer(Verb::Connect).is_ok() {
                    return Err(NodeError::AlreadyConnected);
                }
                let link = Link::new(Phase::Dialing);
                let peer = self
                    .peers
                    .insert(None, Direction::Outbound, alias, link)
                    .map_err(|(e, _)| NodeError::Table(e))?;
                if let Some(host) = self.outbox.put(&[host.as_bytes()]) {
                    self.outbox.push(Job::Connect { peer, host, port });
                }
                Ok(())
            }
            Command::Send { target, text, all } => {
                let (peer, text) = self.send_target(target, text, all)?;
                self.send_chat(peer, text)
            }
            Command::Broadcast { text } => self.broadcast(text),
            Command::Say { text } => self.say(text),
            Command::Me { action } => {
                let mut text: String<EMOTE_MAX> = String::new();
                let emote = Emote {
                    name: &self.config.name,
                    action,
                };
                if core::fmt::write(&mut text, format_args!("{emote}")).is_err() {
                    let len = self.config.name.len() + action.len() + 3;
                    return Err(NodeError::TooLong {
                        len,
                        max: EMOTE_MAX,
                    });
                }
                self.say(&text)
            }
            Command::Nick { name } => {
                validate_alias(name).map_err(|e| NodeError::Table(InsertError::BadAlias(e)))?;
                let mut owned: String<MAX_NAME> = String::new();
                // Cannot fail: a valid alias is at most MAX_NAME bytes.
                let _ = owned.push_str(name);
                self.config.name = owned;
                // Native peers hear a hello again, with the new name; a text peer has
                // no way to be told (it sees the name on room messages at a hub).
                let hello = Message::Hello {
                    minor: wire::MINOR,
                    node: self.config.node_id,
                    name,
                };
                if let Ok(native) = self.outbox.put_message(&hello) {
                    self.outbox.push(Job::Fanout {
                        except: None,
                        native: Some(native),
                        line: None,
                        next: 0,
                    });
                }
                Ok(())
            }
            Command::Disconnect { target } => {
                let peer = match target {
                    Some(t) => self.peers.resolve(t)?,
                    None => self.only_peer(Verb::Disconnect)?,
                };
                self.drop_peer(peer, Reason::Local, true);
                Ok(())
            }
            Command::SetAlias { target, alias } => {
                let peer = self.peers.resolve(target)?;
                let old = self.peers.get(peer).map(|p| Alias::try_from(p.alias()));
                self.peers.set_alias(peer, alias)?;
                if let Some(span) = self.outbox.put(&[alias.as_bytes()]) {
                    self.event(Event::Alias { peer, alias: span });
                }
                if let Some(Ok(old)) = old.filter(|_| self.ready_peer(peer)) {
                    self.notice(None, format_args!("{old} is now known as {alias}"));
                }
                Ok(())
            }
            Command::Exit => {
                let bye = Message::Bye { reason: "exit" };
                if let Ok(native) = self.outbox.put_message(&bye) {
                    self.outbox.push(Job::Fanout {
                        except: None,
                        native: Some(native),
                        line: None,
                        next: 0,
                    });
                }
                Ok(())
            }
            // The shell answers these from `peers()` and the help text, and keeps the transcript.
            Command::List | Command::Help { .. } | Command::Log { .. } => Ok(()),
        }
    }

    /// A line said at the prompt (plain text, `/say`, `/me`): to the peer in a one-peer
    /// chat, else to the room.
    fn say(&mut self, text: &str) -> Result<(), NodeError<'static>> {
        if self.config.single_peer {
            let peer = self.only_peer(Verb::Say)?;
            return self.send_chat(peer, text);
        }
        self.broadcast(text)
    }

    /// A room message of ours, to every ready peer.
    fn broadcast(&mut self, text: &str) -> Result<(), NodeError<'static>> {
        self.check_len(text)?;
        let peers = self
            .peers
            .iter()
            .filter(|p| matches!(p.state.phase, Phase::Ready(_)))
            .count();
        if peers == 0 {
            return Err(NodeError::NoPeers);
        }
        self.last_seq = self.last_seq.wrapping_add(1);
        let (origin, seq) = (self.config.node_id, self.last_seq);
        self.seen.first_sight(origin, seq);
        // The frame is encoded from the `str`s in hand, not read back from the arena.
        let native = self.outbox.put_message(&Message::Broadcast {
            origin,
            seq,
            hops: self.config.hops,
            name: &self.config.name,
            text,
        });
        let Some(text) = self.outbox.put(&[text.as_bytes()]) else {
            return Err(NodeError::Busy);
        };
        let Some(name) = self.outbox.put(&[self.config.name.as_bytes()]) else {
            return Err(NodeError::Busy);
        };
        self.fanout(None, native.ok(), name, text, false);
        self.event(Event::Broadcast { seq, peers });
        Ok(())
    }

    /// Which peer a `send` is for, and the text: in a one-peer node, the whole line
    /// to the one peer there is (`send <message>`); otherwise the first word names the
    /// peer, and one that names none is an error, never a message to the only peer.
    fn send_target<'a>(
        &self,
        target: Option<Target<'a>>,
        text: &'a str,
        all: &'a str,
    ) -> Result<(PeerId, &'a str), NodeError<'a>> {
        if self.config.single_peer {
            return Ok((self.only_peer(Verb::Send)?, all));
        }
        let Some(target) = target else {
            return Err(NodeError::SendNeedsTarget);
        };
        let peer = self.peers.resolve(target)?;
        if text.is_empty() {
            return Err(NodeError::SendNeedsTarget);
        }
        Ok((peer, text))
    }

    /// Why a connection accepted from `addr` may not join, if it may not.
    fn refusal(&self, addr: SocketAddr) -> Option<Refusal> {
        if self.config.single_peer && !self.peers.is_empty() {
            return Some(match self.config.serving {
                true => Refusal::Serving,
                false => Refusal::Busy,
            });
        }
        let max = self.config.max_per_ip;
        let same_ip = self
            .peers
            .iter()
            .filter(|p| p.direction == Direction::Inbound && p.state.refuse.is_none())
            .filter(|p| p.addr.is_some_and(|a| a.ip() == addr.ip()))
            .count();
        (same_ip >= max).then_some(Refusal::PerIp { max })
    }

    /// Whether `peer` is in the room: ready to chat.
    fn ready_peer(&self, peer: PeerId) -> bool {
        self.peers
            .get(peer)
            .is_some_and(|p| matches!(p.state.phase, Phase::Ready(_)))
    }

    /// The one peer there is, for a command (`verb`) that names none.
    fn only_peer(&self, verb: Verb) -> Result<PeerId, NodeError<'static>> {
        let mut peers = self.peers.iter().filter(|p| p.state.refuse.is_none());
        match (peers.next(), peers.next()) {
            (None, _) => Err(NodeError::NoPeers),
            (Some(p), None) => Ok(p.id),
            (Some(_), Some(_)) => Err(NodeError::WhichPeer {
                verb,
                peers: 2 + peers.count(),
            }),
        }
    }

    fn check_len(&self, text: &str) -> Result<(), NodeError<'static>> {
        let max = self.max_text();
        if text.len() > max {
            return Err(NodeError::TooLong {
                len: text.len(),
                max,
            });
        }
        Ok(())
    }

    fn send_chat<'a>(&mut self, peer: PeerId, text: &str) -> Result<(), NodeError<'a>> {
        self.check_len(text)?;
        let Some(p) = self.peers.get_mut(peer) else {
            return Err(NodeError::NotReady(peer));
        };
        let link = &mut p.state;
        let (data, id, receipt) = match link.phase {
            Phase::Ready(Kind::Native) => {
                if link.unacked.is_full() {
                    return Err(NodeError::WindowFull(peer));
                }
                let id = link.next_id;
                let data = self
                    .outbox
                    .put_message(&Message::Chat { id, text })
                    .map_err(|_| NodeError::Busy)?;
                // Cannot fail: checked not full above.
                let _ = link.unacked.push(id);
                link.next_id = link.next_id.wrapping_add(1);
                (data, id, true)
            }
            Phase::Ready(Kind::Text(mode)) => {
                let newline: &[u8] = if mode == TextMode::Lines { b"\n" } else { b"" };
                let id = link.next_id;
                link.next_id = link.next_id.wrapping_add(1);
                // A terminal: made safe, but a multi-line text (serve's log) keeps its lines.
                // In a hub's room, each line says who wrote it, and to whom.
                let data = match self.config.hub {
                    true => {
                        let name = self.config.name.as_str();
                        self.outbox
                            .put_shown(text, |text| ToYou { name, text }, newline)
                    }
                    false => self.outbox.put_shown(text, SafeLines, newline),
                }
                .ok_or(NodeError::Busy)?;
                (data, id, false)
            }
            Phase::Reconnecting => return Err(NodeError::Reconnecting(peer)),
            _ => return Err(NodeError::NotReady(peer)),
        };
        self.outbox.push(Job::Send { peer, data });
        self.event(Event::Sent { peer, id, receipt });
        Ok(())
    }

    /// Queues a room message for every ready peer but `except`: `native` (its
    /// Broadcast frame) for native peers, and a line for text peers: at a hub every
    /// line is prefixed with its author's name; elsewhere only our own go to text
    /// peers, untagged (as the older programs expect).
    fn fanout(
        &mut self,
        except: Option<PeerId>,
        native: Option<Span>,
        name: Span,
        text: Span,
        relayed: bool,
    ) {
        // A text peer is a terminal with nobody to protect it: its line is made safe.
        let line = if self.config.hub {
            self.outbox.put_safe_line(Some(name), text)
        } else if !relayed {
            self.outbox.put_safe_line(None, text)
        } else {
            None
        };
        self.outbox.push(Job::Fanout {
            except,
            native,
            line,
            next: 0,
        });
    }

    // ---- connections ----

    fn on_connected(&mut self, now: Instant, peer: PeerId, addr: SocketAddr) {
        let Some(p) = self
            .peers
            .get_mut(peer)
            .filter(|p| p.state.phase == Phase::Dialing)
        else {
            // Disconnected while the dial was under way: the new connection is not wanted.
            self.outbox.push(Job::Close { peer });
            return;
        };
        p.state.phase = Phase::Greeting;
        self.peers.set_addr(peer, addr);
        self.send_banner(peer);
        self.set_deadline(peer, now + self.config.greeting_timeout);
    }

    /// Takes as many received bytes as the outbox has room for the outputs of.
    fn on_received(&mut self, now: Instant, peer: PeerId, bytes: &[u8]) -> usize {
        if let Some(p) = self.peers.get_mut(peer).filter(|_| !bytes.is_empty()) {
            // Any byte is a sign of life: the silence, and any ping, start over.
            p.state.last_rx = now;
            p.state.pinged = None;
        }
        let mut used = 0;
        loop {
            if !self.outbox.has_room(Self::RESERVE, Self::RESERVE_JOBS) {
                return used;
            }
            let Some(p) = self.peers.get_mut(peer) else {
                // The peer is gone: its bytes mean nothing now.
                return bytes.len();
            };
            let rest = bytes.get(used..).unwrap_or_default();
            let step = match &mut p.state.rx {
                // Nothing left: a text step on no bytes takes none, and would loop.
                Rx::Banner(..) | Rx::Text(_) if rest.is_empty() => return used,
                Rx::Banner(..) => self.on_greeting_bytes(now, peer, rest),
                Rx::Frames(_) => self.on_frame_bytes(now, peer, rest),
                Rx::Text(_) => self.on_text_bytes(now, peer, rest),
            };
            match step {
                Step::Took(n) => used += n,
                Step::Wait(n) => return used + n,
            }
        }
    }

    /// First bytes of a connection: a banner, or the start of a text peer's talk.
    fn on_greeting_bytes(&mut self, now: Instant, peer: PeerId, bytes: &[u8]) -> Step {
        let Some(p) = self.peers.get_mut(peer) else {
            return Step::Wait(bytes.len());
        };
        let Rx::Banner(buf, _) = &mut p.state.rx else {
            return Step::Took(0);
        };
        if buf.is_empty() && p.state.phase == Phase::Greeting {
            // First byte after a silent start: the banner has its own, longer deadline.
            p.state.deadline = None;
        }
        let mut taken = 0;
        for &b in bytes {
            let at = buf.len();
            if at < BANNER_PREFIX.len() && BANNER_PREFIX.get(at) != Some(&b) {
                // Cannot begin a banner: a text peer. What was held is its text.
                let held: Vec<u8, MAX_BANNER> = buf.clone();
                self.become_text(now, peer, &held, TextMode::Lines);
                return Step::Took(taken);
            }
            taken += 1;
            if buf.push(b).is_err() {
                self.fault(peer, Fault::Banner(BannerError::TooLong));
                return Step::Took(taken);
            }
            if b == b'\n' {
                return self.on_banner(now, peer, taken);
            }
        }
        // From the first byte on; a banner trickled byte by byte gets no more time.
        if self
            .peers
            .get(peer)
            .is_some_and(|p| p.state.deadline.is_none())
        {
            self.set_deadline(peer, now + self.config.banner_timeout);
        }
        Step::Took(taken)
    }

    fn on_banner(&mut self, now: Instant, peer: PeerId, taken: usize) -> Step {
        let Some(p) = self.peers.get_mut(peer) else {
            return Step::Took(taken);
        };
        let Rx::Banner(buf, _) = &p.state.rx else {
            return Step::Took(taken);
        };
        let held = buf.clone();
        match wire::sniff(&held) {
            Sniff::Banner { .. } if p.state.refuse.is_some() => {
                let why = p.state.refuse.unwrap_or(Refusal::Busy);
                self.send_banner(peer);
                let mut reason: String<128> = String::new();
                let _ = fmt::write(&mut reason, format_args!("{why}"));
                let bye = Message::Bye { reason: &reason };
                if let Ok(data) = self.outbox.put_message(&bye) {
                    self.outbox.push(Job::Send { peer, data });
                }
                self.refuse(peer, why);
            }
            Sniff::Banner { banner, .. } => {
                let inbound = p.direction == Direction::Inbound;
                p.state.rx = Rx::Frames(FrameDecoder::new());
                p.state.phase = Phase::Hello;
                // The Connected event that follows hello carries the alias.
                self.peers.announce(peer, banner.name);
                if inbound {
                    self.send_banner(peer);
                }
                let name = self.config.name.clone();
                let hello = Message::Hello {
                    minor: wire::MINOR,
                    node: self.config.node_id,
                    name: &name,
                };
                if let Ok(data) = self.outbox.put_message(&hello) {
                    self.outbox.push(Job::Send { peer, data });
                }
                self.set_deadline(peer, now + self.config.banner_timeout);
            }
            Sniff::Error(e) => {
                if matches!(e, BannerError::Version { .. }) && p.direction == Direction::Inbound {
                    // Let the other side say why, too.
                    self.send_banner(peer);
                }
                self.fault(peer, Fault::Banner(e));
            }
            Sniff::Partial | Sniff::Text => self.fault(peer, Fault::Banner(BannerError::Malformed)),
        }
        Step::Took(taken)
    }

    fn send_banner(&mut self, peer: PeerId) {
        let name = &self.config.name;
        if let Ok(data) = self.outbox.put_with(|out| wire::write_banner(name, out)) {
            self.outbox.push(Job::Send { peer, data });
        }
    }

    /// Closes a connection that may not join (its reason already queued).
    fn refuse(&mut self, peer: PeerId, why: Refusal) {
        if let Some(addr) = self.peers.remove(peer).and_then(|p| p.addr) {
            self.outbox.push(Job::Close { peer });
            self.event(Event::Refused { addr, why });
        }
    }

    fn become_text(&mut self, now: Instant, peer: PeerId, held: &[u8], mode: TextMode) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        if let Some(why) = p.state.refuse {
            let mut line: String<128> = String::new();
            let _ = fmt::write(&mut line, format_args!("meshtalk: {why}\n"));
            if let Some(data) = self.outbox.put(&[line.as_bytes()]) {
                self.outbox.push(Job::Send { peer, data });
            }
            self.refuse(peer, why);
            return;
        }
        let mut text = Vec::new();
        // Cannot fail: at most a banner prefix is held, and F >= 256.
        let _ = text.extend_from_slice(held);
        let pending = !text.is_empty();
        // A silent peer was announced as text already, and keeps its mode.
        let (announced, mode) = match p.state.phase {
            Phase::Ready(Kind::Text(was)) => (true, was),
            _ => (false, mode),
        };
        p.state.phase = Phase::Ready(Kind::Text(mode));
        p.state.deadline = None;
        if !announced {
            self.text_joined(peer);
        }
        if let Some(p) = self.peers.get_mut(peer) {
            p.state.rx = Rx::Text(text);
        }
        if pending {
            self.set_deadline(peer, now + self.config.text_idle);
        }
    }

    fn connected_event(&mut self, peer: PeerId) {
        let Some(p) = self.peers.get(peer) else {
            return;
        };
        let (Phase::Ready(kind), Some(addr)) = (p.state.phase, p.addr) else {
            return;
        };
        let direction = p.direction;
        let alias = Alias::try_from(p.alias()).unwrap_or_default();
        if let Some(p) = self.peers.get_mut(peer) {
            // Got through: with `reconnect`, a drop by itself is dialled again.
            p.state.redial = direction == Direction::Outbound;
        }
        if let Some(span) = self.outbox.put(&[alias.as_bytes()]) {
            self.event(Event::Connected {
                peer,
                alias: span,
                addr,
                direction,
                kind,
            });
        }
        self.notice(Some(peer), format_args!("{alias} joined"));
    }

    /// A connection turned out to be a text peer: the room's lines held for it go out,
    /// in its form, first in the queue (a room line queued earlier in this input now
    /// reaches it directly, and is newer than every held one); then it is announced.
    /// No greeting: a client that only writes, then closes with our bytes unread,
    /// would make its kernel reset the connection and lose the end of what it wrote.
    fn text_joined(&mut self, peer: PeerId) {
        self.deliver_held(peer);
        self.connected_event(peer);
    }

    /// Sends a new text peer the room's lines held for it while its kind was not known,
    /// in one write (as lines; one that speaks bare writes gets no last newline).
    fn deliver_held(&mut self, peer: PeerId) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        let (Phase::Ready(Kind::Text(mode)), Rx::Banner(_, held)) =
            (p.state.phase, &mut p.state.rx)
        else {
            return;
        };
        if held.is_empty() {
            return;
        }
        let cut = usize::from(mode == TextMode::Bare);
        let data = self
            .outbox
            .put(&[held.get(..held.len() - cut).unwrap_or_default()]);
        held.clear();
        if let Some(data) = data {
            let _ = self.outbox.jobs.push_front(Job::Send { peer, data });
        }
    }

    /// Tells every text peer of a hub (but `except`) what happened in the room, on a line
    /// of its own that begins with `* `: a message's line begins with `<`, so a notice
    /// never passes for one (names hold no spaces, newlines or `<`).
    fn notice(&mut self, except: Option<PeerId>, what: fmt::Arguments<'_>) {
        if !self.config.hub {
            return;
        }
        if let Some(line) = self
            .outbox
            .put_fmt(format_args!("* {what}"), MAX_LINE, b"\n")
        {
            self.outbox.push(Job::Fanout {
                except,
                native: None,
                line: Some(line),
                next: 0,
            });
        }
    }

    /// Answers one text peer (a `/nick` or `/who` it typed), as a notice line.
    fn tell(&mut self, peer: PeerId, what: fmt::Arguments<'_>) {
        if let Some(data) = self
            .outbox
            .put_fmt(format_args!("* {what}"), MAX_LINE, b"\n")
        {
            self.outbox.push(Job::Send { peer, data });
        }
    }

    // ---- native peers ----

    fn on_frame_bytes(&mut self, now: Instant, peer: PeerId, bytes: &[u8]) -> Step {
        let Some(p) = self.peers.get_mut(peer) else {
            return Step::Wait(bytes.len());
        };
        let (mut from, mut link) = p.alias_and_state();
        let Rx::Frames(decoder) = &mut link.rx else {
            return Step::Took(0);
        };
        let (n, decoded) = decoder.decode(bytes);
        let body = match decoded {
            Decoded::NeedMore => {
                let partial = !decoder.is_at_boundary();
                if partial && link.frame_since.is_none() {
                    // A frame began: it has `frame_timeout` to end.
                    link.frame_since = Some(now);
                    self.wake_by(now + self.config.frame_timeout);
                }
                return Step::Wait(n);
            }
            Decoded::Frame(body) => {
                link.frame_since = None;
                body
            }
            Decoded::Error(FrameError::Oversized { .. }) => {
                // Skipped by the decoder; the stream goes on at the next frame,
                // which the skip must reach in time, as a frame must end.
                self.stats.oversized += 1;
                return Step::Took(n);
            }
            Decoded::Error(e) => {
                self.fault(peer, Fault::Frame(e));
                return Step::Took(n);
            }
        };
        // Rare: the deciding node talks on a link that waits for its decision, so it
        // kept this one. The link takes over before its message is read; the message
        // is read from a copy, as taking over touches the peer table it lives in. An
        // empty `Vec` costs nothing: only this rare path fills it (a zeroed `[0; F]`
        // here was an 8 KiB memset for every frame of the host's node).
        let mut copy: Vec<u8, F> = Vec::new();
        let mut body = body;
        let traffic = |body: &[u8]| {
            Message::decode(body)
                .is_ok_and(|m| !matches!(m, Message::Hello { .. } | Message::Bye { .. }))
        };
        if link.awaits_twin && traffic(body) {
            let len = body.len().min(F);
            // `len <= F`, the Vec's capacity: this cannot fail.
            let _ = copy.extend_from_slice(&body[..len]);
            self.take_over(peer);
            let Some(p) = self.peers.get_mut(peer) else {
                return Step::Took(n);
            };
            (from, link) = p.alias_and_state();
            body = &copy;
        }
        let msg = match Message::decode(body) {
            Ok(msg) => msg,
            Err(e) => {
                self.fault(peer, Fault::Wire(e));
                return Step::Took(n);
            }
        };
        let hello_done = link.phase != Phase::Hello;
        match msg {
            Message::Hello { minor, node, name } => {
                if link.awaits_twin {
                    return Step::Took(n);
                }
                if hello_done {
                    // A hello again: the peer took a new name (`/nick`).
                    if node == link.remote {
                        let mut owned: String<MAX_NAME> = String::new();
                        let _ = owned.push_str(name);
                        self.renamed(peer, &owned);
                    }
                    return Step::Took(n);
                }
                if node == self.config.node_id {
                    self.fault(peer, Fault::Itself);
                    return Step::Took(n);
                }
                link.remote = node;
                link.pings = minor >= wire::MINOR_PING;
                link.last_rx = now;
                let mut owned: String<MAX_NAME> = String::new();
                let _ = owned.push_str(name);
                if self.twin(peer, node).is_some() {
                    self.on_twin(now, peer, node, &owned);
                    return Step::Took(n);
                }
                self.ready(peer);
                self.peers.announce(peer, &owned);
                self.connected_event(peer);
            }
            Message::Bye { .. } if link.awaits_twin => {
                // The deciding node kept the other link: this one goes.
                self.close_twin(peer);
            }
            Message::Bye { reason } => {
                let reason = self.outbox.put(&[reason.as_bytes()]).unwrap_or_default();
                self.drop_peer(peer, Reason::Bye(reason), true);
            }
            _ if !hello_done => self.fault(peer, Fault::NoHello),
            Message::Chat { id, text } => {
                let from = self.outbox.put(&[from.as_bytes()]);
                let text = self.outbox.put(&[text.as_bytes()]);
                if let (Some(from), Some(text)) = (from, text) {
                    self.event(Event::Message {
                        peer,
                        from,
                        text,
                        room: None,
                    });
                }
                if let Ok(data) = self.outbox.put_message(&Message::Ack { id }) {
                    self.outbox.push(Job::Send { peer, data });
                }
            }
            Message::Ping { nonce } => {
                if let Ok(data) = self.outbox.put_message(&Message::Pong { nonce }) {
                    self.outbox.push(Job::Send { peer, data });
                }
            }
            // Its bytes were the sign of life that was asked for.
            Message::Pong { .. } => {}
            Message::Ack { id } => match link.unacked.iter().position(|&x| x == id) {
                Some(at) => {
                    link.unacked.remove(at);
                    self.event(Event::Delivered { peer, id });
                }
                None => self.stats.stray_acks += 1,
            },
            Message::Broadcast {
                origin,
                seq,
                hops,
                name,
                text,
            } => {
                let sight = match origin == self.config.node_id {
                    true => Sight::Duplicate,
                    false => self.seen.sight(origin, seq, hops),
                };
                if sight == Sight::Duplicate {
                    self.stats.duplicates += 1;
                    return Step::Took(n);
                }
                // The relayed frame is encoded from the decoded `str`s, whose
                // one UTF-8 check was the decoder's.
                let relay = route::relay_hops(hops);
                let native = relay.and_then(|hops| {
                    let msg = Message::Broadcast {
                        origin,
                        seq,
                        hops,
                        name,
                        text,
                    };
                    self.outbox.put_message(&msg).ok()
                });
                let from = self.outbox.put(&[name.as_bytes()]);
                let text = self.outbox.put(&[text.as_bytes()]);
                let (Some(from), Some(text)) = (from, text) else {
                    return Step::Took(n);
                };
                let room = Room { origin, seq };
                if sight == Sight::New {
                    self.event(Event::Message {
                        peer,
                        from,
                        text,
                        room: Some(room),
                    });
                }
                if relay.is_some() {
                    self.fanout(Some(peer), native, from, text, true);
                }
            }
        }
        Step::Took(n)
    }

    /// The peer announced a new name: it becomes the alias shown, unless a person here
    /// named the peer.
    fn renamed(&mut self, peer: PeerId, name: &str) {
        if self.peers.announce(peer, name)
            && let Some(alias) = self.peers.get(peer).map(|p| p.alias())
            && let Some(alias) = self.outbox.put(&[alias.as_bytes()])
        {
            self.event(Event::Alias { peer, alias });
        }
    }

    /// Another ready link to the node `node`, besides `peer`.
    fn twin(&self, peer: PeerId, node: u64) -> Option<PeerId> {
        self.peers
            .iter()
            .find(|p| {
                p.id != peer
                    && p.state.phase == Phase::Ready(Kind::Native)
                    && p.state.remote == node
            })
            .map(|p| p.id)
    }

    /// The hello came on `peer` while `twin` is a ready link to the same node `node`
    /// (a repeated `connect`, or both nodes dialling at once). The lower node id decides
    /// which stays, so both ends keep the same one: it keeps the link already in use,
    /// with its alias, and closes the newcomer. The other end waits for that choice.
    fn on_twin(&mut self, now: Instant, peer: PeerId, node: u64, name: &str) {
        if self.config.node_id < node {
            self.close_twin(peer);
            // The newcomer may have held the announced name (its banner came first).
            if let Some(keep) = self.twin(peer, node)
                && self.peers.announce(keep, name)
                && let Some(alias) = self.peers.get(keep).map(|p| p.alias())
                && let Some(alias) = self.outbox.put(&[alias.as_bytes()])
            {
                self.event(Event::Alias { peer: keep, alias });
            }
            return;
        }
        if let Some(p) = self.peers.get_mut(peer) {
            p.state.awaits_twin = true;
        }
        // No longer than a hello may take: see `on_deadline`.
        self.set_deadline(peer, now + self.config.banner_timeout);
    }

    /// Closes a second link to a node that is already linked: the person is told which
    /// peer it is ("already connected to bobby (#1)").
    fn close_twin(&mut self, peer: PeerId) {
        let Some(node) = self.peers.get(peer).map(|p| p.state.remote) else {
            return;
        };
        let twin = self.twin(peer, node);
        let alias = twin
            .and_then(|t| self.peers.get(t))
            .and_then(|t| self.outbox.put(&[t.alias().as_bytes()]));
        match (twin, alias) {
            (Some(keep), Some(alias)) => {
                self.drop_peer(peer, Reason::Duplicate { keep, alias }, true)
            }
            _ => self.drop_peer(peer, Reason::Closed, true),
        }
    }

    /// A waiting second link takes over from its twin (the deciding node kept it, or the
    /// twin is gone): it becomes ready, with the twin's alias.
    fn take_over(&mut self, peer: PeerId) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        p.state.awaits_twin = false;
        let node = p.state.remote;
        let mut alias: String<MAX_NAME> = String::new();
        if let Some(twin) = self.twin(peer, node) {
            if let Some(t) = self
                .peers
                .get(twin)
                .filter(|t| t.alias_source() == AliasSource::Chosen)
            {
                let _ = alias.push_str(t.alias());
            }
            let why = self.outbox.put(&[b"duplicate link"]).unwrap_or_default();
            self.drop_peer(twin, Reason::Bye(why), true);
        }
        self.adopt(peer, &alias);
    }

    /// A second link takes its gone twin's place: ready, and announced with the alias a
    /// person gave the twin, if any (else the name it announced).
    fn adopt(&mut self, peer: PeerId, alias: &str) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.state.awaits_twin = false;
        }
        self.ready(peer);
        if !alias.is_empty() {
            let _ = self.peers.set_alias(peer, alias);
        }
        self.connected_event(peer);
    }

    /// A native link's hello is done: it is ready to chat, and pinged when silent
    /// (counted from its last byte, the hello or later).
    fn ready(&mut self, peer: PeerId) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        p.state.phase = Phase::Ready(Kind::Native);
        p.state.deadline = None;
        p.state.awaits_twin = false;
        let last_rx = p.state.last_rx;
        if let Some(after) = self.config.ping_after.filter(|_| p.state.pings) {
            self.wake_by(last_rx + after);
        }
    }

    // ---- text peers ----

    fn on_text_bytes(&mut self, now: Instant, peer: PeerId, bytes: &[u8]) -> Step {
        let max = self.max_text();
        let Some(p) = self.peers.get_mut(peer) else {
            return Step::Wait(bytes.len());
        };
        let Rx::Text(buf) = &mut p.state.rx else {
            return Step::Took(0);
        };
        let room = max.saturating_sub(buf.len());
        let window = bytes.get(..room.min(bytes.len())).unwrap_or_default();
        if let Some(newline) = window.iter().position(|&b| b == b'\n') {
            let line = window.get(..newline).unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            // Cannot fail: the line fits in `room`.
            let _ = buf.extend_from_slice(line);
            if let Phase::Ready(Kind::Text(mode)) = &mut p.state.phase {
                *mode = TextMode::Lines;
            }
            p.state.deadline = None;
            p.state.sends_lines = true;
            // An empty line (someone pressed Enter) is no message.
            if !buf.is_empty() {
                self.flush_text(peer, usize::MAX);
            }
            return Step::Took(newline + 1);
        }
        // Cannot fail: `window` fits in `room`.
        let _ = buf.extend_from_slice(window);
        let sends_lines = p.state.sends_lines;
        if buf.len() >= max {
            // A line longer than a message: send what fits, up to a character boundary.
            let cut = match utf8_cut(buf) {
                // Not even one whole character fits (a limit under 4 bytes): send the bytes.
                0 => buf.len(),
                cut => cut,
            };
            self.flush_text(peer, cut);
        }
        if !sends_lines {
            let at = now + self.config.text_idle;
            self.set_deadline(peer, at);
        }
        Step::Took(window.len())
    }

    /// Sends the first `cut` bytes a text peer sent as one message, keeping the rest.
    fn flush_text(&mut self, peer: PeerId, cut: usize) {
        let max = self.max_text();
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        let (alias, link) = p.alias_and_state();
        let Rx::Text(buf) = &mut link.rx else {
            return;
        };
        let cut = cut.min(buf.len());
        let from = self.outbox.put(&[alias.as_bytes()]);
        let text = self
            .outbox
            .put_lossy(buf.get(..cut).unwrap_or_default(), max);
        let kept = buf.len() - cut;
        buf.copy_within(cut.., 0);
        buf.truncate(kept);
        if let (Some(from), Some(text)) = (from, text) {
            self.text_message(peer, from, text);
        }
    }

    /// One message from a text peer: shown, and at a hub relayed to the room (unless
    /// it is `/nick NAME` or `/who`, which the hub answers).
    fn text_message(&mut self, peer: PeerId, from: Span, text: Span) {
        let mut room = None;
        if self.config.hub {
            match RoomCommand::parse(self.outbox.text(text)) {
                Some(RoomCommand::Nick(name)) => return self.nick(peer, &name),
                Some(RoomCommand::Who) => return self.who(peer),
                None => {}
            }
            self.last_seq = self.last_seq.wrapping_add(1);
            let r = Room {
                origin: self.config.node_id,
                seq: self.last_seq,
            };
            self.seen.first_sight(r.origin, r.seq);
            let hops = self.config.hops;
            let native = self
                .outbox
                .put_frame([from, text], |[name, text]| Message::Broadcast {
                    origin: r.origin,
                    seq: r.seq,
                    hops,
                    name,
                    text,
                });
            self.fanout(Some(peer), native, from, text, true);
            room = Some(r);
        }
        self.event(Event::Message {
            peer,
            from,
            text,
            room,
        });
    }

    /// A text peer of a hub asked for a name: it becomes its alias, under the rules of
    /// aliases (and never the hub's own name); the room is told, and so is the person.
    fn nick(&mut self, peer: PeerId, name: &str) {
        let old = match self.peers.get(peer) {
            Some(p) => Alias::try_from(p.alias()).unwrap_or_default(),
            None => return,
        };
        if name.is_empty() {
            return self.tell(peer, format_args!("usage: /nick NAME"));
        }
        if name == self.config.name.as_str() {
            return self.tell(
                peer,
                format_args!("{name} is the hub's own name; choose another"),
            );
        }
        match self.peers.set_alias(peer, name) {
            Ok(()) => {
                self.tell(peer, format_args!("you are now {name}"));
                self.notice(Some(peer), format_args!("{old} is now known as {name}"));
                if let Some(alias) = self.outbox.put(&[name.as_bytes()]) {
                    self.event(Event::Alias { peer, alias });
                }
            }
            Err(InsertError::AliasTaken(_)) => {
                self.tell(peer, format_args!("{name} is taken; choose another"))
            }
            Err(e) => self.tell(
                peer,
                format_args!("cannot take the name {}: {e}", SafeStr(name)),
            ),
        }
    }

    /// A text peer of a hub asked who is in the room: the hub's person and every peer
    /// ready to chat (neighbouring nodes by their names), itself marked.
    fn who(&mut self, peer: PeerId) {
        let list = Who {
            hub: &self.config.name,
            peers: &self.peers,
            you: peer,
        };
        if let Some(data) =
            self.outbox
                .put_fmt(format_args!("* in the room: {list}"), MAX_LINE, b"\n")
        {
            self.outbox.push(Job::Send { peer, data });
        }
    }

    // ---- time ----

    /// Fires every timer that is due, and sets the next wake-up from the rest.
    fn on_timeout(&mut self, now: Instant) {
        self.wake = None;
        for slot in 0..self.peers.slots() {
            // A peer's timers fire one at a time, each changing what is next.
            let mut fired = 0;
            while let Some(p) = self.peers.at(slot) {
                let (peer, next) = (p.id, self.next_timer(&p.state));
                match next {
                    Some((timer, at)) if at <= now && fired < Timer::COUNT => {
                        fired += 1;
                        if !self.outbox.has_room(Self::RESERVE, Self::RESERVE_JOBS) {
                            // Come back at once for the rest.
                            self.wake = Some(now);
                            return;
                        }
                        self.fire(now, peer, timer);
                    }
                    // Also a timer still due after each fired once: wake at once.
                    Some((_, at)) => {
                        self.wake_by(at);
                        break;
                    }
                    None => break,
                }
            }
        }
    }

    /// A link's earliest timer and when it is due.
    fn next_timer(&self, link: &Link<F>) -> Option<(Timer, Instant)> {
        let live = match (link.phase, link.pings, self.config.ping_after) {
            (Phase::Ready(Kind::Native), true, Some(after)) => Some(match link.pinged {
                None => (Timer::Ping, link.last_rx + after),
                Some(pinged) => (Timer::Dead, pinged + self.config.dead_after),
            }),
            _ => None,
        };
        let frame = link
            .frame_since
            .map(|since| (Timer::Frame, since + self.config.frame_timeout));
        let deadline = link.deadline.map(|at| (Timer::Deadline, at));
        [deadline, frame, live]
            .into_iter()
            .flatten()
            .min_by_key(|&(_, at)| at)
    }

    fn fire(&mut self, now: Instant, peer: PeerId, timer: Timer) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        match timer {
            Timer::Deadline => {
                p.state.deadline = None;
                self.on_deadline(now, peer);
            }
            Timer::Frame => {
                p.state.frame_since = None;
                self.fault(peer, Fault::FrameUnfinished);
            }
            Timer::Ping => {
                p.state.pinged = Some(now);
                let nonce = p.state.ping_nonce;
                p.state.ping_nonce = nonce.wrapping_add(1);
                if let Ok(data) = self.outbox.put_message(&Message::Ping { nonce }) {
                    self.outbox.push(Job::Send { peer, data });
                }
            }
            Timer::Dead => {
                let silent = self.config.ping_after.unwrap_or_default() + self.config.dead_after;
                self.drop_peer(peer, Reason::NoAnswer(silent), true);
            }
        }
    }

    fn on_deadline(&mut self, now: Instant, peer: PeerId) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        match (&mut p.state.rx, p.state.phase) {
            (Rx::Banner(buf, _), Phase::Greeting) if buf.is_empty() => {
                // Silent: a text peer (the older programs never speak first). Its
                // first bytes are still sniffed, so a native peer whose banner was
                // merely late (a loaded machine, a slow link) is not lost to text.
                let mode = match p.direction {
                    Direction::Outbound => TextMode::Bare,
                    Direction::Inbound => TextMode::Lines,
                };
                if p.state.refuse.is_some() {
                    // No room for it: told why as text, and closed.
                    self.become_text(now, peer, &[], mode);
                    return;
                }
                p.state.phase = Phase::Ready(Kind::Text(mode));
                self.text_joined(peer);
            }
            (Rx::Banner(buf, _), Phase::Greeting | Phase::Ready(Kind::Text(_)))
                if buf.len() < BANNER_PREFIX.len() =>
            {
                // A few letters that were not a banner after all: plain text.
                let held = buf.clone();
                let mode = match p.direction {
                    Direction::Outbound => TextMode::Bare,
                    Direction::Inbound => TextMode::Lines,
                };
                self.become_text(now, peer, &held, mode);
            }
            (Rx::Banner(..), _) => self.fault(peer, Fault::BannerUnfinished),
            // The deciding node did not choose in time: the link in use stays.
            (Rx::Frames(_), Phase::Hello) if p.state.awaits_twin => self.close_twin(peer),
            (Rx::Frames(_), Phase::Hello) => self.fault(peer, Fault::HelloMissing),
            (Rx::Text(buf), _) if !buf.is_empty() => {
                // Idle after text with no newline: one bare message.
                if let Phase::Ready(Kind::Text(mode)) = &mut p.state.phase {
                    *mode = TextMode::Bare;
                }
                self.flush_text(peer, usize::MAX);
            }
            _ => {}
        }
    }

    // ---- leaving ----

    fn fault(&mut self, peer: PeerId, fault: Fault) {
        self.stats.faults += 1;
        self.drop_peer(peer, Reason::Fault(fault), true);
    }

    /// Removes a peer: its pending text is delivered, its unconfirmed messages
    /// reported, a native peer told why (when we close), and the person told. With
    /// `reconnect`, an outbound peer that dropped by itself stays, as
    /// [`Phase::Reconnecting`], under its id and alias.
    fn drop_peer(&mut self, peer: PeerId, reason: Reason<Span>, close: bool) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        if matches!(&p.state.rx, Rx::Text(buf) if !buf.is_empty()) {
            self.flush_text(peer, usize::MAX);
        }
        let again = self.config.reconnect
            && self.peers.get(peer).is_some_and(|p| p.state.redial)
            && reason.map(|s| self.outbox.text(s)).redials();
        let (link, alias, source) = match again {
            true => {
                let Some(p) = self.peers.get_mut(peer) else {
                    return;
                };
                let mut link = Link::new(Phase::Reconnecting);
                link.redial = true;
                let old = core::mem::replace(&mut p.state, link);
                let alias = Alias::try_from(p.alias()).unwrap_or_default();
                (old, alias, p.alias_source())
            }
            false => {
                let Some(p) = self.peers.remove(peer) else {
                    return;
                };
                let alias = Alias::try_from(p.alias()).unwrap_or_default();
                let source = p.alias_source();
                (p.state, alias, source)
            }
        };
        for &id in &link.unacked {
            self.event(Event::Undelivered { peer, id });
        }
        // A second link that waited on this one takes over.
        let waiting = match link.phase {
            Phase::Ready(Kind::Native) => self
                .peers
                .iter()
                .find(|w| w.state.awaits_twin && w.state.remote == link.remote)
                .map(|w| w.id),
            _ => None,
        };
        if close {
            let native = matches!(link.phase, Phase::Hello | Phase::Ready(Kind::Native));
            if native {
                let mut why: String<128> = String::new();
                match reason {
                    // Told to the other side: "disconnected here" or a peer number of
                    // ours would be wrong there.
                    Reason::Local => {
                        let _ = why.push_str("disconnected");
                    }
                    Reason::Duplicate { .. } => {
                        let _ = why.push_str("duplicate link");
                    }
                    _ => {
                        let _ = fmt::write(
                            &mut why,
                            format_args!("{}", reason.map(|s| self.outbox.text(s))),
                        );
                    }
                }
                if let Ok(data) = self.outbox.put_message(&Message::Bye { reason: &why }) {
                    self.outbox.push(Job::Send { peer, data });
                }
            }
            self.outbox.push(Job::Close { peer });
        }
        if let Some(span) = self.outbox.put(&[alias.as_bytes()]) {
            self.event(Event::Disconnected {
                peer,
                alias: span,
                reason,
            });
        }
        if let Phase::Ready(_) = link.phase {
            self.notice(None, format_args!("{alias} left"));
        }
        if let Some(waiting) = waiting {
            let chosen = source == AliasSource::Chosen;
            self.adopt(waiting, if chosen { &alias } else { "" });
        }
    }
}

/// A link's timers, each computed from its state when the node wakes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    /// The greeting, banner, hello or text-idle deadline.
    Deadline,
    /// A partial frame must end.
    Frame,
    /// The peer has been silent long enough to ping.
    Ping,
    /// The pinged peer has not answered.
    Dead,
}

impl Timer {
    /// How many timers one link has.
    const COUNT: usize = 4;
}

/// What one step over received bytes did.
enum Step {
    /// Took this many bytes; go on with the rest.
    Took(usize),
    /// Took this many bytes and needs more input (or the peer is gone).
    Wait(usize),
}

/// The length of the longest prefix of `bytes` that does not end inside a UTF-8
/// character (all of it when it is not UTF-8 at that point).
/// An event's texts, lent from the outbox. Out of line: inlined, it made the
/// fan-out loop of `poll_output` dearer than the UTF-8 checks it holds.
#[inline(never)]
fn event_text<const A: usize>(outbox: &Outbox<A>, event: Event<Span>) -> Event<&str> {
    event.map(|s| outbox.text(s))
}

fn utf8_cut(bytes: &[u8]) -> usize {
    let len = bytes.len();
    // A character is at most 4 bytes: look back at most 3 for its lead byte.
    for back in 1..=3.min(len) {
        let b = bytes[len - back];
        if b & 0xC0 == 0x80 {
            continue;
        }
        let width = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if width > back { len - back } else { len };
    }
    len
}

/// A direct message to a text peer of a hub, each line tagged `<name> (to you) `, so
/// that it cannot pass for room text; every character shown safely.
struct ToYou<'t> {
    name: &'t str,
    text: &'t str,
}

impl fmt::Display for ToYou<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, line) in self.text.split('\n').enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "<{}> (to you) {}", SafeStr(self.name), SafeStr(line))?;
        }
        Ok(())
    }
}

/// What a text peer of a hub may ask of it instead of saying something to the room.
#[derive(Debug, PartialEq, Eq)]
enum RoomCommand {
    /// `/nick NAME`: its name from now on (empty: none given). Cut at 64 bytes, which
    /// is too long for an alias whatever the cut.
    Nick(String<64>),
    /// `/who`: who is in the room.
    Who,
}

impl RoomCommand {
    /// The command in a text peer's line, if it is one (`/NICK` and `/Who` too); any
    /// other line, `/me waves` included, is a message.
    fn parse(line: &str) -> Option<RoomCommand> {
        let line = line.trim();
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        if word.eq_ignore_ascii_case("/who") && rest.trim().is_empty() {
            return Some(RoomCommand::Who);
        }
        if !word.eq_ignore_ascii_case("/nick") {
            return None;
        }
        let name = rest.trim();
        let mut owned = String::new();
        let end = (0..=name.len().min(64))
            .rev()
            .find(|&i| name.is_char_boundary(i))
            .unwrap_or(0);
        // Cannot fail: at most 64 bytes.
        let _ = owned.push_str(name.get(..end).unwrap_or_default());
        Some(RoomCommand::Nick(owned))
    }
}

/// The members of a hub's room, for `/who`: `alice (hub), bob, 127.0.0.1 (you)`.
struct Who<'t, L, const P: usize> {
    hub: &'t str,
    peers: &'t PeerTable<L, P>,
    you: PeerId,
}

impl<const F: usize, const P: usize> fmt::Display for Who<'_, Link<F>, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (hub)", self.hub)?;
        for p in self.peers.iter() {
            if let Phase::Ready(_) = p.state.phase {
                let you = if p.id == self.you { " (you)" } else { "" };
                write!(f, ", {}{you}", SafeStr(p.alias()))?;
            }
        }
        Ok(())
    }
}
