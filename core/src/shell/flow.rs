//! Flow control for the shell around a node: the bytes the node gave for each
//! peer that the peer's transport has not taken yet.
//!
//! One peer with more than the high water waiting pauses the input of every
//! ready peer (what they send could only add to the queues), until every peer
//! is back under the low water. A peer that takes none of its waiting bytes for
//! the stall timeout is to be dropped as not reading: that keeps a stopped
//! reader from pausing the room for good, and it is what breaks a cycle of
//! relaying nodes that all pause, each waiting for the next to read.

use crate::limits::{HIGH_WATER, LOW_WATER, STALL_TIMEOUT};
use crate::peers::PeerId;
use crate::time::{Duration, Instant};

/// How much may wait, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// More than this waiting for one peer pauses input.
    pub high_water: usize,
    /// The pause lifts once every peer has less than this waiting.
    pub low_water: usize,
    /// A peer that takes nothing this long while bytes wait is stalled; `None`: never.
    pub stall: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            high_water: HIGH_WATER,
            low_water: LOW_WATER,
            stall: Some(STALL_TIMEOUT),
        }
    }
}

/// One peer's waiting bytes.
#[derive(Clone, Copy, Debug)]
struct Backlog {
    peer: PeerId,
    bytes: usize,
    /// When the peer last took bytes, or when bytes began to wait.
    progress: Instant,
}

/// The backlog of up to `P` peers (indexed by their table slot) and the pause.
#[derive(Debug)]
pub struct Flow<const P: usize> {
    limits: Limits,
    backlogs: [Option<Backlog>; P],
    /// Backlogs at or above the low water: the pause lifts when there are none.
    over_low: usize,
    /// Backlogs over the ceiling: while there is one, a paused node reads nobody.
    over_cap: usize,
    paused: bool,
    /// Spreads the stall timeouts of this node's peers (see [`Flow::stall_at`]).
    salt: u64,
    /// Peers handed out by [`Flow::next_stalled`] so far.
    stalls: u64,
}

impl<const P: usize> Flow<P> {
    /// `salt` differs between nodes (a node id will do): it spreads their stall
    /// timeouts apart.
    pub const fn new(limits: Limits, salt: u64) -> Self {
        Flow {
            limits,
            backlogs: [None; P],
            over_low: 0,
            over_cap: 0,
            paused: false,
            salt,
            stalls: 0,
        }
    }

    /// How much may wait, and for how long.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Whether ready peers' input waits unfed (a peer still greeting is fed).
    pub fn paused(&self) -> bool {
        self.paused
    }

    /// Whether `peer`'s input is to be fed now. While paused, only a peer we are
    /// waiting for (at least the low water waits for it) is fed: it may be
    /// waiting for us too, and reading it is what lets two relays that pause at
    /// once both go on. What it sends may add to every backlog, so nobody is fed
    /// while any backlog is over the ceiling ([`Flow::ceiling`]): memory stays
    /// bounded whatever peers do.
    pub fn feeds(&self, peer: PeerId) -> bool {
        !self.paused || (self.over_cap == 0 && self.backlog(peer) >= self.limits.low_water)
    }

    /// The most bytes that wait for one peer before a paused node reads nobody:
    /// four times the high water (a backlog may pass it by what one feed adds).
    pub fn ceiling(&self) -> usize {
        self.limits.high_water.saturating_mul(4)
    }
    /// Bytes waiting for `peer`.
    pub fn backlog(&self, peer: PeerId) -> usize {
        self.get(peer).map_or(0, |b| b.bytes)
    }

    /// The node gave `n` bytes for `peer`. A slot outside `P` is not counted.
    pub fn queued(&mut self, now: Instant, peer: PeerId, n: usize) {
        let Some(slot) = self.backlogs.get_mut(peer.slot()) else {
            return;
        };
        // A peer that left without `forget` gives its slot to the newcomer.
        let old = match slot {
            Some(b) if b.peer == peer => b.bytes,
            _ => 0,
        };
        let progress = match slot {
            Some(b) if b.peer == peer && old > 0 => b.progress,
            _ => now,
        };
        let was = slot.map_or(0, |b| b.bytes);
        let bytes = old.saturating_add(n);
        *slot = Some(Backlog {
            peer,
            bytes,
            progress,
        });
        self.changed(was, bytes);
    }

    /// The transport took `n` of the bytes waiting for `peer`.
    pub fn taken(&mut self, now: Instant, peer: PeerId, n: usize) {
        let Some(b) = self.get_mut(peer) else {
            return;
        };
        let was = b.bytes;
        b.bytes = was.saturating_sub(n);
        if n > 0 {
            b.progress = now;
        }
        let bytes = b.bytes;
        self.changed(was, bytes);
    }

    /// `peer` is gone: what waited for it no longer counts.
    pub fn forget(&mut self, peer: PeerId) {
        let Some(slot) = self.backlogs.get_mut(peer.slot()) else {
            return;
        };
        if let Some(b) = slot.take_if(|b| b.peer == peer) {
            self.changed(b.bytes, 0);
        }
    }

    /// When `peer` stalls if it takes nothing until then; `None` while nothing waits.
    ///
    /// That is the stall timeout plus up to half of it again, spread by the salt
    /// and the peer: the nodes of a cycle that paused at once do not all drop
    /// their links at once, and the first drop lets the others go on.
    pub fn stall_at(&self, peer: PeerId) -> Option<Instant> {
        let b = self.get(peer).filter(|b| b.bytes > 0)?;
        let stall = self.limits.stall?.as_millis();
        let spread = mix(self.salt ^ u64::from(peer.number())) % (stall / 2 + 1);
        Some(b.progress + Duration::from_millis(stall + spread))
    }

    /// The peers stalled at `now`, and when the next one stalls if nothing moves.
    pub fn stalled(&self, now: Instant) -> (impl Iterator<Item = PeerId> + '_, Option<Instant>) {
        let at = |b: &Backlog| self.stall_at(b.peer).filter(|_| b.bytes > 0);
        let next = self
            .backlogs
            .iter()
            .flatten()
            .filter_map(at)
            .filter(|&t| t > now)
            .min();
        let due = self
            .backlogs
            .iter()
            .flatten()
            .filter(move |b| at(b).is_some_and(|t| t <= now))
            .map(|b| b.peer);
        (due, next)
    }

    /// One peer stalled at `now`, forgotten and counted: the shell drops it as not
    /// reading. Call until `None`; then [`Flow::next_stall`] says when to look again.
    pub fn next_stalled(&mut self, now: Instant) -> Option<PeerId> {
        let peer = self
            .backlogs
            .iter()
            .flatten()
            .find(|b| self.stall_at(b.peer).is_some_and(|t| t <= now))?
            .peer;
        self.forget(peer);
        self.stalls = self.stalls.saturating_add(1);
        Some(peer)
    }

    /// When the next peer stalls if nothing moves; `None` while nothing waits.
    pub fn next_stall(&self) -> Option<Instant> {
        self.backlogs
            .iter()
            .flatten()
            .filter_map(|b| self.stall_at(b.peer))
            .min()
    }

    /// How many peers [`Flow::next_stalled`] handed out: the shell's stall drops.
    pub fn stalls(&self) -> u64 {
        self.stalls
    }

    fn get(&self, peer: PeerId) -> Option<&Backlog> {
        self.backlogs
            .get(peer.slot())?
            .as_ref()
            .filter(|b| b.peer == peer)
    }

    fn get_mut(&mut self, peer: PeerId) -> Option<&mut Backlog> {
        self.backlogs
            .get_mut(peer.slot())?
            .as_mut()
            .filter(|b| b.peer == peer)
    }

    /// A backlog went from `was` to `now` bytes: count it against the waters.
    fn changed(&mut self, was: usize, now: usize) {
        let low = self.limits.low_water;
        match (was >= low, now >= low) {
            (false, true) => self.over_low += 1,
            (true, false) => self.over_low -= 1,
            _ => {}
        }
        let cap = self.ceiling();
        match (was > cap, now > cap) {
            (false, true) => self.over_cap += 1,
            (true, false) => self.over_cap -= 1,
            _ => {}
        }
        if now > self.limits.high_water {
            self.paused = true;
        } else if self.over_low == 0 {
            self.paused = false;
        }
    }
}

/// SplitMix64's finaliser: a well-spread hash of one number.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
