//! The subcommands' rules on top of the node: what the one-way server
//! ([`serve::Serve`]), the one-way client ([`client::Client`]), the two-peer chat
//! ([`Chat`]) and the mesh ([`Mesh`]) add to it. A mode sees every line the person
//! types, every event of the node and its own deadline first, and asks for what it
//! wants done as [`Action`]s the shell polls and carries out. Pure like the node:
//! no I/O, no clock (`now` comes in), no allocation, no panic on any input, so a
//! firmware's console runs the same rules as the host.
//!
//! The run loop of a shell, with a mode's calls:
//!
//! ```text
//!   mode.start(now)                                once, before anything else
//!   a typed line -> mode.line(line, grammar, now)
//!                     Command   -> the shell reads it as a command
//!                     Taken     -> poll its actions
//!                     NotYet    -> offer the line again after the next event
//!                     Answered  -> show the help or the refusal
//!   end of input -> mode.end_of_input(now): true, it goes on; false, goodbye
//!   every event  -> mode.event(&event, now): false, it is not shown as usual
//!   the deadline -> mode.timeout(now) once mode.deadline() is due
//!   after each hook: while let Some(action) = mode.poll_action() { carry it out }
//! ```
//!
//! An action borrows its text from the mode: the shell copies what it needs out of
//! it before carrying it out. Carrying out a [`Action::Send`] drains the node, whose
//! events go back into [`Hears::event`] before the next poll: the modes stay
//! consistent when they do (a log being sent back is not touched by them).

use crate::command::Grammar;
use crate::event::Event;
use crate::offer::{self, Answer, Offer};
use crate::peers::PeerId;
use crate::time::Instant;

pub mod client;
mod error;
pub mod serve;

pub use error::ClientError;
pub use serve::QUIT;

/// Something a mode wants the shell to do; texts are the mode's own, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// Dial a peer (`connect <host> <port>`).
    Connect {
        /// The host name or address to dial.
        host: &'a str,
        /// Its port.
        port: u16,
    },
    /// Send this text, as one message, to the one peer there is.
    Send(&'a str),
    /// Close the connection to the one peer there is.
    Disconnect,
    /// Show this error; the program goes on.
    Error(ClientError),
    /// Show that the log went back to the client.
    LogSent {
        /// The client.
        peer: PeerId,
        /// How many lines the log held.
        lines: usize,
    },
    /// Show the log that came back from the server.
    Log(Log<'a>),
    /// Say goodbye to peers and end the program with this exit code.
    Quit(u8),
}

/// The log a server sent back: its lines joined by `\n` (empty: no line at all).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Log<'a>(pub &'a str);

impl<'a> Log<'a> {
    /// The log's lines, in order; none for an empty log.
    pub fn lines(self) -> impl Iterator<Item = &'a str> {
        let text = self.0;
        text.split('\n').filter(move |_| !text.is_empty())
    }
}

/// What a mode made of a line the person typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line<'l> {
    /// Not the mode's: the shell reads it as a command.
    Command,
    /// The mode took it: poll its actions.
    Taken,
    /// The mode cannot take it yet (its queue is full): the shell offers the same
    /// line again once an event came, and reads no further meanwhile.
    NotYet,
    /// The mode answers it itself: its help, or a command it does not offer.
    Answered(Answer<'l>),
}

/// A subcommand's rules on top of the node, but for its events ([`Hears`]). Every
/// hook has a default that keeps the mesh's behaviour; what a hook asks for is
/// polled with [`Mode::poll_action`] once it returns.
pub trait Mode {
    /// Once, before anything else.
    fn start(&mut self, _now: Instant) {}

    /// A line from the person, read with `grammar`.
    fn line<'l>(&mut self, _line: &'l str, _grammar: Grammar, _now: Instant) -> Line<'l> {
        Line::Command
    }

    /// True when a person at a terminal chats: a line that is no command is a message
    /// ([`Grammar::Chat`]); else every line is a command, as in a script.
    fn chats(&self) -> bool {
        false
    }

    /// The input ended; true when the mode goes on (else the program says goodbye and exits).
    fn end_of_input(&mut self, _now: Instant) -> bool {
        false
    }

    /// A [`Action::Send`] or [`Action::Connect`] of this mode was refused (the shell
    /// shows the error).
    fn refused(&mut self, _now: Instant) {}

    /// When [`Mode::timeout`] is due, if ever.
    fn deadline(&self) -> Option<Instant> {
        None
    }

    /// The deadline has come.
    fn timeout(&mut self, _now: Instant) {}

    /// The next thing to do, in the order asked for; `None` when there is nothing.
    fn poll_action(&mut self) -> Option<Action<'_>> {
        None
    }
}

/// A mode that hears the node's events with text of type `S` (`String` in a
/// std shell, `&str` on a firmware).
pub trait Hears<S>: Mode {
    /// An event from the node; true when it is to be shown as usual.
    fn event(&mut self, _event: &Event<S>, _now: Instant) -> bool {
        true
    }
}

/// `meshtalk mesh`: the node as it is.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mesh;

impl Mode for Mesh {
    fn chats(&self) -> bool {
        true
    }
}

impl<S> Hears<S> for Mesh {}

/// `meshtalk chat`: one peer at a time (the node's `single_peer` does the rules);
/// only the two-peer chat's commands are offered ([`offer::CHAT`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Chat;

impl Mode for Chat {
    fn line<'l>(&mut self, line: &'l str, grammar: Grammar, _now: Instant) -> Line<'l> {
        restrict(line, grammar, &offer::CHAT)
    }

    fn chats(&self) -> bool {
        true
    }
}

impl<S> Hears<S> for Chat {}

/// Answers `help` from the mode's `offer`, and refuses the commands it does not
/// offer (the line read with `grammar`); [`Line::Command`] for every other line.
pub fn restrict<'l>(line: &'l str, grammar: Grammar, offer: &Offer) -> Line<'l> {
    match offer.answer(line, grammar) {
        Some(answer) => Line::Answered(answer),
        None => Line::Command,
    }
}

/// The actions a mode has asked for and not yet handed out, by kind (their texts
/// are read from the mode when polled): a small fixed queue.
#[derive(Clone, Debug)]
struct Queue<K, const N: usize> {
    kinds: heapless::Deque<K, N>,
}

impl<K: Copy, const N: usize> Queue<K, N> {
    const fn new() -> Self {
        Queue {
            kinds: heapless::Deque::new(),
        }
    }

    /// Asks for `kind` after those asked for already. A mode asks for a handful
    /// between two polls, so the queue is never full; if it were, the first asked
    /// for would be kept.
    fn push(&mut self, kind: K) {
        let _ = self.kinds.push_back(kind);
    }

    fn front(&self) -> Option<K> {
        self.kinds.front().copied()
    }

    fn pop(&mut self) -> Option<K> {
        self.kinds.pop_front()
    }
}
