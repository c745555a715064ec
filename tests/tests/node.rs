//! The node's protocol rules, driven by plain function calls: banners, hello,
//! receipts, text peers, rooms, and what a small device's node costs in RAM.

use std::net::SocketAddr;

use meshtalk_core::command::{self, Command};
use meshtalk_core::frame::{Decoded, FrameDecoder};
use meshtalk_core::node::{
    BUSY, BUSY_SERVING, Config, Event, Fault, Handled, Input, Kind, Node, NodeError, Reason,
    Refusal, TextMode,
};
use meshtalk_core::peers::{LookupError, PeerId};
use meshtalk_core::time::{Duration, Instant};
use meshtalk_core::wire::{BannerError, Message};

use meshtalk_tests::harness::{
    Out, Pair, TestNode, command, drain, events, input, receive, sent_bytes,
};

fn node(name: &str, id: u64) -> TestNode {
    TestNode::new(Config::new(name, id).unwrap())
}

fn hub(name: &str, id: u64) -> TestNode {
    let mut config = Config::new(name, id).unwrap();
    config.hub = true;
    TestNode::new(config)
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn messages(outs: &[Out]) -> Vec<String> {
    events(outs)
        .into_iter()
        .filter_map(|e| match e {
            Event::Message { text, .. } => Some(text),
            _ => None,
        })
        .collect()
}

/// Alice dials bob, both with the default config.
fn pair() -> Pair {
    Pair::connect(|name, id| Config::new(name, id).unwrap())
}

#[test]
fn two_native_nodes_greet_and_each_learns_the_others_name() {
    let pair = pair();
    assert!(pair.a_events.iter().any(|e| matches!(e,
        Event::Connected { alias, kind: Kind::Native, .. } if alias == "bob")));
    assert!(pair.b_events.iter().any(|e| matches!(e,
        Event::Connected { alias, kind: Kind::Native, .. } if alias == "alice")));
}

#[test]
fn the_dialling_side_sends_only_its_banner_line_until_it_hears_one() {
    let mut a = node("alice", 1);
    let outs = command(&mut a, at(0), "connect example.org 4000");
    let Some(Out::Connect(peer, ..)) = outs.first().cloned() else {
        panic!()
    };
    let outs = input(
        &mut a,
        at(0),
        Input::Connected {
            entropy: [0; 32],
            peer,
            addr: addr(4000),
        },
    );
    assert_eq!(sent_bytes(&outs, peer), b"MESHTALK/1 alice\n");
}

#[test]
fn every_event_about_a_link_names_its_peer_and_a_room_count_names_none() {
    let mut pair = pair();
    pair.a_says("send bob hello");
    pair.a_says("broadcast hi all");
    let (bob, alice) = (pair.a_to_b, pair.b_to_a);
    let mut kinds = 0;
    for event in &pair.a_events {
        match event {
            Event::Broadcast { .. } => assert_eq!(event.peer(), None, "{event:?}"),
            _ => {
                assert_eq!(event.peer(), Some(bob), "{event:?}");
                kinds += 1;
            }
        }
    }
    assert!(
        kinds >= 3,
        "connected, sent and delivered: {:?}",
        pair.a_events
    );
    assert!(
        pair.a_events
            .iter()
            .any(|e| matches!(e, Event::Broadcast { .. }))
    );
    for event in &pair.b_events {
        assert_eq!(event.peer(), Some(alice), "{event:?}");
    }
}

#[test]
fn a_chat_message_is_delivered_and_its_receipt_comes_back() {
    let mut pair = pair();
    pair.a_says("send bob hello there");
    assert!(
        pair.b_events.iter().any(|e| matches!(e,
        Event::Message { from, text, room: None, .. } if from == "alice" && text == "hello there"))
    );
    assert!(pair.a_events.iter().any(|e| matches!(
        e,
        Event::Sent {
            id: 1,
            receipt: true,
            ..
        }
    )));
    assert!(
        pair.a_events
            .iter()
            .any(|e| matches!(e, Event::Delivered { id: 1, .. }))
    );
}

#[test]
fn in_a_many_peer_node_a_send_whose_first_word_names_no_peer_is_an_error_and_sends_nothing() {
    let mut pair = pair();
    for line in [
        "send hello there",
        "send carol can you hear me?",
        "send hello",
        "send bob ",
    ] {
        let cmd = command::parse(line).unwrap().unwrap();
        let result = pair.a.handle_input(at(0), Input::Command(cmd));
        assert!(result.is_err(), "{line}: {result:?}");
        let (outs, _) = drain(&mut pair.a, at(0));
        assert!(
            !outs.iter().any(|o| matches!(o, Out::Tx(..))),
            "{line}: {outs:?}"
        );
    }
    let cmd = command::parse("send carol hi").unwrap().unwrap();
    assert_eq!(
        pair.a.handle_input(at(0), Input::Command(cmd)),
        Err(NodeError::Lookup(LookupError::NoSuchName("carol")))
    );
    let cmd = command::parse("send hello").unwrap().unwrap();
    assert_eq!(
        pair.a.handle_input(at(0), Input::Command(cmd)),
        Err(NodeError::SendNeedsTarget)
    );
}

#[test]
fn messages_awaiting_a_receipt_are_reported_undelivered_when_the_link_drops() {
    let mut pair = pair();
    let a_to_b = pair.a_to_b;
    command(&mut pair.a, at(0), "send bob one");
    command(&mut pair.a, at(0), "send bob two");
    let outs = input(
        &mut pair.a,
        at(0),
        Input::Closed {
            peer: a_to_b,
            error: Some("reset"),
        },
    );
    let undelivered: Vec<u32> = events(&outs)
        .iter()
        .filter_map(|e| match e {
            Event::Undelivered { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(undelivered, vec![1, 2]);
    assert!(events(&outs).iter().any(|e| matches!(e,
        Event::Disconnected { reason: Reason::Lost(why), .. } if why == "reset")));
}

#[test]
fn a_full_receipt_window_refuses_the_next_send_with_a_clear_error() {
    let mut pair = pair();
    for n in 0..meshtalk_core::node::WINDOW {
        command(&mut pair.a, at(0), &format!("send bob m{n}"));
    }
    let cmd = command::parse("send bob one more").unwrap().unwrap();
    let err = pair.a.handle_input(at(0), Input::Command(cmd)).unwrap_err();
    assert!(matches!(err, NodeError::WindowFull(_)));
    assert!(err.to_string().contains("await their receipt"));
}

#[test]
fn a_message_over_the_limit_is_refused_and_nothing_is_sent() {
    let mut pair = pair();
    let long = format!("send bob {}", "x".repeat(TestNode::MAX_TEXT + 1));
    let cmd = command::parse(&long).unwrap().unwrap();
    let err = pair.a.handle_input(at(0), Input::Command(cmd)).unwrap_err();
    assert_eq!(
        err,
        NodeError::TooLong {
            len: TestNode::MAX_TEXT + 1,
            max: TestNode::MAX_TEXT
        }
    );
    assert!(drain(&mut pair.a, at(0)).0.is_empty());
}

#[test]
fn disconnect_says_goodbye_and_the_other_side_learns_why() {
    let mut pair = pair();
    pair.a_says("disconnect bob");
    assert!(pair.a_events.iter().any(|e| matches!(
        e,
        Event::Disconnected {
            reason: Reason::Local,
            ..
        }
    )));
    assert!(pair.b_events.iter().any(|e| matches!(e,
        Event::Disconnected { reason: Reason::Bye(why), .. } if why == "disconnected")));
}

#[test]
fn a_dial_that_completes_after_its_peer_was_disconnected_is_closed() {
    let mut a = node("alice", 1);
    let outs = command(&mut a, at(0), "connect 127.0.0.1 4000");
    let Some(Out::Connect(peer, ..)) = outs.first().cloned() else {
        panic!()
    };
    let outs = command(&mut a, at(1), &format!("disconnect #{}", peer.number()));
    assert!(outs.contains(&Out::Close(peer)));
    let outs = input(
        &mut a,
        at(2),
        Input::Connected {
            entropy: [0; 32],
            peer,
            addr: addr(4000),
        },
    );
    assert_eq!(outs, [Out::Close(peer)]);
}

/// Dials `to` from `from` by hand: the dialler's peer, the acceptor's, and the banner sent.
fn dial(from: &mut TestNode, to: &mut TestNode, port: u16) -> (PeerId, PeerId, Vec<u8>) {
    let outs = command(from, at(0), &format!("connect 127.0.0.1 {port}"));
    let Some(Out::Connect(out, ..)) = outs.first().cloned() else {
        panic!("no connect: {outs:?}")
    };
    let inbound = accept(to);
    let outs = input(
        from,
        at(0),
        Input::Connected {
            entropy: [0; 32],
            peer: out,
            addr: addr(port),
        },
    );
    (out, inbound, sent_bytes(&outs, out))
}

#[test]
fn when_both_nodes_dial_at_once_the_lower_id_decides_and_the_other_end_follows_its_choice() {
    // alice (id 1) decides. Each end sees a different link ready first: bob the one he
    // dialled (x), alice the one she dialled (y). alice keeps y and closes x; bob, who
    // waits on y, hears from alice on y before her goodbye on x arrives.
    let mut alice = node("alice", 1);
    let mut bob = node("bob", 2);
    let (x_bob, x_alice, banner_x) = dial(&mut bob, &mut alice, 4000);
    let (y_alice, y_bob, banner_y) = dial(&mut alice, &mut bob, 5000);
    let to_bob_x = sent_bytes(&receive(&mut alice, at(1), x_alice, &banner_x), x_alice);
    let to_alice_y = sent_bytes(&receive(&mut bob, at(1), y_bob, &banner_y), y_bob);
    let outs = receive(&mut bob, at(2), x_bob, &to_bob_x);
    let hello_x = sent_bytes(&outs, x_bob);
    let mut bob_events = events(&outs);
    let outs = receive(&mut alice, at(2), y_alice, &to_alice_y);
    let hello_y = sent_bytes(&outs, y_alice);
    // alice: y is ready; x's hello makes x the second link, and she closes it.
    let outs = receive(&mut alice, at(3), x_alice, &hello_x);
    assert!(outs.contains(&Out::Close(x_alice)), "{outs:?}");
    let bye_x = sent_bytes(&outs, x_alice);
    // bob: x is ready; y's hello makes y wait for alice's choice.
    bob_events.extend(events(&receive(&mut bob, at(3), y_bob, &hello_y)));
    assert!(
        !bob_events
            .iter()
            .any(|e| matches!(e, Event::Connected { peer, .. } if *peer == y_bob)),
        "{bob_events:?}"
    );
    // alice talks on y: bob takes y as the link, drops x, and reads the message.
    let outs = command(&mut alice, at(4), "send bob hi");
    let chat = sent_bytes(&outs, y_alice);
    assert!(!chat.is_empty(), "{outs:?}");
    let outs = receive(&mut bob, at(4), y_bob, &chat);
    bob_events.extend(events(&outs));
    bob_events.extend(events(&receive(&mut bob, at(5), x_bob, &bye_x)));
    let connected = bob_events.iter().position(
        |e| matches!(e, Event::Connected { peer, alias, .. } if *peer == y_bob && alias == "alice"),
    );
    let message = bob_events.iter().position(
        |e| matches!(e, Event::Message { peer, text, .. } if *peer == y_bob && text == "hi"),
    );
    assert!(connected.is_some() && connected < message, "{bob_events:?}");
    assert!(bob_events.iter().any(|e| matches!(e,
        Event::Disconnected { peer, .. } if *peer == x_bob)));
    assert!(!bob_events.iter().any(|e| matches!(
        e,
        Event::Disconnected {
            reason: Reason::Fault(_),
            ..
        }
    )));
    let peers: Vec<_> = bob.peers().map(|p| (p.id, p.alias.to_string())).collect();
    assert_eq!(peers, [(y_bob, "alice".to_string())]);
    assert!(
        !sent_bytes(&outs, y_bob).is_empty(),
        "the chat is acknowledged"
    );
}

#[test]
fn disconnect_without_a_target_among_two_peers_asks_which_with_the_disconnect_usage() {
    let mut b = node("bob", 2);
    for _ in 0..2 {
        let peer = accept(&mut b);
        receive(&mut b, at(0), peer, b"hi\n");
    }
    let cmd = command::parse("disconnect").unwrap().unwrap();
    let e = b.handle_input(at(1), Input::Command(cmd)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "2 peers are connected; say which: disconnect <alias|ip|#id>"
    );
}

#[test]
fn a_repeated_connect_by_the_higher_node_id_is_closed_and_the_live_link_keeps_its_alias() {
    let mut pair = pair();
    // bob (id 2) renames alice, then dials her again; alice (id 1) decides.
    let outs = command(&mut pair.b, at(1), "set_alias alice ally");
    pair.carry(outs, false);
    let mut bob = std::mem::replace(&mut pair.b, node("x", 9));
    let (second, inbound, banner) = dial(&mut bob, &mut pair.a, 6000);
    let back = sent_bytes(&receive(&mut pair.a, at(1), inbound, &banner), inbound);
    let outs = receive(&mut bob, at(1), second, &back);
    let mut bob_events = events(&outs);
    let hello = sent_bytes(&outs, second);
    let outs = receive(&mut pair.a, at(1), inbound, &hello);
    assert!(outs.contains(&Out::Close(inbound)), "{outs:?}");
    let bye = sent_bytes(&outs, inbound);
    bob_events.extend(events(&receive(&mut bob, at(2), second, &bye)));
    let gone = bob_events
        .iter()
        .find_map(|e| match e {
            Event::Disconnected { peer, reason, .. } if *peer == second => Some(reason.to_string()),
            _ => None,
        })
        .expect("the second link closed");
    assert_eq!(gone, format!("already connected to ally ({})", pair.b_to_a));
    let peers: Vec<_> = bob.peers().map(|p| (p.id, p.alias.to_string())).collect();
    assert_eq!(peers, [(pair.b_to_a, "ally".to_string())]);
}

#[test]
fn a_second_link_to_the_same_node_is_closed_on_both_sides_and_the_first_kept() {
    let mut pair = pair();
    let outs = command(&mut pair.a, at(1), "connect 127.0.0.1 4000");
    let Some(Out::Connect(second, ..)) = outs.first().cloned() else {
        panic!()
    };
    let inbound = accept(&mut pair.b);
    let mut to_b = sent_bytes(
        &input(
            &mut pair.a,
            at(1),
            Input::Connected {
                entropy: [0; 32],
                peer: second,
                addr: addr(4000),
            },
        ),
        second,
    );
    let (mut a_events, mut b_events) = (Vec::new(), Vec::new());
    for _ in 0..10 {
        let outs = receive(&mut pair.b, at(1), inbound, &to_b);
        b_events.extend(events(&outs));
        let back = sent_bytes(&outs, inbound);
        if back.is_empty() {
            break;
        }
        let outs = receive(&mut pair.a, at(1), second, &back);
        a_events.extend(events(&outs));
        to_b = sent_bytes(&outs, second);
    }
    let first = (pair.a_to_b, pair.b_to_a);
    assert!(
        a_events.iter().any(|e| matches!(e,
        Event::Disconnected { peer, reason: Reason::Duplicate { keep: kept, .. }, .. }
            if *peer == second && *kept == first.0)),
        "{a_events:?}"
    );
    assert!(
        b_events.iter().any(|e| matches!(e,
        Event::Disconnected { peer, .. } if *peer == inbound)),
        "{b_events:?}"
    );
    assert!(
        !a_events
            .iter()
            .chain(&b_events)
            .any(|e| matches!(e, Event::Connected { .. }))
    );
    assert_eq!(pair.a.peers().count(), 1);
    pair.a_says("send bob still here");
    assert!(pair.b_events.iter().any(|e| matches!(e,
        Event::Message { text, .. } if text == "still here")));
}

#[test]
fn a_connection_back_to_the_same_node_is_refused() {
    let mut a = node("alice", 1);
    let mut b = node("alice2", 1);
    let outs = command(&mut a, at(0), "connect 127.0.0.1 4000");
    let Some(Out::Connect(peer, ..)) = outs.first().cloned() else {
        panic!()
    };
    let Handled::Accepted(inbound) = b
        .handle_input(
            at(0),
            Input::Accepted {
                addr: addr(5000),
                entropy: [0; 32],
            },
        )
        .unwrap()
    else {
        panic!()
    };
    let banner = sent_bytes(
        &input(
            &mut a,
            at(0),
            Input::Connected {
                entropy: [0; 32],
                peer,
                addr: addr(4000),
            },
        ),
        peer,
    );
    let reply = sent_bytes(&receive(&mut b, at(0), inbound, &banner), inbound);
    let outs = receive(&mut a, at(0), peer, &reply);
    assert!(events(&outs).iter().any(|e| matches!(
        e,
        Event::Disconnected {
            reason: Reason::Fault(Fault::Itself),
            ..
        }
    )));
}

#[test]
fn a_banner_with_another_major_version_is_refused_with_both_versions_named() {
    let mut b = node("bob", 2);
    let Handled::Accepted(peer) = b
        .handle_input(
            at(0),
            Input::Accepted {
                addr: addr(5000),
                entropy: [0; 32],
            },
        )
        .unwrap()
    else {
        panic!()
    };
    let outs = receive(&mut b, at(0), peer, b"MESHTALK/2 XX\n");
    let reason = events(&outs)
        .into_iter()
        .find_map(|e| match e {
            Event::Disconnected { reason, .. } => Some(reason),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        reason,
        Reason::Fault(Fault::Banner(BannerError::Version { major: 2, ours: 1 }))
    );
    let shown = reason.to_string();
    assert!(
        shown.contains("MESHTALK/2") && shown.contains("MESHTALK/1"),
        "{shown}"
    );
    assert!(outs.contains(&Out::Close(peer)));
}

#[test]
fn a_banner_with_no_hello_after_it_is_dropped_at_the_banner_timeout() {
    let mut b = node("bob", 2);
    let peer = accept(&mut b);
    receive(&mut b, at(0), peer, b"MESHTALK/1 mute\n");
    let outs = input(&mut b, at(1999), Input::Timeout { held: &[] });
    assert!(events(&outs).is_empty());
    let (_, wake) = drain(&mut b, at(1999));
    assert_eq!(wake, Some(at(2000)));
    let outs = input(&mut b, at(2000), Input::Timeout { held: &[] });
    assert!(events(&outs).iter().any(|e| matches!(
        e,
        Event::Disconnected {
            reason: Reason::Fault(Fault::HelloMissing),
            ..
        }
    )));
}

#[test]
fn a_goodbye_before_hello_is_taken_as_a_goodbye() {
    let mut b = node("bob", 2);
    let peer = accept(&mut b);
    let mut stream = b"MESHTALK/1 busy\n".to_vec();
    let mut buf = [0u8; 64];
    let n = Message::Bye {
        reason: "in a chat already",
    }
    .encode_frame(&mut buf)
    .unwrap();
    stream.extend_from_slice(&buf[..n]);
    let outs = receive(&mut b, at(0), peer, &stream);
    assert!(events(&outs).iter().any(|e| matches!(e,
        Event::Disconnected { reason: Reason::Bye(why), .. } if why == "in a chat already")));
}

// ---- text peers ----

fn accept(node: &mut TestNode) -> PeerId {
    match node
        .handle_input(
            at(0),
            Input::Accepted {
                addr: addr(6000),
                entropy: [0; 32],
            },
        )
        .unwrap()
    {
        Handled::Accepted(peer) => peer,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_peer_whose_first_bytes_cannot_begin_a_banner_is_a_text_peer_at_once() {
    let mut b = node("bob", 2);
    let peer = accept(&mut b);
    let outs = receive(&mut b, at(0), peer, b"hi");
    assert!(events(&outs).iter().any(|e| matches!(
        e,
        Event::Connected {
            kind: Kind::Text(_),
            ..
        }
    )));
    assert!(
        sent_bytes(&outs, peer).is_empty(),
        "a text client never sees protocol bytes"
    );
}

#[test]
fn each_line_from_a_text_peer_is_one_message() {
    let mut b = node("bob", 2);
    let peer = accept(&mut b);
    let outs = receive(&mut b, at(0), peer, b"one\r\ntwo\nthr");
    assert_eq!(messages(&outs), ["one", "two"]);
    let outs = receive(&mut b, at(10), peer, b"ee\n");
    assert_eq!(messages(&outs), ["three"]);
}

#[test]
fn an_empty_line_from_a_text_peer_is_no_message() {
    let mut b = node("bob", 2);
    let peer = accept(&mut b);
    let outs = receive(&mut b, at(0), peer, b"\n\r\none\n\n");
    assert_eq!(messages(&outs), ["one"]);
}

#[test]
fn text_without_a_newline_becomes_a_message_after_100_ms_idle() {
    let mut b = node("bob", 2);
    let peer = accept(&mut b);
    let outs = receive(&mut b, at(0), peer, b"bare text");
    assert!(messages(&outs).is_empty());
    let (_, wake) = drain(&mut b, at(0));
    assert_eq!(wake, Some(at(100)));
    let outs = input(&mut b, at(100), Input::Timeout { held: &[] });
    assert_eq!(messages(&outs), ["bare text"]);
}

#[test]
fn once_a_text_peer_has_sent_a_line_a_pause_mid_line_does_not_cut_it() {
    let mut b = node("bob", 2);
    let peer = accept(&mut b);
    receive(&mut b, at(0), peer, b"first\nsec");
    let outs = input(&mut b, at(1000), Input::Timeout { held: &[] });
    assert!(messages(&outs).is_empty());
    let outs = receive(&mut b, at(1001), peer, b"ond\n");
    assert_eq!(messages(&outs), ["second"]);
}

#[test]
fn a_text_peer_is_answered_the_way_it_speaks() {
    let mut b = node("bob", 2);
    let liner = accept(&mut b);
    receive(&mut b, at(0), liner, b"hello\n");
    let outs = command(&mut b, at(1), &format!("send #{} hi", liner.number()));
    assert_eq!(sent_bytes(&outs, liner), b"hi\n");

    let bare = accept(&mut b);
    receive(&mut b, at(0), bare, b"hello");
    input(&mut b, at(100), Input::Timeout { held: &[] });
    let outs = command(&mut b, at(101), &format!("send #{} hi", bare.number()));
    assert_eq!(sent_bytes(&outs, bare), b"hi");
    assert!(
        events(&outs)
            .iter()
            .any(|e| matches!(e, Event::Sent { receipt: false, .. }))
    );
}

#[test]
fn a_dialled_peer_that_stays_silent_becomes_a_bare_text_peer_after_500_ms() {
    let mut a = node("alice", 1);
    let outs = command(&mut a, at(0), "connect 127.0.0.1 4000");
    let Some(Out::Connect(peer, ..)) = outs.first().cloned() else {
        panic!()
    };
    let _ = input(
        &mut a,
        at(0),
        Input::Connected {
            entropy: [0; 32],
            peer,
            addr: addr(4000),
        },
    );
    let (_, wake) = drain(&mut a, at(0));
    assert_eq!(wake, Some(at(500)));
    let outs = input(&mut a, at(500), Input::Timeout { held: &[] });
    assert!(events(&outs).iter().any(|e| matches!(
        e,
        Event::Connected {
            kind: Kind::Text(TextMode::Bare),
            ..
        }
    )));
    let outs = command(&mut a, at(600), &format!("send #{} quit", peer.number()));
    assert_eq!(sent_bytes(&outs, peer), b"quit");
}

#[test]
fn a_silent_peer_whose_banner_comes_late_is_still_a_native_peer() {
    let mut b = node("bob", 2);
    let peer = accept(&mut b);
    let outs = input(&mut b, at(500), Input::Timeout { held: &[] });
    assert!(events(&outs).iter().any(|e| matches!(
        e,
        Event::Connected {
            kind: Kind::Text(_),
            ..
        }
    )));
    // A loaded machine: the banner arrives after the greeting time.
    let outs = receive(&mut b, at(900), peer, b"MESHTALK/1 carol\n");
    assert!(sent_bytes(&outs, peer).starts_with(b"MESHTALK/1 bob\n"));
    let mut buf = [0u8; 64];
    let n = Message::Hello {
        minor: 1,
        node: 3,
        name: "carol",
    }
    .encode_frame(&mut buf)
    .unwrap();
    let outs = receive(&mut b, at(901), peer, &buf[..n]);
    assert!(events(&outs).iter().any(|e| matches!(e,
        Event::Connected { kind: Kind::Native, alias, .. } if alias == "carol")));
}

#[test]
fn a_silent_peer_that_then_speaks_text_is_announced_once() {
    let mut b = node("bob", 2);
    let peer = accept(&mut b);
    let mut outs = input(&mut b, at(500), Input::Timeout { held: &[] });
    outs.extend(receive(&mut b, at(900), peer, b"hello\n"));
    let connected = events(&outs)
        .iter()
        .filter(|e| matches!(e, Event::Connected { .. }))
        .count();
    assert_eq!(connected, 1);
    assert_eq!(messages(&outs), ["hello"]);
}

#[test]
fn a_line_longer_than_a_message_is_split_at_the_limit() {
    let mut b = node("bob", 2);
    let peer = accept(&mut b);
    let long = "é".repeat(TestNode::MAX_TEXT); // 2 bytes each: twice the limit
    let outs = receive(&mut b, at(0), peer, format!("{long}\n").as_bytes());
    let got = messages(&outs);
    assert!(got.len() >= 2);
    assert!(got.iter().all(|m| m.len() <= TestNode::MAX_TEXT));
    assert_eq!(got.concat(), long, "nothing lost, no character cut");
}

#[test]
fn invalid_utf8_from_a_text_peer_is_replaced_not_dropped() {
    let mut b = node("bob", 2);
    let peer = accept(&mut b);
    let outs = receive(&mut b, at(0), peer, b"a\xffb\n");
    assert_eq!(messages(&outs), ["a\u{fffd}b"]);
}

#[test]
fn pending_bare_text_is_delivered_when_the_text_peer_closes() {
    let mut b = node("bob", 2);
    let peer = accept(&mut b);
    receive(&mut b, at(0), peer, b"last words");
    let outs = input(&mut b, at(1), Input::Closed { peer, error: None });
    assert_eq!(messages(&outs), ["last words"]);
}

#[test]
fn a_hub_relays_a_text_peers_line_to_the_other_text_peers_with_its_name() {
    let mut h = hub("hub", 3);
    let first = accept(&mut h);
    let second = accept(&mut h);
    receive(&mut h, at(0), second, b"hey\n");
    input(
        &mut h,
        at(0),
        Input::Command(Command::SetAlias {
            target: command::Target::Id(first.number()),
            alias: "ann",
        }),
    );
    let outs = receive(&mut h, at(1), first, b"hello all\n");
    // After the notice that it joined (under the alias it was given meanwhile).
    assert_eq!(
        sent_bytes(&outs, second),
        b"* ann joined\n<ann> hello all\n"
    );
    let to_first = String::from_utf8_lossy(&sent_bytes(&outs, first)).into_owned();
    assert!(!to_first.contains("hello all"), "no echo to the sender");
}

#[test]
fn a_hub_relays_to_a_peer_ready_since_its_last_relay_and_not_to_one_gone_since() {
    let mut h = hub("hub", 3);
    let first = accept(&mut h);
    let second = accept(&mut h);
    receive(&mut h, at(0), second, b"hey\n");
    receive(&mut h, at(1), first, b"one\n");
    let third = accept(&mut h);
    receive(&mut h, at(2), third, b"yo\n");
    input(
        &mut h,
        at(3),
        Input::Closed {
            peer: second,
            error: None,
        },
    );
    let outs = receive(&mut h, at(4), first, b"two\n");
    assert!(
        sent_bytes(&outs, third).ends_with(b" two\n"),
        "the newcomer gets the room's next message"
    );
    assert!(
        sent_bytes(&outs, second).is_empty(),
        "the gone peer gets nothing"
    );
}

#[test]
fn without_hub_a_text_peers_line_goes_nowhere_else() {
    let mut b = node("bob", 2);
    let first = accept(&mut b);
    let second = accept(&mut b);
    receive(&mut b, at(0), second, b"hey\n");
    let outs = receive(&mut b, at(1), first, b"hello all\n");
    assert!(sent_bytes(&outs, second).is_empty());
}

// ---- the two-peer chat ----

fn chat(name: &str, id: u64) -> TestNode {
    let mut config = Config::new(name, id).unwrap();
    config.single_peer = true;
    TestNode::new(config)
}

#[test]
fn a_one_peer_node_tells_a_second_text_peer_it_is_busy_and_closes() {
    let mut b = chat("bob", 2);
    let first = accept(&mut b);
    receive(&mut b, at(0), first, b"hi\n");
    let second = accept(&mut b);
    let outs = receive(&mut b, at(1), second, b"me too\n");
    assert_eq!(
        sent_bytes(&outs, second),
        format!("meshtalk: {BUSY}\n").as_bytes()
    );
    assert!(outs.contains(&Out::Close(second)));
    assert!(
        events(&outs)
            .iter()
            .any(|e| matches!(e, Event::Refused { .. }))
    );
    assert!(
        messages(&outs).is_empty(),
        "the newcomer's text is not shown"
    );
    let outs = command(&mut b, at(2), "send still here");
    assert_eq!(sent_bytes(&outs, first), b"still here\n");
}

#[test]
fn a_one_peer_node_tells_a_second_silent_peer_it_is_busy_when_the_greeting_time_is_up() {
    let mut b = chat("bob", 2);
    let first = accept(&mut b);
    receive(&mut b, at(0), first, b"hi\n");
    let second = accept(&mut b);
    let outs = input(&mut b, at(500), Input::Timeout { held: &[] });
    assert_eq!(
        sent_bytes(&outs, second),
        format!("meshtalk: {BUSY}\n").as_bytes()
    );
    assert!(outs.contains(&Out::Close(second)));
}

#[test]
fn a_one_peer_server_tells_a_second_client_it_is_serving_another_not_in_a_chat() {
    let mut config = Config::new("srv", 2).unwrap();
    config.single_peer = true;
    config.serving = true;
    let mut b = TestNode::new(config);
    let first = accept(&mut b);
    receive(&mut b, at(0), first, b"hi\n");
    let second = accept(&mut b);
    let outs = receive(&mut b, at(1), second, b"hello\n");
    assert_eq!(
        sent_bytes(&outs, second),
        format!("meshtalk: {BUSY_SERVING}\n").as_bytes()
    );
    assert!(!BUSY_SERVING.contains("chat"));
    assert!(events(&outs).iter().any(|e| matches!(
        e,
        Event::Refused {
            why: Refusal::Serving,
            ..
        }
    )));
}

#[test]
fn a_one_peer_node_answers_a_second_native_peer_with_a_goodbye() {
    let mut b = chat("bob", 2);
    let first = accept(&mut b);
    receive(&mut b, at(0), first, b"hi\n");
    let second = accept(&mut b);
    let outs = receive(&mut b, at(1), second, b"MESHTALK/1 carol\n");
    assert_eq!(sent_bytes(&outs, second), b"MESHTALK/1 bob\n");
    // Its hello says minor version 1, which knows no typed refusal: words in a goodbye.
    let mut buf = [0u8; 128];
    let n = Message::Hello {
        minor: 1,
        node: 3,
        name: "carol",
    }
    .encode_frame(&mut buf)
    .unwrap();
    let outs = receive(&mut b, at(1), second, &buf[..n]);
    let n = Message::Bye { reason: BUSY }
        .encode_frame(&mut buf)
        .unwrap();
    assert_eq!(sent_bytes(&outs, second), &buf[..n]);
    assert!(outs.contains(&Out::Close(second)));
}

/// `from` dials the busy one-peer node `to` and both talk until nothing moves;
/// what `from` showed.
fn dial_busy(from: &mut TestNode, to: &mut TestNode) -> Vec<Event<String>> {
    let first = accept(to);
    receive(to, at(0), first, b"hi\n");
    let (out, inbound, mut to_b) = dial(from, to, 4000);
    let mut shown = Vec::new();
    for _ in 0..4 {
        let to_a = sent_bytes(&receive(to, at(1), inbound, &to_b), inbound);
        let outs = receive(from, at(1), out, &to_a);
        shown.extend(events(&outs));
        to_b = sent_bytes(&outs, out);
    }
    shown
}

#[test]
fn a_node_refused_as_busy_is_told_so_typed_and_does_not_dial_it_again() {
    let mut d = reconnecting_node();
    let mut b = chat("bob", 2);
    let shown = dial_busy(&mut d, &mut b);
    assert!(
        shown.iter().any(|e| matches!(
            e,
            Event::Disconnected {
                reason: Reason::Refused(Refusal::Busy),
                ..
            }
        )),
        "{shown:?}"
    );
    assert!(
        !shown.iter().any(|e| matches!(e, Event::Connected { .. })),
        "a refused link never was a peer: {shown:?}"
    );
    assert_eq!(d.peers().count(), 0, "not kept to be dialled again");
}

/// A frame of `msg`.
fn frame_of(msg: Message<'_>) -> Vec<u8> {
    let mut buf = [0u8; 256];
    let n = msg.encode_frame(&mut buf).unwrap();
    buf[..n].to_vec()
}

#[test]
fn an_older_nodes_busy_goodbye_before_the_hello_reads_as_the_typed_refusal() {
    for (reason, why) in [(BUSY, Refusal::Busy), (BUSY_SERVING, Refusal::Serving)] {
        let mut d = reconnecting_node();
        let (peer, _, _) = dial(&mut d, &mut node("bob", 2), 4000);
        receive(&mut d, at(1), peer, b"MESHTALK/1 bob\n");
        let outs = receive(&mut d, at(1), peer, &frame_of(Message::Bye { reason }));
        let gone = events(&outs).into_iter().find_map(|e| match e {
            Event::Disconnected { reason, .. } => Some(reason),
            _ => None,
        });
        assert_eq!(gone, Some(Reason::Refused(why)), "{reason}");
        assert_eq!(d.peers().count(), 0, "not kept to be dialled again");
    }
}

#[test]
fn a_busy_worded_goodbye_after_the_hello_is_a_goodbye_and_is_dialled_again() {
    for reason in [BUSY, BUSY_SERVING] {
        let mut d = reconnecting_node();
        let mut c = node("carol", 5);
        let peer = linked(&mut d, &mut c);
        let outs = receive(&mut d, at(1), peer, &frame_of(Message::Bye { reason }));
        let gone = events(&outs).into_iter().find_map(|e| match e {
            Event::Disconnected { reason, .. } => Some(reason),
            _ => None,
        });
        assert_eq!(gone, Some(Reason::Bye(reason.to_string())));
        assert_eq!(d.peers().count(), 1, "kept to be dialled again");
    }
}

#[test]
fn a_message_before_the_hello_is_a_protocol_error() {
    let mut d = node("dave", 4);
    let (peer, _, _) = dial(&mut d, &mut node("bob", 2), 4000);
    receive(&mut d, at(1), peer, b"MESHTALK/1 bob\n");
    let chat = frame_of(Message::Chat {
        id: 1,
        text: "early",
    });
    let outs = receive(&mut d, at(1), peer, &chat);
    assert!(events(&outs).iter().any(|e| matches!(
        e,
        Event::Disconnected {
            reason: Reason::Fault(Fault::NoHello),
            ..
        }
    )));
    assert!(messages(&outs).is_empty(), "not shown");
}

#[test]
fn a_receipt_for_no_message_awaiting_one_is_counted_as_stray() {
    let mut pair = pair();
    let ack = frame_of(Message::Ack { id: 99 });
    let outs = receive(&mut pair.a, at(1), pair.a_to_b, &ack);
    assert!(
        !events(&outs)
            .iter()
            .any(|e| matches!(e, Event::Delivered { .. }))
    );
    assert_eq!(pair.a.stats().stray_acks, 1);
    receive(&mut pair.a, at(1), pair.a_to_b, &ack);
    assert_eq!(pair.a.stats().stray_acks, 2);
}

#[test]
fn the_node_says_whether_a_peer_is_ready_and_in_which_phase() {
    let mut b = node("bob", 2);
    let peer = accept(&mut b);
    assert_eq!(b.phase(peer), Some(meshtalk_core::node::Phase::Greeting));
    assert!(!b.is_ready(peer));
    receive(&mut b, at(0), peer, b"hi\n");
    assert_eq!(
        b.phase(peer),
        Some(meshtalk_core::node::Phase::Ready(Kind::Text(
            TextMode::Lines
        )))
    );
    assert!(b.is_ready(peer));
    input(&mut b, at(1), Input::Closed { peer, error: None });
    assert_eq!(b.phase(peer), None, "gone");
    assert!(!b.is_ready(peer));
}

#[test]
fn a_one_peer_node_refuses_to_connect_while_in_a_chat() {
    let mut b = chat("bob", 2);
    let first = accept(&mut b);
    receive(&mut b, at(0), first, b"hi\n");
    let cmd = command::parse("connect 127.0.0.1 4000").unwrap().unwrap();
    assert_eq!(
        b.handle_input(at(1), Input::Command(cmd)),
        Err(NodeError::AlreadyConnected)
    );
}

#[test]
fn in_a_one_peer_chat_send_takes_the_whole_line_as_the_message() {
    let mut b = chat("bob", 2);
    let first = accept(&mut b);
    receive(&mut b, at(0), first, b"hi\n");
    let outs = command(
        &mut b,
        at(1),
        &format!("send #{} is not a target here", first.number()),
    );
    assert_eq!(
        sent_bytes(&outs, first),
        format!("#{} is not a target here\n", first.number()).as_bytes()
    );
}

// ---- rooms ----

#[test]
fn a_broadcast_reaches_a_node_two_hops_away_once() {
    // a - b - c, with a and c not connected.
    let mut ab = pair();
    let mut c = node("carol", 3);
    let outs = command(&mut ab.b, at(0), "connect 127.0.0.1 7000");
    let Some(Out::Connect(b_to_c, ..)) = outs.first().cloned() else {
        panic!()
    };
    let c_to_b = accept(&mut c);
    // Carry b <-> c by hand until quiet.
    let mut to_c = sent_bytes(
        &input(
            &mut ab.b,
            at(0),
            Input::Connected {
                entropy: [0; 32],
                peer: b_to_c,
                addr: addr(7000),
            },
        ),
        b_to_c,
    );
    let mut c_events = Vec::new();
    for _ in 0..10 {
        let outs = receive(&mut c, at(0), c_to_b, &to_c);
        c_events.extend(events(&outs));
        let back = sent_bytes(&outs, c_to_b);
        to_c = sent_bytes(&receive(&mut ab.b, at(0), b_to_c, &back), b_to_c);
        if to_c.is_empty() {
            break;
        }
    }
    let outs = command(&mut ab.a, at(1), "broadcast hello room");
    let to_b = sent_bytes(&outs, ab.a_to_b);
    let outs = receive(&mut ab.b, at(1), ab.b_to_a, &to_b);
    assert_eq!(messages(&outs), ["hello room"]);
    let relayed = sent_bytes(&outs, b_to_c);
    assert!(
        sent_bytes(&outs, ab.b_to_a).is_empty(),
        "never back where it came from"
    );
    let outs = receive(&mut c, at(1), c_to_b, &relayed);
    let got: Vec<_> = events(&outs)
        .into_iter()
        .filter_map(|e| match e {
            Event::Message {
                from,
                text,
                room: Some(_),
                ..
            } => Some((from, text)),
            _ => None,
        })
        .collect();
    assert_eq!(got, [("alice".to_string(), "hello room".to_string())]);
    // The same frame again (another path) is suppressed.
    let again = receive(&mut c, at(2), c_to_b, &relayed);
    assert!(messages(&again).is_empty());
    assert_eq!(c.stats().duplicates, 1);
}

#[test]
fn a_broadcast_with_one_hop_left_is_not_relayed() {
    let mut pair = pair();
    let frame = {
        let mut buf = [0u8; 128];
        let n = Message::Broadcast {
            origin: 9,
            seq: 1,
            hops: 1,
            name: "zed",
            text: "far",
        }
        .encode_frame(&mut buf)
        .unwrap();
        buf[..n].to_vec()
    };
    let c = accept(&mut pair.b);
    let _ = c;
    let outs = receive(&mut pair.b, at(0), pair.b_to_a, &frame);
    assert_eq!(messages(&outs), ["far"]);
    assert!(outs.iter().all(|o| !matches!(o, Out::Tx(..))));
}

#[test]
fn a_relayed_broadcast_carries_the_same_origin_name_and_text_with_one_hop_fewer() {
    let mut pair = pair();
    // A second native peer of bob's, carol.
    let carol = accept(&mut pair.b);
    receive(&mut pair.b, at(0), carol, b"MESHTALK/1 carol\n");
    let mut buf = [0u8; 256];
    let n = Message::Hello {
        minor: 1,
        node: 3,
        name: "carol",
    }
    .encode_frame(&mut buf)
    .unwrap();
    receive(&mut pair.b, at(0), carol, &buf[..n]);
    let n = Message::Broadcast {
        origin: 9,
        seq: 4,
        hops: 5,
        name: "zed",
        text: "déjà vu ✓",
    }
    .encode_frame(&mut buf)
    .unwrap();
    let outs = receive(&mut pair.b, at(1), pair.b_to_a, &buf[..n]);
    let relayed = sent_bytes(&outs, carol);
    let mut decoder = FrameDecoder::<1024>::new();
    let (used, found) = decoder.decode(&relayed);
    let Decoded::Frame(body) = found else {
        panic!("not a frame: {found:?}")
    };
    assert_eq!(used, relayed.len(), "one frame");
    assert_eq!(
        Message::decode(body).unwrap(),
        Message::Broadcast {
            origin: 9,
            seq: 4,
            hops: 4,
            name: "zed",
            text: "déjà vu ✓",
        }
    );
}

// ---- limits ----

#[test]
fn ten_thousand_tiny_frames_in_one_read_are_all_taken_in_bounded_steps() {
    let mut pair = pair();
    let mut burst = Vec::new();
    for id in 0..10_000u32 {
        let mut buf = [0u8; 64];
        let n = Message::Chat { id, text: "x" }
            .encode_frame(&mut buf)
            .unwrap();
        burst.extend_from_slice(&buf[..n]);
    }
    let outs = receive(&mut pair.b, at(0), pair.b_to_a, &burst);
    assert_eq!(messages(&outs).len(), 10_000);
    assert_eq!(
        outs.iter().filter(|o| matches!(o, Out::Tx(..))).count(),
        10_000,
        "each message acknowledged"
    );
}

#[test]
fn an_oversized_frame_is_skipped_and_the_next_one_is_read() {
    let mut pair = pair();
    let mut stream = vec![0x80, 0x40]; // 8192 bytes: over the 1 KiB limit
    stream.extend(std::iter::repeat_n(0u8, 8192));
    let mut buf = [0u8; 64];
    let n = Message::Chat {
        id: 1,
        text: "after",
    }
    .encode_frame(&mut buf)
    .unwrap();
    stream.extend_from_slice(&buf[..n]);
    let outs = receive(&mut pair.b, at(0), pair.b_to_a, &stream);
    assert_eq!(messages(&outs), ["after"]);
    assert_eq!(pair.b.stats().oversized, 1);
}

#[test]
fn a_node_for_a_small_device_fits_in_32_kib_and_is_the_size_the_readme_says() {
    use meshtalk_core::node::{Link, Phase, Stats};
    use meshtalk_core::peers::PeerTable;
    use meshtalk_core::route::SeenCache;
    use std::mem::size_of;
    // 8 peers, 1 KiB frames, a 4 KiB arena: the node README's "Memory" table breaks down.
    let size = size_of::<Node<8, 1024, 4096>>();
    eprintln!("Node<8, 1024, 4096>: {size} bytes");
    assert!(size <= 32 * 1024, "node is {size} bytes");
    // The README's figures are for a 64-bit target (the CI machine's); a 32-bit
    // one has smaller pointers and lengths.
    if cfg!(target_pointer_width = "64") {
        let table = size_of::<PeerTable<Link<1024>, 8>>();
        let slot = (table - size_of::<PeerTable<Link<1024>, 0>>()) / 8;
        let seen = size_of::<SeenCache<{ meshtalk_core::limits::ORIGINS }>>();
        // The roster: a heapless Vec of (id, phase), one per peer, and its length.
        let roster = 8 * size_of::<(PeerId, Phase)>() + size_of::<usize>();
        // Config, counters, then the last sequence number, the wake-up and
        // next announce times, the roster's cursor and its stale flag, and the
        // entropy pool for sealed messages (u32 + 2 Option<Instant> + usize +
        // bool + Pool, padded to 8).
        let (config, stats) = (size_of::<Config>(), size_of::<Stats>());
        let pool = size_of::<meshtalk_core::noise::Pool>();
        let small = 4 + 2 * size_of::<Option<Instant>>() + 8 + 1 + pool;
        let rest = config + stats + small.next_multiple_of(8);
        // The scratch buffer where secure links' frames are sealed and opened: F.
        let scratch = 1024;
        // The originator table and the direct messages across the mesh that
        // await their receipt, for SMALL_ROUTES (2) nodes (their lengths, the
        // TTL and the next id, 32 bytes, stay with the outputs).
        let routes = size - size_of::<Node<8, 1024, 4096, 0>>();
        // The outbox is private: what is left (with the last transmit's span key, 8,
        // and 8 of padding),
        // of which the arena is exactly A.
        let outputs = size - table - seen - roster - rest - scratch - routes;
        let arena = size_of::<Node<8, 1024, 8192>>() - size;
        let session = size_of::<meshtalk_core::noise::Session>();
        let parts = [
            size, slot, session, table, outputs, arena, seen, roster, config, stats, rest, routes,
        ];
        eprintln!(
            "node, slot, session, table, outputs, arena, seen, roster, config, stats, rest, routes: {parts:?}"
        );
        assert_eq!(
            parts,
            [
                32_768, 2_200, 712, 17_632, 7_760, 4_096, 5_648, 104, 216, 48, 344, 256
            ],
            "the README's Memory table no longer matches: update it"
        );
    }
}

#[test]
fn the_table_limit_refuses_one_more_peer() {
    let mut config = Config::new("bob", 2).unwrap();
    config.max_peers = 1;
    let mut b = TestNode::new(config);
    accept(&mut b);
    let err = b
        .handle_input(
            at(0),
            Input::Accepted {
                addr: addr(1),
                entropy: [0; 32],
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("full"), "{err}");
}

#[test]
fn the_greeting_deadline_is_given_as_the_next_wake_up() {
    let mut b = node("bob", 2);
    accept(&mut b);
    let (_, wake) = drain(&mut b, at(0));
    assert_eq!(wake, Some(at(0) + Duration::from_millis(500)));
}

// ---- what is written to a text peer (a terminal) ----

/// Text that drives a terminal: colour, BEL, OSC 52, a C1 CSI, a bidi override, CR.
const NASTY: &str = "red\x1b[31m bel\x07 clip\x1b]52;c;aGk=\x07 csi\u{9b}2J rtl\u{202e}x cr\rend";
/// [`NASTY`] as a terminal must get it: every such character visible.
const NASTY_SHOWN: &str = "red^[[31m bel^G clip^[]52;c;aGk=^G csi\\u{9b}2J rtl\\u{202e}x cr^Mend";

#[test]
fn a_message_to_a_text_peer_reaches_it_only_as_visible_text() {
    let mut b = node("bob", 2);
    let peer = accept(&mut b);
    receive(&mut b, at(0), peer, b"hi\n");
    let outs = command(&mut b, at(1), &format!("send #{} {NASTY}", peer.number()));
    assert_eq!(
        sent_bytes(&outs, peer),
        format!("{NASTY_SHOWN}\n").as_bytes()
    );
}

#[test]
fn a_hub_relays_a_text_peers_line_to_other_text_peers_only_as_visible_text() {
    let mut b = hub("hub", 2);
    let one = accept(&mut b);
    let two = accept(&mut b);
    receive(&mut b, at(0), two, b"hi\n");
    let outs = receive(&mut b, at(1), one, format!("{NASTY}\n").as_bytes());
    // After the notice that it joined.
    assert_eq!(
        sent_bytes(&outs, two),
        format!("* 127.0.0.1 joined\n<127.0.0.1> {NASTY_SHOWN}\n").as_bytes()
    );
}

#[test]
fn a_room_line_for_text_peers_shows_a_line_feed_and_cannot_forge_a_second_line() {
    let mut b = node("bob", 2);
    let peer = accept(&mut b);
    receive(&mut b, at(0), peer, b"hi\n");
    let outs = command(&mut b, at(1), "broadcast two\n<carol> forged");
    assert_eq!(sent_bytes(&outs, peer), b"two^J<carol> forged\n");
}

#[test]
fn a_multi_line_message_to_a_text_peer_keeps_its_lines_each_made_safe() {
    let mut b = node("bob", 2);
    let peer = accept(&mut b);
    receive(&mut b, at(0), peer, b"hi\n");
    let outs = command(&mut b, at(1), &format!("send #{} a\x1b\nb", peer.number()));
    assert_eq!(sent_bytes(&outs, peer), b"a^[\nb\n");
}

// ---- the room a hub gives its text peers (issue 10, items 6 and 7) ----

/// A text peer of `h` that has said `hello`, and what it was sent until then.
fn talker(h: &mut TestNode, now: u64) -> (PeerId, Vec<u8>) {
    let peer = accept(h);
    let outs = receive(h, at(now), peer, b"hello\n");
    (peer, sent_bytes(&outs, peer))
}

/// The lines in `bytes`, as text.
fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_hub_tags_its_own_room_messages_for_text_peers_with_its_name() {
    let mut h = hub("hub", 3);
    let (peer, _) = talker(&mut h, 0);
    let outs = command(&mut h, at(1), "broadcast hi all");
    assert_eq!(sent_bytes(&outs, peer), b"<hub> hi all\n");
}

#[test]
fn a_node_without_hub_sends_its_own_room_messages_to_text_peers_untagged() {
    let mut b = node("bob", 2);
    let (peer, _) = talker(&mut b, 0);
    let outs = command(&mut b, at(1), "broadcast hi all");
    assert_eq!(sent_bytes(&outs, peer), b"hi all\n");
}

#[test]
fn a_hubs_direct_message_to_a_text_peer_is_marked_as_to_it_on_every_line() {
    let mut h = hub("hub", 3);
    let (peer, _) = talker(&mut h, 0);
    let outs = input(
        &mut h,
        at(1),
        Input::Command(Command::Send {
            target: Some(command::Target::Id(peer.number())),
            text: "one\ntwo\x1b",
            all: "",
        }),
    );
    assert_eq!(
        sent_bytes(&outs, peer),
        b"<hub> (to you) one\n<hub> (to you) two^[\n"
    );
}

#[test]
fn a_direct_message_to_a_text_peer_of_a_node_without_hub_is_the_bare_text() {
    let mut b = node("bob", 2);
    let (peer, _) = talker(&mut b, 0);
    let outs = command(&mut b, at(1), &format!("send #{} psst", peer.number()));
    assert_eq!(sent_bytes(&outs, peer), b"psst\n");
}

#[test]
fn the_other_text_peers_of_a_hub_are_told_a_newcomer_joined_and_the_newcomer_is_sent_nothing() {
    let mut h = hub("hub", 3);
    let (first, _) = talker(&mut h, 0);
    let second = accept(&mut h);
    let outs = receive(&mut h, at(1), second, b"hi\n");
    // A client that only writes and closes with our bytes unread would be reset.
    assert!(sent_bytes(&outs, second).is_empty());
    assert_eq!(
        lines(&sent_bytes(&outs, first)),
        ["* 127.0.0.1-2 joined", "<127.0.0.1-2> hi"]
    );
}

#[test]
fn text_peers_of_a_hub_are_told_when_a_peer_leaves() {
    let mut h = hub("hub", 3);
    let (first, _) = talker(&mut h, 0);
    let (second, _) = talker(&mut h, 1);
    let outs = input(
        &mut h,
        at(2),
        Input::Closed {
            peer: second,
            error: None,
        },
    );
    assert_eq!(sent_bytes(&outs, first), b"* 127.0.0.1-2 left\n");
}

#[test]
fn a_native_peers_room_message_reaches_a_hubs_text_peers_tagged_with_its_name() {
    let mut h = hub("hub", 3);
    let (text, _) = talker(&mut h, 0);
    let mut n = node("nat", 9);
    linked(&mut n, &mut h);
    let h_to_n = h
        .peers()
        .find(|p| p.phase == meshtalk_core::node::Phase::Ready(Kind::Native))
        .expect("the native peer")
        .id;
    let outs = command(&mut n, at(1), "broadcast ping");
    let bytes: Vec<u8> = outs
        .iter()
        .filter_map(|o| match o {
            Out::Tx(_, data) => Some(data.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let outs = receive(&mut h, at(1), h_to_n, &bytes);
    assert_eq!(sent_bytes(&outs, text), b"<nat> ping\n");
}

#[test]
fn a_text_peer_of_a_hub_takes_a_name_with_nick_and_the_room_is_told() {
    let mut h = hub("hub", 3);
    let (first, _) = talker(&mut h, 0);
    let (second, _) = talker(&mut h, 1);
    let outs = receive(&mut h, at(2), first, b"/nick dave\n");
    assert_eq!(sent_bytes(&outs, first), b"* you are now dave\n");
    assert_eq!(
        sent_bytes(&outs, second),
        b"* 127.0.0.1 is now known as dave\n"
    );
    assert!(events(&outs).iter().any(|e| matches!(e,
        Event::Alias { peer, alias } if *peer == first && alias == "dave")));
    assert!(messages(&outs).is_empty(), "a command is no message");
    let outs = receive(&mut h, at(3), first, b"hi\n");
    assert_eq!(sent_bytes(&outs, second), b"<dave> hi\n");
}

#[test]
fn nick_follows_the_rules_of_aliases_and_never_takes_the_hubs_own_name() {
    let mut h = hub("hub", 3);
    let (first, _) = talker(&mut h, 0);
    let (second, _) = talker(&mut h, 1);
    receive(&mut h, at(2), second, b"/nick bob\n");
    for (line, answer) in [
        (
            &b"/nick bob\n"[..],
            &b"* bob is taken; choose another\n"[..],
        ),
        (
            b"/nick hub\n",
            b"* hub is the hub's own name; choose another\n",
        ),
        (b"/nick\n", b"* usage: /nick NAME\n"),
        // The rest is the alias rules' own error, whatever its words.
        (b"/nick a b\n", b"* cannot take the name a b: "),
    ] {
        let outs = receive(&mut h, at(3), first, line);
        let got = String::from_utf8_lossy(&sent_bytes(&outs, first)).into_owned();
        let answer = String::from_utf8_lossy(answer);
        assert!(
            got.starts_with(&*answer) && got.ends_with('\n') && got.lines().count() == 1,
            "{got:?} is not {answer:?}"
        );
        assert!(sent_bytes(&outs, second).is_empty(), "nobody else is told");
    }
}

#[test]
fn who_from_a_text_peer_of_a_hub_lists_the_room_and_marks_the_asker() {
    let mut h = hub("hub", 3);
    let (first, _) = talker(&mut h, 0);
    let (second, _) = talker(&mut h, 1);
    receive(&mut h, at(2), second, b"/NICK zed\n");
    let outs = receive(&mut h, at(3), first, b"/who\n");
    assert_eq!(
        sent_bytes(&outs, first),
        b"* in the room: hub (hub), 127.0.0.1 (you), zed\n"
    );
    assert!(sent_bytes(&outs, second).is_empty());
}

#[test]
fn a_text_peer_of_a_node_without_hub_may_say_slash_nick_as_a_message() {
    let mut b = node("bob", 2);
    let (peer, _) = talker(&mut b, 0);
    let outs = receive(&mut b, at(1), peer, b"/nick dave\n");
    assert_eq!(messages(&outs), ["/nick dave"]);
}

#[test]
fn what_the_room_says_before_a_connections_kind_is_known_is_held_and_delivered_in_its_form() {
    let mut h = hub("hub", 3);
    let (first, _) = talker(&mut h, 0);
    // Connected, silent: not known yet whether it is native or text.
    let newcomer = accept(&mut h);
    let outs = receive(&mut h, at(100), first, b"early\n");
    assert!(
        sent_bytes(&outs, newcomer).is_empty(),
        "nothing before its kind"
    );
    command(&mut h, at(200), "broadcast also early");
    // The greeting time is up: a text peer that speaks lines.
    let outs = input(&mut h, at(500), Input::Timeout { held: &[] });
    let got = lines(&sent_bytes(&outs, newcomer));
    assert_eq!(got, ["<127.0.0.1> early", "<hub> also early"]);
}

#[test]
fn held_room_lines_come_before_a_line_said_in_the_same_input_that_decided_the_connection() {
    let mut h = hub("hub", 3);
    let (first, _) = talker(&mut h, 0);
    let quiet = accept(&mut h);
    let newcomer = accept(&mut h);
    receive(&mut h, at(100), first, b"early\n");
    // Bare text: a message once idle for 100 ms, at 500, when the newcomer's greeting
    // time is up too; the quiet one's slot comes first.
    receive(&mut h, at(400), quiet, b"late");
    let outs = input(&mut h, at(500), Input::Timeout { held: &[] });
    let got = lines(&sent_bytes(&outs, newcomer));
    assert_eq!(
        got,
        [
            "<127.0.0.1> early",
            "* 127.0.0.1-2 joined",
            "<127.0.0.1-2> late"
        ],
        "{got:?}"
    );
}

#[test]
fn room_lines_held_for_a_connection_are_bounded_by_its_buffer() {
    let mut h = hub("hub", 3);
    let (first, _) = talker(&mut h, 0);
    let newcomer = accept(&mut h);
    let line = "x".repeat(1000);
    for i in 0..20 {
        receive(&mut h, at(i), first, format!("{line}\n").as_bytes());
    }
    assert!(h.stats().unheld > 0, "some were not held");
    let outs = input(&mut h, at(500), Input::Timeout { held: &[] });
    let got = sent_bytes(&outs, newcomer);
    assert!(got.len() <= 4096 + 200, "{} bytes", got.len());
    assert!(got.ends_with(b"\n"), "whole lines only");
}

#[test]
fn a_native_peer_gets_no_text_held_for_it_and_keeps_its_protocol() {
    let mut h = hub("hub", 3);
    let (first, _) = talker(&mut h, 0);
    let mut n = node("nat", 9);
    let outs = command(&mut n, at(0), "connect 127.0.0.1 4000");
    let Some(Out::Connect(n_to_h, ..)) = outs.first().cloned() else {
        panic!("no connect: {outs:?}")
    };
    let h_to_n = accept(&mut h);
    receive(&mut h, at(1), first, b"while you greet\n");
    let outs = input(
        &mut n,
        at(2),
        Input::Connected {
            entropy: [0; 32],
            peer: n_to_h,
            addr: addr(4000),
        },
    );
    let banner = sent_bytes(&outs, n_to_h);
    let outs = receive(&mut h, at(2), h_to_n, &banner);
    let answer = sent_bytes(&outs, h_to_n);
    assert!(answer.starts_with(b"MESHTALK/"), "{answer:?}");
    assert!(
        !answer.windows(5).any(|w| w == b"greet"),
        "no text line in a native stream"
    );
}

// ---- reconnecting (issue 10, item 9) ----

fn reconnecting_node() -> TestNode {
    let mut config = Config::new("dave", 4).unwrap();
    config.reconnect = true;
    TestNode::new(config)
}

/// `d` dials `c` (with alias `cc`) and both greet; the link as `d` names it.
fn linked(d: &mut TestNode, c: &mut TestNode) -> PeerId {
    let outs = command(d, at(0), "connect 127.0.0.1 4000 cc");
    let Some(Out::Connect(peer, ..)) = outs.first().cloned() else {
        panic!("no connect: {outs:?}")
    };
    let theirs = accept(c);
    let mut to_c = sent_bytes(
        &input(
            d,
            at(0),
            Input::Connected {
                entropy: [0; 32],
                peer,
                addr: addr(4000),
            },
        ),
        peer,
    );
    for _ in 0..4 {
        let to_d = sent_bytes(&receive(c, at(0), theirs, &to_c), theirs);
        to_c = sent_bytes(&receive(d, at(0), peer, &to_d), peer);
    }
    assert!(
        d.peers()
            .any(|p| p.id == peer && p.phase == meshtalk_core::node::Phase::Ready(Kind::Native))
    );
    peer
}

#[test]
fn a_dropped_outbound_peer_is_kept_under_its_id_and_alias_while_it_is_dialled_again() {
    use meshtalk_core::node::Phase;
    let mut d = reconnecting_node();
    let mut c = node("carol", 5);
    let peer = linked(&mut d, &mut c);
    let outs = input(
        &mut d,
        at(1),
        Input::Closed {
            peer,
            error: Some("reset"),
        },
    );
    assert!(events(&outs).iter().any(|e| matches!(e,
        Event::Disconnected { peer: p, alias, .. } if *p == peer && alias == "cc")));
    let kept = d.peers().find(|p| p.id == peer).expect("kept");
    assert_eq!((kept.alias, kept.phase), ("cc", Phase::Reconnecting));
    let err = d
        .handle_input(
            at(2),
            Input::Command(command::parse("send cc hi").unwrap().unwrap()),
        )
        .unwrap_err();
    assert!(
        matches!(err, NodeError::Reconnecting(p) if p == peer),
        "{err:?}"
    );
    // The shell's re-dial: the same peer, dialled again.
    let outs = input(
        &mut d,
        at(1000),
        Input::Redial {
            peer,
            host: "127.0.0.1",
            port: 4000,
        },
    );
    assert!(
        matches!(outs.first(), Some(Out::Connect(p, h, 4000)) if *p == peer && h == "127.0.0.1")
    );
    // It fails: still kept, to be tried again.
    let outs = input(
        &mut d,
        at(1001),
        Input::ConnectFailed {
            peer,
            reason: "connection refused",
        },
    );
    assert!(
        events(&outs)
            .iter()
            .any(|e| matches!(e, Event::ConnectFailed { .. }))
    );
    let kept = d.peers().find(|p| p.id == peer).expect("still kept");
    assert_eq!(kept.phase, Phase::Reconnecting);
}

#[test]
fn disconnect_stops_the_redials_of_a_reconnecting_peer() {
    let mut d = reconnecting_node();
    let mut c = node("carol", 5);
    let peer = linked(&mut d, &mut c);
    input(&mut d, at(1), Input::Closed { peer, error: None });
    let outs = command(&mut d, at(2), "disconnect cc");
    assert!(events(&outs).iter().any(|e| matches!(
        e,
        Event::Disconnected {
            reason: Reason::Local,
            ..
        }
    )));
    assert_eq!(d.peers().count(), 0);
    let err = d
        .handle_input(
            at(3),
            Input::Redial {
                peer,
                host: "127.0.0.1",
                port: 4000,
            },
        )
        .unwrap_err();
    assert!(
        matches!(err, NodeError::Lookup(LookupError::NoSuchId(_))),
        "{err:?}"
    );
}

#[test]
fn a_peer_disconnected_here_or_refused_as_busy_is_not_kept_for_redials() {
    let mut d = reconnecting_node();
    let mut c = node("carol", 5);
    let peer = linked(&mut d, &mut c);
    command(&mut d, at(1), "disconnect cc");
    assert_eq!(d.peers().count(), 0, "disconnected here: gone");
    let mut plain = node("dave", 4);
    let mut c = node("carol", 5);
    let peer2 = linked(&mut plain, &mut c);
    input(
        &mut plain,
        at(1),
        Input::Closed {
            peer: peer2,
            error: None,
        },
    );
    assert_eq!(plain.peers().count(), 0, "without reconnect: gone");
    let _ = peer;
}

#[test]
fn only_a_peer_lost_or_gone_by_itself_is_dialled_again() {
    assert!(Reason::<&str>::Closed.redials());
    assert!(Reason::Lost("reset").redials());
    assert!(Reason::Bye("exit").redials());
    assert!(!Reason::<&str>::Local.redials());
    assert!(!Reason::<&str>::Refused(Refusal::Busy).redials());
    assert!(!Reason::<&str>::Refused(Refusal::Serving).redials());
    assert!(Reason::<&str>::Refused(Refusal::Full { limit: 8 }).redials());
    assert!(Reason::<&str>::Refused(Refusal::Unknown).redials());
    assert!(!Reason::<&str>::Fault(Fault::Itself).redials());
}

/// Every `Output::Transmit` of one drain: receiver, bytes, and `shared`.
fn transmits(node: &mut TestNode, now: Instant) -> Vec<(PeerId, Vec<u8>, bool)> {
    let mut seen = Vec::new();
    for _ in 0..10_000 {
        match node.poll_output(now) {
            meshtalk_core::node::Output::Timeout(_) => return seen,
            meshtalk_core::node::Output::Transmit { peer, data, shared } => {
                seen.push((peer, data.to_vec(), shared))
            }
            _ => {}
        }
    }
    panic!("drain did not end");
}

#[test]
fn a_room_line_to_several_peers_is_one_transmit_then_shared_ones_within_a_drain() {
    let mut b = node("bob", 2);
    let peers: Vec<PeerId> = (0..3)
        .map(|_| {
            let p = accept(&mut b);
            receive(&mut b, at(0), p, b"hi\n");
            p
        })
        .collect();
    for round in 0..2 {
        let cmd = command::parse("broadcast to all").unwrap().unwrap();
        let _ = b.handle_input(at(1 + round), Input::Command(cmd)).unwrap();
        let seen = transmits(&mut b, at(1 + round));
        let to: Vec<PeerId> = seen.iter().map(|(p, ..)| *p).collect();
        assert_eq!(to, peers, "round {round}");
        assert!(seen.iter().all(|(_, data, _)| data == &seen[0].1));
        let shared: Vec<bool> = seen.iter().map(|&(.., s)| s).collect();
        // A new drain's first transmit is never shared: the arena may have moved on.
        assert_eq!(shared, [false, true, true], "round {round}");
    }
}

#[test]
fn a_transmit_is_shared_only_when_its_bytes_are_those_of_the_transmit_before() {
    // alice's room: bob (native, a frame) first, then two text peers (a line each).
    let mut pair = pair();
    let texts: Vec<PeerId> = (0..2)
        .map(|_| {
            let p = accept(&mut pair.a);
            receive(&mut pair.a, at(0), p, b"hi\n");
            p
        })
        .collect();
    // alice's announce to bob goes out first, on its own.
    let _ = pair.a.handle_input(at(1000), Input::Timeout { held: &[] });
    let announce = transmits(&mut pair.a, at(1000));
    assert_eq!(announce.len(), 1);
    let cmd = command::parse("broadcast to all").unwrap().unwrap();
    let _ = pair.a.handle_input(at(1000), Input::Command(cmd)).unwrap();
    let seen = transmits(&mut pair.a, at(1000));
    let got: Vec<(PeerId, bool)> = seen.iter().map(|&(p, _, s)| (p, s)).collect();
    assert_eq!(
        got,
        [(pair.a_to_b, false), (texts[0], false), (texts[1], true)],
        "the frame, then the line, then the same line again"
    );
    assert_ne!(seen[0].1, seen[1].1);
    assert_eq!(seen[1].1, seen[2].1);
}
