//! The one Noise suite meshtalk speaks, on clatter: `25519_ChaChaPoly_BLAKE2s`,
//! XX or XXpsk0, with every key handed in (no RNG in the core).

use clatter::bytearray::ByteArray;
use clatter::cipherstate::CipherState;
use clatter::crypto::cipher::ChaChaPoly;
use clatter::crypto::dh::X25519;
use clatter::crypto::hash::Blake2s;
use clatter::handshakepattern::{HandshakePattern, noise_xx};
use clatter::rand_core::{CryptoRng, RngCore};
use clatter::traits::Dh;
use clatter::{KeyPair, NqHandshakeCore};

/// The handshake state of one session.
pub(super) type Handshake = NqHandshakeCore<X25519, ChaChaPoly, Blake2s, NoRng>;
/// One direction's transport cipher.
pub(super) type Cipher = CipherState<ChaChaPoly>;
/// A Curve25519 key pair as clatter holds it (the secret is wiped on drop).
pub(super) type Pair = KeyPair<<X25519 as Dh>::PubKey, <X25519 as Dh>::PrivateKey>;

/// The RNG type clatter's handshake asks for, never called: the ephemeral key
/// always comes in from the shell, and clatter draws one only when none was given.
#[derive(Default, Clone)]
pub(super) struct NoRng;

// Unreachable by construction: the one place a handshake is made,
// `Session::with_prologue`, always hands clatter `Some(ephemeral)`, and clatter
// draws from its RNG only to make an ephemeral key it was not given. Every
// handshake test (vectors, snow, random bytes) runs through here without a call.
// A panic, not zeros: a predictable key would be worse than stopping.
impl RngCore for NoRng {
    fn next_u32(&mut self) -> u32 {
        unreachable!("meshtalk hands every ephemeral key in")
    }
    fn next_u64(&mut self) -> u64 {
        unreachable!("meshtalk hands every ephemeral key in")
    }
    fn fill_bytes(&mut self, _: &mut [u8]) {
        unreachable!("meshtalk hands every ephemeral key in")
    }
    fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), clatter::rand_core::Error> {
        unreachable!("meshtalk hands every ephemeral key in")
    }
}

impl CryptoRng for NoRng {}

/// The key pair of a 32-byte Curve25519 secret (clamped by X25519 itself).
pub(super) fn pair(secret: &[u8; 32]) -> Pair {
    let secret = <X25519 as Dh>::PrivateKey::from_slice(secret);
    KeyPair::new(X25519::pubkey(&secret), secret)
}

/// The public key of a 32-byte Curve25519 secret.
pub(crate) fn public_key(secret: &[u8; 32]) -> [u8; 32] {
    X25519::pubkey(&<X25519 as Dh>::PrivateKey::from_slice(secret))
}

/// XX, or with a room key XXpsk0: `-> psk, e  <- e, ee, s, es  -> s, se`. The
/// PSK comes first so that a node without the room key fails at message 1,
/// before either side has sent its static key (psk3 would hand the responder's
/// static key to anyone who dials).
pub(super) fn pattern(room: bool) -> HandshakePattern {
    if room {
        noise_xx().add_psks(&[0], "XXpsk0")
    } else {
        noise_xx()
    }
}

/// Whether `public` is a point of low order, whose X25519 with any secret is
/// all zeros (X25519 clamps every secret to a multiple of the cofactor): a key
/// no node holds, and that anyone can compute with. `secret` is any of ours;
/// the shared secret never leaves clatter's wiped-on-drop array.
pub(super) fn low_order(secret: &[u8; 32], public: &[u8; 32]) -> bool {
    let secret = <X25519 as Dh>::PrivateKey::from_slice(secret);
    match X25519::dh(&secret, public) {
        // OR every byte, not `all`: no early exit that times the shared secret.
        Ok(shared) => shared.as_slice().iter().fold(0, |acc, b| acc | b) == 0,
        Err(_) => true,
    }
}
