//! Reconnect backoff (`mesh --reconnect`): when to dial a dropped outbound peer
//! again.
//!
//! Each peer's wait starts at the minimum and doubles with every drop up to the
//! maximum; a link that gets through resets it. A scheduled re-dial is due at
//! the time given; the shell asks for the due peers and dials them (where to
//! dial is the shell's to keep: host names are I/O, not a rule).
//!
//! Peers are [`PeerId`]s by default; any [`Handle`] with a slot of its own
//! works (`--auto-connect` keys its room members by its table's slots, as a
//! dropped member has no peer id until it is dialled again).

use crate::limits::{RECONNECT_MAX, RECONNECT_MIN};
use crate::peers::PeerId;
use crate::time::{Duration, Instant};

/// What a schedule is kept for: one per slot below `P`, told apart from an
/// earlier holder of its slot by equality.
pub trait Handle: Copy + Eq {
    /// Its slot: an index below the table's size.
    fn slot(self) -> usize;
}

impl Handle for PeerId {
    fn slot(self) -> usize {
        PeerId::slot(self)
    }
}

/// One peer's schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry<H> {
    peer: H,
    /// How long the next re-dial waits.
    wait: Duration,
    /// When the scheduled re-dial is due; `None`: none is scheduled.
    due: Option<Instant>,
}

/// The re-dial schedule of up to `P` peers (by table slot).
#[derive(Clone, Debug)]
pub struct Backoff<const P: usize, H = PeerId> {
    min: Duration,
    max: Duration,
    entries: [Option<Entry<H>>; P],
}

impl<const P: usize, H: Handle> Default for Backoff<P, H> {
    fn default() -> Self {
        Self::new(RECONNECT_MIN, RECONNECT_MAX)
    }
}

impl<const P: usize, H: Handle> Backoff<P, H> {
    /// Waits from `min` doubling to `max` (a `max` below `min` counts as `min`).
    pub const fn new(min: Duration, max: Duration) -> Self {
        let max = if max.as_millis() < min.as_millis() {
            min
        } else {
            max
        };
        Backoff {
            min,
            max,
            entries: [None; P],
        }
    }

    /// `peer` is being dialled: it gets a schedule, starting at the minimum wait;
    /// a re-dial of a peer already known keeps its wait. False for a slot
    /// outside `P` (that peer is never re-dialled).
    pub fn dialled(&mut self, peer: H) -> bool {
        let min = self.min;
        let Some(slot) = self.entries.get_mut(peer.slot()) else {
            return false;
        };
        if !slot.is_some_and(|e| e.peer == peer) {
            *slot = Some(Entry {
                peer,
                wait: min,
                due: None,
            });
        }
        true
    }

    /// `peer`'s link got through: its next drop waits the minimum again.
    pub fn connected(&mut self, peer: H) {
        let min = self.min;
        if let Some(entry) = self.get_mut(peer) {
            entry.wait = min;
        }
    }

    /// `peer` dropped: its re-dial is due after its wait, which doubles (up to
    /// the maximum) for the next drop. Returns the wait; `None` for a peer never
    /// [`Backoff::dialled`] (or forgotten).
    pub fn schedule(&mut self, peer: H, now: Instant) -> Option<Duration> {
        let max = self.max;
        let entry = self.get_mut(peer)?;
        let wait = entry.wait;
        entry.due = Some(now + wait);
        entry.wait = Duration::from_millis(wait.as_millis().saturating_mul(2)).min(max);
        Some(wait)
    }

    /// How long until `peer`'s scheduled re-dial (zero once due); `None` if none is.
    pub fn redial_in(&self, peer: H, now: Instant) -> Option<Duration> {
        Some(self.get(peer)?.due?.saturating_since(now))
    }

    /// A peer whose re-dial is due at `now`, its schedule cleared: dial it. Call
    /// until `None`.
    pub fn next_due(&mut self, now: Instant) -> Option<H> {
        let entry = self
            .entries
            .iter_mut()
            .flatten()
            .filter(|e| e.due.is_some_and(|at| at <= now))
            .min_by_key(|e| e.due)?;
        entry.due = None;
        Some(entry.peer)
    }

    /// When the first scheduled re-dial is due.
    pub fn next_at(&self) -> Option<Instant> {
        self.entries.iter().flatten().filter_map(|e| e.due).min()
    }

    /// `peer` is gone for good: no more re-dials.
    pub fn forget(&mut self, peer: H) {
        if let Some(slot) = self.entries.get_mut(peer.slot())
            && slot.is_some_and(|e| e.peer == peer)
        {
            *slot = None;
        }
    }

    fn get(&self, peer: H) -> Option<&Entry<H>> {
        self.entries
            .get(peer.slot())?
            .as_ref()
            .filter(|e| e.peer == peer)
    }

    fn get_mut(&mut self, peer: H) -> Option<&mut Entry<H>> {
        self.entries
            .get_mut(peer.slot())?
            .as_mut()
            .filter(|e| e.peer == peer)
    }
}
