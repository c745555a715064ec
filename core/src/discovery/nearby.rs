//! The nodes heard nearby: a fixed table keyed by static key, bounded however
//! many beacons arrive from however many addresses.
//!
//! What a sender can do to it:
//! - From one source address: at most [`SOURCE_BURST`] beacons, then one per
//!   [`SOURCE_REFILL`]; more are dropped before they are read. At most
//!   [`KEYS_PER_SOURCE`] entries carry its address; a further key replaces
//!   its own oldest entry, never another source's.
//! - From many source addresses: new keys fill the table, then each evicts the
//!   entry heard from longest ago, outsiders before room members (a member's
//!   beacon is sealed under the room key, which a flooder does not hold).
//! - In an open room anyone may send a beacon under any key (a spoofed
//!   fingerprint): it adds or updates the entry of that key only. That is no
//!   proof of identity: a TCP connect to the entry runs the Noise handshake,
//!   which is where the key is proven, so a spoofed entry costs a failed dial.
//!   In a private room an open beacon never changes a member's entry.
//! - A farewell removes the entry of the key it names at once. In an open room
//!   anyone can forge one, and it removes that key's entry alone, which a
//!   forged beacon could already replace; in a private room only a member can
//!   seal one, and an open farewell never removes a member.

use core::net::{IpAddr, SocketAddr};

use heapless::{String, Vec};

use super::beacon::Heard;
use super::{ADDRS, EXPIRE_AFTER, KEYS_PER_SOURCE, SOURCE_BURST, SOURCE_REFILL};
use crate::limits::MAX_NAME;
use crate::noise::KEY_LEN;
use crate::time::Instant;

/// One address a node was heard from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addr {
    /// The datagram's source (an IPv6 link-local one keeps its scope id).
    pub from: SocketAddr,
    /// The interface it came in on.
    pub iface: u8,
    /// When a beacon last came from it.
    pub last_seen: Instant,
}

/// A node heard nearby.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    key: [u8; KEY_LEN],
    name: String<MAX_NAME>,
    port: u16,
    addrs: Vec<Addr, ADDRS>,
    first_seen: Instant,
    last_seen: Instant,
    in_room: bool,
}

impl Entry {
    /// Its static public key, as its beacon says (proven only by a handshake).
    pub fn key(&self) -> &[u8; KEY_LEN] {
        &self.key
    }
    /// Its name, as its beacon says; empty if it gave none.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Its TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }
    /// The addresses it was heard from, at most [`ADDRS`], the latest kept.
    pub fn addrs(&self) -> &[Addr] {
        &self.addrs
    }
    /// The addresses to dial, in the order to try them: each source address
    /// with the TCP port, IPv4 ones first, each once (a node heard on two
    /// interfaces, or from two source ports, is one address to dial).
    pub fn dial_addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        let all = move || {
            self.addrs.iter().map(move |a| {
                let mut to = a.from;
                to.set_port(self.port);
                to
            })
        };
        [true, false].into_iter().flat_map(move |v4| {
            all()
                .enumerate()
                .filter(move |&(i, to)| to.is_ipv4() == v4 && !all().take(i).any(|b| b == to))
                .map(|(_, to)| to)
        })
    }
    /// When it was first heard.
    pub fn first_seen(&self) -> Instant {
        self.first_seen
    }
    /// When it was last heard.
    pub fn last_seen(&self) -> Instant {
        self.last_seen
    }
    /// Whether it is in our room (see [`Heard::in_room`]).
    pub fn in_room(&self) -> bool {
        self.in_room
    }
    /// Whether beacons from `ip` name it.
    fn heard_from(&self, ip: IpAddr) -> bool {
        self.addrs.iter().any(|a| a.from.ip() == ip)
    }
}

/// The rate limit of one source address: a token bucket, in milliseconds of credit.
#[derive(Clone, Copy, Debug)]
struct Source {
    ip: IpAddr,
    credit: u64,
    at: Instant,
}

/// What a beacon did to the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Update {
    /// A key not in the table; `evicted` made room for it.
    New {
        /// The key of the entry dropped for it, if the table was full.
        evicted: Option<[u8; KEY_LEN]>,
    },
    /// The entry's port, name, room or addresses changed.
    Changed,
    /// Only the entry's times moved.
    Same,
    /// An open beacon under a room member's key: ignored.
    Spoofed,
}

/// What a farewell did to the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Farewell {
    /// The node's entry is gone.
    Gone,
    /// No entry had its key: nothing changed.
    Unknown,
    /// An open farewell under a room member's key: ignored.
    Spoofed,
}

/// What one sweep of the table removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Swept {
    /// An address of this entry went; others are left.
    Changed([u8; KEY_LEN]),
    /// This entry's last address went, and the entry with it.
    Gone([u8; KEY_LEN]),
}

/// The nodes heard nearby, at most `N`; see the module doc for its bounds.
#[derive(Clone, Debug)]
pub struct Nearby<const N: usize> {
    entries: Vec<Entry, N>,
    sources: Vec<Source, N>,
}

impl<const N: usize> Default for Nearby<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Nearby<N> {
    /// An empty table.
    pub const fn new() -> Self {
        Nearby {
            entries: Vec::new(),
            sources: Vec::new(),
        }
    }

    /// The nodes in the table, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// How many nodes are in the table.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The node with this key.
    pub fn get(&self, key: &[u8; KEY_LEN]) -> Option<&Entry> {
        self.entries.iter().find(|e| &e.key == key)
    }

    /// Takes one beacon's worth of credit from `ip`'s bucket; `false`: over
    /// its rate, drop the beacon.
    pub(super) fn admit(&mut self, ip: IpAddr, now: Instant) -> bool {
        let cap = SOURCE_REFILL
            .as_millis()
            .saturating_mul(u64::from(SOURCE_BURST));
        let cost = SOURCE_REFILL.as_millis();
        let known = self.sources.iter().position(|s| s.ip == ip);
        let index = match known {
            Some(i) => i,
            None => {
                let fresh = Source {
                    ip,
                    credit: cap,
                    at: now,
                };
                match self.sources.push(fresh) {
                    Ok(()) => self.sources.len() - 1,
                    Err(fresh) => {
                        // Forget the source heard from longest ago: it starts over
                        // with a full bucket, which the table's own bounds absorb.
                        let oldest = oldest_index(self.sources.iter().map(|s| s.at));
                        let Some(slot) = self.sources.get_mut(oldest) else {
                            return true; // no room to remember any source (N = 0)
                        };
                        *slot = fresh;
                        oldest
                    }
                }
            }
        };
        let Some(source) = self.sources.get_mut(index) else {
            return true;
        };
        let earned = now.saturating_since(source.at).as_millis();
        source.credit = source.credit.saturating_add(earned).min(cap);
        source.at = now;
        if source.credit >= cost {
            source.credit -= cost;
            true
        } else {
            false
        }
    }

    /// Records a beacon heard from `from` on `iface` at `now`.
    pub(super) fn update(
        &mut self,
        heard: &Heard,
        from: SocketAddr,
        iface: u8,
        now: Instant,
    ) -> Update {
        let beacon = &heard.beacon;
        let addr = Addr {
            from,
            iface,
            last_seen: now,
        };
        if let Some(entry) = self.entries.iter_mut().find(|e| e.key == beacon.key) {
            if entry.in_room && !heard.in_room {
                return Update::Spoofed;
            }
            let mut changed = entry.port != beacon.port
                || entry.name != beacon.name
                || entry.in_room != heard.in_room;
            entry.port = beacon.port;
            entry.name.clone_from(&beacon.name);
            entry.in_room = heard.in_room;
            entry.last_seen = now;
            changed |= add_addr(&mut entry.addrs, addr);
            return if changed {
                Update::Changed
            } else {
                Update::Same
            };
        }
        let mut evicted = None;
        let ip = from.ip();
        let same_source = self.entries.iter().filter(|e| e.heard_from(ip)).count();
        let victim = if same_source >= KEYS_PER_SOURCE {
            // This source's own oldest entry, not anyone else's.
            self.oldest(|e| e.heard_from(ip))
        } else if self.entries.is_full() {
            self.oldest(|e| !e.in_room)
                .or_else(|| self.oldest(|_| true))
        } else {
            None
        };
        if let Some(i) = victim {
            evicted = Some(self.entries.swap_remove(i).key);
        }
        let mut addrs = Vec::new();
        let _ = addrs.push(addr);
        let entry = Entry {
            key: beacon.key,
            name: beacon.name.clone(),
            port: beacon.port,
            addrs,
            first_seen: now,
            last_seen: now,
            in_room: heard.in_room,
        };
        // There is room: a full table gave up an entry above (N > 0 here, as an
        // empty table of no capacity evicts nothing and drops the newcomer).
        if self.entries.push(entry).is_err() {
            return Update::Same;
        }
        Update::New { evicted }
    }

    /// Forgets the node a farewell names (`in_room`: it came sealed in our room).
    pub(super) fn farewell(&mut self, key: &[u8; KEY_LEN], in_room: bool) -> Farewell {
        let Some(i) = self.entries.iter().position(|e| &e.key == key) else {
            return Farewell::Unknown;
        };
        if self.entries[i].in_room && !in_room {
            return Farewell::Spoofed;
        }
        self.entries.swap_remove(i);
        Farewell::Gone
    }

    /// Drops one address heard from longer than [`EXPIRE_AFTER`] before `now`,
    /// or heard on an interface `up` says is down; `None` when none is left.
    pub(super) fn sweep(&mut self, now: Instant, up: impl Fn(u8) -> bool) -> Option<Swept> {
        for i in 0..self.entries.len() {
            let entry = &mut self.entries[i];
            let stale = entry
                .addrs
                .iter()
                .position(|a| !up(a.iface) || now.saturating_since(a.last_seen) >= EXPIRE_AFTER);
            if let Some(j) = stale {
                entry.addrs.swap_remove(j);
                let key = entry.key;
                if entry.addrs.is_empty() {
                    self.entries.swap_remove(i);
                    return Some(Swept::Gone(key));
                }
                return Some(Swept::Changed(key));
            }
        }
        None
    }

    /// When the next address expires, if any.
    pub(super) fn next_expiry(&self) -> Option<Instant> {
        self.entries
            .iter()
            .flat_map(|e| e.addrs.iter())
            .map(|a| a.last_seen + EXPIRE_AFTER)
            .min()
    }

    /// The index of the entry heard from longest ago among those `keep` picks.
    fn oldest(&self, pick: impl Fn(&Entry) -> bool) -> Option<usize> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| pick(e))
            .min_by_key(|(_, e)| e.last_seen)
            .map(|(i, _)| i)
    }
}

/// Refreshes `addr` in `addrs`, or adds it (over the one heard from longest
/// ago when full); `true` if it was not there.
fn add_addr(addrs: &mut Vec<Addr, ADDRS>, addr: Addr) -> bool {
    if let Some(known) = addrs
        .iter_mut()
        .find(|a| a.from == addr.from && a.iface == addr.iface)
    {
        known.last_seen = addr.last_seen;
        return false;
    }
    if let Err(addr) = addrs.push(addr) {
        let oldest = oldest_index(addrs.iter().map(|a| a.last_seen));
        if let Some(slot) = addrs.get_mut(oldest) {
            *slot = addr;
        }
    }
    true
}

/// The index of the earliest of `times` (0 if there are none).
fn oldest_index(times: impl Iterator<Item = Instant>) -> usize {
    times
        .enumerate()
        .min_by_key(|&(_, t)| t)
        .map_or(0, |(i, _)| i)
}
