//! A short form of a static public key that two people can read aloud and
//! compare, to check out of band that a pinned key is the one they meant.

use core::fmt;

use clatter::bytearray::ByteArray;
use clatter::crypto::hash::Blake2s;
use clatter::traits::Hash as _;

use super::KEY_LEN;

/// Bytes of the hash kept: 80 bits, so a forged key with the same fingerprint
/// costs about 2^80 hashes.
const LEN: usize = 10;

/// Crockford's base32 in lowercase: no i, l, o or u, so nothing reads as another.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// The fingerprint of a static public key: BLAKE2s-256 over
/// [`Fingerprint::LABEL`] and the key, its first 80 bits shown as 16 Crockford
/// base32 characters in 4 groups of 4, e.g. `7kq2-m9xd-3fpa-w1bz`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; LEN]);

impl Fingerprint {
    /// What the hash covers before the key: a fingerprint is never equal to
    /// another BLAKE2s hash of the same 32 bytes meshtalk might compute.
    pub const LABEL: &[u8] = b"meshtalk fingerprint\0";

    /// The fingerprint of the public key `key`.
    pub fn of(key: &[u8; KEY_LEN]) -> Fingerprint {
        let mut hash = Blake2s::default();
        hash.input(Self::LABEL);
        hash.input(key);
        let digest = hash.result();
        let mut bytes = [0; LEN];
        for (to, from) in bytes.iter_mut().zip(digest.as_slice()) {
            *to = *from;
        }
        Fingerprint(bytes)
    }

    /// The 80 bits behind the text, first byte first.
    pub fn as_bytes(&self) -> &[u8; LEN] {
        &self.0
    }
}

/// What the hash of a node id covers before the key.
const NODE_ID_LABEL: &[u8] = b"meshtalk node id\0";

/// The node id of a secure node with the static public key `key` and the
/// random `salt` it drew at start: the first 64 bits of BLAKE2s over both. A
/// key claimed for an id (with its salt) is checked by hashing it: a forged
/// key for a given id costs about 2^64 hashes. The salt keeps two runs of one
/// key (two terminals, one home) two nodes.
pub fn node_id(key: &[u8; KEY_LEN], salt: u64) -> u64 {
    let mut hash = Blake2s::default();
    hash.input(NODE_ID_LABEL);
    hash.input(key);
    hash.input(&salt.to_le_bytes());
    let digest = hash.result();
    let mut id = [0; 8];
    id.copy_from_slice(digest.as_slice().get(..8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(id)
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = self
            .0
            .iter()
            .fold(0u128, |acc, &byte| (acc << 8) | u128::from(byte));
        for i in 0..16 {
            if i > 0 && i % 4 == 0 {
                f.write_str("-")?;
            }
            let index = (bits >> (75 - 5 * i)) & 0x1f;
            let digit = ALPHABET.get(index as usize).copied().unwrap_or(b'0');
            fmt::Write::write_char(f, char::from(digit))?;
        }
        Ok(())
    }
}
