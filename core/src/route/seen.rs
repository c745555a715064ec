//! Duplicate suppression of room messages: per origin, a window of sequence
//! numbers and the most hops left of any copy of each.

/// How far back, in sequence numbers, an origin's broadcasts are remembered:
/// one that arrives later than this behind the newest is taken as a duplicate.
pub const SEQ_WINDOW: u32 = 64;

/// What to do with a broadcast, by what was seen of it before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sight {
    /// First copy: deliver and relay.
    New,
    /// Seen before, but this copy has more hops left: relay it again, do not deliver.
    Farther,
    /// Seen before with at least as many hops left: drop it.
    Duplicate,
}

#[derive(Clone, Copy, Debug)]
struct Origin {
    id: u64,
    /// Highest sequence seen.
    top: u32,
    /// Bit `k` set: sequence `top - k` was seen.
    seen: u64,
    /// The most hops left of any copy of sequence `s`, at `s % SEQ_WINDOW`.
    hops: [u8; SEQ_WINDOW as usize],
    /// When this origin was last heard from, for eviction.
    stamp: u32,
}

impl Origin {
    const EMPTY: Origin = Origin {
        id: 0,
        top: 0,
        seen: 0,
        hops: [0; SEQ_WINDOW as usize],
        stamp: 0,
    };

    fn hops_mut(&mut self, seq: u32) -> &mut u8 {
        // In bounds: the index is taken modulo the array's length.
        &mut self.hops[(seq % SEQ_WINDOW) as usize]
    }
}

/// Which broadcasts were already seen, for `N` origins at most (the least
/// recently heard is forgotten first). Per origin, a sliding window of
/// [`SEQ_WINDOW`] sequence numbers tolerates reordering across paths.
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
    /// A cache that has seen nothing.
    pub const fn new() -> Self {
        SeenCache {
            origins: [Origin::EMPTY; N],
            len: 0,
            clock: 0,
        }
    }

    /// Records a copy of (origin, seq) that has `hops` left, and says what to do with it.
    pub fn sight(&mut self, origin: u64, seq: u32, hops: u8) -> Sight {
        self.clock = self.clock.wrapping_add(1);
        let stamp = self.clock;
        let known = self
            .origins
            .iter_mut()
            .take(self.len)
            .find(|o| o.id == origin);
        let Some(o) = known else {
            let mut new = Origin {
                id: origin,
                top: seq,
                seen: 1,
                stamp,
                ..Origin::EMPTY
            };
            *new.hops_mut(seq) = hops;
            self.remember(new);
            return Sight::New;
        };
        o.stamp = stamp;
        if seq > o.top {
            let ahead = seq - o.top;
            if ahead >= SEQ_WINDOW {
                o.seen = 0;
                o.hops = [0; SEQ_WINDOW as usize];
            } else {
                o.seen <<= ahead;
                for skipped in o.top + 1..seq {
                    *o.hops_mut(skipped) = 0;
                }
            }
            o.seen |= 1;
            o.top = seq;
            *o.hops_mut(seq) = hops;
            return Sight::New;
        }
        let behind = o.top - seq;
        if behind >= SEQ_WINDOW {
            return Sight::Duplicate;
        }
        let bit = 1u64 << behind;
        if o.seen & bit == 0 {
            o.seen |= bit;
            *o.hops_mut(seq) = hops;
            return Sight::New;
        }
        let best = o.hops_mut(seq);
        if hops > *best {
            *best = hops;
            return Sight::Farther;
        }
        Sight::Duplicate
    }

    /// Records (origin, seq) as seen with every hop left, so that no later copy
    /// is relayed again (a node's own broadcasts); true if it was new.
    pub fn first_sight(&mut self, origin: u64, seq: u32) -> bool {
        self.sight(origin, seq, u8::MAX) == Sight::New
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
    fn a_copy_with_more_hops_left_is_relayed_again_but_not_delivered() {
        let mut c = SeenCache::<4>::new();
        assert_eq!(c.sight(7, 1, 2), Sight::New);
        assert_eq!(c.sight(7, 1, 5), Sight::Farther);
        assert_eq!(c.sight(7, 1, 5), Sight::Duplicate);
        assert_eq!(c.sight(7, 1, 3), Sight::Duplicate);
    }

    #[test]
    fn hops_of_a_sequence_are_forgotten_when_the_window_moves_past_it() {
        let mut c = SeenCache::<4>::new();
        assert_eq!(c.sight(7, 1, 9), Sight::New);
        assert_eq!(c.sight(7, 1 + SEQ_WINDOW, 1), Sight::New);
        assert_eq!(c.sight(7, 1, 9), Sight::Duplicate, "too old");
        assert_eq!(
            c.sight(7, 2, 1),
            Sight::New,
            "inside the window, never seen"
        );
        assert_eq!(c.sight(7, 2 + SEQ_WINDOW, 1), Sight::New);
        assert_eq!(c.sight(7, 2 + SEQ_WINDOW, 2), Sight::Farther);
    }
}
