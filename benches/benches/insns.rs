//! A fixed workload for counting instructions per message under callgrind
//! (`benches/callgrind.sh` runs it): `insns decode N`, `insns decode_bytes N`
//! or `insns encode N` decodes (from 4 KiB chunks, or one byte at a time) or
//! encodes N chat messages of 64-byte text with meshtalk's codec.
//!
//! Only [`decode_all`], [`decode_bytes_all`] and [`encode_all`] are measured (callgrind's
//! `--toggle-collect`), so building the input costs nothing in the count.
//! Without arguments (as `cargo bench` runs it) it does a short run and says so.

use std::hint::black_box;

use meshtalk_core::frame::{Decoded, FrameDecoder};
use meshtalk_core::wire::Message;

/// Text bytes per message.
const SIZE: usize = 64;
/// Distinct messages in the stream that is decoded over and over.
const DISTINCT: usize = 1000;

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

/// Decodes `rounds` passes over `stream`, fed in 4 KiB chunks; returns the text bytes seen.
#[inline(never)]
fn decode_all(stream: &[u8], rounds: usize) -> u64 {
    decode_chunks(stream, rounds, 4096)
}

/// As [`decode_all`], but fed one byte at a time (as a reader of a slow link
/// would); returns the text bytes seen.
#[inline(never)]
fn decode_bytes_all(stream: &[u8], rounds: usize) -> u64 {
    decode_chunks(stream, rounds, 1)
}

/// The body of both decode workloads, inlined into each so that callgrind counts
/// it under that workload's name.
#[inline(always)]
fn decode_chunks(stream: &[u8], rounds: usize, chunk: usize) -> u64 {
    let mut decoder = FrameDecoder::<8192>::new();
    let mut sum = 0;
    for _ in 0..rounds {
        for mut input in stream.chunks(chunk) {
            loop {
                let (used, found) = decoder.decode(input);
                match found {
                    Decoded::NeedMore => break,
                    Decoded::Frame(body) => match Message::decode(body) {
                        Ok(Message::Chat { text, .. }) => sum += text.len() as u64,
                        _ => panic!("not a chat message"),
                    },
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

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let (what, n) = match args.as_slice() {
        [what, n] => (what.as_str(), n.parse::<usize>().expect("N is a number")),
        _ => {
            eprintln!(
                "usage: insns decode|decode_bytes|encode N (see benches/callgrind.sh); a short run now"
            );
            ("both", 10 * DISTINCT)
        }
    };
    let texts = texts();
    let mut out = vec![0u8; DISTINCT * (SIZE + 64)];
    if what == "encode" || what == "both" {
        black_box(encode_all(&texts, &mut out, n));
    }
    for (name, decode) in [
        ("decode", decode_all as fn(&[u8], usize) -> u64),
        ("decode_bytes", decode_bytes_all),
    ] {
        if what == name || what == "both" {
            let len = encode_all(&texts, &mut out, DISTINCT);
            let rounds = n.div_ceil(DISTINCT);
            let sum = decode(black_box(&out[..len]), rounds);
            assert_eq!(sum, (rounds * DISTINCT * SIZE) as u64);
        }
    }
    if !matches!(what, "encode" | "decode" | "decode_bytes" | "both") {
        eprintln!("unknown workload {what}: want decode, decode_bytes or encode");
        std::process::exit(2);
    }
}
