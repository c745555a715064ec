//! Sealed messages: one Noise message from one identity to another, for a
//! direct message that relays carry but cannot read.
//!
//! A sealed message is the single message of the one-way pattern
//! `Noise_X_25519_ChaChaPoly_BLAKE2s`, sent to the recipient's static key,
//! which the sender knows from the room:
//!
//! ```text
//! <- s
//! ...
//! -> e, es, s, ss      (then the payload, encrypted)
//! ```
//!
//! Why X, not N or K: with N the recipient reads a message from nobody in
//! particular; with K it must know the sender's key beforehand, and a node may
//! get a message from a room member it never linked to. X sends the sender's
//! static key encrypted (relays do not learn who wrote to whom from it), and `ss`
//! proves it: the recipient learns who wrote the message and can check it
//! against the room. Like every one-way pattern, it gives no forward secrecy
//! against the recipient's static key and no replay protection: the caller
//! drops duplicates (by message id) above this layer.
//!
//! The prologue binds [`SEALED_LABEL`] (the protocol version and this use, so a
//! sealed message is never taken for anything else) and then the caller's
//! associated data, e.g. the envelope that relays read.

use clatter::handshakepattern::noise_x;
use clatter::traits::Handshaker;

use super::error::{LocalError, NoiseError, PeerError};
use super::suite::{self, Handshake};
use super::{KEY_LEN, MAX_MESSAGE, TAG};

/// What the prologue of a sealed message begins with, before the associated data.
pub const SEALED_LABEL: &[u8] = b"meshtalk/2 direct\0";
/// The longest associated data a sealed message binds.
pub const MAX_AD: usize = 128;
/// The bytes sealing adds to a plaintext: the ephemeral key, the encrypted
/// static key and its tag, and the payload's tag.
pub const SEALED_OVERHEAD: usize = KEY_LEN + KEY_LEN + TAG + TAG;
/// The longest plaintext one sealed message carries.
pub const MAX_SEALED_PLAINTEXT: usize = MAX_MESSAGE - SEALED_OVERHEAD;

/// Seals `plaintext` from `identity` (our static secret) to `to` (the
/// recipient's static public key), bound to `ad`, into `out`, and returns the
/// sealed message's length (`plaintext.len() + SEALED_OVERHEAD`).
///
/// `entropy` is 32 fresh random bytes from the shell, never reused: they make
/// the ephemeral key. Every error is local; `out` is unchanged when too small.
pub fn seal(
    identity: &[u8; KEY_LEN],
    to: &[u8; KEY_LEN],
    entropy: &[u8; KEY_LEN],
    ad: &[u8],
    plaintext: &[u8],
    out: &mut [u8],
) -> Result<usize, NoiseError> {
    let len = plaintext.len() + SEALED_OVERHEAD;
    if len > MAX_MESSAGE {
        return Err(LocalError::TooLong { len }.into());
    }
    let Some(out) = out.get_mut(..len) else {
        return Err(LocalError::BufferTooSmall { needed: len }.into());
    };
    let mut prologue = [0; SEALED_LABEL.len() + MAX_AD];
    let prologue = bind(ad, &mut prologue)?;
    if suite::low_order(identity, to) {
        return Err(LocalError::WeakKey.into());
    }
    let Ok(mut hs) = Handshake::new(
        noise_x(),
        prologue,
        true,
        Some(suite::pair(identity)),
        Some(suite::pair(entropy)),
        Some(*to),
        None,
    ) else {
        // Only a post-quantum pattern or missing keys are refused, and X
        // with every key given is neither.
        return Err(LocalError::Exhausted.into());
    };
    match hs.write_message(plaintext, out) {
        Ok(written) if written == len => Ok(len),
        // The length and the keys are checked above: nothing is left to
        // refuse. Fail closed all the same.
        _ => {
            out.fill(0);
            Err(LocalError::Exhausted.into())
        }
    }
}

/// Opens the sealed message `message`, sent to `identity` (our static
/// secret) and bound to `ad`, writes its plaintext into `out`, and returns
/// the sender's static public key and the plaintext's length.
///
/// The sender is proven: only the holder of that key's secret could have
/// sealed the message. A peer error means the message is dropped; a local
/// one (a buffer to grow, data too long) that the call may be made again.
pub fn open(
    identity: &[u8; KEY_LEN],
    message: &[u8],
    ad: &[u8],
    out: &mut [u8],
) -> Result<([u8; KEY_LEN], usize), NoiseError> {
    let mut prologue = [0; SEALED_LABEL.len() + MAX_AD];
    let prologue = bind(ad, &mut prologue)?;
    if message.len() > MAX_MESSAGE {
        return Err(PeerError::TooLong { len: message.len() }.into());
    }
    let Some(len) = message.len().checked_sub(SEALED_OVERHEAD) else {
        return Err(PeerError::Sealed.into());
    };
    let Some(out) = out.get_mut(..len) else {
        return Err(LocalError::BufferTooSmall { needed: len }.into());
    };
    let Ok(mut hs) = Handshake::new(
        noise_x(),
        prologue,
        false,
        Some(suite::pair(identity)),
        None,
        None,
        None,
    ) else {
        return Err(LocalError::Exhausted.into());
    };
    match hs.read_message(message, out) {
        Ok(read) if read == len => {}
        // A failed tag on the static key or the payload: the message was not
        // sealed to us with this data, or was changed on the way. Clatter may
        // have written part of a plaintext: wipe it.
        _ => {
            out.fill(0);
            return Err(PeerError::Sealed.into());
        }
    }
    let Some(sender) = hs.get_remote_static() else {
        out.fill(0);
        return Err(PeerError::Sealed.into());
    };
    if suite::low_order(identity, &sender) {
        out.fill(0);
        return Err(PeerError::WeakSender.into());
    }
    Ok((sender, len))
}

/// Writes the prologue, [`SEALED_LABEL`] then `ad`, into `buf` and returns it.
fn bind<'a>(
    ad: &[u8],
    buf: &'a mut [u8; SEALED_LABEL.len() + MAX_AD],
) -> Result<&'a [u8], LocalError> {
    if ad.len() > MAX_AD {
        return Err(LocalError::AdTooLong { len: ad.len() });
    }
    let len = SEALED_LABEL.len() + ad.len();
    let (label, rest) = buf.split_at_mut(SEALED_LABEL.len());
    label.copy_from_slice(SEALED_LABEL);
    if let Some(tail) = rest.get_mut(..ad.len()) {
        tail.copy_from_slice(ad);
    }
    Ok(buf.get(..len).unwrap_or_default())
}
