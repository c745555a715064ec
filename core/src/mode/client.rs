//! `meshtalk send`: the one-way client of the seed programs, native. It dials the
//! server, sends each line as a message, one at a time with at most [`WINDOW`]
//! awaiting their receipt, then [`QUIT`], then collects the log that comes back
//! (for up to [`SEND_LOG_WAIT`]) and ends: exit code 0 with the log, 1 without.
//!
//! Lines wait in a queue of `Q` bytes; when a line does not fit, the client says
//! [`Line::NotYet`] and the shell offers it again later: no line is ever lost.

use crate::command::Grammar;
use crate::event::Event;
use crate::limits::{MAX_HOST, SEND_LOG_WAIT, SEND_QUEUE, SERVE_LOG, WINDOW};
use crate::time::Instant;

use super::serve::QUIT;
use super::{Action, ClientError, Hears, Line, Log, Mode, Queue};

/// A byte no UTF-8 text holds: it ends each line in the queue.
const END: u8 = 0xFF;

/// The native one-way client: lines waiting in a queue of `Q` bytes (each one byte
/// more), and the log that came back, kept up to `L` bytes.
#[derive(Clone, Debug)]
pub struct Client<const Q: usize = SEND_QUEUE, const L: usize = SERVE_LOG> {
    /// The server's host name or address; `None`: longer than [`MAX_HOST`].
    host: Option<heapless::String<MAX_HOST>>,
    port: u16,
    /// The longest line the client takes: the node's longest message (and the queue's).
    max_text: usize,
    /// The lines waiting, each followed by [`END`], in `queue[head..tail]`.
    queue: [u8; Q],
    head: usize,
    tail: usize,
    /// `quit` was typed or the input ended: later lines are ignored, `quit` goes last.
    ending: bool,
    /// `quit` was handed out to be sent.
    quit_sent: bool,
    connected: bool,
    /// A send is under way and its `sent` has not come.
    sending: Option<Sending>,
    /// Messages sent and awaiting their receipt.
    unconfirmed: usize,
    /// `quit` went out: the log is awaited until then.
    log_deadline: Option<Instant>,
    /// The log's lines joined by `\n`, in `log[..log_len]`, once any of it came.
    log: [u8; L],
    log_len: usize,
    has_log: bool,
    /// The log was longer than `L`: the rest was dropped.
    log_cut: bool,
    actions: Queue<Kind, 8>,
}

/// What is being sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sending {
    /// The first line of the queue.
    Line,
    /// [`QUIT`], the last.
    Quit,
}

/// An action asked for, its text read when polled.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Connect,
    /// The first line of the queue, which leaves it.
    SendLine,
    SendQuit,
    Log,
    Error(ClientError),
    Quit(u8),
}

impl<const Q: usize, const L: usize> Client<Q, L> {
    /// A client of the server at `host`:`port`, whose node sends messages of at
    /// most `max_text` bytes.
    pub fn new(host: &str, port: u16, max_text: usize) -> Self {
        let mut name = heapless::String::new();
        let host = name.push_str(host).ok().map(|()| name);
        Client {
            host,
            port,
            max_text: max_text.min(Q.saturating_sub(1)),
            queue: [0; Q],
            head: 0,
            tail: 0,
            ending: false,
            quit_sent: false,
            connected: false,
            sending: None,
            unconfirmed: 0,
            log_deadline: None,
            log: [0; L],
            log_len: 0,
            has_log: false,
            log_cut: false,
            actions: Queue::new(),
        }
    }

    /// The longest line taken, in bytes.
    pub fn max_text(&self) -> usize {
        self.max_text
    }

    /// Bytes of lines waiting in the queue, each counting one more.
    pub fn queued(&self) -> usize {
        self.tail - self.head
    }

    /// Puts `line` at the end of the queue; false when it does not fit now.
    fn enqueue(&mut self, line: &str) -> bool {
        let cost = line.len() + 1;
        if self.tail + cost > Q {
            self.queue.copy_within(self.head..self.tail, 0);
            self.tail -= self.head;
            self.head = 0;
        }
        let at = self.tail;
        let Some(room) = self.queue.get_mut(at..at + cost) else {
            return false;
        };
        let (text, end) = room.split_at_mut(line.len());
        text.copy_from_slice(line.as_bytes());
        end.fill(END);
        self.tail += cost;
        true
    }

    /// Takes the first line out of the queue.
    fn dequeue(&mut self) -> &str {
        let start = self.head;
        let waiting = self.queue.get(start..self.tail).unwrap_or_default();
        let len = waiting
            .iter()
            .position(|&b| b == END)
            .unwrap_or(waiting.len());
        self.head = (start + len + 1).min(self.tail);
        let line = self.queue.get(start..start + len).unwrap_or_default();
        core::str::from_utf8(line).unwrap_or_default()
    }

    /// Sends the next queued line (or, at the end, [`QUIT`]) when the connection,
    /// the previous send and the receipt window allow.
    fn pump(&mut self) {
        if !self.connected || self.sending.is_some() || self.unconfirmed >= WINDOW {
            return;
        }
        if self.head < self.tail {
            self.sending = Some(Sending::Line);
            self.actions.push(Kind::SendLine);
        } else if self.ending && !self.quit_sent {
            self.quit_sent = true;
            self.sending = Some(Sending::Quit);
            self.actions.push(Kind::SendQuit);
        }
    }

    fn ask_for_log(&mut self) {
        if !self.ending {
            self.ending = true;
            self.pump();
        }
    }

    /// A piece of the log came: its lines are kept after those that came before.
    fn keep(&mut self, text: &str) {
        self.has_log = true;
        if text.is_empty() || self.log_cut {
            return;
        }
        let newline = usize::from(self.log_len > 0);
        let at = self.log_len + newline;
        match self.log.get_mut(at - newline..at + text.len()) {
            Some(room) => {
                let (sep, piece) = room.split_at_mut(newline);
                sep.fill(b'\n');
                piece.copy_from_slice(text.as_bytes());
                self.log_len = at + text.len();
            }
            None => self.log_cut = true,
        }
    }

    /// The end: the log if any came, else the error `why`.
    fn finish(&mut self, why: ClientError) {
        self.log_deadline = None;
        if self.has_log {
            self.actions.push(Kind::Log);
            if self.log_cut {
                self.actions
                    .push(Kind::Error(ClientError::LogCut { kept: L }));
            }
            self.actions.push(Kind::Quit(0));
        } else {
            self.actions.push(Kind::Error(why));
            self.actions.push(Kind::Quit(1));
        }
    }
}

impl<const Q: usize, const L: usize> Mode for Client<Q, L> {
    fn start(&mut self, _now: Instant) {
        match self.host {
            Some(_) => self.actions.push(Kind::Connect),
            None => {
                self.actions.push(Kind::Error(ClientError::HostTooLong));
                self.actions.push(Kind::Quit(1));
            }
        }
    }

    /// Every line is a message (an empty one sends nothing); [`QUIT`] asks for the
    /// log. A line that does not fit in the queue now is [`Line::NotYet`].
    fn line<'l>(&mut self, line: &'l str, _grammar: Grammar, _now: Instant) -> Line<'l> {
        if line == QUIT {
            self.ask_for_log();
        } else if !self.ending && !line.is_empty() {
            if line.len() > self.max_text {
                let (len, max) = (line.len(), self.max_text);
                self.actions
                    .push(Kind::Error(ClientError::TooLong { len, max }));
            } else if self.enqueue(line) {
                self.pump();
            } else {
                return Line::NotYet;
            }
        }
        Line::Taken
    }

    fn end_of_input(&mut self, _now: Instant) -> bool {
        self.ask_for_log();
        true
    }

    fn refused(&mut self, _now: Instant) {
        if !self.connected {
            // The dial itself was refused (its error is shown).
            self.actions.push(Kind::Quit(1));
        } else if self.sending.take() == Some(Sending::Quit) {
            self.finish(ClientError::CouldNotAsk);
        } else {
            self.pump();
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.log_deadline
    }

    fn timeout(&mut self, _now: Instant) {
        self.finish(ClientError::NoLog(SEND_LOG_WAIT));
    }

    fn poll_action(&mut self) -> Option<Action<'_>> {
        let kind = self.actions.pop()?;
        Some(match kind {
            Kind::Connect => Action::Connect {
                host: self.host.as_deref().unwrap_or_default(),
                port: self.port,
            },
            Kind::SendLine => Action::Send(self.dequeue()),
            Kind::SendQuit => Action::Send(QUIT),
            Kind::Log => {
                let log = self.log.get(..self.log_len).unwrap_or_default();
                Action::Log(Log(core::str::from_utf8(log).unwrap_or_default()))
            }
            Kind::Error(e) => Action::Error(e),
            Kind::Quit(code) => Action::Quit(code),
        })
    }
}

impl<S: AsRef<str>, const Q: usize, const L: usize> Hears<S> for Client<Q, L> {
    fn event(&mut self, event: &Event<S>, now: Instant) -> bool {
        match event {
            Event::Connected { .. } => {
                self.connected = true;
                self.pump();
            }
            Event::ConnectFailed { .. } => self.actions.push(Kind::Quit(1)),
            Event::Sent { receipt, .. } => {
                if *receipt {
                    self.unconfirmed += 1;
                }
                if self.sending.take() == Some(Sending::Quit) {
                    self.log_deadline = Some(now + SEND_LOG_WAIT);
                }
                self.pump();
            }
            Event::Delivered { .. } | Event::Undelivered { .. } => {
                self.unconfirmed = self.unconfirmed.saturating_sub(1);
                self.pump();
            }
            Event::Message { text, .. } if self.log_deadline.is_some() => {
                self.keep(text.as_ref());
                return false;
            }
            Event::Disconnected { .. } => {
                self.connected = false;
                let why = match self.log_deadline {
                    Some(_) => ClientError::ClosedWithoutLog,
                    None => ClientError::ClosedBeforeAsking,
                };
                self.finish(why);
            }
            _ => {}
        }
        true
    }
}
