//! Direct messages across the mesh: ours goes to the next hop the originator
//! table names, each node passes it on towards its destination, and the
//! destination's receipt comes back the same way (each relay learned the way
//! back from the message itself). A relay with no way on answers the sender at
//! once with why, rather than leave it waiting: the sender is never left
//! guessing, and a timeout covers only a link that fails further on.

use heapless::{String, Vec};

use super::{Event, Kind, Node, NodeError, Phase, Routed, Unroutable};
use crate::limits::{MAX_NAME, ROUTED_WAIT, ROUTED_WINDOW};
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
}

/// A routed message copied out of the receive buffer.
pub(super) struct Incoming {
    pub(super) origin: u64,
    pub(super) dest: u64,
    pub(super) id: u32,
    pub(super) hops: u8,
    pub(super) name: String<MAX_NAME>,
    /// For us: its sender's name and text, in the outbox.
    pub(super) shown: Option<(Span, Span)>,
    /// For another node: the frame to pass on, with a hop less (none when
    /// no hop is left).
    pub(super) relay: Option<Span>,
}

impl Incoming {
    /// Copies what is needed of `msg` (a [`Message::Routed`]) for node `me`: a
    /// name, and either the text to show or the frame to pass on.
    pub(super) fn stage<const A: usize>(
        outbox: &mut crate::outbox::Outbox<A>,
        me: u64,
        msg: Message<'_>,
    ) -> Option<Self> {
        let Message::Routed {
            origin,
            dest,
            id,
            hops,
            name,
            text,
        } = msg
        else {
            return None;
        };
        let (shown, relay) = match dest == me {
            true => {
                let from = outbox.put(&[name.as_bytes()]);
                let text = outbox.put(&[text.as_bytes()]);
                (from.zip(text), None)
            }
            false => {
                let relay = route::relay_hops(hops).and_then(|hops| {
                    let msg = Message::Routed {
                        origin,
                        dest,
                        id,
                        hops,
                        name,
                        text,
                    };
                    outbox.put_message(&msg).ok()
                });
                (None, relay)
            }
        };
        Some(Incoming {
            origin,
            dest,
            id,
            hops,
            name: String::try_from(name).unwrap_or_default(),
            shown,
            relay,
        })
    }
}

impl<const P: usize, const F: usize, const A: usize, const R: usize> Node<P, F, A, R> {
    /// The nodes reachable through the mesh and by whom: every fresh route
    /// but those to a node linked here directly.
    pub fn reachable(&self, now: Instant) -> impl Iterator<Item = Reachable<'_>> {
        self.origins.iter(now).filter_map(move |r| {
            if self.direct_link(r.node, None).is_some() {
                return None;
            }
            let via = self.peers.get(r.via)?;
            Some(Reachable {
                node: r.node,
                name: &r.name,
                via: r.via,
                via_alias: via.alias(),
                hops: r.hops,
            })
        })
    }

    /// Our direct messages across the mesh that await their receipt, oldest first.
    pub fn routed_awaiting(&self) -> &[Pending] {
        &self.routed.list
    }

    /// A ready link to `node` that relays direct messages, but `except`.
    fn direct_link(&self, node: u64, except: Option<PeerId>) -> Option<PeerId> {
        self.peers
            .iter()
            .find(|p| {
                Some(p.id) != except
                    && p.state.routes
                    && p.state.remote == node
                    && p.state.phase == Phase::Ready(Kind::Native)
            })
            .map(|p| p.id)
    }

    /// The link a message to `node` leaves by (never `except`, where it came
    /// from): a direct link, else the route's next hop while that link is ready.
    fn next_hop(&self, now: Instant, node: u64, except: Option<PeerId>) -> Option<PeerId> {
        if let Some(peer) = self.direct_link(node, except) {
            return Some(peer);
        }
        let via = self.origins.get(now, node)?.via;
        let ready = self
            .peers
            .get(via)
            .is_some_and(|p| p.state.routes && p.state.phase == Phase::Ready(Kind::Native));
        (ready && Some(via) != except).then_some(via)
    }

    /// Learns that `node` is `hops` away through `peer`, if `peer` can carry
    /// direct messages (an older node cannot be a next hop).
    pub(super) fn learn_route(
        &mut self,
        now: Instant,
        peer: PeerId,
        node: u64,
        hops: u8,
        name: &str,
    ) {
        let routes = self.peers.get(peer).is_some_and(|p| p.state.routes);
        if routes && node != self.config.node_id {
            self.origins.learn(now, node, peer, hops, name);
        }
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
        self.check_len(text)?;
        let Some(via) = self.next_hop(now, node, None) else {
            return Err(NodeError::NoRoute(name));
        };
        if self.routed.list.len() >= R.min(ROUTED_WINDOW) {
            return Err(NodeError::RoutedFull);
        }
        let id = self.routed.next_id;
        let msg = Message::Routed {
            origin: self.config.node_id,
            dest: node,
            id,
            hops: self.config.hops,
            name: &self.config.name,
            text,
        };
        let data = self.outbox.put_message(&msg).map_err(|_| NodeError::Busy)?;
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
        self.learn_route(now, peer, msg.origin, travelled, &msg.name);
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
                },
            });
            self.answer(peer, &msg, ROUTED_DELIVERED);
            return;
        }
        let why = match (msg.relay, self.next_hop(now, msg.dest, Some(peer))) {
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
            self.learn_route(now, peer, dest, travelled, "");
        }
        if origin != self.config.node_id {
            let next = self.next_hop(now, origin, Some(peer));
            let hops = route::relay_hops(hops);
            let (Some(next), Some(hops)) = (next, hops) else {
                self.stats.unrouted += 1;
                return;
            };
            let ack = Message::RoutedAck {
                origin,
                dest,
                id,
                hops,
                code,
            };
            if let Ok(data) = self.outbox.put_message(&ack) {
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
        self.origins.forget_via(peer);
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
