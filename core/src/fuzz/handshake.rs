//! The fuzz entry point over the Noise session: both roles, attacker-driven
//! and an honest pair with damage.

use core::fmt::{self, Write};

use super::Sink;
use crate::noise::{
    self, KEY_LEN, LocalError, MAX_MESSAGE, NoiseError, PeerError, Role, Session, Step,
};

/// The banner both sides bind into the prologue, unless the data picks another.
const HANDSHAKE_BANNER: &[u8] = b"MESHTALK/2\n";

/// The longest message or payload the data gives in one piece.
const MAX_PIECE: usize = 512;

/// Room for a handshake message, a payload, or a transport message of a piece.
const NOISE_ROOM: usize = MAX_PIECE + 128;

/// Calls one attacker-driven session takes at most.
const MAX_ATTACK_CALLS: usize = 8;

/// Transport messages an honest pair exchanges at most.
const MAX_TRANSPORT: u8 = 4;

/// A message one byte over Noise's limit, to reach the length checks.
static TOO_LONG: [u8; MAX_MESSAGE + 1] = [0; MAX_MESSAGE + 1];

/// Drives Noise sessions with data-chosen keys and checks what a session
/// promises: no panic; a [`NoiseError::Peer`] error leaves it [`Step::Failed`]
/// for good, blamed on the right message; a [`NoiseError::Local`] one changes
/// nothing; an honest exchange completes with one handshake hash and
/// round-trips transport messages; a damaged one never completes on both sides.
///
/// Byte 0 picks the mode (its low 2 bits) and flags, byte 1 varies the keys:
/// 0 is a responder and 1 an initiator fed the data as every message they
/// read; 2 and 3 an honest pair whose data says which message to damage.
pub fn handshake(data: &[u8]) {
    let mut data = Pieces { data };
    let (Some(mode), Some(vary)) = (data.byte(), data.byte()) else {
        return;
    };
    match mode & 3 {
        0 => attack(Role::Responder, mode, vary, &mut data),
        1 => attack(Role::Initiator, mode, vary, &mut data),
        _ => pair(mode, vary, &mut data),
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

/// The data read as bytes and as length-prefixed pieces.
struct Pieces<'d> {
    data: &'d [u8],
}

impl<'d> Pieces<'d> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    /// A piece: a length byte and that many bytes; 254 is [`TOO_LONG`], and 255
    /// the rest of the data (at most [`MAX_PIECE`] bytes).
    fn piece(&mut self) -> &'d [u8] {
        let n = match self.byte() {
            None => 0,
            Some(254) => return &TOO_LONG,
            Some(255) => MAX_PIECE,
            Some(n) => usize::from(n),
        };
        let (taken, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        taken
    }

    /// A length for a short output buffer, when the flag asks for misuse.
    fn short(&mut self, misuse: bool) -> Option<usize> {
        if !misuse {
            return None;
        }
        match self.byte()? {
            b if b & 1 == 1 => Some(usize::from(b >> 1)),
            _ => None,
        }
    }
}

/// One session call.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Call {
    Write,
    Read,
    Encrypt,
    Decrypt,
}

/// One session and what the blame of its errors depends on.
struct Side {
    session: Session,
    role: Role,
    room: bool,
    /// Handshake messages it has read.
    reads: u8,
}

impl Side {
    fn new(role: Role, vary: u8, room: Option<&[u8; KEY_LEN]>, banner: &[u8]) -> Option<Side> {
        let label = if role == Role::Initiator { 1 } else { 3 };
        let made = Session::new(
            role,
            &secret(label, vary),
            &secret(label + 1, vary),
            room,
            banner,
        );
        match made {
            Ok(session) => {
                assert!(
                    banner.len() <= crate::limits::MAX_BANNER,
                    "a long banner taken"
                );
                let step = if role == Role::Initiator {
                    Step::Write
                } else {
                    Step::Read
                };
                assert_eq!(session.step(), step, "a new session expects the wrong step");
                Some(Side {
                    session,
                    role,
                    room: room.is_some(),
                    reads: 0,
                })
            }
            Err(e) => {
                assert_eq!(
                    e,
                    LocalError::BannerTooLong { len: banner.len() },
                    "a new session refused"
                );
                show(&e);
                None
            }
        }
    }

    /// Makes `call` with `input` into `out` and checks the result; a short
    /// buffer from the data is tried first and must change nothing.
    fn call(
        &mut self,
        call: Call,
        input: &[u8],
        out: &mut [u8],
        short: Option<usize>,
    ) -> Option<usize> {
        if let Some(len) = short.filter(|&len| len < out.len()) {
            let (before, overhead) = (self.session.step(), self.session.overhead());
            match self.raw(call, input, &mut out[..len]) {
                Err(NoiseError::Local(LocalError::BufferTooSmall { needed })) => {
                    assert!(needed > len, "BufferTooSmall with room enough");
                    assert_eq!(
                        self.session.step(),
                        before,
                        "a local error changed the step"
                    );
                }
                result => return self.check(call, input, (before, overhead), result, len),
            }
        }
        let (before, overhead) = (self.session.step(), self.session.overhead());
        let result = self.raw(call, input, out);
        self.check(call, input, (before, overhead), result, out.len())
    }

    fn raw(&mut self, call: Call, input: &[u8], out: &mut [u8]) -> Result<usize, NoiseError> {
        let s = &mut self.session;
        match call {
            Call::Write => s.write_handshake(input, out),
            Call::Read => s.read_handshake(input, out),
            Call::Encrypt => s.encrypt(input, out),
            Call::Decrypt => s.decrypt(input, out),
        }
    }

    /// Checks one call's result against what the session promises.
    fn check(
        &mut self,
        call: Call,
        input: &[u8],
        (before, overhead): (Step, usize),
        result: Result<usize, NoiseError>,
        room: usize,
    ) -> Option<usize> {
        let after = self.session.step();
        let _ = write!(Sink::default(), "{:?}", self.session);
        if before == Step::Failed {
            assert_eq!(
                result,
                Err(LocalError::Failed.into()),
                "a failed session took a call"
            );
            return None;
        }
        let first = self.reads == 0;
        if call == Call::Read && !matches!(result, Err(NoiseError::Local(_))) {
            self.reads += 1;
        }
        match result {
            Ok(n) => {
                assert!(n <= room, "wrote past the buffer");
                assert_ne!(after, Step::Failed, "failed with no error");
                // The overhead said what a message adds to its payload.
                match call {
                    Call::Write | Call::Encrypt => {
                        assert_eq!(n, input.len() + overhead, "wrong length")
                    }
                    Call::Read | Call::Decrypt => {
                        assert_eq!(n + overhead, input.len(), "wrong length")
                    }
                }
                if after == Step::Transport {
                    assert!(
                        self.session.handshake_hash().is_some(),
                        "a transport with no hash"
                    );
                    assert!(
                        self.session.remote_static().is_some(),
                        "a transport with no peer key"
                    );
                }
                Some(n)
            }
            Err(NoiseError::Peer(e)) => {
                show(&e);
                assert!(
                    matches!(call, Call::Read | Call::Decrypt),
                    "our own write blamed on the peer"
                );
                let expected = if input.len() > MAX_MESSAGE {
                    PeerError::TooLong { len: input.len() }
                } else if call == Call::Decrypt {
                    PeerError::Integrity
                } else if self.room && first {
                    PeerError::RoomKey
                } else {
                    let message = match self.role {
                        Role::Initiator => 2,
                        Role::Responder => 1 + 2 * self.reads.saturating_sub(1),
                    };
                    PeerError::Handshake { message }
                };
                assert_eq!(e, expected, "a peer error blamed on the wrong thing");
                assert_dead(&mut self.session);
                None
            }
            Err(NoiseError::Local(e)) => {
                show(&e);
                assert_ne!(e, LocalError::Failed, "a live session answered Failed");
                assert_eq!(after, before, "a local error changed the step");
                None
            }
        }
    }

    /// Makes a call that does not fit the step: a local error that changes nothing.
    fn out_of_turn(&mut self, pick: u8) {
        let before = self.session.step();
        let call = match (before, pick % 3) {
            (Step::Failed, _) => return,
            (Step::Write, 0) | (Step::Transport, 0) => Call::Read,
            (Step::Read, 0) | (Step::Transport, _) => Call::Write,
            (_, 1) => Call::Encrypt,
            _ => Call::Decrypt,
        };
        let mut out = [0u8; 128];
        let result = self.raw(call, &[0; 96], &mut out);
        assert_eq!(
            result,
            Err(LocalError::OutOfTurn { expected: before }.into()),
            "a call out of turn"
        );
        assert_eq!(
            self.session.step(),
            before,
            "a call out of turn changed the step"
        );
    }
}

/// A failed session refuses every call with [`LocalError::Failed`] and shows no keys.
fn assert_dead(s: &mut Session) {
    let failed = Err(NoiseError::Local(LocalError::Failed));
    let mut out = [0u8; 128];
    assert_eq!(
        s.step(),
        Step::Failed,
        "a peer error did not fail the session"
    );
    assert_eq!(
        s.read_handshake(&[0; 96], &mut out),
        failed,
        "read after failing"
    );
    assert_eq!(
        s.write_handshake(&[], &mut out),
        failed,
        "write after failing"
    );
    assert_eq!(s.encrypt(b"x", &mut out), failed, "encrypt after failing");
    assert_eq!(
        s.decrypt(&TOO_LONG, &mut out),
        failed,
        "decrypt after failing"
    );
    assert!(
        s.remote_static().is_none(),
        "a failed session shows a peer key"
    );
    assert!(
        s.handshake_hash().is_none(),
        "a failed session shows a hash"
    );
    assert_eq!(s.overhead(), 0, "a failed session has an overhead");
}

/// Shows an error: its text must say something and be safe for a terminal.
fn show(e: &dyn fmt::Display) {
    let mut sink = Sink::default();
    let _ = write!(sink, "{e}");
    assert!(
        sink.len > 0 && sink.safe,
        "an error's text is empty or unsafe"
    );
}

/// One session of `role` against an attacker: the data is every message it
/// reads, every payload it writes, and the transport messages it decrypts.
///
/// Flags in `mode`: 4 a room key, 32 a banner from the data, 64 misuse calls.
fn attack(role: Role, mode: u8, vary: u8, data: &mut Pieces<'_>) {
    let room = secret(5, vary);
    let banner = if mode & 32 != 0 {
        data.piece()
    } else {
        HANDSHAKE_BANNER
    };
    let misuse = mode & 64 != 0;
    let Some(mut side) = Side::new(role, vary, (mode & 4 != 0).then_some(&room), banner) else {
        return;
    };
    let mut out = [0u8; NOISE_ROOM];
    for _ in 0..MAX_ATTACK_CALLS {
        if data.data.is_empty() {
            return;
        }
        if misuse {
            let pick = data.byte().unwrap_or(0);
            if pick & 1 == 1 {
                side.out_of_turn(pick >> 1);
            }
        }
        let short = data.short(misuse);
        let call = match side.session.step() {
            Step::Write => Call::Write,
            Step::Read => Call::Read,
            Step::Transport if data.byte().unwrap_or(0) & 1 == 1 => Call::Encrypt,
            Step::Transport => Call::Decrypt,
            Step::Failed => return,
        };
        let input = data.piece();
        side.call(call, input, &mut out, short);
    }
}

/// How the data damages one message of an honest pair.
#[derive(Clone, Copy)]
struct Damage {
    /// Which message: 0 to 2 the handshake's, 3 on the transport messages.
    at: u8,
    /// 0 flip bits, 1 truncate, 2 extend, 3 empty it (a transport message: replay it).
    kind: u8,
    /// Where to flip or truncate, or how much to add.
    pos: u8,
    /// The bits to flip, or the byte to add.
    mask: u8,
}

impl Damage {
    /// Damages `msg[..len]` in `buf`, returning the new length (never `len` with the same bytes).
    fn apply(self, buf: &mut [u8], len: usize) -> usize {
        match self.kind {
            0 if len > 0 => {
                let at = usize::from(self.pos) % len;
                buf[at] ^= self.mask.max(1);
                len
            }
            1 if len > 0 => usize::from(self.pos) % len,
            2 => {
                let end = (len + 1 + usize::from(self.pos % 16)).min(buf.len());
                buf[len..end].fill(self.mask);
                end
            }
            _ => 0,
        }
    }
}

/// An initiator and a responder with keys from the data exchange the handshake
/// and transport messages, one of which the data may damage.
///
/// Flags in `mode`: 4 the responder has a room key, 8 the initiator has one,
/// 16 theirs differ, 32 the responder binds another banner, 64 misuse calls.
fn pair(mode: u8, vary: u8, data: &mut Pieces<'_>) {
    let (room_r, room_i) = (
        secret(5, vary),
        secret(if mode & 16 != 0 { 6 } else { 5 }, vary),
    );
    let room_r = (mode & 4 != 0).then_some(&room_r);
    let room_i = (mode & 8 != 0).then_some(&room_i);
    let banner_r = if mode & 32 != 0 {
        data.piece()
    } else {
        HANDSHAKE_BANNER
    };
    let misuse = mode & 64 != 0;
    let damage = Damage {
        at: data.byte().unwrap_or(0) % 8,
        kind: data.byte().unwrap_or(0) % 4,
        pos: data.byte().unwrap_or(0),
        mask: data.byte().unwrap_or(0),
    };
    let (Some(mut i), Some(mut r)) = (
        Side::new(Role::Initiator, vary, room_i, HANDSHAKE_BANNER),
        Side::new(Role::Responder, vary, room_r, banner_r),
    ) else {
        return;
    };
    let matched = room_i == room_r && banner_r == HANDSHAKE_BANNER;
    let mut msg = [0u8; NOISE_ROOM];
    let mut got = [0u8; NOISE_ROOM];

    // The handshake: messages 1 and 3 from the initiator, 2 from the responder.
    for at in 0..3u8 {
        let (from, to) = if at % 2 == 0 {
            (&mut i, &mut r)
        } else {
            (&mut r, &mut i)
        };
        let payload = payload(from, Call::Write, data);
        if misuse {
            from.out_of_turn(data.byte().unwrap_or(0));
            to.out_of_turn(data.byte().unwrap_or(0));
        }
        let short = data.short(misuse);
        // An invariant, not input: an honest side in its turn, with a payload of
        // at most MAX_PIECE bytes and a buffer NOISE_ROOM long, always writes.
        let Some(n) = from.call(Call::Write, payload, &mut msg, short) else {
            panic!("an honest handshake message was not written");
        };
        let damaged = damage.at == at;
        let n = if damaged {
            damage.apply(&mut msg, n)
        } else {
            n
        };
        let short = data.short(misuse);
        let read = to.call(Call::Read, &msg[..n], &mut got, short);
        match read {
            Some(len) if matched && damage.at > at => {
                assert_eq!(&got[..len], payload, "a payload changed")
            }
            Some(_) => {}
            None => {
                assert!(!matched || damage.at <= at, "an honest handshake failed");
                if room_r.is_some() && room_i != room_r {
                    assert_eq!(at, 0, "a node without our room key passed message 1");
                }
                return;
            }
        }
    }
    // Every message was read: that takes the same keys, banner and bytes.
    assert!(
        matched && damage.at >= 3,
        "a damaged or mismatched handshake completed"
    );
    let steps = (i.session.step(), r.session.step());
    assert_eq!(
        steps,
        (Step::Transport, Step::Transport),
        "an honest handshake did not finish"
    );
    assert_eq!(
        i.session.handshake_hash(),
        r.session.handshake_hash(),
        "the two sides' handshake hashes differ"
    );
    assert_eq!(
        i.session.remote_static(),
        Some(&noise::public_key(&secret(3, vary))),
        "the initiator took another static key"
    );
    assert_eq!(
        r.session.remote_static(),
        Some(&noise::public_key(&secret(1, vary))),
        "the responder took another static key"
    );

    // Transport messages, either way; the damaged one must fail its decrypt.
    let count = data.byte().unwrap_or(0);
    for k in 0..(count % (MAX_TRANSPORT + 1)) {
        let (from, to) = if count >> (4 + k) & 1 == 0 {
            (&mut i, &mut r)
        } else {
            (&mut r, &mut i)
        };
        let text = payload(from, Call::Encrypt, data);
        let short = data.short(misuse);
        // An invariant, not input: a finished session encrypts at most
        // MAX_PIECE bytes into NOISE_ROOM, which holds them and the tag.
        let Some(n) = from.call(Call::Encrypt, text, &mut msg, short) else {
            panic!("a transport message was not written");
        };
        if damage.at != 3 + k {
            let short = data.short(misuse);
            let len = to.call(Call::Decrypt, &msg[..n], &mut got, short);
            assert_eq!(
                len.map(|len| &got[..len]),
                Some(text),
                "a message did not round-trip"
            );
            continue;
        }
        let n = if damage.kind == 3 {
            // A replay: the first copy is read, the second refused.
            let len = to.call(Call::Decrypt, &msg[..n], &mut got, None);
            assert_eq!(
                len.map(|len| &got[..len]),
                Some(text),
                "a message did not round-trip"
            );
            n
        } else {
            damage.apply(&mut msg, n)
        };
        let read = to.call(Call::Decrypt, &msg[..n], &mut got, None);
        assert!(read.is_none(), "a tampered transport message was read");
        // The reader's failure is its own: the sender still encrypts.
        let sent = from.call(Call::Encrypt, b"after", &mut msg, None);
        assert!(sent.is_some(), "a reader's failure failed the sender");
        return;
    }
}

/// A payload from the data for `side`'s next `call`; a [`TOO_LONG`] one is
/// tried first (a local error that changes nothing), then sent empty.
fn payload<'d>(side: &mut Side, call: Call, data: &mut Pieces<'d>) -> &'d [u8] {
    let piece = data.piece();
    if piece.len() <= MAX_PIECE {
        return piece;
    }
    let before = side.session.step();
    let mut out = [0u8; 16];
    let result = side.raw(call, piece, &mut out);
    assert!(
        matches!(result, Err(NoiseError::Local(LocalError::TooLong { .. }))),
        "a payload over a Noise message was not refused as too long"
    );
    assert_eq!(
        side.session.step(),
        before,
        "a local error changed the step"
    );
    &[]
}
