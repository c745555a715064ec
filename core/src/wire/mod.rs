//! The wire protocol: the banner line that opens a connection, then postcard
//! messages, each in one frame (see [`crate::frame`]). Protocol 1 sends the
//! frames in the clear; protocol 2 runs a Noise handshake after the banners
//! and sends every frame's body as a Noise transport message (see
//! [`crate::noise`]).

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::frame::{self, BufferTooSmall, MAX_HEADER};
pub use crate::limits::{MAX_BANNER, MAX_NAME};

/// The plaintext protocol's major version: a peer with another one cannot talk to us.
pub const VERSION: u16 = 1;
/// The secure protocol's major version (Noise after the banners).
pub const SECURE_VERSION: u16 = 2;
/// Minor version: additions a v1 peer may ignore.
pub const MINOR: u16 = 4;
/// The first minor version that knows [`Message::Ping`] and [`Message::Pong`].
pub const MINOR_PING: u16 = 1;
/// The first minor version that knows [`Message::Refuse`]; an older peer is
/// refused with a [`Message::Bye`] that says why in words.
pub const MINOR_REFUSE: u16 = 2;
/// The first minor version that knows [`Message::Routed`] and
/// [`Message::RoutedAck`]: only such a peer is a next hop.
pub const MINOR_ROUTE: u16 = 3;
/// The first minor version that knows [`Message::Announce`] and
/// [`Message::Sealed`]; a secure node of it has an id made from its key
/// ([`crate::noise::node_id`]).
pub const MINOR_SEAL: u16 = 4;
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
    /// A direct message to a node that may be no neighbour: each node passes it
    /// to its next hop towards `dest` until `hops` runs out; answered by a
    /// [`Message::RoutedAck`] that comes back the same way. The text is plain:
    /// nodes with keys send [`Message::Sealed`] instead.
    Routed {
        /// The sender's node id.
        origin: u64,
        /// The destination's node id.
        dest: u64,
        /// The sender's id of the message, named again by its receipt.
        id: u32,
        /// Relays left.
        hops: u8,
        /// The sender's name.
        name: &'a str,
        /// The message.
        text: &'a str,
    },
    /// The answer to [`Message::Routed`], routed back to its `origin`: shown at
    /// `dest` ([`ROUTED_DELIVERED`]), or why it could go no further.
    RoutedAck {
        /// The node id of the message's sender, where this goes.
        origin: u64,
        /// The node id the message was for.
        dest: u64,
        /// The sender's id of the message.
        id: u32,
        /// Relays left.
        hops: u8,
        /// What became of it ([`Unroutable::from_code`](crate::event::Unroutable::from_code)).
        code: u8,
    },
    /// A node says who it is to the whole mesh: flooded like a room message
    /// (numbered from the same sequence), when a link of its comes up, when it
    /// hears of a node new to it, and every [`ANNOUNCE_EVERY`](crate::limits::ANNOUNCE_EVERY).
    /// It teaches every node a route to `origin`, and the key to seal to it.
    Announce {
        /// The announcing node's id.
        origin: u64,
        /// Its sequence number, shared with its room messages.
        seq: u32,
        /// Relays left.
        hops: u8,
        /// Its name.
        name: &'a str,
        /// Its static public key (32 bytes; none for a plaintext node).
        key: &'a [u8],
        /// The salt that with `key` makes `origin` ([`crate::noise::node_id`]).
        salt: u64,
    },
    /// A direct message as [`Message::Routed`], with the sender's name and text
    /// sealed to the destination's key ([`crate::noise::sealed`]): relays read
    /// the envelope, which the seal binds, and nothing else.
    Sealed {
        /// The sender's node id.
        origin: u64,
        /// The destination's node id.
        dest: u64,
        /// The sender's id of the message, named again by its receipt.
        id: u32,
        /// Relays left (not sealed: each relay counts it down).
        hops: u8,
        /// The sealed name and text.
        sealed: &'a [u8],
    },
}

/// The code of a [`Message::RoutedAck`] whose destination showed the message;
/// any other says why not.
pub const ROUTED_DELIVERED: u8 = 0;

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

    /// The same message with `hops` relays left, as a relay passes it on: a
    /// room message, an announce, a direct message across the mesh or its
    /// receipt (any other kind is returned as it is).
    pub fn with_hops(self, hops: u8) -> Self {
        match self {
            Message::Broadcast {
                origin,
                seq,
                name,
                text,
                ..
            } => Message::Broadcast {
                origin,
                seq,
                hops,
                name,
                text,
            },
            Message::Announce {
                origin,
                seq,
                name,
                key,
                salt,
                ..
            } => Message::Announce {
                origin,
                seq,
                hops,
                name,
                key,
                salt,
            },
            Message::Routed {
                origin,
                dest,
                id,
                name,
                text,
                ..
            } => Message::Routed {
                origin,
                dest,
                id,
                hops,
                name,
                text,
            },
            Message::Sealed {
                origin,
                dest,
                id,
                sealed,
                ..
            } => Message::Sealed {
                origin,
                dest,
                id,
                hops,
                sealed,
            },
            Message::RoutedAck {
                origin,
                dest,
                id,
                code,
                ..
            } => Message::RoutedAck {
                origin,
                dest,
                id,
                hops,
                code,
            },
            other => other,
        }
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
            Message::Routed { name, text, .. } => name.len() + text.len(),
            Message::Announce { name, key, .. } => name.len() + key.len(),
            Message::Sealed { sealed, .. } => sealed.len(),
            Message::Ping { .. }
            | Message::Pong { .. }
            | Message::Refuse { .. }
            | Message::RoutedAck { .. } => 0,
        };
        FRAME_OVERHEAD + strings
    }
}

/// What [`Message::frame_len`] adds to the strings: the longest header, the
/// variant index and four varints of at most 10 bytes each (a routed
/// message's fields take 36 at most: two u64s, a u32, a byte, two lengths).
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

mod banner;
mod refusal;
#[cfg(test)]
mod tests;

pub use banner::*;
pub use refusal::*;
