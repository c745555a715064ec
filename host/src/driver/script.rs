//! Stdin as a script: each input line carried out in order by the kit's rules
//! ([`meshtalk_core::shell::script`]), which say which line runs, which waits and
//! until when, which line an event answers and what the exit status is.

use meshtalk_core::command::{self, Command, Emote, HELP};
use meshtalk_core::mode::Line;
use meshtalk_core::node::{Config, Input};
use meshtalk_core::offer::Answer;
use meshtalk_core::peers::PeerId;
use meshtalk_core::shell::script::{self as rules, Next, Step};
use meshtalk_core::time::Instant;
use std::collections::VecDeque;
use std::sync::mpsc::Sender;
use std::time::Duration;

use super::{Driver, MAX_PEERS};
use crate::said::Said;
use crate::transcript;

impl Driver {
    /// Runs stdin's lines in order, each done before the next starts; stops at one
    /// that must wait. After the end of input, waits for owed receipts (up to the
    /// dead-after time), then finishes.
    pub(super) fn run_script(&mut self) {
        loop {
            let now = self.now();
            match self.script.rules.next_line() {
                Next::Idle => break,
                Next::End => {
                    if self.mode.end_of_input(now) {
                        self.act();
                    } else {
                        self.script.rules.end();
                    }
                }
                // After `exit`: read, not run.
                Next::Skip(_) => {
                    self.script.lines.pop_front();
                    self.script.credit();
                }
                Next::Run(no) => {
                    let text = self.script.lines.pop_front().unwrap_or_default();
                    let step = self.command(no, &text, now);
                    if !self.script.rules.ran(now, step) {
                        self.script.lines.push_front(text);
                        return;
                    }
                    self.script.credit();
                    if self.quit.is_some() {
                        return;
                    }
                }
            }
        }
        let now = self.now();
        self.script.rules.finish(now, &self.node);
    }

    /// One input line, numbered `no`: done, or waiting for what it needs, which
    /// the node says is not there yet (a link still being set up, a full receipt
    /// window, queues over their high water), until the wait's bound is reached.
    fn command(&mut self, no: u64, line: &str, now: Instant) -> Step {
        match self.mode.line(line, self.grammar, now) {
            Line::Command => {}
            Line::Taken => {
                self.act();
                return Step::Done;
            }
            // Offered again once something changed: no line is dropped.
            Line::NotYet => return Step::Wait,
            Line::Answered(Answer::Help(text)) => {
                self.render.help(text);
                return Step::Done;
            }
            Line::Answered(refusal) => {
                self.error(&refusal.to_string());
                return Step::Done;
            }
        }
        let dial;
        let parsed = match command::parse_in(line, self.grammar) {
            // `connect <name>` of a node discovery found: its address typed for the person.
            Ok(Some(Command::ConnectName { name })) => match self.connect_by_name(name) {
                Ok(line) => {
                    dial = line;
                    command::parse_in(&dial, self.grammar)
                }
                Err(e) => {
                    self.fail(no, &e);
                    return Step::Done;
                }
            },
            parsed => parsed,
        };
        match parsed {
            Ok(None) => {}
            Ok(Some(Command::Nearby)) => self.show_nearby(),
            Err(e) => self.fail(no, &e.to_string()),
            Ok(Some(Command::Exit)) => return Step::Exit,
            Ok(Some(Command::Help { topic })) => {
                self.render.help(command::help_text(topic).unwrap_or(HELP));
            }
            Ok(Some(Command::List)) => {
                let now = self.now();
                let backoff = &self.backoff;
                let redial_in = |peer: PeerId| backoff.redial_in(peer, now).map(Duration::from);
                let reachable = self.node.reachable(now);
                self.render.peers(self.node.peers(), redial_in, reachable);
            }
            Ok(Some(Command::Log { file })) => self.log_to(no, file),
            Ok(Some(Command::Whoami)) => self.whoami(),
            Ok(Some(Command::Verify { target })) => {
                if let Err(e) = self.verify(target) {
                    self.fail(no, &e);
                }
            }
            Ok(Some(Command::Trust { name })) => {
                if let Err(e) = self.trust(name) {
                    self.fail(no, &e);
                }
            }
            Ok(Some(cmd)) => {
                if self
                    .script
                    .rules
                    .holds(now, &cmd, &self.node, self.flow.paused())
                {
                    return Step::Wait;
                }
                if let Command::Connect { host, .. } = cmd {
                    self.known_mut().saw_host(host);
                }
                self.said = self.said_of(&cmd);
                let nick = match cmd {
                    Command::Nick { name } => Some(name.to_string()),
                    _ => None,
                };
                let step = match self.node.handle_input(now, Input::Command(cmd)) {
                    Ok(_) => {
                        if let Some(name) = nick {
                            self.render.help(&format!("you are now known as {name}"));
                        }
                        Step::Done
                    }
                    Err(e) if self.script.rules.waits(now, &e, &self.node) => Step::Wait,
                    Err(e) => {
                        self.fail(no, &e.to_string());
                        Step::Done
                    }
                };
                self.drain();
                self.said = None;
                return step;
            }
        }
        Step::Done
    }

    /// What the person says with `cmd`, kept to show (`you -> bob: ...`) and for the
    /// transcript: a line said at the prompt goes to the peer in a chat, else to the room.
    fn said_of(&self, cmd: &Command<'_>) -> Option<Said> {
        if !(self.interactive || transcript::on()) {
            return None;
        }
        let single = self.node.config().single_peer;
        let text = match *cmd {
            Command::Say { text } => text.to_string(),
            Command::Me { action } => Emote {
                name: &self.node.config().name,
                action,
            }
            .to_string(),
            _ => return Said::of(cmd, single),
        };
        Some(match single {
            true => Said::To(text),
            false => Said::Room(text),
        })
    }

    /// `/log FILE`: keeps the transcript there from now on; `/log`: stops it.
    fn log_to(&mut self, no: u64, file: Option<&str>) {
        match file {
            Some(file) => match transcript::open(std::path::Path::new(file)) {
                Ok(()) => self.render.help(&format!("transcript kept in {file}")),
                Err(e) => self.fail(no, &e.to_string()),
            },
            None => match transcript::close() {
                Some(path) => self
                    .render
                    .help(&format!("transcript in {} stopped", path.display())),
                None => self
                    .render
                    .help("no transcript is kept; /log FILE starts one"),
            },
        }
    }

    /// Input line `no` failed with `message`: shown, and the exit status says so.
    fn fail(&mut self, no: u64, message: &str) {
        self.script.rules.fail();
        self.render.error_at(no, !self.interactive, message);
    }

    /// Shows an error: one that answers the input line being carried out names it.
    pub(super) fn error(&mut self, message: &str) {
        match self.script.rules.current() {
            Some(no) => self.fail(no, message),
            None => self.render.error(message),
        }
    }
}

/// Stdin run as a script: its lines' text waiting their turn, the prompt thread's
/// credits, and the kit's rules, which number the lines and decide.
pub(super) struct Script {
    /// The text of stdin's lines not yet done, in order: the first may wait for a
    /// link being set up or for the receipt window, and the others wait behind it.
    lines: VecDeque<String>,
    /// One credit per line done, to the prompt thread, which reads only so far ahead.
    credits: Sender<()>,
    /// Which line runs or waits, which line an event answers, the end, the status.
    pub(super) rules: rules::Script<MAX_PEERS>,
}

impl Script {
    /// An empty script for a node made with `config`; `credits` lets the prompt
    /// thread read a line further.
    pub(super) fn new(credits: Sender<()>, config: &Config) -> Script {
        Script {
            lines: VecDeque::new(),
            credits,
            rules: rules::Script::new(config),
        }
    }

    /// A line read from stdin.
    pub(super) fn push_line(&mut self, line: String) {
        self.rules.read();
        self.lines.push_back(line);
    }

    /// Stdin ended: what is queued runs, then the end.
    pub(super) fn end_of_input(&mut self) {
        self.rules.read_end();
    }

    /// A line is done: the prompt thread reads one further (it is gone at the end).
    fn credit(&self) {
        let _ = self.credits.send(());
    }
}
