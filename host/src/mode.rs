//! What each subcommand adds to the driver: a [`Mode`] sees every typed line, every
//! event and its own deadline first, and answers with [`Action`]s the driver carries out.
//! Modes do no I/O and read no clock, so their rules are plain code.

use meshtalk_core::command::{self, Command, Grammar, Verb};
use meshtalk_core::node::Event;
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
/// only the two-peer chat's commands are offered.
pub struct Chat;

/// `help` in a chat.
pub const CHAT_HELP: &str = "\
Commands (each also as /word; at the prompt a line that is no command is sent to the peer):
  connect <host> <port>  start a chat with a peer (also: /c, /open)
  send <message>         send a message to the peer (also: /msg, /s)
  disconnect             leave the chat (also: /d, /close)
  help                   this list (also: /h, /?)
  exit                   leave the chat and quit (also: /quit, /q)
  /say <message>         send the text as it is
  /me <action>           say what you do, shown as '* yourname <action>'
  /nick <name>           change the name the peer sees
  /log [<file>]          keep a transcript in <file> from now on; alone, stop";

impl Mode for Chat {
    fn line(&mut self, line: &str, grammar: Grammar, _now: Instant, out: &mut Vec<Action>) -> bool {
        let offered = [
            Verb::Connect,
            Verb::Send,
            Verb::Say,
            Verb::Me,
            Verb::Disconnect,
            Verb::Nick,
            Verb::Log,
            Verb::Help,
            Verb::Exit,
        ];
        restrict(line, grammar, CHAT_HELP, "chat", &offered, out)
    }

    fn chats(&self) -> bool {
        true
    }
}

/// Answers `help` from `list`, and refuses commands not `offered` in this mode (the
/// line read with `grammar`); true when the line was answered here.
pub fn restrict(
    line: &str,
    grammar: Grammar,
    list: &str,
    mode: &str,
    offered: &[Verb],
    out: &mut Vec<Action>,
) -> bool {
    let Ok(Some(cmd)) = command::parse_in(line, grammar) else {
        // Parse errors are the driver's to show.
        return false;
    };
    match cmd {
        Command::Help { topic: None } => out.push(Action::Help(list.to_string())),
        Command::Help { topic: Some(word) } => match Verb::from_word(word) {
            Some(v) if offered.contains(&v) => {
                let name = v.name();
                let one = list
                    .lines()
                    .find(|l| {
                        l.split_whitespace()
                            .next()
                            .is_some_and(|w| w.trim_start_matches('/') == name)
                    })
                    .unwrap_or(list);
                out.push(Action::Help(one.trim().to_string()));
            }
            _ => out.push(Action::Error(not_here(word, mode))),
        },
        other if !offered.contains(&other.verb()) => {
            out.push(Action::Error(not_here(other.verb().name(), mode)));
        }
        _ => return false,
    }
    true
}

fn not_here(word: &str, mode: &str) -> String {
    format!(
        "'{}' is not a {mode} command; type 'help' for the list",
        word.escape_debug()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat_line(line: &str) -> (bool, Vec<Action>) {
        let mut out = Vec::new();
        let taken = Chat.line(line, Grammar::Commands, Instant::from_millis(0), &mut out);
        (taken, out)
    }

    #[test]
    fn chat_help_lists_only_the_chat_commands() {
        let (taken, out) = chat_line("help");
        assert!(taken);
        let [Action::Help(text)] = out.as_slice() else {
            panic!("{out:?}")
        };
        for word in ["connect", "send", "disconnect", "help", "exit"] {
            assert!(text.contains(word), "{word} missing from {text}");
        }
        for word in ["broadcast", "set_alias", "list_connections"] {
            assert!(!text.contains(word), "{word} listed in {text}");
        }
    }

    #[test]
    fn chat_help_on_one_command_shows_its_chat_usage() {
        let (_, out) = chat_line("help s");
        let [Action::Help(text)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert!(text.starts_with("send <message>"), "{text}");
    }

    #[test]
    fn at_the_chat_prompt_plain_text_and_the_prompt_commands_are_left_to_the_driver() {
        for line in [
            "all good here",
            "list of things",
            "/me waves",
            "/nick carl",
            "/say hi",
            "/log chat.log",
        ] {
            let mut out = Vec::new();
            let taken = Chat.line(line, Grammar::Chat, Instant::from_millis(0), &mut out);
            assert!(!taken, "{line}: {out:?}");
            assert!(out.is_empty(), "{line}: {out:?}");
        }
    }

    #[test]
    fn chat_help_on_a_slash_form_shows_its_line() {
        let (_, out) = chat_line("help /me");
        let [Action::Help(text)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert!(text.starts_with("/me <action>"), "{text}");
    }

    #[test]
    fn chat_refuses_mesh_only_commands() {
        for line in ["broadcast hi", "set_alias a b", "list", "help broadcast"] {
            let (taken, out) = chat_line(line);
            assert!(taken, "{line}");
            assert!(
                matches!(out.as_slice(), [Action::Error(_)]),
                "{line}: {out:?}"
            );
        }
    }

    #[test]
    fn chat_leaves_its_own_commands_and_bad_lines_to_the_driver() {
        for line in [
            "connect 127.0.0.1 4000",
            "send hi there",
            "disconnect",
            "exit",
            "frob",
        ] {
            let (taken, out) = chat_line(line);
            assert!(!taken, "{line}");
            assert!(out.is_empty(), "{line}: {out:?}");
        }
    }
}
