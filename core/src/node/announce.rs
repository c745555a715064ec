//! Announces: each node floods its id, name and key through the mesh, so that
//! every node has a route to it, and the key to seal direct messages to it,
//! though it never spoke in the room. Like batman-adv's originator messages,
//! but event-driven first: a node announces itself soon after a link of its
//! comes up and after it hears of a node new to it (so a newcomer and the mesh
//! learn each other in one exchange), and every
//! [`Config::announce_every`](super::Config::announce_every) to keep its
//! routes fresh.

use heapless::String;

use super::{Kind, Node, Phase};
use crate::limits::{ANNOUNCE_SOON, MAX_NAME};
use crate::noise::{KEY_LEN, node_id};
use crate::outbox::{Job, Outbox, Span};
use crate::peers::PeerId;
use crate::route::{self, SeenCache, Sight};
use crate::time::Instant;
use crate::wire::Message;

/// An announce copied out of the receive buffer.
pub(super) struct Heard {
    origin: u64,
    /// The first copy of this announce (not a later one by a shorter way).
    first: bool,
    /// The hops it had left when it came.
    left: u8,
    name: String<MAX_NAME>,
    /// Its key, when it has one that hashes to its origin.
    key: Option<[u8; KEY_LEN]>,
    /// The frame to relay with a hop less, when hops are left.
    relay: Option<Span>,
}

impl Heard {
    /// Copies what is needed of `msg` (a [`Message::Announce`]): `None` for a
    /// duplicate (or our own come back), or when the outbox has no room.
    pub(super) fn stage<const A: usize, const N: usize>(
        outbox: &mut Outbox<A>,
        seen: &mut SeenCache<N>,
        me: u64,
        msg: Message<'_>,
    ) -> Option<Self> {
        let Message::Announce {
            origin,
            seq,
            hops,
            name,
            key,
            salt,
        } = msg
        else {
            return None;
        };
        let sight = match origin == me {
            true => Sight::Duplicate,
            false => seen.sight(origin, seq, hops),
        };
        if sight == Sight::Duplicate {
            return None;
        }
        let relay = match route::relay_hops(hops) {
            Some(hops) => Some(outbox.put_message(&msg.with_hops(hops)).ok()?),
            None => None,
        };
        Some(Heard {
            origin,
            first: sight == Sight::New,
            left: hops,
            name: String::try_from(name).unwrap_or_default(),
            key: bound_key(origin, key, salt),
            relay,
        })
    }
}

/// `key` when it is a static public key that with `salt` makes the node id
/// `origin`: a key claimed for another node's id is not taken.
fn bound_key(origin: u64, key: &[u8], salt: u64) -> Option<[u8; KEY_LEN]> {
    let key: [u8; KEY_LEN] = key.try_into().ok()?;
    (node_id(&key, salt) == origin).then_some(key)
}

impl<const P: usize, const F: usize, const A: usize, const R: usize> Node<P, F, A, R> {
    /// Has this node announce itself [`ANNOUNCE_SOON`], unless it will sooner.
    pub(super) fn announce_soon(&mut self, now: Instant) {
        let at = now + ANNOUNCE_SOON;
        if self.announce_at == Instant::ZERO || self.announce_at > at {
            self.announce_at = at;
        }
        self.wake_by(at);
    }

    /// Floods our announce if it is due, and sets when the next one is.
    pub(super) fn announce_due(&mut self, now: Instant) {
        let due = self.announce_at;
        if due == Instant::ZERO {
            return;
        }
        if due > now {
            self.wake_by(due);
            return;
        }
        self.announce(now);
    }

    /// Before a room message of ours: an announce due soon goes first, so
    /// that whoever hears us speak can answer us sealed at once (each link
    /// carries the two in order).
    pub(super) fn announce_first(&mut self, now: Instant) {
        let due = self.announce_at;
        if due != Instant::ZERO && due <= now + ANNOUNCE_SOON {
            self.announce(now);
        }
    }

    /// Floods our announce now, and sets when the next one is.
    fn announce(&mut self, now: Instant) {
        self.announce_at = match self.config.announce_every {
            Some(every) => {
                self.wake_by(now + every);
                now + every
            }
            None => Instant::ZERO,
        };
        if !self.peers.iter().any(|p| self.announces_to(p.id)) {
            return;
        }
        let key = self.public_key();
        self.last_seq = self.last_seq.wrapping_add(1);
        let (origin, seq) = (self.config.node_id, self.last_seq);
        self.seen.first_sight(origin, seq);
        let msg = Message::Announce {
            origin,
            seq,
            hops: self.config.hops,
            name: &self.config.name,
            key: key.as_ref().map_or(&[], |k| k.as_slice()),
            salt: self.salt,
        };
        if let Ok(frame) = self.outbox.put_message(&msg) {
            self.flood_to_routers(None, frame);
        }
    }

    /// Whether `peer` is a ready link that takes announces and sealed messages.
    pub(super) fn announces_to(&self, peer: PeerId) -> bool {
        self.peers
            .get(peer)
            .is_some_and(|p| p.state.seals && p.state.phase == Phase::Ready(Kind::Native))
    }

    /// Queues `frame` for every link that takes announces, but `except`.
    fn flood_to_routers(&mut self, except: Option<PeerId>, frame: Span) {
        self.outbox.push(Job::Fanout {
            except,
            native: Some(frame),
            line: None,
            next: 0,
            routers: true,
        });
    }

    /// An announce from `peer`: a route to its origin (with its key), relayed
    /// on while it has hops; a node new to us is answered by our own announce.
    pub(super) fn on_announce(&mut self, now: Instant, peer: PeerId, heard: Heard) {
        // A node we had no way to (new to us, or its route was lost or aged
        // out), while the table has room: the mesh changed between us, and it
        // may have lost its way to us too, so we answer with our announce.
        // (A mesh larger than the table would otherwise answer every announce
        // it evicted a route for, for ever.)
        let fresh = self.origins.get(now, heard.origin).is_some();
        let held = self.origins.iter_all().any(|r| r.node == heard.origin);
        let answer = !fresh && (held || self.origins.len() < R);
        let hops = route::distance(self.config.hops, heard.left);
        self.learn_route(now, peer, heard.origin, hops, &heard.name, heard.first);
        if let Some(key) = heard.key {
            self.origins.set_key(heard.origin, key);
        }
        if let Some(frame) = heard.relay {
            self.flood_to_routers(Some(peer), frame);
        }
        if answer {
            self.announce_soon(now);
        }
    }
}
