//! The command language: one line a person typed, parsed into a [`Command`].
//!
//! Pure: it knows nothing of peers, so targets stay as typed and the node resolves them.
//! The command words are those of the seed programs (`chat.py`, `many-to-many.py`), plus
//! short synonyms. Words are split on Unicode whitespace, as Python's `str.split()` does.

use core::fmt;

use crate::display::SafeStr;

/// The longest alias, in characters.
pub const ALIAS_MAX_LEN: usize = 32;

/// The list of commands, one line each, shown by `help`.
pub const HELP: &str = "\
Commands:
  connect <host> <port> [alias]     open a connection to a peer (also: c, open)
  send <alias|ip|#id> <message>     send a message to one peer (also: s, msg)
  broadcast <message>               send a message to every peer (also: b, all)
  disconnect [<alias|ip|#id>]       close a connection; with one peer the target may be left out (also: d, close)
  set_alias <alias|ip|#id> <alias>  give a peer a name (also: alias)
  list_connections                  list the peers with their numbers (also: list, ls, peers)
  help [<command>]                  this list, or more on one command (also: h, ?)
  exit                              close every connection and quit (also: quit, q)";

/// Who a command is aimed at, as typed: `#3` (a peer's number) or a word (an alias or an IP address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// `#` and a decimal number from 1, as `list_connections` shows it.
    Id(u32),
    /// Any other word: an alias or an IP address; the node tells which.
    Name(&'a str),
}

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

/// Shows the target as typed (`#3` or the name), made safe for a terminal.
impl fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Id(id) => write!(f, "#{id}"),
            Target::Name(name) => SafeStr(name).fmt(f),
        }
    }
}

/// One command a person typed. Text borrows from the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// `connect <host> <port> [alias]`, also `connect <host>:<port> [alias]`, with an IPv6
    /// host in brackets (`[::1]:4000`, `[::1] 4000`); `host` is without the brackets.
    Connect {
        host: &'a str,
        port: u16,
        alias: Option<&'a str>,
    },
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
        target: Option<Target<'a>>,
        text: &'a str,
        all: &'a str,
    },
    /// `broadcast <message>`: to every peer (the room).
    Broadcast { text: &'a str },
    /// `disconnect [<target>]`; without a target, the only peer.
    Disconnect { target: Option<Target<'a>> },
    /// `set_alias <target> <alias>`; the alias is already checked by [`validate_alias`].
    SetAlias { target: Target<'a>, alias: &'a str },
    /// `list_connections`
    List,
    /// `help` or `help <command>`; the topic is a known command word or synonym, as typed.
    Help { topic: Option<&'a str> },
    /// `exit`
    Exit,
}

impl Command<'_> {
    /// Which command this is.
    pub const fn verb(&self) -> Verb {
        match self {
            Command::Connect { .. } => Verb::Connect,
            Command::Send { .. } => Verb::Send,
            Command::Broadcast { .. } => Verb::Broadcast,
            Command::Disconnect { .. } => Verb::Disconnect,
            Command::SetAlias { .. } => Verb::SetAlias,
            Command::List => Verb::List,
            Command::Help { .. } => Verb::Help,
            Command::Exit => Verb::Exit,
        }
    }
}

/// The kinds of command, each with its seed word, synonyms, usage and help.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    Connect,
    Send,
    Broadcast,
    Disconnect,
    SetAlias,
    List,
    Help,
    Exit,
}

impl Verb {
    /// Every verb, in the order `help` lists them.
    pub const ALL: [Verb; 8] = [
        Verb::Connect,
        Verb::Send,
        Verb::Broadcast,
        Verb::Disconnect,
        Verb::SetAlias,
        Verb::List,
        Verb::Help,
        Verb::Exit,
    ];

    /// The verb a command word or synonym names (case-sensitive, as in the seeds).
    pub fn from_word(word: &str) -> Option<Verb> {
        Verb::ALL
            .into_iter()
            .find(|verb| verb.name() == word || verb.synonyms().contains(&word))
    }

    /// The command word of the seed programs.
    pub const fn name(self) -> &'static str {
        match self {
            Verb::Connect => "connect",
            Verb::Send => "send",
            Verb::Broadcast => "broadcast",
            Verb::Disconnect => "disconnect",
            Verb::SetAlias => "set_alias",
            Verb::List => "list_connections",
            Verb::Help => "help",
            Verb::Exit => "exit",
        }
    }

    /// The short words that mean the same.
    pub const fn synonyms(self) -> &'static [&'static str] {
        match self {
            Verb::Connect => &["c", "open"],
            Verb::Send => &["s", "msg"],
            Verb::Broadcast => &["b", "all"],
            Verb::Disconnect => &["d", "close"],
            Verb::SetAlias => &["alias"],
            Verb::List => &["list", "ls", "peers"],
            Verb::Help => &["h", "?"],
            Verb::Exit => &["quit", "q"],
        }
    }

    /// How to type it, e.g. `connect <host> <port> [alias]`.
    pub const fn usage(self) -> &'static str {
        match self {
            Verb::Connect => "connect <host> <port> [alias]",
            Verb::Send => "send <alias|ip|#id> <message>",
            Verb::Broadcast => "broadcast <message>",
            Verb::Disconnect => "disconnect [<alias|ip|#id>]",
            Verb::SetAlias => "set_alias <alias|ip|#id> <alias>",
            Verb::List => "list_connections",
            Verb::Help => "help [<command>]",
            Verb::Exit => "exit",
        }
    }

    /// What `help <command>` shows: the usage, then what it does, then the synonyms.
    pub const fn help(self) -> &'static str {
        match self {
            Verb::Connect => {
                "connect <host> <port> [alias]\n  \
                 Open a connection to the peer listening at <host> (an IP address or a host name)\n  \
                 on <port> (1-65535), and name it <alias> if given. Also <host>:<port>, and an\n  \
                 IPv6 address in brackets: [::1]:4000 or [::1] 4000.\n  \
                 Also: c, open"
            }
            Verb::Send => {
                "send <alias|ip|#id> <message>\n  \
                 Send <message> to one peer, named by its alias, its IP address or its number\n  \
                 (#1, #2, ... as list_connections shows). A target that names no peer is an error.\n  \
                 Also: s, msg"
            }
            Verb::Broadcast => {
                "broadcast <message>\n  \
                 Send <message> to every connected peer.\n  \
                 Also: b, all"
            }
            Verb::Disconnect => {
                "disconnect [<alias|ip|#id>]\n  \
                 Close the connection to one peer. With only one peer, the target may be left out.\n  \
                 Also: d, close"
            }
            Verb::SetAlias => {
                "set_alias <alias|ip|#id> <alias>\n  \
                 Name a peer. An alias is 1 to 32 ASCII letters, digits, '_', '.' or '-'.\n  \
                 Also: alias"
            }
            Verb::List => {
                "list_connections\n  \
                 List the peers with their numbers, addresses and aliases.\n  \
                 Also: list, ls, peers"
            }
            Verb::Help => {
                "help [<command>]\n  \
                 List the commands, or tell more about one.\n  \
                 Also: h, ?"
            }
            Verb::Exit => {
                "exit\n  \
                 Close every connection and quit.\n  \
                 Also: quit, q"
            }
        }
    }
}

/// The usage of a command word or synonym, e.g. `usage("c")` is `connect <host> <port> [alias]`.
pub fn usage(word: &str) -> Option<&'static str> {
    Verb::from_word(word).map(Verb::usage)
}

/// What `help` shows: [`HELP`] without a topic, the command's own help for a command word or
/// synonym, and `None` for anything else.
pub fn help_text(topic: Option<&str>) -> Option<&'static str> {
    match topic {
        None => Some(HELP),
        Some(word) => Verb::from_word(word).map(Verb::help),
    }
}

/// What is wrong with a line; words are those typed, so the message can quote them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError<'a> {
    /// The first word is no command word or synonym.
    UnknownCommand(&'a str),
    /// Fewer words than the command needs.
    MissingArguments(Verb),
    /// More words than the command takes; `extra` is the first one too many.
    TooManyArguments { verb: Verb, extra: &'a str },
    /// `send` or `broadcast` with nothing to send.
    MissingMessage(Verb),
    /// The port has something other than decimal digits.
    PortNotNumber(&'a str),
    /// The port is a number, but not from 1 to 65535 (it may be too long for any integer).
    PortOutOfRange(&'a str),
    /// A word starting with `#` that is not `#` and a number from 1.
    BadPeerNumber(&'a str),
    /// An alias that [`validate_alias`] refuses.
    BadAlias { alias: &'a str, error: AliasError },
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
            ParseError::UnknownHelpTopic(word) => write!(
                f,
                "there is no command '{}'; type 'help' for the list",
                SafeStr(word)
            ),
        }
    }
}

impl core::error::Error for ParseError<'_> {}

/// What is wrong with an alias; [`validate_alias`] reports the first problem it finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AliasError {
    Empty,
    /// A character other than an ASCII letter, digit, `_`, `.` or `-`.
    BadChar(char),
    /// More than [`ALIAS_MAX_LEN`] characters; `chars` is how many.
    TooLong {
        chars: usize,
    },
}

impl fmt::Display for AliasError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AliasError::Empty => f.write_str("an alias needs at least one character"),
            AliasError::BadChar(c) => write!(
                f,
                "bad character '{}'; use ASCII letters, digits, '_', '.' and '-'",
                SafeStr(c.encode_utf8(&mut [0; 4]))
            ),
            AliasError::TooLong { chars } => {
                write!(f, "too long ({chars} chars, max {ALIAS_MAX_LEN})")
            }
        }
    }
}

impl core::error::Error for AliasError {}

/// Checks an alias: 1 to [`ALIAS_MAX_LEN`] characters, each an ASCII letter, digit, `_`, `.` or `-`.
/// The charset keeps aliases one word, printable, and apart from `#` peer numbers.
/// Problems are checked in this order: empty, a bad character (the first), too long.
pub fn validate_alias(s: &str) -> Result<(), AliasError> {
    if s.is_empty() {
        return Err(AliasError::Empty);
    }
    if let Some(c) = s
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(AliasError::BadChar(c));
    }
    // Every character is ASCII here, so bytes are characters.
    if s.len() > ALIAS_MAX_LEN {
        return Err(AliasError::TooLong { chars: s.len() });
    }
    Ok(())
}

/// Parses a line; `Ok(None)` for a blank line (only whitespace).
///
/// One line ending (`\n`, `\r\n` or `\r`) is stripped first, and whitespace around the
/// command word is ignored. Message text (`send`, `broadcast`) is kept exactly as typed
/// after the whitespace that separates it from the word before, trailing whitespace included.
pub fn parse(line: &str) -> Result<Option<Command<'_>>, ParseError<'_>> {
    let line = strip_line_ending(line).trim_start();
    if line.is_empty() {
        return Ok(None);
    }
    let (word, rest) = split_word(line);
    let verb = Verb::from_word(word).ok_or(ParseError::UnknownCommand(word))?;
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
        Verb::Broadcast => {
            if rest.is_empty() {
                return Err(ParseError::MissingMessage(verb));
            }
            Command::Broadcast { text: rest }
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
    Ok(Some(command))
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

/// A port: decimal digits only (no sign), from 1 to 65535.
fn parse_port(s: &str) -> Result<u16, ParseError<'_>> {
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
