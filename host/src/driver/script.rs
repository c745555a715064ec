//! Stdin as a script: each input line carried out in order, the one that must wait
//! (for a link, receipts, queues) held with its bound, end of input, and the exit code.

use meshtalk_core::command::{self, Command, Emote, HELP};
use meshtalk_core::node::{Event, Input, NodeError, Phase};
use meshtalk_core::peers::{Direction, PeerId};
use meshtalk_core::time::{self, Instant};
use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::Sender;
use std::time::Duration;

use super::{Driver, EXIT_FAILED, EXIT_UNDELIVERED};
use crate::said::Said;
use crate::transcript;

impl Driver {
    /// Runs stdin's lines in order, each done before the next starts; stops at one
    /// that must wait. After the end of input, waits for owed receipts (up to the
    /// dead-after time), then finishes.
    pub(super) fn run_script(&mut self) {
        while let Some(item) = self.script.items.pop_front() {
            let (no, text) = match item {
                Item::End => {
                    let now = self.now();
                    if self.mode.end_of_input(now, &mut self.actions) {
                        self.act();
                    } else {
                        self.script.ending = true;
                    }
                    continue;
                }
                Item::Line(no, text) => (no, text),
            };
            let step = match self.script.ending {
                // After `exit`: read, not run.
                true => Step::Done,
                false => self.line(no, &text),
            };
            match step {
                Step::Wait => {
                    let now = self.now();
                    self.script.waiting_since.get_or_insert(now);
                    self.script.items.push_front(Item::Line(no, text));
                    return;
                }
                Step::Done => {}
                Step::Exit => self.script.ending = true,
            }
            self.script.waiting_since = None;
            // The prompt thread reads one line further (it is gone at the end).
            let _ = self.script.credits.send(());
            if self.quit.is_some() {
                return;
            }
        }
        if self.script.ending && !self.finished {
            let owed = self.node.peers().any(|p| p.unacked > 0);
            let now = self.now();
            let by = *self
                .script
                .end_by
                .get_or_insert_with(|| now + self.node.config().dead_after);
            self.finished = !owed || by <= now;
        }
    }

    /// How long one input line may wait for receipts or for queues to drain: as long
    /// as the node takes to give up on a silent peer; then it fails with its error.
    pub(super) fn wait_limit(&self) -> time::Duration {
        let config = self.node.config();
        let ping = config.ping_after.unwrap_or(time::Duration::ZERO);
        ping + config.dead_after
    }

    /// One input line, numbered `no`: done, or waiting for what it needs, which
    /// the node says is not there yet (a link still being set up, a full receipt
    /// window, queues over their high water), until the wait's bound is reached.
    fn line(&mut self, no: u64, line: &str) -> Step {
        let now = self.now();
        self.current_line = Some(no);
        let step = self.command(no, line, now);
        self.current_line = None;
        step
    }

    fn command(&mut self, no: u64, line: &str, now: Instant) -> Step {
        if self.mode.line(line, self.grammar, now, &mut self.actions) {
            self.act();
            return Step::Done;
        }
        let expired = self
            .script
            .waiting_since
            .is_some_and(|since| now.saturating_since(since) >= self.wait_limit());
        match command::parse_in(line, self.grammar) {
            Ok(None) => {}
            Err(e) => self.fail(no, &e.to_string()),
            Ok(Some(Command::Exit)) => return Step::Exit,
            Ok(Some(Command::Help { topic })) => {
                self.render.help(command::help_text(topic).unwrap_or(HELP));
            }
            Ok(Some(Command::List)) => {
                let now = self.now();
                let backoff = &self.backoff;
                let redial_in = |peer: PeerId| backoff.redial_in(peer, now).map(Duration::from);
                self.render.peers(self.node.peers(), redial_in);
            }
            Ok(Some(Command::Log { file })) => self.log_to(no, file),
            Ok(Some(cmd)) => {
                let single = self.node.config().single_peer;
                let says = matches!(cmd, Command::Say { .. } | Command::Me { .. });
                let sends = says || matches!(cmd, Command::Send { .. } | Command::Broadcast { .. });
                // A room message goes to every link: those being dialled too.
                let room = (matches!(cmd, Command::Broadcast { .. }) || (says && !single))
                    && self.dialing();
                // Leaving a peer gives up on its receipts: those owed come first.
                let owed = matches!(cmd, Command::Disconnect { .. })
                    && self.node.peers().any(|p| p.unacked > 0);
                if (((sends && self.flow.paused()) || owed) && !expired) || room {
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
                    Err(e) if self.waits(&e, expired) => Step::Wait,
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

    /// Whether a command refused with `e` may succeed once a link is set up or
    /// receipts come: the node says the peer is still connecting, or the peer named
    /// is not there (yet) while a dial is under way (the dial's outcome decides),
    /// or its receipt window is full (until the wait has `expired`).
    fn waits(&self, e: &NodeError<'_>, expired: bool) -> bool {
        match e {
            NodeError::NotReady(_) => true,
            NodeError::WindowFull(_) => !expired,
            NodeError::Lookup(_) | NodeError::NoPeers | NodeError::WhichPeer { .. } => {
                self.dialing()
            }
            _ => false,
        }
    }

    /// Whether a link we dialled is still being set up (the node's phase for it).
    fn dialing(&self) -> bool {
        self.node.peers().any(|p| {
            p.direction == Direction::Outbound
                && matches!(p.phase, Phase::Dialing | Phase::Greeting | Phase::Hello)
        })
    }

    /// Input line `no` failed with `message`: shown, and the exit status says so.
    fn fail(&mut self, no: u64, message: &str) {
        self.script.failed = true;
        self.render.error_at(no, !self.interactive, message);
    }

    /// Shows an error: one that answers the input line being carried out names it.
    pub(super) fn error(&mut self, message: &str) {
        match self.current_line {
            Some(no) => self.fail(no, message),
            None => self.render.error(message),
        }
    }

    /// The input line an event answers, if any; notes failed dials and lost messages.
    pub(super) fn line_of(&mut self, event: &Event<String>) -> Option<u64> {
        match *event {
            Event::Sent {
                peer,
                id,
                receipt: true,
            } => {
                let line = self.current_line?;
                self.script.sent_line.insert((peer, id), line);
                Some(line)
            }
            Event::Delivered { peer, id } => self.script.sent_line.remove(&(peer, id)),
            Event::Undelivered { peer, id } => {
                self.script.undelivered = true;
                self.script.sent_line.remove(&(peer, id))
            }
            Event::ConnectFailed { peer, .. } => {
                let line = self.dial_line.remove(&peer);
                self.script.failed |= line.is_some();
                line
            }
            Event::Connected { peer, .. } | Event::Disconnected { peer, .. } => {
                self.dial_line.remove(&peer).or(self.current_line)
            }
            // What carrying out a line brings about answers that line.
            _ => self.current_line,
        }
    }
}

/// Stdin run as a script: its lines waiting their turn, the first one's wait, the end
/// of input, and what went wrong, for the exit code.
pub(super) struct Script {
    /// Stdin's lines (and its end) not yet done, in order: the first may wait for
    /// a link being set up or for the receipt window, and the others wait behind it.
    items: VecDeque<Item>,
    /// The number of the last line read from stdin.
    lines_read: u64,
    /// One credit per line done, to the prompt thread, which reads only so far ahead.
    credits: Sender<()>,
    /// Since when the first line has waited (a wait has its bound).
    waiting_since: Option<Instant>,
    /// Input ended (or `exit` came): no more lines run; owed receipts are awaited.
    ending: bool,
    /// Owed receipts are awaited until then; the rest are undelivered.
    end_by: Option<Instant>,
    /// The input line of each sent message whose receipt is owed.
    sent_line: HashMap<(PeerId, u32), u64>,
    /// A command from stdin failed: the exit status says so.
    failed: bool,
    /// A message went undelivered: the exit status says so.
    undelivered: bool,
}

impl Script {
    /// An empty script; `credits` lets the prompt thread read a line further.
    pub(super) fn new(credits: Sender<()>) -> Script {
        Script {
            items: VecDeque::new(),
            lines_read: 0,
            credits,
            waiting_since: None,
            ending: false,
            end_by: None,
            sent_line: HashMap::new(),
            failed: false,
            undelivered: false,
        }
    }

    /// A line read from stdin, numbered in order (the first is 1).
    pub(super) fn push_line(&mut self, line: String) {
        self.lines_read += 1;
        self.items.push_back(Item::Line(self.lines_read, line));
    }

    /// Stdin ended: what is queued runs, then the end.
    pub(super) fn end_of_input(&mut self) {
        self.items.push_back(Item::End);
    }

    /// When the driver must wake for the script: the bound of the waiting line
    /// (`wait_limit` after it began to wait), or the end of the wait for receipts.
    pub(super) fn next_at(&self, wait_limit: time::Duration) -> Option<Instant> {
        let waited = self.waiting_since.map(|since| since + wait_limit);
        waited.into_iter().chain(self.end_by).min()
    }

    /// 0 when every command from stdin succeeded and every message was delivered;
    /// else [`EXIT_FAILED`], plus [`EXIT_UNDELIVERED`] for lost messages.
    pub(super) fn status(&self) -> i32 {
        let failed = if self.failed { EXIT_FAILED } else { 0 };
        let lost = if self.undelivered {
            EXIT_UNDELIVERED
        } else {
            0
        };
        failed + lost
    }
}

/// What stdin gave the driver, waiting its turn.
enum Item {
    /// A line, with its number (the first is 1).
    Line(u64, String),
    /// The end of input.
    End,
}

/// What became of one input line.
enum Step {
    /// Done (carried out, or failed with its error).
    Done,
    /// It needs what is not there yet: it is tried again when something changes.
    Wait,
    /// `exit`: nothing after it runs.
    Exit,
}
