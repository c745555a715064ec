//! Secure links: one Noise session per peer, sans-I/O and without allocation.
//!
//! A [`Session`] runs `Noise_XX_25519_ChaChaPoly_BLAKE2s`, or with a room key
//! `Noise_XXpsk0_25519_ChaChaPoly_BLAKE2s`, on [clatter]. The shell hands in
//! every secret (our static key, 32 fresh bytes for the ephemeral key, the room
//! key); the session writes and reads handshake messages in caller buffers,
//! then encrypts and decrypts transport messages in caller buffers.
//!
//! ```text
//! initiator                               responder
//! write_handshake(b"")     -- msg 1 -->   read_handshake       (psk0: refused here
//!                                                               without the room key)
//! read_handshake           <-- msg 2 --   write_handshake(hello)
//! write_handshake(hello)   -- msg 3 -->   read_handshake
//! encrypt / decrypt        <== transport messages ==>  encrypt / decrypt
//! ```
//!
//! A direct message relayed across the mesh is instead a [`sealed`] message:
//! one `Noise_X` message to the recipient's static key, which relays cannot read.
//!
//! [clatter]: https://docs.rs/clatter

mod error;
mod fingerprint;
mod pool;
pub mod sealed;
mod suite;

use clatter::bytearray::ByteArray;
use clatter::traits::Handshaker;

pub use error::{LocalError, NoiseError, PeerError};
pub use fingerprint::{Fingerprint, node_id};
pub use pool::Pool;
use suite::{Cipher, Handshake};

use crate::limits::MAX_BANNER;

/// Bytes a transport message adds to its plaintext (the Poly1305 tag).
pub const TAG: usize = 16;
/// The longest Noise message, handshake or transport (the Noise spec's limit).
pub const MAX_MESSAGE: usize = 65_535;
/// The length of every key: static, ephemeral, room key, handshake hash.
pub const KEY_LEN: usize = 32;
/// What the prologue begins with, before the banner line both sides sent: it
/// binds the protocol version, so a handshake between versions cannot succeed.
pub const PROLOGUE_LABEL: &[u8] = b"meshtalk/2 noise\0";
/// The longest prologue [`Session::new`] builds: the label and a whole banner.
pub const MAX_PROLOGUE: usize = PROLOGUE_LABEL.len() + MAX_BANNER;

/// Which side of the handshake this session is: the side that dialled
/// initiates (its banner and message 1 go out together).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Writes message 1 (the side that connected).
    Initiator,
    /// Reads message 1 (the side that accepted).
    Responder,
}

/// What the session expects next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// [`Session::write_handshake`]: our handshake message is due.
    Write,
    /// [`Session::read_handshake`]: the peer's handshake message is due.
    Read,
    /// The handshake is done: [`Session::encrypt`] and [`Session::decrypt`].
    Transport,
    /// A peer error ended the session; its keys are wiped.
    Failed,
}

impl core::fmt::Display for Step {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Step::Write => "to write a handshake message",
            Step::Read => "to read a handshake message",
            Step::Transport => "transport messages (the handshake is done)",
            Step::Failed => "nothing (it failed)",
        })
    }
}

/// One peer's Noise session: the handshake, then the two transport ciphers.
///
/// Sans-I/O: it never reads a socket, a clock or an RNG. After a peer error it
/// is [`Step::Failed`] for good; after a local error it is unchanged.
pub struct Session {
    state: State,
}

/// Shows the step only: a session's keys never reach a log.
impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("step", &self.step())
            .finish()
    }
}

// No alloc, so no Box: each link holds one fixed slot, the size of a handshake,
// and after the handshake the 160-byte transport lives in it.
#[allow(clippy::large_enum_variant)]
enum State {
    Handshake {
        hs: Handshake,
        role: Role,
        room: bool,
        /// Handshake messages done so far, both sides' (0 to 2).
        done: u8,
    },
    Transport(Transport),
    Failed,
}

struct Transport {
    tx: Cipher,
    rx: Cipher,
    remote_static: [u8; KEY_LEN],
    hash: [u8; KEY_LEN],
}

/// The 32-byte key of the secret `secret`: a node's public static key, which
/// peers see and pin.
pub fn public_key(secret: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    suite::public_key(secret)
}

/// Writes the prologue of a meshtalk link into `out`: [`PROLOGUE_LABEL`] then
/// the banner line (newline included) the dialling side sent.
pub fn prologue(banner: &[u8], out: &mut [u8; MAX_PROLOGUE]) -> Result<usize, LocalError> {
    if banner.len() > MAX_BANNER {
        return Err(LocalError::BannerTooLong { len: banner.len() });
    }
    let len = PROLOGUE_LABEL.len() + banner.len();
    let (label, rest) = out.split_at_mut(PROLOGUE_LABEL.len());
    label.copy_from_slice(PROLOGUE_LABEL);
    if let Some(tail) = rest.get_mut(..banner.len()) {
        tail.copy_from_slice(banner);
    }
    Ok(len)
}

impl Session {
    /// A session for a meshtalk link: `identity` is our static secret,
    /// `ephemeral` 32 fresh random bytes from the shell (never reuse them),
    /// `room_key` selects XXpsk0 (plain XX without), and the prologue binds
    /// [`PROLOGUE_LABEL`] and `banner`, the banner line the dialler sent.
    pub fn new(
        role: Role,
        identity: &[u8; KEY_LEN],
        ephemeral: &[u8; KEY_LEN],
        room_key: Option<&[u8; KEY_LEN]>,
        banner: &[u8],
    ) -> Result<Session, LocalError> {
        let mut buf = [0; MAX_PROLOGUE];
        let len = prologue(banner, &mut buf)?;
        let bound = buf.get(..len).unwrap_or_default();
        Ok(Session::with_prologue(
            role, identity, ephemeral, room_key, bound,
        ))
    }

    /// [`Session::new`] with any prologue: for test vectors and for checking
    /// against other Noise implementations; meshtalk links use `new`.
    pub fn with_prologue(
        role: Role,
        identity: &[u8; KEY_LEN],
        ephemeral: &[u8; KEY_LEN],
        room_key: Option<&[u8; KEY_LEN]>,
        prologue: &[u8],
    ) -> Session {
        let initiator = role == Role::Initiator;
        let s = Some(suite::pair(identity));
        let e = Some(suite::pair(ephemeral));
        let state = match Handshake::new(
            suite::pattern(room_key.is_some()),
            prologue,
            initiator,
            s,
            e,
            None,
            None,
        ) {
            Ok(mut hs) => {
                if let Some(key) = room_key {
                    hs.push_psk(key);
                }
                State::Handshake {
                    hs,
                    role,
                    room: room_key.is_some(),
                    done: 0,
                }
            }
            // Only a post-quantum pattern is refused, and XX is not one.
            Err(_) => State::Failed,
        };
        Session { state }
    }

    /// What the session expects next.
    pub fn step(&self) -> Step {
        match &self.state {
            State::Handshake { hs, .. } if hs.is_write_turn() => Step::Write,
            State::Handshake { .. } => Step::Read,
            State::Transport(_) => Step::Transport,
            State::Failed => Step::Failed,
        }
    }

    /// The bytes the next handshake message adds to its payload (keys and tags),
    /// or [`TAG`] once in transport; 0 when failed.
    pub fn overhead(&self) -> usize {
        match &self.state {
            State::Handshake { hs, .. } => hs.get_next_message_overhead().unwrap_or(0),
            State::Transport(_) => TAG,
            State::Failed => 0,
        }
    }

    /// The peer's static public key, once the handshake is done (to pin it).
    pub fn remote_static(&self) -> Option<&[u8; KEY_LEN]> {
        match &self.state {
            State::Transport(t) => Some(&t.remote_static),
            _ => None,
        }
    }

    /// The handshake hash, once done: equal on both sides, unique to this session.
    pub fn handshake_hash(&self) -> Option<&[u8; KEY_LEN]> {
        match &self.state {
            State::Transport(t) => Some(&t.hash),
            _ => None,
        }
    }

    /// Writes our next handshake message, carrying `payload`, into `out`, and
    /// returns its length. The last one (message 3, the initiator's) moves the
    /// session to [`Step::Transport`]. Message 1's payload is sent in the clear
    /// (XX) or under the room key only (XXpsk0), so meshtalk leaves it empty.
    pub fn write_handshake(&mut self, payload: &[u8], out: &mut [u8]) -> Result<usize, NoiseError> {
        let State::Handshake { hs, done, .. } = &mut self.state else {
            return Err(self.out_of_turn());
        };
        if !hs.is_write_turn() {
            return Err(LocalError::OutOfTurn {
                expected: Step::Read,
            }
            .into());
        }
        let needed = payload.len() + hs.get_next_message_overhead().unwrap_or(0);
        if needed > MAX_MESSAGE {
            return Err(LocalError::TooLong { len: needed }.into());
        }
        if out.len() < needed {
            return Err(LocalError::BufferTooSmall { needed }.into());
        }
        match hs.write_message(payload, out) {
            Ok(len) => {
                *done += 1;
                self.finish_if_done();
                Ok(len)
            }
            Err(_) => {
                // Every precondition is checked above; the keys are ours and
                // valid, so clatter has nothing left to refuse. Fail closed.
                self.state = State::Failed;
                Err(LocalError::Exhausted.into())
            }
        }
    }

    /// Reads the peer's next handshake message `message`, writes its payload
    /// into `out` and returns the payload's length. The last one (message 3,
    /// read by the responder) moves the session to [`Step::Transport`].
    pub fn read_handshake(&mut self, message: &[u8], out: &mut [u8]) -> Result<usize, NoiseError> {
        let State::Handshake { hs, done, room, .. } = &mut self.state else {
            return Err(self.out_of_turn());
        };
        if hs.is_write_turn() {
            return Err(LocalError::OutOfTurn {
                expected: Step::Write,
            }
            .into());
        }
        let number = *done + 1;
        // The first message we read: message 1 for the responder, 2 for the initiator.
        let first = *done <= 1;
        let room = *room;
        if message.len() > MAX_MESSAGE {
            return Err(self.fail(PeerError::TooLong { len: message.len() }));
        }
        let overhead = hs.get_next_message_overhead().unwrap_or(0);
        let guilty = if room && first {
            PeerError::RoomKey
        } else {
            PeerError::Handshake { message: number }
        };
        let Some(needed) = message.len().checked_sub(overhead) else {
            return Err(self.fail(guilty));
        };
        if out.len() < needed {
            return Err(LocalError::BufferTooSmall { needed }.into());
        }
        match hs.read_message(message, out) {
            Ok(len) => {
                *done += 1;
                self.finish_if_done();
                Ok(len)
            }
            Err(_) => Err(self.fail(guilty)),
        }
    }

    /// Encrypts `plaintext` as one transport message into `out` (it needs
    /// `plaintext.len() + TAG` bytes) and returns the message's length.
    pub fn encrypt(&mut self, plaintext: &[u8], out: &mut [u8]) -> Result<usize, NoiseError> {
        let State::Transport(t) = &mut self.state else {
            return Err(self.out_of_turn());
        };
        let len = plaintext.len() + TAG;
        if len > MAX_MESSAGE {
            return Err(LocalError::TooLong { len }.into());
        }
        let Some(out) = out.get_mut(..len) else {
            return Err(LocalError::BufferTooSmall { needed: len }.into());
        };
        t.tx.encrypt_with_ad(&[], plaintext, out)
            .map_err(|_| LocalError::Exhausted)?;
        Ok(len)
    }

    /// Encrypts the first `len` bytes of `buf` in place as one transport
    /// message (`buf` needs `len + TAG` bytes) and returns the message's
    /// length: for a plaintext gathered from several places.
    pub fn encrypt_in_place(&mut self, buf: &mut [u8], len: usize) -> Result<usize, NoiseError> {
        let State::Transport(t) = &mut self.state else {
            return Err(self.out_of_turn());
        };
        let sealed = len + TAG;
        if sealed > MAX_MESSAGE {
            return Err(LocalError::TooLong { len: sealed }.into());
        }
        let Some(buf) = buf.get_mut(..sealed) else {
            return Err(LocalError::BufferTooSmall { needed: sealed }.into());
        };
        t.tx.encrypt_with_ad_in_place(&[], buf, len)
            .map_err(|_| LocalError::Exhausted)?;
        Ok(sealed)
    }

    /// Decrypts the transport message `message` into `out` and returns the
    /// plaintext's length (`message.len() - TAG`). A message that fails its
    /// tag fails the session: a TCP link never loses or reorders bytes, so it
    /// was tampered with.
    pub fn decrypt(&mut self, message: &[u8], out: &mut [u8]) -> Result<usize, NoiseError> {
        let State::Transport(t) = &mut self.state else {
            return Err(self.out_of_turn());
        };
        if message.len() > MAX_MESSAGE {
            return Err(self.fail(PeerError::TooLong { len: message.len() }));
        }
        let Some(len) = message.len().checked_sub(TAG) else {
            return Err(self.fail(PeerError::Integrity));
        };
        let Some(out) = out.get_mut(..len) else {
            return Err(LocalError::BufferTooSmall { needed: len }.into());
        };
        match t.rx.decrypt_with_ad(&[], message, out) {
            Ok(()) => Ok(len),
            Err(_) => Err(self.fail(PeerError::Integrity)),
        }
    }

    /// Steps over one transport message the caller skipped unread (a frame
    /// over its size limit, never opened): the next one is opened with the
    /// nonce after it. The skipped message is not authenticated.
    pub fn skip(&mut self) {
        if let State::Transport(t) = &mut self.state {
            let next = t.rx.get_nonce().saturating_add(1);
            t.rx.set_nonce(next);
        }
    }

    /// Fails the session for good (the keys are wiped as the state drops).
    fn fail(&mut self, why: PeerError) -> NoiseError {
        self.state = State::Failed;
        why.into()
    }

    /// The error for a call made in the wrong step.
    fn out_of_turn(&self) -> NoiseError {
        match self.step() {
            Step::Failed => LocalError::Failed.into(),
            expected => LocalError::OutOfTurn { expected }.into(),
        }
    }

    /// Turns a finished handshake into the two transport ciphers.
    fn finish_if_done(&mut self) {
        let State::Handshake { hs, .. } = &self.state else {
            return;
        };
        if !hs.is_finished() {
            return;
        }
        let State::Handshake { hs, role, .. } = core::mem::replace(&mut self.state, State::Failed)
        else {
            return;
        };
        let Some(remote_static) = hs.get_remote_static() else {
            return;
        };
        let Ok(transport) = hs.finalize() else {
            return;
        };
        let mut hash = [0; KEY_LEN];
        hash.copy_from_slice(transport.get_handshake_hash().as_slice());
        let ciphers = transport.take();
        let (tx, rx) = match role {
            Role::Initiator => (
                ciphers.initiator_to_responder,
                ciphers.responder_to_initiator,
            ),
            Role::Responder => (
                ciphers.responder_to_initiator,
                ciphers.initiator_to_responder,
            ),
        };
        self.state = State::Transport(Transport {
            tx,
            rx,
            remote_static,
            hash,
        });
    }
}
