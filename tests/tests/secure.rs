//! Secure links (protocol 2) between nodes: the Noise handshake after the
//! banners, sealed frames, room keys, and what text peers may do.

use std::net::SocketAddr;

use meshtalk_core::node::{
    Config, Event, Fault, Handled, Input, Kind, Node, Output, Reason, Refusal, Secure, TextMode,
};
use meshtalk_core::noise::{PeerError, public_key};
use meshtalk_core::peers::PeerId;
use meshtalk_core::time::Instant;
use meshtalk_core::wire::BannerError;
use meshtalk_tests::harness::{
    Out, Pair, TestNode, command, drain, events, input, receive, sent_bytes, texts,
};

const NOW: Instant = Instant::ZERO;

/// A node with secure links, its identity made from its id.
fn secure(name: &str, id: u64) -> Config {
    let mut config = Config::new(name, id).unwrap();
    config.secure = Some(Secure::new([id as u8; 32]));
    config
}

/// [`secure`], in the private room of `key` (`None`: no room key).
fn keyed(name: &str, id: u64, key: Option<u8>) -> Config {
    let mut config = secure(name, id);
    if let Some(s) = config.secure.as_mut() {
        s.room_key = key.map(|k| [k; 32]);
    }
    config
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn connected(events: &[Event<String>]) -> Vec<(String, Kind, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Connected {
                alias,
                kind,
                encrypted,
                ..
            } => Some((alias.clone(), *kind, *encrypted)),
            _ => None,
        })
        .collect()
}

fn reasons(events: &[Event<String>]) -> Vec<Reason<String>> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Disconnected { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

fn accept(node: &mut TestNode) -> PeerId {
    accept_with(node, [0xc0; 32])
}

/// Accepts a connection whose ephemeral key comes from `entropy`.
fn accept_with(node: &mut TestNode, entropy: [u8; 32]) -> PeerId {
    let Handled::Accepted(peer) = node
        .handle_input(
            NOW,
            Input::Accepted {
                addr: addr(5000),
                entropy,
            },
        )
        .unwrap()
    else {
        panic!("not accepted")
    };
    peer
}

#[test]
fn two_secure_nodes_link_encrypted_and_each_learns_the_others_key() {
    let pair = Pair::connect(secure);
    assert_eq!(
        connected(&pair.a_events),
        [("bob".to_string(), Kind::Native, true)]
    );
    assert_eq!(
        connected(&pair.b_events),
        [("alice".to_string(), Kind::Native, true)]
    );
    assert_eq!(pair.a.remote_key(pair.a_to_b), Some(&public_key(&[2; 32])));
    assert_eq!(pair.b.remote_key(pair.b_to_a), Some(&public_key(&[1; 32])));
    assert_eq!(pair.a.public_key(), Some(public_key(&[1; 32])));
}

#[test]
fn a_direct_message_and_its_receipt_cross_a_secure_link() {
    let mut pair = Pair::connect(secure);
    pair.a_says("send bob hello over noise");
    assert_eq!(texts(&pair.b_events), ["hello over noise"]);
    assert!(
        pair.a_events
            .iter()
            .any(|e| matches!(e, Event::Delivered { .. })),
        "{:?}",
        pair.a_events
    );
}

#[test]
fn no_name_and_no_text_is_on_the_wire_of_a_secure_link() {
    let mut pair = Pair::connect(secure);
    pair.a_says("send bob the secret plan");
    pair.b_says("broadcast a room secret");
    assert_eq!(texts(&pair.b_events), ["the secret plan"]);
    assert_eq!(texts(&pair.a_events), ["a room secret"]);
    for needle in [b"secret".as_slice(), b"alice".as_slice(), b"bob".as_slice()] {
        assert!(
            !contains(&pair.wire, needle),
            "{:?} is on the wire",
            String::from_utf8_lossy(needle)
        );
    }
    assert!(pair.wire.starts_with(b"MESHTALK/2 XX\n"));
}

#[test]
fn a_flipped_bit_anywhere_in_a_sealed_frame_shows_nothing_and_closes_the_link() {
    let mut len = None;
    for at in 0.. {
        let mut pair = Pair::connect(secure);
        let outs = command(&mut pair.a, NOW, "send bob tampered with");
        let mut bytes = sent_bytes(&outs, pair.a_to_b);
        let frame_len = *len.get_or_insert(bytes.len());
        if at >= frame_len {
            break;
        }
        bytes[at] ^= 0x01;
        let got = receive(&mut pair.b, NOW, pair.b_to_a, &bytes);
        assert!(texts(&events(&got)).is_empty(), "byte {at}: shown");
        // The first byte is the frame's length: a longer one waits for more
        // bytes (and the frame timeout), a shorter one splits the frame; any
        // flip of the sealed body fails its integrity check.
        if at > 0 {
            assert_eq!(
                reasons(&events(&got)),
                [Reason::Fault(Fault::Secure(PeerError::Integrity))],
                "byte {at}"
            );
            assert!(got.contains(&Out::Close(pair.b_to_a)), "byte {at}");
        }
    }
    assert!(len.is_some_and(|l| l > 16));
}

#[test]
fn a_recorded_session_replayed_to_the_same_node_is_refused_at_the_handshake() {
    // Everything alice sent bob: her banner, messages 1 and 3, a sealed chat.
    let mut recorded = Vec::new();
    let mut a = TestNode::new(secure("alice", 1));
    let outs = command(&mut a, NOW, "connect 127.0.0.1 4000");
    let Some(Out::Connect(a_to_b, ..)) = outs.first().cloned() else {
        panic!()
    };
    let mut b = TestNode::new(secure("bob", 2));
    let b_to_a = accept(&mut b);
    let mut outs = input(
        &mut a,
        NOW,
        Input::Connected {
            peer: a_to_b,
            addr: addr(4000),
            entropy: [0xa1; 32],
        },
    );
    for _ in 0..8 {
        let to_b = sent_bytes(&outs, a_to_b);
        recorded.extend(&to_b);
        let back = receive(&mut b, NOW, b_to_a, &to_b);
        outs = receive(&mut a, NOW, a_to_b, &sent_bytes(&back, b_to_a));
    }
    let chat = command(&mut a, NOW, "send bob replay me");
    recorded.extend(sent_bytes(&chat, a_to_b));
    // The same bob (same identity), a new connection: a new ephemeral key.
    let mut again = TestNode::new(secure("bob", 2));
    let peer = accept_with(&mut again, [0xc1; 32]);
    let got = receive(&mut again, NOW, peer, &recorded);
    let shown = events(&got);
    assert!(connected(&shown).is_empty(), "{shown:?}");
    assert!(texts(&shown).is_empty(), "{shown:?}");
    assert_eq!(
        reasons(&shown),
        [Reason::Fault(Fault::Secure(PeerError::Handshake {
            message: 3
        }))]
    );
}

#[test]
fn nodes_in_the_same_private_room_link() {
    let pair = Pair::connect(|name, id| keyed(name, id, Some(7)));
    assert_eq!(connected(&pair.a_events).len(), 1);
    assert_eq!(connected(&pair.b_events).len(), 1);
    assert!(pair.wire.starts_with(b"MESHTALK/2 XXpsk0\n"));
}

#[test]
fn different_room_keys_never_link_and_both_sides_say_why() {
    let mut pair = Pair::connect(|name, id| keyed(name, id, Some(id as u8)));
    assert!(connected(&pair.a_events).is_empty());
    assert!(connected(&pair.b_events).is_empty());
    let room_key = Reason::Fault(Fault::Secure(PeerError::RoomKey));
    // Bob could not read message 1 and closed; alice hears the close.
    assert_eq!(reasons(&pair.b_events), std::slice::from_ref(&room_key));
    let outs = input(
        &mut pair.a,
        NOW,
        Input::Closed {
            peer: pair.a_to_b,
            error: None,
        },
    );
    assert_eq!(reasons(&events(&outs)), std::slice::from_ref(&room_key));
    assert!(room_key.to_string().contains("not the same room key"));
    assert!(!room_key.redials());
}

#[test]
fn a_room_key_on_one_side_only_is_named_by_both_sides_at_the_banners() {
    for room_side in [1, 2] {
        let pair = Pair::connect(|name, id| keyed(name, id, (id == room_side).then_some(9)));
        let room_key = Reason::Fault(Fault::Secure(PeerError::RoomKey));
        assert_eq!(
            reasons(&pair.a_events),
            std::slice::from_ref(&room_key),
            "{room_side}"
        );
        assert_eq!(reasons(&pair.b_events), [room_key], "{room_side}");
    }
}

#[test]
fn a_text_peer_joins_a_node_without_a_room_key_marked_unencrypted() {
    let mut b = TestNode::new(secure("bob", 2));
    let peer = accept(&mut b);
    let outs = receive(&mut b, NOW, peer, b"hi from netcat\n");
    let shown = events(&outs);
    let joined = connected(&shown);
    assert_eq!(joined.len(), 1, "{shown:?}");
    assert_eq!(
        (joined[0].1, joined[0].2),
        (Kind::Text(TextMode::Lines), false)
    );
    assert_eq!(texts(&shown), ["hi from netcat"]);
}

#[test]
fn a_text_peer_is_refused_by_a_private_room_with_a_line_saying_why() {
    let mut b = TestNode::new(keyed("bob", 2, Some(3)));
    let peer = accept(&mut b);
    let outs = receive(&mut b, NOW, peer, b"hi from netcat\n");
    let line = String::from_utf8(sent_bytes(&outs, peer)).unwrap();
    assert!(line.contains("private meshtalk room"), "{line}");
    assert!(line.ends_with('\n'));
    assert!(outs.contains(&Out::Close(peer)));
    let shown = events(&outs);
    assert!(texts(&shown).is_empty());
    assert!(
        shown.iter().any(|e| matches!(
            e,
            Event::Refused {
                why: Refusal::Private,
                ..
            }
        )),
        "{shown:?}"
    );
}

#[test]
fn a_silent_text_peer_is_refused_by_a_private_room_too() {
    let mut b = TestNode::new(keyed("bob", 2, Some(3)));
    let peer = accept(&mut b);
    let (_, wake) = drain(&mut b, NOW);
    let outs = input(&mut b, wake.unwrap(), Input::Timeout { held: &[] });
    assert!(outs.contains(&Out::Close(peer)), "{outs:?}");
    assert!(String::from_utf8_lossy(&sent_bytes(&outs, peer)).contains("private"));
}

#[test]
fn a_private_room_that_allows_text_takes_a_text_peer_marked_unencrypted() {
    let mut config = keyed("bob", 2, Some(3));
    if let Some(s) = config.secure.as_mut() {
        s.allow_text = true;
    }
    let mut b = TestNode::new(config);
    let peer = accept(&mut b);
    let outs = receive(&mut b, NOW, peer, b"hi\n");
    let shown = events(&outs);
    assert!(
        connected(&shown)
            .iter()
            .all(|(_, kind, encrypted)| matches!(kind, Kind::Text(_)) && !encrypted)
    );
    assert_eq!(connected(&shown).len(), 1);
    assert_eq!(texts(&shown), ["hi"]);
}

#[test]
fn a_protocol_1_banner_is_answered_with_ours_and_told_to_upgrade() {
    let mut b = TestNode::new(secure("bob", 2));
    let peer = accept(&mut b);
    let outs = receive(&mut b, NOW, peer, b"MESHTALK/1 old\n");
    assert_eq!(sent_bytes(&outs, peer), b"MESHTALK/2 XX\n");
    let reason = Reason::Fault(Fault::Banner(BannerError::Version { major: 1, ours: 2 }));
    assert_eq!(reasons(&events(&outs)), std::slice::from_ref(&reason));
    assert!(reason.to_string().contains("upgrade"));
    assert!(outs.contains(&Out::Close(peer)));
}

/// Drains any node into owned outputs.
fn drain_any<const P: usize, const F: usize, const A: usize>(node: &mut Node<P, F, A>) -> Vec<Out> {
    let mut outs = Vec::new();
    for _ in 0..10_000 {
        match node.poll_output(NOW) {
            Output::Transmit { peer, data, .. } => outs.push(Out::Tx(peer, data.to_vec())),
            Output::Event(e) => outs.push(Out::Ev(e.map(String::from))),
            Output::Close { peer } => outs.push(Out::Close(peer)),
            Output::Connect { peer, host, port } => {
                outs.push(Out::Connect(peer, host.into(), port))
            }
            Output::Timeout(_) => return outs,
        }
    }
    panic!("no end")
}

fn feed_any<const P: usize, const F: usize, const A: usize>(
    node: &mut Node<P, F, A>,
    peer: PeerId,
    bytes: &[u8],
) -> Vec<Out> {
    let mut outs = Vec::new();
    let mut rest = bytes;
    for _ in 0..10_000 {
        let Ok(Handled::Consumed(n)) =
            node.handle_input(NOW, Input::Received { peer, bytes: rest })
        else {
            panic!()
        };
        rest = &rest[n..];
        outs.extend(drain_any(node));
        if rest.is_empty() {
            break;
        }
    }
    outs
}

#[test]
fn a_frame_over_the_receivers_limit_is_skipped_and_the_next_sealed_one_opens() {
    // A big-framed node dials a 1 KiB one and says something too long for it.
    let mut big: Node<8, 8192, 32768> = Node::new(secure("big", 1));
    let mut small = TestNode::new(secure("small", 2));
    let Ok(Handled::Done) = big.handle_input(
        NOW,
        Input::Command(
            meshtalk_core::command::parse("connect 127.0.0.1 1")
                .unwrap()
                .unwrap(),
        ),
    ) else {
        panic!()
    };
    let outs = drain_any(&mut big);
    let Some(&Out::Connect(to_small, ..)) = outs.first() else {
        panic!("no dial: {outs:?}")
    };
    let to_big = accept(&mut small);
    let Ok(Handled::Done) = big.handle_input(
        NOW,
        Input::Connected {
            peer: to_small,
            addr: addr(1),
            entropy: [0x11; 32],
        },
    ) else {
        panic!()
    };
    let mut outs = drain_any(&mut big);
    for _ in 0..8 {
        let back = receive(&mut small, NOW, to_big, &sent_bytes(&outs, to_small));
        outs = feed_any(&mut big, to_small, &sent_bytes(&back, to_big));
    }
    let long = "x".repeat(2000);
    let mut wire = Vec::new();
    for line in [format!("send small {long}"), "send small after".to_string()] {
        let cmd = meshtalk_core::command::parse(&line).unwrap().unwrap();
        let Ok(Handled::Done) = big.handle_input(NOW, Input::Command(cmd)) else {
            panic!()
        };
        wire.extend(sent_bytes(&drain_any(&mut big), to_small));
    }
    let got = receive(&mut small, NOW, to_big, &wire);
    assert_eq!(texts(&events(&got)), ["after"]);
    assert_eq!(small.stats().oversized, 1);
}

/// [`secure`], with the shell vetting every peer's key.
fn vetting(name: &str, id: u64) -> Config {
    let mut config = secure(name, id);
    if let Some(s) = config.secure.as_mut() {
        s.vet = true;
    }
    config
}

#[test]
fn a_vetted_peer_is_held_unready_until_the_shell_trusts_its_key() {
    let mut pair = Pair::connect(|name, id| {
        if id == 2 {
            vetting(name, id)
        } else {
            secure(name, id)
        }
    });
    assert!(
        pair.b_events
            .iter()
            .any(|e| matches!(e, Event::Vet { alias, .. } if alias == "alice")),
        "{:?}",
        pair.b_events
    );
    assert!(connected(&pair.b_events).is_empty());
    assert_eq!(pair.b.remote_key(pair.b_to_a), Some(&public_key(&[1; 32])));
    // Alice is ready (her handshake is done) and talks at once: held by bob.
    let outs = command(&mut pair.a, NOW, "send bob early words");
    let bytes = sent_bytes(&outs, pair.a_to_b);
    let held = pair.b.handle_input(
        NOW,
        Input::Received {
            peer: pair.b_to_a,
            bytes: &bytes,
        },
    );
    assert_eq!(held.unwrap(), Handled::Consumed(0));
    assert!(texts(&events(&drain(&mut pair.b, NOW).0)).is_empty());
    let outs = input(
        &mut pair.b,
        NOW,
        Input::Vetted {
            peer: pair.b_to_a,
            trusted: true,
        },
    );
    assert_eq!(connected(&events(&outs)).len(), 1);
    let got = receive(&mut pair.b, NOW, pair.b_to_a, &bytes);
    assert_eq!(texts(&events(&got)), ["early words"]);
}

#[test]
fn an_untrusted_key_closes_the_link_and_the_peer_is_told_why() {
    let mut pair = Pair::connect(|name, id| {
        if id == 2 {
            vetting(name, id)
        } else {
            secure(name, id)
        }
    });
    let outs = input(
        &mut pair.b,
        NOW,
        Input::Vetted {
            peer: pair.b_to_a,
            trusted: false,
        },
    );
    assert_eq!(reasons(&events(&outs)), [Reason::Untrusted]);
    assert!(outs.contains(&Out::Close(pair.b_to_a)));
    let bye = sent_bytes(&outs, pair.b_to_a);
    let got = receive(&mut pair.a, NOW, pair.a_to_b, &bye);
    let told = reasons(&events(&got));
    assert!(
        matches!(&told[..], [Reason::Bye(why)] if why.contains("your key")),
        "{told:?}"
    );
    assert!(!Reason::<String>::Untrusted.redials());
}

#[test]
fn a_text_peer_of_a_secure_node_gets_its_lines_in_the_clear() {
    let mut b = TestNode::new(secure("bob", 2));
    let peer = accept(&mut b);
    receive(&mut b, NOW, peer, b"hi\n");
    let outs = command(&mut b, NOW, "send #1 hello netcat");
    assert_eq!(sent_bytes(&outs, peer), b"hello netcat\n");
}

#[test]
fn frames_queued_for_a_secure_peer_that_is_dropped_are_never_sent_unsealed() {
    let mut pair = Pair::connect(secure);
    // A chat (its receipt queued) and, in the same read, a tampered frame.
    let outs = command(&mut pair.a, NOW, "send bob one");
    let mut bytes = sent_bytes(&outs, pair.a_to_b);
    let outs = command(&mut pair.a, NOW, "send bob two");
    let mut second = sent_bytes(&outs, pair.a_to_b);
    let last = second.len() - 1;
    second[last] ^= 1;
    bytes.extend(second);
    let got = receive(&mut pair.b, NOW, pair.b_to_a, &bytes);
    assert_eq!(texts(&events(&got)), ["one"]);
    // Nothing goes out: the receipt of "one" would be plaintext now that the
    // session is gone, and a failed session seals no goodbye.
    let sent = got
        .iter()
        .filter(|o| matches!(o, Out::Tx(p, _) if *p == pair.b_to_a))
        .count();
    assert_eq!(sent, 0, "{got:?}");
    assert!(got.contains(&Out::Close(pair.b_to_a)));
}

#[test]
fn a_link_closed_mid_handshake_without_a_room_key_is_just_closed() {
    for (a_key, b_key) in [(None, None), (Some(4), Some(4))] {
        let mut a = TestNode::new(keyed("alice", 1, a_key));
        let mut b = TestNode::new(keyed("bob", 2, b_key));
        let outs = command(&mut a, NOW, "connect 127.0.0.1 4000");
        let Some(&Out::Connect(to_b, ..)) = outs.first() else {
            panic!()
        };
        let to_a = accept(&mut b);
        let outs = input(
            &mut a,
            NOW,
            Input::Connected {
                peer: to_b,
                addr: addr(4000),
                entropy: [0xa2; 32],
            },
        );
        // Bob's banner reaches alice; her message 1 is sent; then bob goes.
        let back = receive(&mut b, NOW, to_a, &sent_bytes(&outs, to_b));
        let _ = receive(&mut a, NOW, to_b, &sent_bytes(&back, to_a));
        let closed = |node: &mut TestNode, peer| {
            reasons(&events(&input(
                node,
                NOW,
                Input::Closed { peer, error: None },
            )))
        };
        if a_key.is_none() {
            assert_eq!(closed(&mut a, to_b), [Reason::Closed]);
        }
        // The listener's side of a room link that closes is just closed.
        assert_eq!(closed(&mut b, to_a), [Reason::Closed], "{b_key:?}");
    }
}

#[test]
fn frames_queued_for_a_secure_link_kept_to_redial_are_never_sent_unsealed() {
    let mut pair = Pair::connect(|name, id| {
        let mut config = secure(name, id);
        config.reconnect = true;
        config
    });
    // Bob's chat (alice queues its receipt) and, in the same read, a tampered frame.
    let outs = command(&mut pair.b, NOW, "send alice one");
    let mut bytes = sent_bytes(&outs, pair.b_to_a);
    let outs = command(&mut pair.b, NOW, "send alice two");
    let mut second = sent_bytes(&outs, pair.b_to_a);
    let last = second.len() - 1;
    second[last] ^= 1;
    bytes.extend(second);
    let got = receive(&mut pair.a, NOW, pair.a_to_b, &bytes);
    assert_eq!(texts(&events(&got)), ["one"]);
    // Alice keeps the link to dial again; the receipt, which its new plaintext
    // state cannot seal, is not sent.
    assert_eq!(
        pair.a.phase(pair.a_to_b),
        Some(meshtalk_core::node::Phase::Reconnecting)
    );
    assert!(
        !got.iter()
            .any(|o| matches!(o, Out::Tx(p, _) if *p == pair.a_to_b)),
        "{got:?}"
    );
}
