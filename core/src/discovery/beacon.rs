//! The beacon on the wire: one UDP datagram saying "a meshtalk listens on this
//! TCP port, with this static key", readable by any meshtalk in an open room
//! and by room members only in a private one.
//!
//! ```text
//! offset  size  field
//! 0       4     MAGIC
//! 4       1     VERSION
//! 5       1     kind: 0 open, 1 private
//! 6       16    nonce: random, fresh for every beacon
//! 22      67    body: TCP port (u16 BE), static public key (32),
//!               name length and flags (1), name (32, zero padded)
//! 89      16    private only: the Poly1305 tag over the sealed body
//! ```
//!
//! The name length and flags byte: bits 0-5 the name's length (0: none, at most
//! 32), bit 7 [`LEAVING`] (a farewell: the node is stopping), bit 6 zero. The
//! flag lives in the body, so in a private room it is sealed with the rest: an
//! outsider cannot tell a farewell from any other beacon. A node older than the
//! flag reads a farewell as a name too long and drops it, letting the entry
//! age out as it always did; the length and version stay, so the two still
//! hear each other's beacons.
//!
//! An open beacon is 89 bytes, a private one 105, whatever the name: the
//! length tells an outsider nothing.
//!
//! The beacon carries the whole 32-byte static key, not the 10-byte
//! [`Fingerprint`](crate::noise::Fingerprint): a dialler can then pin the exact
//! key the Noise handshake must prove (the fingerprint follows from the key),
//! and the 89 bytes still fit one datagram with room to spare.
//!
//! In a private room the body is sealed with ChaCha20-Poly1305 under a key of
//! its own for every beacon: `HMAC-BLAKE2s(room key, SEAL_LABEL || nonce)`,
//! with the cipher's nonce 0 and the 22-byte header as associated data. All
//! members seal under one room key, so a random 64-bit cipher nonce (all
//! clatter's ChaChaPoly takes) could repeat within a busy room's lifetime;
//! a fresh 128-bit nonce in the key derivation makes a repeat as unlikely as
//! guessing the room key's half. Without the room key the nonce and sealed body
//! are random bytes: an outsider learns "a private-room beacon" and no more.

use core::fmt;

use clatter::bytearray::ByteArray;
use clatter::crypto::cipher::ChaChaPoly;
use clatter::crypto::hash::Blake2s;
use clatter::traits::{Cipher as _, Hash as _};
use heapless::String;

use crate::alias::{AliasError, validate_alias};
use crate::limits::MAX_NAME;
use crate::noise::{KEY_LEN, TAG};

/// What every beacon begins with: not a meshtalk beacon otherwise.
pub const MAGIC: [u8; 4] = *b"mtbc";
/// The beacon format this core speaks; another is refused, not guessed at.
pub const VERSION: u8 = 1;
/// Bytes of the random nonce every beacon carries in the clear.
pub const NONCE_LEN: usize = 16;
/// What the per-beacon key of a private room is derived under, so that it is
/// never equal to another BLAKE2s of the room key meshtalk computes.
pub const SEAL_LABEL: &[u8] = b"meshtalk beacon seal\0";
/// The longest datagram taken as a beacon; a longer one is refused unread.
pub const MAX_BEACON: usize = 128;
/// The flag of a farewell in the body's name length byte.
pub const LEAVING: u8 = 0x80;
/// The bits of the name length byte that hold the length.
const NAME_LEN_BITS: u8 = 0x3f;

/// Magic, version, kind, nonce.
const HEADER: usize = 4 + 1 + 1 + NONCE_LEN;
/// Port, key, name length, name.
const BODY: usize = 2 + KEY_LEN + 1 + MAX_NAME;
/// An open beacon's length.
pub const OPEN_LEN: usize = HEADER + BODY;
/// A private beacon's length.
pub const PRIVATE_LEN: usize = HEADER + BODY + TAG;

const KIND_OPEN: u8 = 0;
const KIND_PRIVATE: u8 = 1;

/// What a beacon tells: where and who. In an open room anyone can write one
/// for any key; only the Noise handshake on the TCP port proves the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Beacon {
    /// The TCP port the node listens on (never 0).
    pub port: u16,
    /// The node's static public key.
    pub key: [u8; KEY_LEN],
    /// The node's name, an alias (empty: none given).
    pub name: String<MAX_NAME>,
    /// A farewell: the node is stopping, forget it now rather than when it
    /// ages out. As binding as any beacon: only a room member can seal one in
    /// a private room; in an open room anyone can write one for any key, which
    /// removes that key's entry alone (a forged beacon could already replace it).
    pub leaving: bool,
}

/// A beacon read from a datagram, and whether it came from our room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heard {
    /// What it says.
    pub beacon: Beacon,
    /// Sealed under our room key, or open while we have no room key: a node we
    /// would link with. An open beacon heard by a private-room node is not.
    pub in_room: bool,
}

/// A datagram that is not a beacon we can use: the sender's fault (or another
/// room's business). Dropped and counted, never fatal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Longer than [`MAX_BEACON`]: refused unread.
    Oversized {
        /// Its length.
        len: usize,
    },
    /// Too short for the header.
    Short {
        /// Its length.
        len: usize,
    },
    /// Does not begin with [`MAGIC`]: not a meshtalk beacon.
    Magic,
    /// Another beacon format version.
    Version {
        /// The version it says.
        version: u8,
    },
    /// A kind other than open or private.
    Kind {
        /// The kind byte.
        kind: u8,
    },
    /// The length does not match its kind.
    Length {
        /// Its length.
        len: usize,
        /// The length of its kind.
        expected: usize,
    },
    /// A private-room beacon we cannot open: another room's, we have no room
    /// key, or damaged in transit (which of these cannot be told).
    Sealed,
    /// The TCP port is 0.
    Port,
    /// The name's length, characters or padding are not a valid alias (or
    /// the length byte has its unused bit set).
    Name,
}

/// A beacon this side cannot write (the caller's fault; nothing was written).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The buffer is too small.
    BufferTooSmall {
        /// Bytes of room the beacon needs.
        needed: usize,
    },
    /// The TCP port is 0: nobody could dial it.
    Port,
    /// The name is not a valid alias.
    Name(AliasError),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::Oversized { len } => write!(
                f,
                "a {len}-byte datagram on the beacon port, over the {MAX_BEACON} bytes of a beacon"
            ),
            DecodeError::Short { len } => {
                write!(f, "a {len}-byte datagram, too short for a beacon")
            }
            DecodeError::Magic => f.write_str("a datagram that is not a meshtalk beacon"),
            DecodeError::Version { version } => write!(
                f,
                "a beacon of format {version} (this meshtalk reads {VERSION}); upgrade the older one"
            ),
            DecodeError::Kind { kind } => write!(f, "a beacon of unknown kind {kind}"),
            DecodeError::Length { len, expected } => write!(
                f,
                "a {len}-byte beacon where its kind has {expected} bytes: damaged or forged"
            ),
            DecodeError::Sealed => f.write_str(
                "a private-room beacon this node cannot open (another room key, or damaged)",
            ),
            DecodeError::Port => f.write_str("a beacon with TCP port 0: nothing to dial"),
            DecodeError::Name => f.write_str("a beacon whose name is not a valid alias"),
        }
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::BufferTooSmall { needed } => {
                write!(f, "buffer is too small: {needed} bytes needed")
            }
            EncodeError::Port => f.write_str("cannot announce TCP port 0; listen on a port first"),
            EncodeError::Name(e) => write!(f, "cannot announce that name: {e}"),
        }
    }
}

impl Beacon {
    /// The beacon's length on the wire: sealed with a room key, open without.
    pub const fn wire_len(room_key: Option<&[u8; KEY_LEN]>) -> usize {
        if room_key.is_some() {
            PRIVATE_LEN
        } else {
            OPEN_LEN
        }
    }

    /// Writes the beacon into `out` with this `nonce` (fresh random bytes for
    /// every beacon), sealed if `room_key` is set; returns its length. On an
    /// error `out` is untouched.
    pub fn encode(
        &self,
        nonce: &[u8; NONCE_LEN],
        room_key: Option<&[u8; KEY_LEN]>,
        out: &mut [u8],
    ) -> Result<usize, EncodeError> {
        if self.port == 0 {
            return Err(EncodeError::Port);
        }
        if !self.name.is_empty() {
            validate_alias(&self.name).map_err(EncodeError::Name)?;
        }
        let len = Self::wire_len(room_key);
        let Some(out) = out.get_mut(..len) else {
            return Err(EncodeError::BufferTooSmall { needed: len });
        };
        let (header, rest) = out.split_at_mut(HEADER);
        header[..4].copy_from_slice(&MAGIC);
        header[4] = VERSION;
        header[5] = if room_key.is_some() {
            KIND_PRIVATE
        } else {
            KIND_OPEN
        };
        header[6..].copy_from_slice(nonce);
        let mut body = [0u8; BODY];
        body[..2].copy_from_slice(&self.port.to_be_bytes());
        body[2..2 + KEY_LEN].copy_from_slice(&self.key);
        // A String<MAX_NAME> holds at most MAX_NAME (32) bytes: it fits the length bits.
        let flags = if self.leaving { LEAVING } else { 0 };
        body[2 + KEY_LEN] = self.name.len() as u8 | flags;
        body[3 + KEY_LEN..3 + KEY_LEN + self.name.len()].copy_from_slice(self.name.as_bytes());
        match room_key {
            None => rest.copy_from_slice(&body),
            Some(room) => {
                let key = seal_key(room, nonce);
                // `rest` is exactly BODY + TAG long, as the cipher requires; it
                // cannot fail for a 32-byte key and a short message.
                if ChaChaPoly::encrypt(&key, 0, header, &body, rest).is_err() {
                    rest.fill(0);
                }
            }
        }
        Ok(len)
    }

    /// Reads a beacon from a datagram; a private one is opened with `room_key`.
    pub fn decode(datagram: &[u8], room_key: Option<&[u8; KEY_LEN]>) -> Result<Heard, DecodeError> {
        let len = datagram.len();
        if len > MAX_BEACON {
            return Err(DecodeError::Oversized { len });
        }
        if datagram.get(..MAGIC.len()).is_some_and(|m| m != MAGIC) {
            return Err(DecodeError::Magic);
        }
        let Some((header, rest)) = datagram.split_at_checked(HEADER) else {
            return Err(DecodeError::Short { len });
        };
        if header[4] != VERSION {
            return Err(DecodeError::Version { version: header[4] });
        }
        let private = match header[5] {
            KIND_OPEN => false,
            KIND_PRIVATE => true,
            kind => return Err(DecodeError::Kind { kind }),
        };
        let expected = if private { PRIVATE_LEN } else { OPEN_LEN };
        if len != expected {
            return Err(DecodeError::Length { len, expected });
        }
        let mut body = [0u8; BODY];
        if private {
            let Some(room) = room_key else {
                return Err(DecodeError::Sealed);
            };
            let mut nonce = [0u8; NONCE_LEN];
            nonce.copy_from_slice(&header[6..]);
            let key = seal_key(room, &nonce);
            ChaChaPoly::decrypt(&key, 0, header, rest, &mut body)
                .map_err(|_| DecodeError::Sealed)?;
        } else {
            body.copy_from_slice(rest);
        }
        let beacon = parse_body(&body)?;
        Ok(Heard {
            beacon,
            in_room: private || room_key.is_none(),
        })
    }
}

/// The port, key and name of an opened body.
fn parse_body(body: &[u8; BODY]) -> Result<Beacon, DecodeError> {
    let port = u16::from_be_bytes([body[0], body[1]]);
    if port == 0 {
        return Err(DecodeError::Port);
    }
    let mut key = [0u8; KEY_LEN];
    key.copy_from_slice(&body[2..2 + KEY_LEN]);
    let len_and_flags = body[2 + KEY_LEN];
    if len_and_flags & !(NAME_LEN_BITS | LEAVING) != 0 {
        return Err(DecodeError::Name);
    }
    let name_len = usize::from(len_and_flags & NAME_LEN_BITS);
    let field = &body[3 + KEY_LEN..];
    let (name, padding) = field.split_at_checked(name_len).ok_or(DecodeError::Name)?;
    if padding.iter().any(|&b| b != 0) {
        return Err(DecodeError::Name);
    }
    let name = core::str::from_utf8(name).map_err(|_| DecodeError::Name)?;
    if !name.is_empty() {
        validate_alias(name).map_err(|_| DecodeError::Name)?;
    }
    let mut owned = String::new();
    owned.push_str(name).map_err(|_| DecodeError::Name)?;
    Ok(Beacon {
        port,
        key,
        name: owned,
        leaving: len_and_flags & LEAVING != 0,
    })
}

/// The key one private beacon is sealed under: fresh for every nonce.
fn seal_key(
    room: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
) -> <ChaChaPoly as clatter::traits::Cipher>::Key {
    let digest = Blake2s::hmac_many(room, &[SEAL_LABEL, nonce]);
    ByteArray::from_slice(digest.as_slice())
}
