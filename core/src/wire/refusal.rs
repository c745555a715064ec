//! Why a connection is turned away, as a type and on the wire.

use core::fmt;

/// What a one-peer node tells a second peer before closing its connection.
pub const BUSY: &str = "busy: in a chat with someone else; try again later";
/// What a one-peer server tells a second client before closing its connection.
pub const BUSY_SERVING: &str = "busy: serving another client; try again later";

/// Why a connection was turned away: told to it as [`Message::Refuse`](super::Message::Refuse), or as a
/// [`write_refusal_line`](super::write_refusal_line) line before any banner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A one-peer node is in a chat already: [`BUSY`].
    Busy,
    /// A one-peer server is serving another client: [`BUSY_SERVING`].
    Serving,
    /// Already this many connections from the same IP address.
    PerIp {
        /// The most connections from one address.
        max: usize,
    },
    /// The node's peer table is full (this many peers).
    Full {
        /// The most peers the node takes.
        limit: usize,
    },
    /// The node is a private room (it has a room key) and the connection speaks
    /// plain text, which cannot join one.
    Private,
    /// A reason this version does not know (a newer peer's).
    Unknown,
}

impl Refusal {
    /// The refusal as a wire code and its argument (a count, or 0).
    pub fn code(self) -> (u8, u32) {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        match self {
            Refusal::Busy => (1, 0),
            Refusal::Serving => (2, 0),
            Refusal::PerIp { max } => (3, count(max)),
            Refusal::Full { limit } => (4, count(limit)),
            Refusal::Private => (5, 0),
            Refusal::Unknown => (0, 0),
        }
    }

    /// The refusal a wire code stands for; [`Refusal::Unknown`] for a code this
    /// version does not know, so a newer peer's refusal is still one.
    pub fn from_code(code: u8, arg: u32) -> Self {
        let count = arg as usize;
        match code {
            1 => Refusal::Busy,
            2 => Refusal::Serving,
            3 => Refusal::PerIp { max: count },
            4 => Refusal::Full { limit: count },
            5 => Refusal::Private,
            _ => Refusal::Unknown,
        }
    }

    /// The refusing node is busy with someone else: not worth dialling again
    /// (`--reconnect`) until a person asks.
    pub fn is_busy(self) -> bool {
        matches!(self, Refusal::Busy | Refusal::Serving)
    }

    /// The reason in a few words, for a refusal line with no room for the whole.
    pub(super) fn short(self) -> &'static str {
        match self {
            Refusal::Busy | Refusal::Serving => "busy; try again later\n",
            Refusal::PerIp { .. } => "too many from your address; try again later\n",
            Refusal::Full { .. } => "this node is full; try again later\n",
            Refusal::Private => "private room; text clients cannot join\n",
            Refusal::Unknown => "try again later\n",
        }
    }

    /// The word for the refusal in a [`write_refusal_line`](super::write_refusal_line) line.
    pub(super) fn word(self) -> &'static str {
        match self {
            Refusal::Busy => "busy",
            Refusal::Serving => "serving",
            Refusal::PerIp { .. } => "per-ip",
            Refusal::Full { .. } => "full",
            Refusal::Private => "private",
            Refusal::Unknown => "other",
        }
    }
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
            Refusal::Full { limit } => {
                write!(f, "this node is full ({limit} peers); try again later")
            }
            Refusal::Private => f.write_str(
                "this is a private meshtalk room (encrypted with a room key); a plain-text \
                 client such as netcat cannot join it",
            ),
            Refusal::Unknown => f.write_str("refused for a reason this version does not know"),
        }
    }
}
