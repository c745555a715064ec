//! Property tests for `meshtalk_core::wire`: messages survive framing, no bytes
//! make the decoder or the banner sniffer panic, and the sniffer tells banners,
//! their prefixes and text apart exactly.

use meshtalk_core::command::validate_alias;
use meshtalk_core::frame::{Decoded, FrameDecoder};
use meshtalk_core::wire::{
    BANNER_PREFIX, Banner, MAX_BANNER, Message, REFUSAL_PREFIX, Refusal, Sniff, sniff,
    write_banner, write_refusal_line,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

/// Room for any frame the strategies make.
const ROOM: usize = 2048;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(0x7769_7265),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A message owning its text, so strategies can make one.
#[derive(Clone, Debug)]
enum Owned {
    Hello(u16, u64, String),
    Chat(u32, String),
    Ack(u32),
    Broadcast(u64, u32, u8, String, String),
    Bye(String),
    Refuse(u8, u32),
}

impl Owned {
    fn msg(&self) -> Message<'_> {
        match self {
            Owned::Hello(minor, node, name) => Message::Hello {
                minor: *minor,
                node: *node,
                name,
            },
            Owned::Chat(id, text) => Message::Chat { id: *id, text },
            Owned::Ack(id) => Message::Ack { id: *id },
            Owned::Broadcast(origin, seq, hops, name, text) => Message::Broadcast {
                origin: *origin,
                seq: *seq,
                hops: *hops,
                name,
                text,
            },
            Owned::Bye(reason) => Message::Bye { reason },
            Owned::Refuse(code, arg) => Message::Refuse {
                code: *code,
                arg: *arg,
            },
        }
    }
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,40}",
        ".{0,300}",
        Just(String::new()),
        Just("\u{10ffff}".repeat(100)),
    ]
}

fn message() -> impl Strategy<Value = Owned> {
    prop_oneof![
        (any::<u16>(), any::<u64>(), text()).prop_map(|(m, n, s)| Owned::Hello(m, n, s)),
        (any::<u32>(), text()).prop_map(|(i, s)| Owned::Chat(i, s)),
        any::<u32>().prop_map(Owned::Ack),
        (any::<u64>(), any::<u32>(), any::<u8>(), text(), text())
            .prop_map(|(o, s, h, n, t)| Owned::Broadcast(o, s, h, n, t)),
        text().prop_map(Owned::Bye),
        (any::<u8>(), any::<u32>()).prop_map(|(c, a)| Owned::Refuse(c, a)),
    ]
}

/// Encodes `msg` into exactly `frame_len()` bytes of room; the frame's length.
fn encode(msg: &Message<'_>, out: &mut [u8; ROOM]) -> usize {
    let bound = msg.frame_len();
    let n = msg
        .encode_frame(&mut out[..bound])
        .expect("frame_len() is room enough");
    assert!(n <= bound, "frame_len() {bound} is below the length {n}");
    n
}

/// Feeds a whole stream to a decoder and decodes every frame as a message,
/// which must not panic; returns how many messages decoded.
fn decode_all(stream: &[u8]) -> usize {
    let mut decoder = FrameDecoder::<ROOM>::new();
    let mut rest = stream;
    let mut ok = 0;
    loop {
        let (used, found) = decoder.decode(rest);
        match found {
            Decoded::NeedMore => return ok,
            Decoded::Frame(body) => ok += usize::from(Message::decode(body).is_ok()),
            Decoded::Error(e) if e.is_fatal() => return ok,
            Decoded::Error(_) => {}
        }
        rest = &rest[used..];
    }
}

/// True when `bytes` agree with the banner prefix as far as both go.
fn could_begin_a_banner(bytes: &[u8]) -> bool {
    let common = bytes.len().min(BANNER_PREFIX.len());
    bytes[..common] == BANNER_PREFIX[..common]
}

/// Bytes for the sniffer: often starting like a banner.
fn greeting() -> impl Strategy<Value = Vec<u8>> {
    let tail = vec(
        prop_oneof![
            4 => any::<u8>(),
            2 => Just(b'\n'),
            2 => Just(b' '),
            2 => prop::sample::select(b"0123456789.1abc-\r".to_vec()),
        ],
        0..80,
    );
    prop_oneof![
        vec(any::<u8>(), 0..80),
        (0..=BANNER_PREFIX.len(), tail.clone())
            .prop_map(|(k, t)| [&BANNER_PREFIX[..k], &t[..]].concat()),
        (0..=BANNER_PREFIX.len(), tail)
            .prop_map(|(k, t)| [&BANNER_PREFIX[..k], b"1 ", &t[..]].concat()),
    ]
}

proptest! {
    #![proptest_config(config(600))]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(body in vec(any::<u8>(), 0..200)) {
        if let Ok(msg) = Message::decode(&body) {
            // What decodes re-encodes, and decodes to the same message.
            let mut out = [0; ROOM];
            let n = encode(&msg, &mut out);
            let mut decoder = FrameDecoder::<ROOM>::new();
            let (used, found) = decoder.decode(&out[..n]);
            prop_assert_eq!(used, n);
            let Decoded::Frame(again) = found else { panic!("not a frame: {found:?}") };
            prop_assert_eq!(Message::decode(again), Ok(msg));
        }
    }

    #[test]
    fn every_message_round_trips_through_a_frame(owned in message()) {
        let msg = owned.msg();
        let mut out = [0; ROOM];
        let n = encode(&msg, &mut out);
        let mut decoder = FrameDecoder::<ROOM>::new();
        let (used, found) = decoder.decode(&out[..n]);
        prop_assert_eq!(used, n, "one frame, all of it");
        let Decoded::Frame(body) = found else { panic!("not a frame: {found:?}") };
        prop_assert_eq!(Message::decode(body), Ok(msg));
    }

    #[test]
    fn a_buffer_shorter_than_frame_len_is_refused_untouched(owned in message(), short in 0usize..64) {
        let msg = owned.msg();
        let bound = msg.frame_len();
        let len = bound.saturating_sub(1 + short);
        let mut out = [0xa5u8; ROOM];
        let err = msg.encode_frame(&mut out[..len]).unwrap_err();
        prop_assert_eq!(err.needed, bound);
        prop_assert!(out.iter().all(|&b| b == 0xa5), "the buffer was written");
    }

    #[test]
    fn flipping_any_one_bit_of_a_frame_gives_an_error_or_a_message(
        owned in message(),
        pick in any::<prop::sample::Index>(),
    ) {
        let mut out = [0; ROOM];
        let n = encode(&owned.msg(), &mut out);
        let bit = pick.index(n * 8);
        out[bit / 8] ^= 1 << (bit % 8);
        decode_all(&out[..n]);
    }

    #[test]
    fn the_sniffer_never_panics_and_tells_text_prefixes_and_banners_apart(bytes in greeting()) {
        let newline = bytes.iter().position(|&b| b == b'\n');
        match sniff(&bytes) {
            Sniff::Text => prop_assert!(!could_begin_a_banner(&bytes), "a banner's start taken as text"),
            Sniff::Partial => {
                prop_assert!(could_begin_a_banner(&bytes));
                prop_assert!(newline.is_none(), "a whole line is still partial");
                prop_assert!(bytes.len() < MAX_BANNER, "partial at {} bytes", bytes.len());
            }
            Sniff::Banner { banner, len } => {
                prop_assert_eq!(Some(len - 1), newline, "a banner ends at the first newline");
                prop_assert!(len <= MAX_BANNER);
                prop_assert_eq!(banner.major, 1);
                prop_assert!(validate_alias(banner.name).is_ok());
                prop_assert!(bytes.starts_with(BANNER_PREFIX));
            }
            Sniff::Error(_) => {
                prop_assert!(could_begin_a_banner(&bytes));
                prop_assert!(newline.is_some() || bytes.len() >= MAX_BANNER);
            }
            Sniff::Refused(_) => {
                prop_assert!(bytes.starts_with(REFUSAL_PREFIX));
                prop_assert!(newline.is_some_and(|n| n < MAX_BANNER), "a refusal is a whole line");
            }
        }
        // Text exactly when the bytes cannot begin a banner.
        prop_assert_eq!(sniff(&bytes) == Sniff::Text, !could_begin_a_banner(&bytes));
        // Partial exactly for a banner's start, with no newline, below the limit.
        let partial = could_begin_a_banner(&bytes) && newline.is_none() && bytes.len() < MAX_BANNER;
        prop_assert_eq!(sniff(&bytes) == Sniff::Partial, partial);
    }

    #[test]
    fn our_banner_sniffs_as_itself_for_every_valid_name(
        name in "[A-Za-z0-9_.-]{1,32}",
        after in vec(any::<u8>(), 0..16),
    ) {
        prop_assert!(validate_alias(&name).is_ok());
        let mut out = [0u8; MAX_BANNER + 16];
        let n = write_banner(&name, &mut out).unwrap();
        let expected = Sniff::Banner { banner: Banner { major: 1, name: &name, room: false }, len: n };
        prop_assert_eq!(sniff(&out[..n]), expected);
        // Whatever follows the line does not change it.
        let mut stream = out[..n].to_vec();
        stream.extend(&after);
        prop_assert_eq!(sniff(&stream), expected);
        // Every proper prefix is partial.
        for k in 0..n {
            prop_assert_eq!(sniff(&out[..k]), Sniff::Partial, "prefix of {} bytes", k);
        }
        // Too little room: the size needed, and nothing written.
        let mut short = [0xa5u8; MAX_BANNER];
        prop_assert_eq!(write_banner(&name, &mut short[..n - 1]).unwrap_err().needed, n);
        prop_assert!(short.iter().all(|&b| b == 0xa5));
    }
}

/// Every length of an arbitrary-looking body up to a full frame's, plus two.
#[test]
fn every_prefix_of_every_message_decodes_or_fails_without_panicking() {
    let name = "n".repeat(32);
    let text = "t☃".repeat(40);
    let messages = [
        Message::Hello {
            minor: u16::MAX,
            node: u64::MAX,
            name: &name,
        },
        Message::Chat {
            id: u32::MAX,
            text: &text,
        },
        Message::Ack { id: u32::MAX },
        Message::Broadcast {
            origin: u64::MAX,
            seq: u32::MAX,
            hops: u8::MAX,
            name: &name,
            text: &text,
        },
        Message::Bye { reason: &text },
        Message::Refuse {
            code: u8::MAX,
            arg: u32::MAX,
        },
    ];
    for msg in messages {
        let mut out = [0; ROOM];
        let n = encode(&msg, &mut out);
        for len in 0..=n + 2 {
            let _ = Message::decode(&out[..len]);
            decode_all(&out[..len]);
        }
    }
}

/// Decodes one encoded frame's body as a message.
fn round_trip(msg: Message<'_>, check: impl FnOnce(Message<'_>)) {
    let mut out = [0; ROOM];
    let n = encode(&msg, &mut out);
    let mut decoder = FrameDecoder::<ROOM>::new();
    let (_, found) = decoder.decode(&out[..n]);
    let Decoded::Frame(body) = found else {
        panic!("no frame: {found:?}")
    };
    check(Message::decode(body).expect("decodes"));
}

#[test]
fn a_peers_typed_refusal_is_decoded_from_the_wire_with_its_count() {
    for why in [
        Refusal::Busy,
        Refusal::Serving,
        Refusal::PerIp { max: 3 },
        Refusal::Full { limit: 64 },
    ] {
        let (code, arg) = why.code();
        round_trip(Message::Refuse { code, arg }, |got| {
            let Message::Refuse { code, arg } = got else {
                panic!("{got:?}")
            };
            assert_eq!(Refusal::from_code(code, arg), why);
        });
    }
}

#[test]
fn a_refusal_code_this_version_does_not_know_decodes_as_a_generic_refusal() {
    round_trip(Message::Refuse { code: 200, arg: 7 }, |got| {
        assert_eq!(got, Message::Refuse { code: 200, arg: 7 });
    });
    assert_eq!(Refusal::from_code(200, 7), Refusal::Unknown);
    assert_eq!(Refusal::from_code(0, 0), Refusal::Unknown);
}

#[test]
fn a_refusal_line_is_one_readable_line_that_sniffs_as_the_refusal_it_names() {
    for why in [
        Refusal::Busy,
        Refusal::Serving,
        Refusal::PerIp { max: 2 },
        Refusal::Full { limit: 8 },
        Refusal::Full { limit: 65_535 },
        Refusal::Unknown,
    ] {
        let mut out = [0u8; 128];
        let n = write_refusal_line(why, &mut out).expect("fits");
        let line = std::str::from_utf8(&out[..n]).expect("text");
        assert!(n <= MAX_BANNER, "{line:?} is longer than a banner");
        assert!(
            line.ends_with('\n') && line.matches('\n').count() == 1,
            "{line:?}"
        );
        assert!(line.starts_with("MESHTALK/refused "), "{line:?}");
        assert!(line.contains("try again"), "{line:?} says what to do");
        assert_eq!(sniff(&out[..n]), Sniff::Refused(why), "{line:?}");
    }
    let mut out = [0u8; 128];
    let n = write_refusal_line(Refusal::Full { limit: 8 }, &mut out).unwrap();
    assert_eq!(
        &out[..n],
        b"MESHTALK/refused full 8: this node is full; try again later\n".as_slice()
    );
    assert!(REFUSAL_PREFIX.starts_with(BANNER_PREFIX));
}

#[test]
fn a_private_room_refusal_line_sniffs_as_one() {
    let mut out = [0u8; 128];
    let n = write_refusal_line(Refusal::Private, &mut out).expect("fits");
    let line = std::str::from_utf8(&out[..n]).expect("text");
    assert!(n <= MAX_BANNER && line.ends_with('\n'), "{line:?}");
    assert!(line.contains("private"), "{line:?}");
    assert_eq!(
        sniff(&out[..n]),
        Sniff::Refused(Refusal::Private),
        "{line:?}"
    );
}

#[test]
fn a_version_with_a_sign_or_no_digits_is_malformed() {
    for banner in [
        &b"MESHTALK/+2 XX\n"[..],
        b"MESHTALK/ XX\n",
        b"MESHTALK/-1 bob\n",
    ] {
        assert_eq!(
            sniff(banner),
            Sniff::Error(meshtalk_core::wire::BannerError::Malformed),
            "{:?}",
            String::from_utf8_lossy(banner)
        );
    }
}
