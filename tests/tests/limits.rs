//! What any one peer may cost a node, in virtual time: dead native peers are
//! pinged then dropped, a frame left partial closes its peer, silent text peers
//! stay, connections over the per-IP limit are told why, long texts are refused.

use std::net::SocketAddr;

use meshtalk_core::command;
use meshtalk_core::limits;
use meshtalk_core::node::{Config, Event, Fault, Handled, Input, Kind, NodeError, Reason, Refusal};
use meshtalk_core::peers::PeerId;
use meshtalk_core::time::{Duration, Instant};
use meshtalk_core::wire::{self, Message};

use meshtalk_tests::harness::{
    Out, TestNode, command, drain, events, input, messages, receive, sent_bytes,
};

fn config(name: &str, id: u64) -> Config {
    Config::new(name, id).unwrap()
}

fn addr(ip: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, ip], port))
}

fn secs(s: u64) -> Instant {
    Instant::from_millis(s * 1000)
}

fn timeout(node: &mut TestNode, now: Instant) -> Vec<Out> {
    input(node, now, Input::Timeout { held: &[] })
}

fn accept(node: &mut TestNode, from: SocketAddr) -> PeerId {
    match node
        .handle_input(
            Instant::ZERO,
            Input::Accepted {
                addr: from,
                entropy: [0; 32],
            },
        )
        .unwrap()
    {
        Handled::Accepted(peer) => peer,
        other => panic!("{other:?}"),
    }
}

fn disconnected(outs: &[Out]) -> Option<Reason<String>> {
    events(outs).into_iter().find_map(|e| match e {
        Event::Disconnected { reason, .. } => Some(reason),
        _ => None,
    })
}

fn frame(msg: Message<'_>) -> Vec<u8> {
    let mut buf = [0u8; 256];
    let n = msg.encode_frame(&mut buf).unwrap();
    buf[..n].to_vec()
}

fn pings(bytes: &[u8]) -> usize {
    messages(bytes)
        .iter()
        .filter(|m| m.starts_with("Ping"))
        .count()
}

/// Two native nodes, a (dialled b) and b, linked by hand at time zero.
struct Link {
    a: TestNode,
    b: TestNode,
    a_to_b: PeerId,
    b_to_a: PeerId,
}

impl Link {
    fn new() -> Link {
        Link::with(config("alice", 1), config("bob", 2))
    }

    fn with(a: Config, b: Config) -> Link {
        let mut a = TestNode::new(a);
        let mut b = TestNode::new(b);
        let outs = command(&mut a, Instant::ZERO, "connect 10.0.0.2 4000");
        let a_to_b = a.peers().next().unwrap().id;
        assert!(
            outs.iter().any(|o| matches!(o, Out::Connect(..))),
            "a dials"
        );
        let b_to_a = accept(&mut b, addr(1, 5000));
        let mut link = Link {
            a,
            b,
            a_to_b,
            b_to_a,
        };
        let outs = input(
            &mut link.a,
            Instant::ZERO,
            Input::Connected {
                entropy: [0; 32],
                peer: a_to_b,
                addr: addr(2, 4000),
            },
        );
        link.carry(Instant::ZERO, outs, true);
        assert!(
            link.a
                .peers()
                .all(|p| p.phase == meshtalk_core::node::Phase::Ready(Kind::Native))
        );
        link
    }

    /// Delivers what one side sent (a's if `from_a`) and the answers, until quiet;
    /// returns every output on the way.
    fn carry(&mut self, now: Instant, outs: Vec<Out>, from_a: bool) -> Vec<Out> {
        let mut all = Vec::new();
        let mut queue = vec![(outs, from_a)];
        while let Some((outs, from_a)) = queue.pop() {
            let (from, to, node) = if from_a {
                (self.a_to_b, self.b_to_a, &mut self.b)
            } else {
                (self.b_to_a, self.a_to_b, &mut self.a)
            };
            let bytes = sent_bytes(&outs, from);
            all.extend(outs);
            if !bytes.is_empty() {
                queue.push((receive(node, now, to, &bytes), !from_a));
            }
        }
        all
    }
}

// ---- dead peers ----

#[test]
fn a_silent_native_peer_is_pinged_once_ping_after_has_passed() {
    let mut link = Link::new();
    // Waking early is allowed: the handshake's old deadlines may come first.
    timeout(&mut link.a, secs(1));
    let (_, wake) = drain(&mut link.a, secs(1));
    assert_eq!(wake, Some(Instant::ZERO + limits::PING_AFTER));
    let early = timeout(&mut link.a, secs(14));
    assert_eq!(pings(&sent_bytes(&early, link.a_to_b)), 0);
    let outs = timeout(&mut link.a, secs(15));
    assert_eq!(pings(&sent_bytes(&outs, link.a_to_b)), 1);
    assert!(
        events(&outs).is_empty(),
        "a ping is not news for the person"
    );
}

#[test]
fn a_pinged_peer_that_stays_silent_is_dropped_and_its_unacked_messages_reported() {
    let mut link = Link::new();
    // Sent, but b never gets it, so it never confirms it.
    command(&mut link.a, secs(1), "send bob are you there");
    timeout(&mut link.a, secs(15));
    let before = timeout(&mut link.a, secs(24));
    assert_eq!(disconnected(&before), None);
    let outs = timeout(&mut link.a, secs(25));
    let reason = disconnected(&outs).expect("dropped");
    assert_eq!(reason, Reason::NoAnswer(Duration::from_secs(25)));
    assert_eq!(reason.to_string(), "no answer for 25 s");
    assert!(
        events(&outs)
            .iter()
            .any(|e| matches!(e, Event::Undelivered { id: 1, .. }))
    );
    assert!(outs.contains(&Out::Close(link.a_to_b)));
    assert!(
        messages(&sent_bytes(&outs, link.a_to_b))
            .iter()
            .any(|m| m.contains("no answer for 25 s")),
        "the peer is told why, should it hear"
    );
    assert_eq!(link.a.peers().count(), 0);
}

#[test]
fn a_peer_that_answers_pings_stays_connected_however_long_it_is_quiet() {
    let mut link = Link::new();
    let mut pinged = 0;
    for s in (5..=600).step_by(5) {
        let outs = timeout(&mut link.a, secs(s));
        pinged += pings(&sent_bytes(&outs, link.a_to_b));
        let outs = link.carry(secs(s), outs, true);
        assert_eq!(disconnected(&outs), None, "at {s} s");
        let outs = timeout(&mut link.b, secs(s));
        let outs = link.carry(secs(s), outs, false);
        assert_eq!(disconnected(&outs), None, "at {s} s");
    }
    assert!(pinged > 0, "the quiet link was pinged");
    assert_eq!(link.a.peers().count(), 1);
    assert_eq!(link.b.peers().count(), 1);
}

#[test]
fn any_bytes_from_the_peer_restart_its_silence() {
    let mut link = Link::new();
    let outs = command(&mut link.b, secs(10), "send alice still here");
    link.carry(secs(10), outs, false);
    let outs = timeout(&mut link.a, secs(15));
    assert_eq!(
        pings(&sent_bytes(&outs, link.a_to_b)),
        0,
        "heard from 5 s ago"
    );
    let outs = timeout(&mut link.a, secs(25));
    assert_eq!(pings(&sent_bytes(&outs, link.a_to_b)), 1);
    // Half a frame is a sign of life too.
    let ping_done = receive(&mut link.a, secs(30), link.a_to_b, &[0x05]);
    assert_eq!(disconnected(&ping_done), None);
    let outs = timeout(&mut link.a, secs(35));
    assert_eq!(disconnected(&outs), None, "its answer counts from 30 s");
}

#[test]
fn a_peer_whose_hello_predates_pings_is_never_pinged() {
    let mut b = TestNode::new(config("bob", 2));
    let peer = accept(&mut b, addr(1, 5000));
    let mut stream = b"MESHTALK/1 old\n".to_vec();
    stream.extend(frame(Message::Hello {
        minor: 0,
        node: 9,
        name: "old",
    }));
    receive(&mut b, Instant::ZERO, peer, &stream);
    let outs = timeout(&mut b, secs(3600));
    assert_eq!(pings(&sent_bytes(&outs, peer)), 0);
    assert_eq!(disconnected(&outs), None);
    assert_eq!(drain(&mut b, secs(3600)).1, None, "nothing to wake for");
}

#[test]
fn without_ping_after_a_quiet_native_peer_is_left_alone() {
    let mut a = config("alice", 1);
    a.ping_after = None;
    let mut link = Link::with(a, config("bob", 2));
    timeout(&mut link.a, secs(1));
    // Its announces aside, nothing to wake for.
    let next = Instant::ZERO + limits::ANNOUNCE_SOON + limits::ANNOUNCE_EVERY;
    assert_eq!(
        drain(&mut link.a, secs(1)).1,
        Some(next),
        "only the next announce"
    );
    let outs = timeout(&mut link.a, secs(3600));
    let sent = messages(&sent_bytes(&outs, link.a_to_b));
    assert!(
        sent.len() == 1 && sent[0].starts_with("Announce"),
        "{sent:?}"
    );
    assert_eq!(disconnected(&outs), None);
}

#[test]
fn announces_go_to_the_links_that_know_them_never_to_an_older_node() {
    let mut link = Link::new();
    let old = accept(&mut link.a, addr(3, 5000));
    let mut stream = b"MESHTALK/1 old\n".to_vec();
    stream.extend(frame(Message::Hello {
        minor: wire::MINOR_ROUTE,
        node: 9,
        name: "old",
    }));
    receive(&mut link.a, Instant::ZERO, old, &stream);
    let outs = timeout(&mut link.a, secs(1));
    let announces = |to| {
        messages(&sent_bytes(&outs, to))
            .iter()
            .filter(|m| m.starts_with("Announce"))
            .count()
    };
    assert_eq!(announces(link.a_to_b), 1);
    assert_eq!(announces(old), 0, "an older node cannot read one");
}

#[test]
fn ping_and_pong_round_trip_through_a_frame() {
    for msg in [
        Message::Ping { nonce: 7 },
        Message::Pong { nonce: u32::MAX },
    ] {
        let bytes = frame(msg);
        assert!(bytes.len() <= msg.frame_len());
        assert_eq!(messages(&bytes), [format!("{msg:?}")]);
    }
    const { assert!(wire::MINOR >= wire::MINOR_PING) };
}

// ---- partial frames ----

#[test]
fn a_frame_left_partial_past_the_frame_timeout_closes_its_peer() {
    let mut link = Link::new();
    let chat = frame(Message::Chat {
        id: 1,
        text: "slow",
    });
    receive(&mut link.b, secs(1), link.b_to_a, &chat[..2]);
    // One byte now and then does not buy more time for the same frame.
    receive(&mut link.b, secs(6), link.b_to_a, &chat[2..3]);
    let outs = timeout(&mut link.b, secs(10));
    assert_eq!(disconnected(&outs), None);
    let outs = timeout(&mut link.b, secs(11));
    assert_eq!(
        disconnected(&outs),
        Some(Reason::Fault(Fault::FrameUnfinished))
    );
    assert!(outs.contains(&Out::Close(link.b_to_a)));
}

#[test]
fn a_peer_whose_bytes_the_shell_holds_is_neither_dead_nor_late_with_its_frame() {
    let mut link = Link::new();
    let chat = frame(Message::Chat {
        id: 1,
        text: "held back",
    });
    receive(&mut link.b, secs(1), link.b_to_a, &chat[..2]);
    // Flow control holds the rest of the peer's bytes for a minute; the shell
    // says so with each timeout.
    for at in (5..=60).step_by(5) {
        let held = [link.b_to_a];
        let outs = input(&mut link.b, secs(at), Input::Timeout { held: &held });
        assert_eq!(disconnected(&outs), None, "at {at} s");
    }
    let outs = receive(&mut link.b, secs(61), link.b_to_a, &chat[2..]);
    assert!(events(&outs).iter().any(|e| matches!(e,
        Event::Message { text, .. } if text == "held back")));
}

#[test]
fn frames_that_each_end_in_time_never_trip_the_frame_timeout() {
    let mut link = Link::new();
    let mut stream = Vec::new();
    for id in 1..=3 {
        stream.extend(frame(Message::Chat { id, text: "part" }));
    }
    // Each frame split across reads 9 s apart: every one ends within 10 s of its start.
    for (n, chunk) in stream.chunks(4).enumerate() {
        let now = secs(9 * n as u64);
        let outs = receive(&mut link.b, now, link.b_to_a, chunk);
        assert_eq!(disconnected(&outs), None);
        let outs = timeout(&mut link.b, now);
        assert_eq!(disconnected(&outs), None);
    }
}

// ---- text peers ----

#[test]
fn a_silent_text_peer_is_never_timed_out() {
    let mut b = TestNode::new(config("bob", 2));
    let talker = accept(&mut b, addr(1, 5000));
    receive(&mut b, Instant::ZERO, talker, b"hello\n");
    let mute = accept(&mut b, addr(3, 5000));
    let outs = timeout(&mut b, secs(1));
    assert!(
        events(&outs).iter().any(|e| matches!(
            e,
            Event::Connected {
                kind: Kind::Text(_),
                ..
            }
        )),
        "the mute one is a text peer after its greeting time"
    );
    assert_eq!(drain(&mut b, secs(1)).1, None, "nothing left to wake for");
    let outs = timeout(&mut b, secs(24 * 3600));
    assert!(outs.is_empty(), "{outs:?}");
    assert_eq!(b.peers().count(), 2);
    let _ = mute;
}

// ---- connections per IP ----

fn per_ip_node(max: usize) -> TestNode {
    let mut c = config("bob", 2);
    c.max_per_ip = max;
    TestNode::new(c)
}

#[test]
fn a_text_peer_over_the_per_ip_limit_is_told_why_in_a_line_and_closed() {
    let mut b = per_ip_node(2);
    let first = accept(&mut b, addr(7, 1));
    receive(&mut b, Instant::ZERO, first, b"one\n");
    let second = accept(&mut b, addr(7, 2));
    receive(&mut b, Instant::ZERO, second, b"two\n");
    let third = accept(&mut b, addr(7, 3));
    let outs = receive(&mut b, secs(1), third, b"three\n");
    let told = String::from_utf8(sent_bytes(&outs, third)).unwrap();
    assert!(
        told.starts_with("meshtalk: too many connections from your address (at most 2)"),
        "{told}"
    );
    assert!(told.ends_with('\n'));
    assert!(outs.contains(&Out::Close(third)));
    assert!(events(&outs).iter().any(|e| matches!(
        e,
        Event::Refused {
            why: Refusal::PerIp { max: 2 },
            ..
        }
    )));
    assert!(
        !events(&outs)
            .iter()
            .any(|e| matches!(e, Event::Message { .. })),
        "the refused peer's text is not shown"
    );
    let outs = command(
        &mut b,
        secs(2),
        &format!("send #{} still here", first.number()),
    );
    assert_eq!(sent_bytes(&outs, first), b"still here\n");
}

#[test]
fn a_native_peer_over_the_per_ip_limit_gets_a_banner_and_a_goodbye_saying_why() {
    let mut b = per_ip_node(1);
    let first = accept(&mut b, addr(7, 1));
    receive(&mut b, Instant::ZERO, first, b"hi\n");
    let second = accept(&mut b, addr(7, 2));
    let outs = receive(&mut b, secs(1), second, b"MESHTALK/1 carol\n");
    // The banner first: the peer's hello then says how it can be told why.
    assert_eq!(sent_bytes(&outs, second), b"MESHTALK/1 bob\n");
    // A node of minor version 1 knows no typed refusal: a goodbye in words.
    let hello = frame(Message::Hello {
        minor: 1,
        node: 3,
        name: "carol",
    });
    let outs = receive(&mut b, secs(1), second, &hello);
    let said = messages(&sent_bytes(&outs, second));
    assert_eq!(said.len(), 1);
    assert!(
        said[0].starts_with("Bye") && said[0].contains("too many connections"),
        "{said:?}"
    );
    assert!(outs.contains(&Out::Close(second)));
}

#[test]
fn a_native_peer_over_the_per_ip_limit_that_knows_typed_refusals_gets_one_with_the_limit() {
    let mut b = per_ip_node(1);
    let first = accept(&mut b, addr(7, 1));
    receive(&mut b, Instant::ZERO, first, b"hi\n");
    let second = accept(&mut b, addr(7, 2));
    receive(&mut b, secs(1), second, b"MESHTALK/1 carol\n");
    let hello = frame(Message::Hello {
        minor: wire::MINOR_REFUSE,
        node: 3,
        name: "carol",
    });
    let outs = receive(&mut b, secs(1), second, &hello);
    let (code, arg) = Refusal::PerIp { max: 1 }.code();
    assert_eq!(
        sent_bytes(&outs, second),
        frame(Message::Refuse { code, arg })
    );
    assert!(outs.contains(&Out::Close(second)));
    assert!(events(&outs).iter().any(|e| matches!(
        e,
        Event::Refused {
            why: Refusal::PerIp { max: 1 },
            ..
        }
    )));
}

#[test]
fn a_refused_native_peer_that_sends_no_hello_is_told_why_in_words_at_the_deadline() {
    let mut b = per_ip_node(1);
    let first = accept(&mut b, addr(7, 1));
    receive(&mut b, Instant::ZERO, first, b"hi\n");
    let second = accept(&mut b, addr(7, 2));
    receive(&mut b, secs(1), second, b"MESHTALK/1 carol\n");
    let outs = timeout(&mut b, secs(30));
    let said = messages(&sent_bytes(&outs, second));
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].starts_with("Bye") && said[0].contains("too many connections"),
        "{said:?}"
    );
    assert!(outs.contains(&Out::Close(second)));
    assert!(events(&outs).iter().any(|e| matches!(
        e,
        Event::Refused {
            why: Refusal::PerIp { max: 1 },
            ..
        }
    )));
}

#[test]
fn the_per_ip_limit_leaves_other_addresses_and_freed_places_alone() {
    let mut b = per_ip_node(1);
    let first = accept(&mut b, addr(7, 1));
    receive(&mut b, Instant::ZERO, first, b"hi\n");
    let elsewhere = accept(&mut b, addr(8, 1));
    let outs = receive(&mut b, Instant::ZERO, elsewhere, b"hello\n");
    assert!(
        events(&outs)
            .iter()
            .any(|e| matches!(e, Event::Connected { .. })),
        "another address is served"
    );
    input(
        &mut b,
        secs(1),
        Input::Closed {
            peer: first,
            error: None,
        },
    );
    let again = accept(&mut b, addr(7, 2));
    let outs = receive(&mut b, secs(1), again, b"back\n");
    assert!(
        events(&outs)
            .iter()
            .any(|e| matches!(e, Event::Connected { .. })),
        "a place freed is a place to take"
    );
}

// ---- message text ----

#[test]
fn a_message_over_the_configured_text_limit_is_refused_with_too_long() {
    let mut a = config("alice", 1);
    a.max_text = 10;
    let mut link = Link::with(a, config("bob", 2));
    assert_eq!(link.a.max_text(), 10);
    let cmd = command::parse("send bob 12345678901").unwrap().unwrap();
    let err = link
        .a
        .handle_input(secs(1), Input::Command(cmd))
        .unwrap_err();
    assert_eq!(err, NodeError::TooLong { len: 11, max: 10 });
    assert!(drain(&mut link.a, secs(1)).0.is_empty(), "nothing sent");
    let cmd = command::parse("broadcast 12345678901").unwrap().unwrap();
    let err = link
        .a
        .handle_input(secs(1), Input::Command(cmd))
        .unwrap_err();
    assert_eq!(err, NodeError::TooLong { len: 11, max: 10 });
    let outs = command(&mut link.a, secs(1), "send bob 1234567890");
    assert!(
        !sent_bytes(&outs, link.a_to_b).is_empty(),
        "at the limit it goes"
    );
}

#[test]
fn the_text_limit_is_capped_by_what_a_frame_can_carry() {
    let node = TestNode::new(config("alice", 1));
    assert_eq!(limits::MAX_TEXT, 4096);
    assert_eq!(node.max_text(), TestNode::MAX_TEXT);
}

#[test]
fn a_text_peers_line_over_the_configured_limit_is_cut_into_messages() {
    let mut c = config("bob", 2);
    c.max_text = 8;
    let mut b = TestNode::new(c);
    let peer = accept(&mut b, addr(1, 5000));
    let outs = receive(
        &mut b,
        Instant::ZERO,
        peer,
        "aaaaaaaabbbbbbbbcc\n".as_bytes(),
    );
    let texts: Vec<String> = events(&outs)
        .into_iter()
        .filter_map(|e| match e {
            Event::Message { text, .. } => Some(text),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["aaaaaaaa", "bbbbbbbb", "cc"]);
}

#[test]
fn a_text_limit_under_one_character_still_takes_every_byte() {
    let mut c = config("bob", 2);
    c.max_text = 1;
    let mut b = TestNode::new(c);
    let peer = accept(&mut b, addr(1, 5000));
    let outs = receive(&mut b, Instant::ZERO, peer, "é\n".as_bytes());
    let count = events(&outs)
        .iter()
        .filter(|e| matches!(e, Event::Message { .. }))
        .count();
    assert_eq!(count, 2, "each byte a message, none stuck");
}

// ---- handshake ----

#[test]
fn a_banner_trickled_byte_by_byte_is_closed_when_its_time_from_the_first_byte_runs_out() {
    let mut b = TestNode::new(config("bob", 2));
    let peer = accept(&mut b, addr(1, 5000));
    for (n, byte) in b"MESHTALK/1 trickle".iter().enumerate() {
        let outs = receive(&mut b, Instant::from_millis(100 * n as u64), peer, &[*byte]);
        assert_eq!(disconnected(&outs), None);
    }
    let outs = timeout(&mut b, Instant::ZERO + limits::BANNER_TIMEOUT);
    assert_eq!(
        disconnected(&outs),
        Some(Reason::Fault(Fault::BannerUnfinished))
    );
    assert!(outs.contains(&Out::Close(peer)));
}
