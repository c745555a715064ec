//! The command language: one line a person typed, parsed into a [`Command`].
//!
//! Pure: it knows nothing of peers, so targets stay as typed and the node resolves them.
//! The command words are those of the seed programs (`chat.py`, `many-to-many.py`), plus
//! short synonyms, and every command as a `/` form as IRC users type them (`/msg`, `/me`,
//! `/nick`, `/who`, ...). Two [`Grammar`]s read a line: scripts, where every line is a
//! command, and the chat prompt, where a line that is no command is a message.
//! Words are split on Unicode whitespace, as Python's `str.split()` does.

use core::fmt;

use crate::display::SafeStr;

pub use crate::alias::{AliasError, Target, validate_alias};

/// The longest `/me` message (`* name action`), in bytes: the node builds it on its stack.
pub const EMOTE_MAX: usize = 512;

/// A typed word this short (in characters, without its `/`) is never taken for a
/// misspelt command word: too many short words are one edit from another.
const NEAR_MIN: usize = 3;
/// At the chat prompt a plain first word must be this long to be taken for a misspelt
/// command word (so `end of story` is a message, not a misspelt `send`).
const NEAR_MIN_PLAIN: usize = 4;

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

/// The list of commands, one line each, shown by `help`.
pub const HELP: &str = "\
Commands (each also as /word, e.g. /connect; at the prompt a line that is no command is
a message to the room, and /say sends any line as it is):
  connect <host> <port> [alias]     open a connection to a peer (also: /c, /open)
  send <alias|ip|#id> <message>     send a message to one peer (also: /msg, /s)
  broadcast <message>               send a message to every peer (also: /b, /all)
  disconnect [<alias|ip|#id>]       close a connection; with one peer the target may be left out (also: /d, /close)
  set_alias <alias|ip|#id> <alias>  give a peer a name (also: /alias)
  list_connections                  list the peers with their numbers (also: /who, /list, /ls, /peers)
  help [<command>]                  this list, or more on one command (also: /h, /?)
  exit                              close every connection and quit (also: /quit, /q)
  /say <message>                    send the text as it is, to the room
  /me <action>                      say what you do, shown as '* yourname <action>'
  /nick <name>                      change the name peers see (they are told)
  /log [<file>]                     keep a transcript in <file> from now on; alone, stop";

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
            Command::Connect { .. } => Verb::Connect,
            Command::Send { .. } => Verb::Send,
            Command::Broadcast { .. } => Verb::Broadcast,
            Command::Say { .. } => Verb::Say,
            Command::Me { .. } => Verb::Me,
            Command::Nick { .. } => Verb::Nick,
            Command::Log { .. } => Verb::Log,
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
    /// `connect`: dial a peer.
    Connect,
    /// `send`: a message to one peer.
    Send,
    /// `/say`: a line to the peer or the room.
    Say,
    /// `/me`: an action, said like `/say`.
    Me,
    /// `broadcast`: a message to the room.
    Broadcast,
    /// `disconnect`: leave a peer.
    Disconnect,
    /// `set_alias`: rename a peer here.
    SetAlias,
    /// `/nick`: the name peers see.
    Nick,
    /// `list_connections`: who is here.
    List,
    /// `/log`: keep a transcript.
    Log,
    /// `help`: what each command does.
    Help,
    /// `exit`: leave every peer and stop.
    Exit,
}

impl Verb {
    /// Every verb, in the order `help` lists them.
    pub const ALL: [Verb; 12] = [
        Verb::Connect,
        Verb::Send,
        Verb::Say,
        Verb::Me,
        Verb::Broadcast,
        Verb::Disconnect,
        Verb::SetAlias,
        Verb::Nick,
        Verb::List,
        Verb::Log,
        Verb::Help,
        Verb::Exit,
    ];

    /// The verb a command word or synonym names, with or without its `/`
    /// (case-sensitive, as in the seeds).
    pub fn from_word(word: &str) -> Option<Verb> {
        Verb::named(word.strip_prefix('/').unwrap_or(word))
    }

    /// The verb whose name or synonym is exactly `word`.
    fn named(word: &str) -> Option<Verb> {
        Verb::ALL
            .into_iter()
            .find(|verb| verb.name() == word || verb.synonyms().contains(&word))
    }

    /// True for the commands new to the prompt, which are typed only with `/`
    /// (`say`, `me`, `nick`, `log`): as bare words they would swallow sentences.
    pub const fn slash_only(self) -> bool {
        matches!(self, Verb::Say | Verb::Me | Verb::Nick | Verb::Log)
    }

    /// The words that name this command without `/` in `grammar`: in scripts the name
    /// and the synonyms; at the chat prompt only the name (short synonyms would take
    /// ordinary sentences: "all good", "s o s"); none for a [`Verb::slash_only`] command.
    pub fn bare_words(self, grammar: Grammar) -> &'static [&'static str] {
        if self.slash_only() {
            return &[];
        }
        match grammar {
            Grammar::Commands => self.words(),
            Grammar::Chat => self.words().split_at(1).0,
        }
    }

    /// The name, then the synonyms: every word that names the command after a `/`.
    pub const fn words(self) -> &'static [&'static str] {
        match self {
            Verb::Connect => &["connect", "c", "open"],
            Verb::Send => &["send", "s", "msg"],
            Verb::Say => &["say"],
            Verb::Me => &["me"],
            Verb::Broadcast => &["broadcast", "b", "all"],
            Verb::Disconnect => &["disconnect", "d", "close"],
            Verb::SetAlias => &["set_alias", "alias"],
            Verb::Nick => &["nick"],
            Verb::List => &["list_connections", "list", "ls", "peers", "who"],
            Verb::Log => &["log"],
            Verb::Help => &["help", "h", "?"],
            Verb::Exit => &["exit", "quit", "q"],
        }
    }

    /// The command word of the seed programs (for the new commands, the word after `/`).
    pub const fn name(self) -> &'static str {
        self.words()[0]
    }

    /// The short words that mean the same.
    pub fn synonyms(self) -> &'static [&'static str] {
        self.words().split_at(1).1
    }

    /// How to type it, e.g. `connect <host> <port> [alias]`.
    pub const fn usage(self) -> &'static str {
        match self {
            Verb::Connect => "connect <host> <port> [alias]",
            Verb::Send => "send <alias|ip|#id> <message>",
            Verb::Say => "/say <message>",
            Verb::Me => "/me <action>",
            Verb::Broadcast => "broadcast <message>",
            Verb::Disconnect => "disconnect [<alias|ip|#id>]",
            Verb::SetAlias => "set_alias <alias|ip|#id> <alias>",
            Verb::Nick => "/nick <name>",
            Verb::List => "list_connections",
            Verb::Log => "/log [<file>]",
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
                 Also: /connect, /c, /open"
            }
            Verb::Send => {
                "send <alias|ip|#id> <message>\n  \
                 Send <message> to one peer, named by its alias, its IP address or its number\n  \
                 (#1, #2, ... as list_connections shows). A target that names no peer is an error.\n  \
                 Also: /send, /msg, /s"
            }
            Verb::Broadcast => {
                "broadcast <message>\n  \
                 Send <message> to every connected peer.\n  \
                 Also: /broadcast, /b, /all"
            }
            Verb::Say => {
                "/say <message>\n  \
                 Send <message> exactly as typed, even one that begins with '/' or with a\n  \
                 command word: to the room in mesh, to the peer in chat. At the prompt, a line\n  \
                 that is no command is sent the same way."
            }
            Verb::Me => {
                "/me <action>\n  \
                 Say what you do: '/me waves' sends '* yourname waves', like /say."
            }
            Verb::Nick => {
                "/nick <name>\n  \
                 Change the name peers see (1 to 32 ASCII letters, digits, '_', '.' or '-').\n  \
                 Connected meshtalk peers are told, and show it unless they named you themselves."
            }
            Verb::Log => {
                "/log [<file>]\n  \
                 Keep a transcript of what is said in <file> (appended, readable by you only)\n  \
                 from now on, as --log does; /log alone stops it."
            }
            Verb::Disconnect => {
                "disconnect [<alias|ip|#id>]\n  \
                 Close the connection to one peer. With only one peer, the target may be left out.\n  \
                 Also: /disconnect, /d, /close"
            }
            Verb::SetAlias => {
                "set_alias <alias|ip|#id> <alias>\n  \
                 Name a peer. An alias is 1 to 32 ASCII letters, digits, '_', '.' or '-'.\n  \
                 Also: /set_alias, /alias"
            }
            Verb::List => {
                "list_connections\n  \
                 List the peers with their numbers, addresses and aliases.\n  \
                 Also: /list_connections, /who, /list, /ls, /peers"
            }
            Verb::Help => {
                "help [<command>]\n  \
                 List the commands, or tell more about one.\n  \
                 Also: /help, /h, /?"
            }
            Verb::Exit => {
                "exit\n  \
                 Close every connection and quit.\n  \
                 Also: /exit, /quit, /q"
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
    /// An alias that [`validate_alias`] refuses.
    BadAlias {
        /// The alias as typed.
        alias: &'a str,
        /// What is wrong with it.
        error: AliasError,
    },
    /// A `/nick` name that [`validate_alias`] refuses (names and aliases are alike).
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

/// The error for an unknown command `word` (`typed` is the word without its `/`):
/// [`ParseError::Misspelt`] when one of the `words` of a verb is one edit away, else
/// [`ParseError::UnknownCommand`].
fn unknown<'a>(
    word: &'a str,
    typed: &str,
    slash: bool,
    words: impl Fn(Verb) -> &'static [&'static str],
) -> ParseError<'a> {
    match nearest(typed, NEAR_MIN, words) {
        Some((_, meant)) => ParseError::Misspelt {
            word,
            meant,
            slash,
            as_text: false,
        },
        None => ParseError::UnknownCommand(word),
    }
}

/// The first command word (of the `words` of each verb, in [`Verb::ALL`] order) one edit
/// from `typed`; words shorter than `min` characters, typed or known, are never near.
fn nearest(
    typed: &str,
    min: usize,
    words: impl Fn(Verb) -> &'static [&'static str],
) -> Option<(Verb, &'static str)> {
    if typed.chars().count() < min {
        return None;
    }
    Verb::ALL.into_iter().find_map(|verb| {
        words(verb)
            .iter()
            .find(|known| known.chars().count() >= min && one_edit(typed, known))
            .map(|known| (verb, *known))
    })
}

/// True when `a` becomes `b` by exactly one edit: a character added, dropped or
/// changed, or two neighbours swapped (`sned` for `send`).
pub fn one_edit(a: &str, b: &str) -> bool {
    let (mut x, mut y) = (a.chars(), b.chars());
    loop {
        let (from_x, from_y) = (x.as_str(), y.as_str());
        match (x.next(), y.next()) {
            (Some(p), Some(q)) if p == q => {}
            (None, None) => return false,
            (p, q) => {
                let (after_x, after_y) = (x.as_str(), y.as_str());
                let changed = p.is_some() && q.is_some() && after_x == after_y;
                let dropped = p.is_some() && after_x == from_y;
                let added = q.is_some() && from_x == after_y;
                let swapped = match (p, q) {
                    (Some(p), Some(q)) => {
                        let (mut xs, mut ys) = (x.clone(), y.clone());
                        xs.next() == Some(q) && ys.next() == Some(p) && xs.as_str() == ys.as_str()
                    }
                    _ => false,
                };
                return changed || dropped || added || swapped;
            }
        }
    }
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
