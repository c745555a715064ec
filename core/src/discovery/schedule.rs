//! When to send a beacon on each interface: a quick burst when the interface
//! appears, then an interval that doubles while the network is quiet, each
//! time jittered so that nodes started together drift apart.
//!
//! The shape follows mDNS (RFC 6762, 8.3: a random 0–250 ms delay, then
//! announcements about a second apart) and libp2p-mdns's probe (an interval
//! that doubles up to the steady one). A new node pulls the next beacon in to
//! about a second and the interval back to [`INTERVAL_MIN`], so a newcomer
//! learns of us quickly; that is at most one extra beacon per second per
//! interface however many nodes appear.
//!
//! When the node stops, the schedule turns to farewells: [`FAREWELLS`] on
//! every interface up, [`FAREWELL_GAP`] apart (mDNS's goodbye, RFC 6762
//! 10.1, repeated against a lost datagram), then nothing more.

use super::{BURST, BURST_GAP, FAREWELL_GAP, FAREWELLS, INTERVAL_MAX, INTERVAL_MIN, START_DELAY};
use crate::time::{Duration, Instant};

/// One interface's schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    /// When its next beacon is due.
    next: Instant,
    /// Beacons of the burst (or farewells, when leaving) still to send, this one included.
    burst: u8,
    /// The gap after the next steady beacon.
    interval: Duration,
}

/// The beacon schedule of up to `I` interfaces, indexed `0..I`.
#[derive(Clone, Debug)]
pub(super) struct Schedule<const I: usize> {
    slots: [Option<Slot>; I],
    /// The node is stopping: only farewells go out.
    leaving: bool,
}

impl<const I: usize> Schedule<I> {
    pub(super) const fn new() -> Self {
        Schedule {
            slots: [None; I],
            leaving: false,
        }
    }

    /// Whether the node is stopping: what [`Schedule::fire`] fires are farewells.
    pub(super) fn leaving(&self) -> bool {
        self.leaving
    }

    /// The node is stopping: [`FAREWELLS`] from now on every interface up,
    /// and no other beacon. Again while leaving: nothing changes.
    pub(super) fn leave(&mut self, now: Instant) {
        if self.leaving {
            return;
        }
        self.leaving = true;
        for slot in self.slots.iter_mut().flatten() {
            slot.next = now;
            slot.burst = FAREWELLS;
        }
    }

    /// Whether every farewell is sent (true at once with no interface up).
    pub(super) fn left(&self) -> bool {
        self.leaving && self.slots.iter().flatten().all(|s| s.burst == 0)
    }

    /// Whether interface `iface` is up.
    pub(super) fn is_up(&self, iface: usize) -> bool {
        matches!(self.slots.get(iface), Some(Some(_)))
    }

    /// Interface `iface` appeared (or appeared again): a burst from now, its
    /// first beacon `random` into [`START_DELAY`]. While leaving, an interface
    /// that appears says nothing: no one heard us there to say farewell to.
    pub(super) fn up(&mut self, iface: usize, now: Instant, random: u32) {
        let burst = if self.leaving { 0 } else { BURST };
        if let Some(slot) = self.slots.get_mut(iface) {
            *slot = Some(Slot {
                next: now + below(START_DELAY, random),
                burst,
                interval: INTERVAL_MIN,
            });
        }
    }

    /// Interface `iface` went: no more beacons on it.
    pub(super) fn down(&mut self, iface: usize) {
        if let Some(slot) = self.slots.get_mut(iface) {
            *slot = None;
        }
    }

    /// A node we had not seen appeared: every interface beacons within about
    /// [`BURST_GAP`] (unless it would sooner anyway) and backs off from
    /// [`INTERVAL_MIN`] again.
    pub(super) fn quicken(&mut self, now: Instant, random: u32) {
        if self.leaving {
            return;
        }
        let soon = now + jittered(BURST_GAP, random);
        for slot in self.slots.iter_mut().flatten() {
            slot.interval = INTERVAL_MIN;
            if slot.next > soon {
                slot.next = soon;
            }
        }
    }

    /// The first interface whose beacon is due at `now`, its schedule moved on
    /// to the next one (`random` jitters the gap).
    pub(super) fn fire(&mut self, now: Instant, random: u32) -> Option<usize> {
        let leaving = self.leaving;
        let (iface, slot) = self.slots.iter_mut().enumerate().find_map(|(i, s)| {
            s.as_mut()
                .filter(|s| s.next <= now && (!leaving || s.burst > 0))
                .map(|s| (i, s))
        })?;
        if leaving {
            slot.burst -= 1;
            slot.next = now + FAREWELL_GAP;
        } else if slot.burst > 1 {
            slot.burst -= 1;
            slot.next = now + jittered(BURST_GAP, random);
        } else {
            slot.burst = 0;
            slot.next = now + jittered(slot.interval, random);
            slot.interval = double(slot.interval);
        }
        Some(iface)
    }

    /// When the next beacon is due on any interface.
    pub(super) fn next(&self) -> Option<Instant> {
        self.slots
            .iter()
            .flatten()
            .filter(|s| !self.leaving || s.burst > 0)
            .map(|s| s.next)
            .min()
    }
}

/// Twice `d`, at most [`INTERVAL_MAX`].
fn double(d: Duration) -> Duration {
    let twice = d + d;
    if twice > INTERVAL_MAX {
        INTERVAL_MAX
    } else {
        twice
    }
}

/// A span in `[0, d)` picked by `random`.
fn below(d: Duration, random: u32) -> Duration {
    match d.as_millis() {
        0 => Duration::ZERO,
        ms => Duration::from_millis(u64::from(random) % ms),
    }
}

/// `d` give or take a quarter: a span in `[3d/4, 5d/4]` picked by `random`.
pub(super) fn jittered(d: Duration, random: u32) -> Duration {
    let ms = d.as_millis();
    let quarter = ms / 4;
    let spread = u64::from(random) % (2 * quarter + 1);
    Duration::from_millis(ms - quarter + spread)
}
