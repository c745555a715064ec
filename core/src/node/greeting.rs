//! Connections: the greeting, banners, and how a connection turns native or text.

use core::fmt;
use core::net::SocketAddr;

use heapless::{String, Vec};

use super::link::Noise;
use super::{Event, Fault, Kind, Node, Phase, Reason, Refusal, Rx, Step, TextMode};
use crate::frame::FrameDecoder;
use crate::noise::{KEY_LEN, PeerError};
use crate::outbox::Job;
use crate::peers::{Alias, Direction, PeerId};
use crate::time::Instant;
use crate::wire::{self, BANNER_PREFIX, BannerError, MAX_BANNER, Message, Sniff};

impl<const P: usize, const F: usize, const A: usize, const R: usize> Node<P, F, A, R> {
    pub(super) fn on_connected(
        &mut self,
        now: Instant,
        peer: PeerId,
        addr: SocketAddr,
        entropy: [u8; KEY_LEN],
    ) {
        let Some(p) = self
            .peers
            .get_mut(peer)
            .filter(|p| p.state.phase == Phase::Dialing)
        else {
            // Disconnected while the dial was under way: the new connection is not wanted.
            self.outbox.push(Job::Close { peer });
            return;
        };
        p.state.phase = Phase::Greeting;
        if self.config.secure.is_some() {
            p.state.noise = Noise::Entropy(entropy);
            self.pool.mix(&entropy);
        }
        self.peers.set_addr(peer, addr);
        self.send_banner(peer);
        self.set_deadline(peer, now + self.config.greeting_timeout);
    }

    /// Takes as many received bytes as the outbox has room for the outputs of.
    pub(super) fn on_received(&mut self, now: Instant, peer: PeerId, bytes: &[u8]) -> usize {
        if let Some(p) = self.peers.get_mut(peer).filter(|_| !bytes.is_empty()) {
            // Any byte is a sign of life: the silence, and any ping, start over.
            p.state.last_rx = now;
            p.state.pinged = None;
        }
        let mut used = 0;
        loop {
            if !self.has_room_for(peer) {
                return used;
            }
            let Some(p) = self.peers.get_mut(peer) else {
                // The peer is gone: its bytes mean nothing now.
                return bytes.len();
            };
            if p.state.vetting {
                // Held until the shell's verdict on the peer's key.
                return used;
            }
            let rest = bytes.get(used..).unwrap_or_default();
            let step = match &mut p.state.rx {
                // Nothing left: a text step on no bytes takes none, and would loop.
                Rx::Banner(..) | Rx::Text(_) if rest.is_empty() => return used,
                Rx::Banner(..) => self.on_greeting_bytes(now, peer, rest),
                Rx::Frames(_) => self.on_frame_bytes(now, peer, rest),
                Rx::Text(_) => self.on_text_bytes(now, peer, rest),
            };
            match step {
                Step::Took(n) => used += n,
                Step::Wait(n) => return used + n,
            }
        }
    }

    /// First bytes of a connection: a banner, or the start of a text peer's talk.
    fn on_greeting_bytes(&mut self, now: Instant, peer: PeerId, bytes: &[u8]) -> Step {
        let Some(p) = self.peers.get_mut(peer) else {
            return Step::Wait(bytes.len());
        };
        let Rx::Banner(buf, _) = &mut p.state.rx else {
            return Step::Took(0);
        };
        if buf.is_empty() && p.state.phase == Phase::Greeting {
            // First byte after a silent start: the banner has its own, longer deadline.
            p.state.deadline = None;
        }
        let mut taken = 0;
        for &b in bytes {
            let at = buf.len();
            if at < BANNER_PREFIX.len() && BANNER_PREFIX.get(at) != Some(&b) {
                // Cannot begin a banner: a text peer. What was held is its text.
                let held: Vec<u8, MAX_BANNER> = buf.clone();
                self.become_text(now, peer, &held, TextMode::Lines);
                return Step::Took(taken);
            }
            taken += 1;
            if buf.push(b).is_err() {
                self.fault(peer, Fault::Banner(BannerError::TooLong));
                return Step::Took(taken);
            }
            if b == b'\n' {
                return self.on_banner(now, peer, taken);
            }
        }
        // From the first byte on; a banner trickled byte by byte gets no more time.
        if self
            .peers
            .get(peer)
            .is_some_and(|p| p.state.deadline.is_none())
        {
            self.set_deadline(peer, now + self.config.banner_timeout);
        }
        Step::Took(taken)
    }

    fn on_banner(&mut self, now: Instant, peer: PeerId, taken: usize) -> Step {
        let Some(p) = self.peers.get_mut(peer) else {
            return Step::Took(taken);
        };
        let Rx::Banner(buf, _) = &p.state.rx else {
            return Step::Took(taken);
        };
        let held = buf.clone();
        let ours = match &self.config.secure {
            Some(_) => wire::SECURE_VERSION,
            None => wire::VERSION,
        };
        let sniffed = match wire::sniff(&held) {
            Sniff::Banner { banner, .. } if banner.major != ours => {
                Sniff::Error(BannerError::Version {
                    major: banner.major,
                    ours,
                })
            }
            Sniff::Error(BannerError::Version { major, .. }) => {
                Sniff::Error(BannerError::Version { major, ours })
            }
            other => other,
        };
        let inbound = p.direction == Direction::Inbound;
        let secure = self.config.secure.is_some();
        match sniffed {
            Sniff::Banner { .. } if secure && p.state.refuse.is_some() => {
                // Protocol 2 refuses at once, in the line a dialler reads in
                // place of a banner (there are no keys to seal a message with).
                if let Some(why) = p.state.refuse {
                    self.refuse_with_line(peer, why);
                }
            }
            Sniff::Banner { .. } if p.state.refuse.is_some() => {
                // Refused after its hello, which says whether it reads a typed
                // refusal (see `refuse_native`); our banner lets it send one.
                p.state.rx = Rx::Frames(FrameDecoder::new());
                p.state.phase = Phase::Hello;
                self.send_banner(peer);
                self.set_deadline(peer, now + self.config.banner_timeout);
            }
            Sniff::Refused(why) if !inbound => {
                self.drop_peer(peer, Reason::Refused(why), true);
            }
            Sniff::Banner { banner, .. } if banner.major == wire::SECURE_VERSION => {
                let room = self
                    .config
                    .secure
                    .as_ref()
                    .is_some_and(|s| s.room_key.is_some());
                if inbound {
                    // Our banner either way: a dialler with another room key
                    // learns why, too.
                    self.send_banner(peer);
                }
                if banner.room != room {
                    self.fault(peer, Fault::Secure(PeerError::RoomKey));
                    return Step::Took(taken);
                }
                if let Some(p) = self.peers.get_mut(peer) {
                    p.state.rx = Rx::Frames(FrameDecoder::new());
                    p.state.phase = Phase::Hello;
                }
                self.start_handshake(peer);
                self.set_deadline(peer, now + self.config.banner_timeout);
            }
            Sniff::Banner { banner, .. } => {
                p.state.rx = Rx::Frames(FrameDecoder::new());
                p.state.phase = Phase::Hello;
                // The Connected event that follows hello carries the alias.
                self.peers.announce(peer, banner.name);
                if inbound {
                    self.send_banner(peer);
                }
                let name = self.config.name.clone();
                let hello = Message::Hello {
                    minor: wire::MINOR,
                    node: self.config.node_id,
                    name: &name,
                };
                if let Ok(data) = self.outbox.put_message(&hello) {
                    self.outbox.push(Job::Send { peer, data });
                }
                self.set_deadline(peer, now + self.config.banner_timeout);
            }
            Sniff::Error(e) => {
                if matches!(e, BannerError::Version { .. }) && inbound {
                    // Let the other side say why, too: our banner names our version.
                    self.send_banner(peer);
                }
                self.fault(peer, Fault::Banner(e));
            }
            Sniff::Partial | Sniff::Text | Sniff::Refused(_) => {
                self.fault(peer, Fault::Banner(BannerError::Malformed))
            }
        }
        Step::Took(taken)
    }

    /// Refuses a connection with one plain line (a text peer reads it; a
    /// dialling meshtalk reads it in place of a banner), then closes it.
    fn refuse_with_line(&mut self, peer: PeerId, why: Refusal) {
        if let Ok(data) = self
            .outbox
            .put_with(|out| wire::write_refusal_line(why, out))
        {
            self.outbox.push(Job::Raw { peer, data });
        }
        self.refuse(peer, why);
    }

    /// Tells a native connection that may not join why, once its hello (or its
    /// deadline) came: typed to a peer whose `minor` knows [`Message::Refuse`], in
    /// words in a goodbye to an older one; then closes it.
    pub(super) fn refuse_native(&mut self, peer: PeerId, why: Refusal, minor: u16) {
        let mut reason: String<128> = String::new();
        let (code, arg) = why.code();
        let msg = match minor >= wire::MINOR_REFUSE {
            true => Message::Refuse { code, arg },
            false => {
                let _ = fmt::write(&mut reason, format_args!("{why}"));
                Message::Bye { reason: &reason }
            }
        };
        if let Ok(data) = self.outbox.put_message(&msg) {
            self.outbox.push(Job::Send { peer, data });
        }
        self.refuse(peer, why);
    }

    /// Closes a connection that may not join (its reason already queued).
    fn refuse(&mut self, peer: PeerId, why: Refusal) {
        if let Some(addr) = self.peers.remove(peer).and_then(|p| p.addr) {
            self.outbox.push(Job::Close { peer });
            self.event(Event::Refused { addr, why });
        }
    }

    /// Why a text peer may not join, if it may not: a private room (a room
    /// key) that does not allow text.
    pub(super) fn text_refusal(&self) -> Option<Refusal> {
        let secure = self.config.secure.as_ref()?;
        (!secure.admits_text()).then_some(Refusal::Private)
    }

    pub(super) fn become_text(&mut self, now: Instant, peer: PeerId, held: &[u8], mode: TextMode) {
        let private = self.text_refusal();
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        if let Some(why) = p.state.refuse.or(private) {
            let mut line: String<256> = String::new();
            let _ = fmt::write(&mut line, format_args!("meshtalk: {why}\n"));
            if let Some(data) = self.outbox.put(&[line.as_bytes()]) {
                self.outbox.push(Job::Raw { peer, data });
            }
            self.refuse(peer, why);
            return;
        }
        let mut text = Vec::new();
        // Cannot fail: at most a banner prefix is held, and F >= 256.
        let _ = text.extend_from_slice(held);
        let pending = !text.is_empty();
        // A silent peer was announced as text already, and keeps its mode.
        let (announced, mode) = match p.state.phase {
            Phase::Ready(Kind::Text(was)) => (true, was),
            _ => (false, mode),
        };
        p.state.phase = Phase::Ready(Kind::Text(mode));
        p.state.deadline = None;
        if !announced {
            self.text_joined(peer);
        }
        if let Some(p) = self.peers.get_mut(peer) {
            p.state.rx = Rx::Text(text);
        }
        if pending {
            self.set_deadline(peer, now + self.config.text_idle);
        }
    }

    pub(super) fn connected_event(&mut self, peer: PeerId) {
        let Some(p) = self.peers.get(peer) else {
            return;
        };
        let (Phase::Ready(kind), Some(addr)) = (p.state.phase, p.addr) else {
            return;
        };
        let direction = p.direction;
        let alias = Alias::try_from(p.alias()).unwrap_or_default();
        let encrypted = self.is_encrypted(peer);
        if let Some(p) = self.peers.get_mut(peer) {
            // Got through: with `reconnect`, a drop by itself is dialled again.
            p.state.redial = direction == Direction::Outbound;
        }
        if let Some(span) = self.outbox.put(&[alias.as_bytes()]) {
            self.event(Event::Connected {
                peer,
                alias: span,
                addr,
                direction,
                kind,
                encrypted,
            });
        }
        self.notice(Some(peer), format_args!("{alias} joined"));
    }
}
