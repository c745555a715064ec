//! Property tests for `meshtalk_core::frame`: what comes out of the decoder is a
//! pure function of the byte stream, however it is chunked, and matches a
//! plain reference model of the format.

use meshtalk_core::frame::{
    BufferTooSmall, Decoded, FrameDecoder, FrameError, MAX_HEADER, body_of, encode, first,
    header_len, write_header,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

/// Largest body the decoders under test accept: small, so oversized frames are common.
const N: usize = 64;
/// A limit above 127, so accepted frames also have 2-byte headers.
const WIDE: usize = 200;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Same inputs on every run; no regression files written into the tree.
        rng_seed: RngSeed::Fixed(0x6d65_7368_7461_6c6b),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// One thing the decoder reported.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Item {
    Frame(Vec<u8>),
    Error(FrameError),
}

/// Everything the decoder reported for a stream, and where it ended up.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Outcome {
    items: Vec<Item>,
    at_boundary: bool,
    failed: bool,
}

/// Feeds `chunks` to a fresh decoder, checking the per-call contract, and
/// records items until the stream ends or a fatal error.
fn decode_chunks<'s, const M: usize>(chunks: impl IntoIterator<Item = &'s [u8]>) -> Outcome {
    let mut decoder = FrameDecoder::<M>::new();
    let mut items = Vec::new();
    'chunks: for chunk in chunks {
        let mut rest = chunk;
        // Each call but the last on a chunk consumes at least one byte.
        for _ in 0..=chunk.len() {
            let (used, found) = decoder.decode(rest);
            assert!(
                used <= rest.len(),
                "consumed {used} of {} bytes",
                rest.len()
            );
            match found {
                Decoded::NeedMore => {
                    assert_eq!(used, rest.len(), "NeedMore must consume all input");
                    continue 'chunks;
                }
                Decoded::Frame(body) => {
                    assert!(body.len() <= M);
                    items.push(Item::Frame(body.to_vec()));
                }
                Decoded::Error(e) => {
                    items.push(Item::Error(e));
                    if e.is_fatal() {
                        assert!(decoder.is_failed());
                        assert_eq!(
                            decoder.decode(rest.get(used..).unwrap_or(&[])),
                            (0, Decoded::Error(FrameError::BadHeader)),
                            "a fatal error is sticky"
                        );
                        break 'chunks;
                    }
                }
            }
            assert!(used > 0, "an item must consume input");
            rest = &rest[used..];
        }
        panic!("decoder did not finish a chunk of {} bytes", chunk.len());
    }
    Outcome {
        items,
        at_boundary: decoder.is_at_boundary(),
        failed: decoder.is_failed(),
    }
}

/// Cuts `stream` into chunks of the given sizes, cycled; zero sizes give empty
/// chunks (which the decoder must accept too).
fn split<'s>(stream: &'s [u8], sizes: &[usize]) -> Vec<&'s [u8]> {
    let mut chunks = Vec::new();
    let mut rest = stream;
    let mut sizes = sizes.iter().copied().cycle();
    let mut empties_in_a_row = 0;
    while !rest.is_empty() {
        let mut size = sizes.next().unwrap_or(1);
        if size == 0 {
            empties_in_a_row += 1;
            // All sizes zero would never end.
            if empties_in_a_row > 8 {
                size = 1;
            }
        }
        if size > 0 {
            empties_in_a_row = 0;
        }
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

/// The format, decoded the obvious way from a whole stream.
fn model(stream: &[u8], max: usize) -> Outcome {
    let mut items = Vec::new();
    let mut pos = 0;
    let partial = |items, at_boundary| Outcome {
        items,
        at_boundary,
        failed: false,
    };
    loop {
        if pos == stream.len() {
            return partial(items, true);
        }
        let mut value: u64 = 0;
        for i in 0..MAX_HEADER {
            let Some(&b) = stream.get(pos) else {
                return partial(items, false);
            };
            pos += 1;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                break;
            }
            if i == MAX_HEADER - 1 {
                value = u64::MAX; // a 6th byte would follow
            }
        }
        let Ok(len) = u32::try_from(value) else {
            items.push(Item::Error(FrameError::BadHeader));
            return Outcome {
                items,
                at_boundary: false,
                failed: true,
            };
        };
        let len_usize = len as usize;
        if len_usize > max {
            items.push(Item::Error(FrameError::Oversized { len, max }));
        }
        let Some(body) = stream.get(pos..pos + len_usize) else {
            return partial(items, false);
        };
        if len_usize <= max {
            items.push(Item::Frame(body.to_vec()));
        }
        pos += len_usize;
    }
}

/// The expected item for one encoded body given decoder limit `max`.
fn expected(body: &[u8], max: usize) -> Item {
    if body.len() <= max {
        Item::Frame(body.to_vec())
    } else {
        Item::Error(FrameError::Oversized {
            len: body.len() as u32,
            max,
        })
    }
}

/// A frame header + body, built by hand so bodies over any limit can be written.
fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = vec![0; header_len(body.len()) + body.len()];
    let n = encode(body, &mut out).expect("sized by header_len");
    assert_eq!(n, out.len());
    out
}

/// Pieces a test stream is made of.
#[derive(Clone, Debug)]
enum Segment {
    /// A frame the decoder accepts.
    Valid(Vec<u8>),
    /// A frame over the limit, body present; the body is often made of bytes
    /// that look like frames, so a wrong skip shows up as phantom frames.
    Oversized(Vec<u8>),
    /// Anything at all.
    Garbage(Vec<u8>),
}

impl Segment {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Segment::Valid(body) | Segment::Oversized(body) => framed(body),
            Segment::Garbage(bytes) => bytes.clone(),
        }
    }
}

fn oversized_body(max: usize) -> impl Strategy<Value = Vec<u8>> {
    (max + 1..=3 * max + 2)
        .prop_flat_map(|len| prop_oneof![vec(any::<u8>(), len), vec(0u8..4, len)])
}

fn segment(max: usize) -> impl Strategy<Value = Segment> {
    prop_oneof![
        4 => vec(any::<u8>(), 0..=max).prop_map(Segment::Valid),
        2 => oversized_body(max).prop_map(Segment::Oversized),
        1 => vec(any::<u8>(), 0..7).prop_map(Segment::Garbage),
    ]
}

fn stream_of(segments: &[Segment]) -> Vec<u8> {
    segments.iter().flat_map(Segment::bytes).collect()
}

/// Chunk sizes, cycled over a stream; 0 means an empty call.
fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    vec(0usize..=2 * N + 8, 1..8)
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn encoded_bodies_decode_back_in_order_with_oversized_ones_reported(
        bodies in vec(vec(any::<u8>(), 0..=2 * N), 0..12),
        sizes in chunk_sizes(),
    ) {
        let stream: Vec<u8> = bodies.iter().flat_map(|b| framed(b)).collect();
        let want = Outcome {
            items: bodies.iter().map(|b| expected(b, N)).collect(),
            at_boundary: true,
            failed: false,
        };
        prop_assert_eq!(&decode_chunks::<N>([&stream[..]]), &want);
        prop_assert_eq!(&decode_chunks::<N>(split(&stream, &sizes)), &want);
    }

    #[test]
    fn bodies_with_two_byte_headers_decode_back_in_order(
        bodies in vec(vec(any::<u8>(), 0..=WIDE + 40), 0..8),
        sizes in chunk_sizes(),
    ) {
        let stream: Vec<u8> = bodies.iter().flat_map(|b| framed(b)).collect();
        let want: Vec<Item> = bodies.iter().map(|b| expected(b, WIDE)).collect();
        prop_assert_eq!(decode_chunks::<WIDE>([&stream[..]]).items, want.clone());
        prop_assert_eq!(decode_chunks::<WIDE>(split(&stream, &sizes)).items, want);
    }

    #[test]
    fn results_are_the_same_for_every_chunking_of_a_mixed_stream(
        segments in vec(segment(N), 0..10),
        sizes in chunk_sizes(),
    ) {
        let stream = stream_of(&segments);
        let whole = decode_chunks::<N>([&stream[..]]);
        prop_assert_eq!(&whole, &model(&stream, N));
        prop_assert_eq!(&decode_chunks::<N>(split(&stream, &sizes)), &whole);
        prop_assert_eq!(&decode_chunks::<N>(stream.chunks(1)), &whole);
    }

    #[test]
    fn arbitrary_bytes_decode_like_the_reference_model_in_any_chunking(
        stream in vec(any::<u8>(), 0..400),
        sizes in chunk_sizes(),
    ) {
        // decode_chunks itself checks that nothing panics, consumption never
        // exceeds the input, NeedMore consumes everything, and every chunk finishes.
        let want = model(&stream, N);
        prop_assert_eq!(&decode_chunks::<N>([&stream[..]]), &want);
        prop_assert_eq!(&decode_chunks::<N>(split(&stream, &sizes)), &want);
        prop_assert_eq!(&decode_chunks::<N>(stream.chunks(1)), &want);
    }

    #[test]
    fn oversized_frame_is_skipped_exactly_and_the_next_frame_decodes(
        big in oversized_body(N),
        next in vec(any::<u8>(), 0..=N),
        sizes in chunk_sizes(),
    ) {
        let mut stream = framed(&big);
        stream.extend(framed(&next));
        let want = vec![
            Item::Error(FrameError::Oversized { len: big.len() as u32, max: N }),
            Item::Frame(next),
        ];
        prop_assert_eq!(decode_chunks::<N>([&stream[..]]).items, want.clone());
        prop_assert_eq!(decode_chunks::<N>(split(&stream, &sizes)).items, want.clone());
        prop_assert_eq!(decode_chunks::<N>(stream.chunks(1)).items, want);
    }

    #[test]
    fn encode_into_too_small_a_buffer_returns_the_needed_size_and_leaves_it_untouched(
        (body, short) in vec(any::<u8>(), 0..=300).prop_flat_map(|body| {
            let needed = header_len(body.len()) + body.len();
            (Just(body), 0..needed)
        }),
        fill in any::<u8>(),
    ) {
        let needed = header_len(body.len()) + body.len();
        let mut out = vec![fill; short];
        prop_assert_eq!(encode(&body, &mut out), Err(BufferTooSmall { needed }));
        prop_assert!(out.iter().all(|&b| b == fill));

        let mut out = vec![fill; needed + 3];
        prop_assert_eq!(encode(&body, &mut out), Ok(needed));
        prop_assert_eq!(&out[needed..], &[fill; 3][..], "bytes past the frame are untouched");
    }

    #[test]
    fn write_header_into_too_small_a_buffer_returns_the_needed_size_and_leaves_it_untouched(
        len in any::<u32>(),
        fill in any::<u8>(),
    ) {
        let needed = header_len(len as usize);
        prop_assert!((1..=MAX_HEADER).contains(&needed));
        let mut out = vec![fill; needed - 1];
        prop_assert_eq!(write_header(len, &mut out), Err(BufferTooSmall { needed }));
        prop_assert!(out.iter().all(|&b| b == fill));

        let mut out = [fill; MAX_HEADER];
        prop_assert_eq!(write_header(len, &mut out), Ok(needed));
        // The header alone announces `len`: a limit-0 decoder reports it as is.
        let mut decoder = FrameDecoder::<0>::new();
        let (used, found) = decoder.decode(&out[..needed]);
        prop_assert_eq!(used, needed);
        if len == 0 {
            prop_assert_eq!(found, Decoded::Frame(&[]));
        } else {
            prop_assert_eq!(found, Decoded::Error(FrameError::Oversized { len, max: 0 }));
        }
    }
}

#[test]
fn every_body_length_up_to_the_limit_plus_two_decodes_or_is_reported_oversized() {
    for len in 0..=N + 2 {
        let body: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut stream = framed(&body);
        stream.extend(framed(b"after"));
        let want = vec![expected(&body, N), Item::Frame(b"after".to_vec())];
        assert_eq!(decode_chunks::<N>([&stream[..]]).items, want, "len {len}");
        assert_eq!(
            decode_chunks::<N>(stream.chunks(1)).items,
            want,
            "len {len}"
        );
    }
}

#[test]
fn flipping_any_single_bit_of_a_valid_stream_never_breaks_chunking_invariance() {
    let bodies: [&[u8]; 5] = [b"", b"hello", &[0x80; 70], &[0; 3], b"bye"];
    let stream: Vec<u8> = bodies.iter().flat_map(|b| framed(b)).collect();
    for bit in 0..stream.len() * 8 {
        let mut flipped = stream.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let want = model(&flipped, N);
        assert_eq!(decode_chunks::<N>([&flipped[..]]), want, "bit {bit}");
        assert_eq!(decode_chunks::<N>(flipped.chunks(1)), want, "bit {bit}");
        assert_eq!(decode_chunks::<N>(flipped.chunks(7)), want, "bit {bit}");
    }
}

#[test]
fn a_length_prefix_longer_than_five_bytes_is_fatal_in_any_chunking() {
    let stream = [0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00];
    let want = vec![Item::Error(FrameError::BadHeader)];
    for size in 1..=stream.len() {
        let got = decode_chunks::<N>(stream.chunks(size));
        assert_eq!(got.items, want, "chunks of {size}");
        assert!(got.failed);
    }
}

#[test]
fn errors_explain_themselves_with_their_numbers() {
    let oversized = FrameError::Oversized {
        len: 70000,
        max: 1024,
    }
    .to_string();
    assert!(
        oversized.contains("70000") && oversized.contains("1024"),
        "{oversized}"
    );
    assert!(FrameError::BadHeader.to_string().contains("close the peer"));
    let small = BufferTooSmall { needed: 12 }.to_string();
    assert!(small.contains("12"), "{small}");
}

/// A stream with every kind of frame the one-byte path meets: 1- and 2-byte
/// headers, empty bodies, an oversized frame whose body looks like frames, and
/// a bad varint at the end.
fn one_byte_path_stream() -> Vec<u8> {
    let mut stream = Vec::new();
    for body in [&b"hi"[..], b"", &[7; 150], &[0; WIDE], &[1; 3]] {
        stream.extend(framed(body));
    }
    stream.extend(framed(&[1; WIDE + 5]));
    stream.extend(framed(b"after"));
    stream.extend([0x80, 0x80, 0x80, 0x80, 0x80, 0x00]);
    stream
}

#[test]
fn feeding_one_byte_at_a_time_from_any_point_gives_what_one_slice_gives() {
    let stream = one_byte_path_stream();
    let whole = decode_chunks::<WIDE>([&stream[..]]);
    assert_eq!(whole, model(&stream, WIDE));
    for at in 0..=stream.len() {
        let (head, tail) = stream.split_at(at);
        let slice_then_bytes = std::iter::once(head).chain(tail.chunks(1));
        assert_eq!(decode_chunks::<WIDE>(slice_then_bytes), whole, "split {at}");
        let bytes_then_slice = head.chunks(1).chain(std::iter::once(tail));
        assert_eq!(decode_chunks::<WIDE>(bytes_then_slice), whole, "split {at}");
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn one_byte_calls_mixed_with_larger_chunks_give_the_same_outcome(
        segments in vec(segment(N), 0..10),
        sizes in vec(prop_oneof![4 => Just(1usize), 1 => 0usize..=N + 8], 1..12),
    ) {
        let stream = stream_of(&segments);
        let whole = decode_chunks::<N>([&stream[..]]);
        prop_assert_eq!(&decode_chunks::<N>(split(&stream, &sizes)), &whole);
    }
}

#[test]
fn body_of_takes_exactly_one_whole_frame() {
    let mut out = [0; 16];
    let n = encode(b"abc", &mut out).unwrap();
    assert_eq!(body_of(&out[..n]), Some(&b"abc"[..]));
    assert_eq!(body_of(&out[..n - 1]), None, "cut short");
    assert_eq!(body_of(&out[..n + 1]), None, "a byte more");
}

#[test]
fn first_measures_the_frame_at_the_start_with_more_after_it() {
    let mut out = [0; 16];
    let n = encode(b"abc", &mut out).unwrap();
    assert_eq!(first(&out[..n + 2]), Some((1, 3)));
    assert_eq!(first(&out[..n]), Some((1, 3)));
    assert_eq!(first(&out[..n - 1]), None, "its body runs past the end");
    assert_eq!(first(&[0x80; 6]), None, "no varint");
    assert_eq!(first(&[]), None);
}
