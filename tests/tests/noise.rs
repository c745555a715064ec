//! The Noise session of secure links (`meshtalk_core::noise`): the published
//! test vectors, interop with `snow` in both roles, room keys, tampering, and
//! no panic on any bytes at any step.

use meshtalk_core::noise::{
    self, LocalError, MAX_MESSAGE, MAX_PROLOGUE, NoiseError, PeerError, Role, Session, Step, TAG,
};
use serde_json::Value;

const BANNER: &[u8] = b"MESHTALK/2 XX\n";
const XX: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
const XX_PSK0: &str = "Noise_XXpsk0_25519_ChaChaPoly_BLAKE2s";

/// A distinct, fixed 32-byte key per `seed`.
fn key(seed: u8) -> [u8; 32] {
    core::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8 * 7))
}

/// The prologue `Session::new` binds for `BANNER`, for the snow side.
fn prologue() -> Vec<u8> {
    let mut buf = [0; MAX_PROLOGUE];
    let len = noise::prologue(BANNER, &mut buf).unwrap();
    buf[..len].to_vec()
}

fn session(role: Role, identity: u8, ephemeral: u8, room: Option<&[u8; 32]>) -> Session {
    Session::new(role, &key(identity), &key(ephemeral), room, BANNER).unwrap()
}

/// A snow handshake with our prologue; `ephemeral` fixes its ephemeral key.
fn snow_side(
    role: Role,
    identity: u8,
    ephemeral: Option<u8>,
    room: Option<&[u8; 32]>,
) -> snow::HandshakeState {
    let name = if room.is_some() { XX_PSK0 } else { XX };
    let identity = key(identity);
    let prologue = prologue();
    let fixed = ephemeral.map(key);
    let mut builder = snow::Builder::new(name.parse().unwrap())
        .local_private_key(&identity)
        .unwrap()
        .prologue(&prologue)
        .unwrap();
    if let Some(room) = room {
        builder = builder.psk(0, room).unwrap();
    }
    if let Some(e) = &fixed {
        builder = builder.fixed_ephemeral_key_for_testing_only(e);
    }
    match role {
        Role::Initiator => builder.build_initiator().unwrap(),
        Role::Responder => builder.build_responder().unwrap(),
    }
}

/// Runs a whole handshake between our session (in `ours_role`) and snow, with
/// hellos as payloads of messages 2 and 3, then transport messages both ways.
/// Returns every message on the wire, in order.
fn handshake_with_snow(ours_role: Role, room: Option<&[u8; 32]>) -> Vec<Vec<u8>> {
    let theirs_role = match ours_role {
        Role::Initiator => Role::Responder,
        Role::Responder => Role::Initiator,
    };
    let mut ours = session(ours_role, 1, 3, room);
    let mut theirs = snow_side(theirs_role, 2, None, room);
    let payloads: [&[u8]; 3] = [
        b"",
        b"hello from the responder",
        b"hello from the initiator",
    ];
    let mut wire = Vec::new();
    let (mut buf, mut got) = ([0u8; 1024], [0u8; 1024]);
    for (i, payload) in payloads.iter().enumerate() {
        let initiator_writes = i % 2 == 0;
        let we_write = initiator_writes == (ours_role == Role::Initiator);
        if we_write {
            assert_eq!(ours.step(), Step::Write);
            let n = ours.write_handshake(payload, &mut buf).unwrap();
            let k = theirs.read_message(&buf[..n], &mut got).unwrap();
            assert_eq!(&got[..k], *payload);
            wire.push(buf[..n].to_vec());
        } else {
            assert_eq!(ours.step(), Step::Read);
            let n = theirs.write_message(payload, &mut buf).unwrap();
            let k = ours.read_handshake(&buf[..n], &mut got).unwrap();
            assert_eq!(&got[..k], *payload);
            wire.push(buf[..n].to_vec());
        }
    }
    assert_eq!(ours.step(), Step::Transport);
    assert!(theirs.is_handshake_finished());
    assert_eq!(ours.remote_static(), Some(&noise::public_key(&key(2))));
    assert_eq!(
        theirs.get_remote_static(),
        Some(&noise::public_key(&key(1))[..])
    );
    assert_eq!(
        ours.handshake_hash().map(|h| &h[..]),
        Some(theirs.get_handshake_hash())
    );
    let mut theirs = theirs.into_transport_mode().unwrap();
    let long = [7u8; 1000];
    for (text, ours_sends) in [
        (&b"from us"[..], true),
        (b"from snow", false),
        (&long[..], true),
        (&long[..], false),
        (b"", true),
    ] {
        if ours_sends {
            let n = ours.encrypt(text, &mut buf).unwrap();
            assert_eq!(n, text.len() + TAG);
            let k = theirs.read_message(&buf[..n], &mut got).unwrap();
            assert_eq!(&got[..k], text);
        } else {
            let n = theirs.write_message(text, &mut buf).unwrap();
            let k = ours.decrypt(&buf[..n], &mut got).unwrap();
            assert_eq!(&got[..k], text);
        }
    }
    wire
}

#[test]
fn a_session_completes_xx_and_xxpsk0_with_snow_as_initiator_and_as_responder() {
    let room = key(9);
    for room in [None, Some(&room)] {
        for role in [Role::Initiator, Role::Responder] {
            let wire = handshake_with_snow(role, room);
            // psk0 puts a tag on message 1; 2 and 3 carry the hellos.
            let first = if room.is_some() { 32 + 16 } else { 32 };
            assert_eq!(wire[0].len(), first, "{role:?} {}", room.is_some());
            assert_eq!(wire[1].len(), 32 + 48 + 24 + 16);
            assert_eq!(wire[2].len(), 48 + 24 + 16);
        }
    }
}

#[test]
fn a_session_writes_the_same_bytes_as_snow_for_xx_and_xxpsk0() {
    // No published vector is exactly XXpsk0: with the same keys, our pair of
    // sessions and a pair of snow handshakes must put identical bytes on the wire.
    let room = key(9);
    for room in [None, Some(&room)] {
        let mut i = session(Role::Initiator, 1, 3, room);
        let mut r = session(Role::Responder, 2, 4, room);
        let mut si = snow_side(Role::Initiator, 1, Some(3), room);
        let mut sr = snow_side(Role::Responder, 2, Some(4), room);
        let (mut ours, mut theirs, mut got) = ([0u8; 256], [0u8; 256], [0u8; 256]);
        for (step, payload) in [&b""[..], b"bob", b"alice"].into_iter().enumerate() {
            let (n, m) = if step % 2 == 0 {
                let n = i.write_handshake(payload, &mut ours).unwrap();
                r.read_handshake(&ours[..n], &mut got).unwrap();
                let m = si.write_message(payload, &mut theirs).unwrap();
                sr.read_message(&theirs[..m], &mut got).unwrap();
                (n, m)
            } else {
                let n = r.write_handshake(payload, &mut ours).unwrap();
                i.read_handshake(&ours[..n], &mut got).unwrap();
                let m = sr.write_message(payload, &mut theirs).unwrap();
                si.read_message(&theirs[..m], &mut got).unwrap();
                (n, m)
            };
            assert_eq!(
                hex::encode(&ours[..n]),
                hex::encode(&theirs[..m]),
                "message {} with room key {}",
                step + 1,
                room.is_some()
            );
        }
        assert_eq!(
            i.handshake_hash().map(|h| &h[..]),
            Some(si.get_handshake_hash())
        );
        let mut st = si.into_transport_mode().unwrap();
        let n = i.encrypt(b"same bytes", &mut ours).unwrap();
        let m = st.write_message(b"same bytes", &mut theirs).unwrap();
        assert_eq!(ours[..n], theirs[..m]);
    }
}

fn hex_field(v: &Value, field: &str) -> Vec<u8> {
    hex::decode(v[field].as_str().unwrap_or("")).unwrap()
}

fn key_field(v: &Value, field: &str) -> [u8; 32] {
    hex_field(v, field).try_into().unwrap()
}

fn vectors() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/noise-xx.json");
    let text = std::fs::read_to_string(path).unwrap();
    let all: Value = serde_json::from_str(&text).unwrap();
    all["vectors"].as_array().unwrap().clone()
}

#[test]
fn a_session_reproduces_the_cacophony_and_snow_vectors_for_xx() {
    let mut ran = 0;
    for v in vectors().iter().filter(|v| v["protocol_name"] == XX) {
        let side = |role: Role, who: &str| {
            Session::with_prologue(
                role,
                &key_field(v, &format!("{who}_static")),
                &key_field(v, &format!("{who}_ephemeral")),
                None,
                &hex_field(v, &format!("{who}_prologue")),
            )
        };
        let mut i = side(Role::Initiator, "init");
        let mut r = side(Role::Responder, "resp");
        let (mut out, mut got) = ([0u8; 1024], [0u8; 1024]);
        let messages = v["messages"].as_array().unwrap();
        for (idx, m) in messages.iter().enumerate() {
            let payload = hex_field(m, "payload");
            let (w, rd) = if idx % 2 == 0 {
                (&mut i, &mut r)
            } else {
                (&mut r, &mut i)
            };
            let (n, k) = if idx < 3 {
                let n = w.write_handshake(&payload, &mut out).unwrap();
                (n, rd.read_handshake(&out[..n], &mut got).unwrap())
            } else {
                let n = w.encrypt(&payload, &mut out).unwrap();
                (n, rd.decrypt(&out[..n], &mut got).unwrap())
            };
            assert_eq!(
                hex::encode(&out[..n]),
                m["ciphertext"].as_str().unwrap(),
                "{}: message {idx}",
                v["source"]
            );
            assert_eq!(got[..k], payload[..]);
        }
        if let Some(want) = v["handshake_hash"].as_str() {
            assert_eq!(hex::encode(i.handshake_hash().unwrap()), want);
            assert_eq!(r.handshake_hash(), i.handshake_hash());
        }
        assert_eq!(
            i.remote_static(),
            Some(&noise::public_key(&key_field(v, "resp_static")))
        );
        ran += 1;
    }
    assert_eq!(ran, 2, "one XX vector from cacophony, one from snow");
}

#[test]
fn clatter_reproduces_the_snow_vectors_that_begin_with_psk0() {
    use clatter::bytearray::ByteArray;
    use clatter::crypto::{cipher::ChaChaPoly, dh::X25519, hash::Blake2s};
    use clatter::handshakepattern::noise_xx;
    use clatter::traits::{Dh, Handshaker};
    /// Never asked: every vector gives its ephemeral keys.
    #[derive(Default, Clone)]
    struct FixedKeys;
    impl clatter::rand_core::RngCore for FixedKeys {
        fn next_u32(&mut self) -> u32 {
            unreachable!()
        }
        fn next_u64(&mut self) -> u64 {
            unreachable!()
        }
        fn fill_bytes(&mut self, _: &mut [u8]) {
            unreachable!()
        }
        fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), clatter::rand_core::Error> {
            unreachable!()
        }
    }
    impl clatter::rand_core::CryptoRng for FixedKeys {}
    type Hs = clatter::NqHandshakeCore<X25519, ChaChaPoly, Blake2s, FixedKeys>;
    let pair = |secret: [u8; 32]| {
        let secret = <X25519 as Dh>::PrivateKey::from_slice(&secret);
        clatter::KeyPair::new(X25519::pubkey(&secret), secret)
    };
    let mut ran = 0;
    for v in vectors().iter() {
        let (positions, name): (&[usize], _) = match v["protocol_name"].as_str().unwrap() {
            "Noise_XXpsk0+psk1_25519_ChaChaPoly_BLAKE2s" => (&[0, 1], "XXpsk0+psk1"),
            "Noise_XXpsk0+psk3_25519_ChaChaPoly_BLAKE2s" => (&[0, 3], "XXpsk0+psk3"),
            _ => continue,
        };
        let side = |initiator: bool, who: &str| {
            let mut hs = Hs::new(
                noise_xx().add_psks(positions, name),
                &hex_field(v, &format!("{who}_prologue")),
                initiator,
                Some(pair(key_field(v, &format!("{who}_static")))),
                Some(pair(key_field(v, &format!("{who}_ephemeral")))),
                None,
                None,
            )
            .unwrap();
            for psk in v[format!("{who}_psks")].as_array().unwrap() {
                hs.push_psk(&hex::decode(psk.as_str().unwrap()).unwrap());
            }
            hs
        };
        let (mut i, mut r) = (side(true, "init"), side(false, "resp"));
        let (mut out, mut got) = ([0u8; 1024], [0u8; 1024]);
        let messages = v["messages"].as_array().unwrap();
        for (idx, m) in messages.iter().take(3).enumerate() {
            let (w, rd) = if idx % 2 == 0 {
                (&mut i, &mut r)
            } else {
                (&mut r, &mut i)
            };
            let n = w.write_message(&hex_field(m, "payload"), &mut out).unwrap();
            assert_eq!(hex::encode(&out[..n]), m["ciphertext"].as_str().unwrap());
            let k = rd.read_message(&out[..n], &mut got).unwrap();
            assert_eq!(got[..k], hex_field(m, "payload")[..]);
        }
        let (mut ti, mut tr) = (i.finalize().unwrap(), r.finalize().unwrap());
        for (idx, m) in messages.iter().enumerate().skip(3) {
            let (w, rd) = if idx % 2 == 0 {
                (&mut ti, &mut tr)
            } else {
                (&mut tr, &mut ti)
            };
            let n = w.send(&hex_field(m, "payload"), &mut out).unwrap();
            assert_eq!(hex::encode(&out[..n]), m["ciphertext"].as_str().unwrap());
            rd.receive(&out[..n], &mut got).unwrap();
        }
        ran += 1;
    }
    assert_eq!(ran, 2, "snow's XXpsk0+psk1 and XXpsk0+psk3");
}

#[test]
fn a_wrong_room_key_fails_at_the_first_message_and_learns_no_static_key() {
    let (ours, theirs) = (key(9), key(10));
    let mut buf = [0u8; 256];
    let mut got = [0u8; 256];
    // The outsider dials: we refuse message 1 and never write message 2, which
    // is the one that carries our static key.
    for outsider in [Some(&theirs), None] {
        let mut r = session(Role::Responder, 2, 4, Some(&ours));
        let mut i = snow_side(Role::Initiator, 1, None, outsider);
        let n = i.write_message(b"", &mut buf).unwrap();
        let err = r.read_handshake(&buf[..n], &mut got).unwrap_err();
        // Also an outsider on our own code, so the PSK's place is what is checked.
        let mut r2 = session(Role::Responder, 2, 4, Some(&ours));
        let mut i2 = session(Role::Initiator, 1, 3, Some(&theirs));
        let n = i2.write_handshake(b"", &mut buf).unwrap();
        assert_eq!(r2.read_handshake(&buf[..n], &mut got), Err(err));
        assert_eq!(err, NoiseError::Peer(PeerError::RoomKey));
        assert_eq!(
            err.to_string(),
            "handshake failed: not the same room key, or not a meshtalk node"
        );
        assert_eq!(r.step(), Step::Failed);
        assert_eq!(r.remote_static(), None);
        assert_eq!(
            r.write_handshake(b"", &mut buf),
            Err(NoiseError::Local(LocalError::Failed))
        );
    }
    // We dial an outsider: it refuses our message 1 and has learned nothing.
    let mut i = session(Role::Initiator, 1, 3, Some(&ours));
    let mut r = snow_side(Role::Responder, 2, None, Some(&theirs));
    let n = i.write_handshake(b"", &mut buf).unwrap();
    assert!(r.read_message(&buf[..n], &mut got).is_err());
    assert_eq!(r.get_remote_static(), None);
    // A member dials a node with no room key, which answers: we refuse its
    // message 2 as the same kind of mismatch and send no message 3 (our static key).
    let mut i = session(Role::Initiator, 1, 3, Some(&ours));
    let mut r = session(Role::Responder, 2, 4, None);
    let n = i.write_handshake(b"", &mut buf).unwrap();
    r.read_handshake(&buf[..n], &mut got).unwrap();
    let n = r.write_handshake(b"hello", &mut buf).unwrap();
    let err = i.read_handshake(&buf[..n], &mut got).unwrap_err();
    assert_eq!(err, NoiseError::Peer(PeerError::RoomKey));
    assert_eq!(i.step(), Step::Failed);
}

/// Two of our sessions, handshake done.
fn linked(room: Option<&[u8; 32]>) -> (Session, Session) {
    let mut i = session(Role::Initiator, 1, 3, room);
    let mut r = session(Role::Responder, 2, 4, room);
    let (mut buf, mut got) = ([0u8; 256], [0u8; 256]);
    let n = i.write_handshake(b"", &mut buf).unwrap();
    r.read_handshake(&buf[..n], &mut got).unwrap();
    let n = r.write_handshake(b"bob", &mut buf).unwrap();
    i.read_handshake(&buf[..n], &mut got).unwrap();
    let n = i.write_handshake(b"alice", &mut buf).unwrap();
    r.read_handshake(&buf[..n], &mut got).unwrap();
    assert_eq!((i.step(), r.step()), (Step::Transport, Step::Transport));
    (i, r)
}

#[test]
fn the_overhead_says_what_each_message_adds_to_its_payload() {
    let room = key(9);
    for (room, first) in [(None, 32), (Some(&room), 32 + TAG)] {
        let mut i = session(Role::Initiator, 1, 3, room);
        let mut r = session(Role::Responder, 2, 4, room);
        let (mut buf, mut got) = ([0u8; 256], [0u8; 256]);
        // e; then e, s (tagged) and the tag of the payload; then s and the tag.
        for (step, want) in [first, 32 + 48 + TAG, 48 + TAG].into_iter().enumerate() {
            let (w, rd) = if step % 2 == 0 {
                (&mut i, &mut r)
            } else {
                (&mut r, &mut i)
            };
            assert_eq!(
                (w.overhead(), rd.overhead()),
                (want, want),
                "message {}",
                step + 1
            );
            let n = w.write_handshake(b"hello", &mut buf).unwrap();
            assert_eq!(n, want + 5);
            rd.read_handshake(&buf[..n], &mut got).unwrap();
        }
        assert_eq!((i.overhead(), r.overhead()), (TAG, TAG));
    }
}

#[test]
fn a_flipped_bit_in_a_transport_message_is_refused_and_ends_the_session() {
    let text = b"meet at noon";
    let len = text.len() + TAG;
    // A bit in the first byte, the middle of the text, the tag's first and last byte.
    for bit in [0, 8 * 5 + 3, 8 * text.len(), 8 * len - 1] {
        let (mut i, mut r) = linked(None);
        let (mut buf, mut got) = ([0u8; 256], [0u8; 256]);
        let n = i.encrypt(text, &mut buf).unwrap();
        buf[bit / 8] ^= 1 << (bit % 8);
        let err = r.decrypt(&buf[..n], &mut got).unwrap_err();
        assert_eq!(err, NoiseError::Peer(PeerError::Integrity), "bit {bit}");
        assert_eq!(r.step(), Step::Failed);
        // Nothing more from that link is read, the next genuine message included.
        let n = i.encrypt(b"next", &mut buf).unwrap();
        assert_eq!(
            r.decrypt(&buf[..n], &mut got),
            Err(NoiseError::Local(LocalError::Failed))
        );
    }
}

#[test]
fn a_replayed_or_reordered_transport_message_is_refused() {
    let (mut i, mut r) = linked(None);
    let (mut first, mut second, mut got) = ([0u8; 64], [0u8; 64], [0u8; 64]);
    let a = i.encrypt(b"one", &mut first).unwrap();
    let b = i.encrypt(b"two", &mut second).unwrap();
    assert_eq!(
        r.decrypt(&second[..b], &mut got),
        Err(NoiseError::Peer(PeerError::Integrity))
    );
    let (mut i, mut r) = linked(None);
    let a2 = i.encrypt(b"one", &mut first).unwrap();
    assert_eq!(r.decrypt(&first[..a2], &mut got), Ok(3));
    assert_eq!(
        r.decrypt(&first[..a], &mut got),
        Err(NoiseError::Peer(PeerError::Integrity))
    );
}

#[test]
fn a_different_banner_fails_the_handshake_at_message_2() {
    let mut i = session(Role::Initiator, 1, 3, None);
    let mut r = Session::new(Role::Responder, &key(2), &key(4), None, b"MESHTALK/3 XX\n").unwrap();
    let (mut buf, mut got) = ([0u8; 256], [0u8; 256]);
    let n = i.write_handshake(b"", &mut buf).unwrap();
    r.read_handshake(&buf[..n], &mut got).unwrap();
    let n = r.write_handshake(b"", &mut buf).unwrap();
    assert_eq!(
        i.read_handshake(&buf[..n], &mut got),
        Err(NoiseError::Peer(PeerError::Handshake { message: 2 }))
    );
}

#[test]
fn calls_out_of_turn_and_small_buffers_are_local_errors_that_change_nothing() {
    let mut i = session(Role::Initiator, 1, 3, None);
    let mut r = session(Role::Responder, 2, 4, None);
    let (mut buf, mut got) = ([0u8; 256], [0u8; 256]);
    let turn = |expected| Err(NoiseError::Local(LocalError::OutOfTurn { expected }));
    assert_eq!(i.read_handshake(&[0; 32], &mut got), turn(Step::Write));
    assert_eq!(r.write_handshake(b"", &mut buf), turn(Step::Read));
    assert_eq!(i.encrypt(b"x", &mut buf), turn(Step::Write));
    assert_eq!(r.decrypt(&[0; 32], &mut got), turn(Step::Read));
    assert_eq!(
        i.write_handshake(b"", &mut buf[..31]),
        Err(NoiseError::Local(LocalError::BufferTooSmall { needed: 32 }))
    );
    let huge = vec![0u8; MAX_MESSAGE];
    let mut huge_out = vec![0u8; MAX_MESSAGE + 64];
    assert_eq!(
        i.write_handshake(&huge, &mut huge_out),
        Err(NoiseError::Local(LocalError::TooLong {
            len: MAX_MESSAGE + 32
        }))
    );
    assert_eq!(
        Session::new(Role::Initiator, &key(1), &key(3), None, &[b'x'; 65]).err(),
        Some(LocalError::BannerTooLong { len: 65 })
    );
    // None of that moved either session: the handshake still completes.
    let n = i.write_handshake(b"", &mut buf).unwrap();
    r.read_handshake(&buf[..n], &mut got).unwrap();
    let n = r.write_handshake(b"bob", &mut buf).unwrap();
    assert_eq!(
        i.read_handshake(&buf[..n], &mut got[..2]),
        Err(NoiseError::Local(LocalError::BufferTooSmall { needed: 3 }))
    );
    assert_eq!(i.read_handshake(&buf[..n], &mut got), Ok(3));
    let n = i.write_handshake(b"", &mut buf).unwrap();
    r.read_handshake(&buf[..n], &mut got).unwrap();
    assert_eq!(i.write_handshake(b"", &mut buf), turn(Step::Transport));
    assert_eq!(
        i.encrypt(b"hello", &mut buf[..20]),
        Err(NoiseError::Local(LocalError::BufferTooSmall { needed: 21 }))
    );
    let n = i.encrypt(b"hello", &mut buf).unwrap();
    assert_eq!(
        r.decrypt(&buf[..n], &mut got[..4]),
        Err(NoiseError::Local(LocalError::BufferTooSmall { needed: 5 }))
    );
    assert_eq!(r.decrypt(&buf[..n], &mut got), Ok(5));
    assert_eq!(
        i.encrypt(&huge, &mut huge_out),
        Err(NoiseError::Local(LocalError::TooLong {
            len: MAX_MESSAGE + TAG
        }))
    );
}

/// xorshift64*: a fixed sequence, so a failure names its seed and reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn random_bytes_at_every_step_are_refused_by_blame_and_never_panic() {
    let room = key(9);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut got = vec![0u8; MAX_MESSAGE + 64];
    // Lengths around each message's size, and past the Noise limit.
    let lengths = [
        0,
        1,
        15,
        16,
        31,
        32,
        47,
        48,
        49,
        64,
        96,
        97,
        200,
        MAX_MESSAGE + 1,
    ];
    for room in [None, Some(&room)] {
        // Step 0: the responder reads message 1; 1: the initiator reads message 2;
        // 2: the responder reads message 3; 3 and 4: transport, each way.
        for step in 0..5 {
            for &len in &lengths {
                let seed = rng.0;
                let junk = rng.bytes(len);
                let (mut i, mut r) = (
                    session(Role::Initiator, 1, 3, room),
                    session(Role::Responder, 2, 4, room),
                );
                let mut buf = [0u8; 256];
                for done in 0..step.min(3) {
                    let (w, rd) = if done % 2 == 0 {
                        (&mut i, &mut r)
                    } else {
                        (&mut r, &mut i)
                    };
                    let n = w.write_handshake(b"hi", &mut buf).unwrap();
                    rd.read_handshake(&buf[..n], &mut got).unwrap();
                }
                let target = if step % 2 == 0 { &mut r } else { &mut i };
                let result = if step < 3 {
                    target.read_handshake(&junk, &mut got)
                } else {
                    target.decrypt(&junk, &mut got)
                };
                // Garbage never passes: a psk0 message 1 with no tag, a message
                // 1 of XX shorter than a key, or any tagged message.
                let accepted_is_possible = step == 0 && room.is_none() && len >= 32;
                match result {
                    Ok(_) => assert!(accepted_is_possible, "seed {seed:#x} step {step} len {len}"),
                    Err(NoiseError::Peer(_)) => assert_eq!(target.step(), Step::Failed),
                    Err(e) => panic!("seed {seed:#x} step {step} len {len}: blamed on us: {e}"),
                }
            }
        }
    }
}

#[test]
fn a_session_is_the_size_the_readme_says() {
    // The node's memory test (tests/tests/node.rs) counts it in every peer slot.
    let session = std::mem::size_of::<Session>();
    eprintln!("Session: {session} bytes");
    if cfg!(target_pointer_width = "64") {
        assert_eq!(session, 712, "the session's size moved: update the README");
    }
}
