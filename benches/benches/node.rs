//! Node throughput: messages per second through `meshtalk_core::node::Node`
//! alone, with no sockets: the bench plays the peers, feeds their frames as
//! `Input::Received` in 4 KiB chunks and drains every output.
//!
//! - `unicast`: one native peer sends chat messages; the node shows each and
//!   sends a receipt (ack) back.
//! - `broadcast`: 100 native peers; one sends room messages, which the node
//!   shows and relays to the 99 others.
//! - `broadcast-secure`: the same on secure links (protocol 2): the node opens
//!   each message and seals it once per receiver.
//!
//! A relay here is an `Output::Transmit` drained from the node: a reference to
//! the frame the node stored once for all receivers, not a copy per receiver
//! and not a write to a socket (the `load` tool measures the whole program).
//!
//! Run: `cargo bench -p meshtalk-benches --bench node [filter]`.

mod paired;
mod rig;

use meshtalk_core::wire::Message;
use paired::{Case, Harness};
use rig::{Drained, SIZE, feed, frame, node_with_peers, sealed, secure_node_with_peers, text};

/// Messages fed per run.
const BATCH: usize = 1000;
/// Peers in the room of the broadcast bench.
const ROOM: usize = 100;

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
    println!("| bench | peers | messages/s | Output::Transmit/s | ns/message |");
    println!("|---|---:|---:|---:|---:|");
    if harness.wants("unicast") {
        let (mut node, peers) = node_with_peers(1, false);
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
        // One transmit per message: its receipt (ack) back to the sender.
        println!(
            "| unicast chat + ack | 1 | {:.0} | {:.0} | {:.0} |",
            1.0 / secs,
            1.0 / secs,
            secs * 1e9
        );
    }
    if harness.wants("broadcast") {
        let (mut node, peers) = node_with_peers(ROOM, false);
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
        // One transmit per other peer, each referring to the message's one stored frame.
        println!(
            "| broadcast, relayed to the room | {ROOM} | {:.0} | {:.0} | {:.0} |",
            1.0 / secs,
            (ROOM - 1) as f64 / secs,
            secs * 1e9
        );
    }
    if harness.wants("broadcast-secure") {
        let (mut node, mut peers) = secure_node_with_peers(ROOM, false);
        let texts: Vec<String> = (0..BATCH).map(text).collect();
        let mut seq = 0u32;
        let mut stream = Vec::with_capacity(BATCH * (SIZE + 48));
        let (sender, session) = &mut peers[0];
        let sender = *sender;
        let mut cases = [Case::new("broadcast-secure", || {
            // Fresh frames each run: sequence numbers, and the sender's nonces (a frame
            // sealed once opens once); sealing them is about 1% of the work measured.
            stream.clear();
            for t in &texts {
                seq = seq.wrapping_add(1);
                stream.extend_from_slice(&sealed(
                    session,
                    &Message::Broadcast {
                        origin: 77,
                        seq,
                        hops: 8,
                        name: "origin",
                        text: t,
                    },
                ));
            }
            let mut got = Drained::default();
            feed(&mut node, sender, &stream, &mut got);
            let fanout = (ROOM - 1) as u64;
            assert_eq!(
                (got.messages, got.transmits),
                (BATCH as u64, BATCH as u64 * fanout)
            );
            got.messages
        })];
        let o = harness.run(&mut cases, &[]);
        let secs = o[0].secs / BATCH as f64;
        // One transmit per other peer, each a frame sealed for that peer.
        println!(
            "| broadcast on secure links, relayed to the room | {ROOM} | {:.0} | {:.0} | {:.0} |",
            1.0 / secs,
            (ROOM - 1) as f64 / secs,
            secs * 1e9
        );
    }
    println!(
        "\nmessages/s: messages fed in, each shown once (Event::Message).\n\
         Output::Transmit/s: transmits drained from the node; each refers to a frame \
         the node stored once (no copy per receiver, no socket write): unicast, the \
         receipt; broadcast, one per other peer of the room."
    );
}
