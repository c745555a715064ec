//! The command words: each verb with its seed word, synonyms, usage and help.

use super::Grammar;

/// The list of commands, one line each, shown by `help`.
pub const HELP: &str = "\
Commands (each also as /word, e.g. /connect; at the prompt a line that is no command is
a message to the room, and /say sends any line as it is):
  connect <host> <port> [alias]     open a connection to a peer (also: /c, /open)
  connect <name>                    open a connection to a node /nearby lists
  send <alias|ip|#id> <message>     send a message to one peer, or to a node heard in the room
                                    through the mesh (also: /msg, /s)
  broadcast <message>               send a message to every peer (also: /b, /all)
  disconnect [<alias|ip|#id>]       close a connection; with one peer the target may be left out (also: /d, /close)
  set_alias <alias|ip|#id> <alias>  give a peer a name (also: /alias)
  list_connections                  list the peers with their numbers, and the nodes reachable
                                    through the mesh (also: /who, /list, /ls, /peers)
  help [<command>]                  this list, or more on one command (also: /h, /?)
  exit                              close every connection and quit (also: /quit, /q)
  /say <message>                    send the text as it is, to the room
  /me <action>                      say what you do, shown as '* yourname <action>'
  /nick <name>                      change the name peers see (they are told)
  /log [<file>]                     keep a transcript in <file> from now on; alone, stop
  /nearby                           list the nodes LAN discovery heard
  /whoami                           show this node's key fingerprint and addresses, to give others
  /verify [<alias|ip|#id>]          show a peer's key fingerprint, to compare with its owner
  /trust <alias>                    accept the new key a known name came with (check it first)";

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
    /// `/nearby`: the nodes LAN discovery heard (the shell's list).
    Nearby,
    /// `/whoami`: this node's key fingerprint.
    Whoami,
    /// `/verify`: a peer's key fingerprint.
    Verify,
    /// `/trust`: accept a known name's new key.
    Trust,
    /// `help`: what each command does.
    Help,
    /// `exit`: leave every peer and stop.
    Exit,
}

impl Verb {
    /// Every verb, in the order `help` lists them.
    pub const ALL: [Verb; 16] = [
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
        Verb::Nearby,
        Verb::Whoami,
        Verb::Verify,
        Verb::Trust,
        Verb::Help,
        Verb::Exit,
    ];

    /// The verb a command word or synonym names, with or without its `/`
    /// (case-sensitive, as in the seeds).
    pub fn from_word(word: &str) -> Option<Verb> {
        Verb::named(word.strip_prefix('/').unwrap_or(word))
    }

    /// The verb whose name or synonym is exactly `word`.
    pub(super) fn named(word: &str) -> Option<Verb> {
        Verb::ALL
            .into_iter()
            .find(|verb| verb.name() == word || verb.synonyms().contains(&word))
    }

    /// True for the commands new to the prompt, which are typed only with `/`
    /// (`say`, `me`, `nick`, `log`, and the key commands): as bare words they
    /// would swallow sentences.
    pub const fn slash_only(self) -> bool {
        matches!(
            self,
            Verb::Say
                | Verb::Me
                | Verb::Nick
                | Verb::Log
                | Verb::Whoami
                | Verb::Verify
                | Verb::Trust
        )
    }

    /// The words that name this command without `/` in `grammar`: in scripts the name
    /// and the synonyms; at the chat prompt only the name (short synonyms would take
    /// ordinary sentences: "all good", "s o s"); none for a [`Verb::slash_only`] command,
    /// nor for `nearby` at the prompt (a word said to the room).
    pub fn bare_words(self, grammar: Grammar) -> &'static [&'static str] {
        if self.slash_only() {
            return &[];
        }
        match grammar {
            Grammar::Commands => self.words(),
            Grammar::Chat if self == Verb::Nearby => &[],
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
            Verb::Nearby => &["nearby"],
            Verb::Whoami => &["whoami"],
            Verb::Verify => &["verify"],
            Verb::Trust => &["trust"],
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
            Verb::Nearby => "/nearby",
            Verb::Whoami => "/whoami",
            Verb::Verify => "/verify [<alias|ip|#id>]",
            Verb::Trust => "/trust <alias>",
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
            Verb::Nearby => {
                "/nearby\n  \
                 List the nodes LAN discovery heard: name, addresses, whether in your room and\n  \
                 whether linked; connect <name> dials one. In a script also: nearby"
            }
            Verb::Whoami => {
                "/whoami\n  \
                 Show this node's key fingerprint (e.g. d2z5-kjdt-2t7a-2sbr): read it to the\n  \
                 people you chat with, who compare it with what /verify shows them."
            }
            Verb::Verify => {
                "/verify [<alias|ip|#id>]\n  \
                 Show a connected peer's key fingerprint, to compare with what its owner's\n  \
                 /whoami shows (by phone, in person): the same means no one is in between.\n  \
                 With one peer, the target may be left out."
            }
            Verb::Trust => {
                "/trust <alias>\n  \
                 A known name came back with another key and was refused: after checking the\n  \
                 new fingerprint with its owner, accept it (known_peers is updated), then\n  \
                 connect again."
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
