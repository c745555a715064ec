//! What is wrong with a typed line, in words that quote what was typed.

use core::fmt;

use super::{AliasError, Verb};
use crate::display::SafeStr;

/// What is wrong with a line; words are those typed, so the message can quote them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError<'a> {
    /// The first word is no command word or synonym.
    UnknownCommand(&'a str),
    /// The first word is one edit (a letter added, dropped, changed, or two swapped) from
    /// the command word `meant` (with a `/` when `slash`), or, in a script, is a command
    /// typed only with `/`; at the chat prompt (`as_text`) the line was not sent, and
    /// `/say` would send it.
    Misspelt {
        /// The word as typed.
        word: &'a str,
        /// The command word it is one edit from.
        meant: &'static str,
        /// `meant` is a slash command (`/nick`).
        slash: bool,
        /// At the chat prompt: the line was not sent as text.
        as_text: bool,
    },
    /// Fewer words than the command needs.
    MissingArguments(Verb),
    /// More words than the command takes; `extra` is the first one too many.
    TooManyArguments {
        /// The command.
        verb: Verb,
        /// The first word too many.
        extra: &'a str,
    },
    /// `send` or `broadcast` with nothing to send.
    MissingMessage(Verb),
    /// The port has something other than decimal digits.
    PortNotNumber(&'a str),
    /// The port is a number, but not from 1 to 65535 (it may be too long for any integer).
    PortOutOfRange(&'a str),
    /// A word starting with `#` that is not `#` and a number from 1.
    BadPeerNumber(&'a str),
    /// An alias that [`validate_alias`](crate::alias::validate_alias) refuses.
    BadAlias {
        /// The alias as typed.
        alias: &'a str,
        /// What is wrong with it.
        error: AliasError,
    },
    /// A `/nick` name that [`validate_alias`](crate::alias::validate_alias) refuses (names and aliases are alike).
    BadName {
        /// The name as typed.
        name: &'a str,
        /// What is wrong with it.
        error: AliasError,
    },
    /// `help <word>` where the word is no command.
    UnknownHelpTopic(&'a str),
}

impl fmt::Display for ParseError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ParseError::UnknownCommand(word) => write!(
                f,
                "unknown command '{}'; type 'help' for the list",
                SafeStr(word)
            ),
            ParseError::Misspelt {
                word,
                meant,
                slash,
                as_text,
            } => {
                let slash = if slash { "/" } else { "" };
                write!(
                    f,
                    "unknown command '{}'; did you mean '{slash}{meant}'?",
                    SafeStr(word)
                )?;
                if as_text {
                    f.write_str(" (/say sends it as text)")?;
                }
                Ok(())
            }
            ParseError::MissingArguments(verb) => write!(
                f,
                "{} needs more words; usage: {}",
                verb.name(),
                verb.usage()
            ),
            ParseError::TooManyArguments { verb, extra } => write!(
                f,
                "too many words for {} ('{}' is one too many); usage: {}",
                verb.name(),
                SafeStr(extra),
                verb.usage()
            ),
            ParseError::MissingMessage(verb) => {
                write!(f, "no message to send; usage: {}", verb.usage())
            }
            ParseError::PortNotNumber(port) => {
                write!(f, "port '{}' is not a number", SafeStr(port))
            }
            ParseError::PortOutOfRange(port) => {
                write!(f, "port {} is out of range 1-65535", SafeStr(port))
            }
            ParseError::BadPeerNumber(word) => write!(
                f,
                "'{}' is not a peer number; use #1, #2, ... as list_connections shows",
                SafeStr(word)
            ),
            ParseError::BadAlias { alias, error } => {
                write!(f, "alias '{}' is not allowed: {error}", SafeStr(alias))
            }
            ParseError::BadName { name, error } => {
                write!(f, "name '{}' is not allowed: {error}", SafeStr(name))
            }
            ParseError::UnknownHelpTopic(word) => write!(
                f,
                "there is no command '{}'; type 'help' for the list",
                SafeStr(word)
            ),
        }
    }
}

impl core::error::Error for ParseError<'_> {}
