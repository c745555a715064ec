//! Sealed batches on secure links: frames queued one after the other for the
//! same peer go out in one Noise message (at most `MAX_BATCH`, `BATCH_BYTES`),
//! in order, and a message that does not open to whole frames closes the link.

use std::net::SocketAddr;

use meshtalk_core::frame::{self, FrameDecoder};
use meshtalk_core::limits::{BATCH_BYTES, MAX_BATCH};
use meshtalk_core::node::Node;
use meshtalk_core::node::{Config, Event, Fault, Handled, Input, Reason, Secure};
use meshtalk_core::noise::{PeerError, Role, Session};
use meshtalk_core::peers::PeerId;
use meshtalk_core::time::Instant;
use meshtalk_core::wire::{self, Message};
use meshtalk_tests::harness::{Out, command, drain, events, input, receive, texts};

/// Nodes with room to take several sealed messages in one input (the tests' 4 KiB
/// queues take one at a time).
type TestNode = Node<8, 1024, 32768>;

const NOW: Instant = Instant::ZERO;

fn secure(name: &str, id: u64) -> Config {
    let mut config = Config::new(name, id).unwrap();
    config.secure = Some(Secure::new([id as u8; 32]));
    config
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The transmits to `to`, one entry per output.
fn transmits(outs: &[Out], to: PeerId) -> Vec<Vec<u8>> {
    outs.iter()
        .filter_map(|o| match o {
            Out::Tx(p, data) if *p == to => Some(data.clone()),
            _ => None,
        })
        .collect()
}

/// `dialler` links to `listener` (ids as ports): the two connection ids, the
/// dialler's first.
fn link(dialler: &mut TestNode, listener: &mut TestNode, port: u16) -> (PeerId, PeerId) {
    let outs = command(dialler, NOW, &format!("connect 127.0.0.1 {port}"));
    let Some(&Out::Connect(out, ..)) = outs.first() else {
        panic!("no dial: {outs:?}")
    };
    let Handled::Accepted(inn) = listener
        .handle_input(
            NOW,
            Input::Accepted {
                addr: addr(5000 + port),
                entropy: [port as u8; 32],
            },
        )
        .unwrap()
    else {
        panic!("not accepted")
    };
    let connected = Input::Connected {
        peer: out,
        addr: addr(port),
        entropy: [port as u8 ^ 0x55; 32],
    };
    let mut from_dialler = bytes_to(&input(dialler, NOW, connected), out);
    from_dialler.extend(bytes_to(&drain(listener, NOW).0, inn));
    for _ in 0..8 {
        let back = bytes_to(&receive(listener, NOW, inn, &from_dialler), inn);
        from_dialler = bytes_to(&receive(dialler, NOW, out, &back), out);
    }
    (out, inn)
}

fn bytes_to(outs: &[Out], to: PeerId) -> Vec<u8> {
    transmits(outs, to).concat()
}

/// Alice and bob, linked: (alice, bob, alice's id for bob, bob's for alice).
fn pair() -> (TestNode, TestNode, PeerId, PeerId) {
    let mut alice = TestNode::new(secure("alice", 1));
    let mut bob = TestNode::new(secure("bob", 2));
    let (to_bob, to_alice) = link(&mut alice, &mut bob, 2);
    (alice, bob, to_bob, to_alice)
}

/// What alice's node sends bob for each of `lines` typed, each drained apart.
fn typed(alice: &mut TestNode, to_bob: PeerId, lines: &[String]) -> Vec<u8> {
    let mut wire = Vec::new();
    for line in lines {
        wire.extend(bytes_to(&command(alice, NOW, line), to_bob));
    }
    wire
}

#[test]
fn receipts_queued_together_for_a_peer_go_out_in_one_sealed_message() {
    let (mut alice, mut bob, to_bob, to_alice) = pair();
    let lines: Vec<String> = (0..MAX_BATCH).map(|i| format!("send bob m{i}")).collect();
    let wire = typed(&mut alice, to_bob, &lines);
    let outs = receive(&mut bob, NOW, to_alice, &wire);
    let sealed = transmits(&outs, to_alice);
    assert_eq!(sealed.len(), 1, "one message for {MAX_BATCH} receipts");
    let back = receive(&mut alice, NOW, to_bob, &sealed[0]);
    let delivered = events(&back)
        .iter()
        .filter(|e| matches!(e, Event::Delivered { .. }))
        .count();
    assert_eq!(delivered, MAX_BATCH);
}

#[test]
fn a_sealed_message_carries_at_most_max_batch_frames() {
    let (mut alice, mut bob, to_bob, to_alice) = pair();
    let lines: Vec<String> = (0..=MAX_BATCH).map(|i| format!("send bob m{i}")).collect();
    let wire = typed(&mut alice, to_bob, &lines);
    let outs = receive(&mut bob, NOW, to_alice, &wire);
    assert_eq!(transmits(&outs, to_alice).len(), 2);
    let back = receive(&mut alice, NOW, to_bob, &bytes_to(&outs, to_alice));
    let delivered = events(&back)
        .iter()
        .filter(|e| matches!(e, Event::Delivered { .. }))
        .count();
    assert_eq!(delivered, MAX_BATCH + 1);
}

#[test]
fn a_sealed_message_of_several_frames_is_at_most_batch_bytes() {
    let (mut alice, mut bob, to_bob, to_alice) = pair();
    // Texts so long that two of their frames go over BATCH_BYTES.
    let text = "y".repeat(BATCH_BYTES / 2);
    let lines = vec![format!("send bob {text}"), format!("send bob {text}")];
    let wire = typed(&mut alice, to_bob, &lines);
    let outs = receive(&mut bob, NOW, to_alice, &wire);
    assert_eq!(texts(&events(&outs)), [text.clone(), text]);
    let back = receive(&mut alice, NOW, to_bob, &bytes_to(&outs, to_alice));
    assert_eq!(events(&back).len(), 2, "both receipts: {back:?}");
    // Receipts are small: the two went in one message.
    assert_eq!(transmits(&outs, to_alice).len(), 1);
    // Alice's two long texts went in two messages: each over half of BATCH_BYTES.
    let mut decoder = FrameDecoder::<8192>::new();
    let mut rest: &[u8] = &wire;
    let mut frames = 0;
    while !rest.is_empty() {
        let (n, found) = decoder.decode(rest);
        if let frame::Decoded::Frame(body) = found {
            assert!(body.len() > BATCH_BYTES / 2);
            frames += 1;
        }
        rest = &rest[n..];
    }
    assert_eq!(frames, 2);
}

/// A hub with a sender and two receivers, linked; `at_hub` and `to_hub` name
/// each link at the hub and at the other end, the sender's first.
struct Room {
    hub: TestNode,
    sender: TestNode,
    receivers: Vec<TestNode>,
    at_hub: Vec<PeerId>,
    to_hub: Vec<PeerId>,
}

fn room() -> Room {
    let mut hub = TestNode::new(secure("hub", 10));
    let mut nodes: Vec<TestNode> = (0..3)
        .map(|i| TestNode::new(secure(&format!("n{i}"), 20 + i)))
        .collect();
    let mut at_hub = Vec::new();
    let mut to_hub = Vec::new();
    for node in nodes.iter_mut() {
        let (out, inn) = link(node, &mut hub, 10);
        to_hub.push(out);
        at_hub.push(inn);
    }
    let sender = nodes.remove(0);
    Room {
        hub,
        sender,
        receivers: nodes,
        at_hub,
        to_hub,
    }
}

#[test]
fn room_lines_relayed_in_one_turn_reach_each_peer_in_one_sealed_message_in_order() {
    let mut r = room();
    // The sender's first room line takes its announce along: said and carried
    // first, so that the four below are room lines only.
    let first = typed(&mut r.sender, r.to_hub[0], &["broadcast first".into()]);
    let outs = receive(&mut r.hub, NOW, r.at_hub[0], &first);
    for (k, receiver) in r.receivers.iter_mut().enumerate() {
        receive(
            receiver,
            NOW,
            r.to_hub[k + 1],
            &bytes_to(&outs, r.at_hub[k + 1]),
        );
    }
    // Four frames of about 190 bytes: a batch far from both of its limits.
    let lines: Vec<String> = (0..MAX_BATCH)
        .map(|i| format!("line {i} {}", "z".repeat(150)))
        .collect();
    let said: Vec<String> = lines.iter().map(|l| format!("broadcast {l}")).collect();
    let wire = typed(&mut r.sender, r.to_hub[0], &said);
    let outs = receive(&mut r.hub, NOW, r.at_hub[0], &wire);
    for (k, receiver) in r.receivers.iter_mut().enumerate() {
        let sealed = transmits(&outs, r.at_hub[k + 1]);
        assert_eq!(sealed.len(), 1, "receiver {k}: one message");
        let got = receive(receiver, NOW, r.to_hub[k + 1], &sealed[0]);
        assert_eq!(texts(&events(&got)), lines, "receiver {k}");
    }
    assert!(
        transmits(&outs, r.at_hub[0]).is_empty(),
        "nothing back to the sender"
    );
}

#[test]
fn lines_of_two_senders_queued_together_reach_everyone_in_the_order_taken() {
    let mut r = room();
    // The sender and the first receiver both talk; the hub takes their lines
    // interleaved, before it drains, so its fan-outs alternate who is left out.
    let a: Vec<String> = (0..3).map(|i| format!("a{i}")).collect();
    let b: Vec<String> = (0..3).map(|i| format!("b{i}")).collect();
    for i in 0..3 {
        let wire = typed(&mut r.sender, r.to_hub[0], &[format!("broadcast {}", a[i])]);
        let Ok(Handled::Consumed(n)) = r.hub.handle_input(
            NOW,
            Input::Received {
                peer: r.at_hub[0],
                bytes: &wire,
            },
        ) else {
            panic!()
        };
        assert_eq!(n, wire.len());
        let wire = typed(
            &mut r.receivers[0],
            r.to_hub[1],
            &[format!("broadcast {}", b[i])],
        );
        let Ok(Handled::Consumed(n)) = r.hub.handle_input(
            NOW,
            Input::Received {
                peer: r.at_hub[1],
                bytes: &wire,
            },
        ) else {
            panic!()
        };
        assert_eq!(n, wire.len());
    }
    let outs = drain(&mut r.hub, NOW).0;
    let listener = &mut r.receivers[1];
    let got = receive(listener, NOW, r.to_hub[2], &bytes_to(&outs, r.at_hub[2]));
    assert_eq!(texts(&events(&got)), ["a0", "b0", "a1", "b1", "a2", "b2"]);
    let sender = &mut r.sender;
    let got = receive(sender, NOW, r.to_hub[0], &bytes_to(&outs, r.at_hub[0]));
    assert_eq!(texts(&events(&got)), ["b0", "b1", "b2"]);
    let talker = &mut r.receivers[0];
    let got = receive(talker, NOW, r.to_hub[1], &bytes_to(&outs, r.at_hub[1]));
    assert_eq!(texts(&events(&got)), ["a0", "a1", "a2"]);
}

/// A dialler that speaks protocol 2 by hand, to send what no node would.
struct Hand {
    session: Session,
    peer: PeerId,
}

/// Links a hand-driven dialler to `node`, its keys and name made from `who`.
fn by_hand(node: &mut TestNode, who: u8) -> Hand {
    let mut banner = [0; 64];
    let len = wire::write_secure_banner(false, &mut banner).unwrap();
    let banner = &banner[..len];
    let mut session = Session::new(Role::Initiator, &[who; 32], &[who ^ 0xff; 32], None, banner)
        .expect("a session");
    let Handled::Accepted(peer) = node
        .handle_input(
            NOW,
            Input::Accepted {
                addr: addr(6000),
                entropy: [who ^ 0x0f; 32],
            },
        )
        .unwrap()
    else {
        panic!("not accepted")
    };
    let _ = drain(node, NOW);
    let mut msg = [0; 256];
    let n = session.write_handshake(b"", &mut msg).unwrap();
    let mut wire = banner.to_vec();
    wire.extend(framed(&msg[..n]));
    let outs = receive(node, NOW, peer, &wire);
    // Its banner line, then message 2 with its hello.
    let back = bytes_to(&outs, peer);
    let nl = back.iter().position(|&b| b == b'\n').unwrap();
    let body = frame::body_of(&back[nl + 1..]).expect("message 2, one frame");
    let mut payload = [0; 256];
    session.read_handshake(body, &mut payload).unwrap();
    let mut hello = [0; 128];
    let n = Message::Hello {
        minor: wire::MINOR,
        node: 70 + u64::from(who),
        name: &format!("hand{who}"),
    }
    .encode_frame(&mut hello)
    .unwrap();
    let n = session
        .write_handshake(frame::body_of(&hello[..n]).unwrap(), &mut msg)
        .unwrap();
    let outs = receive(node, NOW, peer, &framed(&msg[..n]));
    assert!(
        events(&outs)
            .iter()
            .any(|e| matches!(e, Event::Connected { .. })),
        "linked: {outs:?}"
    );
    Hand { session, peer }
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = vec![0; body.len() + frame::MAX_HEADER];
    let n = frame::encode(body, &mut out).unwrap();
    out.truncate(n);
    out
}

/// `plain` sealed by the hand's session, framed.
fn sealed(hand: &mut Hand, plain: &[u8]) -> Vec<u8> {
    let mut out = vec![0; plain.len() + 16];
    let n = hand.session.encrypt(plain, &mut out).unwrap();
    framed(&out[..n])
}

/// A chat frame whole, as a node queues it.
fn chat(text: &str) -> Vec<u8> {
    let mut out = [0; 256];
    let n = Message::Chat { id: 1, text }
        .encode_frame(&mut out)
        .unwrap();
    out[..n].to_vec()
}

fn closed_for(outs: &[Out]) -> Vec<Reason<String>> {
    events(outs)
        .into_iter()
        .filter_map(|e| match e {
            Event::Disconnected { reason, .. } => Some(reason),
            _ => None,
        })
        .collect()
}

#[test]
fn frames_sealed_together_by_hand_are_each_read() {
    let mut bob = TestNode::new(secure("bob", 2));
    let mut hand = by_hand(&mut bob, 1);
    let plain = [chat("one"), chat("two")].concat();
    let wire = sealed(&mut hand, &plain);
    let outs = receive(&mut bob, NOW, hand.peer, &wire);
    assert_eq!(texts(&events(&outs)), ["one", "two"]);
}

#[test]
fn an_opened_message_that_is_not_whole_frames_closes_the_link_showing_nothing() {
    let too_many = vec![chat("x"); MAX_BATCH + 1].concat();
    let mut cut = [chat("one"), chat("two")].concat();
    cut.pop();
    let mut trailing = chat("one");
    trailing.push(0x80);
    for plain in [Vec::new(), too_many, cut, trailing] {
        let mut bob = TestNode::new(secure("bob", 2));
        let mut hand = by_hand(&mut bob, 1);
        let wire = sealed(&mut hand, &plain);
        let outs = receive(&mut bob, NOW, hand.peer, &wire);
        assert!(texts(&events(&outs)).is_empty(), "{plain:?} showed text");
        assert_eq!(
            closed_for(&outs),
            [Reason::Fault(Fault::Secure(PeerError::Batch))],
            "{plain:?}"
        );
    }
}

/// A ping frame whole.
fn ping(nonce: u32) -> Vec<u8> {
    let mut out = [0; 64];
    let n = Message::Ping { nonce }.encode_frame(&mut out).unwrap();
    out[..n].to_vec()
}

/// Feeds `bytes` from `peer` without draining.
fn take(node: &mut TestNode, peer: PeerId, bytes: &[u8]) {
    let Ok(Handled::Consumed(n)) = node.handle_input(NOW, Input::Received { peer, bytes }) else {
        panic!("not consumed")
    };
    assert_eq!(n, bytes.len());
}

/// The frames in each sealed message of `wire`, opened by the hand's session.
fn opened(hand: &mut Hand, wire: &[u8]) -> Vec<usize> {
    let mut decoder = FrameDecoder::<2048>::new();
    let mut rest = wire;
    let mut counts = Vec::new();
    while !rest.is_empty() {
        let (n, found) = decoder.decode(rest);
        rest = &rest[n..];
        if let frame::Decoded::Frame(sealed) = found {
            let mut plain = vec![0; sealed.len()];
            let len = hand.session.decrypt(sealed, &mut plain).unwrap();
            let mut at = 0;
            let mut frames = 0;
            while at < len {
                let (head, body) = frame::first(&plain[at..len]).unwrap();
                at += head + body;
                frames += 1;
            }
            counts.push(frames);
        }
    }
    counts
}

#[test]
fn answers_queued_back_to_back_for_a_peer_go_out_in_one_sealed_message() {
    let mut bob = TestNode::new(secure("bob", 2));
    let mut hand = by_hand(&mut bob, 1);
    let wire = sealed(&mut hand, &[ping(1), ping(2), ping(3)].concat());
    let outs = receive(&mut bob, NOW, hand.peer, &wire);
    let wire = bytes_to(&outs, hand.peer);
    assert_eq!(opened(&mut hand, &wire), [3]);
}

#[test]
fn an_answer_for_another_peer_between_does_not_split_a_peers_message() {
    let mut bob = TestNode::new(secure("bob", 2));
    let mut one = by_hand(&mut bob, 1);
    let mut two = by_hand(&mut bob, 2);
    let first = sealed(&mut one, &ping(1));
    take(&mut bob, one.peer, &first);
    let other = sealed(&mut two, &ping(2));
    take(&mut bob, two.peer, &other);
    let again = sealed(&mut one, &ping(3));
    take(&mut bob, one.peer, &again);
    let outs = drain(&mut bob, NOW).0;
    let (to_one, to_two) = (bytes_to(&outs, one.peer), bytes_to(&outs, two.peer));
    assert_eq!(opened(&mut one, &to_one), [2]);
    assert_eq!(opened(&mut two, &to_two), [1]);
}
