//! Direct messages across the mesh: ours goes to the next hop the originator
//! table names, each node passes it on towards its destination, and the
//! destination's receipt comes back the same way (each relay learned the way
//! back from the message itself). A relay with no way on answers the sender at
//! once with why, rather than leave it waiting: the sender is never left
//! guessing, and a timeout covers only a link that fails further on.
//!
//! A node with a key seals the sender's name and text to the destination's
//! key (learned from its announce) as one Noise `X` message
//! ([`crate::noise::sealed`]), bound to the envelope: relays read where it
//! goes and nothing else, and the destination learns who sealed it.

use heapless::{String, Vec};

use super::{Event, Kind, Node, NodeError, Phase, Routed, Unroutable};
use crate::limits::{MAX_NAME, ROUTED_WAIT, ROUTED_WINDOW};
use crate::noise::sealed;
use crate::noise::{KEY_LEN, node_id};
use crate::outbox::{Job, Span};
use crate::peers::{LookupError, PeerId};
use crate::route;
use crate::time::Instant;
use crate::wire::{Message, ROUTED_DELIVERED};

/// One of our direct messages across the mesh, awaiting its receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    /// The destination's node id.
    pub node: u64,
    /// Our id of the message.
    pub id: u32,
    /// The next hop it left by.
    pub via: PeerId,
    /// When it left.
    pub since: Instant,
}

/// Our direct messages across the mesh that await their receipt, and the id of the next.
pub(super) struct Awaiting<const R: usize> {
    list: Vec<Pending, R>,
    next_id: u32,
}

impl<const R: usize> Awaiting<R> {
    pub(super) const fn new() -> Self {
        Awaiting {
            list: Vec::new(),
            next_id: 1,
        }
    }
}

/// A node reachable through the mesh, as [`Node::reachable`] lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reachable<'a> {
    /// The node's id.
    pub node: u64,
    /// The name it announced.
    pub name: &'a str,
    /// The link a message to it leaves by.
    pub via: PeerId,
    /// That link's alias here.
    pub via_alias: &'a str,
    /// Nodes a message crosses to reach it (1: a neighbour).
    pub hops: u8,
    /// Its static public key, once its announce came: what a direct message
    /// to it is sealed to (none yet: a secure node cannot send it one).
    pub key: Option<&'a [u8; KEY_LEN]>,
}

/// A routed message copied out of the receive buffer.
pub(super) struct Incoming {
    pub(super) origin: u64,
    pub(super) dest: u64,
    pub(super) id: u32,
    pub(super) hops: u8,
    /// The sender's name (empty when sealed and not for us).
    pub(super) name: String<MAX_NAME>,
    /// It is a [`Message::Sealed`].
    pub(super) sealed: bool,
    /// For us: its sender's name and text, in the outbox.
    pub(super) shown: Option<(Span, Span)>,
    /// For us, sealed, but it did not open with our key and its sender's.
    pub(super) unreadable: bool,
    /// For another node: the frame to pass on, with a hop less (none when
    /// no hop is left).
    pub(super) relay: Option<Span>,
}

impl Incoming {
    /// Copies what is needed of `msg` (a [`Message::Routed`] or
    /// [`Message::Sealed`]) for node `me`, whose static secret is `identity`:
    /// the text to show (opened, when sealed) or the frame to pass on.
    pub(super) fn stage<const A: usize, const F: usize>(
        outbox: &mut crate::outbox::Outbox<A>,
        me: u64,
        identity: Option<&[u8; KEY_LEN]>,
        msg: Message<'_>,
    ) -> Option<Self> {
        let (origin, dest, id, hops) = match msg {
            Message::Routed {
                origin,
                dest,
                id,
                hops,
                ..
            }
            | Message::Sealed {
                origin,
                dest,
                id,
                hops,
                ..
            } => (origin, dest, id, hops),
            _ => return None,
        };
        let mut staged = Incoming {
            origin,
            dest,
            id,
            hops,
            name: String::new(),
            sealed: matches!(msg, Message::Sealed { .. }),
            shown: None,
            unreadable: false,
            relay: None,
        };
        match msg {
            Message::Routed { name, text, .. } if dest == me => {
                staged.name = String::try_from(name).unwrap_or_default();
                let from = outbox.put(&[name.as_bytes()]);
                let text = outbox.put(&[text.as_bytes()]);
                staged.shown = from.zip(text);
            }
            Message::Sealed { sealed, .. } if dest == me => {
                let mut plain = [0; F];
                match identity.and_then(|me| open(me, &msg, sealed, &mut plain)) {
                    Some((name, text)) => {
                        staged.name = String::try_from(name).unwrap_or_default();
                        let from = outbox.put(&[name.as_bytes()]);
                        let text = outbox.put(&[text.as_bytes()]);
                        staged.shown = from.zip(text);
                    }
                    None => staged.unreadable = true,
                }
            }
            _ => {
                if let Message::Routed { name, .. } = msg {
                    staged.name = String::try_from(name).unwrap_or_default();
                }
                staged.relay = route::relay_hops(hops)
                    .and_then(|hops| outbox.put_message(&msg.with_hops(hops)).ok());
            }
        }
        Some(staged)
    }
}

/// The bytes of a sealed plaintext before the name: the salt and the name's length.
pub(super) const SEALED_HEAD: usize = 9;

/// What a sealed message binds besides its sealed bytes: the envelope but its
/// hops, which each relay counts down.
fn envelope(origin: u64, dest: u64, id: u32) -> [u8; 20] {
    let mut ad = [0; 20];
    ad[..8].copy_from_slice(&origin.to_le_bytes());
    ad[8..16].copy_from_slice(&dest.to_le_bytes());
    ad[16..].copy_from_slice(&id.to_le_bytes());
    ad
}

/// Opens the sealed bytes of `msg` into `plain`: the sender's name and text,
/// when it was sealed to `identity` by the key of its origin's node id. The
/// plaintext is the sender's salt (8 bytes), its name's length (a byte), its
/// name and the text: the salt proves the sealing key is the origin's.
fn open<'p>(
    identity: &[u8; KEY_LEN],
    msg: &Message<'_>,
    sealed: &[u8],
    plain: &'p mut [u8],
) -> Option<(&'p str, &'p str)> {
    let Message::Sealed {
        origin, dest, id, ..
    } = *msg
    else {
        return None;
    };
    let (sender, len) = sealed::open(identity, sealed, &envelope(origin, dest, id), plain).ok()?;
    let (salt, rest) = plain.get(..len)?.split_first_chunk::<8>()?;
    if node_id(&sender, u64::from_le_bytes(*salt)) != origin {
        return None;
    }
    let (&name_len, rest) = rest.split_first()?;
    let (name, text) = rest.split_at_checked(usize::from(name_len))?;
    if name.len() > MAX_NAME {
        return None;
    }
    Some((
        core::str::from_utf8(name).ok()?,
        core::str::from_utf8(text).ok()?,
    ))
}

impl<const P: usize, const F: usize, const A: usize, const R: usize> Node<P, F, A, R> {
    /// The nodes reachable through the mesh and by whom: every fresh route
    /// but those to a node linked here directly.
    pub fn reachable(&self, now: Instant) -> impl Iterator<Item = Reachable<'_>> {
        self.origins.iter(now).filter_map(move |r| {
            if self.direct_link(r.node, None, false).is_some() {
                return None;
            }
            let via = self.peers.get(r.via)?;
            Some(Reachable {
                node: r.node,
                name: &r.name,
                via: r.via,
                via_alias: via.alias(),
                hops: r.hops,
                key: r.key.as_ref(),
            })
        })
    }

    /// Our direct messages across the mesh that await their receipt, oldest first.
    pub fn routed_awaiting(&self) -> &[Pending] {
        &self.routed.list
    }

    /// Whether the link `peer` is ready and carries direct messages (`sealed`
    /// ones too, when asked).
    fn carries(&self, peer: PeerId, sealed: bool) -> bool {
        self.peers.get(peer).is_some_and(|p| {
            p.state.routes
                && (p.state.seals || !sealed)
                && p.state.phase == Phase::Ready(Kind::Native)
        })
    }

    /// A ready link to `node` that relays direct messages (`sealed` ones, when
    /// asked), but `except`.
    fn direct_link(&self, node: u64, except: Option<PeerId>, sealed: bool) -> Option<PeerId> {
        self.peers
            .iter()
            .find(|p| Some(p.id) != except && p.state.remote == node && self.carries(p.id, sealed))
            .map(|p| p.id)
    }

    /// The link a message to `node` leaves by (never `except`, where it came
    /// from): a direct link, else the route's next hop while that link is
    /// ready; for a `sealed` message, a link that knows such messages.
    fn next_hop(
        &self,
        now: Instant,
        node: u64,
        except: Option<PeerId>,
        sealed: bool,
    ) -> Option<PeerId> {
        if let Some(peer) = self.direct_link(node, except, sealed) {
            return Some(peer);
        }
        let via = self.origins.get(now, node)?.via;
        (self.carries(via, sealed) && Some(via) != except).then_some(via)
    }

    /// Learns that `node` is `hops` away through `peer`, if `peer` can carry
    /// direct messages (an older node cannot be a next hop). `fresh`: it came
    /// with the first copy of a new message of the node's, whose way is the
    /// route now ([`Origins::renew`](crate::route::Origins::renew)).
    pub(super) fn learn_route(
        &mut self,
        now: Instant,
        peer: PeerId,
        node: u64,
        hops: u8,
        name: &str,
        fresh: bool,
    ) {
        let routes = self.peers.get(peer).is_some_and(|p| p.state.routes);
        if !routes || node == self.config.node_id {
            return;
        }
        match fresh {
            true => self.origins.renew(now, node, peer, hops, name),
            false => self.origins.learn(now, node, peer, hops, name),
        };
    }

    /// `send <name> <text>` where no peer is called `name`: to the node of that
    /// name heard through the mesh (by its route, even an aged one: a way to it
    /// is looked for afresh).
    pub(super) fn send_routed_to<'a>(
        &mut self,
        now: Instant,
        name: &'a str,
        text: &str,
    ) -> Result<(), NodeError<'a>> {
        // A name nobody here has heard of is the lookup's error, as before
        // routing; a node heard of but with no usable way is `NoRoute`.
        // A node linked here is sent to by its alias here, as before: a name
        // a person changed is not found again through the mesh.
        let known = self.origins.iter_all().find(|r| r.name == name);
        let linked = |node| {
            self.peers.iter().any(|p| {
                p.state.remote == node && matches!(p.state.phase, Phase::Ready(Kind::Native))
            })
        };
        let Some(node) = known.map(|r| r.node).filter(|&node| !linked(node)) else {
            return Err(NodeError::Lookup(LookupError::NoSuchName(name)));
        };
        self.send_routed(now, node, name, text)
    }

    /// Sends `text` to the node `node` (called `name`) through the mesh.
    pub(super) fn send_routed<'a>(
        &mut self,
        now: Instant,
        node: u64,
        name: &'a str,
        text: &str,
    ) -> Result<(), NodeError<'a>> {
        let max = self.max_routed_text();
        if text.len() > max {
            return Err(NodeError::TooLong {
                len: text.len(),
                max,
            });
        }
        let sealed = self.is_secure();
        let Some(via) = self.next_hop(now, node, None, sealed) else {
            return Err(NodeError::NoRoute(name));
        };
        if self.routed.list.len() >= R.min(ROUTED_WINDOW) {
            return Err(NodeError::RoutedFull);
        }
        let id = self.routed.next_id;
        let data = match sealed {
            true => self.put_sealed(node, id, name, text)?,
            false => {
                let msg = Message::Routed {
                    origin: self.config.node_id,
                    dest: node,
                    id,
                    hops: self.config.hops,
                    name: &self.config.name,
                    text,
                };
                self.outbox.put_message(&msg).map_err(|_| NodeError::Busy)?
            }
        };
        let shown = self.outbox.put(&[name.as_bytes()]).ok_or(NodeError::Busy)?;
        self.routed.next_id = id.wrapping_add(1);
        let pending = Pending {
            node,
            id,
            via,
            since: now,
        };
        // Cannot fail: checked not full above.
        let _ = self.routed.list.push(pending);
        self.outbox.push(Job::Send { peer: via, data });
        self.event(Event::Routed {
            peer: via,
            node,
            name: shown,
            id,
            what: Routed::Sent,
        });
        self.wake_by(now + ROUTED_WAIT);
        Ok(())
    }

    /// Our name and `text` sealed to the key of `node` (called `name`) as the
    /// frame of a [`Message::Sealed`] with our id `id`, in the outbox.
    fn put_sealed<'a>(
        &mut self,
        node: u64,
        id: u32,
        name: &'a str,
        text: &str,
    ) -> Result<Span, NodeError<'a>> {
        let key = self.origins.iter_all().find(|r| r.node == node);
        let Some(key) = key.and_then(|r| r.key) else {
            return Err(NodeError::NoKey(name));
        };
        let Some(identity) = self.config.secure.as_ref().map(|s| s.identity) else {
            return Err(NodeError::NoKey(name));
        };
        // Drawn from the entropy of our connections, of which the next hop's
        // is one: never empty here, and failing closed if it were.
        let Some(entropy) = self.pool.draw() else {
            return Err(NodeError::NoRoute(name));
        };
        let me = self.config.node_id;
        let mine = self.config.name.as_bytes();
        let mut plain = [0; F];
        let len = SEALED_HEAD + mine.len() + text.len();
        let Some(body) = plain.get_mut(..len) else {
            return Err(NodeError::TooLong {
                len: text.len(),
                max: self.max_routed_text(),
            });
        };
        body[..8].copy_from_slice(&self.salt.to_le_bytes());
        // A name is at most MAX_NAME (32) bytes: its length fits a byte.
        body[8] = mine.len() as u8;
        body[SEALED_HEAD..SEALED_HEAD + mine.len()].copy_from_slice(mine);
        body[SEALED_HEAD + mine.len()..].copy_from_slice(text.as_bytes());
        let ad = envelope(me, node, id);
        let sealed = sealed::seal(&identity, &key, &entropy, &ad, body, &mut self.scratch)
            .map_err(|_| NodeError::TooLong {
                len: text.len(),
                max: self.max_routed_text(),
            })?;
        let msg = Message::Sealed {
            origin: me,
            dest: node,
            id,
            hops: self.config.hops,
            sealed: self.scratch.get(..sealed).unwrap_or_default(),
        };
        self.outbox.put_message(&msg).map_err(|_| NodeError::Busy)
    }

    /// A routed message from `peer`: shown and receipted when it is for us,
    /// else passed on towards its destination, or answered with why not.
    pub(super) fn on_routed(&mut self, now: Instant, peer: PeerId, msg: Incoming) {
        let me = self.config.node_id;
        if msg.origin == me {
            // Ours came back round: a loop the hop limit ends here.
            self.stats.unrouted += 1;
            return;
        }
        let travelled = route::distance(self.config.hops, msg.hops);
        self.learn_route(now, peer, msg.origin, travelled, &msg.name, false);
        if msg.dest == me && msg.unreadable {
            self.stats.unrouted += 1;
            self.answer(peer, &msg, Unroutable::Unreadable.code());
            return;
        }
        if msg.dest == me {
            // Receipted only when shown (the outbox had room for its text);
            // otherwise the sender's wait runs out.
            let Some((name, text)) = msg.shown else {
                self.stats.unrouted += 1;
                return;
            };
            self.event(Event::Routed {
                peer,
                node: msg.origin,
                name,
                id: msg.id,
                what: Routed::Received {
                    text,
                    hops: travelled,
                    sealed: msg.sealed,
                },
            });
            self.answer(peer, &msg, ROUTED_DELIVERED);
            return;
        }
        let why = match (
            msg.relay,
            self.next_hop(now, msg.dest, Some(peer), msg.sealed),
        ) {
            (Some(data), Some(next)) => {
                self.outbox.push(Job::Send { peer: next, data });
                return;
            }
            (None, _) => Unroutable::HopLimit,
            (Some(_), None) => Unroutable::NoRoute,
        };
        self.stats.unrouted += 1;
        self.answer(peer, &msg, why.code());
    }

    /// Sends the receipt (or refusal, by `code`) of `msg` back over `peer`.
    fn answer(&mut self, peer: PeerId, msg: &Incoming, code: u8) {
        let ack = Message::RoutedAck {
            origin: msg.origin,
            dest: msg.dest,
            id: msg.id,
            hops: self.config.hops,
            code,
        };
        if let Ok(data) = self.outbox.put_message(&ack) {
            self.outbox.push(Job::Send { peer, data });
        }
    }

    /// A routed receipt from `peer`: ours settles a pending message; another's
    /// goes on towards its origin.
    pub(super) fn on_routed_ack(&mut self, now: Instant, peer: PeerId, ack: Message<'_>) {
        let Message::RoutedAck {
            origin,
            dest,
            id,
            hops,
            code,
        } = ack
        else {
            return;
        };
        if code == ROUTED_DELIVERED {
            // It began at the destination: the way back is a way there.
            let travelled = route::distance(self.config.hops, hops);
            self.learn_route(now, peer, dest, travelled, "", false);
        }
        if origin != self.config.node_id {
            let next = self.next_hop(now, origin, Some(peer), false);
            let hops = route::relay_hops(hops);
            let (Some(next), Some(hops)) = (next, hops) else {
                self.stats.unrouted += 1;
                return;
            };
            if let Ok(data) = self.outbox.put_message(&ack.with_hops(hops)) {
                self.outbox.push(Job::Send { peer: next, data });
            }
            return;
        }
        let list = &mut self.routed.list;
        let Some(at) = list.iter().position(|p| p.node == dest && p.id == id) else {
            self.stats.stray_acks += 1;
            return;
        };
        let pending = list.remove(at);
        let what = match Unroutable::from_code(code) {
            None => Routed::Delivered,
            Some(why) => Routed::Undelivered(why),
        };
        self.settle(pending, what);
    }

    /// Tells the person what became of `pending` (with the name its route
    /// knows, if it is still known).
    fn settle(&mut self, pending: Pending, what: Routed<Span>) {
        let name = self
            .origins
            .iter_all()
            .find(|r| r.node == pending.node)
            .map_or("", |r| r.name.as_str());
        // Never silence: with no room for the name, the event goes without it.
        let name = self.outbox.put(&[name.as_bytes()]).unwrap_or_default();
        self.event(Event::Routed {
            peer: pending.via,
            node: pending.node,
            name,
            id: pending.id,
            what,
        });
    }

    /// The link `peer` is gone: routes through it are forgotten, and our
    /// messages that left by it are undelivered (their receipts would come
    /// back by it).
    pub(super) fn routed_link_lost(&mut self, peer: PeerId) {
        while let Some(at) = self.routed.list.iter().position(|p| p.via == peer) {
            let pending = self.routed.list.remove(at);
            self.settle(pending, Routed::Undelivered(Unroutable::LinkLost));
        }
        self.origins.lose_via(peer);
    }

    /// Our messages whose receipt is overdue are undelivered. Sets the
    /// wake-up for the next that falls due. (Aged routes are not used, but
    /// stay until a newer one needs the room: their names still tell "heard
    /// of, no way now" from "never heard of".)
    pub(super) fn routed_timeouts(&mut self, now: Instant) {
        while let Some(at) = self
            .routed
            .list
            .iter()
            .position(|p| p.since + ROUTED_WAIT <= now)
        {
            let pending = self.routed.list.remove(at);
            self.settle(pending, Routed::Undelivered(Unroutable::Timeout));
        }
        if let Some(due) = self.routed.list.iter().map(|p| p.since + ROUTED_WAIT).min() {
            self.wake_by(due);
        }
    }
}
