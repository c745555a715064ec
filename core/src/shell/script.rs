//! Input run as a script (stdin a pipe): its lines carried out in order, each done
//! before the next needs it. These rules decide which line runs next, whether it
//! must wait and until when, which input line an event answers, when the end of
//! input is done and what the exit status says; the shell keeps the lines' text,
//! reads input and calls the node.
//!
//! Fixed capacity, one slot per peer-table slot: the input line of each message
//! awaiting its receipt (at most the node's window of [`WINDOW`] per peer) and the
//! line of each dial under way. A shell's loop, after every round of input:
//!
//! ```text
//!   loop script.next_line():
//!     Run(no)  -> carry out line no: script.holds(..), the node, script.waits(..);
//!                 script.ran(now, step): true -> drop the line, read one further;
//!                 false -> it waits: stop until something changes
//!     Skip(no) -> a line after `exit`: drop it, read one further
//!     End      -> the end of input (the shell's mode may take it; else script.end())
//!     Idle     -> stop
//!   script.finish(now, node) -> say goodbye, exit with script.status().code()
//! ```

use heapless::Vec;

use crate::command::Command;
use crate::event::Event;
use crate::limits::WINDOW;
use crate::node::{Config, Node, NodeError, Phase};
use crate::peers::{Direction, PeerId};
use crate::time::{Duration, Instant};

/// The exit status bit for a command from the script that failed (a dial included).
pub const EXIT_FAILED: u8 = 1;
/// The exit status bit for a message that went undelivered (5 is both).
pub const EXIT_UNDELIVERED: u8 = 4;

/// What the shell does next with its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Carry out input line `no` (the first not yet done), then tell [`Script::ran`].
    Run(u64),
    /// Input line `no` comes after `exit`: read, not run; it is done.
    Skip(u64),
    /// The input has ended and every line is done: the shell's mode may take the
    /// end of input, else the shell calls [`Script::end`].
    End,
    /// Nothing to do until more input comes.
    Idle,
}

/// What became of one input line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Done (carried out, or failed with its error).
    Done,
    /// It needs what is not there yet: it is tried again when something changes.
    Wait,
    /// `exit`: nothing after it runs.
    Exit,
}

/// How the script went, for the exit status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// A command failed (an error, or a dial's failure).
    pub failed: bool,
    /// A message went undelivered.
    pub undelivered: bool,
}

impl Status {
    /// 0 when every command succeeded and every message was delivered; else
    /// [`EXIT_FAILED`], plus [`EXIT_UNDELIVERED`] for lost messages.
    pub const fn code(self) -> u8 {
        let failed = if self.failed { EXIT_FAILED } else { 0 };
        let lost = if self.undelivered {
            EXIT_UNDELIVERED
        } else {
            0
        };
        failed + lost
    }
}

/// The input lines of one peer's messages awaiting their receipt, by message id.
#[derive(Clone, Debug)]
struct Owed {
    peer: PeerId,
    sent: Vec<(u32, u64), WINDOW>,
}

/// The script's rules and state for a node of up to `P` peers.
#[derive(Clone, Debug)]
pub struct Script<const P: usize> {
    /// The number of the last line read (the first is 1).
    read: u64,
    /// Lines done: the next to run is `done + 1`.
    done: u64,
    /// The input has ended after line `read`.
    input_ended: bool,
    /// [`Next::End`] was given.
    end_given: bool,
    /// The line being carried out: its dials, sends and errors name it.
    current: Option<u64>,
    /// Since when the first line not done has waited (a wait has its bound).
    waiting_since: Option<Instant>,
    /// Input ended (or `exit` came): no more lines run; owed receipts are awaited.
    ending: bool,
    /// Owed receipts are awaited until then; the rest are undelivered.
    end_by: Option<Instant>,
    /// Everything is done: the shell says goodbye and exits.
    finished: bool,
    /// What went wrong, for the exit status.
    status: Status,
    /// By peer slot: the input line of each message awaiting its receipt.
    owed: [Option<Owed>; P],
    /// By peer slot: the input line of the dial under way.
    dials: [Option<(PeerId, u64)>; P],
    /// How long a line may wait for receipts or queues.
    wait_limit: Duration,
    /// How long the end of input waits for owed receipts.
    end_wait: Duration,
}

impl<const P: usize> Script<P> {
    /// An empty script for a node made with `config`: a line waits for receipts or
    /// queues as long as the node takes to give up on a silent peer (`ping_after`
    /// plus `dead_after`), and the end of input waits `dead_after` for receipts.
    pub fn new(config: &Config) -> Self {
        let ping = config.ping_after.unwrap_or(Duration::ZERO);
        Script {
            read: 0,
            done: 0,
            input_ended: false,
            end_given: false,
            current: None,
            waiting_since: None,
            ending: false,
            end_by: None,
            finished: false,
            status: Status::default(),
            owed: core::array::from_fn(|_| None),
            dials: [None; P],
            wait_limit: ping + config.dead_after,
            end_wait: config.dead_after,
        }
    }

    /// A line was read from input: its number (the first is 1).
    pub fn read(&mut self) -> u64 {
        self.read += 1;
        self.read
    }

    /// The input ended: the lines read run, then the end.
    pub fn read_end(&mut self) {
        self.input_ended = true;
    }

    /// What to do next; [`Next::Run`] makes that line the current one until
    /// [`Script::ran`].
    pub fn next_line(&mut self) -> Next {
        if self.done < self.read {
            let no = self.done + 1;
            if self.ending {
                self.done = no;
                return Next::Skip(no);
            }
            self.current = Some(no);
            return Next::Run(no);
        }
        if self.input_ended && !self.end_given {
            self.end_given = true;
            return Next::End;
        }
        Next::Idle
    }

    /// The current line came to `step` at `now`: true when it is done (the shell
    /// drops it and reads one further), false when it waits (or none was running).
    pub fn ran(&mut self, now: Instant, step: Step) -> bool {
        let Some(no) = self.current.take() else {
            return false;
        };
        if step == Step::Wait {
            self.waiting_since.get_or_insert(now);
            return false;
        }
        self.ending |= step == Step::Exit;
        self.waiting_since = None;
        self.done = no;
        true
    }

    /// The end of input is the script's (no mode took it): no more lines run, and
    /// the receipts owed are awaited.
    pub fn end(&mut self) {
        self.ending = true;
    }

    /// The input line being carried out, if any: what it brings about answers it.
    pub fn current(&self) -> Option<u64> {
        self.current
    }

    /// Whether the line waiting since [`Script::ran`] said so has waited its bound.
    fn expired(&self, now: Instant) -> bool {
        self.waiting_since
            .is_some_and(|since| now.saturating_since(since) >= self.wait_limit)
    }

    /// Whether `cmd` must wait before the node gets it: a message while queues are
    /// over their high water (`paused`), or a `disconnect` while receipts are owed,
    /// until the wait's bound; a room message while a link is being dialled (the
    /// room includes it), until the dial is done.
    pub fn holds<const N: usize, const F: usize, const A: usize, const R: usize>(
        &self,
        now: Instant,
        cmd: &Command<'_>,
        node: &Node<N, F, A, R>,
        paused: bool,
    ) -> bool {
        let says = matches!(cmd, Command::Say { .. } | Command::Me { .. });
        let sends = says || matches!(cmd, Command::Send { .. } | Command::Broadcast { .. });
        let room = matches!(cmd, Command::Broadcast { .. }) || (says && !node.config().single_peer);
        // Leaving a peer gives up on its receipts: those owed come first.
        let leaves = matches!(cmd, Command::Disconnect { .. });
        let bounded = ((sends && paused) || (leaves && owes(node))) && !self.expired(now);
        bounded || (room && dialing(node))
    }

    /// Whether a command the node refused with `e` may succeed once a link is set
    /// up or receipts come: the peer is still connecting, or the peer named is not
    /// there (yet) while a dial is under way (the dial's outcome decides), or its
    /// receipt window is full (until the wait's bound). Else the line failed.
    pub fn waits<const N: usize, const F: usize, const A: usize, const R: usize>(
        &self,
        now: Instant,
        e: &NodeError<'_>,
        node: &Node<N, F, A, R>,
    ) -> bool {
        match e {
            NodeError::NotReady(_) => true,
            NodeError::WindowFull(_) => !self.expired(now),
            NodeError::Lookup(_) | NodeError::NoPeers | NodeError::WhichPeer { .. } => {
                dialing(node)
            }
            _ => false,
        }
    }

    /// A command of the script failed (shown with its line): the exit status says so.
    pub fn fail(&mut self) {
        self.status.failed = true;
    }

    /// The node dials `peer`: the current line, if any, is the one its outcome answers.
    pub fn dialled(&mut self, peer: PeerId) {
        if let (Some(line), Some(slot)) = (self.current, self.dials.get_mut(peer.slot())) {
            *slot = Some((peer, line));
        }
    }

    /// The input line `event` answers, if any: a dial's outcome answers the line
    /// that dialled, a receipt (or its loss) the line that sent the message, and
    /// anything else the line being carried out. Notes failed dials of the script
    /// and lost messages for the exit status.
    pub fn answers<S>(&mut self, event: &Event<S>) -> Option<u64> {
        match *event {
            Event::Sent {
                peer,
                id,
                receipt: true,
            } => {
                let line = self.current?;
                self.owe(peer, id, line);
                Some(line)
            }
            Event::Delivered { peer, id } => self.settle(peer, id),
            Event::Undelivered { peer, id } => {
                self.status.undelivered = true;
                self.settle(peer, id)
            }
            Event::ConnectFailed { peer, .. } => {
                let line = self.dial_line(peer);
                self.status.failed |= line.is_some();
                line
            }
            Event::Connected { peer, .. } | Event::Disconnected { peer, .. } => {
                self.dial_line(peer).or(self.current)
            }
            _ => self.current,
        }
    }

    /// Notes that message `id` to `peer`, sent by input line `line`, awaits its
    /// receipt. A slot that held another peer's (gone) is cleared first; a full one
    /// (never, with the node's window) forgets its oldest.
    fn owe(&mut self, peer: PeerId, id: u32, line: u64) {
        let Some(slot) = self.owed.get_mut(peer.slot()) else {
            return;
        };
        let owed = match slot {
            Some(owed) if owed.peer == peer => owed,
            _ => slot.insert(Owed {
                peer,
                sent: Vec::new(),
            }),
        };
        if owed.sent.is_full() {
            owed.sent.remove(0);
        }
        let _ = owed.sent.push((id, line));
    }

    /// The input line of message `id` to `peer`, no longer awaited.
    fn settle(&mut self, peer: PeerId, id: u32) -> Option<u64> {
        let owed = self.owed.get_mut(peer.slot())?.as_mut()?;
        if owed.peer != peer {
            return None;
        }
        let at = owed.sent.iter().position(|&(sent, _)| sent == id)?;
        Some(owed.sent.remove(at).1)
    }

    /// The input line of `peer`'s dial, which is over.
    fn dial_line(&mut self, peer: PeerId) -> Option<u64> {
        let slot = self.dials.get_mut(peer.slot())?;
        let (_, line) = slot.take_if(|(dialled, _)| *dialled == peer)?;
        Some(line)
    }

    /// Whether everything is done, at `now`: after the end of input (or `exit`),
    /// once no receipt is owed or the end's wait for them (from the first call
    /// after the end) is over. Stays true.
    pub fn finish<const N: usize, const F: usize, const A: usize, const R: usize>(
        &mut self,
        now: Instant,
        node: &Node<N, F, A, R>,
    ) -> bool {
        if self.ending && !self.finished {
            let by = *self.end_by.get_or_insert(now + self.end_wait);
            self.finished = !owes(node) || by <= now;
        }
        self.finished
    }

    /// Whether [`Script::finish`] said everything is done.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// When the shell must wake for the script: the bound of the waiting line, or
    /// the end of the wait for receipts.
    pub fn next_at(&self) -> Option<Instant> {
        let waited = self.waiting_since.map(|since| since + self.wait_limit);
        waited.into_iter().chain(self.end_by).min()
    }

    /// How the script went so far.
    pub fn status(&self) -> Status {
        self.status
    }
}

/// Whether a link the node dialled is still being set up.
fn dialing<const N: usize, const F: usize, const A: usize, const R: usize>(
    node: &Node<N, F, A, R>,
) -> bool {
    node.peers().any(|p| {
        p.direction == Direction::Outbound
            && matches!(p.phase, Phase::Dialing | Phase::Greeting | Phase::Hello)
    })
}

/// Whether any peer owes the node a receipt.
fn owes<const N: usize, const F: usize, const A: usize, const R: usize>(
    node: &Node<N, F, A, R>,
) -> bool {
    node.peers().any(|p| p.unacked > 0)
}
