//! What each subcommand adds to the driver: a [`Mode`] sees every typed line, every
//! event and its own deadline first, and answers with [`Action`]s the driver carries out.
//! Modes do no I/O and read no clock, so their rules are plain code.

use meshtalk_core::command::Grammar;
use meshtalk_core::node::Event;
use meshtalk_core::offer::{self, Answer, Offer};
use meshtalk_core::peers::PeerId;
use meshtalk_core::time::Instant;

/// Something a mode wants the driver to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Dial a peer (`connect <host> <port>`).
    Connect { host: String, port: u16 },
    /// Send this text, as one message, to the one peer there is.
    Send(String),
    /// Close the connection to the one peer there is.
    Disconnect,
    /// Show this help text.
    Help(String),
    /// Show this error; the program goes on.
    Error(String),
    /// Show that the log went back to the client.
    LogSent { peer: PeerId, lines: usize },
    /// Show the log that came back from the server.
    Log(Vec<String>),
    /// Say goodbye to peers and end the program with this exit code.
    Quit(i32),
}

/// A subcommand's rules on top of the node. Every hook has a default that keeps the
/// mesh's behaviour; `out` collects the actions, carried out in order after the hook.
pub trait Mode: Send {
    /// Once, before anything else.
    fn start(&mut self, _now: Instant, _out: &mut Vec<Action>) {}

    /// A line from the person, read with `grammar`; true when the mode took it (else it
    /// is a command).
    fn line(
        &mut self,
        _line: &str,
        _grammar: Grammar,
        _now: Instant,
        _out: &mut Vec<Action>,
    ) -> bool {
        false
    }

    /// True when a person at a terminal chats: a line that is no command is a message
    /// ([`Grammar::Chat`]); else every line is a command, as in a script.
    fn chats(&self) -> bool {
        false
    }

    /// Stdin ended; true when the mode goes on (else the program says goodbye and exits).
    fn end_of_input(&mut self, _now: Instant, _out: &mut Vec<Action>) -> bool {
        false
    }

    /// An event from the node; true when it is to be shown as usual.
    fn event(&mut self, _event: &Event<String>, _now: Instant, _out: &mut Vec<Action>) -> bool {
        true
    }

    /// A [`Action::Send`] or [`Action::Connect`] of this mode was refused (the error is shown).
    fn refused(&mut self, _now: Instant, _out: &mut Vec<Action>) {}

    /// When [`Mode::timeout`] is due, if ever.
    fn deadline(&self) -> Option<Instant> {
        None
    }

    /// The deadline has come.
    fn timeout(&mut self, _now: Instant, _out: &mut Vec<Action>) {}
}

/// `meshtalk mesh`: the node as it is.
pub struct Mesh;

impl Mode for Mesh {
    fn chats(&self) -> bool {
        true
    }
}

/// `meshtalk chat`: one peer at a time (the node's `single_peer` does the rules);
/// only the two-peer chat's commands are offered ([`offer::CHAT`]).
pub struct Chat;

impl Mode for Chat {
    fn line(&mut self, line: &str, grammar: Grammar, _now: Instant, out: &mut Vec<Action>) -> bool {
        restrict(line, grammar, &offer::CHAT, out)
    }

    fn chats(&self) -> bool {
        true
    }
}

/// Answers `help` from the mode's `offer`, and refuses the commands it does not offer
/// (the line read with `grammar`); true when the line was answered here.
pub fn restrict(line: &str, grammar: Grammar, offer: &Offer, out: &mut Vec<Action>) -> bool {
    match offer.answer(line, grammar) {
        Some(Answer::Help(text)) => out.push(Action::Help(text.to_string())),
        Some(refusal) => out.push(Action::Error(refusal.to_string())),
        None => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat_line(line: &str, grammar: Grammar) -> (bool, Vec<Action>) {
        let mut out = Vec::new();
        let taken = Chat.line(line, grammar, Instant::from_millis(0), &mut out);
        (taken, out)
    }

    #[test]
    fn the_chat_answers_help_and_refusals_itself_and_leaves_the_rest_to_the_driver() {
        let (taken, out) = chat_line("help s", Grammar::Commands);
        assert!(taken);
        assert!(
            matches!(out.as_slice(), [Action::Help(text)] if text.starts_with("send <message>")),
            "{out:?}"
        );
        let (taken, out) = chat_line("broadcast hi", Grammar::Commands);
        assert!(taken);
        assert!(matches!(out.as_slice(), [Action::Error(_)]), "{out:?}");
        for line in ["send hi there", "all good here", "frob"] {
            let (taken, out) = chat_line(line, Grammar::Chat);
            assert!(!taken && out.is_empty(), "{line}: {out:?}");
        }
    }
}
