//! Fair feeding: how a shell hands a peer's read bytes to the node.
//!
//! A peer is fed in *turns* of at most a budget of bytes, so a flooding peer
//! delays the others by at most one turn's work; a peer with bytes left after
//! its turn goes to the back of the `turns` ring. A peer whose input the flow
//! pauses goes to the `waiting` ring and is fed first, in the order it paused,
//! when the pause lifts. Within a turn the node answers `Consumed(k)` for each
//! piece offered: the shell drains and offers the rest; a piece the node takes
//! none of [`Settings::stuck_limit`] times in a row is dropped, so a node stuck
//! on some bytes never hangs its shell.

use crate::limits::{STUCK_LIMIT, TURN_BUDGET};
use crate::peers::PeerId;

/// The feeding rules' settings (the host runs the defaults; tests change them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Bytes of one peer fed in one turn (0 counts as 1: a turn always moves).
    pub turn_budget: usize,
    /// A piece the node takes none of this many times in a row is dropped (0 counts as 1).
    pub stuck_limit: u8,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            turn_budget: TURN_BUDGET,
            stuck_limit: STUCK_LIMIT,
        }
    }
}

/// What the rules did so far: for reports, and for tests to see a rule at work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Turns that ended at their budget with bytes left (the peer went to the back).
    pub turns_cut: u64,
    /// Times a peer's feeding stopped because the flow paused its input.
    pub paused: u64,
    /// Paused peers fed again once the flow let them.
    pub resumed: u64,
    /// Pieces dropped because the node took none of them [`Settings::stuck_limit`] times.
    pub stuck_drops: u64,
    /// Bytes in those pieces.
    pub stuck_bytes: u64,
    /// Peers that could not be queued because a ring was full (a shell that
    /// never calls [`Feeder::forget`]); they are fed when read again.
    pub overflows: u64,
}

/// A ring was full: the peer handed back was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full(pub PeerId);

impl core::fmt::Display for Full {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "no room to queue peer {} for feeding: a peer that left was not forgotten",
            self.0
        )
    }
}

/// A first-in first-out queue of up to `P` distinct peers, in a fixed array.
#[derive(Clone, Debug)]
pub struct Ring<const P: usize> {
    slots: [Option<PeerId>; P],
    head: usize,
    len: usize,
}

impl<const P: usize> Default for Ring<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const P: usize> Ring<P> {
    /// An empty ring.
    pub const fn new() -> Self {
        Ring {
            slots: [None; P],
            head: 0,
            len: 0,
        }
    }

    /// How many peers wait in it.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no peer waits in it.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The peers in order, first out first.
    pub fn iter(&self) -> impl Iterator<Item = PeerId> + '_ {
        (0..self.len).filter_map(move |i| self.slots[(self.head + i) % P])
    }

    /// Whether `peer` waits in it.
    pub fn contains(&self, peer: PeerId) -> bool {
        self.iter().any(|p| p == peer)
    }

    /// Puts `peer` at the back unless it is in already (`Ok(false)`); a full
    /// ring hands it back.
    pub fn push(&mut self, peer: PeerId) -> Result<bool, Full> {
        if self.contains(peer) {
            return Ok(false);
        }
        if self.len >= P {
            return Err(Full(peer));
        }
        self.slots[(self.head + self.len) % P] = Some(peer);
        self.len += 1;
        Ok(true)
    }

    /// Takes the peer at the front.
    pub fn pop(&mut self) -> Option<PeerId> {
        if self.len == 0 {
            return None;
        }
        let peer = self.slots[self.head].take();
        self.head = (self.head + 1) % P;
        self.len -= 1;
        peer
    }

    /// Takes `peer` out wherever it is, keeping the others' order; false if absent.
    pub fn remove(&mut self, peer: PeerId) -> bool {
        let Some(at) = self.iter().position(|p| p == peer) else {
            return false;
        };
        // Each one behind it moves up a place; the last place is then free.
        for i in at + 1..self.len {
            self.slots[(self.head + i - 1) % P] = self.slots[(self.head + i) % P];
        }
        self.slots[(self.head + self.len - 1) % P] = None;
        self.len -= 1;
        true
    }
}

/// One peer's turn being fed: what is left of its budget and how many times in
/// a row the node took nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Turn {
    peer: PeerId,
    budget: usize,
    refused: u8,
}

impl Turn {
    /// The peer whose bytes this turn feeds.
    pub fn peer(&self) -> PeerId {
        self.peer
    }

    /// Bytes this turn may still feed.
    pub fn budget(&self) -> usize {
        self.budget
    }
}

/// What the shell does next in a turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Offer the node the first this-many pending bytes.
    Offer(usize),
    /// The flow pauses this peer: it waits in the `waiting` ring.
    Paused,
    /// The budget is spent with bytes left: the peer is at the back of `turns`.
    Cut,
    /// Nothing is pending: the peer's socket may be read on.
    Done,
}

/// What the shell consumes after the node answered a piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Took {
    /// Bytes to take off the peer's pending chunk.
    pub consume: usize,
    /// The node was stuck on the piece: all of it is dropped, unread.
    pub dropped: bool,
}

/// The feeding rules and their two rings, for up to `P` peers.
#[derive(Clone, Debug)]
pub struct Feeder<const P: usize> {
    settings: Settings,
    waiting: Ring<P>,
    turns: Ring<P>,
    counters: Counters,
}

/// A pass over the peers that were waiting when it began (see [`Feeder::resume`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resume {
    left: usize,
}

impl<const P: usize> Feeder<P> {
    /// A feeder with no peer waiting, by these rules.
    pub const fn new(settings: Settings) -> Self {
        Feeder {
            settings,
            waiting: Ring::new(),
            turns: Ring::new(),
            counters: Counters {
                turns_cut: 0,
                paused: 0,
                resumed: 0,
                stuck_drops: 0,
                stuck_bytes: 0,
                overflows: 0,
            },
        }
    }

    /// The rules it feeds by.
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// What its rules did so far (turns cut, pauses, stuck drops), for reports.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Peers paused by the flow, in the order they paused.
    pub fn waiting(&self) -> &Ring<P> {
        &self.waiting
    }

    /// Peers with bytes left after their turn, in the order they are served.
    pub fn turns(&self) -> &Ring<P> {
        &self.turns
    }

    /// A new turn for `peer`, with the whole budget.
    pub fn turn(&self, peer: PeerId) -> Turn {
        Turn {
            peer,
            budget: self.settings.turn_budget.max(1),
            refused: 0,
        }
    }

    /// The next step of `turn`, given the bytes still `pending` from the peer and
    /// whether the flow `feeds` it now (a peer still greeting is always fed).
    /// Pausing or cutting the turn queues the peer in the matching ring.
    pub fn next(&mut self, turn: &mut Turn, pending: usize, feeds: bool) -> Next {
        if !feeds {
            self.counters.paused += 1;
            let pushed = self.waiting.push(turn.peer);
            self.overflowed(pushed);
            return Next::Paused;
        }
        if pending == 0 {
            return Next::Done;
        }
        if turn.budget == 0 {
            self.counters.turns_cut += 1;
            let pushed = self.turns.push(turn.peer);
            self.overflowed(pushed);
            return Next::Cut;
        }
        Next::Offer(pending.min(turn.budget))
    }

    /// The node took `taken` of the `offered` bytes (more counts as all): how many
    /// the shell consumes. The [`Settings::stuck_limit`]th piece in a row that the
    /// node took none of is dropped whole.
    pub fn took(&mut self, turn: &mut Turn, offered: usize, taken: usize) -> Took {
        let mut took = Took {
            consume: taken.min(offered),
            dropped: false,
        };
        if took.consume == 0 && offered > 0 {
            turn.refused = turn.refused.saturating_add(1);
            if turn.refused >= self.settings.stuck_limit.max(1) {
                turn.refused = 0;
                self.counters.stuck_drops += 1;
                self.counters.stuck_bytes =
                    self.counters.stuck_bytes.saturating_add(offered as u64);
                took = Took {
                    consume: offered,
                    dropped: true,
                };
            }
        } else {
            turn.refused = 0;
        }
        turn.budget = turn.budget.saturating_sub(took.consume);
        took
    }

    /// Puts `peer` at the back of the `turns` (a throttled peer whose bucket
    /// refilled, say); false if it was in already or the ring had no room.
    pub fn give_turn(&mut self, peer: PeerId) -> bool {
        let pushed = self.turns.push(peer);
        self.overflowed(pushed);
        pushed == Ok(true)
    }

    /// The peer whose turn is next, taken off the `turns` ring.
    pub fn next_turn(&mut self) -> Option<PeerId> {
        self.turns.pop()
    }

    /// Starts a pass over the peers waiting now; peers that pause during the pass
    /// are not revisited by it (so it ends).
    pub fn resume(&self) -> Resume {
        Resume {
            left: self.waiting.len(),
        }
    }

    /// The next waiting peer of the pass that `feeds` lets go on, taken off the
    /// ring; those it does not wait on, in their order.
    pub fn next_resumed(
        &mut self,
        pass: &mut Resume,
        feeds: impl Fn(PeerId) -> bool,
    ) -> Option<PeerId> {
        while pass.left > 0 {
            pass.left -= 1;
            let peer = self.waiting.pop()?;
            if feeds(peer) {
                self.counters.resumed += 1;
                return Some(peer);
            }
            let pushed = self.waiting.push(peer);
            self.overflowed(pushed);
        }
        None
    }

    /// Whether a waiting peer would be fed now (the shell has a resume to do).
    pub fn resumable(&self, feeds: impl Fn(PeerId) -> bool) -> bool {
        self.waiting.iter().any(feeds)
    }

    /// `peer` is gone: it waits for nothing any more.
    pub fn forget(&mut self, peer: PeerId) {
        self.waiting.remove(peer);
        self.turns.remove(peer);
    }

    /// Counts a ring that had no room for a peer.
    fn overflowed(&mut self, pushed: Result<bool, Full>) {
        if pushed.is_err() {
            self.counters.overflows += 1;
        }
    }
}
