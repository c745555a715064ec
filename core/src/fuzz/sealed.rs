//! The fuzz entry point over sealed messages: opening any bytes, and an
//! honest message with damage.

use core::fmt::Write;

use super::Sink;
use crate::noise::sealed::{MAX_AD, SEALED_OVERHEAD, open, seal};
use crate::noise::{KEY_LEN, NoiseError, PeerError, public_key};

/// The longest plaintext or message the data gives.
const MAX_PIECE: usize = 512;

/// Opens and seals with data-chosen keys, data and damage, and checks what
/// sealing promises: no panic; opening someone's bytes fails only by the
/// peer's blame; an honest message opens to its plaintext and its sender; a
/// damaged one, or one opened with other associated data, never opens.
///
/// Byte 0 picks the mode (its low bit): 0 opens the rest of the data as a
/// message; 1 seals it and flips the bit that bytes 2 and 3 name (none when
/// past the end), and byte 1 varies the keys.
pub fn sealed(data: &[u8]) {
    let [mode, vary, rest @ ..] = data else {
        return;
    };
    let recipient = secret(2, *vary);
    let mut out = [0; MAX_PIECE + SEALED_OVERHEAD];
    if mode & 1 == 0 {
        let message = rest.get(..MAX_PIECE).unwrap_or(rest);
        match open(&recipient, message, b"ad", &mut out) {
            // Forging one is the attack this guards against; a fuzzer that
            // manages it has found a bug.
            Ok(_) => panic!("opened bytes no sender sealed"),
            Err(NoiseError::Peer(e)) => {
                let _ = write!(Sink::default(), "{e}");
            }
            Err(NoiseError::Local(e)) => panic!("a local error with room enough: {e:?}"),
        }
        return;
    }
    let [hi, lo, rest @ ..] = rest else {
        return;
    };
    let ad = rest.get(..usize::from(*hi).min(MAX_AD)).unwrap_or(rest);
    let plaintext = rest.get(..MAX_PIECE).unwrap_or(rest);
    let sender = secret(1, *vary);
    let to = public_key(&recipient);
    let mut message = [0; MAX_PIECE + SEALED_OVERHEAD];
    let len = match seal(&sender, &to, &secret(3, *lo), ad, plaintext, &mut message) {
        Ok(len) => len,
        Err(e) => panic!("an honest seal failed: {e:?}"),
    };
    assert_eq!(len, plaintext.len() + SEALED_OVERHEAD);
    let bit = usize::from(*hi) << 8 | usize::from(*lo);
    let damaged = bit < len * 8;
    if let Some(byte) = message.get_mut(bit / 8).filter(|_| damaged) {
        *byte ^= 1 << (bit % 8);
    }
    let opened = open(
        &recipient,
        message.get(..len).unwrap_or_default(),
        ad,
        &mut out,
    );
    if damaged {
        assert_eq!(opened, Err(NoiseError::Peer(PeerError::Sealed)));
    } else {
        let Ok((from, n)) = opened else {
            panic!("an honest message did not open: {opened:?}");
        };
        assert_eq!((from, out.get(..n)), (public_key(&sender), Some(plaintext)));
        // With other associated data it does not open.
        let other = if ad.is_empty() { &b"x"[..] } else { &[] };
        assert_eq!(
            open(
                &recipient,
                message.get(..len).unwrap_or_default(),
                other,
                &mut out
            ),
            Err(NoiseError::Peer(PeerError::Sealed))
        );
    }
}

/// A 32-byte secret per `label`, varied by the data's byte `vary`.
fn secret(label: u8, vary: u8) -> [u8; KEY_LEN] {
    core::array::from_fn(|i| match i {
        0 => vary,
        1 => label ^ vary.rotate_left(3),
        _ => label.wrapping_mul(29).wrapping_add(i as u8),
    })
}
