//! Rate limiting: at most so many messages a second shown from one peer, and
//! its input read no faster (`--rate-limit`).
//!
//! Each peer has a token bucket: one token per message shown, refilled at the
//! rate, holding a second's worth (at least one token). Tokens are counted in
//! millionths, so refilling by whole milliseconds at a rate in thousandths of a
//! message a second is exact: no rounding drift however often it is asked. A
//! piece of input may overdraw the bucket (the node shows what the piece holds);
//! the peer is then fed nothing until it is back to one token. A rate-limited
//! peer is fed one line at a time ([`line_piece`], at most
//! [`crate::limits::RATE_PIECE`] bytes), so it overdraws by one
//! message at most.

use crate::peers::PeerId;
use crate::shell::feed::Ring;
use crate::time::{Duration, Instant};

/// One token, in the bucket's units (millionths of a message).
const TOKEN: i64 = 1_000_000;

/// A rate of zero messages a second: nothing would ever be shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZeroRate;

impl core::fmt::Display for ZeroRate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("a rate limit must be more than 0 messages per second (at least 0.001)")
    }
}

/// Messages a second, in thousandths (never zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    milli_per_sec: u32,
}

impl Rate {
    /// `milli_per_sec` thousandths of a message a second: `Rate::new(2500)` is 2.5/s.
    pub const fn new(milli_per_sec: u32) -> Result<Rate, ZeroRate> {
        match milli_per_sec {
            0 => Err(ZeroRate),
            m => Ok(Rate { milli_per_sec: m }),
        }
    }

    /// The rate in thousandths of a message per second.
    pub const fn milli_per_sec(self) -> u32 {
        self.milli_per_sec
    }

    /// The most a bucket holds: a second's worth, at least one token.
    fn capacity(self) -> i64 {
        (i64::from(self.milli_per_sec) * 1000).max(TOKEN)
    }
}

/// One peer's token bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// Millionths of a token; below zero when overdrawn.
    micros: i64,
    /// When `micros` was last brought up to date.
    at: Instant,
}

impl Bucket {
    /// A full bucket at `now`.
    pub fn new(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            micros: rate.capacity(),
            at: now,
        }
    }

    /// Tokens held, in millionths (below zero when overdrawn).
    pub fn micros(&self) -> i64 {
        self.micros
    }

    /// Refills for the time passed since the last update (a `now` before it
    /// counts as no time); true when a message may be taken.
    pub fn ready(&mut self, rate: Rate, now: Instant) -> bool {
        let ms = now.saturating_since(self.at).as_millis();
        // ms × thousandths/s is millionths of a message, exactly.
        let gained = i64::try_from(ms)
            .unwrap_or(i64::MAX)
            .saturating_mul(i64::from(rate.milli_per_sec));
        self.micros = self.micros.saturating_add(gained).min(rate.capacity());
        self.at = self.at.max(now);
        self.micros >= TOKEN
    }

    /// One message was shown: one token is spent (the bucket may go below zero).
    pub fn take(&mut self) {
        self.micros = self.micros.saturating_sub(TOKEN);
    }

    /// When the bucket holds one token again, if nothing is taken meanwhile.
    pub fn ready_at(&self, rate: Rate) -> Instant {
        let missing = TOKEN.saturating_sub(self.micros);
        if missing <= 0 {
            return self.at;
        }
        let per_ms = i64::from(rate.milli_per_sec);
        // Rounded up: at that millisecond the token is whole.
        let ms = missing / per_ms + i64::from(missing % per_ms != 0);
        self.at + Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
    }
}

/// How much of `bytes` to feed a rate-limited peer at once: up to its first
/// newline, at most `max`, so one piece holds one line's message at most (a text
/// peer's message ends at its newline).
pub fn line_piece(bytes: &[u8], max: usize) -> usize {
    let window = bytes.get(..max).unwrap_or(bytes);
    window
        .iter()
        .position(|&b| b == b'\n')
        .map_or(window.len(), |i| i + 1)
}

/// The rate limit of up to `P` peers: their buckets (by table slot) and the
/// peers that wait for a refill, in the order they ran dry.
#[derive(Clone, Debug)]
pub struct Limiter<const P: usize> {
    rate: Rate,
    buckets: [Option<(PeerId, Bucket)>; P],
    throttled: Ring<P>,
}

impl<const P: usize> Limiter<P> {
    /// A limiter with no bucket yet; each peer gets a full one when first fed.
    pub const fn new(rate: Rate) -> Self {
        Limiter {
            rate,
            buckets: [None; P],
            throttled: Ring::new(),
        }
    }

    /// The rate every peer is held to.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// `peer`'s bucket, if it has one yet.
    pub fn bucket(&self, peer: PeerId) -> Option<&Bucket> {
        match self.buckets.get(peer.slot())? {
            Some((id, bucket)) if *id == peer => Some(bucket),
            _ => None,
        }
    }

    /// Whether `peer` may be fed a piece now (its bucket, full at first, holds a
    /// token). If not, it waits for its refill (see [`Limiter::next_refilled`]).
    /// A peer outside the `P` slots is never limited.
    pub fn admit(&mut self, peer: PeerId, now: Instant) -> bool {
        let rate = self.rate;
        let Some(slot) = self.buckets.get_mut(peer.slot()) else {
            return true;
        };
        let bucket = match slot {
            Some((id, bucket)) if *id == peer => bucket,
            _ => &mut slot.insert((peer, Bucket::new(rate, now))).1,
        };
        if bucket.ready(rate, now) {
            return true;
        }
        // A full ring cannot be: a peer is in it once and peers have distinct slots.
        let _ = self.throttled.push(peer);
        false
    }

    /// The node showed a message from `peer`: one of its tokens is spent.
    pub fn shown(&mut self, peer: PeerId) {
        if let Some(Some((id, bucket))) = self.buckets.get_mut(peer.slot())
            && *id == peer
        {
            bucket.take();
        }
    }

    /// A throttled peer whose bucket holds a token again at `now` (or that is
    /// gone), taken off the wait: give it a turn. Call until `None`.
    pub fn next_refilled(&mut self, now: Instant) -> Option<PeerId> {
        let rate = self.rate;
        let peer = self.throttled.iter().find(|&peer| {
            self.bucket(peer)
                .is_none_or(|bucket| bucket.ready_at(rate) <= now)
        })?;
        self.throttled.remove(peer);
        Some(peer)
    }

    /// When the first throttled peer's bucket holds a token again.
    pub fn next_at(&self) -> Option<Instant> {
        self.throttled
            .iter()
            .map(|peer| {
                self.bucket(peer)
                    .map_or(Instant::ZERO, |bucket| bucket.ready_at(self.rate))
            })
            .min()
    }

    /// `peer` is gone: its bucket and its wait go.
    pub fn forget(&mut self, peer: PeerId) {
        if let Some(slot) = self.buckets.get_mut(peer.slot())
            && slot.is_some_and(|(id, _)| id == peer)
        {
            *slot = None;
        }
        self.throttled.remove(peer);
    }
}
