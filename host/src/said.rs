//! What the person just said, kept until the node tells where it went, so that the
//! screen shows it as a transcript would: `you -> bob: text`, `you (room): text`.

use meshtalk_core::command::{Command, Target};
use meshtalk_core::node::PeerInfo;

/// A message command as typed, owned (the line it came from is gone by the time its
/// `Sent` or `Broadcast` event is shown).
#[derive(Debug, PartialEq)]
pub enum Said {
    /// `send`: the node sends `text` to the named peer, else `all` to the only one.
    To {
        target: Option<Named>,
        text: String,
        all: String,
    },
    /// `broadcast`: the text, to the room.
    Room(String),
}

/// A target word as typed.
#[derive(Debug, PartialEq)]
pub enum Named {
    Id(u32),
    Name(String),
}

impl Said {
    /// The message `command` says, if it says one.
    pub fn of(command: &Command<'_>) -> Option<Said> {
        match *command {
            Command::Send { target, text, all } => Some(Said::To {
                target: target.map(|t| match t {
                    Target::Id(n) => Named::Id(n),
                    Target::Name(w) => Named::Name(w.to_string()),
                }),
                text: text.to_string(),
                all: all.to_string(),
            }),
            Command::Broadcast { text } => Some(Said::Room(text.to_string())),
            _ => None,
        }
    }

    /// The text the node sent to `peer`: as the node reads a `send`, the words after the
    /// target when the target names this peer (and they are not empty), else the whole
    /// rest of the line, which went to the only peer. `single_peer`: the two-peer chat,
    /// where the whole rest is the message.
    pub fn text_to(&self, peer: &PeerInfo<'_>, single_peer: bool) -> &str {
        match self {
            Said::Room(text) => text,
            Said::To { all, .. } if single_peer => all,
            Said::To { target, text, all } => {
                let named = match target {
                    Some(Named::Id(n)) => *n == peer.id.number(),
                    Some(Named::Name(word)) => {
                        word == peer.alias
                            || word
                                .parse::<std::net::IpAddr>()
                                .is_ok_and(|ip| peer.addr.is_some_and(|a| a.ip() == ip))
                    }
                    None => false,
                };
                if named && !text.is_empty() { text } else { all }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshtalk_core::command;
    use meshtalk_core::node::Phase;
    use meshtalk_core::peers::{Direction, PeerTable};

    fn said(line: &str) -> Said {
        let command = command::parse(line).expect("parses").expect("a command");
        Said::of(&command).expect("a message")
    }

    fn with_bob(check: impl FnOnce(&PeerInfo<'_>)) {
        let mut table = PeerTable::<(), 4>::new(4);
        let addr = "10.0.0.2:4000".parse().expect("an address");
        let id = table
            .insert(Some(addr), Direction::Inbound, None, ())
            .expect("room in the table");
        check(&PeerInfo {
            id,
            alias: "bob",
            addr: Some(addr),
            direction: Direction::Inbound,
            phase: Phase::Hello,
            unacked: 0,
        });
    }

    #[test]
    fn a_target_naming_the_peer_by_alias_ip_or_number_leaves_the_rest_as_the_text() {
        with_bob(|bob| {
            let number = format!("send #{} hi", bob.id.number());
            for line in ["send bob hi", "send 10.0.0.2 hi", number.as_str()] {
                assert_eq!(said(line).text_to(bob, false), "hi", "{line}");
            }
        });
    }

    #[test]
    fn a_first_word_naming_no_one_is_part_of_the_text_to_the_only_peer() {
        with_bob(|bob| {
            assert_eq!(said("send carol hi").text_to(bob, false), "carol hi");
            assert_eq!(said("send hi").text_to(bob, false), "hi");
        });
    }

    #[test]
    fn in_the_two_peer_chat_the_whole_rest_is_the_text() {
        with_bob(|bob| assert_eq!(said("send bob hi").text_to(bob, true), "bob hi"));
    }

    #[test]
    fn other_commands_say_nothing() {
        let list = command::parse("list").expect("parses").expect("a command");
        assert_eq!(Said::of(&list), None);
    }
}
