//! `meshtalk serve`: the one-way server of the seed programs. It logs every message
//! from its one client; the message [`QUIT`] gets the whole log back, in pieces of
//! at most one message cut between lines, then the client is disconnected once the
//! pieces are confirmed (or after [`SERVE_RECEIPT_WAIT`]) and the next one is served
//! with a fresh log.

use crate::command::Grammar;
use crate::event::Event;
use crate::limits::{SERVE_LOG, SERVE_RECEIPT_WAIT};
use crate::offer;
use crate::peers::PeerId;
use crate::time::Instant;

use super::{Action, Hears, Line, Mode, Queue, restrict};

/// The message that asks for the log (and that the client sends to ask for it).
pub const QUIT: &str = "quit";

/// A byte no UTF-8 text holds: it ends each line in the log, so a line may hold a
/// `\n` of its own and still be dropped or cut off whole.
const END: u8 = 0xFF;

/// The one-way server: the client being served and its log of at most `LOG` bytes
/// (each line counts one byte more, for the newline between lines); the oldest
/// lines are dropped beyond it.
#[derive(Clone, Debug)]
pub struct Serve<const LOG: usize = SERVE_LOG> {
    /// The longest message the node sends: the log goes back in pieces of at most this.
    max_text: usize,
    client: Option<PeerId>,
    /// The log, each line followed by [`END`]; once [`QUIT`] came, the log going
    /// back, until a new client is served.
    buf: [u8; LOG],
    /// Bytes of `buf` in use.
    len: usize,
    /// Lines in the log.
    lines: usize,
    /// Pieces of the log going back not handed out yet.
    pieces: usize,
    /// Where in `buf` the next piece begins.
    next: usize,
    /// The log is on its way back: the client is disconnected once it confirmed it.
    closing: Option<Closing>,
    queue: Queue<Kind, 8>,
}

/// A client whose log is being sent back.
#[derive(Clone, Copy, Debug)]
struct Closing {
    peer: PeerId,
    /// Log messages whose `sent` has not come yet.
    unsent: usize,
    /// Log messages sent and awaiting their receipt (native clients only).
    unconfirmed: usize,
    /// Disconnect by then, confirmed or not.
    deadline: Instant,
}

/// An action asked for, its text read when polled.
#[derive(Clone, Copy, Debug)]
enum Kind {
    LogSent {
        peer: PeerId,
        lines: usize,
    },
    /// Every piece of the log going back, one [`Action::Send`] each.
    Pieces,
    Disconnect,
}

impl<const LOG: usize> Serve<LOG> {
    /// A server whose node sends messages of at most `max_text` bytes.
    pub fn new(max_text: usize) -> Self {
        Serve {
            max_text,
            client: None,
            buf: [0; LOG],
            len: 0,
            lines: 0,
            pieces: 0,
            next: 0,
            closing: None,
            queue: Queue::new(),
        }
    }

    /// The client's log, oldest line first (none once it was asked for).
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.log()
            .split(|&b| b == END)
            .take(self.lines)
            .map(|line| core::str::from_utf8(line).unwrap_or_default())
    }

    /// Bytes the log takes, counting a newline between lines (at most `LOG`).
    pub fn log_len(&self) -> usize {
        self.len
    }

    fn log(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// A fresh log: what was kept or was going back is gone.
    fn reset(&mut self) {
        self.len = 0;
        self.lines = 0;
        self.pieces = 0;
        self.next = 0;
    }

    /// Keeps a message, dropping the oldest lines beyond `LOG` (all of them, and
    /// the message too, when it alone is longer).
    fn keep(&mut self, text: &str) {
        let cost = text.len() + 1;
        let mut drop = 0;
        let mut dropped = 0;
        while self.len - drop + cost > LOG {
            match end_of(self.log(), drop) {
                Some(end) => {
                    drop = end + 1;
                    dropped += 1;
                }
                None => {
                    drop = self.len;
                    break;
                }
            }
        }
        self.buf.copy_within(drop..self.len, 0);
        self.len -= drop;
        self.lines = self.lines.saturating_sub(dropped);
        let at = self.len;
        if let Some(room) = self.buf.get_mut(at..at + cost) {
            let (line, end) = room.split_at_mut(text.len());
            line.copy_from_slice(text.as_bytes());
            end.fill(END);
            self.len += cost;
            self.lines += 1;
        }
    }

    /// Where the piece of the log that begins at `start` ends: its first line, and
    /// the next ones while the piece, the lines joined by `\n`, is at most one
    /// message long.
    fn piece_end(&self, start: usize) -> usize {
        let log = self.log();
        let Some(mut end) = end_of(log, start) else {
            return start.min(log.len());
        };
        while let Some(next) = end_of(log, end + 1) {
            if next - start > self.max_text {
                break;
            }
            end = next;
        }
        end
    }

    /// The number of messages the log goes back in (an empty log is one empty message).
    fn count_pieces(&self) -> usize {
        let mut count = 0;
        let mut at = 0;
        while at < self.len {
            at = self.piece_end(at) + 1;
            count += 1;
        }
        count.max(1)
    }

    /// The next piece of the log going back: its lines joined by `\n` in place.
    fn cut(&mut self) -> &str {
        let start = self.next;
        let end = self.piece_end(start);
        self.next = end + 1;
        let piece = self.buf.get_mut(start..end).unwrap_or_default();
        for byte in piece.iter_mut().filter(|b| **b == END) {
            *byte = b'\n';
        }
        core::str::from_utf8(piece).unwrap_or_default()
    }

    /// Disconnects the client once its whole log left and was confirmed.
    fn close_when_done(&mut self) {
        if let Some(c) = &self.closing
            && c.unsent == 0
            && c.unconfirmed == 0
        {
            self.closing = None;
            self.queue.push(Kind::Disconnect);
        }
    }

    /// The client asked for its log: it goes back, and the client is served no more.
    fn quit(&mut self, peer: PeerId, now: Instant) {
        let pieces = self.count_pieces();
        self.closing = Some(Closing {
            peer,
            unsent: pieces,
            unconfirmed: 0,
            deadline: now + SERVE_RECEIPT_WAIT,
        });
        self.queue.push(Kind::LogSent {
            peer,
            lines: self.lines,
        });
        self.queue.push(Kind::Pieces);
        self.pieces = pieces;
        self.next = 0;
        self.lines = 0;
        self.client = None;
    }
}

/// Where the line of `log` that begins at `from` ends (its [`END`]).
fn end_of(log: &[u8], from: usize) -> Option<usize> {
    let at = log.get(from..)?.iter().position(|&b| b == END)?;
    Some(from + at)
}

impl<const LOG: usize> Mode for Serve<LOG> {
    fn line<'l>(&mut self, line: &'l str, grammar: Grammar, _now: Instant) -> Line<'l> {
        restrict(line, grammar, &offer::SERVE)
    }

    /// A server goes on serving when its input ends (`exit` or a signal stops it).
    fn end_of_input(&mut self, _now: Instant) -> bool {
        true
    }

    /// A log message could not be sent (the error is shown): one fewer to wait for.
    fn refused(&mut self, _now: Instant) {
        if let Some(c) = &mut self.closing {
            c.unsent = c.unsent.saturating_sub(1);
        }
        self.close_when_done();
    }

    fn deadline(&self) -> Option<Instant> {
        self.closing.as_ref().map(|c| c.deadline)
    }

    /// The client did not confirm its log in time: disconnect it anyway.
    fn timeout(&mut self, _now: Instant) {
        if self.closing.take().is_some() {
            self.queue.push(Kind::Disconnect);
        }
    }

    fn poll_action(&mut self) -> Option<Action<'_>> {
        loop {
            match self.queue.front()? {
                Kind::LogSent { peer, lines } => {
                    self.queue.pop();
                    return Some(Action::LogSent { peer, lines });
                }
                Kind::Disconnect => {
                    self.queue.pop();
                    return Some(Action::Disconnect);
                }
                Kind::Pieces if self.pieces == 0 => {
                    self.queue.pop();
                }
                Kind::Pieces => {
                    self.pieces -= 1;
                    if self.pieces == 0 {
                        self.queue.pop();
                    }
                    return Some(Action::Send(self.cut()));
                }
            }
        }
    }
}

impl<S: AsRef<str>, const LOG: usize> Hears<S> for Serve<LOG> {
    fn event(&mut self, event: &Event<S>, now: Instant) -> bool {
        let closing = self.closing.as_ref().map(|c| c.peer);
        match event {
            Event::Connected { peer, .. } => {
                self.client = Some(*peer);
                self.reset();
            }
            Event::Sent { peer, receipt, .. } if closing == Some(*peer) => {
                if let Some(c) = &mut self.closing {
                    c.unsent = c.unsent.saturating_sub(1);
                    c.unconfirmed += usize::from(*receipt);
                }
                self.close_when_done();
            }
            Event::Delivered { peer, .. } | Event::Undelivered { peer, .. }
                if closing == Some(*peer) =>
            {
                if let Some(c) = &mut self.closing {
                    c.unconfirmed = c.unconfirmed.saturating_sub(1);
                }
                self.close_when_done();
            }
            Event::Message {
                peer,
                text,
                room: None,
                ..
            } if self.client == Some(*peer) => {
                if text.as_ref() == QUIT {
                    self.quit(*peer, now);
                    // The end of the client's talk, shown as the log going back: not a message.
                    return false;
                }
                self.keep(text.as_ref());
            }
            Event::Disconnected { peer, .. } => {
                if self.client == Some(*peer) {
                    self.client = None;
                    self.reset();
                }
                if closing == Some(*peer) {
                    // What of its log has not gone yet goes nowhere.
                    self.closing = None;
                    self.reset();
                }
            }
            _ => {}
        }
        true
    }
}
