//! The node benches' set-up, shared by the timed bench (`node`) and the
//! instruction counts (`insns`), so both measure the same node in the same room:
//! the host's node type, ready native and text peers, feeding and draining.
//!
//! Two rooms: [`node_with_peers`] is a plaintext node (protocol 1: no
//! `Config::secure`), on purpose — it measures the node's own work per message
//! (decoding, routing, one stored frame referred to by every receiver's
//! transmit), the figure the benches have tracked since before secure links;
//! [`secure_node_with_peers`] is the same room speaking protocol 2, every frame
//! opened on the way in and sealed per receiver on the way out, so the
//! difference between the two is what encryption costs the node.

#![allow(dead_code)] // each bench uses a different part of it

use std::net::{Ipv4Addr, SocketAddr};

use meshtalk_core::frame::{self, Decoded, FrameDecoder};
use meshtalk_core::node::{Config, Event, Handled, Input, Node, Output, Secure};
use meshtalk_core::noise::{Role, Session, TAG};
use meshtalk_core::peers::PeerId;
use meshtalk_core::time::Instant;
use meshtalk_core::wire::{self, Message};

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

/// The banner of a secure peer without a room key; the node answers with the same line.
pub const SECURE_BANNER: &[u8] = b"MESHTALK/2 XX\n";

/// 32 bytes that differ for every `i` and `what` (keys and ephemeral seeds of a bench
/// room: fixed so that runs repeat, distinct so that no two sessions share keys).
fn key(what: u8, i: usize) -> [u8; 32] {
    let mut k = [what; 32];
    k[..8].copy_from_slice(&(i as u64).to_le_bytes());
    k
}

/// A secure node (protocol 2; a hub if `hub`) with `natives` ready native peers, each past
/// its Noise handshake; beside each peer, its own end of the session, to seal what it
/// sends with [`sealed`]. Needs a large stack, as [`node_with_peers`].
pub fn secure_node_with_peers(
    natives: usize,
    hub: bool,
) -> (Box<BenchNode>, Vec<(PeerId, Session)>) {
    let mut config = Config::new("bench", 1).expect("valid name");
    config.max_per_ip = 1024;
    config.hub = hub;
    config.secure = Some(Secure::new(key(0xee, 0)));
    let mut node = Box::new(BenchNode::new(config));
    let peers: Vec<_> = (0..natives)
        .map(|i| {
            let peer = accept_with(&mut node, i, key(0xe0, i));
            let mut client = Session::new(
                Role::Initiator,
                &key(0x1d, i),
                &key(0xe1, i),
                None,
                SECURE_BANNER,
            )
            .expect("the banner fits");
            let answer = feed_collect(&mut node, peer, SECURE_BANNER);
            assert_eq!(answer, SECURE_BANNER, "the node answers with its banner");
            let m1 = handshake_frame(&mut client, &[]);
            let m2 = feed_collect(&mut node, peer, &m1);
            let mut payload = [0; 256];
            let mut dec = FrameDecoder::<512>::new();
            let Decoded::Frame(m2) = dec.decode(&m2).1 else {
                panic!("message 2 is one frame");
            };
            let got = client.read_handshake(m2, &mut payload).expect("message 2");
            assert!(matches!(
                Message::decode(&payload[..got]),
                Ok(Message::Hello { .. })
            ));
            let name = format!("peer{i}");
            let hello = frame(&Message::Hello {
                minor: wire::MINOR,
                node: 1000 + i as u64,
                name: &name,
            });
            let body = frame::body_of(&hello).expect("a frame");
            let m3 = handshake_frame(&mut client, body);
            feed_collect(&mut node, peer, &m3);
            (peer, client)
        })
        .collect();
    assert_eq!(node.peers().count(), natives, "every peer is ready");
    (node, peers)
}

/// `msg` as one frame sealed by `session` (the next on its link: seal in sending order).
pub fn sealed(session: &mut Session, msg: &Message<'_>) -> Vec<u8> {
    let plain = frame(msg);
    let len = plain.len() + TAG;
    let mut out = vec![0; frame::header_len(len) + len];
    let head = frame::write_header(len as u32, &mut out).expect("room");
    session.encrypt(&plain, &mut out[head..]).expect("room");
    out
}

/// The next handshake message of `session`, carrying `payload`, as one frame.
fn handshake_frame(session: &mut Session, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() + session.overhead();
    let mut out = vec![0; frame::header_len(len) + len];
    let head = frame::write_header(len as u32, &mut out).expect("room");
    session
        .write_handshake(payload, &mut out[head..])
        .expect("our turn");
    out
}

/// Feeds `bytes` from `peer` and drains; the bytes the node transmitted to it.
fn feed_collect(node: &mut BenchNode, peer: PeerId, mut bytes: &[u8]) -> Vec<u8> {
    let mut sent = Vec::new();
    while !bytes.is_empty() {
        match node.handle_input(Instant::ZERO, Input::Received { peer, bytes }) {
            Ok(Handled::Consumed(n)) => bytes = &bytes[n..],
            other => panic!("unexpected {other:?}"),
        }
        loop {
            match node.poll_output(Instant::ZERO) {
                Output::Timeout(_) => break,
                Output::Transmit { peer: to, data, .. } if to == peer => {
                    sent.extend_from_slice(data)
                }
                _ => {}
            }
        }
    }
    sent
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
    accept_with(node, i, [0; 32])
}

/// The `i`th connection accepted from 127.0.0.1 with `entropy` for its session, drained.
fn accept_with(node: &mut BenchNode, i: usize, entropy: [u8; 32]) -> PeerId {
    let port = u16::try_from(10_000 + i).expect("a port");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(Handled::Accepted(peer)) =
        node.handle_input(Instant::ZERO, Input::Accepted { addr, entropy })
    else {
        panic!("accept refused");
    };
    drain(node, &mut Drained::default());
    peer
}
