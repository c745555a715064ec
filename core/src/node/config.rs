//! How a node behaves: its configuration and the defaults.

use heapless::String;

use crate::command::{AliasError, validate_alias};
use crate::limits;
use crate::noise::KEY_LEN;
use crate::route;
use crate::time::Duration;
use crate::wire::MAX_NAME;

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
    /// Keep an outbound peer that drops by itself (see [`Reason::redials`](super::Reason::redials)) under its
    /// id and alias as [`Phase::Reconnecting`](super::Phase::Reconnecting), for the shell to dial again
    /// ([`Input::Redial`](super::Input::Redial)) until it is back or a person disconnects it.
    pub reconnect: bool,
    /// One peer at a time (the two-peer chat): a second one is told [`BUSY`](super::BUSY) and closed.
    pub single_peer: bool,
    /// The one peer is a client being served (`serve`), not a chat: a second one is
    /// told [`BUSY_SERVING`](super::BUSY_SERVING) instead of [`BUSY`](super::BUSY).
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
    /// (see [`Node::max_text`](super::Node::max_text)). A text peer's longer line is cut into messages.
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
    /// The node floods its announce this often besides when its links change;
    /// `None`: only then (a simulation that must go idle).
    pub announce_every: Option<Duration>,
    /// Secure links (protocol 2: Noise after the banners) with these keys;
    /// `None`: protocol 1, plaintext, which goes once every shell speaks 2.
    pub secure: Option<Secure>,
}

/// The keys of a node with secure links, from the shell (the core reads no
/// files and draws no randomness).
#[derive(Clone)]
pub struct Secure {
    /// Our long-term static secret key; peers see and pin its public half.
    pub identity: [u8; KEY_LEN],
    /// A private room's key: only nodes holding the same key link (Noise psk0).
    pub room_key: Option<[u8; KEY_LEN]>,
    /// With a room key, let plain-text peers (netcat) join all the same, shown
    /// as unencrypted; without it they are refused with a line saying why.
    pub allow_text: bool,
    /// The shell vets each peer's key (trust on first use): after the
    /// handshake the node tells [`Event::Vet`](super::Event::Vet) and takes no
    /// more from the peer until [`Input::Vetted`](super::Input::Vetted).
    pub vet: bool,
}

/// Shows whether there is a room key, never a key.
impl core::fmt::Debug for Secure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Secure")
            .field("room", &self.room_key.is_some())
            .field("allow_text", &self.allow_text)
            .field("vet", &self.vet)
            .finish_non_exhaustive()
    }
}

impl Secure {
    /// Secure links with `identity`, no room key, text peers allowed.
    pub fn new(identity: [u8; KEY_LEN]) -> Self {
        Secure {
            identity,
            room_key: None,
            allow_text: false,
            vet: false,
        }
    }

    /// Whether text peers may join: always without a room key; with one, only
    /// when allowed.
    pub fn admits_text(&self) -> bool {
        self.room_key.is_none() || self.allow_text
    }
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
            announce_every: Some(limits::ANNOUNCE_EVERY),
            secure: None,
        })
    }
}
