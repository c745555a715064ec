//! The command language: one line a person typed, parsed into a [`Command`].
//!
//! Pure: it knows nothing of peers, so targets stay as typed and the node resolves them.
//! The command words are those of the seed programs (`chat.py`, `many-to-many.py`), plus
//! short synonyms, and every command as a `/` form as IRC users type them (`/msg`, `/me`,
//! `/nick`, `/who`, ...). Two [`Grammar`]s read a line: scripts, where every line is a
//! command, and the chat prompt, where a line that is no command is a message.
//! Words are split on Unicode whitespace, as Python's `str.split()` does.

use core::fmt;

mod error;
mod suggest;
mod verb;

pub use crate::alias::{AliasError, Target, validate_alias};
pub use error::ParseError;
pub use suggest::one_edit;
pub use verb::{HELP, Verb, help_text, usage};

use suggest::{NEAR_MIN_PLAIN, nearest, unknown};

/// The longest `/me` message (`* name action`), in bytes: the node builds it on its stack.
pub const EMOTE_MAX: usize = 512;

/// How a line is read: what a word without `/` means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grammar {
    /// Every line is a command (scripts, `serve`, anything not typed at a chat prompt):
    /// command words and their short synonyms bare or with `/`; the commands new to the
    /// prompt (`/say`, `/me`, `/nick`, `/log`) only with `/`.
    Commands,
    /// A person at the `chat` or `mesh` prompt: only the seed command words (and
    /// `broadcast`) are commands bare, everything else needs `/`, and any other line is a
    /// message ([`Command::Say`]), unless its first word is one edit from a command word
    /// and the rest reads as that command (a typo, refused so it never reaches the room).
    Chat,
}

/// Parsing lives with the grammar, the type in [`crate::alias`].
impl<'a> Target<'a> {
    /// Reads one word as a target: `#` then a decimal number from 1 is an [`Target::Id`],
    /// `#` then anything else is an error, and any other word is a [`Target::Name`].
    pub fn parse(word: &'a str) -> Result<Self, ParseError<'a>> {
        let Some(digits) = word.strip_prefix('#') else {
            return Ok(Target::Name(word));
        };
        match decimal(digits) {
            Decimal::Value(id) if id >= 1 => Ok(Target::Id(id)),
            _ => Err(ParseError::BadPeerNumber(word)),
        }
    }
}

/// One command a person typed. Text borrows from the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// `connect <host> <port> [alias]`, also `connect <host>:<port> [alias]`, with an IPv6
    /// host in brackets (`[::1]:4000`, `[::1] 4000`); `host` is without the brackets.
    Connect {
        /// The host name or address to dial, without IPv6 brackets.
        host: &'a str,
        /// The TCP port to dial.
        port: u16,
        /// The alias to give the peer, instead of the name it announces.
        alias: Option<&'a str>,
    },
    /// `connect <name>`: one word that is no address (no `:`, no IP), the name of a node
    /// LAN discovery heard; the shell looks it up (`/nearby` lists them).
    ConnectName {
        /// The name, as typed.
        name: &'a str,
    },
    /// `/nearby` (in a script also `nearby`): the nodes LAN discovery heard, the shell's list.
    Nearby,
    /// `send <message>` or `send <target> <message>`. Which one depends on the peers, so both
    /// readings are given. `all` is everything after `send` and the whitespace after it.
    /// If the first word of `all` is followed by whitespace, `target` is that word and `text`
    /// is the rest after the whitespace that follows it (empty if nothing follows); otherwise
    /// (one word) `target` is `None` and `text` is `all`. So `text` is always a suffix of `all`,
    /// equal to it exactly when `target` is `None`. A target word starting with `#` that is no
    /// peer number is an error ([`ParseError::BadPeerNumber`]): `#` is kept for peer numbers.
    ///
    /// The node: in a one-peer chat, send `all` to the peer (there is never a target word);
    /// otherwise `target` must name a known peer and `text` must not be empty, else it is an
    /// error and nothing is sent (a mistyped alias never reaches the only peer).
    Send {
        /// The first word, when more follows: the peer it may name.
        target: Option<Target<'a>>,
        /// The message if `target` names a peer.
        text: &'a str,
        /// The message if there is no target (a one-peer chat).
        all: &'a str,
    },
    /// `broadcast <message>`: to every peer (the room).
    Broadcast {
        /// The message, as typed.
        text: &'a str,
    },
    /// A line at the chat prompt that is no command, or `/say <message>`: to the peer in
    /// a one-peer chat, else to the room. The text is kept exactly as typed.
    Say {
        /// The message, exactly as typed.
        text: &'a str,
    },
    /// `/me <action>`: said like [`Command::Say`], as `* <our name> <action>` ([`Emote`]).
    Me {
        /// What the person does, after their name.
        action: &'a str,
    },
    /// `/nick <name>`: the name peers see from now on; the name is checked by [`validate_alias`].
    Nick {
        /// The new name.
        name: &'a str,
    },
    /// `/log <file>`: keep a transcript in the file from now on; `/log` alone stops it.
    /// The file is the rest of the line, spaces inside kept.
    Log {
        /// The transcript's file; `None` stops the transcript.
        file: Option<&'a str>,
    },
    /// `/whoami`: this node's key fingerprint.
    Whoami,
    /// `/verify [<target>]`: a peer's key fingerprint; without a target, the only peer's.
    Verify {
        /// The peer whose key to show; `None` for the only one.
        target: Option<Target<'a>>,
    },
    /// `/trust <alias>`: accept the new key a known name was refused with.
    Trust {
        /// The name, as its alias was.
        name: &'a str,
    },
    /// `disconnect [<target>]`; without a target, the only peer.
    Disconnect {
        /// The peer to leave; `None` for the only one.
        target: Option<Target<'a>>,
    },
    /// `set_alias <target> <alias>`; the alias is already checked by [`validate_alias`].
    SetAlias {
        /// The peer to rename.
        target: Target<'a>,
        /// Its new alias.
        alias: &'a str,
    },
    /// `list_connections`
    List,
    /// `help` or `help <command>`; the topic is a known command word or synonym, as typed.
    Help {
        /// The command asked about; `None` for the list of all.
        topic: Option<&'a str>,
    },
    /// `exit`
    Exit,
}

impl Command<'_> {
    /// Which command this is.
    pub const fn verb(&self) -> Verb {
        match self {
            Command::Connect { .. } | Command::ConnectName { .. } => Verb::Connect,
            Command::Nearby => Verb::Nearby,
            Command::Send { .. } => Verb::Send,
            Command::Broadcast { .. } => Verb::Broadcast,
            Command::Say { .. } => Verb::Say,
            Command::Me { .. } => Verb::Me,
            Command::Nick { .. } => Verb::Nick,
            Command::Log { .. } => Verb::Log,
            Command::Whoami => Verb::Whoami,
            Command::Verify { .. } => Verb::Verify,
            Command::Trust { .. } => Verb::Trust,
            Command::Disconnect { .. } => Verb::Disconnect,
            Command::SetAlias { .. } => Verb::SetAlias,
            Command::List => Verb::List,
            Command::Help { .. } => Verb::Help,
            Command::Exit => Verb::Exit,
        }
    }
}

/// Parses a line as a script's command ([`Grammar::Commands`]); `Ok(None)` for a blank
/// line (only whitespace).
///
/// One line ending (`\n`, `\r\n` or `\r`) is stripped first, and whitespace around the
/// command word is ignored. Message text (`send`, `broadcast`) is kept exactly as typed
/// after the whitespace that separates it from the word before, trailing whitespace included.
pub fn parse(line: &str) -> Result<Option<Command<'_>>, ParseError<'_>> {
    parse_in(line, Grammar::Commands)
}

/// Parses a line read with `grammar`, as [`parse`] does; at the chat prompt a line that
/// is no command is [`Command::Say`] with the line (without its leading whitespace and
/// line ending) as the text.
pub fn parse_in(line: &str, grammar: Grammar) -> Result<Option<Command<'_>>, ParseError<'_>> {
    let line = strip_line_ending(line).trim_start();
    if line.is_empty() {
        return Ok(None);
    }
    let (word, rest) = split_word(line);
    if let Some(name) = word.strip_prefix('/') {
        return match Verb::named(name) {
            Some(verb) => arguments(verb, rest).map(Some),
            None => Err(unknown(word, name, true, Verb::words)),
        };
    }
    if let Some(verb) = Verb::ALL
        .into_iter()
        .find(|v| v.bare_words(grammar).contains(&word))
    {
        return arguments(verb, rest).map(Some);
    }
    match grammar {
        Grammar::Commands => {
            // A command typed only with `/` is named so, not guessed at.
            if let Some(verb) = Verb::named(word).filter(|v| v.slash_only()) {
                return Err(ParseError::Misspelt {
                    word,
                    meant: verb.name(),
                    slash: true,
                    as_text: false,
                });
            }
            let bare = |v: Verb| v.bare_words(Grammar::Commands);
            Err(unknown(word, word, false, bare))
        }
        Grammar::Chat => {
            let bare = |v: Verb| v.bare_words(Grammar::Chat);
            if let Some((verb, meant)) = nearest(word, NEAR_MIN_PLAIN, bare)
                && arguments(verb, rest).is_ok()
            {
                return Err(ParseError::Misspelt {
                    word,
                    meant,
                    slash: false,
                    as_text: true,
                });
            }
            Ok(Some(Command::Say { text: line }))
        }
    }
}

/// Whether `connect`'s one word names a node rather than an address missing its port:
/// no `:` (a port or IPv6) and no IP address.
fn is_node_name(word: &str) -> bool {
    !word.contains(':') && word.parse::<core::net::IpAddr>().is_err()
}

/// The command `verb` with the rest of the line (after the command word) as its arguments.
fn arguments(verb: Verb, rest: &str) -> Result<Command<'_>, ParseError<'_>> {
    let mut args = rest.split_whitespace();
    let command = match verb {
        Verb::Connect => {
            let Some(first) = args.next() else {
                return Err(ParseError::MissingArguments(verb));
            };
            let (host, port) = match host_and_port(first) {
                (host, Some(port)) => (host, port),
                (host, None) => match args.next() {
                    Some(port) => (host, port),
                    None if is_node_name(first) => return Ok(Command::ConnectName { name: first }),
                    None => return Err(ParseError::MissingArguments(verb)),
                },
            };
            let alias = args.next();
            no_more(verb, args)?;
            let port = parse_port(port)?;
            if let Some(alias) = alias {
                check_alias(alias)?;
            }
            Command::Connect { host, port, alias }
        }
        Verb::Send => {
            if rest.is_empty() {
                return Err(ParseError::MissingMessage(verb));
            }
            let (target, text) = match rest.split_once(char::is_whitespace) {
                Some((first, after)) => (Some(Target::parse(first)?), after.trim_start()),
                None => (None, rest),
            };
            Command::Send {
                target,
                text,
                all: rest,
            }
        }
        Verb::Broadcast | Verb::Say | Verb::Me => {
            if rest.is_empty() {
                return Err(ParseError::MissingMessage(verb));
            }
            match verb {
                Verb::Broadcast => Command::Broadcast { text: rest },
                Verb::Say => Command::Say { text: rest },
                _ => Command::Me { action: rest },
            }
        }
        Verb::Nick => {
            let Some(name) = args.next() else {
                return Err(ParseError::MissingArguments(verb));
            };
            no_more(verb, args)?;
            validate_alias(name).map_err(|error| ParseError::BadName { name, error })?;
            Command::Nick { name }
        }
        Verb::Log => {
            let file = rest.trim_end();
            Command::Log {
                file: (!file.is_empty()).then_some(file),
            }
        }
        Verb::Nearby => {
            no_more(verb, args)?;
            Command::Nearby
        }
        Verb::Whoami => {
            no_more(verb, args)?;
            Command::Whoami
        }
        Verb::Verify => {
            let target = args.next().map(Target::parse).transpose()?;
            no_more(verb, args)?;
            Command::Verify { target }
        }
        Verb::Trust => {
            let Some(name) = args.next() else {
                return Err(ParseError::MissingArguments(verb));
            };
            no_more(verb, args)?;
            check_alias(name)?;
            Command::Trust { name }
        }
        Verb::Disconnect => {
            let target = args.next().map(Target::parse).transpose()?;
            no_more(verb, args)?;
            Command::Disconnect { target }
        }
        Verb::SetAlias => {
            let (Some(target), Some(alias)) = (args.next(), args.next()) else {
                return Err(ParseError::MissingArguments(verb));
            };
            no_more(verb, args)?;
            let target = Target::parse(target)?;
            check_alias(alias)?;
            Command::SetAlias { target, alias }
        }
        Verb::List => {
            no_more(verb, args)?;
            Command::List
        }
        Verb::Help => {
            let topic = args.next();
            no_more(verb, args)?;
            if let Some(topic) = topic
                && Verb::from_word(topic).is_none()
            {
                return Err(ParseError::UnknownHelpTopic(topic));
            }
            Command::Help { topic }
        }
        Verb::Exit => {
            no_more(verb, args)?;
            Command::Exit
        }
    };
    Ok(command)
}

/// What `/me` sends: `* <name> <action>`, the way IRC shows an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Emote<'a> {
    /// Our name, as peers see it.
    pub name: &'a str,
    /// What was typed after `/me`.
    pub action: &'a str,
}

impl fmt::Display for Emote<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "* {} {}", self.name, self.action)
    }
}

/// The host of a `connect`, and its port when the same word has it: `host:port`,
/// `[v6]:port`; `[v6]` is the host without brackets. A word with two colons or more is
/// an IPv6 address whose port is the next word (`::1 4000`), as before.
fn host_and_port(word: &str) -> (&str, Option<&str>) {
    if let Some(inner) = word.strip_prefix('[')
        && let Some((host, rest)) = inner.split_once(']')
    {
        return match rest.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            // Anything else after the bracket is kept, and the dial says what is wrong.
            None if rest.is_empty() => (host, None),
            None => (word, None),
        };
    }
    match word.split_once(':') {
        Some((host, port)) if !port.contains(':') => (host, Some(port)),
        _ => (word, None),
    }
}

/// Strips one line ending: `\n`, `\r\n` or `\r`.
fn strip_line_ending(line: &str) -> &str {
    let line = line.strip_suffix('\n').unwrap_or(line);
    line.strip_suffix('\r').unwrap_or(line)
}

/// Splits off the first word: the word, and the rest after the whitespace that follows it.
fn split_word(s: &str) -> (&str, &str) {
    match s.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim_start()),
        None => (s, ""),
    }
}

/// Fails with the first word left over, if any.
fn no_more<'a>(verb: Verb, mut args: impl Iterator<Item = &'a str>) -> Result<(), ParseError<'a>> {
    match args.next() {
        Some(extra) => Err(ParseError::TooManyArguments { verb, extra }),
        None => Ok(()),
    }
}

fn check_alias(alias: &str) -> Result<(), ParseError<'_>> {
    validate_alias(alias).map_err(|error| ParseError::BadAlias { alias, error })
}

/// A port: decimal digits only (no sign), from 1 to 65535. Shells asking for a
/// port read it with this too, so a port is the same number everywhere.
pub fn parse_port(s: &str) -> Result<u16, ParseError<'_>> {
    match decimal(s) {
        Decimal::Value(n) => match u16::try_from(n) {
            Ok(port) if port >= 1 => Ok(port),
            _ => Err(ParseError::PortOutOfRange(s)),
        },
        Decimal::TooBig => Err(ParseError::PortOutOfRange(s)),
        Decimal::NotDigits => match s.strip_prefix('-').map(decimal) {
            // A negative number is a number, just not a port.
            Some(Decimal::Value(_) | Decimal::TooBig) => Err(ParseError::PortOutOfRange(s)),
            _ => Err(ParseError::PortNotNumber(s)),
        },
    }
}

enum Decimal {
    /// Empty, or something other than ASCII digits (`+` and `-` included).
    NotDigits,
    /// Only digits, but more than `u32::MAX`.
    TooBig,
    Value(u32),
}

/// Reads ASCII decimal digits with checked arithmetic (unlike `str::parse`, which takes a `+`).
fn decimal(s: &str) -> Decimal {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Decimal::NotDigits;
    }
    let mut value: u32 = 0;
    for digit in s.chars().filter_map(|c| c.to_digit(10)) {
        match value.checked_mul(10).and_then(|v| v.checked_add(digit)) {
            Some(v) => value = v,
            None => return Decimal::TooBig,
        }
    }
    Decimal::Value(value)
}
