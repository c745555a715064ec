//! Fixed workloads for counting instructions per message under callgrind
//! (`benches/callgrind.sh` runs them): `insns WORKLOAD N` does WORKLOAD for
//! about N messages of 64-byte text and prints how many it did.
//!
//! Workloads (4 KiB chunks unless said):
//! - `decode`, `decode_bytes`, `encode`: chat messages through meshtalk's frame
//!   codec (`decode_bytes` fed one byte at a time, as from a slow link);
//! - `decode_postcard`: the same frames, bodies decoded by postcard (and
//!   `core::str`) instead of meshtalk's hand-written chat decoder;
//! - `decode_broadcast`, `decode_broadcast_postcard`: room messages (name
//!   `alice`, a 64-bit origin), by meshtalk's decoder or by postcard;
//! - `node_unicast`: a native peer's chat messages through the host's node,
//!   each shown and acknowledged;
//! - `node_broadcast`: room messages from one of 100 native peers, each shown
//!   and relayed to the 99 others;
//! - `node_hub_text`: a hub (`--hub`) relaying a text peer's lines to 8 native
//!   peers and 1 other text peer.
//!
//! Node workloads drain every output after each input; their set-up (the peers'
//! banners and hellos) is the `node` bench's.
//!
//! Only the functions named `<workload>_all` are measured (callgrind's
//! `--toggle-collect`), so building the input costs nothing in the count.
//! Without arguments (as `cargo bench` runs it) it does a short run of each.

mod rig;

use std::hint::black_box;

use meshtalk_core::frame::{Decoded, FrameDecoder};
use meshtalk_core::peers::PeerId;
use meshtalk_core::wire::Message;
use rig::{BenchNode, Drained, SIZE, feed, frame, node_with_peers, text, text_peer};

/// Distinct messages in a stream that is fed over and over.
const DISTINCT: usize = 1000;
/// The workloads, in the order a bare run and `callgrind.sh` do them.
const WORKLOADS: [&str; 9] = [
    "decode",
    "decode_bytes",
    "encode",
    "decode_postcard",
    "decode_broadcast",
    "decode_broadcast_postcard",
    "node_unicast",
    "node_broadcast",
    "node_hub_text",
];

fn texts() -> Vec<String> {
    (0..DISTINCT)
        .map(|i| {
            let mut t = format!("message {i} ");
            while t.len() < SIZE {
                t.push(char::from(b'a' + (t.len() % 26) as u8));
            }
            t
        })
        .collect()
}

/// A room message as another node relays it to us.
fn broadcast(seq: u32, text: &str) -> Message<'_> {
    Message::Broadcast {
        origin: 0x8b1f_36c2_d4e5_a907,
        seq,
        hops: 7,
        name: "alice",
        text,
    }
}

/// The text bytes of a chat message decoded by meshtalk (`Message::decode`).
#[inline(always)]
fn chat_len(body: &[u8]) -> u64 {
    match Message::decode(body) {
        Ok(Message::Chat { text, .. }) => text.len() as u64,
        _ => panic!("not a chat message"),
    }
}

/// As [`chat_len`], decoded by postcard (its strings checked by `core::str::from_utf8`).
#[inline(always)]
fn chat_len_postcard(body: &[u8]) -> u64 {
    match postcard::from_bytes(body) {
        Ok(Message::Chat { text, .. }) => text.len() as u64,
        _ => panic!("not a chat message"),
    }
}

/// The text bytes of a room message decoded by meshtalk.
#[inline(always)]
fn room_len(body: &[u8]) -> u64 {
    match Message::decode(body) {
        Ok(Message::Broadcast { text, .. }) => text.len() as u64,
        _ => panic!("not a room message"),
    }
}

/// As [`room_len`], decoded by postcard.
#[inline(always)]
fn room_len_postcard(body: &[u8]) -> u64 {
    match postcard::from_bytes(body) {
        Ok(Message::Broadcast { text, .. }) => text.len() as u64,
        _ => panic!("not a room message"),
    }
}

/// Decodes `rounds` passes over `stream` of chat frames, fed in 4 KiB chunks;
/// returns the text bytes seen.
#[inline(never)]
fn decode_all(stream: &[u8], rounds: usize) -> u64 {
    decode_chunks(stream, rounds, 4096, chat_len)
}

/// As [`decode_all`], but fed one byte at a time.
#[inline(never)]
fn decode_bytes_all(stream: &[u8], rounds: usize) -> u64 {
    decode_chunks(stream, rounds, 1, chat_len)
}

/// As [`decode_all`], with postcard decoding the bodies.
#[inline(never)]
fn decode_postcard_all(stream: &[u8], rounds: usize) -> u64 {
    decode_chunks(stream, rounds, 4096, chat_len_postcard)
}

/// As [`decode_all`], over room messages.
#[inline(never)]
fn decode_broadcast_all(stream: &[u8], rounds: usize) -> u64 {
    decode_chunks(stream, rounds, 4096, room_len)
}

/// As [`decode_broadcast_all`], with postcard decoding the bodies.
#[inline(never)]
fn decode_broadcast_postcard_all(stream: &[u8], rounds: usize) -> u64 {
    decode_chunks(stream, rounds, 4096, room_len_postcard)
}

/// The body of every decode workload, inlined into each so that callgrind counts
/// it under that workload's name.
#[inline(always)]
fn decode_chunks(stream: &[u8], rounds: usize, chunk: usize, text_len: fn(&[u8]) -> u64) -> u64 {
    let mut decoder = FrameDecoder::<8192>::new();
    let mut sum = 0;
    for _ in 0..rounds {
        for mut input in stream.chunks(chunk) {
            loop {
                let (used, found) = decoder.decode(input);
                match found {
                    Decoded::NeedMore => break,
                    Decoded::Frame(body) => sum += text_len(body),
                    Decoded::Error(e) => panic!("{e}"),
                }
                input = &input[used..];
            }
        }
    }
    sum
}

/// Encodes `n` chat messages as frames, cycling through `texts` and `out`.
#[inline(never)]
fn encode_all(texts: &[String], out: &mut [u8], n: usize) -> usize {
    let mut pos = 0;
    let mut total = 0;
    for i in 0..n {
        let text = &texts[i % texts.len()];
        let msg = Message::Chat { id: i as u32, text };
        if out.len() - pos < SIZE + 64 {
            total += pos;
            pos = 0;
        }
        pos += msg.encode_frame(&mut out[pos..]).expect("room");
    }
    total + pos
}

/// Feeds `stream` (chat frames) from `peer` to the node `rounds` times,
/// draining after every input; each message is shown and acknowledged.
#[inline(never)]
fn node_unicast_all(node: &mut BenchNode, peer: PeerId, stream: &[u8], rounds: usize) -> Drained {
    feed_rounds(node, peer, stream, rounds, 1)
}

/// As [`node_unicast_all`] with room messages from one of 100 peers, each relayed to the 99 others.
#[inline(never)]
fn node_broadcast_all(node: &mut BenchNode, peer: PeerId, stream: &[u8], rounds: usize) -> Drained {
    feed_rounds(node, peer, stream, rounds, 99)
}

/// As [`node_unicast_all`] with a text peer's lines to a hub, each relayed to
/// its 8 native peers and 1 other text peer.
#[inline(never)]
fn node_hub_text_all(node: &mut BenchNode, peer: PeerId, stream: &[u8], rounds: usize) -> Drained {
    feed_rounds(node, peer, stream, rounds, 9)
}

/// The body of the node workloads; the check of `fanout` (transmits per
/// message shown) also keeps their functions apart, so that the compiler does
/// not merge them into one symbol that callgrind could not tell apart.
#[inline(always)]
fn feed_rounds(
    node: &mut BenchNode,
    peer: PeerId,
    stream: &[u8],
    rounds: usize,
    fanout: u64,
) -> Drained {
    let mut got = Drained::default();
    for _ in 0..rounds {
        feed(node, peer, stream, &mut got);
    }
    assert_eq!(
        got.transmits,
        fanout * got.messages,
        "transmits per message"
    );
    got
}

/// Runs `what` over about `n` messages; returns how many it did, or None for an unknown name.
fn run(what: &str, n: usize) -> Option<usize> {
    let texts = texts();
    let rounds = n.div_ceil(DISTINCT).max(1);
    let done = rounds * DISTINCT;
    let mut out = vec![0u8; DISTINCT * (SIZE + 64)];
    let chats = |out: &mut [u8]| {
        let len = encode_all(&texts, out, DISTINCT);
        out[..len].to_vec()
    };
    let rooms = |seqs: std::ops::Range<usize>| -> Vec<u8> {
        seqs.flat_map(|i| frame(&broadcast(i as u32, &texts[i % DISTINCT])))
            .collect()
    };
    let decoded = |sum: u64| assert_eq!(sum, (done * SIZE) as u64, "every text decoded");
    match what {
        "encode" => {
            black_box(encode_all(&texts, &mut out, n));
            return Some(n);
        }
        "decode" => decoded(decode_all(black_box(&chats(&mut out)), rounds)),
        "decode_bytes" => decoded(decode_bytes_all(black_box(&chats(&mut out)), rounds)),
        "decode_postcard" => decoded(decode_postcard_all(black_box(&chats(&mut out)), rounds)),
        "decode_broadcast" => decoded(decode_broadcast_all(black_box(&rooms(0..DISTINCT)), rounds)),
        "decode_broadcast_postcard" => decoded(decode_broadcast_postcard_all(
            black_box(&rooms(0..DISTINCT)),
            rounds,
        )),
        "node_unicast" => {
            let (mut node, peers) = node_with_peers(1, false);
            let got = node_unicast_all(&mut node, peers[0], black_box(&chats(&mut out)), rounds);
            assert_eq!(got.messages, done as u64, "every message shown");
        }
        "node_broadcast" => {
            let (mut node, peers) = node_with_peers(100, false);
            // Every seq new, or the node would drop the repeats as duplicates.
            let stream = rooms(1..done + 1);
            let got = node_broadcast_all(&mut node, peers[0], black_box(&stream), 1);
            assert_eq!(got.messages, done as u64, "every message shown");
        }
        "node_hub_text" => {
            let (mut node, _) = node_with_peers(8, true);
            let sender = text_peer(&mut node, 8);
            text_peer(&mut node, 9);
            let lines: Vec<u8> = (0..DISTINCT)
                .flat_map(|i| format!("{}\n", text(i)).into_bytes())
                .collect();
            let got = node_hub_text_all(&mut node, sender, black_box(&lines), rounds);
            assert_eq!(got.messages, done as u64, "every line shown");
        }
        _ => return None,
    }
    Some(done)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let (what, n): (Vec<String>, usize) = match args.as_slice() {
        [what, n] => (
            vec![what.clone()],
            n.parse().expect("N is a number of messages"),
        ),
        _ => {
            eprintln!(
                "usage: insns WORKLOAD N (see benches/callgrind.sh); a short run of each now"
            );
            (WORKLOADS.map(String::from).to_vec(), DISTINCT)
        }
    };
    // The node is large (its peers' buffers live inline): give it a big stack,
    // as the host's driver thread does.
    let worker = std::thread::Builder::new().stack_size(512 << 20);
    let worker = worker.spawn(move || {
        for what in what {
            let Some(done) = run(&what, n) else {
                eprintln!(
                    "unknown workload {what}: want one of {}",
                    WORKLOADS.join(", ")
                );
                std::process::exit(2);
            };
            println!("{what}: {done} messages");
        }
    });
    worker.expect("spawn").join().expect("the workload thread");
}
