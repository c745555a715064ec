//! The commands a mode offers: the two-peer chat and the one-way server speak a
//! subset of the command language, with a `help` of their own, and refuse the rest
//! by name. Pure, like the parser it reads lines with, so a UART console running
//! one of those modes answers the same.

use core::fmt;

use crate::command::{self, Command, Grammar, Verb};

/// A mode's share of the command language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offer {
    /// The mode's name, as a refusal says it (`'broadcast' is not a chat command`).
    pub mode: &'static str,
    /// What `help` shows: one line per command, each beginning with its word.
    pub help: &'static str,
    /// The commands the mode carries out; every other is refused.
    pub verbs: &'static [Verb],
}

/// `meshtalk chat`: the two-peer chat's commands.
pub const CHAT: Offer = Offer {
    mode: "chat",
    help: "\
Commands (each also as /word; at the prompt a line that is no command is sent to the peer):
  connect <host> <port>  start a chat with a peer (also: /c, /open)
  send <message>         send a message to the peer (also: /msg, /s)
  disconnect             leave the chat (also: /d, /close)
  help                   this list (also: /h, /?)
  exit                   leave the chat and quit (also: /quit, /q)
  /say <message>         send the text as it is
  /me <action>           say what you do, shown as '* yourname <action>'
  /nick <name>           change the name the peer sees
  /log [<file>]          keep a transcript in <file> from now on; alone, stop
  /nearby                list the nodes LAN discovery heard (with --discover)
  /whoami                show this node's key fingerprint
  /verify                show the peer's key fingerprint, to compare with its owner
  /trust <alias>         accept the new key a known name was refused with",
    verbs: &[
        Verb::Connect,
        Verb::Send,
        Verb::Say,
        Verb::Me,
        Verb::Disconnect,
        Verb::Nick,
        Verb::Log,
        Verb::Nearby,
        Verb::Whoami,
        Verb::Verify,
        Verb::Trust,
        Verb::Help,
        Verb::Exit,
    ],
};

/// `meshtalk serve`: the one-way server's commands (its client's messages are logged).
pub const SERVE: Offer = Offer {
    mode: "serve",
    help: "\
Commands (the client's messages are logged; its message 'quit' gets the log back):
  disconnect             close the client's connection (also: d, close)
  /nearby                list the nodes LAN discovery heard (with --discover)
  help                   this list (also: h, ?)
  exit                   stop serving and quit (also: quit, q)",
    verbs: &[Verb::Disconnect, Verb::Nearby, Verb::Help, Verb::Exit],
};

/// What a mode answers itself to a line (the node carries out every other line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer<'a> {
    /// `help`, or `help <command>` for a command offered: the text to show.
    Help(&'static str),
    /// A command the mode does not offer (or `help` on one): `word` as typed.
    NotHere {
        /// The command word as the person typed it.
        word: &'a str,
        /// The mode's name, for the answer ("not in chat mode").
        mode: &'static str,
    },
}

/// The refusal a person reads, naming the word and the mode.
impl fmt::Display for Answer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Help(text) => f.write_str(text),
            Answer::NotHere { word, mode } => write!(
                f,
                "'{}' is not a {mode} command; type 'help' for the list",
                word.escape_debug()
            ),
        }
    }
}

impl Offer {
    /// The mode's own answer to `line` (read with `grammar`), if it has one: its help,
    /// or the refusal of a command it does not offer. `None` for an offered command,
    /// a message or a line that does not parse (the node says what is wrong).
    pub fn answer<'a>(&self, line: &'a str, grammar: Grammar) -> Option<Answer<'a>> {
        let Ok(Some(cmd)) = command::parse_in(line, grammar) else {
            return None;
        };
        let not_here = |word| Answer::NotHere {
            word,
            mode: self.mode,
        };
        match cmd {
            Command::Help { topic: None } => Some(Answer::Help(self.help)),
            Command::Help { topic: Some(word) } => match Verb::from_word(word) {
                Some(verb) if self.verbs.contains(&verb) => Some(Answer::Help(self.line(verb))),
                _ => Some(not_here(word)),
            },
            other if !self.verbs.contains(&other.verb()) => Some(not_here(other.verb().name())),
            _ => None,
        }
    }

    /// The line of [`Offer::help`] about `verb` (its word, with or without `/`, first);
    /// the whole help if none is.
    fn line(&self, verb: Verb) -> &'static str {
        let help = self.help;
        help.lines()
            .find(|line| {
                line.split_whitespace()
                    .next()
                    .is_some_and(|word| word.trim_start_matches('/') == verb.name())
            })
            .unwrap_or(help)
            .trim()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(line: &str) -> Option<Answer<'_>> {
        CHAT.answer(line, Grammar::Commands)
    }

    fn help_of(answer: Option<Answer<'_>>) -> &'static str {
        match answer {
            Some(Answer::Help(text)) => text,
            other => panic!("no help: {other:?}"),
        }
    }

    #[test]
    fn chat_help_lists_only_the_chat_commands() {
        let text = help_of(chat("help"));
        for word in ["connect", "send", "disconnect", "help", "exit"] {
            assert!(text.contains(word), "{word} missing from {text}");
        }
        for word in ["broadcast", "set_alias", "list_connections"] {
            assert!(!text.contains(word), "{word} listed in {text}");
        }
    }

    #[test]
    fn chat_help_on_one_command_shows_its_chat_usage() {
        assert!(help_of(chat("help s")).starts_with("send <message>"));
        assert!(help_of(chat("help /me")).starts_with("/me <action>"));
    }

    #[test]
    fn chat_refuses_mesh_only_commands_by_the_word_typed_or_the_commands_name() {
        for (line, word) in [
            ("broadcast hi", "broadcast"),
            ("set_alias a b", "set_alias"),
            ("list", "list_connections"),
            ("help broadcast", "broadcast"),
        ] {
            assert_eq!(
                chat(line),
                Some(Answer::NotHere { word, mode: "chat" }),
                "{line}"
            );
        }
    }

    #[test]
    fn a_refusal_names_the_word_and_the_mode() {
        let refusal = Answer::NotHere {
            word: "b\n",
            mode: "serve",
        };
        let mut shown = heapless::String::<80>::new();
        fmt::write(&mut shown, format_args!("{refusal}")).expect("fits");
        assert_eq!(
            shown,
            "'b\\n' is not a serve command; type 'help' for the list"
        );
    }

    #[test]
    fn offered_commands_messages_and_bad_lines_are_left_to_the_node() {
        for line in [
            "connect 127.0.0.1 4000",
            "send hi there",
            "disconnect",
            "exit",
            "frob",
        ] {
            assert_eq!(chat(line), None, "{line}");
        }
        for line in [
            "all good here",
            "list of things",
            "/me waves",
            "/log chat.log",
        ] {
            assert_eq!(CHAT.answer(line, Grammar::Chat), None, "{line}");
        }
    }

    #[test]
    fn serve_offers_only_disconnect_help_and_exit() {
        let serve = |line| SERVE.answer(line, Grammar::Commands);
        assert!(help_of(serve("help d")).starts_with("disconnect"));
        assert_eq!(serve("exit"), None);
        assert!(matches!(serve("send hi"), Some(Answer::NotHere { .. })));
    }
}
