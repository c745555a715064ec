//! What the node does with the chat prompt's commands: a line said (`/say`, plain
//! text) goes to the room in a mesh and to the peer in a chat, `/me` says an action
//! under our name, `/nick` changes the name peers see and tells them.

use meshtalk_core::command::{Command, EMOTE_MAX};
use meshtalk_core::node::{Config, Event, Input, NodeError};
use meshtalk_core::time::Instant;

use meshtalk_tests::harness::{Out, Pair, TestNode};

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// Alice dials bob; both are one-peer chats when `single_peer`. The events of the
/// connecting are dropped: each test looks at what follows.
fn pair(single_peer: bool) -> Pair {
    let mut pair = Pair::connect(|name, id| {
        let mut config = Config::new(name, id).unwrap();
        config.single_peer = single_peer;
        config
    });
    pair.a_events.clear();
    pair.b_events.clear();
    pair
}

/// Bob's messages: (from, text, whether it came as a room message).
fn bob_heard(pair: &Pair) -> Vec<(String, String, bool)> {
    pair.b_events
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
fn bobs_alias_for_alice(pair: &Pair) -> String {
    let peer = pair.b.peers().find(|p| p.id == pair.b_to_a).unwrap();
    peer.alias.to_string()
}

#[test]
fn a_line_said_in_a_mesh_is_a_room_message() {
    let mut pair = pair(false);
    pair.a_says("/say hello all");
    assert_eq!(
        bob_heard(&pair),
        [("alice".to_string(), "hello all".to_string(), true)]
    );
}

#[test]
fn a_line_said_in_a_chat_is_a_message_to_the_peer() {
    let mut pair = pair(true);
    pair.a_says("/say hello bob");
    assert_eq!(
        bob_heard(&pair),
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
        let mut pair = pair(single_peer);
        pair.a_says("/me waves");
        assert_eq!(
            bob_heard(&pair),
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
    let mut pair = pair(false);
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
    let mut pair = pair(false);
    assert_eq!(bobs_alias_for_alice(&pair), "alice");
    pair.a_says("/nick carl");
    assert_eq!(
        pair.b_events,
        [Event::Alias {
            peer: pair.b_to_a,
            alias: "carl".to_string()
        }]
    );
    assert_eq!(bobs_alias_for_alice(&pair), "carl");
    pair.a_says("broadcast hi");
    pair.a_says("send bob psst");
    assert_eq!(
        bob_heard(&pair),
        [
            ("carl".to_string(), "hi".to_string(), true),
            ("carl".to_string(), "psst".to_string(), false),
        ]
    );
}

#[test]
fn a_peer_named_by_a_person_keeps_that_name_after_a_nick() {
    let mut pair = pair(false);
    pair.b_says("set_alias alice friend");
    pair.b_events.clear();
    pair.a_says("/nick carl");
    assert_eq!(pair.b_events, []);
    assert_eq!(bobs_alias_for_alice(&pair), "friend");
}

#[test]
fn the_same_name_again_is_no_news() {
    let mut pair = pair(false);
    pair.a_says("/nick alice");
    assert_eq!(pair.b_events, []);
}

#[test]
fn a_nick_that_is_no_valid_name_is_refused_and_the_name_stays() {
    let mut pair = pair(false);
    let nick = pair
        .a
        .handle_input(at(0), Input::Command(Command::Nick { name: "no way" }));
    assert!(nick.is_err(), "{nick:?}");
    assert_eq!(pair.a.config().name.as_str(), "alice");
}
