//! Routing: room messages are flooded, each named by (origin, sequence); a
//! node delivers and relays one the first time it sees it, and relays it
//! again only if a later copy has more hops left (it came by a shorter path,
//! and the first copy's hop limit would stop short of nodes it can reach).
//! What the floods and hellos teach also fills an originator table (per origin
//! the best next hop), along which direct messages go hop by hop.

pub use crate::limits::DEFAULT_HOPS;

mod origins;
mod seen;

pub use origins::*;
pub use seen::*;

/// The hop limit to relay a broadcast with, or `None` when it must go no further.
pub fn relay_hops(hops: u8) -> Option<u8> {
    hops.checked_sub(1).filter(|&h| h > 0)
}

/// How far away a node is whose message arrived with `left` hops of `limit`:
/// 1 for a neighbour. Assumes the mesh shares one hop limit (the default).
pub fn distance(limit: u8, left: u8) -> u8 {
    limit.saturating_sub(left).saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hops_run_out() {
        assert_eq!(relay_hops(8), Some(7));
        assert_eq!(relay_hops(1), None);
        assert_eq!(relay_hops(0), None);
    }

    #[test]
    fn a_neighbour_is_one_hop_away() {
        assert_eq!(distance(8, 8), 1);
        assert_eq!(distance(8, 6), 3);
        assert_eq!(distance(8, 9), 1);
    }
}
