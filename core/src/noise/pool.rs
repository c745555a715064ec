//! Fresh secrets for the ephemeral keys of sealed messages, between the shell's
//! draws of entropy: the core draws no randomness, so every 32 random bytes a
//! connection brings are also mixed in here.

use clatter::bytearray::ByteArray;
use clatter::crypto::hash::Blake2s;
use clatter::traits::Hash as _;

use super::KEY_LEN;

/// What each use of the state is keyed with, so no two give the same bytes.
const MIX: &[u8] = b"meshtalk pool mix\0";
const DRAW: &[u8] = b"meshtalk pool draw\0";
const NEXT: &[u8] = b"meshtalk pool next\0";

/// A BLAKE2s-HMAC ratchet over the entropy mixed in: each draw is the HMAC of
/// the state, and the state then moves on one way, so a state seen later does
/// not give away an earlier draw. Nothing is drawn before entropy came.
pub struct Pool {
    state: [u8; KEY_LEN],
    seeded: bool,
}

impl Default for Pool {
    fn default() -> Self {
        Self::new()
    }
}

impl Pool {
    /// An empty pool: it draws nothing until [`Pool::mix`].
    pub const fn new() -> Self {
        Pool {
            state: [0; KEY_LEN],
            seeded: false,
        }
    }

    /// Mixes in 32 fresh random bytes from the shell.
    pub fn mix(&mut self, entropy: &[u8; KEY_LEN]) {
        self.state = hmac(&self.state, &[MIX, entropy]);
        self.seeded = true;
    }

    /// 32 bytes for one ephemeral key, never the same twice; `None` before any
    /// entropy was mixed in.
    pub fn draw(&mut self) -> Option<[u8; KEY_LEN]> {
        if !self.seeded {
            return None;
        }
        let out = hmac(&self.state, &[DRAW]);
        self.state = hmac(&self.state, &[NEXT]);
        Some(out)
    }
}

fn hmac(key: &[u8; KEY_LEN], data: &[&[u8]]) -> [u8; KEY_LEN] {
    let digest = Blake2s::hmac_many(key, data);
    let mut out = [0; KEY_LEN];
    out.copy_from_slice(digest.as_slice());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_pool_draws_nothing() {
        assert_eq!(Pool::new().draw(), None);
    }

    #[test]
    fn draws_differ_and_depend_on_the_entropy() {
        let mut a = Pool::new();
        a.mix(&[1; KEY_LEN]);
        let (first, second) = (a.draw(), a.draw());
        assert_ne!(first, second);
        let mut b = Pool::new();
        b.mix(&[2; KEY_LEN]);
        assert_ne!(b.draw(), first);
        let mut c = Pool::new();
        c.mix(&[1; KEY_LEN]);
        assert_eq!(
            c.draw(),
            first,
            "the same entropy replays (a test reproduces)"
        );
    }

    #[test]
    fn mixing_more_changes_what_comes_next() {
        let (mut a, mut b) = (Pool::new(), Pool::new());
        a.mix(&[1; KEY_LEN]);
        b.mix(&[1; KEY_LEN]);
        b.mix(&[3; KEY_LEN]);
        assert_ne!(a.draw(), b.draw());
    }
}
