//! `--auto-connect`'s rule: which room members heard on the LAN to dial now,
//! so that a node keeps a few links (at most its limit), not a full mesh.
//!
//! - Only room members whose key sorts after ours are dialled: of two nodes,
//!   the lower key dials, so they never dial each other at once.
//! - A member it dialled holds one of the limit's places while it is heard:
//!   when its link drops (or the dial fails) it is dialled again after the
//!   shell's [`Backoff`] (1 s doubling to 30 s; a link that lasted
//!   [`SETTLED`] resets it), never in a tight loop: a link refused as soon
//!   as it is up (the member is full, or does not trust our key) backs off
//!   like a failed dial.
//! - A member that left (its farewell, or not heard for the expiry) is
//!   forgotten: never dialled again, and its place goes to another member.
//!
//! The host tells it what discovery heard and what became of the links it
//! dialled, asks [`AutoConnect::next_dial`] until `None` after each, and
//! wakes at [`AutoConnect::next_at`]. It holds keys only: where to dial is
//! the host's table of nodes nearby.

use crate::noise::KEY_LEN;
use crate::shell::backoff::{Backoff, Handle};
use crate::time::{Duration, Instant};

/// A link that lasted this long resets its member's re-dial wait to the least.
pub const SETTLED: Duration = Duration::from_secs(10);

/// What became of a member auto-connect knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Heard, not dialled: the limit is reached, or it is linked otherwise.
    Heard,
    /// Dialled; the link is not up yet.
    Dialling,
    /// Linked through our dial, since this time.
    Linked(Instant),
    /// Its link dropped or the dial failed: dialled again when its backoff ends.
    Waiting,
}

impl State {
    /// Whether the member holds one of the limit's places.
    fn counts(self) -> bool {
        self != State::Heard
    }
}

/// A member's place in the table, told apart from an earlier holder of the
/// place by `serial` (the backoff's handle).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    slot: u16,
    serial: u32,
}

impl Handle for Place {
    fn slot(self) -> usize {
        usize::from(self.slot)
    }
}

/// A room member heard.
#[derive(Clone, Copy, Debug)]
struct Member {
    key: [u8; KEY_LEN],
    place: Place,
    state: State,
}

/// `--auto-connect`'s choices among up to `M` members heard; see the module doc.
#[derive(Clone, Debug)]
pub struct AutoConnect<const M: usize> {
    ours: [u8; KEY_LEN],
    limit: usize,
    members: [Option<Member>; M],
    serial: u32,
    backoff: Backoff<M, Place>,
}

impl<const M: usize> AutoConnect<M> {
    /// For the node of key `ours`, dialling at most `limit` members (at most `M`).
    pub fn new(ours: [u8; KEY_LEN], limit: usize) -> Self {
        Self::with_backoff(ours, limit, Backoff::default())
    }

    /// As [`AutoConnect::new`], re-dials waiting from `min` doubling to `max`.
    pub fn with_waits(ours: [u8; KEY_LEN], limit: usize, min: Duration, max: Duration) -> Self {
        Self::with_backoff(ours, limit, Backoff::new(min, max))
    }

    fn with_backoff(ours: [u8; KEY_LEN], limit: usize, backoff: Backoff<M, Place>) -> Self {
        AutoConnect {
            ours,
            limit: limit.min(M),
            members: [None; M],
            serial: 0,
            backoff,
        }
    }

    /// A node was heard (found or changed); `in_room`: it is in our room. A
    /// member that sorts after us is remembered (while there is room); a node
    /// no longer in our room is forgotten.
    pub fn heard(&mut self, key: &[u8; KEY_LEN], in_room: bool) {
        if !in_room || key <= &self.ours {
            self.left(key);
            return;
        }
        if self.find(key).is_some() {
            return;
        }
        let Some(slot) = self.members.iter().position(Option::is_none) else {
            return; // Full: as many members as discovery keeps nodes; it waits its turn.
        };
        self.serial = self.serial.wrapping_add(1);
        self.members[slot] = Some(Member {
            key: *key,
            // Fits: a table of more than 65,536 members is not a LAN's.
            place: Place {
                slot: u16::try_from(slot).unwrap_or(u16::MAX),
                serial: self.serial,
            },
            state: State::Heard,
        });
    }

    /// A node left (its farewell, or not heard for the expiry): never dialled
    /// again. True if it held a place.
    pub fn left(&mut self, key: &[u8; KEY_LEN]) -> bool {
        let Some(i) = self.find(key) else {
            return false;
        };
        let Some(member) = self.members[i].take() else {
            return false;
        };
        self.backoff.forget(member.place);
        member.state.counts()
    }

    /// The link we dialled to `key` is up at `now`.
    pub fn linked(&mut self, key: &[u8; KEY_LEN], now: Instant) {
        if let Some(member) = self.member_mut(key)
            && member.state.counts()
        {
            member.state = State::Linked(now);
        }
    }

    /// The link we dialled to `key` dropped, or the dial failed, at `now`: it
    /// is dialled again after the wait returned, which doubles for the next
    /// time (unless the link lasted [`SETTLED`]: then it starts over at the
    /// least); `None` if it is no member we dialled.
    pub fn dropped(&mut self, key: &[u8; KEY_LEN], now: Instant) -> Option<Duration> {
        let member = self.member_mut(key)?;
        let settled = match member.state {
            State::Dialling => false,
            State::Linked(since) => now.saturating_since(since) >= SETTLED,
            State::Heard | State::Waiting => return None,
        };
        member.state = State::Waiting;
        let place = member.place;
        if settled {
            self.backoff.connected(place);
        }
        self.backoff.schedule(place, now)
    }

    /// A member to dial at `now`, marked as dialled: first one whose re-dial
    /// is due, then, below the limit, one heard and not `linked` otherwise.
    /// Call until `None`. A member due but `linked` otherwise gives up its place.
    pub fn next_dial(
        &mut self,
        now: Instant,
        linked: impl Fn(&[u8; KEY_LEN]) -> bool,
    ) -> Option<[u8; KEY_LEN]> {
        while let Some(place) = self.backoff.next_due(now) {
            let Some(member) = self.members.iter_mut().flatten().find(|m| m.place == place) else {
                continue;
            };
            if member.state != State::Waiting {
                continue;
            }
            if linked(&member.key) {
                member.state = State::Heard;
                continue;
            }
            member.state = State::Dialling;
            return Some(member.key);
        }
        if self.placed() >= self.limit {
            return None;
        }
        let member = self
            .members
            .iter_mut()
            .flatten()
            .find(|m| m.state == State::Heard && !linked(&m.key))?;
        member.state = State::Dialling;
        let (place, key) = (member.place, member.key);
        self.backoff.dialled(place);
        Some(key)
    }

    /// When the first re-dial is due, if any.
    pub fn next_at(&self) -> Option<Instant> {
        self.backoff.next_at()
    }

    /// What became of `key`, if it is a member remembered.
    pub fn state(&self, key: &[u8; KEY_LEN]) -> Option<State> {
        Some(self.members[self.find(key)?]?.state)
    }

    /// How many members hold a place (dialled, linked or waiting): at most the limit.
    pub fn placed(&self) -> usize {
        self.members
            .iter()
            .flatten()
            .filter(|m| m.state.counts())
            .count()
    }

    fn find(&self, key: &[u8; KEY_LEN]) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.as_ref().is_some_and(|m| &m.key == key))
    }

    fn member_mut(&mut self, key: &[u8; KEY_LEN]) -> Option<&mut Member> {
        self.members.iter_mut().flatten().find(|m| &m.key == key)
    }
}
