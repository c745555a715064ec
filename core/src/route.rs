//! Routing of room messages: each broadcast is named by (origin, sequence);
//! a node delivers and relays it the first time it sees it, and never again.

/// How many nodes a broadcast may cross when nobody configured otherwise.
pub const DEFAULT_HOPS: u8 = 8;

/// How far back, in sequence numbers, an origin's broadcasts are remembered:
/// one that arrives later than this behind the newest is taken as a duplicate.
pub const WINDOW: u32 = 64;

/// The hop limit to relay a broadcast with, or `None` when it must go no further.
pub fn relay_hops(hops: u8) -> Option<u8> {
    hops.checked_sub(1).filter(|&h| h > 0)
}

#[derive(Clone, Copy, Debug, Default)]
struct Origin {
    id: u64,
    /// Highest sequence seen.
    top: u32,
    /// Bit `k` set: sequence `top - k` was seen.
    seen: u64,
    /// When this origin was last heard from, for eviction.
    stamp: u32,
}

/// Which broadcasts were already seen, for `N` origins at most (the least
/// recently heard is forgotten first). Per origin, a sliding window of
/// [`WINDOW`] sequence numbers tolerates reordering across paths.
pub struct SeenCache<const N: usize> {
    origins: [Origin; N],
    len: usize,
    clock: u32,
}

impl<const N: usize> Default for SeenCache<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> SeenCache<N> {
    pub const fn new() -> Self {
        SeenCache {
            origins: [Origin {
                id: 0,
                top: 0,
                seen: 0,
                stamp: 0,
            }; N],
            len: 0,
            clock: 0,
        }
    }

    /// Records (origin, seq); true if it is new, false for a duplicate.
    pub fn first_sight(&mut self, origin: u64, seq: u32) -> bool {
        self.clock = self.clock.wrapping_add(1);
        let stamp = self.clock;
        let known = self
            .origins
            .iter_mut()
            .take(self.len)
            .find(|o| o.id == origin);
        let Some(o) = known else {
            self.remember(Origin {
                id: origin,
                top: seq,
                seen: 1,
                stamp,
            });
            return true;
        };
        o.stamp = stamp;
        if seq > o.top {
            let ahead = seq - o.top;
            o.seen = if ahead >= 64 { 0 } else { o.seen << ahead };
            o.seen |= 1;
            o.top = seq;
            return true;
        }
        let behind = o.top - seq;
        if behind >= WINDOW {
            return false;
        }
        let bit = 1u64 << behind;
        let new = o.seen & bit == 0;
        o.seen |= bit;
        new
    }

    fn remember(&mut self, origin: Origin) {
        if N == 0 {
            return;
        }
        if self.len < N {
            self.origins[self.len] = origin;
            self.len += 1;
            return;
        }
        // Evict the origin heard from least recently (by wrapping distance to now).
        let now = self.clock;
        if let Some(oldest) = self
            .origins
            .iter_mut()
            .max_by_key(|o| now.wrapping_sub(o.stamp))
        {
            *oldest = origin;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broadcast_is_new_once() {
        let mut c = SeenCache::<4>::new();
        assert!(c.first_sight(7, 1));
        assert!(!c.first_sight(7, 1));
        assert!(c.first_sight(8, 1));
    }

    #[test]
    fn a_late_broadcast_inside_the_window_is_still_new() {
        let mut c = SeenCache::<4>::new();
        assert!(c.first_sight(7, 5));
        assert!(c.first_sight(7, 4));
        assert!(!c.first_sight(7, 4));
        assert!(c.first_sight(7, 100));
        assert!(!c.first_sight(7, 5));
    }

    #[test]
    fn the_least_recently_heard_origin_is_forgotten_first() {
        let mut c = SeenCache::<2>::new();
        c.first_sight(1, 1);
        c.first_sight(2, 1);
        c.first_sight(1, 2);
        c.first_sight(3, 1);
        assert!(!c.first_sight(1, 2));
        assert!(c.first_sight(2, 1));
    }

    #[test]
    fn hops_run_out() {
        assert_eq!(relay_hops(8), Some(7));
        assert_eq!(relay_hops(1), None);
        assert_eq!(relay_hops(0), None);
    }
}
