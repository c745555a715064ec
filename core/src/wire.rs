//! Wire protocol v1: the banner line that opens a connection, then postcard
//! messages, each in one frame (see [`crate::frame`]).

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::alias::validate_alias;
use crate::frame::{self, BufferTooSmall, MAX_HEADER};
pub use crate::limits::{MAX_BANNER, MAX_NAME};

/// The protocol's major version: a peer with another one cannot talk to us.
pub const VERSION: u16 = 1;
/// Minor version: additions a v1 peer may ignore.
pub const MINOR: u16 = 2;
/// The first minor version that knows [`Message::Ping`] and [`Message::Pong`].
pub const MINOR_PING: u16 = 1;
/// The first minor version that knows [`Message::Refuse`]; an older peer is
/// refused with a [`Message::Bye`] that says why in words.
pub const MINOR_REFUSE: u16 = 2;
/// Every banner starts with these bytes; a stream that cannot begin with them is a text peer.
pub const BANNER_PREFIX: &[u8] = b"MESHTALK/";

/// One message between two native peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message<'a> {
    /// First frame after the banners: who is speaking, and its node id for loop checks.
    /// Sent again, with the new name, when the person takes another (`/nick`); a node
    /// that predates this ignores a second hello.
    Hello {
        /// The sender's minor version: which additions it knows.
        minor: u16,
        /// The sender's node id, unique per run: loops and twin links are told by it.
        node: u64,
        /// The sender's name, shown as its alias by default.
        name: &'a str,
    },
    /// A direct message, acknowledged by [`Message::Ack`] with the same id.
    Chat {
        /// The sender's id of the message, named again by its receipt.
        id: u32,
        /// The message.
        text: &'a str,
    },
    /// Delivery receipt for the chat message `id`.
    Ack {
        /// The id of the chat message received.
        id: u32,
    },
    /// A room message, relayed node to node until `hops` runs out.
    Broadcast {
        /// The node id of the first sender.
        origin: u64,
        /// The first sender's sequence number: with `origin`, what duplicates are told by.
        seq: u32,
        /// Relays left.
        hops: u8,
        /// The first sender's name.
        name: &'a str,
        /// The message.
        text: &'a str,
    },
    /// The sender is closing the connection, and why.
    Bye {
        /// Why, in words for the person.
        reason: &'a str,
    },
    /// Are you there? Sent to a peer that has been silent; answered by [`Message::Pong`].
    Ping {
        /// Sent back in the pong.
        nonce: u32,
    },
    /// The answer to [`Message::Ping`], with its nonce.
    Pong {
        /// The ping's nonce.
        nonce: u32,
    },
    /// The connection may not join, and why ([`Refusal::code`]); sent instead of
    /// a hello, then the sender closes. An unknown code is [`Refusal::Unknown`].
    Refuse {
        /// Which refusal ([`Refusal::from_code`]).
        code: u8,
        /// Its count (a limit), or 0.
        arg: u32,
    },
}

/// What a one-peer node tells a second peer before closing its connection.
pub const BUSY: &str = "busy: in a chat with someone else; try again later";
/// What a one-peer server tells a second client before closing its connection.
pub const BUSY_SERVING: &str = "busy: serving another client; try again later";

/// Why a connection was turned away: told to it as [`Message::Refuse`], or as a
/// [`write_refusal_line`] line before any banner.
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
            _ => Refusal::Unknown,
        }
    }

    /// The refusing node is busy with someone else: not worth dialling again
    /// (`--reconnect`) until a person asks.
    pub fn is_busy(self) -> bool {
        matches!(self, Refusal::Busy | Refusal::Serving)
    }

    /// The reason in a few words, for a refusal line with no room for the whole.
    fn short(self) -> &'static str {
        match self {
            Refusal::Busy | Refusal::Serving => "busy; try again later\n",
            Refusal::PerIp { .. } => "too many from your address; try again later\n",
            Refusal::Full { .. } => "this node is full; try again later\n",
            Refusal::Unknown => "try again later\n",
        }
    }

    /// The word for the refusal in a [`write_refusal_line`] line.
    fn word(self) -> &'static str {
        match self {
            Refusal::Busy => "busy",
            Refusal::Serving => "serving",
            Refusal::PerIp { .. } => "per-ip",
            Refusal::Full { .. } => "full",
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
            Refusal::Unknown => f.write_str("refused for a reason this version does not know"),
        }
    }
}

/// Why a frame body is not a valid message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// postcard could not decode the body (unknown tag, truncated, invalid UTF-8, ...).
    Malformed,
    /// A message decoded but bytes were left over in its frame.
    TrailingBytes,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Malformed => f.write_str("malformed message"),
            WireError::TrailingBytes => f.write_str("message followed by stray bytes"),
        }
    }
}

impl<'a> Message<'a> {
    /// Decodes one frame body, borrowing the text from it.
    #[inline]
    pub fn decode(body: &'a [u8]) -> Result<Self, WireError> {
        // Chat and room messages are most of the traffic: read them by hand
        // (half the instructions); anything unusual goes to postcard, which
        // gives the same answer.
        let by_hand = match body.first() {
            Some(&CHAT_TAG) => decode_chat(body),
            Some(&BROADCAST_TAG) => decode_broadcast(body),
            _ => None,
        };
        match by_hand {
            Some(msg) => Ok(msg),
            None => Self::decode_postcard(body),
        }
    }

    /// [`Self::decode`] by postcard, out of line: the rare messages and anything malformed.
    fn decode_postcard(body: &'a [u8]) -> Result<Self, WireError> {
        match postcard::take_from_bytes::<Message<'a>>(body) {
            Ok((msg, [])) => Ok(msg),
            Ok(_) => Err(WireError::TrailingBytes),
            Err(_) => Err(WireError::Malformed),
        }
    }

    /// Encodes the message as one frame (length prefix and body) at the start of `out`.
    #[inline]
    pub fn encode_frame(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        // Inlined so that the caller's chat goes straight to the hand-written
        // encoder; everything else is postcard's, out of line.
        if let Message::Chat { id, text } = *self {
            return encode_chat(id, text, out);
        }
        self.encode_postcard(out)
    }

    /// [`Self::encode_frame`] by postcard: the body written after room for the
    /// longest header, then slid down to sit right after the real one.
    fn encode_postcard(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let needed = self.frame_len();
        if out.len() < needed {
            return Err(BufferTooSmall { needed });
        }
        let body_room = out.get_mut(MAX_HEADER..).unwrap_or_default();
        let body_len = postcard::to_slice(self, body_room)
            .map_err(|_| BufferTooSmall { needed })?
            .len();
        let header_len = frame::header_len(body_len);
        // Slide the body down so the header sits right before it, at the start.
        out.copy_within(MAX_HEADER..MAX_HEADER + body_len, header_len);
        frame::write_header(body_len as u32, out)?;
        Ok(header_len + body_len)
    }

    /// An upper bound of the encoded frame's length, header included.
    pub fn frame_len(&self) -> usize {
        // Fields are varints (at most 10 bytes each) and strings with a varint length.
        let strings = match self {
            Message::Hello { name, .. } => name.len(),
            Message::Chat { text, .. } => text.len(),
            Message::Ack { .. } => 0,
            Message::Broadcast { name, text, .. } => name.len() + text.len(),
            Message::Bye { reason } => reason.len(),
            Message::Ping { .. } | Message::Pong { .. } | Message::Refuse { .. } => 0,
        };
        FRAME_OVERHEAD + strings
    }
}

/// What [`Message::frame_len`] adds to the strings: the longest header, the
/// variant index and four varints of at most 10 bytes each.
const FRAME_OVERHEAD: usize = MAX_HEADER + 1 + 4 * 10;

/// postcard's variant index of [`Message::Chat`] (its place in the enum), a one-byte varint.
const CHAT_TAG: u8 = 1;

/// A chat message in postcard's layout (variant index, id, text length, text),
/// written by hand: a frame of postcard's bytes, with [`Message::frame_len`] as
/// the room it asks for.
#[inline]
fn encode_chat(id: u32, text: &str, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let needed = FRAME_OVERHEAD + text.len();
    let Some(out) = out.get_mut(..needed) else {
        return Err(BufferTooSmall { needed });
    };
    let too_long = BufferTooSmall { needed: usize::MAX };
    let len = u32::try_from(text.len()).map_err(|_| too_long)?;
    let body = 1 + varint_len(id) + varint_len(len) + text.len();
    let body = u32::try_from(body).map_err(|_| too_long)?;
    // Cannot panic: `out` holds `FRAME_OVERHEAD` bytes more than the text, more
    // than the header, tag and two varints written here.
    let mut at = put_varint(out, 0, body);
    out[at] = CHAT_TAG;
    at = put_varint(out, at + 1, id);
    at = put_varint(out, at, len);
    out[at..at + text.len()].copy_from_slice(text.as_bytes());
    Ok(at + text.len())
}

/// Bytes in the LEB128 varint of `v`: one per 7 significant bits, at least one.
#[inline]
fn varint_len(v: u32) -> usize {
    // At most 5, so the cast is lossless on any target.
    (u32::BITS - (v | 1).leading_zeros()).div_ceil(7) as usize
}

/// Writes the LEB128 varint of `v` at `out[at..]` (the caller made room); returns where it ends.
#[inline]
fn put_varint(out: &mut [u8], mut at: usize, mut v: u32) -> usize {
    while v >= 0x80 {
        // Keeps the low 7 bits, so the truncating cast is what we want.
        out[at] = v as u8 | 0x80;
        v >>= 7;
        at += 1;
    }
    out[at] = v as u8;
    at + 1
}

/// A chat message read by hand when its varints are short and canonical; None
/// for anything else, which postcard then decodes (or refuses) itself.
#[inline]
fn decode_chat(body: &[u8]) -> Option<Message<'_>> {
    let (&tag, rest) = body.split_first()?;
    if tag != CHAT_TAG {
        return None;
    }
    let (id, rest) = short_varint(rest)?;
    let (len, text) = short_varint(rest)?;
    if text.len() != len as usize {
        return None;
    }
    // The one UTF-8 check of the text. simdutf8 gives the same answer as
    // `core::str::from_utf8` (which it uses below 64 bytes) and, from 64 bytes
    // on, checks 32 bytes an instruction where the CPU can (see core/Cargo.toml).
    let text = simdutf8::basic::from_utf8(text).ok()?;
    Some(Message::Chat { id, text })
}

/// postcard's variant index of [`Message::Broadcast`].
const BROADCAST_TAG: u8 = 3;

/// A room message read by hand when its varints are canonical; None for
/// anything else, which postcard then decodes (or refuses) itself.
#[inline(never)]
fn decode_broadcast(body: &[u8]) -> Option<Message<'_>> {
    let (&tag, rest) = body.split_first()?;
    if tag != BROADCAST_TAG {
        return None;
    }
    let (origin, rest) = varint_u64(rest)?;
    let (seq, rest) = varint_u64(rest)?;
    let seq = u32::try_from(seq).ok()?;
    // postcard writes a u8 as the byte itself.
    let (&hops, rest) = rest.split_first()?;
    let (name_len, rest) = short_varint(rest)?;
    let (name, rest) = rest.split_at_checked(name_len as usize)?;
    let (text_len, text) = short_varint(rest)?;
    if text.len() != text_len as usize {
        return None;
    }
    // The one UTF-8 check of each string (see `decode_chat`).
    let name = simdutf8::basic::from_utf8(name).ok()?;
    let text = simdutf8::basic::from_utf8(text).ok()?;
    Some(Message::Broadcast {
        origin,
        seq,
        hops,
        name,
        text,
    })
}

/// A LEB128 varint of a u64 (1 to 10 bytes) in its shortest form, and the
/// bytes after it; None for a longer form or a value over u64::MAX.
#[inline]
fn varint_u64(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().take(10).enumerate() {
        // The 10th byte holds bit 63 only.
        if i == 9 && b > 1 {
            return None;
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if i > 0 && b == 0 {
                return None;
            }
            return bytes.get(i + 1..).map(|rest| (value, rest));
        }
    }
    None
}

/// A varint of 1 to 3 bytes in its shortest form (a valid u32 to postcard too),
/// and the bytes after it.
#[inline]
fn short_varint(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let mut value = 0u32;
    for (i, &b) in bytes.iter().take(3).enumerate() {
        value |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if i > 0 && b == 0 {
                return None;
            }
            return bytes.get(i + 1..).map(|rest| (value, rest));
        }
    }
    None
}

/// A parsed banner line: `MESHTALK/<major>[.<minor>] <name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Banner<'a> {
    /// The protocol's major version.
    pub major: u16,
    /// The name the peer announces.
    pub name: &'a str,
}

/// Why a banner line was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BannerError {
    /// No newline within [`MAX_BANNER`] bytes.
    TooLong,
    /// Not of the form `MESHTALK/<version> <name>`.
    Malformed,
    /// The name breaks the alias rule ([`crate::alias::validate_alias`]).
    BadName,
    /// A protocol version this node does not speak.
    Version {
        /// The version the peer speaks.
        major: u16,
    },
}

impl fmt::Display for BannerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BannerError::TooLong => write!(f, "banner longer than {MAX_BANNER} bytes"),
            BannerError::Malformed => f.write_str("malformed banner (want MESHTALK/1 <name>)"),
            BannerError::BadName => {
                write!(
                    f,
                    "banner name must be 1-{MAX_NAME} letters, digits, '_', '.' or '-'"
                )
            }
            BannerError::Version { major } => write!(
                f,
                "peer speaks MESHTALK/{major}, this node speaks MESHTALK/{VERSION}; upgrade the older one"
            ),
        }
    }
}

/// How a refusal line begins: a node that cannot take a connection at all (its
/// table is full) writes one line, before any banner, that a person at netcat
/// reads and a meshtalk that dialled recognises as a [`Sniff::Refused`].
pub const REFUSAL_PREFIX: &[u8] = b"MESHTALK/refused ";

/// Writes the refusal line `MESHTALK/refused <word> [<count>]: <why>\n` into
/// `out`, at most [`MAX_BANNER`] bytes long (the reason shortened to fit) so a
/// dialler reads it whole as it would a banner.
pub fn write_refusal_line(why: Refusal, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let mut line: heapless::String<MAX_BANNER> = heapless::String::new();
    let head = match why {
        Refusal::PerIp { max: n } | Refusal::Full { limit: n } => {
            fmt::write(&mut line, format_args!("{} {n}: ", why.word()))
        }
        _ => fmt::write(&mut line, format_args!("{}: ", why.word())),
    };
    let mut full: heapless::String<160> = heapless::String::new();
    let _ = fmt::write(&mut full, format_args!("{why}\n"));
    let prefix = REFUSAL_PREFIX.len();
    let fits = |text: &str| head.is_ok() && prefix + line.len() + text.len() <= MAX_BANNER;
    let Some(tail) = [full.as_str(), why.short(), "try again later\n"]
        .into_iter()
        .find(|text| fits(text))
    else {
        return Err(BufferTooSmall { needed: usize::MAX });
    };
    let parts: [&[u8]; 3] = [REFUSAL_PREFIX, line.as_bytes(), tail.as_bytes()];
    let needed = parts.iter().map(|p| p.len()).sum();
    let Some(out) = out.get_mut(..needed) else {
        return Err(BufferTooSmall { needed });
    };
    let mut at = 0;
    for part in parts {
        // In bounds: `out` is exactly as long as the parts together.
        out[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    Ok(needed)
}

/// The refusal a complete refusal line (without its prefix) names.
fn parse_refusal(rest: &[u8]) -> Refusal {
    let head = rest.split(|&b| b == b':').next().unwrap_or_default();
    let mut words = head.split(|&b| b == b' ');
    let word = words.next().unwrap_or_default();
    let count = words
        .next()
        .and_then(|n| core::str::from_utf8(n).ok())
        .and_then(|n| n.parse::<u32>().ok());
    match (word, count) {
        (b"busy", _) => Refusal::Busy,
        (b"serving", _) => Refusal::Serving,
        (b"per-ip", Some(n)) => Refusal::from_code(3, n),
        (b"full", Some(n)) => Refusal::from_code(4, n),
        _ => Refusal::Unknown,
    }
}

/// What the first bytes of a connection say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniff<'a> {
    /// Still a prefix of a banner: wait for more bytes.
    Partial,
    /// These bytes can never begin a banner: the peer speaks plain text.
    Text,
    /// A complete banner line of `len` bytes (newline included).
    Banner {
        /// The banner read.
        banner: Banner<'a>,
        /// The line's length, newline included.
        len: usize,
    },
    /// A banner that is wrong.
    Error(BannerError),
    /// A refusal line ([`write_refusal_line`]): the node will not take us.
    Refused(Refusal),
}

/// Looks at the first bytes received on a connection.
pub fn sniff(bytes: &[u8]) -> Sniff<'_> {
    let common = bytes.len().min(BANNER_PREFIX.len());
    if bytes.get(..common) != BANNER_PREFIX.get(..common) {
        return Sniff::Text;
    }
    let Some(newline) = bytes.iter().position(|&b| b == b'\n') else {
        return if bytes.len() >= MAX_BANNER {
            Sniff::Error(BannerError::TooLong)
        } else {
            Sniff::Partial
        };
    };
    if newline >= MAX_BANNER {
        return Sniff::Error(BannerError::TooLong);
    }
    let line = bytes.get(..newline).unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if let Some(rest) = line.strip_prefix(REFUSAL_PREFIX) {
        return Sniff::Refused(parse_refusal(rest));
    }
    match parse_banner(line) {
        Ok(banner) => Sniff::Banner {
            banner,
            len: newline + 1,
        },
        Err(e) => Sniff::Error(e),
    }
}

fn parse_banner(line: &[u8]) -> Result<Banner<'_>, BannerError> {
    let rest = line
        .strip_prefix(BANNER_PREFIX)
        .ok_or(BannerError::Malformed)?;
    let rest = core::str::from_utf8(rest).map_err(|_| BannerError::Malformed)?;
    let (version, name) = rest.split_once(' ').ok_or(BannerError::Malformed)?;
    let major = version.split_once('.').map_or(version, |(major, _)| major);
    if major.is_empty() || !major.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BannerError::Malformed);
    }
    let major: u16 = major.parse().map_err(|_| BannerError::Malformed)?;
    if major != VERSION {
        return Err(BannerError::Version { major });
    }
    validate_alias(name).map_err(|_| BannerError::BadName)?;
    Ok(Banner { major, name })
}

/// Writes this node's banner line, `MESHTALK/1 <name>\n`, into `out`.
pub fn write_banner(name: &str, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let parts: [&[u8]; 4] = [BANNER_PREFIX, b"1 ", name.as_bytes(), b"\n"];
    let needed = parts.iter().map(|p| p.len()).sum();
    let Some(out) = out.get_mut(..needed) else {
        return Err(BufferTooSmall { needed });
    };
    let mut at = 0;
    for part in parts {
        // In bounds: `out` is exactly as long as the parts together.
        out[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    Ok(needed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(msg: Message<'_>) {
        let mut buf = [0u8; 256];
        let n = msg.encode_frame(&mut buf).unwrap();
        assert!(n <= msg.frame_len());
        let mut dec = frame::FrameDecoder::<256>::new();
        let (used, got) = dec.decode(&buf[..n]);
        assert_eq!(used, n);
        let frame::Decoded::Frame(body) = got else {
            panic!("no frame: {got:?}")
        };
        assert_eq!(Message::decode(body), Ok(msg));
    }

    #[test]
    fn every_message_round_trips_through_a_frame() {
        round_trip(Message::Hello {
            minor: 0,
            node: u64::MAX,
            name: "alice",
        });
        round_trip(Message::Chat {
            id: 7,
            text: "hi ☃",
        });
        round_trip(Message::Ack { id: u32::MAX });
        round_trip(Message::Broadcast {
            origin: 3,
            seq: 9,
            hops: 8,
            name: "bob",
            text: "room",
        });
        round_trip(Message::Bye { reason: "exit" });
    }

    #[test]
    fn chat_by_hand_is_postcard_byte_for_byte_both_ways() {
        let long = "é".repeat(300);
        for id in [
            0,
            1,
            127,
            128,
            16383,
            16384,
            (1 << 21) - 1,
            1 << 21,
            u32::MAX,
        ] {
            for text in [
                "",
                "hi",
                "x".repeat(127).as_str(),
                "y".repeat(128).as_str(),
                &long,
            ] {
                let msg = Message::Chat { id, text };
                let mut by_hand = [0u8; 1024];
                let n = msg.encode_frame(&mut by_hand).unwrap();
                let mut body = [0u8; 1024];
                let body = postcard::to_slice(&msg, &mut body).unwrap();
                let head = frame::header_len(body.len());
                assert_eq!(&by_hand[head..n], &*body, "id {id} len {}", text.len());
                assert!(decode_chat(body).is_none_or(|m| m == msg));
                assert_eq!(Message::decode(body), Ok(msg));
            }
        }
    }

    #[test]
    fn chat_read_by_hand_refuses_what_postcard_refuses() {
        for body in [
            &[1, 5, 2, b'h', b'i'][..],
            &[1, 5, 2, b'h'],
            &[1, 5, 2, b'h', b'i', b'!'],
            &[1, 5, 2, 0xff, 0xfe],
            &[1, 0x80, 0x00, 1, b'a'],
            &[1, 0x85, 0x80, 0x80, 0x80, 0x01, 0],
            &[1, 5, 0x81, 0x00, b'a'],
            &[1],
            &[1, 0x80],
        ] {
            assert_eq!(Message::decode(body), postcard_says(body), "{body:?}");
        }
    }

    /// What postcard alone says of a body.
    fn postcard_says(b: &[u8]) -> Result<Message<'_>, WireError> {
        match postcard::take_from_bytes::<Message<'_>>(b) {
            Ok((m, [])) => Ok(m),
            Ok(_) => Err(WireError::TrailingBytes),
            Err(_) => Err(WireError::Malformed),
        }
    }

    #[test]
    fn broadcast_read_by_hand_is_what_postcard_reads() {
        let long = "é".repeat(300);
        for origin in [0, 1, 127, 128, u64::from(u32::MAX), 1 << 63, u64::MAX] {
            for seq in [0, 127, 128, (1 << 21) - 1, 1 << 21, u32::MAX] {
                for (hops, name, text) in [(0, "", ""), (8, "bob", "hi ☃"), (255, "x", &long)] {
                    let msg = Message::Broadcast {
                        origin,
                        seq,
                        hops,
                        name,
                        text,
                    };
                    let mut body = [0u8; 1024];
                    let body = postcard::to_slice(&msg, &mut body).unwrap();
                    assert_eq!(decode_broadcast(body), Some(msg), "{msg:?}");
                    assert_eq!(Message::decode(body), Ok(msg));
                }
            }
        }
    }

    #[test]
    fn every_cut_and_every_changed_byte_of_a_chat_or_broadcast_decodes_as_postcard_says() {
        let msgs = [
            Message::Chat {
                id: 300,
                text: "hé",
            },
            Message::Broadcast {
                origin: u64::MAX,
                seq: 1 << 21,
                hops: 3,
                name: "bob",
                text: "hé",
            },
        ];
        let mut buf = [0u8; 64];
        for msg in msgs {
            let body = postcard::to_slice(&msg, &mut buf).unwrap().to_vec();
            for end in 0..=body.len() {
                let cut = &body[..end];
                assert_eq!(Message::decode(cut), postcard_says(cut), "{cut:?}");
            }
            for at in 0..body.len() {
                for value in 0..=u8::MAX {
                    let mut changed = [0u8; 64];
                    changed[..body.len()].copy_from_slice(&body);
                    changed[at] = value;
                    let changed = &changed[..body.len()];
                    assert_eq!(
                        Message::decode(changed),
                        postcard_says(changed),
                        "{changed:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn encoding_into_a_short_buffer_says_how_much_is_needed() {
        let msg = Message::Chat {
            id: 1,
            text: "hello",
        };
        let mut buf = [0u8; 4];
        let err = msg.encode_frame(&mut buf).unwrap_err();
        assert_eq!(err.needed, msg.frame_len());
        assert_eq!(buf, [0; 4]);
    }

    #[test]
    fn trailing_bytes_after_a_message_are_refused() {
        let mut buf = [0u8; 64];
        let n = postcard::to_slice(&Message::Ack { id: 1 }, &mut buf)
            .unwrap()
            .len();
        assert_eq!(
            Message::decode(&buf[..n + 1]),
            Err(WireError::TrailingBytes)
        );
    }

    #[test]
    fn a_valid_banner_is_recognised_with_its_length() {
        assert_eq!(
            sniff(b"MESHTALK/1 alice\nrest"),
            Sniff::Banner {
                banner: Banner {
                    major: 1,
                    name: "alice"
                },
                len: 17
            }
        );
        assert!(matches!(
            sniff(b"MESHTALK/1.4 bob\r\n"),
            Sniff::Banner { .. }
        ));
    }

    #[test]
    fn a_prefix_of_a_banner_waits_and_anything_else_is_text() {
        assert_eq!(sniff(b""), Sniff::Partial);
        assert_eq!(sniff(b"MESH"), Sniff::Partial);
        assert_eq!(sniff(b"MESHTALK/1 al"), Sniff::Partial);
        assert_eq!(sniff(b"hello"), Sniff::Text);
        assert_eq!(sniff(b"MESSAGE"), Sniff::Text);
        assert_eq!(sniff(b"quit"), Sniff::Text);
    }

    #[test]
    fn another_major_version_is_refused_with_both_versions_named() {
        let Sniff::Error(e) = sniff(b"MESHTALK/2 bob\n") else {
            panic!()
        };
        assert_eq!(e, BannerError::Version { major: 2 });
        let mut text = heapless::String::<128>::new();
        core::fmt::write(&mut text, format_args!("{e}")).unwrap();
        assert!(text.contains("MESHTALK/2") && text.contains("MESHTALK/1"));
    }

    #[test]
    fn broken_banners_are_refused() {
        assert_eq!(sniff(b"MESHTALK/1\n"), Sniff::Error(BannerError::Malformed));
        assert_eq!(
            sniff(b"MESHTALK/x bob\n"),
            Sniff::Error(BannerError::Malformed)
        );
        assert_eq!(
            sniff(b"MESHTALK/1 b\0b\n"),
            Sniff::Error(BannerError::BadName)
        );
        assert_eq!(
            sniff(b"MESHTALK/1 \xff\n"),
            Sniff::Error(BannerError::Malformed)
        );
        assert_eq!(
            sniff(
                &[
                    b'M', b'E', b'S', b'H', b'T', b'A', b'L', b'K', b'/', b'1', b' '
                ]
                .iter()
                .copied()
                .chain(core::iter::repeat_n(b'a', 60))
                .collect::<heapless::Vec<u8, 80>>()
            ),
            Sniff::Error(BannerError::TooLong)
        );
        assert_eq!(
            sniff(b"MESHTALK/99999999 bob\n"),
            Sniff::Error(BannerError::Malformed)
        );
    }

    #[test]
    fn our_banner_is_one_line_that_sniffs_as_a_banner() {
        let mut buf = [0u8; MAX_BANNER];
        let n = write_banner("alice", &mut buf).unwrap();
        assert_eq!(&buf[..n], b"MESHTALK/1 alice\n");
        assert!(matches!(sniff(&buf[..n]), Sniff::Banner { len, .. } if len == n));
    }
}
