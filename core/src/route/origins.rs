//! The originator table: per node heard through the mesh, the link it is best
//! reached by and how far it is, as batman-adv's originator list and
//! Meshtastic's next-hop router keep it, learned from the traffic that passes.

use heapless::{String, Vec};

use crate::limits::MAX_NAME;
use crate::noise::KEY_LEN;
use crate::peers::PeerId;
use crate::time::{Duration, Instant};

/// How one node is reached: what [`Origins`] keeps for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The node's id (its hello's `node`).
    pub node: u64,
    /// The link it was heard through by the shortest path: its next hop.
    pub via: PeerId,
    /// Nodes a message crosses to reach it: 1 for a neighbour.
    pub hops: u8,
    /// When the route was last confirmed; it ages out the table's TTL later.
    pub last: Instant,
    /// The name it announced (on its room messages and direct messages).
    pub name: String<MAX_NAME, u8>,
    /// Its static public key, once an announce brought one that hashes to
    /// its id: what a direct message to it is sealed to.
    pub key: Option<[u8; KEY_LEN]>,
    /// Its link dropped: not used until the node is heard again, but kept for
    /// its name and key (a route relearned from a room message is sealed to
    /// at once, without waiting for the node's next announce).
    pub lost: bool,
}

/// At most `N` routes, one per origin: a fixed table that forgets the oldest
/// when full, ages routes out, and drops those through a link that is gone.
pub struct Origins<const N: usize> {
    routes: Vec<Route, N>,
    ttl: Duration,
}

impl<const N: usize> Origins<N> {
    /// An empty table whose routes last `ttl` unless heard again.
    pub const fn new(ttl: Duration) -> Self {
        Origins {
            routes: Vec::new(),
            ttl,
        }
    }

    fn fresh(&self, route: &Route, now: Instant) -> bool {
        !route.lost && now.saturating_since(route.last) < self.ttl
    }

    /// Notes that `node` (named `name`; empty keeps the name known) was heard
    /// through `via`, `hops` away. The route changes to a path as short or
    /// shorter, to any path once the old one aged out, and follows its own
    /// link's news (a longer path there replaces it). True when it changed.
    pub fn learn(&mut self, now: Instant, node: u64, via: PeerId, hops: u8, name: &str) -> bool {
        let ttl = self.ttl;
        if let Some(r) = self.routes.iter_mut().find(|r| r.node == node) {
            let stale = r.lost || now.saturating_since(r.last) >= ttl;
            if !(stale || r.via == via || hops <= r.hops) {
                return false;
            }
            let changed = r.lost || r.via != via || r.hops != hops;
            r.via = via;
            r.hops = hops;
            r.last = now;
            r.lost = false;
            if !name.is_empty() {
                r.name = String::try_from(name).unwrap_or_default();
            }
            return changed;
        }
        let route = Route {
            node,
            via,
            hops,
            last: now,
            name: String::try_from(name).unwrap_or_default(),
            key: None,
            lost: false,
        };
        if let Err(route) = self.routes.push(route) {
            // Full: a lost route gives way first, then the one heard from
            // least recently.
            if let Some(oldest) = self.routes.iter_mut().min_by_key(|r| (!r.lost, r.last)) {
                *oldest = route;
            }
        }
        true
    }

    /// Notes that the first copy of a message `node` sent since its last came
    /// through `via`, `hops` away: the way it came now is the route, however
    /// long, as batman-adv prefers a newer originator message. So a route
    /// through a link that broke further on is left as soon as the node is
    /// heard again, and two nodes never keep pointing at each other. True
    /// when it changed.
    pub fn renew(&mut self, now: Instant, node: u64, via: PeerId, hops: u8, name: &str) -> bool {
        let mut before = None;
        if let Some(r) = self.routes.iter_mut().find(|r| r.node == node) {
            before = Some((r.lost, r.via, r.hops));
            // Replaced as an aged route is, whatever its length.
            r.lost = true;
        }
        self.learn(now, node, via, hops, name);
        before.is_none_or(|was| was != (false, via, hops))
    }

    /// Notes the static public key of `node`, whose route is known (the
    /// caller checked that it hashes to the node's id). False when no route
    /// is held for it.
    pub fn set_key(&mut self, node: u64, key: [u8; KEY_LEN]) -> bool {
        match self.routes.iter_mut().find(|r| r.node == node) {
            Some(r) => {
                r.key = Some(key);
                true
            }
            None => false,
        }
    }

    /// The fresh route to `node`, if any.
    pub fn get(&self, now: Instant, node: u64) -> Option<&Route> {
        self.routes
            .iter()
            .find(|r| r.node == node && self.fresh(r, now))
    }

    /// The fresh route to the node that announced `name`, if any.
    pub fn by_name(&self, now: Instant, name: &str) -> Option<&Route> {
        self.routes
            .iter()
            .find(|r| r.name == name && self.fresh(r, now))
    }

    /// Stops using every route through `via` (the link is gone), keeping
    /// their names and keys; how many.
    pub fn lose_via(&mut self, via: PeerId) -> usize {
        let mut lost = 0;
        for r in self.routes.iter_mut().filter(|r| r.via == via && !r.lost) {
            r.lost = true;
            lost += 1;
        }
        lost
    }

    /// Forgets the routes that aged out or were lost.
    pub fn expire(&mut self, now: Instant) {
        let ttl = self.ttl;
        self.routes
            .retain(|r| !r.lost && now.saturating_since(r.last) < ttl);
    }

    /// The fresh routes, in no particular order.
    pub fn iter(&self, now: Instant) -> impl Iterator<Item = &Route> {
        self.routes.iter().filter(move |r| self.fresh(r, now))
    }

    /// Every route held, fresh or not.
    pub fn iter_all(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }

    /// Routes held, fresh or not.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// No route held.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}
