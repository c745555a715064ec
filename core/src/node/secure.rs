//! Secure links (protocol 2): after the banners, a Noise handshake whose last
//! two messages carry the hellos; then frames go sealed.
//!
//! ```text
//! dialler                                   listener
//! MESHTALK/2 XX            -- banner -->
//!                          <-- banner --    MESHTALK/2 XX
//! message 1 (e)            -- frame -->
//!                          <-- frame --     message 2 (e, ee, s, es; its hello)
//! message 3 (s, se; our hello) -- frame -->
//! sealed frames            <==========>     sealed frames
//! ```
//!
//! Each handshake message and each sealed message is one frame (see
//! [`crate::frame`]) whose body is a Noise message. A sealed message opens to
//! 1 to [`MAX_BATCH`] whole frames, as protocol 1 sends them: the frames a peer
//! has queued one after the other go out in one (a turn of room messages, a
//! fan-out's share), so a hub seals once per peer and turn, not per message.
//! Frames are sealed as they are polled out, in the order they go on the wire,
//! so the two sides' nonces stay in step.

use core::ops::Range;

use heapless::String;

use super::link::Noise;
use super::{Fault, Kind, Node, Phase, Reason};
use crate::frame::{self, BufferTooSmall};
use crate::limits::{BATCH_BYTES, MAX_BATCH};
use crate::noise::{KEY_LEN, NoiseError, PeerError, Role, Session, Step, TAG};
use crate::outbox::{Job, Span};
use crate::peers::{Direction, PeerId};
use crate::time::Instant;
use crate::wire::{self, MAX_BANNER, MAX_NAME, Message};

/// Room for a hello's frame (its name is at most [`MAX_NAME`] bytes).
const HELLO_ROOM: usize = 64 + MAX_NAME;

/// Which queued frames may join the one being sealed: those that would go out
/// next on the same link anyway.
#[derive(Clone, Copy)]
pub(super) enum Follow {
    /// The `Send` jobs for the same peer next in the queue.
    Sends,
    /// The fan-outs next after the front one that move in step with it: at its
    /// cursor `next` before it passed `slot`, with the same `(except, line,
    /// routers)` and a frame, so they reach the same peers; they pass `slot` with it.
    Fanouts {
        pattern: (Option<PeerId>, bool, bool),
        next: usize,
        slot: usize,
    },
}

impl Follow {
    /// Jobs at the front of the queue that are not candidates: the front
    /// fan-out itself (a `Send` is off the queue already).
    fn skip(self) -> usize {
        match self {
            Follow::Sends => 0,
            Follow::Fanouts { .. } => 1,
        }
    }
}

/// How a frame queued for a peer goes out.
pub(super) enum Carry {
    /// As it is: protocol 1, or a text peer's line.
    Raw,
    /// Sealed by the peer's session.
    Seal,
    /// Not at all: the secure link it was for is not there (not yet, or no more).
    Skip,
}

impl<const P: usize, const F: usize, const A: usize, const R: usize> Node<P, F, A, R> {
    /// Whether this node speaks protocol 2.
    pub(super) fn is_secure(&self) -> bool {
        self.config.secure.is_some()
    }

    /// The static public key `peer` proved it holds, once its secure handshake
    /// is done: what a shell pins (`known_peers`) and shows as a fingerprint.
    pub fn remote_key(&self, peer: PeerId) -> Option<&[u8; KEY_LEN]> {
        match &self.peers.get(peer)?.state.noise {
            Noise::Session(s) => s.remote_static(),
            _ => None,
        }
    }

    /// Our static public key (protocol 2), as peers see it.
    pub fn public_key(&self) -> Option<[u8; KEY_LEN]> {
        let secure = self.config.secure.as_ref()?;
        Some(crate::noise::public_key(&secure.identity))
    }

    /// How a frame queued for `peer` goes out now.
    pub(super) fn carry(&self, peer: PeerId) -> Carry {
        let Some(p) = self.peers.get(peer) else {
            return if self.is_secure() {
                Carry::Skip
            } else {
                Carry::Raw
            };
        };
        match (&p.state.noise, p.state.phase) {
            (_, Phase::Ready(Kind::Text(_))) => Carry::Raw,
            (Noise::Session(s), _) if s.step() == Step::Transport => Carry::Seal,
            _ if self.is_secure() => Carry::Skip,
            _ => Carry::Raw,
        }
    }

    /// Seals for `peer` the frame `first`, with as many of the frames after it in
    /// the queue as `follow` allows (at most [`MAX_BATCH`] in [`BATCH_BYTES`]),
    /// as one transport message in the scratch buffer: where it lies there, or
    /// `None` when it cannot be sealed (it is then not sent: counted as oversized).
    pub(super) fn seal_for(
        &mut self,
        peer: PeerId,
        first: Span,
        follow: Follow,
    ) -> Option<Range<usize>> {
        // Up to MAX_BATCH spans: the first frame and those that join it.
        let mut spans = [first; MAX_BATCH];
        let mut count = 1;
        let mut plain = first.len();
        let fits = |plain: usize| Self::HEAD + plain + TAG <= F.min(BATCH_BYTES);
        // Events between the frames go to the shell, not on this link, so the
        // walk passes them (and other peers' frames, for `Sends`).
        for job in self.outbox.jobs.iter_mut().skip(follow.skip()) {
            let data = match (*job, follow) {
                (Job::Event(_) | Job::Taken, _) => continue,
                (Job::Send { peer: to, .. } | Job::Raw { peer: to, .. }, Follow::Sends)
                    if to != peer =>
                {
                    continue;
                }
                (Job::Send { data, .. }, Follow::Sends) => data,
                (
                    Job::Fanout {
                        except,
                        native: Some(data),
                        line,
                        next: at,
                        routers,
                    },
                    Follow::Fanouts { pattern, next, .. },
                ) if at == next && (except, line.is_some(), routers) == pattern => data,
                _ => break,
            };
            let Some(span) = spans.get_mut(count).filter(|_| fits(plain + data.len())) else {
                break;
            };
            *span = data;
            count += 1;
            plain += data.len();
            match (job, follow) {
                (Job::Fanout { next, .. }, Follow::Fanouts { slot, .. }) => *next = slot + 1,
                (job, _) => *job = Job::Taken,
            }
        }
        let sealed = self.seal_spans(peer, spans.get(..count).unwrap_or_default(), plain);
        if sealed.is_none() {
            self.stats.oversized += 1;
        }
        sealed
    }

    /// Gathers the frames of `spans` (`plain` bytes) after the room for a header
    /// in the scratch buffer, seals them in place and writes the header before.
    fn seal_spans(&mut self, peer: PeerId, spans: &[Span], plain: usize) -> Option<Range<usize>> {
        let Some(Noise::Session(session)) = self.peers.get_mut(peer).map(|p| &mut p.state.noise)
        else {
            return None;
        };
        let mut at = Self::HEAD;
        for &span in spans {
            let frame = self.outbox.bytes(span);
            self.scratch
                .get_mut(at..at + frame.len())?
                .copy_from_slice(frame);
            at += frame.len();
        }
        let body = self.scratch.get_mut(Self::HEAD..)?;
        let len = session.encrypt_in_place(body, plain).ok()?;
        let start = Self::HEAD.checked_sub(frame::header_len(len))?;
        frame::write_header(u32::try_from(len).ok()?, self.scratch.get_mut(start..)?).ok()?;
        Some(start..Self::HEAD + len)
    }

    /// Writes our banner line to `peer`: protocol 2's when secure, else 1's.
    pub(super) fn send_banner(&mut self, peer: PeerId) {
        let data = match &self.config.secure {
            Some(secure) => {
                let room = secure.room_key.is_some();
                self.outbox
                    .put_with(|out| wire::write_secure_banner(room, out))
            }
            None => {
                let name = &self.config.name;
                self.outbox.put_with(|out| wire::write_banner(name, out))
            }
        };
        if let Ok(data) = data {
            self.outbox.push(Job::Raw { peer, data });
        }
    }

    /// The banners agree on protocol 2 and its pattern: the session starts, with
    /// the connection's entropy, and the dialler writes message 1.
    pub(super) fn start_handshake(&mut self, peer: PeerId) {
        let Some(secure) = &self.config.secure else {
            return;
        };
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        let Noise::Entropy(entropy) = p.state.noise else {
            self.fault(peer, Fault::Secure(PeerError::Handshake { message: 1 }));
            return;
        };
        let role = match p.direction {
            Direction::Outbound => Role::Initiator,
            Direction::Inbound => Role::Responder,
        };
        let mut banner = [0; MAX_BANNER];
        let len = wire::write_secure_banner(secure.room_key.is_some(), &mut banner).unwrap_or(0);
        let banner = banner.get(..len).unwrap_or_default();
        let session = Session::new(
            role,
            &secure.identity,
            &entropy,
            secure.room_key.as_ref(),
            banner,
        );
        // The entropy is spent either way: never kept for a second session.
        p.state.noise = Noise::Plain;
        match session {
            Ok(session) => p.state.noise = Noise::Session(session),
            Err(_) => {
                self.fault(peer, Fault::Secure(PeerError::Handshake { message: 1 }));
                return;
            }
        }
        if role == Role::Initiator {
            self.write_handshake(peer, &[]);
        }
    }

    /// A handshake message from `peer`, the first `len` bytes of the scratch
    /// buffer. Our next message answers it; once the handshake is done, the
    /// hello it carried makes the link ready.
    pub(super) fn on_handshake(&mut self, now: Instant, peer: PeerId, len: usize) {
        let Some(Noise::Session(session)) = self.peers.get_mut(peer).map(|p| &mut p.state.noise)
        else {
            self.fault(peer, Fault::NoHello);
            return;
        };
        let message = self.scratch.get(..len).unwrap_or_default();
        let mut payload = [0; HELLO_ROOM];
        let got = match session.read_handshake(message, &mut payload) {
            Ok(got) => got,
            Err(NoiseError::Peer(e)) => {
                self.fault(peer, Fault::Secure(e));
                return;
            }
            // A payload over a hello's room: no meshtalk sends that.
            Err(NoiseError::Local(_)) => {
                self.fault(peer, Fault::Secure(PeerError::TooLong { len }));
                return;
            }
        };
        let mut hello = [0; HELLO_ROOM];
        if session.step() == Step::Write {
            let our = self.hello_body(&mut hello);
            let our = hello.get(..our).unwrap_or_default();
            self.write_handshake(peer, our);
        }
        // A hello counts only once the handshake is done: message 1's payload
        // is not authenticated.
        let done = self.peers.get(peer).is_some_and(
            |p| matches!(&p.state.noise, Noise::Session(s) if s.step() == Step::Transport),
        );
        if !done {
            return;
        }
        match Message::decode(payload.get(..got).unwrap_or_default()) {
            Ok(Message::Hello { minor, node, name }) => {
                let mut owned: String<MAX_NAME> = String::new();
                let _ = owned.push_str(name);
                self.on_hello(now, peer, minor, node, &owned);
            }
            Ok(_) => self.fault(peer, Fault::NoHello),
            Err(e) => self.fault(peer, Fault::Wire(e)),
        }
    }

    /// Asks the shell to vet `peer`'s key; nothing more is taken from it meanwhile.
    pub(super) fn ask_vet(&mut self, peer: PeerId) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        p.state.vetting = true;
        if let Some(alias) = self.outbox.put(&[p.alias().as_bytes()]) {
            self.event(super::Event::Vet { peer, alias });
        }
    }

    /// The shell's verdict on a vetted peer's key.
    pub(super) fn vetted(&mut self, now: Instant, peer: PeerId, trusted: bool) {
        let Some(p) = self.peers.get_mut(peer).filter(|p| p.state.vetting) else {
            return;
        };
        p.state.vetting = false;
        match trusted {
            true => self.admit(now, peer),
            false => self.drop_peer(peer, Reason::Untrusted, true),
        }
    }

    /// Our hello's body in `out`; its length.
    fn hello_body(&self, out: &mut [u8; HELLO_ROOM]) -> usize {
        let hello = Message::Hello {
            minor: wire::MINOR,
            node: self.config.node_id,
            name: &self.config.name,
        };
        let mut frame = [0; HELLO_ROOM];
        let Ok(len) = hello.encode_frame(&mut frame) else {
            return 0;
        };
        let body = frame
            .get(..len)
            .and_then(frame::body_of)
            .unwrap_or_default();
        let Some(room) = out.get_mut(..body.len()) else {
            return 0;
        };
        room.copy_from_slice(body);
        body.len()
    }

    /// Queues our next handshake message to `peer`, carrying `payload`.
    fn write_handshake(&mut self, peer: PeerId, payload: &[u8]) {
        let Some(Noise::Session(session)) = self.peers.get_mut(peer).map(|p| &mut p.state.noise)
        else {
            return;
        };
        let written = self.outbox.put_with(|out| {
            let len = payload.len() + session.overhead();
            let head = frame::write_header(len as u32, out).map_err(|_| ())?;
            let rest = out.get_mut(head..).unwrap_or_default();
            let n = session.write_handshake(payload, rest).map_err(|_| ())?;
            Ok::<usize, ()>(head + n)
        });
        match written {
            Ok(data) => {
                self.outbox.push(Job::Raw { peer, data });
            }
            // The arena keeps room for a frame before every input; a failed
            // write leaves a session that cannot go on.
            Err(()) => self.fault(peer, Fault::Secure(PeerError::Handshake { message: 0 })),
        }
    }

    /// Queues a goodbye sealed by `session` (a link being dropped: sealed now,
    /// as its session goes with it).
    pub(super) fn seal_bye(&mut self, peer: PeerId, session: &mut Session, reason: &str) {
        if session.step() != Step::Transport {
            return;
        }
        let mut plain = [0; 160];
        let Ok(len) = Message::Bye { reason }.encode_frame(&mut plain) else {
            return;
        };
        let Some(frame) = plain.get(..len) else {
            return;
        };
        if let Ok(data) = self.outbox.put_with(|out| seal(session, frame, out)) {
            self.outbox.push(Job::Raw { peer, data });
        }
    }

    /// Why a connection that closed by itself went: a dialler still waiting
    /// for message 2 of a private room's handshake was dropped by a listener
    /// that could not read message 1, which means another room key.
    pub(super) fn closed_reason(&self, peer: PeerId) -> Option<Reason<Span>> {
        let room = self.config.secure.as_ref()?.room_key.is_some();
        let p = self.peers.get(peer)?;
        let waiting = matches!(&p.state.noise, Noise::Session(s) if s.step() == Step::Read);
        (room && waiting && p.direction == Direction::Outbound && p.state.phase == Phase::Hello)
            .then_some(Reason::Fault(Fault::Secure(PeerError::RoomKey)))
    }

    /// Whether `peer`'s link is encrypted and the peer authenticated.
    pub(super) fn is_encrypted(&self, peer: PeerId) -> bool {
        self.remote_key(peer).is_some()
    }
}

/// Writes `plain` (whole frames) sealed by `session` as one frame into `out`:
/// the header of the sealed length, then the ciphertext and its tag. Its length.
pub(super) fn seal(
    session: &mut Session,
    plain: &[u8],
    out: &mut [u8],
) -> Result<usize, SealError> {
    let len = u32::try_from(plain.len() + TAG).map_err(|_| SealError)?;
    let head = frame::write_header(len, out)?;
    let rest = out.get_mut(head..).unwrap_or_default();
    let n = session.encrypt(plain, rest)?;
    Ok(head + n)
}

/// Frames that could not be sealed (no room, or the session refused).
#[derive(Debug)]
pub(super) struct SealError;

impl From<BufferTooSmall> for SealError {
    fn from(_: BufferTooSmall) -> Self {
        SealError
    }
}

impl From<NoiseError> for SealError {
    fn from(_: NoiseError) -> Self {
        SealError
    }
}
