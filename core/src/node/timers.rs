//! Time: each link's timers, and what happens when one fires.

use super::{Fault, Kind, Link, Node, Phase, Reason, Refusal, Rx, TextMode};
use crate::outbox::Job;
use crate::peers::{Direction, PeerId};
use crate::time::Instant;
use crate::wire::{BANNER_PREFIX, Message};

impl<const P: usize, const F: usize, const A: usize, const R: usize> Node<P, F, A, R> {
    /// Fires every timer that is due, and sets the next wake-up from the rest.
    pub(super) fn on_timeout(&mut self, now: Instant) {
        self.wake = None;
        // Direct messages across the mesh whose receipt is overdue (at most
        // ROUTED_WINDOW events, within the reserve).
        match self.outbox.has_room(Self::RESERVE, Self::RESERVE_JOBS) {
            true => {
                self.routed_timeouts(now);
                self.announce_due(now);
            }
            false => self.wake = Some(now),
        }
        for slot in 0..self.peers.slots() {
            // A peer's timers fire one at a time, each changing what is next.
            let mut fired = 0;
            while let Some(p) = self.peers.at(slot) {
                let (peer, next) = (p.id, self.next_timer(&p.state));
                match next {
                    Some((timer, at)) if at <= now && fired < Timer::COUNT => {
                        fired += 1;
                        if !self.outbox.has_room(Self::RESERVE, Self::RESERVE_JOBS) {
                            // Come back at once for the rest.
                            self.wake = Some(now);
                            return;
                        }
                        self.fire(now, peer, timer);
                    }
                    // Also a timer still due after each fired once: wake at once.
                    Some((_, at)) => {
                        self.wake_by(at);
                        break;
                    }
                    None => break,
                }
            }
        }
    }

    /// A link's earliest timer and when it is due.
    fn next_timer(&self, link: &Link<F>) -> Option<(Timer, Instant)> {
        let live = match (link.phase, link.pings, self.config.ping_after) {
            (Phase::Ready(Kind::Native), true, Some(after)) => Some(match link.pinged {
                None => (Timer::Ping, link.last_rx + after),
                Some(pinged) => (Timer::Dead, pinged + self.config.dead_after),
            }),
            _ => None,
        };
        let frame = link
            .frame_since
            .map(|since| (Timer::Frame, since + self.config.frame_timeout));
        let deadline = link.deadline.map(|at| (Timer::Deadline, at));
        [deadline, frame, live]
            .into_iter()
            .flatten()
            .min_by_key(|&(_, at)| at)
    }

    fn fire(&mut self, now: Instant, peer: PeerId, timer: Timer) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        match timer {
            Timer::Deadline => {
                p.state.deadline = None;
                self.on_deadline(now, peer);
            }
            Timer::Frame => {
                p.state.frame_since = None;
                self.fault(peer, Fault::FrameUnfinished);
            }
            Timer::Ping => {
                p.state.pinged = Some(now);
                let nonce = p.state.ping_nonce;
                p.state.ping_nonce = nonce.wrapping_add(1);
                if let Ok(data) = self.outbox.put_message(&Message::Ping { nonce }) {
                    self.outbox.push(Job::Send { peer, data });
                }
            }
            Timer::Dead => {
                let silent = self.config.ping_after.unwrap_or_default() + self.config.dead_after;
                self.drop_peer(peer, Reason::NoAnswer(silent), true);
            }
        }
    }

    fn on_deadline(&mut self, now: Instant, peer: PeerId) {
        let private = self.text_refusal().is_some();
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        match (&mut p.state.rx, p.state.phase) {
            (Rx::Banner(buf, _), Phase::Greeting) if buf.is_empty() => {
                // Silent: a text peer (the older programs never speak first). Its
                // first bytes are still sniffed, so a native peer whose banner was
                // merely late (a loaded machine, a slow link) is not lost to text.
                let mode = match p.direction {
                    Direction::Outbound => TextMode::Bare,
                    Direction::Inbound => TextMode::Lines,
                };
                if p.state.refuse.is_some() || private {
                    // No room for it: told why as text, and closed.
                    self.become_text(now, peer, &[], mode);
                    return;
                }
                p.state.phase = Phase::Ready(Kind::Text(mode));
                self.text_joined(peer);
            }
            (Rx::Banner(buf, _), Phase::Greeting | Phase::Ready(Kind::Text(_)))
                if buf.len() < BANNER_PREFIX.len() =>
            {
                // A few letters that were not a banner after all: plain text.
                let held = buf.clone();
                let mode = match p.direction {
                    Direction::Outbound => TextMode::Bare,
                    Direction::Inbound => TextMode::Lines,
                };
                self.become_text(now, peer, &held, mode);
            }
            (Rx::Banner(..), _) => self.fault(peer, Fault::BannerUnfinished),
            // The deciding node did not choose in time: the link in use stays.
            (Rx::Frames(_), Phase::Hello) if p.state.awaits_twin => self.close_twin(peer),
            // A refused peer whose hello did not come: told in words, as an older one.
            (Rx::Frames(_), Phase::Hello) if p.state.refuse.is_some() => {
                let why = p.state.refuse.unwrap_or(Refusal::Unknown);
                self.refuse_native(peer, why, 0)
            }
            (Rx::Frames(_), Phase::Hello) => self.fault(peer, Fault::HelloMissing),
            (Rx::Text(buf), _) if !buf.is_empty() => {
                // Idle after text with no newline: one bare message.
                if let Phase::Ready(Kind::Text(mode)) = &mut p.state.phase {
                    *mode = TextMode::Bare;
                }
                self.flush_text(peer, usize::MAX);
            }
            _ => {}
        }
    }
}

/// A link's timers, each computed from its state when the node wakes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    /// The greeting, banner, hello or text-idle deadline.
    Deadline,
    /// A partial frame must end.
    Frame,
    /// The peer has been silent long enough to ping.
    Ping,
    /// The pinged peer has not answered.
    Dead,
}

impl Timer {
    /// How many timers one link has.
    const COUNT: usize = 4;
}
