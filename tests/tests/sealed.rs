//! Sealed messages (`meshtalk_core::noise::sealed`): one `Noise_X` message from
//! one identity to another, which only the recipient opens and which proves
//! its sender. Checked against `snow` both ways.

use clatter::bytearray::ByteArray;
use clatter::crypto::cipher::ChaChaPoly;
use clatter::crypto::dh::X25519;
use clatter::crypto::hash::Blake2s;
use clatter::symmetricstate::SymmetricState;
use clatter::traits::Dh;
use meshtalk_core::noise::sealed::{
    MAX_AD, MAX_SEALED_PLAINTEXT, SEALED_LABEL, SEALED_OVERHEAD, open, seal,
};
use meshtalk_core::noise::{LocalError, MAX_MESSAGE, NoiseError, PeerError, public_key};
use proptest::prelude::*;

const X: &str = "Noise_X_25519_ChaChaPoly_BLAKE2s";
const ALICE: u8 = 1;
const CAROL: u8 = 2;
const MALLORY: u8 = 9;
/// What a relay reads: the envelope the sealed message travels in.
const AD: &[u8] = b"from alice to carol, id 7";
const TEXT: &[u8] = b"meet at noon";

/// A distinct, fixed 32-byte key per `seed`.
fn key(seed: u8) -> [u8; 32] {
    core::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8 * 7))
}

/// The prologue a sealed message binds for `ad`, for the snow side.
fn prologue(ad: &[u8]) -> Vec<u8> {
    [SEALED_LABEL, ad].concat()
}

/// `TEXT` sealed from alice to carol with entropy `entropy`, bound to `AD`.
fn sealed(entropy: u8) -> Vec<u8> {
    let mut buf = [0u8; 256];
    let n = seal(
        &key(ALICE),
        &public_key(&key(CAROL)),
        &key(entropy),
        AD,
        TEXT,
        &mut buf,
    )
    .unwrap();
    buf[..n].to_vec()
}

fn open_as(identity: u8, message: &[u8], ad: &[u8]) -> Result<([u8; 32], Vec<u8>), NoiseError> {
    let mut out = [0u8; 256];
    let (sender, n) = open(&key(identity), message, ad, &mut out)?;
    Ok((sender, out[..n].to_vec()))
}

#[test]
fn a_sealed_message_opens_to_its_plaintext() {
    let message = sealed(3);
    assert_eq!(message.len(), TEXT.len() + SEALED_OVERHEAD);
    let (_, text) = open_as(CAROL, &message, AD).unwrap();
    assert_eq!(text, TEXT);
}

#[test]
fn an_empty_plaintext_seals_to_the_overhead_alone() {
    let mut buf = [0u8; SEALED_OVERHEAD];
    let to = public_key(&key(CAROL));
    let n = seal(&key(ALICE), &to, &key(3), AD, b"", &mut buf).unwrap();
    assert_eq!(n, SEALED_OVERHEAD);
    assert_eq!(open_as(CAROL, &buf, AD).unwrap().1, b"");
}

#[test]
fn the_overhead_is_the_ephemeral_key_the_sealed_static_key_and_a_tag() {
    assert_eq!(SEALED_OVERHEAD, 32 + (32 + 16) + 16);
    assert_eq!(MAX_SEALED_PLAINTEXT, MAX_MESSAGE - 96);
}

#[test]
fn the_recipient_learns_the_senders_static_key() {
    let (sender, _) = open_as(CAROL, &sealed(3), AD).unwrap();
    assert_eq!(sender, public_key(&key(ALICE)));
}

#[test]
fn another_recipients_key_cannot_open_it() {
    // Nor can the sender open what it sealed.
    for who in [MALLORY, ALICE] {
        assert_eq!(
            open_as(who, &sealed(3), AD),
            Err(NoiseError::Peer(PeerError::Sealed))
        );
    }
}

#[test]
fn a_flipped_bit_anywhere_fails_to_open() {
    let message = sealed(3);
    for bit in 0..message.len() * 8 {
        let mut bad = message.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert_eq!(
            open_as(CAROL, &bad, AD),
            Err(NoiseError::Peer(PeerError::Sealed)),
            "bit {bit}"
        );
    }
}

#[test]
fn a_truncated_or_extended_message_fails_to_open() {
    let message = sealed(3);
    for len in [
        0,
        1,
        SEALED_OVERHEAD - 1,
        SEALED_OVERHEAD,
        message.len() - 1,
    ] {
        assert_eq!(
            open_as(CAROL, &message[..len], AD),
            Err(NoiseError::Peer(PeerError::Sealed)),
            "{len} bytes"
        );
    }
    let longer = [&message[..], b"x"].concat();
    assert_eq!(
        open_as(CAROL, &longer, AD),
        Err(NoiseError::Peer(PeerError::Sealed))
    );
}

#[test]
fn different_associated_data_fails_to_open() {
    let message = sealed(3);
    for ad in [&b""[..], b"from alice to carol, id 8", &AD[..AD.len() - 1]] {
        assert_eq!(
            open_as(CAROL, &message, ad),
            Err(NoiseError::Peer(PeerError::Sealed))
        );
    }
}

#[test]
fn a_message_sealed_for_another_protocol_version_fails_to_open() {
    let mut message = [0u8; 256];
    let ad = [&b"meshtalk/3 direct\0"[..], AD].concat();
    let n = snow_sealer(&ad).write_message(TEXT, &mut message).unwrap();
    assert_eq!(
        open_as(CAROL, &message[..n], AD),
        Err(NoiseError::Peer(PeerError::Sealed))
    );
}

#[test]
fn the_same_plaintext_sealed_twice_with_different_entropy_differs() {
    let (a, b) = (sealed(3), sealed(4));
    assert_eq!(a.len(), b.len());
    // Every part differs: the ephemeral key, the sealed static key, the payload.
    for (range, what) in [(0..32, "e"), (32..80, "s"), (80..a.len(), "payload")] {
        assert_ne!(a[range.clone()], b[range], "{what}");
    }
}

#[test]
fn the_same_entropy_seals_the_same_bytes() {
    // Sealing is a pure function of its inputs: the shell must bring fresh entropy.
    assert_eq!(sealed(3), sealed(3));
}

#[test]
fn too_small_buffers_are_a_local_error_and_leave_them_unchanged() {
    let to = public_key(&key(CAROL));
    let mut small = [0xAAu8; SEALED_OVERHEAD + 3];
    assert_eq!(
        seal(&key(ALICE), &to, &key(3), AD, TEXT, &mut small),
        Err(NoiseError::Local(LocalError::BufferTooSmall {
            needed: TEXT.len() + SEALED_OVERHEAD
        }))
    );
    assert_eq!(small, [0xAA; SEALED_OVERHEAD + 3]);

    let message = sealed(3);
    let mut small = [0xAAu8; 3];
    assert_eq!(
        open(&key(CAROL), &message, AD, &mut small),
        Err(NoiseError::Local(LocalError::BufferTooSmall {
            needed: TEXT.len()
        }))
    );
    assert_eq!(small, [0xAA; 3]);
    // The message was not spent: with room enough it opens.
    assert_eq!(open_as(CAROL, &message, AD).unwrap().1, TEXT);
}

#[test]
fn a_plaintext_over_one_noise_message_is_a_local_error() {
    let to = public_key(&key(CAROL));
    let text = vec![0u8; MAX_SEALED_PLAINTEXT + 1];
    let mut buf = vec![0u8; MAX_MESSAGE + 1];
    assert_eq!(
        seal(&key(ALICE), &to, &key(3), AD, &text, &mut buf),
        Err(NoiseError::Local(LocalError::TooLong {
            len: MAX_MESSAGE + 1
        }))
    );
    let n = seal(
        &key(ALICE),
        &to,
        &key(3),
        AD,
        &text[..MAX_SEALED_PLAINTEXT],
        &mut buf,
    )
    .unwrap();
    assert_eq!(n, MAX_MESSAGE);
}

#[test]
fn a_message_over_one_noise_message_is_the_peers_error() {
    let message = vec![0u8; MAX_MESSAGE + 1];
    let mut out = vec![0u8; MAX_MESSAGE + 1];
    assert_eq!(
        open(&key(CAROL), &message, AD, &mut out),
        Err(NoiseError::Peer(PeerError::TooLong {
            len: MAX_MESSAGE + 1
        }))
    );
}

#[test]
fn associated_data_over_its_limit_is_a_local_error() {
    let to = public_key(&key(CAROL));
    let ad = [0u8; MAX_AD + 1];
    let mut buf = [0u8; 256];
    let too_long = NoiseError::Local(LocalError::AdTooLong { len: MAX_AD + 1 });
    assert_eq!(
        seal(&key(ALICE), &to, &key(3), &ad, TEXT, &mut buf),
        Err(too_long)
    );
    assert_eq!(open(&key(CAROL), &sealed(3), &ad, &mut buf), Err(too_long));
    // At the limit it is bound like any other.
    let n = seal(&key(ALICE), &to, &key(3), &ad[..MAX_AD], TEXT, &mut buf).unwrap();
    assert_eq!(open_as(CAROL, &buf[..n], &ad[..MAX_AD]).unwrap().1, TEXT);
}

/// Points of low order on Curve25519 (0, 1, and one of order 8): X25519 with
/// any secret gives all zeros.
fn low_order_points() -> [[u8; 32]; 3] {
    let mut one = [0u8; 32];
    one[0] = 1;
    let order8 =
        hex::decode("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800").unwrap();
    [[0; 32], one, order8.try_into().unwrap()]
}

#[test]
fn sealing_to_a_key_of_low_order_is_refused() {
    let mut buf = [0u8; 256];
    for to in low_order_points() {
        assert_eq!(
            seal(&key(ALICE), &to, &key(3), AD, TEXT, &mut buf),
            Err(NoiseError::Local(LocalError::WeakKey)),
            "{to:02x?}"
        );
    }
}

/// Forges a sealed message to carol "from" the low-order key `sender`, which
/// needs no secret: `ss` is all zeros for everyone.
fn forge_from(sender: &[u8; 32]) -> Vec<u8> {
    let carol = public_key(&key(CAROL));
    let e = key(5);
    let e_pub = public_key(&e);
    let dh = |public: &[u8; 32]| {
        X25519::dh(&<X25519 as Dh>::PrivateKey::from_slice(&e), public).unwrap()
    };
    let mut ss = SymmetricState::<ChaChaPoly, Blake2s>::new(X);
    ss.mix_hash(&prologue(AD));
    ss.mix_hash(&carol);
    let mut out = vec![0u8; TEXT.len() + SEALED_OVERHEAD];
    out[..32].copy_from_slice(&e_pub);
    ss.mix_hash(&e_pub);
    ss.mix_key(dh(&carol).as_slice());
    ss.encrypt_and_hash(sender, &mut out[32..80]).unwrap();
    ss.mix_key(&[0; 32]);
    ss.encrypt_and_hash(TEXT, &mut out[80..]).unwrap();
    out
}

#[test]
fn a_message_from_a_sender_key_of_low_order_is_refused_as_a_forgery() {
    for sender in low_order_points() {
        assert_eq!(
            open_as(CAROL, &forge_from(&sender), AD),
            Err(NoiseError::Peer(PeerError::WeakSender)),
            "{sender:02x?}"
        );
    }
}

/// A snow initiator of `Noise_X` from alice to carol with prologue `prologue`.
fn snow_sealer(prologue: &[u8]) -> snow::HandshakeState {
    let carol = public_key(&key(CAROL));
    snow::Builder::new(X.parse().unwrap())
        .local_private_key(&key(ALICE))
        .unwrap()
        .remote_public_key(&carol)
        .unwrap()
        .prologue(prologue)
        .unwrap()
        .build_initiator()
        .unwrap()
}

#[test]
fn snow_opens_what_we_seal() {
    let message = sealed(3);
    let mut snow = snow::Builder::new(X.parse().unwrap())
        .local_private_key(&key(CAROL))
        .unwrap()
        .prologue(&prologue(AD))
        .unwrap()
        .build_responder()
        .unwrap();
    let mut text = [0u8; 256];
    let n = snow.read_message(&message, &mut text).unwrap();
    assert_eq!(&text[..n], TEXT);
    assert_eq!(snow.get_remote_static(), Some(&public_key(&key(ALICE))[..]));
}

#[test]
fn we_open_what_snow_seals() {
    let mut message = [0u8; 256];
    let n = snow_sealer(&prologue(AD))
        .write_message(TEXT, &mut message)
        .unwrap();
    assert_eq!(n, TEXT.len() + SEALED_OVERHEAD);
    let (sender, text) = open_as(CAROL, &message[..n], AD).unwrap();
    assert_eq!((sender, &text[..]), (public_key(&key(ALICE)), TEXT));
}

#[test]
fn snow_and_we_seal_the_same_bytes_from_the_same_keys() {
    let mut theirs = [0u8; 256];
    let n = snow::Builder::new(X.parse().unwrap())
        .local_private_key(&key(ALICE))
        .unwrap()
        .remote_public_key(&public_key(&key(CAROL)))
        .unwrap()
        .prologue(&prologue(AD))
        .unwrap()
        .fixed_ephemeral_key_for_testing_only(&key(3))
        .build_initiator()
        .unwrap()
        .write_message(TEXT, &mut theirs)
        .unwrap();
    assert_eq!(sealed(3), &theirs[..n]);
}

proptest! {
    #[test]
    fn any_bytes_fail_to_open_as_the_peers_error_without_a_panic(
        message in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut out = [0u8; 300];
        match open(&key(CAROL), &message, AD, &mut out) {
            Err(NoiseError::Peer(_)) => {}
            other => prop_assert!(false, "{other:?}"),
        }
    }
}
