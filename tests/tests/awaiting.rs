//! `Node::awaiting`: the receipts a peer still owes, which a shell that leaves
//! reports as undelivered.

use std::net::SocketAddr;

use meshtalk_core::node::{Config, Handled, Input};
use meshtalk_core::peers::PeerId;
use meshtalk_core::time::Instant;
use meshtalk_core::wire::Message;

use meshtalk_tests::harness::{TestNode, command, drain, input, receive};

fn frame(msg: Message<'_>) -> Vec<u8> {
    let mut buf = [0u8; 256];
    let n = msg.encode_frame(&mut buf).unwrap();
    buf[..n].to_vec()
}

/// A node with one native peer, `bob`, that greeted it.
fn node_with_bob() -> (TestNode, PeerId) {
    let mut node = TestNode::new(Config::new("alice", 1).unwrap());
    let addr = SocketAddr::from(([10, 0, 0, 2], 5000));
    let peer = match node.handle_input(
        Instant::ZERO,
        Input::Accepted {
            addr,
            entropy: [0; 32],
        },
    ) {
        Ok(Handled::Accepted(peer)) => peer,
        other => panic!("{other:?}"),
    };
    drain(&mut node, Instant::ZERO);
    receive(&mut node, Instant::ZERO, peer, b"MESHTALK/1 bob\n");
    let hello = Message::Hello {
        minor: 1,
        node: 2,
        name: "bob",
    };
    receive(&mut node, Instant::ZERO, peer, &frame(hello));
    (node, peer)
}

#[test]
fn awaiting_lists_the_sent_messages_not_yet_confirmed_oldest_first() {
    let (mut node, bob) = node_with_bob();
    for text in ["one", "two", "three"] {
        command(&mut node, Instant::ZERO, &format!("send bob {text}"));
    }
    assert_eq!(node.awaiting(bob), [1, 2, 3]);
    receive(
        &mut node,
        Instant::ZERO,
        bob,
        &frame(Message::Ack { id: 2 }),
    );
    assert_eq!(node.awaiting(bob), [1, 3]);
}

#[test]
fn a_peer_that_is_gone_owes_nothing() {
    let (mut node, bob) = node_with_bob();
    command(&mut node, Instant::ZERO, "send bob hi");
    assert_eq!(node.awaiting(bob), [1]);
    input(
        &mut node,
        Instant::ZERO,
        Input::Closed {
            peer: bob,
            error: None,
        },
    );
    assert!(node.awaiting(bob).is_empty());
}
