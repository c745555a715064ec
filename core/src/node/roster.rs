//! The roster: the ready peers a fan-out walks, and where the front fan-out is.

use heapless::Vec;

use super::{Link, Phase};
use crate::peers::{PeerId, PeerTable};

/// The peers in the room, in slot order, with their phase, and the fan-out
/// cursor. Fan-outs walk this, not the table, whose slots each hold a receive
/// buffer (a cache miss per peer per message). Built by the first fan-out polled
/// after an input: phases change only with inputs, and a drain comes between two.
pub(super) struct Roster<const P: usize> {
    peers: Vec<(PeerId, Phase), P>,
    /// An input came since the roster was built: phases may have changed.
    stale: bool,
    /// Where in `peers` the front fan-out goes on (checked before use).
    cursor: usize,
}

impl<const P: usize> Roster<P> {
    pub(super) const fn new() -> Self {
        Roster {
            peers: Vec::new(),
            stale: true,
            cursor: 0,
        }
    }

    /// An input came: rebuild before the next fan-out.
    #[inline]
    pub(super) fn mark_stale(&mut self) {
        self.stale = true;
    }

    /// Rebuilds the roster from the table if an input came since it was built.
    #[inline]
    pub(super) fn refresh<const F: usize>(&mut self, table: &PeerTable<Link<F>, P>) {
        if self.stale {
            self.build(table);
        }
    }

    /// Lists the ready peers (and connections not yet known to be native or text,
    /// which are in the room too). Out of line: kept off the fan-out's hot path.
    #[inline(never)]
    fn build<const F: usize>(&mut self, table: &PeerTable<Link<F>, P>) {
        self.peers.clear();
        for slot in 0..table.slots() {
            if let Some(p) = table.at(slot)
                && (matches!(p.state.phase, Phase::Ready(_))
                    || (p.state.phase == Phase::Greeting && p.state.refuse.is_none()))
            {
                // Fits: the roster holds as many as the table.
                let _ = self.peers.push((p.id, p.state.phase));
            }
        }
        self.stale = false;
    }

    /// The peers from the first whose slot is `next` or later, with their place
    /// in the roster: most often where the last poll left the cursor.
    #[inline]
    pub(super) fn onward(&self, next: usize) -> impl Iterator<Item = (usize, PeerId, Phase)> {
        let slot_at = |i: usize| self.peers.get(i).map(|(id, _)| id.slot());
        let cursor = self.cursor;
        let resumes = (cursor == 0 || slot_at(cursor - 1).is_some_and(|s| s < next))
            && slot_at(cursor).is_none_or(|s| s >= next);
        let from = match resumes {
            true => cursor,
            false => self.peers.partition_point(|(id, _)| id.slot() < next),
        };
        self.peers
            .iter()
            .enumerate()
            .skip(from)
            .map(|(i, &(id, phase))| (i, id, phase))
    }

    /// The front fan-out went to the peer at `at`: it goes on after it.
    #[inline]
    pub(super) fn advance(&mut self, at: usize) {
        self.cursor = at + 1;
    }

    /// The front fan-out is done: the next starts from the first peer.
    #[inline]
    pub(super) fn rewind(&mut self) {
        self.cursor = 0;
    }
}
