//! Secure links' cost: meshtalk's Noise session (`meshtalk_core::noise::Session`,
//! clatter on RustCrypto) against `ring`'s ChaCha20-Poly1305 and `snow`, side by
//! side in one process (issue 13's targets).
//!
//! - `transport/<size>`: one message encrypted by one side and decrypted by the
//!   other, for plaintexts of 64 B, 1 KiB and 4 KiB:
//!   - `meshtalk`: `Session::encrypt` on the initiator, `Session::decrypt` on
//!     the responder, after a real XX handshake;
//!   - `ring`: `ring::aead` ChaCha20-Poly1305, `seal_in_place_separate_tag` then
//!     `open_in_place`, with a Noise nonce (a counter) per message;
//!   - `rustcrypto`: the `chacha20poly1305` crate clatter calls, the same way:
//!     against `meshtalk`, what clatter and `Session` add to the primitive;
//!   - `snow`: snow's transport state after the same handshake.
//!
//!   `Session` copies the plaintext into the message buffer, then encrypts in
//!   place, and copies the message into the plaintext buffer, then decrypts in
//!   place; `ring` and `rustcrypto` are given the same two copies, on the same
//!   buffers, so the ratios compare the cryptography and the calls around it.
//! - `handshake/<pattern>/<part>`: XX, and XXpsk0 (a room key), with the
//!   payloads meshtalk sends (none in message 1, a hello in 2 and 3):
//!   - `initiator`: its share, from a new session: write 1, read 2, write 3;
//!   - `responder`: its share, from a new session: read 1, write 2, read 3;
//!   - `whole`: both sides, the three messages between them.
//!
//!   The keys are fixed, so every handshake writes the same bytes: one side's
//!   share is timed against the other side's messages recorded once (the bench
//!   checks snow writes the very same bytes). meshtalk's share includes
//!   `Session::new`, which derives both public keys (two base-point
//!   multiplications); `new` alone is shown too (`handshake/new`).
//!
//! Ratios are times (above 1 = slower), each the median over rounds of the
//! per-round ratio. Run: `cargo bench -p meshtalk-benches --bench noise [filter]`.

mod paired;

use std::fmt::Write;

use chacha20poly1305::{AeadInPlace, ChaCha20Poly1305, KeyInit};
use meshtalk_core::noise::{self, MAX_PROLOGUE, Role, Session, Step, TAG};
use paired::{Case, Harness};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};

const SIZES: [usize; 3] = [64, 1024, 4096];
/// Messages per run of a transport case.
const BATCH: usize = 256;
/// The banner the dialler sends, bound into the prologue.
const BANNER: &[u8] = b"MESHTALK/2\n";
const XX: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
const XX_PSK0: &str = "Noise_XXpsk0_25519_ChaChaPoly_BLAKE2s";
/// The payloads of messages 1, 2 and 3 (meshtalk sends nothing in message 1,
/// a hello with the node's name in 2 and 3).
const PAYLOADS: [&[u8]; 3] = [
    b"",
    b"hello: bob, meshtalk 0.1",
    b"hello: alice, meshtalk 0.1",
];
/// The room key of the XXpsk0 handshakes.
const ROOM: [u8; 32] = [0x5a; 32];

/// A distinct, fixed 32-byte key per `seed`.
fn key(seed: u8) -> [u8; 32] {
    std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8 * 7))
}

/// `size` bytes, not all alike.
fn plaintext(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 131 + 7) as u8).collect()
}

/// Noise's nonce for ChaChaPoly: four zero bytes, then the counter little-endian.
fn noise_nonce(n: u64) -> [u8; 12] {
    let mut nonce = [0; 12];
    nonce[4..].copy_from_slice(&n.to_le_bytes());
    nonce
}

// ---- handshakes ----

/// Our session: identity 1 and ephemeral 3 initiate, identity 2 and ephemeral 4 respond.
fn session(role: Role, room: Option<&[u8; 32]>) -> Session {
    let (identity, ephemeral) = match role {
        Role::Initiator => (key(1), key(3)),
        Role::Responder => (key(2), key(4)),
    };
    Session::new(role, &identity, &ephemeral, room, BANNER).expect("the banner fits")
}

/// snow's side with the same keys and prologue as [`session`].
fn snow_side(role: Role, room: Option<&[u8; 32]>) -> snow::HandshakeState {
    let mut prologue = [0; MAX_PROLOGUE];
    let len = noise::prologue(BANNER, &mut prologue).expect("the banner fits");
    let (identity, ephemeral) = match role {
        Role::Initiator => (key(1), key(3)),
        Role::Responder => (key(2), key(4)),
    };
    let name = if room.is_some() { XX_PSK0 } else { XX };
    let mut builder = snow::Builder::new(name.parse().expect("a pattern snow knows"))
        .local_private_key(&identity)
        .expect("32 bytes")
        .prologue(&prologue[..len])
        .expect("once")
        .fixed_ephemeral_key_for_testing_only(&ephemeral);
    if let Some(room) = room {
        builder = builder.psk(0, room).expect("psk0");
    }
    match role {
        Role::Initiator => builder.build_initiator(),
        Role::Responder => builder.build_responder(),
    }
    .expect("builds")
}

/// The initiator's share, on the responder's message 2 as recorded.
fn ours_initiator(room: Option<&[u8; 32]>, msg2: &[u8]) -> Session {
    let (mut buf, mut got) = ([0u8; 256], [0u8; 256]);
    let mut s = session(Role::Initiator, room);
    s.write_handshake(PAYLOADS[0], &mut buf).expect("message 1");
    s.read_handshake(msg2, &mut got).expect("message 2");
    s.write_handshake(PAYLOADS[2], &mut buf).expect("message 3");
    s
}

/// The responder's share, on the initiator's messages 1 and 3 as recorded.
fn ours_responder(room: Option<&[u8; 32]>, msg1: &[u8], msg3: &[u8]) -> Session {
    let (mut buf, mut got) = ([0u8; 256], [0u8; 256]);
    let mut s = session(Role::Responder, room);
    s.read_handshake(msg1, &mut got).expect("message 1");
    s.write_handshake(PAYLOADS[1], &mut buf).expect("message 2");
    s.read_handshake(msg3, &mut got).expect("message 3");
    s
}

/// A whole handshake between two sessions; returns them (in transport) and
/// the three messages.
fn ours_whole(room: Option<&[u8; 32]>) -> (Session, Session, [Vec<u8>; 3]) {
    let (mut buf, mut got) = ([0u8; 256], [0u8; 256]);
    let mut i = session(Role::Initiator, room);
    let mut r = session(Role::Responder, room);
    let n = i.write_handshake(PAYLOADS[0], &mut buf).expect("message 1");
    let m1 = buf[..n].to_vec();
    r.read_handshake(&m1, &mut got).expect("message 1");
    let n = r.write_handshake(PAYLOADS[1], &mut buf).expect("message 2");
    let m2 = buf[..n].to_vec();
    i.read_handshake(&m2, &mut got).expect("message 2");
    let n = i.write_handshake(PAYLOADS[2], &mut buf).expect("message 3");
    let m3 = buf[..n].to_vec();
    r.read_handshake(&m3, &mut got).expect("message 3");
    (i, r, [m1, m2, m3])
}

fn snow_initiator(room: Option<&[u8; 32]>, msg2: &[u8]) -> snow::HandshakeState {
    let (mut buf, mut got) = ([0u8; 256], [0u8; 256]);
    let mut s = snow_side(Role::Initiator, room);
    s.write_message(PAYLOADS[0], &mut buf).expect("message 1");
    s.read_message(msg2, &mut got).expect("message 2");
    s.write_message(PAYLOADS[2], &mut buf).expect("message 3");
    s
}

fn snow_responder(room: Option<&[u8; 32]>, msg1: &[u8], msg3: &[u8]) -> snow::HandshakeState {
    let (mut buf, mut got) = ([0u8; 256], [0u8; 256]);
    let mut s = snow_side(Role::Responder, room);
    s.read_message(msg1, &mut got).expect("message 1");
    s.write_message(PAYLOADS[1], &mut buf).expect("message 2");
    s.read_message(msg3, &mut got).expect("message 3");
    s
}

fn snow_whole(
    room: Option<&[u8; 32]>,
) -> (snow::HandshakeState, snow::HandshakeState, [Vec<u8>; 3]) {
    let (mut buf, mut got) = ([0u8; 256], [0u8; 256]);
    let mut i = snow_side(Role::Initiator, room);
    let mut r = snow_side(Role::Responder, room);
    let n = i.write_message(PAYLOADS[0], &mut buf).expect("message 1");
    let m1 = buf[..n].to_vec();
    r.read_message(&m1, &mut got).expect("message 1");
    let n = r.write_message(PAYLOADS[1], &mut buf).expect("message 2");
    let m2 = buf[..n].to_vec();
    i.read_message(&m2, &mut got).expect("message 2");
    let n = i.write_message(PAYLOADS[2], &mut buf).expect("message 3");
    let m3 = buf[..n].to_vec();
    r.read_message(&m3, &mut got).expect("message 3");
    (i, r, [m1, m2, m3])
}

/// A byte of a finished session, so the optimiser keeps the work.
fn hash_byte(s: &Session) -> u64 {
    assert_eq!(s.step(), Step::Transport);
    u64::from(s.handshake_hash().expect("done")[0])
}

fn snow_hash_byte(s: &snow::HandshakeState) -> u64 {
    assert!(s.is_handshake_finished());
    u64::from(s.get_handshake_hash()[0])
}

// ---- transport: each runs BATCH messages of `plain`, encrypted then decrypted ----
// (never inlined, so that callgrind can count one alone: --toggle-collect=noise::transport_ours)

#[inline(never)]
fn transport_ours(
    tx: &mut Session,
    rx: &mut Session,
    plain: &[u8],
    wire: &mut [u8],
    out: &mut [u8],
) -> u64 {
    let mut sum = 0;
    for _ in 0..BATCH {
        let n = tx.encrypt(plain, wire).expect("encrypts");
        let m = rx.decrypt(&wire[..n], out).expect("decrypts");
        sum += u64::from(out[m - 1]);
    }
    sum
}

/// As `Session` does: the plaintext copied into the message buffer and sealed
/// there, the message copied into the plaintext buffer and opened there.
#[inline(never)]
fn transport_ring(
    key: &LessSafeKey,
    n: &mut u64,
    plain: &[u8],
    wire: &mut [u8],
    out: &mut [u8],
) -> u64 {
    let size = plain.len();
    let mut sum = 0;
    for _ in 0..BATCH {
        wire[..size].copy_from_slice(plain);
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(noise_nonce(*n)),
                Aad::empty(),
                &mut wire[..size],
            )
            .expect("seals");
        wire[size..size + TAG].copy_from_slice(tag.as_ref());
        out[..size + TAG].copy_from_slice(&wire[..size + TAG]);
        let opened = key
            .open_in_place(
                Nonce::assume_unique_for_key(noise_nonce(*n)),
                Aad::empty(),
                &mut out[..size + TAG],
            )
            .expect("opens");
        sum += u64::from(opened[size - 1]);
        *n += 1;
    }
    sum
}

/// As clatter does for `Session`: a cipher made from the key per message, the
/// same copies as [`transport_ring`].
#[inline(never)]
fn transport_rustcrypto(
    key: &[u8; 32],
    n: &mut u64,
    plain: &[u8],
    wire: &mut [u8],
    out: &mut [u8],
) -> u64 {
    let size = plain.len();
    let mut sum = 0;
    for _ in 0..BATCH {
        let nonce = noise_nonce(*n).into();
        wire[..size].copy_from_slice(plain);
        let tag = ChaCha20Poly1305::new(key.into())
            .encrypt_in_place_detached(&nonce, &[], &mut wire[..size])
            .expect("encrypts");
        wire[size..size + TAG].copy_from_slice(&tag);
        out[..size].copy_from_slice(&wire[..size]);
        ChaCha20Poly1305::new(key.into())
            .decrypt_in_place_detached(&nonce, &[], &mut out[..size], wire[size..size + TAG].into())
            .expect("decrypts");
        sum += u64::from(out[size - 1]);
        *n += 1;
    }
    sum
}

#[inline(never)]
fn transport_snow(
    tx: &mut snow::TransportState,
    rx: &mut snow::TransportState,
    plain: &[u8],
    wire: &mut [u8],
    out: &mut [u8],
) -> u64 {
    let mut sum = 0;
    for _ in 0..BATCH {
        let n = tx.write_message(plain, wire).expect("encrypts");
        let m = rx.read_message(&wire[..n], out).expect("decrypts");
        sum += u64::from(out[m - 1]);
    }
    sum
}

// ---- the report ----

fn label(size: usize) -> String {
    if size >= 1024 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

/// A ratio of times from the harness's paired ratio (reference time / this time).
fn slower(speedup: f64) -> f64 {
    1.0 / speedup
}

fn main() {
    let harness = Harness::from_env();
    let mut transport = String::from(
        "| plaintext | implementation | ns/msg (encrypt + decrypt) | plaintext MB/s | time / ring | time / rustcrypto |\n\
         |---:|---|---:|---:|---:|---:|\n",
    );
    let mut handshake = String::from(
        "| pattern | part | implementation | µs | time / snow |\n|---|---|---|---:|---:|\n",
    );

    for size in SIZES {
        let group = format!("transport/{}", label(size));
        if !harness.wants(&group) {
            continue;
        }
        let plain = plaintext(size);
        let bufs = || (vec![0u8; size + TAG], vec![0u8; size + TAG]);
        let ((mut w1, mut o1), (mut w2, mut o2), (mut w3, mut o3), (mut w4, mut o4)) =
            (bufs(), bufs(), bufs(), bufs());

        let (mut tx, mut rx, _) = ours_whole(None);
        let (i, r, _) = snow_whole(None);
        let (mut stx, mut srx) = (
            i.into_transport_mode().expect("done"),
            r.into_transport_mode().expect("done"),
        );
        let raw = key(9);
        let ring_key =
            LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &raw).expect("32 bytes"));
        let (mut ring_n, mut rc_n) = (0u64, 0u64);

        // Every contestant gets the plaintext back; ring and RustCrypto write the same bytes.
        let expect = u64::from(plain[size - 1]) * BATCH as u64;
        assert_eq!(
            transport_ours(&mut tx, &mut rx, &plain, &mut w1, &mut o1),
            expect
        );
        assert_eq!(o1[..size], plain[..]);
        assert_eq!(
            transport_ring(&ring_key, &mut ring_n, &plain, &mut w2, &mut o2),
            expect
        );
        assert_eq!(
            transport_rustcrypto(&raw, &mut rc_n, &plain, &mut w3, &mut o3),
            expect
        );
        assert_eq!(w2, w3, "ring and RustCrypto agree on the last message");
        assert_eq!(o2[..size], plain[..]);
        assert_eq!(o3[..size], plain[..]);
        assert_eq!(
            transport_snow(&mut stx, &mut srx, &plain, &mut w4, &mut o4),
            expect
        );
        assert_eq!(o4[..size], plain[..]);

        let mut cases = [
            Case::new("meshtalk", || {
                transport_ours(&mut tx, &mut rx, &plain, &mut w1, &mut o1)
            }),
            Case::new("ring", || {
                transport_ring(&ring_key, &mut ring_n, &plain, &mut w2, &mut o2)
            }),
            Case::new("rustcrypto", || {
                transport_rustcrypto(&raw, &mut rc_n, &plain, &mut w3, &mut o3)
            }),
            Case::new("snow", || {
                transport_snow(&mut stx, &mut srx, &plain, &mut w4, &mut o4)
            }),
        ];
        for o in harness.run(&mut cases, &["ring", "rustcrypto"]) {
            let per = o.secs / BATCH as f64;
            let _ = writeln!(
                transport,
                "| {} | {} | {:.0} | {:.0} | {:.2} | {:.2} |",
                label(size),
                o.name,
                per * 1e9,
                size as f64 / per / 1e6,
                slower(o.ratios[0]),
                slower(o.ratios[1]),
            );
        }
        eprintln!("{group} done");
    }

    for (pattern, room) in [("XX", None), ("XXpsk0", Some(&ROOM))] {
        let group = |part: &str| format!("handshake/{pattern}/{part}");
        if !["initiator", "responder", "whole"]
            .iter()
            .any(|part| harness.wants(&group(part)))
        {
            continue;
        }
        // The messages every handshake writes, by us and by snow alike.
        let (i, r, wire) = ours_whole(room);
        let (si, sr, snow_wire) = snow_whole(room);
        assert_eq!(wire, snow_wire, "{pattern}: snow writes the same handshake");
        assert_eq!(i.handshake_hash(), r.handshake_hash());
        assert_eq!(
            i.handshake_hash().map(|h| &h[..]),
            Some(si.get_handshake_hash())
        );
        assert_eq!(
            i.handshake_hash().map(|h| &h[..]),
            Some(sr.get_handshake_hash())
        );
        let [m1, m2, m3] = &wire;
        assert_eq!(
            ours_initiator(room, m2).handshake_hash(),
            i.handshake_hash()
        );
        assert_eq!(
            ours_responder(room, m1, m3).handshake_hash(),
            r.handshake_hash()
        );

        let parts: [(&str, Case<'_>, Case<'_>); 3] = [
            (
                "initiator (write 1, read 2, write 3)",
                Case::new("meshtalk", || hash_byte(&ours_initiator(room, m2))),
                Case::new("snow", || snow_hash_byte(&snow_initiator(room, m2))),
            ),
            (
                "responder (read 1, write 2, read 3)",
                Case::new("meshtalk", || hash_byte(&ours_responder(room, m1, m3))),
                Case::new("snow", || snow_hash_byte(&snow_responder(room, m1, m3))),
            ),
            (
                "whole (both sides)",
                Case::new("meshtalk", || hash_byte(&ours_whole(room).0)),
                Case::new("snow", || snow_hash_byte(&snow_whole(room).0)),
            ),
        ];
        for (part, ours, theirs) in parts {
            let group = group(part.split(' ').next().unwrap_or(part));
            if !harness.wants(&group) {
                continue;
            }
            let mut cases = [ours, theirs];
            for o in harness.run(&mut cases, &["snow"]) {
                let _ = writeln!(
                    handshake,
                    "| {pattern} | {part} | {} | {:.1} | {:.2} |",
                    o.name,
                    o.secs * 1e6,
                    slower(o.ratios[0]),
                );
            }
            eprintln!("{group} done");
        }
    }

    // What `Session::new` alone costs: both public keys derived from the
    // secrets; snow's builder does the same.
    if harness.wants("handshake/new") {
        let mut cases = [
            Case::new("meshtalk", || {
                u64::from(session(Role::Initiator, None).overhead() as u8)
            }),
            Case::new("snow", || {
                u64::from(snow_side(Role::Initiator, None).is_initiator())
            }),
        ];
        for o in harness.run(&mut cases, &["snow"]) {
            let _ = writeln!(
                handshake,
                "| XX | a new session alone (both public keys) | {} | {:.1} | {:.2} |",
                o.name,
                o.secs * 1e6,
                slower(o.ratios[0]),
            );
        }
        eprintln!("handshake/new done");
    }

    println!("\n### Transport\n\n{transport}\n### Handshake\n\n{handshake}");
}
