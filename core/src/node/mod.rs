//! The node: one state machine that owns the peer table, each connection's
//! codec, routing and delivery receipts. It does no I/O and reads no clock.

mod announce;
mod commands;
mod config;
mod error;
mod greeting;
mod io;
mod link;
mod native;
mod roster;
mod routed;
mod secure;
mod text;
mod timers;

use core::fmt;
use core::net::SocketAddr;

use heapless::String;

use crate::limits::MAX_BATCH;
use crate::limits::ROUTE_TTL;
use crate::noise::{Pool, node_id};
use crate::outbox::{Job, Outbox, Span};
use crate::peers::{Alias, AliasSource, Direction, LookupError, PeerId, PeerTable};
use crate::route::{Origins, SeenCache};
use crate::time::Instant;
use crate::wire::Message;
use link::{Noise, Rx};
use roster::Roster;
use secure::{Carry, Follow};

pub use crate::event::{
    BUSY, BUSY_SERVING, Event, Fault, Kind, Reason, Refusal, Room, Routed, TextMode, Unroutable,
};
pub use crate::limits::{FRAME_OVERHEAD, MAX_HOST, ORIGINS, ROUTES, SMALL_ROUTES, WINDOW};
pub use config::{Config, Secure};
pub use error::{AcceptError, NodeError};
pub use io::{Handled, Input, Output};
pub use link::{Link, Phase};
pub use routed::{Pending, Reachable};

/// The longest line the node composes for a text peer (a notice, a `/who` answer).
const MAX_LINE: usize = 1024;

/// Counters of what the node dropped or refused, for diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames skipped for being over the size limit.
    pub oversized: u64,
    /// Broadcasts seen before (suppressed duplicates).
    pub duplicates: u64,
    /// Receipts for messages not awaiting one.
    pub stray_acks: u64,
    /// Direct messages across the mesh, or their receipts, that could go no
    /// further (no route, no hops left) and were dropped.
    pub unrouted: u64,
    /// Peers closed for breaking the protocol.
    pub faults: u64,
    /// Room lines not held for a connection not yet known to be text (its buffer was full).
    pub unheld: u64,
}

/// What [`Node::peers`] shows of a peer.
#[derive(Clone, Copy, Debug)]
pub struct PeerInfo<'a> {
    /// The peer's id, for inputs and commands (`#id`).
    pub id: PeerId,
    /// What the person calls it.
    pub alias: &'a str,
    /// Its remote address; `None` while the dial is under way.
    pub addr: Option<SocketAddr>,
    /// Who dialled whom.
    pub direction: Direction,
    /// How far its connection is.
    pub phase: Phase,
    /// Messages awaiting their receipt.
    pub unacked: usize,
}

/// The meshtalk protocol engine for at most `P` peers, frames of at most `F`
/// bytes, `A` bytes of room for pending outputs (at least `4 * F`), and routes
/// to `R` nodes through the mesh (as many direct messages across it awaiting
/// their receipt): a small device keeps few ([`SMALL_ROUTES`]), a host
/// [`ROUTES`].
///
/// The run loop, which the shell owns:
///
/// ```text
/// loop {
///     wait for an input (a command, a connection, bytes, a close) or the timeout;
///     node.handle_input(now, input);          // for Received, feed the rest
///                                             // after draining if Consumed(n) < len
///     loop {                                   // after EVERY input, drain:
///         match node.poll_output(now) {
///             Output::Timeout(t) => { timeout = t; break }
///             other => carry it out (write, dial, close, show),
///         }
///     }
/// }
/// ```
///
/// Rules: drain outputs until `Timeout` after every input (an undrained node
/// answers [`NodeError::Busy`] or consumes nothing); give [`Input::Timeout`] no
/// later than asked; inputs for a peer that is gone are ignored.
pub struct Node<const P: usize, const F: usize, const A: usize, const R: usize = SMALL_ROUTES> {
    config: Config,
    peers: PeerTable<Link<F>, P>,
    seen: SeenCache<ORIGINS>,
    /// The next hop to each node heard through the mesh.
    origins: Origins<R>,
    /// Our direct messages across the mesh that await their receipt.
    routed: routed::Awaiting<R>,
    /// When we announce ourselves next (ZERO: not before a link comes up).
    announce_at: Instant,
    /// The random salt our node id is made with, with our key (secure links).
    salt: u64,
    /// The connections' entropy, for the ephemeral keys of sealed messages.
    pool: Pool,
    last_seq: u32,
    outbox: Outbox<A>,
    wake: Option<Instant>,
    stats: Stats,
    /// The peers a fan-out walks, and where the front fan-out is.
    roster: Roster<P>,
    /// The bytes of the last [`Output::Transmit`] of this drain, as a
    /// [`Span::key`] (`u64::MAX`: none): the next one of the same bytes is
    /// marked `shared`. One number, as this is on the fan-out's path.
    last_sent: u64,
    /// A frame's plaintext as it is opened, or its ciphertext as it is sealed
    /// (lent by the Transmit that carries it): secure links only.
    scratch: [u8; F],
}

impl<const P: usize, const F: usize, const A: usize, const R: usize> Node<P, F, A, R> {
    /// The longest text one message may carry.
    pub const MAX_TEXT: usize = F - FRAME_OVERHEAD;
    /// Arena room kept free before taking one more frame: the worst a frame can
    /// need (its event, a relay as a frame and as a line, a receipt).
    const RESERVE: usize = 3 * F + 256;
    /// Job slots kept free before taking one more frame: enough to drop a peer.
    const RESERVE_JOBS: usize = WINDOW + 8;
    /// The same before opening a sealed message, whose frames (at most
    /// [`MAX_BATCH`], F bytes in all) need three times their bytes, and each
    /// at most 96 more (a line's name, an event's sender, a receipt).
    const RESERVE_SEALED: usize = 3 * F + 96 * MAX_BATCH;
    /// Job slots for the same: one frame's, and three (an event, a relay, a
    /// receipt) for each other frame of a batch.
    const RESERVE_SEALED_JOBS: usize = Self::RESERVE_JOBS + 3 * (MAX_BATCH - 1);
    /// Room for a sealed message's frame header at the start of the scratch
    /// buffer: the frames to seal are gathered after it.
    const HEAD: usize = crate::frame::header_len(F);

    /// A node with no peers, configured by `config`. With secure links its
    /// node id is made from its key and the random id `config` gives
    /// ([`node_id`]): peers check a key against the id it is claimed for.
    pub fn new(mut config: Config) -> Self {
        const {
            assert!(F >= 256, "frames must allow at least 256 bytes");
            assert!(A >= 4 * F, "the output arena must hold 4 frames");
        }
        let salt = config.node_id;
        if let Some(secure) = &config.secure {
            config.node_id = node_id(&crate::noise::public_key(&secure.identity), salt);
        }
        // A one-peer node keeps a second slot to tell a newcomer that it is busy.
        let limit = match config.single_peer {
            true => config.max_peers.min(2),
            false => config.max_peers,
        };
        Node {
            peers: PeerTable::new(limit),
            config,
            seen: SeenCache::new(),
            origins: Origins::new(ROUTE_TTL),
            routed: routed::Awaiting::new(),
            announce_at: Instant::ZERO,
            salt,
            pool: Pool::new(),
            last_seq: 0,
            outbox: Outbox::default(),
            wake: None,
            stats: Stats::default(),
            roster: Roster::new(),
            last_sent: u64::MAX,
            scratch: [0; F],
        }
    }

    /// The configuration the node was made with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The longest text one message may carry here: the configured limit,
    /// capped by what a frame can carry ([`Self::MAX_TEXT`]).
    pub fn max_text(&self) -> usize {
        Self::max_text_for(&self.config)
    }

    /// The longest text of a direct message across the mesh: with secure links
    /// it is sealed, which takes [`SEALED_OVERHEAD`](crate::noise::sealed::SEALED_OVERHEAD)
    /// and 9 bytes more of the frame (the sender's salt and name length).
    pub fn max_routed_text(&self) -> usize {
        match self.is_secure() {
            true => self
                .max_text()
                .saturating_sub(crate::noise::sealed::SEALED_OVERHEAD + routed::SEALED_HEAD),
            false => self.max_text(),
        }
    }

    /// [`Self::max_text`] of a node with `config`, before it exists: what a shell
    /// cuts its own long texts to (`serve`'s log), so the node never refuses them.
    pub fn max_text_for(config: &Config) -> usize {
        config.max_text.clamp(1, Self::MAX_TEXT)
    }

    /// What the node dropped or refused so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Every peer, in slot order.
    pub fn peers(&self) -> impl Iterator<Item = PeerInfo<'_>> {
        self.peers.iter().map(|p| PeerInfo {
            id: p.id,
            alias: p.alias(),
            addr: p.addr,
            direction: p.direction,
            phase: p.state.phase,
            unacked: p.state.unacked.len(),
        })
    }

    /// The phase of `peer`'s connection; `None` for a peer that is gone. The shell
    /// asks this rather than guessing from what it was told.
    pub fn phase(&self, peer: PeerId) -> Option<Phase> {
        self.peers.get(peer).map(|p| p.state.phase)
    }

    /// Whether `peer` is ready to chat (its greeting is done, native or text).
    pub fn is_ready(&self, peer: PeerId) -> bool {
        matches!(self.phase(peer), Some(Phase::Ready(_)))
    }

    /// The ids of our messages to `peer` that await its receipt, oldest first
    /// (none for a peer that is gone): what a shell that leaves now must report
    /// as undelivered.
    pub fn awaiting(&self, peer: PeerId) -> &[u32] {
        self.peers.get(peer).map_or(&[], |p| &p.state.unacked)
    }

    /// Feeds one input; see the type's doc for the run loop.
    pub fn handle_input<'a>(
        &mut self,
        now: Instant,
        input: Input<'a>,
    ) -> Result<Handled, NodeError<'a>> {
        self.roster.mark_stale();
        if let Input::Received { peer, bytes } = input {
            return Ok(Handled::Consumed(self.on_received(now, peer, bytes)));
        }
        if let Input::Timeout { held } = input {
            // Marked even when the node is busy: the peers are alive all the same.
            self.held(now, held);
        }
        if !self.ready_for_input() {
            return Err(NodeError::Busy);
        }
        match input {
            Input::Command(command) => self.on_command(now, command).map(|()| Handled::Done),
            Input::Accepted { addr, entropy } => {
                let mut link = Link::new(Phase::Greeting);
                link.refuse = self.refusal(addr);
                if self.is_secure() {
                    link.noise = Noise::Entropy(entropy);
                    self.pool.mix(&entropy);
                }
                let id = self
                    .peers
                    .insert(Some(addr), Direction::Inbound, None, link)
                    .map_err(|(e, _)| NodeError::Accept(AcceptError::new(e)))?;
                self.set_deadline(id, now + self.config.greeting_timeout);
                Ok(Handled::Accepted(id))
            }
            Input::Connected {
                peer,
                addr,
                entropy,
            } => {
                self.on_connected(now, peer, addr, entropy);
                Ok(Handled::Done)
            }
            Input::ConnectFailed { peer, reason } => {
                let again = self.config.reconnect;
                let alias = match self.peers.get_mut(peer) {
                    // A re-dial that failed waits for the next one.
                    Some(p) if again && p.state.redial && p.state.phase == Phase::Dialing => {
                        p.state.phase = Phase::Reconnecting;
                        self.outbox.put(&[p.alias().as_bytes()])
                    }
                    Some(_) => self
                        .peers
                        .remove(peer)
                        .and_then(|p| self.outbox.put(&[p.alias().as_bytes()])),
                    None => None,
                };
                let reason = self.outbox.put(&[reason.as_bytes()]);
                if let (Some(alias), Some(reason)) = (alias, reason) {
                    self.event(Event::ConnectFailed {
                        peer,
                        alias,
                        reason,
                    });
                }
                Ok(Handled::Done)
            }
            Input::Redial { peer, host, port } => {
                if host.len() > MAX_HOST {
                    return Err(NodeError::HostTooLong);
                }
                let Some(p) = self
                    .peers
                    .get_mut(peer)
                    .filter(|p| p.state.phase == Phase::Reconnecting)
                else {
                    return Err(NodeError::Lookup(LookupError::NoSuchId(peer.number())));
                };
                p.state.phase = Phase::Dialing;
                if let Some(host) = self.outbox.put(&[host.as_bytes()]) {
                    self.outbox.push(Job::Connect { peer, host, port });
                }
                Ok(Handled::Done)
            }
            Input::Closed { peer, error } => {
                let reason = match error {
                    None => self.closed_reason(peer).or(Some(Reason::Closed)),
                    Some(e) => self.outbox.put(&[e.as_bytes()]).map(Reason::Lost),
                };
                self.drop_peer(peer, reason.unwrap_or(Reason::Closed), false);
                Ok(Handled::Done)
            }
            Input::Timeout { .. } => {
                self.on_timeout(now);
                Ok(Handled::Done)
            }
            Input::Vetted { peer, trusted } => {
                self.vetted(now, peer, trusted);
                Ok(Handled::Done)
            }
            Input::Received { .. } => Ok(Handled::Done),
        }
    }

    /// Peers whose bytes the shell holds unfed (flow control): each is alive, and
    /// a frame it is in the middle of is late by our doing, not its own.
    fn held(&mut self, now: Instant, held: &[PeerId]) {
        for &peer in held {
            if let Some(p) = self.peers.get_mut(peer) {
                p.state.last_rx = now;
                p.state.pinged = None;
                if p.state.frame_since.is_some() {
                    p.state.frame_since = Some(now);
                }
            }
        }
    }

    /// The next thing to do; [`Output::Timeout`] once there is nothing.
    #[must_use = "every output must be carried out, until Output::Timeout"]
    pub fn poll_output(&mut self, _now: Instant) -> Output<'_> {
        let job = loop {
            // Only a fan-out's few fields are copied: it stays queued until its last
            // receiver, and a whole `Job` (an event's, the largest) costs more to copy.
            let (except, native, line, next, routers) = match self.outbox.jobs.front() {
                None => {
                    self.outbox.reset_if_empty();
                    // The drain ends: the arena's spans may come back.
                    self.last_sent = u64::MAX;
                    return Output::Timeout(self.wake);
                }
                Some(&Job::Fanout {
                    except,
                    native,
                    line,
                    next,
                    routers,
                }) => (except, native, line, next, routers),
                Some(_) => match self.outbox.jobs.pop_front() {
                    // A frame for a secure link is sealed for it, or not sent.
                    Some(Job::Send { peer, data }) => match self.carry(peer) {
                        Carry::Raw => break Job::Send { peer, data },
                        Carry::Seal => match self.seal_for(peer, data, Follow::Sends) {
                            Some(sealed) => return self.sealed(peer, sealed),
                            None => continue,
                        },
                        Carry::Skip => continue,
                    },
                    Some(Job::Taken) => continue,
                    Some(job) => break job,
                    None => continue,
                },
            };
            let pattern = (except, line.is_some(), routers);
            self.roster.refresh(&self.peers);
            // The roster is in slot order: the fan-out goes on at the first
            // slot from `next`, most often where the last poll left it.
            let found = self.roster.onward(next).find_map(|(i, id, phase)| {
                let data = match phase {
                    _ if Some(id) == except => None,
                    // Announces go only where they are understood (off the
                    // room's path: the flag is false for room messages).
                    Phase::Ready(Kind::Native) if routers && !self.announces_to(id) => None,
                    // Not known yet how it talks: its line is held for it.
                    Phase::Greeting => return line.map(|_| (i, id, None, false)),
                    Phase::Ready(Kind::Native) => native,
                    Phase::Ready(Kind::Text(TextMode::Lines)) => line,
                    Phase::Ready(Kind::Text(TextMode::Bare)) => line.map(|l| l.shorter(1)),
                    _ => None,
                }?;
                Some((i, id, Some(data), phase == Phase::Ready(Kind::Native)))
            });
            let Some((i, peer, data, native)) = found else {
                self.roster.rewind();
                self.outbox.jobs.pop_front();
                continue;
            };
            self.roster.advance(i);
            let slot = peer.slot();
            if let Some(Job::Fanout { next, .. }) = self.outbox.jobs.front_mut() {
                *next = slot + 1;
            }
            let Some(data) = data else {
                self.hold(peer, line);
                continue;
            };
            if native {
                match self.carry(peer) {
                    Carry::Raw => {}
                    Carry::Seal => {
                        let follow = Follow::Fanouts {
                            pattern,
                            next,
                            slot,
                        };
                        let Some(sealed) = self.seal_for(peer, data, follow) else {
                            continue;
                        };
                        return self.sealed(peer, sealed);
                    }
                    Carry::Skip => continue,
                }
            }
            let key = data.key();
            let shared = self.last_sent == key;
            self.last_sent = key;
            return Output::Transmit {
                peer,
                data: self.outbox.bytes(data),
                shared,
            };
        };
        self.job_output(job)
    }

    /// The Transmit of the `sealed` bytes of the scratch buffer: frames sealed
    /// for `peer` alone, so never shared.
    fn sealed(&mut self, peer: PeerId, sealed: core::ops::Range<usize>) -> Output<'_> {
        self.last_sent = u64::MAX;
        Output::Transmit {
            peer,
            data: self.scratch.get(sealed).unwrap_or_default(),
            shared: false,
        }
    }

    /// The output for a job that is not a fan-out.
    #[inline(never)]
    fn job_output(&mut self, job: Job) -> Output<'_> {
        let outbox = &self.outbox;
        match job {
            Job::Send { peer, data } | Job::Raw { peer, data } => {
                // A span of its own: never the bytes of the Transmit before.
                self.last_sent = data.key();
                Output::Transmit {
                    peer,
                    data: outbox.bytes(data),
                    shared: false,
                }
            }
            Job::Connect { peer, host, port } => Output::Connect {
                peer,
                host: outbox.text(host),
                port,
            },
            Job::Close { peer } => Output::Close { peer },
            Job::Event(event) => Output::Event(event_text(outbox, event)),
            // Handled in `poll_output`'s loop.
            Job::Fanout { .. } | Job::Taken => Output::Timeout(self.wake),
        }
    }

    /// Keeps a room line for a connection whose kind is not known yet, if it fits
    /// (the connection's receive buffer bounds what is held); see [`Node::deliver_held`].
    #[inline(never)]
    fn hold(&mut self, peer: PeerId, line: Option<Span>) {
        let Some(line) = line else {
            return;
        };
        let bytes = self.outbox.bytes(line);
        if let Some(p) = self.peers.get_mut(peer)
            && let Rx::Banner(_, held) = &mut p.state.rx
            && held.extend_from_slice(bytes).is_err()
        {
            self.stats.unheld += 1;
        }
    }

    /// Room in the outbox for what the next frame from `peer` may need: on a
    /// secure link, a sealed message of up to [`MAX_BATCH`] frames.
    fn has_room_for(&self, peer: PeerId) -> bool {
        let sealed = self.peers.get(peer).is_some_and(|p| {
            matches!(&p.state.noise, Noise::Session(s) if s.step() == crate::noise::Step::Transport)
        });
        match sealed {
            true => self
                .outbox
                .has_room(Self::RESERVE_SEALED, Self::RESERVE_SEALED_JOBS),
            false => self.outbox.has_room(Self::RESERVE, Self::RESERVE_JOBS),
        }
    }

    fn ready_for_input(&self) -> bool {
        self.outbox.is_empty() || self.outbox.has_room(Self::RESERVE, Self::RESERVE_JOBS)
    }

    fn event(&mut self, event: Event<Span>) {
        // Room was checked before the input was taken (RESERVE_JOBS).
        self.outbox.push(Job::Event(event));
    }

    fn set_deadline(&mut self, id: PeerId, at: Instant) {
        if let Some(p) = self.peers.get_mut(id) {
            p.state.deadline = Some(at);
            self.wake_by(at);
        }
    }

    /// Makes sure the node wakes no later than `at`. Waking early is harmless:
    /// the timeout looks at every peer's timers and sets the next wake-up.
    fn wake_by(&mut self, at: Instant) {
        self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
    }

    // ---- leaving ----

    fn fault(&mut self, peer: PeerId, fault: Fault) {
        self.stats.faults += 1;
        self.drop_peer(peer, Reason::Fault(fault), true);
    }

    /// Removes a peer: its pending text is delivered, its unconfirmed messages
    /// reported, a native peer told why (when we close), and the person told. With
    /// `reconnect`, an outbound peer that dropped by itself stays, as
    /// [`Phase::Reconnecting`], under its id and alias.
    fn drop_peer(&mut self, peer: PeerId, reason: Reason<Span>, close: bool) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        if matches!(&p.state.rx, Rx::Text(buf) if !buf.is_empty()) {
            self.flush_text(peer, usize::MAX);
        }
        let again = self.config.reconnect
            && self.peers.get(peer).is_some_and(|p| p.state.redial)
            && reason.map(|s| self.outbox.text(s)).redials();
        let (mut link, alias, source) = match again {
            true => {
                let Some(p) = self.peers.get_mut(peer) else {
                    return;
                };
                let mut link = Link::new(Phase::Reconnecting);
                link.redial = true;
                let old = core::mem::replace(&mut p.state, link);
                let alias = Alias::try_from(p.alias()).unwrap_or_default();
                (old, alias, p.alias_source())
            }
            false => {
                let Some(p) = self.peers.remove(peer) else {
                    return;
                };
                let alias = Alias::try_from(p.alias()).unwrap_or_default();
                let source = p.alias_source();
                (p.state, alias, source)
            }
        };
        for &id in &link.unacked {
            self.event(Event::Undelivered { peer, id });
        }
        self.routed_link_lost(peer);
        // A second link that waited on this one takes over.
        let waiting = match link.phase {
            Phase::Ready(Kind::Native) => self
                .peers
                .iter()
                .find(|w| w.state.awaits_twin && w.state.remote == link.remote)
                .map(|w| w.id),
            _ => None,
        };
        if close {
            let native = matches!(link.phase, Phase::Hello | Phase::Ready(Kind::Native));
            if native {
                let mut why: String<128> = String::new();
                match reason {
                    // Told to the other side: "disconnected here" or a peer number of
                    // ours would be wrong there.
                    Reason::Local => {
                        let _ = why.push_str("disconnected");
                    }
                    Reason::Duplicate { .. } => {
                        let _ = why.push_str("duplicate link");
                    }
                    Reason::Untrusted => {
                        let _ = why.push_str(
                            "your key is not the one pinned for your name here; after checking \
                             your fingerprint, its owner may /trust you",
                        );
                    }
                    _ => {
                        let _ = fmt::write(
                            &mut why,
                            format_args!("{}", reason.map(|s| self.outbox.text(s))),
                        );
                    }
                }
                match &mut link.noise {
                    // Sealed now: the session goes with the link.
                    Noise::Session(session) => self.seal_bye(peer, session, &why),
                    _ if self.is_secure() => {}
                    _ => {
                        if let Ok(data) = self.outbox.put_message(&Message::Bye { reason: &why }) {
                            self.outbox.push(Job::Send { peer, data });
                        }
                    }
                }
            }
            self.outbox.push(Job::Close { peer });
        }
        if let Some(span) = self.outbox.put(&[alias.as_bytes()]) {
            self.event(Event::Disconnected {
                peer,
                alias: span,
                reason,
            });
        }
        if let Phase::Ready(_) = link.phase {
            self.notice(None, format_args!("{alias} left"));
        }
        if let Some(waiting) = waiting {
            let chosen = source == AliasSource::Chosen;
            self.adopt(waiting, if chosen { &alias } else { "" });
        }
    }
}

/// What one step over received bytes did.
enum Step {
    /// Took this many bytes; go on with the rest.
    Took(usize),
    /// Took this many bytes and needs more input (or the peer is gone).
    Wait(usize),
}

/// An event's texts, lent from the outbox. Out of line: inlined, it made the
/// fan-out loop of `poll_output` dearer than the UTF-8 checks it holds.
#[inline(never)]
fn event_text<const A: usize>(outbox: &Outbox<A>, event: Event<Span>) -> Event<&str> {
    event.map(|s| outbox.text(s))
}
