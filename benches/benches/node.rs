//! Node throughput: messages per second through `meshtalk_core::node::Node`
//! alone, with no sockets: the bench plays the peers, feeds their frames as
//! `Input::Received` in 4 KiB chunks and drains every output.
//!
//! - `unicast`: one native peer sends chat messages; the node shows each and
//!   sends a receipt (ack) back.
//! - `broadcast`: 100 native peers; one sends room messages, which the node
//!   shows and relays to the 99 others.
//!
//! Run: `cargo bench -p meshtalk-benches --bench node [filter]`.

mod paired;

use std::net::{Ipv4Addr, SocketAddr};

use meshtalk_core::node::{Config, Event, Handled, Input, Node, Output};
use meshtalk_core::peers::PeerId;
use meshtalk_core::time::Instant;
use meshtalk_core::wire::Message;
use paired::{Case, Harness};

/// The host's node: 1024 peers, 8 KiB frames, 128 KiB of pending output.
type BenchNode = Node<1024, 8192, 131072>;

/// Text bytes per message.
const SIZE: usize = 64;
/// Messages fed per run.
const BATCH: usize = 1000;
/// Peers in the room of the broadcast bench.
const ROOM: usize = 100;

/// What a drain produced.
#[derive(Default)]
struct Drained {
    transmits: u64,
    messages: u64,
}

fn drain(node: &mut BenchNode, got: &mut Drained) {
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
fn feed(node: &mut BenchNode, peer: PeerId, bytes: &[u8], got: &mut Drained) {
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

fn frame(msg: &Message<'_>) -> Vec<u8> {
    let mut out = vec![0u8; msg.frame_len()];
    let n = msg.encode_frame(&mut out).expect("room");
    out.truncate(n);
    out
}

/// A node with `n` ready native peers, each having sent its banner and hello.
fn node_with_peers(n: usize) -> (Box<BenchNode>, Vec<PeerId>) {
    let mut config = Config::new("bench", 1).expect("valid name");
    // Every bench peer comes from 127.0.0.1: let them all in.
    config.max_per_ip = n;
    let mut node = Box::new(BenchNode::new(config));
    let mut got = Drained::default();
    let peers = (0..n)
        .map(|i| {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 10_000 + i as u16));
            let Ok(Handled::Accepted(peer)) =
                node.handle_input(Instant::ZERO, Input::Accepted { addr })
            else {
                panic!("accept refused");
            };
            drain(&mut node, &mut got);
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
    assert_eq!(node.peers().count(), n, "every peer is ready");
    (node, peers)
}

fn text(i: usize) -> String {
    let mut t = format!("message {i} ");
    while t.len() < SIZE {
        t.push('x');
    }
    t
}

fn main() {
    let harness = Harness::from_env();
    // The node is large (its peers' buffers live inline): give it a big stack,
    // as the host's driver thread does.
    std::thread::Builder::new()
        .stack_size(512 << 20)
        .spawn(move || run(&harness))
        .expect("spawn")
        .join()
        .expect("bench thread");
}

fn run(harness: &Harness) {
    println!("| bench | peers | messages/s | deliveries/s | ns/message |");
    println!("|---|---:|---:|---:|---:|");
    if harness.wants("unicast") {
        let (mut node, peers) = node_with_peers(1);
        let stream: Vec<u8> = (0..BATCH)
            .flat_map(|i| {
                frame(&Message::Chat {
                    id: i as u32,
                    text: &text(i),
                })
            })
            .collect();
        let mut cases = [Case::new("unicast", || {
            let mut got = Drained::default();
            feed(&mut node, peers[0], &stream, &mut got);
            assert_eq!((got.messages, got.transmits), (BATCH as u64, BATCH as u64));
            got.messages
        })];
        let o = harness.run(&mut cases, &[]);
        let secs = o[0].secs / BATCH as f64;
        // Deliveries: each message shown once (its ack is counted apart, not as a delivery).
        println!(
            "| unicast chat + ack | 1 | {:.0} | {:.0} | {:.0} |",
            1.0 / secs,
            1.0 / secs,
            secs * 1e9
        );
    }
    if harness.wants("broadcast") {
        let (mut node, peers) = node_with_peers(ROOM);
        let texts: Vec<String> = (0..BATCH).map(text).collect();
        let mut seq = 0u32;
        let mut stream = Vec::with_capacity(BATCH * (SIZE + 32));
        let mut cases = [Case::new("broadcast", || {
            // Fresh sequence numbers each run, or the node would drop them as
            // duplicates; encoding them is under 1% of the work measured.
            stream.clear();
            for t in &texts {
                seq = seq.wrapping_add(1);
                stream.extend_from_slice(&frame(&Message::Broadcast {
                    origin: 77,
                    seq,
                    hops: 8,
                    name: "origin",
                    text: t,
                }));
            }
            let mut got = Drained::default();
            feed(&mut node, peers[0], &stream, &mut got);
            let fanout = (ROOM - 1) as u64;
            assert_eq!(
                (got.messages, got.transmits),
                (BATCH as u64, BATCH as u64 * fanout)
            );
            got.messages
        })];
        let o = harness.run(&mut cases, &[]);
        let secs = o[0].secs / BATCH as f64;
        println!(
            "| broadcast, relayed to the room | {ROOM} | {:.0} | {:.0} | {:.0} |",
            1.0 / secs,
            (ROOM - 1) as f64 / secs,
            secs * 1e9
        );
    }
}
