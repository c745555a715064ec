//! Framing throughput: meshtalk's frame codec against the framings people would
//! use instead, on the same chat messages, measured side by side in one process.
//!
//! Contestants, for text bodies of 16 B, 64 B, 1 KiB and 4 KiB:
//! - `meshtalk`: `Message::Chat` in a varint-length frame (`FrameDecoder` +
//!   `Message::decode`, meshtalk's hand-written body codec with simdutf8);
//! - `meshtalk-raw` (encode only): the text alone through `frame::encode`;
//! - `cobs`: postcard `to_slice_cobs` + `CobsAccumulator`, same message;
//! - `ldc`: tokio-util's `LengthDelimitedCodec` over `BytesMut`, same body
//!   bytes by postcard (its UTF-8 check is `core::str`);
//! - `ldc+ours`: `LengthDelimitedCodec` framing with meshtalk's body codec:
//!   against `meshtalk`, only the framing differs;
//! - `meshtalk+postcard`: meshtalk's framing with postcard's body codec:
//!   against `ldc`, only the framing differs;
//! - `lines`: the text and a newline (memchr to split, UTF-8 checked);
//! - `memcpy`: `copy_from_slice` of the whole meshtalk stream, the ceiling.
//!
//! All four framed contestants put the same body bytes (postcard's layout)
//! in their frames, so `meshtalk` / `ldc` is framing and body codec together,
//! `meshtalk` / `ldc+ours` the framing alone.
//!
//! Decoding is fed in 4 KiB chunks, as one slice, and one byte at a time. Every
//! decoder checks the text is UTF-8, as a chat must before showing it.
//!
//! Run: `cargo bench -p meshtalk-benches --bench framing [filter]`.

mod paired;

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use meshtalk_core::frame::{self, Decoded, FrameDecoder};
use meshtalk_core::wire::Message;
use paired::{Case, Harness, Outcome};
use postcard::accumulator::{CobsAccumulator, FeedResult};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

/// The largest frame any contestant accepts (the host's frame size).
const MAX: usize = 8192;
/// Text bytes per workload: the stream stays within L2.
const PAYLOAD: usize = 128 * 1024;
const SIZES: [usize; 4] = [16, 64, 1024, 4096];
const FEEDS: [(&str, Feed); 3] = [
    ("4KiB", Feed::Chunks(4096)),
    ("slice", Feed::Slice),
    ("1B", Feed::Chunks(1)),
];

#[derive(Clone, Copy)]
enum Feed {
    Chunks(usize),
    Slice,
}

impl Feed {
    fn chunks(self, stream: &[u8]) -> std::slice::Chunks<'_, u8> {
        match self {
            Feed::Chunks(n) => stream.chunks(n),
            Feed::Slice => stream.chunks(stream.len().max(1)),
        }
    }
}

/// `count` ASCII texts of `size` bytes, no newlines, not all alike.
fn texts(size: usize, count: usize) -> Vec<String> {
    let mut x: u32 = 0x9e37_79b9;
    (0..count)
        .map(|_| {
            (0..size)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    char::from(b' ' + (x % 95) as u8)
                })
                .collect()
        })
        .collect()
}

fn chat(i: usize, text: &str) -> Message<'_> {
    Message::Chat { id: i as u32, text }
}

fn text_len(msg: Message<'_>) -> u64 {
    match msg {
        Message::Chat { text, .. } => text.len() as u64,
        _ => panic!("not a chat message"),
    }
}

// ---- encoders: each writes the whole workload into `out` and returns its length ----

fn encode_meshtalk(texts: &[String], out: &mut [u8]) -> usize {
    let mut pos = 0;
    for (i, t) in texts.iter().enumerate() {
        pos += chat(i, t).encode_frame(&mut out[pos..]).expect("room");
    }
    pos
}

fn encode_raw(texts: &[String], out: &mut [u8]) -> usize {
    let mut pos = 0;
    for t in texts {
        pos += frame::encode(t.as_bytes(), &mut out[pos..]).expect("room");
    }
    pos
}

/// meshtalk's framing around a body serialised by postcard (as `Message::encode_frame`
/// does for every message but chat): into a scratch buffer, then framed.
fn encode_meshtalk_postcard(texts: &[String], out: &mut [u8]) -> usize {
    let mut pos = 0;
    let mut scratch = [0u8; MAX];
    for (i, t) in texts.iter().enumerate() {
        let body = postcard::to_slice(&chat(i, t), &mut scratch).expect("room");
        pos += frame::encode(body, &mut out[pos..]).expect("room");
    }
    pos
}

fn encode_cobs(texts: &[String], out: &mut [u8]) -> usize {
    let mut pos = 0;
    for (i, t) in texts.iter().enumerate() {
        pos += postcard::to_slice_cobs(&chat(i, t), &mut out[pos..])
            .expect("room")
            .len();
    }
    pos
}

/// LDC's encoder takes an owned `Bytes`, so the postcard body is serialised
/// into a scratch buffer and copied into one, as its users do.
fn encode_ldc(texts: &[String], codec: &mut LengthDelimitedCodec, dst: &mut BytesMut) -> usize {
    dst.clear();
    let mut scratch = [0u8; MAX];
    for (i, t) in texts.iter().enumerate() {
        let body = postcard::to_slice(&chat(i, t), &mut scratch).expect("room");
        codec
            .encode(Bytes::copy_from_slice(body), dst)
            .expect("encodes");
    }
    dst.len()
}

/// LDC's framing around meshtalk's body encoder: the chat message is encoded
/// into a scratch buffer by `Message::encode_frame` and its body (after the
/// varint header) handed to LDC, copied into a `Bytes` as in [`encode_ldc`].
/// Writing and skipping that header costs a few instructions of the ~550 a
/// message takes here (callgrind, 64 B).
fn encode_ldc_ours(
    texts: &[String],
    codec: &mut LengthDelimitedCodec,
    dst: &mut BytesMut,
) -> usize {
    dst.clear();
    let mut scratch = [0u8; MAX];
    for (i, t) in texts.iter().enumerate() {
        let n = chat(i, t).encode_frame(&mut scratch).expect("room");
        // The varint header ends at the first byte without its top bit.
        let mut header = 1;
        while scratch[header - 1] & 0x80 != 0 {
            header += 1;
        }
        codec
            .encode(Bytes::copy_from_slice(&scratch[header..n]), dst)
            .expect("encodes");
    }
    dst.len()
}

fn encode_lines(texts: &[String], out: &mut [u8]) -> usize {
    let mut pos = 0;
    for t in texts {
        let end = pos + t.len();
        out[pos..end].copy_from_slice(t.as_bytes());
        out[end] = b'\n';
        pos = end + 1;
    }
    pos
}

// ---- decoders: each takes the whole stream, cut as `feed` says, and sums the text lengths ----

fn decode_meshtalk(dec: &mut FrameDecoder<MAX>, stream: &[u8], feed: Feed) -> u64 {
    let mut sum = 0;
    for mut input in feed.chunks(stream) {
        loop {
            let (used, found) = dec.decode(input);
            match found {
                Decoded::NeedMore => break,
                Decoded::Frame(body) => sum += text_len(Message::decode(body).expect("valid")),
                Decoded::Error(e) => panic!("{e}"),
            }
            input = &input[used..];
        }
    }
    sum
}

/// As [`decode_meshtalk`], with postcard decoding the bodies (as [`decode_ldc`] does).
fn decode_meshtalk_postcard(dec: &mut FrameDecoder<MAX>, stream: &[u8], feed: Feed) -> u64 {
    let mut sum = 0;
    for mut input in feed.chunks(stream) {
        loop {
            let (used, found) = dec.decode(input);
            match found {
                Decoded::NeedMore => break,
                Decoded::Frame(body) => sum += text_len(postcard::from_bytes(body).expect("valid")),
                Decoded::Error(e) => panic!("{e}"),
            }
            input = &input[used..];
        }
    }
    sum
}

fn decode_cobs(acc: &mut CobsAccumulator<MAX>, stream: &[u8], feed: Feed) -> u64 {
    let mut sum = 0;
    for mut input in feed.chunks(stream) {
        while !input.is_empty() {
            match acc.feed_ref::<Message<'_>>(input) {
                FeedResult::Consumed => break,
                FeedResult::Success { data, remaining } => {
                    sum += text_len(data);
                    input = remaining;
                }
                FeedResult::OverFull(_) | FeedResult::DeserError(_) => panic!("cobs failed"),
            }
        }
    }
    sum
}

fn decode_ldc(
    codec: &mut LengthDelimitedCodec,
    buf: &mut BytesMut,
    stream: &[u8],
    feed: Feed,
) -> u64 {
    let mut sum = 0;
    for input in feed.chunks(stream) {
        buf.extend_from_slice(input);
        while let Some(body) = codec.decode(buf).expect("valid") {
            sum += text_len(postcard::from_bytes(&body).expect("valid"));
        }
    }
    sum
}

/// As [`decode_ldc`], with meshtalk's body decoder (as [`decode_meshtalk`] does).
fn decode_ldc_ours(
    codec: &mut LengthDelimitedCodec,
    buf: &mut BytesMut,
    stream: &[u8],
    feed: Feed,
) -> u64 {
    let mut sum = 0;
    for input in feed.chunks(stream) {
        buf.extend_from_slice(input);
        while let Some(body) = codec.decode(buf).expect("valid") {
            sum += text_len(Message::decode(&body).expect("valid"));
        }
    }
    sum
}

fn decode_lines(carry: &mut Vec<u8>, stream: &[u8], feed: Feed) -> u64 {
    let mut sum = 0;
    let line = |bytes: &[u8]| std::str::from_utf8(bytes).expect("valid").len() as u64;
    for mut input in feed.chunks(stream) {
        if !carry.is_empty() {
            let Some(end) = memchr::memchr(b'\n', input) else {
                carry.extend_from_slice(input);
                continue;
            };
            carry.extend_from_slice(&input[..end]);
            sum += line(carry);
            carry.clear();
            input = &input[end + 1..];
        }
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', input) {
            sum += line(&input[start..end]);
            start = end + 1;
        }
        carry.extend_from_slice(&input[start..]);
    }
    sum
}

// ---- the report ----

const HEADER: &str = "| body | feed | framing + body codec | ns/msg | Mmsg/s | payload MB/s | x ldc | x ldc+ours | x memcpy |\n|---:|---|---|---:|---:|---:|---:|---:|---:|\n";

/// Appends one markdown row per outcome to `table`.
fn rows(table: &mut String, size: usize, feed: &str, msgs: usize, outcomes: &[Outcome]) {
    use std::fmt::Write;
    for o in outcomes {
        let _ = writeln!(
            table,
            "| {} | {feed} | {} | {:.1} | {:.2} | {:.0} | {:.2} | {:.2} | {:.3} |",
            label(size),
            o.name,
            o.secs * 1e9 / msgs as f64,
            msgs as f64 / o.secs / 1e6,
            (size * msgs) as f64 / o.secs / 1e6,
            o.ratios[0],
            o.ratios[1],
            o.ratios[2],
        );
    }
}

fn label(size: usize) -> String {
    if size >= 1024 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

fn main() {
    let harness = Harness::from_env();
    // "x ldc": framing and body codec against LDC + postcard; "x ldc+ours": the
    // framing alone (for `meshtalk`) against LDC with meshtalk's body codec.
    let refs = ["ldc", "ldc+ours", "memcpy"];
    let (mut encode, mut decode) = (String::from(HEADER), String::from(HEADER));
    for size in SIZES {
        let msgs = PAYLOAD / size;
        let texts = texts(size, msgs);
        let mut out = vec![0u8; msgs * (size + 16) + 2 * MAX];
        let mut copy = vec![0u8; out.len()];

        // The streams each decoder is given, made by the encoders under test.
        let n = encode_meshtalk(&texts, &mut out);
        let mt_stream = out[..n].to_vec();
        let n = encode_cobs(&texts, &mut out);
        let cobs_stream = out[..n].to_vec();
        let n = encode_lines(&texts, &mut out);
        let lines_stream = out[..n].to_vec();
        let mut ldc = LengthDelimitedCodec::builder()
            .max_frame_length(MAX)
            .new_codec();
        let mut ldc_out = BytesMut::with_capacity(out.len());
        encode_ldc(&texts, &mut ldc, &mut ldc_out);
        let ldc_stream = ldc_out.to_vec();

        let group = format!("encode/{}", label(size));
        if harness.wants(&group) {
            let (mut o1, mut o2, mut o3, mut o4, mut o5) = (
                out.clone(),
                out.clone(),
                out.clone(),
                out.clone(),
                out.clone(),
            );
            let mut ldc_enc = LengthDelimitedCodec::builder()
                .max_frame_length(MAX)
                .new_codec();
            let mut ldc_dst = BytesMut::with_capacity(out.len());
            let mut ldc_ours_enc = LengthDelimitedCodec::builder()
                .max_frame_length(MAX)
                .new_codec();
            let mut ldc_ours_dst = BytesMut::with_capacity(out.len());
            // Both LDC encoders write the same stream, as both meshtalk framings do.
            assert_eq!(
                encode_ldc_ours(&texts, &mut ldc_ours_enc, &mut ldc_ours_dst),
                ldc_stream.len()
            );
            assert_eq!(ldc_ours_dst[..], ldc_stream[..]);
            let n = encode_meshtalk_postcard(&texts, &mut o4);
            assert_eq!(o4[..n], mt_stream[..]);
            let mut cases = [
                Case::new("meshtalk", || encode_meshtalk(&texts, &mut o1) as u64),
                Case::new("meshtalk+postcard", || {
                    encode_meshtalk_postcard(&texts, &mut o4) as u64
                }),
                Case::new("meshtalk-raw", || encode_raw(&texts, &mut o2) as u64),
                Case::new("cobs", || encode_cobs(&texts, &mut o3) as u64),
                Case::new("ldc", || {
                    encode_ldc(&texts, &mut ldc_enc, &mut ldc_dst) as u64
                }),
                Case::new("ldc+ours", || {
                    encode_ldc_ours(&texts, &mut ldc_ours_enc, &mut ldc_ours_dst) as u64
                }),
                Case::new("lines", || encode_lines(&texts, &mut o5) as u64),
                Case::new("memcpy", || {
                    copy[..mt_stream.len()].copy_from_slice(&mt_stream);
                    u64::from(copy[0])
                }),
            ];
            let outcomes = harness.run(&mut cases, &refs);
            rows(&mut encode, size, "-", msgs, &outcomes);
            eprintln!("{group} done");
        }

        for (feed_name, feed) in FEEDS {
            let group = format!("decode/{}/{feed_name}", label(size));
            if !harness.wants(&group) {
                continue;
            }
            let expect = (size * msgs) as u64;
            let mut mt = FrameDecoder::<MAX>::new();
            let mut acc = CobsAccumulator::<MAX>::new();
            let mut ldc_dec = LengthDelimitedCodec::builder()
                .max_frame_length(MAX)
                .new_codec();
            let mut ldc_buf = BytesMut::with_capacity(2 * MAX);
            let mut mt_pc = FrameDecoder::<MAX>::new();
            let mut ldc_ours = LengthDelimitedCodec::builder()
                .max_frame_length(MAX)
                .new_codec();
            let mut ldc_ours_buf = BytesMut::with_capacity(2 * MAX);
            let mut carry = Vec::with_capacity(MAX);
            assert_eq!(decode_meshtalk(&mut mt, &mt_stream, feed), expect);
            assert_eq!(decode_cobs(&mut acc, &cobs_stream, feed), expect);
            assert_eq!(
                decode_ldc(&mut ldc_dec, &mut ldc_buf, &ldc_stream, feed),
                expect
            );
            assert_eq!(
                decode_meshtalk_postcard(&mut mt_pc, &mt_stream, feed),
                expect
            );
            assert_eq!(
                decode_ldc_ours(&mut ldc_ours, &mut ldc_ours_buf, &ldc_stream, feed),
                expect
            );
            assert_eq!(decode_lines(&mut carry, &lines_stream, feed), expect);
            let mut cases = [
                Case::new("meshtalk", || decode_meshtalk(&mut mt, &mt_stream, feed)),
                Case::new("meshtalk+postcard", || {
                    decode_meshtalk_postcard(&mut mt_pc, &mt_stream, feed)
                }),
                Case::new("cobs", || decode_cobs(&mut acc, &cobs_stream, feed)),
                Case::new("ldc", || {
                    decode_ldc(&mut ldc_dec, &mut ldc_buf, &ldc_stream, feed)
                }),
                Case::new("ldc+ours", || {
                    decode_ldc_ours(&mut ldc_ours, &mut ldc_ours_buf, &ldc_stream, feed)
                }),
                Case::new("lines", || decode_lines(&mut carry, &lines_stream, feed)),
                Case::new("memcpy", || {
                    copy[..mt_stream.len()].copy_from_slice(&mt_stream);
                    u64::from(copy[0])
                }),
            ];
            let outcomes = harness.run(&mut cases, &refs);
            rows(&mut decode, size, feed_name, msgs, &outcomes);
            eprintln!("{group} done");
        }
        black_box(&copy);
    }
    println!("\n### Encode\n\n{encode}\n### Decode\n\n{decode}");
}
