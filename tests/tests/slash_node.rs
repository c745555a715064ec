//! What the node does with the chat prompt's commands: a line said (`/say`, plain
//! text) goes to the room in a mesh and to the peer in a chat, `/me` says an action
//! under our name, `/nick` changes the name peers see and tells them.

use std::net::SocketAddr;

use meshtalk_core::command::{Command, EMOTE_MAX};
use meshtalk_core::node::{Config, Event, Handled, Input, NodeError};
use meshtalk_core::peers::PeerId;
use meshtalk_core::time::Instant;

use meshtalk_tests::harness::{Out, TestNode, command, receive};

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// Two native nodes, alice (a) and bob (b), joined by one connection whose bytes
/// are carried by hand.
struct Pair {
    a: TestNode,
    b: TestNode,
    a_to_b: PeerId,
    b_to_a: PeerId,
    a_events: Vec<Event<String>>,
    b_events: Vec<Event<String>>,
}

impl Pair {
    /// Alice dials bob; both are one-peer chats when `single_peer`.
    fn new(single_peer: bool) -> Pair {
        let config = |name: &str, id| {
            let mut config = Config::new(name, id).unwrap();
            config.single_peer = single_peer;
            config
        };
        let mut a = TestNode::new(config("alice", 1));
        let mut b = TestNode::new(config("bob", 2));
        let outs = command(&mut a, at(0), "connect 127.0.0.1 4000");
        let Some(Out::Connect(a_to_b, _, 4000)) = outs.first().cloned() else {
            panic!("no connect: {outs:?}")
        };
        let Handled::Accepted(b_to_a) = b
            .handle_input(at(0), Input::Accepted { addr: addr(5000) })
            .unwrap()
        else {
            panic!("not accepted")
        };
        let mut pair = Pair {
            a,
            b,
            a_to_b,
            b_to_a,
            a_events: vec![],
            b_events: vec![],
        };
        let connected = Input::Connected {
            peer: a_to_b,
            addr: addr(4000),
        };
        let outs = meshtalk_tests::harness::input(&mut pair.a, at(0), connected);
        pair.carry(outs, true);
        pair.a_events.clear();
        pair.b_events.clear();
        pair
    }

    /// Delivers `outs` (from alice if `from_a`) and everything they cause, until quiet.
    fn carry(&mut self, outs: Vec<Out>, from_a: bool) {
        let mut queue = vec![(outs, from_a)];
        while let Some((outs, from_a)) = queue.pop() {
            let (events, to, node) = if from_a {
                (&mut self.a_events, self.b_to_a, &mut self.b)
            } else {
                (&mut self.b_events, self.a_to_b, &mut self.a)
            };
            let mut bytes = Vec::new();
            for o in outs {
                match o {
                    Out::Tx(_, data) => bytes.extend(data),
                    Out::Ev(e) => events.push(e),
                    _ => {}
                }
            }
            if !bytes.is_empty() {
                queue.push((receive(node, at(0), to, &bytes), !from_a));
            }
        }
    }

    fn a_says(&mut self, line: &str) {
        let outs = command(&mut self.a, at(0), line);
        self.carry(outs, true);
    }

    fn b_says(&mut self, line: &str) {
        let outs = command(&mut self.b, at(0), line);
        self.carry(outs, false);
    }

    /// Bob's messages: (from, text, whether it came as a room message).
    fn bob_heard(&self) -> Vec<(String, String, bool)> {
        self.b_events
            .iter()
            .filter_map(|e| match e {
                Event::Message {
                    from, text, room, ..
                } => Some((from.clone(), text.clone(), room.is_some())),
                _ => None,
            })
            .collect()
    }

    /// The alias bob shows for alice.
    fn bobs_alias_for_alice(&self) -> String {
        let peer = self.b.peers().find(|p| p.id == self.b_to_a).unwrap();
        peer.alias.to_string()
    }
}

#[test]
fn a_line_said_in_a_mesh_is_a_room_message() {
    let mut pair = Pair::new(false);
    pair.a_says("/say hello all");
    assert_eq!(
        pair.bob_heard(),
        [("alice".to_string(), "hello all".to_string(), true)]
    );
}

#[test]
fn a_line_said_in_a_chat_is_a_message_to_the_peer() {
    let mut pair = Pair::new(true);
    pair.a_says("/say hello bob");
    assert_eq!(
        pair.bob_heard(),
        [("alice".to_string(), "hello bob".to_string(), false)]
    );
    assert!(
        pair.a_events
            .iter()
            .any(|e| matches!(e, Event::Delivered { .. })),
        "{:?}",
        pair.a_events
    );
}

#[test]
fn a_line_said_with_nobody_connected_is_refused() {
    let mut alone = TestNode::new(Config::new("alice", 1).unwrap());
    let said = alone.handle_input(at(0), Input::Command(Command::Say { text: "hi" }));
    assert_eq!(said, Err(NodeError::NoPeers));
}

#[test]
fn me_says_the_action_under_our_name_in_a_mesh_and_in_a_chat() {
    for single_peer in [false, true] {
        let mut pair = Pair::new(single_peer);
        pair.a_says("/me waves");
        assert_eq!(
            pair.bob_heard(),
            [(
                "alice".to_string(),
                "* alice waves".to_string(),
                !single_peer
            )]
        );
    }
}

#[test]
fn an_action_longer_than_the_emote_limit_is_refused_and_nothing_is_sent() {
    let mut pair = Pair::new(false);
    let action = "x".repeat(EMOTE_MAX);
    let said = pair
        .a
        .handle_input(at(0), Input::Command(Command::Me { action: &action }));
    assert!(
        matches!(said, Err(NodeError::TooLong { max: EMOTE_MAX, .. })),
        "{said:?}"
    );
    let (outs, _) = meshtalk_tests::harness::drain(&mut pair.a, at(0));
    assert!(
        !outs.iter().any(|o| matches!(o, Out::Tx(..))),
        "sent: {outs:?}"
    );
}

#[test]
fn a_nick_is_told_to_the_peer_which_shows_the_new_name_from_then_on() {
    let mut pair = Pair::new(false);
    assert_eq!(pair.bobs_alias_for_alice(), "alice");
    pair.a_says("/nick carl");
    assert_eq!(
        pair.b_events,
        [Event::Alias {
            peer: pair.b_to_a,
            alias: "carl".to_string()
        }]
    );
    assert_eq!(pair.bobs_alias_for_alice(), "carl");
    pair.a_says("broadcast hi");
    pair.a_says("send bob psst");
    assert_eq!(
        pair.bob_heard(),
        [
            ("carl".to_string(), "hi".to_string(), true),
            ("carl".to_string(), "psst".to_string(), false),
        ]
    );
}

#[test]
fn a_peer_named_by_a_person_keeps_that_name_after_a_nick() {
    let mut pair = Pair::new(false);
    pair.b_says("set_alias alice friend");
    pair.b_events.clear();
    pair.a_says("/nick carl");
    assert_eq!(pair.b_events, []);
    assert_eq!(pair.bobs_alias_for_alice(), "friend");
}

#[test]
fn the_same_name_again_is_no_news() {
    let mut pair = Pair::new(false);
    pair.a_says("/nick alice");
    assert_eq!(pair.b_events, []);
}

#[test]
fn a_nick_that_is_no_valid_name_is_refused_and_the_name_stays() {
    let mut pair = Pair::new(false);
    let nick = pair
        .a
        .handle_input(at(0), Input::Command(Command::Nick { name: "no way" }));
    assert!(nick.is_err(), "{nick:?}");
    assert_eq!(pair.a.config().name.as_str(), "alice");
}
