//! `meshtalk serve`: the one-way server. It logs every message from its one client;
//! the message `quit` gets the whole log back, then the client is disconnected and
//! the next one is served with a fresh log.

use std::collections::VecDeque;

use meshtalk_core::command::Grammar;
use meshtalk_core::limits::{SERVE_LOG, SERVE_RECEIPT_WAIT};
use meshtalk_core::node::Event;
use meshtalk_core::offer;
use meshtalk_core::peers::PeerId;
use meshtalk_core::time::Instant;

use crate::mode::{Action, Mode, restrict};

/// The message that asks for the log.
pub const QUIT: &str = "quit";

/// The client being served and its log.
pub struct Serve {
    /// The longest message the node sends: the log goes back in pieces of at most this.
    max_text: usize,
    client: Option<PeerId>,
    log: VecDeque<String>,
    /// Bytes in `log`, counting a newline between lines.
    log_len: usize,
    /// The log is on its way back: the client is disconnected once it confirmed it.
    closing: Option<Closing>,
}

/// A client whose log is being sent back.
struct Closing {
    peer: PeerId,
    /// Log messages whose `sent` has not come yet.
    unsent: usize,
    /// Log messages sent and awaiting their receipt (native clients only).
    unconfirmed: usize,
    /// Disconnect by then, confirmed or not.
    deadline: Instant,
}

impl Serve {
    /// A server whose node sends messages of at most `max_text` bytes.
    pub fn new(max_text: usize) -> Self {
        Serve {
            max_text,
            client: None,
            log: VecDeque::new(),
            log_len: 0,
            closing: None,
        }
    }

    /// Disconnects the client once its whole log left and was confirmed.
    fn close_when_done(&mut self, out: &mut Vec<Action>) {
        if let Some(c) = &self.closing
            && c.unsent == 0
            && c.unconfirmed == 0
        {
            self.closing = None;
            out.push(Action::Disconnect);
        }
    }

    fn reset(&mut self) {
        self.log.clear();
        self.log_len = 0;
    }

    /// Keeps a message, dropping the oldest lines beyond [`SERVE_LOG`].
    fn keep(&mut self, text: &str) {
        self.log_len += text.len() + 1;
        self.log.push_back(text.to_string());
        while self.log_len > SERVE_LOG {
            let Some(old) = self.log.pop_front() else {
                break;
            };
            self.log_len -= old.len() + 1;
        }
    }

    /// The log as messages of at most one message's length, cut between lines.
    /// A log that fits is one message: the lines joined by `\n`, no trailing newline.
    fn messages(&self) -> Vec<String> {
        let max = self.max_text;
        let mut out = Vec::new();
        let mut current = String::new();
        for (i, line) in self.log.iter().enumerate() {
            if i > 0 && current.len() + 1 + line.len() > max {
                out.push(std::mem::take(&mut current));
            } else if i > 0 {
                current.push('\n');
            }
            current.push_str(line);
        }
        out.push(current);
        out
    }
}

impl Mode for Serve {
    fn line(&mut self, line: &str, grammar: Grammar, _now: Instant, out: &mut Vec<Action>) -> bool {
        restrict(line, grammar, &offer::SERVE, out)
    }

    /// A server goes on serving when its stdin ends (`exit` or a signal stops it).
    fn end_of_input(&mut self, _now: Instant, _out: &mut Vec<Action>) -> bool {
        true
    }

    fn event(&mut self, event: &Event<String>, now: Instant, out: &mut Vec<Action>) -> bool {
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
                self.close_when_done(out);
            }
            Event::Delivered { peer, .. } | Event::Undelivered { peer, .. }
                if closing == Some(*peer) =>
            {
                if let Some(c) = &mut self.closing {
                    c.unconfirmed = c.unconfirmed.saturating_sub(1);
                }
                self.close_when_done(out);
            }
            Event::Message {
                peer,
                text,
                room: None,
                ..
            } if self.client == Some(*peer) => {
                if text == QUIT {
                    let messages = self.messages();
                    self.closing = Some(Closing {
                        peer: *peer,
                        unsent: messages.len(),
                        unconfirmed: 0,
                        deadline: now + SERVE_RECEIPT_WAIT,
                    });
                    out.push(Action::LogSent {
                        peer: *peer,
                        lines: self.log.len(),
                    });
                    out.extend(messages.into_iter().map(Action::Send));
                    self.client = None;
                    self.reset();
                    // The end of the client's talk, shown as the log going back: not a message.
                    return false;
                }
                self.keep(text);
            }
            Event::Disconnected { peer, .. } => {
                if self.client == Some(*peer) {
                    self.client = None;
                    self.reset();
                }
                if closing == Some(*peer) {
                    self.closing = None;
                }
            }
            _ => {}
        }
        true
    }

    /// A log message could not be sent (the error is shown): one fewer to wait for.
    fn refused(&mut self, _now: Instant, out: &mut Vec<Action>) {
        if let Some(c) = &mut self.closing {
            c.unsent = c.unsent.saturating_sub(1);
        }
        self.close_when_done(out);
    }

    fn deadline(&self) -> Option<Instant> {
        self.closing.as_ref().map(|c| c.deadline)
    }

    /// The client did not confirm its log in time: disconnect it anyway.
    fn timeout(&mut self, _now: Instant, out: &mut Vec<Action>) {
        if self.closing.take().is_some() {
            out.push(Action::Disconnect);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The longest message in these tests.
    const MAX: usize = 100;

    fn log_of(lines: &[&str]) -> Serve {
        let mut serve = Serve::new(MAX);
        for line in lines {
            serve.keep(line);
        }
        serve
    }

    #[test]
    fn a_clients_quit_is_not_shown_as_a_message_and_its_log_goes_back() {
        use meshtalk_core::peers::{Direction, PeerTable};
        let mut table: PeerTable<(), 2> = PeerTable::new(2);
        let peer = table
            .insert(None, Direction::Inbound, None, ())
            .expect("a slot");
        let mut serve = Serve::new(MAX);
        let now = Instant::ZERO;
        let mut out = Vec::new();
        let message = |text: &str| Event::Message {
            peer,
            from: "vm".to_string(),
            text: text.to_string(),
            room: None,
        };
        serve.client = Some(peer);
        assert!(serve.event(&message("hello"), now, &mut out));
        assert!(!serve.event(&message(QUIT), now, &mut out));
        assert_eq!(
            out,
            [
                Action::LogSent { peer, lines: 1 },
                Action::Send("hello".to_string())
            ]
        );
    }

    #[test]
    fn log_is_one_message_of_lines_joined_by_newlines() {
        assert_eq!(log_of(&["a", "b"]).messages(), ["a\nb"]);
    }

    #[test]
    fn empty_log_is_one_empty_message() {
        assert_eq!(log_of(&[]).messages(), [""]);
    }

    #[test]
    fn log_longer_than_a_message_is_cut_between_lines() {
        let line = "x".repeat(MAX / 2 - 1);
        let serve = log_of(&[&line, &line, &line]);
        let messages = serve.messages();
        assert_eq!(messages, [format!("{line}\n{line}"), line.clone()]);
    }

    #[test]
    fn log_keeps_the_newest_lines_within_its_limit() {
        let line = "y".repeat(1000);
        let mut serve = log_of(&["first"]);
        for _ in 0..SERVE_LOG / 1000 + 5 {
            serve.keep(&line);
        }
        assert!(serve.log_len <= SERVE_LOG);
        assert_eq!(serve.log.back(), Some(&line));
        assert!(!serve.log.contains(&"first".to_string()));
    }
}
