//! `meshtalk send`: the one-way client. Each line of stdin is a message to the server;
//! `quit` (or end of input) asks for the log, which is printed before exiting.
//!
//! Native by default: [`Client`], a mode of the driver's node, pure like every
//! mode; `--text` ([`crate::send_text`]) speaks the older servers' raw text with no node.

use std::collections::VecDeque;

use meshtalk_core::command::Grammar;
use meshtalk_core::limits::SEND_LOG_WAIT;
use meshtalk_core::node::{Event, WINDOW};
use meshtalk_core::time::Instant;

use crate::mode::{Action, Mode};
use crate::serve::QUIT;

/// The native client: dials, sends the queued lines one at a time (at most
/// [`WINDOW`] awaiting their receipt), then `quit`, then collects the log.
pub struct Client {
    host: String,
    port: u16,
    queue: VecDeque<String>,
    /// `quit` is queued: later lines are ignored.
    ending: bool,
    connected: bool,
    /// A send is under way and its `sent` has not come; true when it is `quit`.
    sending: Option<bool>,
    /// Messages sent and awaiting their receipt.
    unconfirmed: usize,
    /// `quit` went out: the log is awaited until then.
    log_deadline: Option<Instant>,
    /// The log's lines, once any of it came.
    log: Option<Vec<String>>,
}

impl Client {
    pub fn new(host: String, port: u16) -> Self {
        Client {
            host,
            port,
            queue: VecDeque::new(),
            ending: false,
            connected: false,
            sending: None,
            unconfirmed: 0,
            log_deadline: None,
            log: None,
        }
    }

    /// Sends the next queued line when the connection, the previous send and the
    /// receipt window allow.
    fn pump(&mut self, out: &mut Vec<Action>) {
        if !self.connected || self.sending.is_some() || self.unconfirmed >= WINDOW {
            return;
        }
        if let Some(text) = self.queue.pop_front() {
            self.sending = Some(self.ending && self.queue.is_empty());
            out.push(Action::Send(text));
        }
    }

    fn ask_for_log(&mut self, out: &mut Vec<Action>) {
        if !self.ending {
            self.ending = true;
            self.queue.push_back(QUIT.to_string());
            self.pump(out);
        }
    }

    /// The end: the log if any came, else an error.
    fn finish(&mut self, why: &str, out: &mut Vec<Action>) {
        self.log_deadline = None;
        match self.log.take() {
            Some(lines) => {
                out.push(Action::Log(lines));
                out.push(Action::Quit(0));
            }
            None => {
                out.push(Action::Error(why.to_string()));
                out.push(Action::Quit(1));
            }
        }
    }
}

impl Mode for Client {
    fn start(&mut self, _now: Instant, out: &mut Vec<Action>) {
        out.push(Action::Connect {
            host: self.host.clone(),
            port: self.port,
        });
    }

    /// Every line is a message (an empty one sends nothing); `quit` asks for the log.
    fn line(
        &mut self,
        line: &str,
        _grammar: Grammar,
        _now: Instant,
        out: &mut Vec<Action>,
    ) -> bool {
        if line == QUIT {
            self.ask_for_log(out);
        } else if !self.ending && !line.is_empty() {
            self.queue.push_back(line.to_string());
            self.pump(out);
        }
        true
    }

    fn end_of_input(&mut self, _now: Instant, out: &mut Vec<Action>) -> bool {
        self.ask_for_log(out);
        true
    }

    fn event(&mut self, event: &Event<String>, now: Instant, out: &mut Vec<Action>) -> bool {
        match event {
            Event::Connected { .. } => {
                self.connected = true;
                self.pump(out);
            }
            Event::ConnectFailed { .. } => out.push(Action::Quit(1)),
            Event::Sent { receipt, .. } => {
                if *receipt {
                    self.unconfirmed += 1;
                }
                if self.sending.take() == Some(true) {
                    self.log_deadline = Some(now + SEND_LOG_WAIT);
                }
                self.pump(out);
            }
            Event::Delivered { .. } | Event::Undelivered { .. } => {
                self.unconfirmed = self.unconfirmed.saturating_sub(1);
                self.pump(out);
            }
            Event::Message { text, .. } if self.log_deadline.is_some() => {
                let lines = self.log.get_or_insert_with(Vec::new);
                if !text.is_empty() {
                    lines.extend(text.split('\n').map(String::from));
                }
                return false;
            }
            Event::Disconnected { .. } => {
                self.connected = false;
                let why = match self.log_deadline {
                    Some(_) => "the server closed the connection without sending the log",
                    None => "the server closed the connection before the log was asked for",
                };
                self.finish(why, out);
            }
            _ => {}
        }
        true
    }

    fn refused(&mut self, _now: Instant, out: &mut Vec<Action>) {
        if !self.connected {
            // The dial itself was refused (its error is shown).
            out.push(Action::Quit(1));
        } else if self.sending.take() == Some(true) {
            self.finish("could not ask the server for the log", out);
        } else {
            self.pump(out);
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.log_deadline
    }

    fn timeout(&mut self, _now: Instant, out: &mut Vec<Action>) {
        let why = format!("no log from the server within {SEND_LOG_WAIT}");
        self.finish(&why, out);
    }
}
