//! Every limit of the node in one place: what a peer may make it spend, and
//! how long it waits. [`crate::node::Config`] defaults to these; a host lets
//! a person change the ones marked "Config". A leaf: the other modules import
//! from here, and this imports only [`crate::time`].

use crate::time::Duration;

/// The longest alias or node name, in characters (each is ASCII, so also bytes);
/// node names follow the alias rules of [`crate::alias`].
pub const MAX_NAME: usize = 32;
/// The longest banner line accepted, newline included.
pub const MAX_BANNER: usize = 64;
/// Config: how many nodes a broadcast may cross when nobody configured otherwise.
pub const DEFAULT_HOPS: u8 = 8;

/// Chat messages to one peer that may await their receipt at once.
pub const WINDOW: usize = 32;
/// Origins whose broadcasts the node remembers.
pub const ORIGINS: usize = 64;
/// A host's node: nodes the originator table keeps a route to (the least
/// recently heard gives way), and direct messages across the mesh that may
/// await their receipt at once.
pub const ROUTES: usize = 64;
/// The same for a small device's node (the default), whose 32 KiB leave room
/// for little more.
pub const SMALL_ROUTES: usize = 2;
/// A route not heard again (by a room message or hello) for this long is forgotten.
pub const ROUTE_TTL: Duration = Duration::from_secs(600);
/// Config: a node floods its [`Announce`](crate::wire::Message::Announce) this often
/// (a quarter of [`ROUTE_TTL`]: its routes outlive three lost announces).
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(150);
/// A link that came up, or a node heard of for the first time, has the node
/// announce itself this soon: what else comes meanwhile joins the same one.
pub const ANNOUNCE_SOON: Duration = Duration::from_secs(1);
/// Direct messages across the mesh that may await their receipt at once (fewer
/// on a node with fewer routes): few enough that a link dropping reports them
/// all, with its own window, in the outputs' job slots.
pub const ROUTED_WINDOW: usize = 16;
/// A direct message across the mesh whose receipt has not come back this long
/// after it left is reported undelivered (a link beyond the next hop failed).
pub const ROUTED_WAIT: Duration = Duration::from_secs(15);
/// Bytes a frame needs besides its text (tag, ids, the sender's name, lengths,
/// and on a secure link the 16-byte authentication tag).
pub const FRAME_OVERHEAD: usize = 80;
/// Frames one sealed message of a secure link carries at most: a receiver keeps
/// room for this many before it opens one.
pub const MAX_BATCH: usize = 4;
/// The longest sealed message that carries more than one frame: a node takes
/// frames of at least this size, so a batch never meets a smaller limit than
/// its frames alone would.
pub const BATCH_BYTES: usize = 1024;
/// The longest host name a `connect` may carry.
pub const MAX_HOST: usize = 253;

/// Config: the longest text of one message, in bytes (never more than the
/// node's frames can carry). A text peer's longer line is cut into messages.
pub const MAX_TEXT: usize = 4096;
/// Config: the most connections accepted at once from one remote IP address.
pub const MAX_PER_IP: usize = 8;
/// Config: a connection that says nothing for this long is a text peer.
pub const GREETING_TIMEOUT: Duration = Duration::from_millis(500);
/// Config: a banner must be complete this long after its first byte, and the
/// hello this long after the banner.
pub const BANNER_TIMEOUT: Duration = Duration::from_secs(2);
/// Config: text with no newline becomes a message after the stream is idle this long.
pub const TEXT_IDLE: Duration = Duration::from_millis(100);
/// Config: a native peer's frame that stays partial this long closes the peer.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// Config: a native peer heard nothing from for this long is sent a ping.
pub const PING_AFTER: Duration = Duration::from_secs(15);
/// Config: a pinged peer that sends nothing for this long is dropped.
pub const DEAD_AFTER: Duration = Duration::from_secs(10);

/// Config (shell): a peer with more than this many bytes waiting for it pauses
/// the input of every peer, so what peers send cannot grow the queues further.
pub const HIGH_WATER: usize = 1 << 20;
/// Config (shell): the pause lifts once every peer has less than this waiting.
pub const LOW_WATER: usize = 256 << 10;
/// Config (shell): a peer that takes none of the bytes waiting for it this long
/// is dropped as not reading; this also breaks a cycle of nodes paused on each other.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The one-way server (`serve`): the most log text kept for one client, in bytes;
/// older lines are dropped beyond it.
pub const SERVE_LOG: usize = 64 << 10;
/// The one-way server: how long a native client may take to confirm its log
/// before it is disconnected anyway.
pub const SERVE_RECEIPT_WAIT: Duration = Duration::from_secs(10);
/// The one-way client (`send`): how long it waits for the log after `quit`.
pub const SEND_LOG_WAIT: Duration = Duration::from_secs(10);
/// The one-way client (`send`): the most bytes of lines waiting to be sent (each
/// counting one more); a line that does not fit waits in the input until one left.
pub const SEND_QUEUE: usize = 16 << 10;
/// The one-way client speaking raw text: the time between two writes. An older
/// server reads two quick writes as one message, and a meshtalk reading bare
/// text ends a message after [`TEXT_IDLE`] of quiet: twice that is safe for both.
pub const SEND_TEXT_GAP: Duration = Duration::from_millis(2 * TEXT_IDLE.as_millis());
/// The one-way client speaking raw text: after `quit`, the log is what arrives
/// until the server closes or is silent this long.
pub const SEND_TEXT_SILENCE: Duration = Duration::from_secs(2);

/// Shell: bytes of one peer fed to the node in one turn; then other peers and
/// messages are served, so a flooding peer delays the others by at most this much work.
pub const TURN_BUDGET: usize = 16 << 10;
/// Shell: a piece the node takes none of this many times in a row (draining in
/// between) is dropped: the node is stuck on it, and the peer must not hang the shell.
pub const STUCK_LIMIT: u8 = 3;
/// Shell: a rate-limited peer is fed up to its next newline, at most this much
/// at once, so a line-speaking peer overdraws its bucket by one message at most.
pub const RATE_PIECE: usize = 256;
/// Shell: the first re-dial of a dropped peer waits this long (`mesh --reconnect`).
pub const RECONNECT_MIN: Duration = Duration::from_secs(1);
/// Shell: each failed re-dial doubles the wait, up to this.
pub const RECONNECT_MAX: Duration = Duration::from_secs(30);
