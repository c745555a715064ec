//! The node benches' set-up, shared by the timed bench (`node`) and the
//! instruction counts (`insns`), so both measure the same node in the same room:
//! the host's node type, ready native and text peers, feeding and draining.

#![allow(dead_code)] // each bench uses a different part of it

use std::net::{Ipv4Addr, SocketAddr};

use meshtalk_core::node::{Config, Event, Handled, Input, Node, Output};
use meshtalk_core::peers::PeerId;
use meshtalk_core::time::Instant;
use meshtalk_core::wire::Message;

/// The host's node: 1024 peers, 8 KiB frames, 128 KiB of pending output.
pub type BenchNode = Node<1024, 8192, 131072>;

/// Text bytes per message.
pub const SIZE: usize = 64;

/// What a drain produced.
#[derive(Default)]
pub struct Drained {
    /// `Output::Transmit` values: each refers to bytes the node stores once,
    /// however many peers it is for (no copy per receiver, no socket write).
    pub transmits: u64,
    /// `Event::Message` values: messages shown to the person.
    pub messages: u64,
}

/// Polls the node until it has nothing more to do, counting what came out.
#[inline]
pub fn drain(node: &mut BenchNode, got: &mut Drained) {
    loop {
        match node.poll_output(Instant::ZERO) {
            Output::Timeout(_) => return,
            Output::Transmit { .. } => got.transmits += 1,
            Output::Event(Event::Message { .. }) => got.messages += 1,
            _ => {}
        }
    }
}

/// Feeds `bytes` from `peer` in 4 KiB chunks, draining after every input.
#[inline]
pub fn feed(node: &mut BenchNode, peer: PeerId, bytes: &[u8], got: &mut Drained) {
    for mut chunk in bytes.chunks(4096) {
        while !chunk.is_empty() {
            let input = Input::Received { peer, bytes: chunk };
            match node.handle_input(Instant::ZERO, input) {
                Ok(Handled::Consumed(n)) => chunk = &chunk[n..],
                other => panic!("unexpected {other:?}"),
            }
            drain(node, got);
        }
    }
}

/// `msg` as one frame.
pub fn frame(msg: &Message<'_>) -> Vec<u8> {
    let mut out = vec![0u8; msg.frame_len()];
    let n = msg.encode_frame(&mut out).expect("room");
    out.truncate(n);
    out
}

/// A message text of [`SIZE`] bytes that names `i`.
pub fn text(i: usize) -> String {
    let mut t = format!("message {i} ");
    while t.len() < SIZE {
        t.push('x');
    }
    t
}

/// A node (a hub if `hub`) with `natives` ready native peers, each having sent
/// its banner and hello. Needs a large stack: the node is built on it.
pub fn node_with_peers(natives: usize, hub: bool) -> (Box<BenchNode>, Vec<PeerId>) {
    let mut config = Config::new("bench", 1).expect("valid name");
    // Every bench peer comes from 127.0.0.1: let them all in.
    config.max_per_ip = 1024;
    config.hub = hub;
    let mut node = Box::new(BenchNode::new(config));
    let mut got = Drained::default();
    let peers = (0..natives)
        .map(|i| {
            let peer = accept(&mut node, i);
            let name = format!("peer{i}");
            feed(
                &mut node,
                peer,
                format!("MESHTALK/1 {name}\n").as_bytes(),
                &mut got,
            );
            let hello = Message::Hello {
                minor: 0,
                node: 1000 + i as u64,
                name: &name,
            };
            feed(&mut node, peer, &frame(&hello), &mut got);
            peer
        })
        .collect();
    assert_eq!(node.peers().count(), natives, "every peer is ready");
    (node, peers)
}

/// A text peer (a plain-text program such as netcat), made one by its first line.
pub fn text_peer(node: &mut BenchNode, i: usize) -> PeerId {
    let peer = accept(node, i);
    let mut got = Drained::default();
    feed(
        node,
        peer,
        format!("hello from text peer {i}\n").as_bytes(),
        &mut got,
    );
    assert_eq!(got.messages, 1, "the text peer's first line is shown");
    peer
}

/// The `i`th connection accepted from 127.0.0.1, drained.
fn accept(node: &mut BenchNode, i: usize) -> PeerId {
    let port = u16::try_from(10_000 + i).expect("a port");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(Handled::Accepted(peer)) = node.handle_input(
        Instant::ZERO,
        Input::Accepted {
            addr,
            entropy: [0; 32],
        },
    ) else {
        panic!("accept refused");
    };
    drain(node, &mut Drained::default());
    peer
}
