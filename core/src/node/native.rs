//! Native peers: their frames, hellos, renames and twin links.

use core::ops::Range;

use heapless::String;

use super::announce::Heard;
use super::link::Noise;
use super::routed::Incoming;
use super::{
    BUSY, BUSY_SERVING, Event, Fault, Kind, Node, Phase, Reason, Refusal, Room, Rx, Stats, Step,
};
use crate::frame::{self, Decoded, FrameError};
use crate::limits::MAX_BATCH;
use crate::noise::{NoiseError, PeerError, Step as NoiseStep};
use crate::outbox::{Job, Outbox, Span};
use crate::peers::{AliasSource, PeerId};
use crate::route::{self, SeenCache, Sight};
use crate::time::Instant;
use crate::wire::{self, MAX_NAME, Message};

impl<const P: usize, const F: usize, const A: usize, const R: usize> Node<P, F, A, R> {
    pub(super) fn on_frame_bytes(&mut self, now: Instant, peer: PeerId, bytes: &[u8]) -> Step {
        let Some(p) = self.peers.get_mut(peer) else {
            return Step::Wait(bytes.len());
        };
        let link = &mut p.state;
        let Rx::Frames(decoder) = &mut link.rx else {
            return Step::Took(0);
        };
        let (n, decoded) = decoder.decode(bytes);
        let sealed = match decoded {
            Decoded::NeedMore => {
                let partial = !decoder.is_at_boundary();
                if partial && link.frame_since.is_none() {
                    // A frame began: it has `frame_timeout` to end.
                    link.frame_since = Some(now);
                    self.wake_by(now + self.config.frame_timeout);
                }
                return Step::Wait(n);
            }
            Decoded::Frame(body) => {
                link.frame_since = None;
                body
            }
            Decoded::Error(FrameError::Oversized { .. }) => {
                // Skipped by the decoder; the stream goes on at the next frame,
                // which the skip must reach in time, as a frame must end. A
                // secure link's next message has the nonce after the skipped one.
                if let Noise::Session(session) = &mut link.noise {
                    session.skip();
                }
                self.stats.oversized += 1;
                return Step::Took(n);
            }
            Decoded::Error(e) => {
                self.fault(peer, Fault::Frame(e));
                return Step::Took(n);
            }
        };
        // Protocol 2: a handshake message, or a sealed message opened into the
        // scratch buffer; protocol 1: the body as it came, copied there.
        let len = match &mut link.noise {
            Noise::Session(session) if session.step() == NoiseStep::Transport => {
                match session.decrypt(sealed, &mut self.scratch) {
                    Ok(len) => len,
                    Err(NoiseError::Peer(e)) => {
                        self.fault(peer, Fault::Secure(e));
                        return Step::Took(n);
                    }
                    // Cannot be: a body fits the scratch buffer, both F bytes.
                    Err(NoiseError::Local(_)) => {
                        self.fault(peer, Fault::Secure(PeerError::Integrity));
                        return Step::Took(n);
                    }
                }
            }
            Noise::Session(_) => {
                let len = copy_into(&mut self.scratch, sealed);
                self.on_handshake(now, peer, len);
                return Step::Took(n);
            }
            Noise::Entropy(_) => {
                self.fault(peer, Fault::NoHello);
                return Step::Took(n);
            }
            Noise::Plain => {
                let len = copy_into(&mut self.scratch, sealed);
                self.on_message(now, peer, 0..len);
                return Step::Took(n);
            }
        };
        // The opened message is 1 to MAX_BATCH whole frames, checked before any
        // is read: a broken one shows nothing.
        let opened = self.scratch.get(..len).unwrap_or_default();
        let Some(count) = batch_len(opened) else {
            self.fault(peer, Fault::Secure(PeerError::Batch));
            return Step::Took(n);
        };
        let mut at = 0;
        for _ in 0..count {
            let frame = self.scratch.get(at..len).unwrap_or_default();
            let (head, body) = frame::first(frame).unwrap_or((0, 0));
            let start = at + head;
            at = start + body;
            if !self.on_message(now, peer, start..at) {
                break;
            }
        }
        Step::Took(n)
    }

    /// One message from `peer`, the frame body at `body` in the scratch buffer.
    /// False when the peer is to be read no further (it left, was refused or
    /// dropped).
    fn on_message(&mut self, now: Instant, peer: PeerId, body: Range<usize>) -> bool {
        let Some(p) = self.peers.get_mut(peer) else {
            return false;
        };
        let (from, link) = p.alias_and_state();
        let traffic = |body: &[u8]| {
            Message::decode(body)
                .is_ok_and(|m| !matches!(m, Message::Hello { .. } | Message::Bye { .. }))
        };
        let (from, link) =
            if link.awaits_twin && traffic(self.scratch.get(body.clone()).unwrap_or_default()) {
                // Rare: the deciding node talks on a link that waits for its decision,
                // so it kept this one. The link takes over before its message is read.
                self.take_over(peer);
                let Some(p) = self.peers.get_mut(peer) else {
                    return false;
                };
                p.alias_and_state()
            } else {
                (from, link)
            };
        let body = self.scratch.get(body).unwrap_or_default();
        let msg = match Message::decode(body) {
            Ok(msg) => msg,
            Err(e) => {
                self.fault(peer, Fault::Wire(e));
                return false;
            }
        };
        if let Some(why) = link.refuse {
            // A connection we refused: its hello says how to tell it so.
            let minor = match msg {
                Message::Hello { minor, .. } => minor,
                _ => 0,
            };
            self.refuse_native(peer, why, minor);
            return false;
        }
        let awaits_twin = link.awaits_twin;
        let routes = link.routes;
        let hello_done = link.phase != Phase::Hello;
        // Each kind has its handler. The message borrows the peer's receive
        // buffer, so its text is first copied where the handler may read it (a
        // name to the stack, the rest to the outbox) by what it borrows alone.
        match msg {
            Message::Hello { minor, node, name } => {
                let mut owned: String<MAX_NAME> = String::new();
                let _ = owned.push_str(name);
                self.on_hello(now, peer, minor, node, &owned);
            }
            Message::Bye { .. } if awaits_twin => {
                // The deciding node kept the other link: this one goes.
                self.close_twin(peer);
                return false;
            }
            Message::Bye { reason } => {
                let reason = bye_reason(&mut self.outbox, reason, hello_done);
                self.drop_peer(peer, reason, true);
                return false;
            }
            // Before the hello it is a refusal; after it, a peer that changed its mind.
            Message::Refuse { code, arg } => {
                self.on_refuse(peer, code, arg);
                return false;
            }
            _ if !hello_done => {
                self.fault(peer, Fault::NoHello);
                return false;
            }
            Message::Chat { id, text } => {
                let from = self.outbox.put(&[from.as_bytes()]);
                let text = self.outbox.put(&[text.as_bytes()]);
                self.on_chat(peer, id, from.zip(text));
            }
            Message::Ping { nonce } => self.on_ping(peer, nonce),
            // Its bytes were the sign of life that was asked for.
            Message::Pong { .. } => {}
            Message::Ack { id } => self.on_ack(peer, id),
            Message::Broadcast { .. } => {
                let staged = stage_broadcast(
                    &mut self.outbox,
                    &mut self.seen,
                    &mut self.stats,
                    self.config.node_id,
                    msg,
                );
                if let Some(staged) = staged {
                    self.on_broadcast(now, peer, routes, staged);
                }
            }
            Message::Routed { .. } | Message::Sealed { .. } => {
                let identity = self.config.secure.as_ref().map(|s| &s.identity);
                let me = self.config.node_id;
                if let Some(msg) = Incoming::stage::<A, F>(&mut self.outbox, me, identity, msg) {
                    self.on_routed(now, peer, msg);
                }
            }
            Message::Announce { .. } => {
                let me = self.config.node_id;
                if let Some(heard) = Heard::stage(&mut self.outbox, &mut self.seen, me, msg) {
                    self.on_announce(now, peer, heard);
                }
            }
            Message::RoutedAck {
                origin,
                dest,
                id,
                hops,
                code,
            } => {
                // Rebuilt, so it borrows nothing of the receive buffer.
                let ack = Message::RoutedAck {
                    origin,
                    dest,
                    id,
                    hops,
                    code,
                };
                self.on_routed_ack(now, peer, ack);
            }
        }
        true
    }

    /// A hello: the first makes the link ready (or a twin of one), a later one
    /// is the peer taking a new name (`/nick`).
    pub(super) fn on_hello(
        &mut self,
        now: Instant,
        peer: PeerId,
        minor: u16,
        node: u64,
        name: &str,
    ) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        let link = &mut p.state;
        if link.awaits_twin {
            return;
        }
        if link.phase != Phase::Hello {
            if node == link.remote {
                self.renamed(peer, name);
            }
            return;
        }
        if node == self.config.node_id {
            self.fault(peer, Fault::Itself);
            return;
        }
        link.remote = node;
        link.pings = minor >= wire::MINOR_PING;
        link.routes = minor >= wire::MINOR_ROUTE;
        link.seals = minor >= wire::MINOR_SEAL;
        link.last_rx = now;
        link.name = String::try_from(name).unwrap_or_default();
        if self.is_secure() {
            // Protocol 1 announced the name in the banner; 2 does it here, for
            // a twin too, whose link may yet take over.
            self.peers.announce(peer, name);
        }
        if self.config.secure.as_ref().is_some_and(|s| s.vet) {
            self.ask_vet(peer);
            return;
        }
        self.admit(now, peer);
    }

    /// The hello is in (and the peer's key trusted, when vetted): the link is
    /// ready, or waits on its twin.
    pub(super) fn admit(&mut self, now: Instant, peer: PeerId) {
        let Some(p) = self.peers.get(peer) else {
            return;
        };
        let node = p.state.remote;
        let name = p.state.name.clone();
        if self.twin(peer, node).is_some() {
            self.on_twin(now, peer, node, &name);
            return;
        }
        self.ready(peer);
        self.peers.announce(peer, &name);
        self.connected_event(peer);
    }

    /// The node we dialled would not take us, and said why (typed): it is gone.
    fn on_refuse(&mut self, peer: PeerId, code: u8, arg: u32) {
        let why = Refusal::from_code(code, arg);
        self.drop_peer(peer, Reason::Refused(why), true);
    }

    /// A direct message (its sender's alias and text, copied): shown, and its
    /// receipt sent.
    fn on_chat(&mut self, peer: PeerId, id: u32, copied: Option<(Span, Span)>) {
        if let Some((from, text)) = copied {
            self.event(Event::Message {
                peer,
                from,
                text,
                room: None,
            });
        }
        if let Ok(data) = self.outbox.put_message(&Message::Ack { id }) {
            self.outbox.push(Job::Send { peer, data });
        }
    }

    /// A ping: answered with its nonce.
    fn on_ping(&mut self, peer: PeerId, nonce: u32) {
        if let Ok(data) = self.outbox.put_message(&Message::Pong { nonce }) {
            self.outbox.push(Job::Send { peer, data });
        }
    }

    /// A receipt for one of our messages; one for no message awaiting it is counted.
    fn on_ack(&mut self, peer: PeerId, id: u32) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        let unacked = &mut p.state.unacked;
        match unacked.iter().position(|&x| x == id) {
            Some(at) => {
                unacked.remove(at);
                self.event(Event::Delivered { peer, id });
            }
            None => self.stats.stray_acks += 1,
        }
    }

    /// A room message not seen before (or seen with fewer hops): shown once, and
    /// relayed on while it has hops left.
    /// Its path teaches the way to its origin (`routes`: `peer` can relay
    /// direct messages).
    fn on_broadcast(&mut self, now: Instant, peer: PeerId, routes: bool, staged: Staged) {
        let Staged {
            room,
            new,
            native,
            relay,
            left,
            from,
            text,
        } = staged;
        if routes {
            let hops = route::distance(self.config.hops, left);
            let name = self.outbox.text(from);
            match new {
                // The first copy of a new room message: its way is the route now.
                true => self.origins.renew(now, room.origin, peer, hops, name),
                false => self.origins.learn(now, room.origin, peer, hops, name),
            };
        }
        if new {
            self.event(Event::Message {
                peer,
                from,
                text,
                room: Some(room),
            });
        }
        if relay {
            self.fanout(Some(peer), native, from, text, true);
        }
    }

    /// The peer announced a new name: it becomes the alias shown, unless a person here
    /// named the peer.
    fn renamed(&mut self, peer: PeerId, name: &str) {
        if self.peers.announce(peer, name)
            && let Some(alias) = self.peers.get(peer).map(|p| p.alias())
            && let Some(alias) = self.outbox.put(&[alias.as_bytes()])
        {
            self.event(Event::Alias { peer, alias });
        }
    }

    /// Another ready link to the node `node`, besides `peer`.
    fn twin(&self, peer: PeerId, node: u64) -> Option<PeerId> {
        self.peers
            .iter()
            .find(|p| {
                p.id != peer
                    && p.state.phase == Phase::Ready(Kind::Native)
                    && p.state.remote == node
            })
            .map(|p| p.id)
    }

    /// The hello came on `peer` while `twin` is a ready link to the same node `node`
    /// (a repeated `connect`, or both nodes dialling at once). The lower node id decides
    /// which stays, so both ends keep the same one: it keeps the link already in use,
    /// with its alias, and closes the newcomer. The other end waits for that choice.
    fn on_twin(&mut self, now: Instant, peer: PeerId, node: u64, name: &str) {
        if self.config.node_id < node {
            self.close_twin(peer);
            // The newcomer may have held the announced name (its banner came first).
            if let Some(keep) = self.twin(peer, node)
                && self.peers.announce(keep, name)
                && let Some(alias) = self.peers.get(keep).map(|p| p.alias())
                && let Some(alias) = self.outbox.put(&[alias.as_bytes()])
            {
                self.event(Event::Alias { peer: keep, alias });
            }
            return;
        }
        if let Some(p) = self.peers.get_mut(peer) {
            p.state.awaits_twin = true;
        }
        // No longer than a hello may take: see `on_deadline`.
        self.set_deadline(peer, now + self.config.banner_timeout);
    }

    /// Closes a second link to a node that is already linked: the person is told which
    /// peer it is ("already connected to bobby (#1)").
    pub(super) fn close_twin(&mut self, peer: PeerId) {
        let Some(node) = self.peers.get(peer).map(|p| p.state.remote) else {
            return;
        };
        let twin = self.twin(peer, node);
        let alias = twin
            .and_then(|t| self.peers.get(t))
            .and_then(|t| self.outbox.put(&[t.alias().as_bytes()]));
        match (twin, alias) {
            (Some(keep), Some(alias)) => {
                self.drop_peer(peer, Reason::Duplicate { keep, alias }, true)
            }
            _ => self.drop_peer(peer, Reason::Closed, true),
        }
    }

    /// A waiting second link takes over from its twin (the deciding node kept it, or the
    /// twin is gone): it becomes ready, with the twin's alias.
    fn take_over(&mut self, peer: PeerId) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        p.state.awaits_twin = false;
        let node = p.state.remote;
        let mut alias: String<MAX_NAME> = String::new();
        if let Some(twin) = self.twin(peer, node) {
            if let Some(t) = self
                .peers
                .get(twin)
                .filter(|t| t.alias_source() == AliasSource::Chosen)
            {
                let _ = alias.push_str(t.alias());
            }
            let why = self.outbox.put(&[b"duplicate link"]).unwrap_or_default();
            self.drop_peer(twin, Reason::Bye(why), true);
        }
        self.adopt(peer, &alias);
    }

    /// A second link takes its gone twin's place: ready, and announced with the alias a
    /// person gave the twin, if any (else the name it announced).
    pub(super) fn adopt(&mut self, peer: PeerId, alias: &str) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.state.awaits_twin = false;
        }
        self.ready(peer);
        if !alias.is_empty() {
            let _ = self.peers.set_alias(peer, alias);
        }
        self.connected_event(peer);
    }

    /// A native link's hello is done: it is ready to chat, and pinged when silent
    /// (counted from its last byte, the hello or later).
    fn ready(&mut self, peer: PeerId) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        p.state.phase = Phase::Ready(Kind::Native);
        p.state.deadline = None;
        p.state.awaits_twin = false;
        let (last_rx, seals) = (p.state.last_rx, p.state.seals);
        if p.state.routes {
            // A neighbour: one hop away, through its own link.
            self.origins
                .learn(last_rx, p.state.remote, peer, 1, &p.state.name);
        }
        if let Some(after) = self.config.ping_after.filter(|_| p.state.pings) {
            self.wake_by(last_rx + after);
        }
        if seals {
            self.announce_soon(last_rx);
        }
    }
}

/// A room message copied out of the receive buffer, for [`Node::on_broadcast`].
struct Staged {
    room: Room,
    /// Not seen before: shown here.
    new: bool,
    /// The frame to relay, encoded with one hop less.
    native: Option<Span>,
    /// It has hops left: relayed to the room.
    relay: bool,
    /// The hops it had left when it came.
    left: u8,
    from: Span,
    text: Span,
}

/// Copies what [`Node::on_broadcast`] needs of a room message out of the receive
/// buffer, or `None` for a duplicate (counted) or when the outbox has no room.
#[inline]
fn stage_broadcast<const A: usize, const N: usize>(
    outbox: &mut Outbox<A>,
    seen: &mut SeenCache<N>,
    stats: &mut Stats,
    node_id: u64,
    msg: Message<'_>,
) -> Option<Staged> {
    let Message::Broadcast {
        origin,
        seq,
        hops,
        name,
        text,
    } = msg
    else {
        return None;
    };
    let sight = match origin == node_id {
        true => Sight::Duplicate,
        false => seen.sight(origin, seq, hops),
    };
    if sight == Sight::Duplicate {
        stats.duplicates += 1;
        return None;
    }
    // The relayed frame is encoded from the decoded `str`s, whose one UTF-8
    // check was the decoder's.
    let relay = route::relay_hops(hops);
    let native = relay.and_then(|hops| {
        let msg = Message::Broadcast {
            origin,
            seq,
            hops,
            name,
            text,
        };
        outbox.put_message(&msg).ok()
    });
    let from = outbox.put(&[name.as_bytes()])?;
    let text = outbox.put(&[text.as_bytes()])?;
    Some(Staged {
        room: Room { origin, seq },
        new: sight == Sight::New,
        native,
        relay: relay.is_some(),
        left: hops,
        from,
        text,
    })
}

/// Why a peer said goodbye, its text copied to the outbox. Before its hello, an
/// older node's busy goodbye is the typed refusal it stands for (such a node
/// knows no [`Message::Refuse`]).
fn bye_reason<const A: usize>(
    outbox: &mut Outbox<A>,
    reason: &str,
    hello_done: bool,
) -> Reason<Span> {
    match reason {
        BUSY if !hello_done => Reason::Refused(Refusal::Busy),
        BUSY_SERVING if !hello_done => Reason::Refused(Refusal::Serving),
        _ => Reason::Bye(outbox.put(&[reason.as_bytes()]).unwrap_or_default()),
    }
}

/// How many whole frames `opened` (a sealed message opened) holds, when it is
/// 1 to [`MAX_BATCH`] of them and nothing else.
fn batch_len(opened: &[u8]) -> Option<usize> {
    let mut at = 0;
    for count in 1..=MAX_BATCH {
        let (head, body) = frame::first(opened.get(at..)?)?;
        at += head + body;
        if at == opened.len() {
            return Some(count);
        }
    }
    None
}

/// Copies `bytes` to the start of `scratch`, as much as fits; how many.
fn copy_into(scratch: &mut [u8], bytes: &[u8]) -> usize {
    let len = bytes.len().min(scratch.len());
    if let (Some(to), Some(from)) = (scratch.get_mut(..len), bytes.get(..len)) {
        to.copy_from_slice(from);
    }
    len
}
