//! What the person just said, kept until the node tells where it went, so that the
//! screen shows it as a transcript would: `you -> bob: text`, `you (room): text`.
//! Who it went to is the node's to say (its `Sent` event names the peer); this keeps
//! only the text.

use meshtalk_core::command::Command;

/// A message command's text, owned (the line it came from is gone by the time its
/// `Sent` or `Broadcast` event is shown).
#[derive(Debug, PartialEq)]
pub enum Said {
    /// To one peer, the one the node's `Sent` event names.
    To(String),
    /// `broadcast`: to the room.
    Room(String),
}

impl Said {
    /// The message `command` says, if it says one, as the node sends it: a `send`'s
    /// words after its target, or in the two-peer chat (`single_peer`), where the
    /// node reads no target, the whole rest of the line.
    pub fn of(command: &Command<'_>, single_peer: bool) -> Option<Said> {
        match *command {
            Command::Send { all, .. } if single_peer => Some(Said::To(all.to_string())),
            Command::Send { text, .. } => Some(Said::To(text.to_string())),
            Command::Broadcast { text } => Some(Said::Room(text.to_string())),
            _ => None,
        }
    }

    /// The text said.
    pub fn text(&self) -> &str {
        match self {
            Said::To(text) | Said::Room(text) => text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshtalk_core::command;

    fn said(line: &str, single_peer: bool) -> Said {
        let command = command::parse(line).expect("parses").expect("a command");
        Said::of(&command, single_peer).expect("a message")
    }

    #[test]
    fn a_send_among_many_peers_says_the_words_after_its_target() {
        for line in [
            "send bob hi there",
            "send 10.0.0.2 hi there",
            "send #3 hi there",
        ] {
            assert_eq!(said(line, false), Said::To("hi there".into()), "{line}");
        }
    }

    #[test]
    fn in_the_two_peer_chat_the_whole_rest_is_the_text() {
        assert_eq!(said("send bob hi", true), Said::To("bob hi".into()));
        assert_eq!(said("send hi", true).text(), "hi");
    }

    #[test]
    fn a_broadcast_is_said_to_the_room() {
        assert_eq!(said("broadcast hi all", false), Said::Room("hi all".into()));
    }

    #[test]
    fn other_commands_say_nothing() {
        let list = command::parse("list").expect("parses").expect("a command");
        assert_eq!(Said::of(&list, false), None);
    }
}
