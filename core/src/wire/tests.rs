//! The wire format's own tests: round trips, limits, banners and refusals
//! (compiled only under `#[cfg(test)]`, from `mod.rs`).

use super::*;

fn round_trip(msg: Message<'_>) {
    let mut buf = [0u8; 256];
    let n = msg.encode_frame(&mut buf).unwrap();
    assert!(n <= msg.frame_len());
    let mut dec = frame::FrameDecoder::<256>::new();
    let (used, got) = dec.decode(&buf[..n]);
    assert_eq!(used, n);
    let frame::Decoded::Frame(body) = got else {
        panic!("no frame: {got:?}")
    };
    assert_eq!(Message::decode(body), Ok(msg));
}

#[test]
fn every_message_round_trips_through_a_frame() {
    round_trip(Message::Hello {
        minor: 0,
        node: u64::MAX,
        name: "alice",
    });
    round_trip(Message::Chat {
        id: 7,
        text: "hi ☃",
    });
    round_trip(Message::Ack { id: u32::MAX });
    round_trip(Message::Broadcast {
        origin: 3,
        seq: 9,
        hops: 8,
        name: "bob",
        text: "room",
    });
    round_trip(Message::Bye { reason: "exit" });
    round_trip(Message::Routed {
        origin: u64::MAX,
        dest: u64::MAX - 1,
        id: u32::MAX,
        hops: u8::MAX,
        name: "carol",
        text: "through ☃",
    });
    round_trip(Message::RoutedAck {
        origin: u64::MAX,
        dest: 1,
        id: u32::MAX,
        hops: 8,
        code: u8::MAX,
    });
}

#[test]
fn routed_messages_come_after_every_older_variant_so_old_frames_keep_their_tags() {
    // postcard's tag is the variant's place: a new one appended leaves the
    // bytes of every message an older node sends as they were.
    let mut buf = [0u8; 64];
    let n = Message::Refuse { code: 1, arg: 0 }
        .encode_frame(&mut buf)
        .unwrap();
    assert_eq!(buf[1], 7, "Refuse keeps tag 7 ({:?})", &buf[..n]);
    Message::Routed {
        origin: 1,
        dest: 2,
        id: 3,
        hops: 4,
        name: "",
        text: "",
    }
    .encode_frame(&mut buf)
    .unwrap();
    assert_eq!(buf[1], 8);
    const { assert!(MINOR_ROUTE == 3) };
}

#[test]
fn announces_and_sealed_messages_come_after_the_routed_ones_and_round_trip() {
    let mut buf = [0u8; 128];
    let key = [7u8; 32];
    let announce = Message::Announce {
        origin: 1,
        seq: 2,
        hops: 3,
        name: "carol",
        key: &key,
        salt: u64::MAX,
    };
    let n = announce.encode_frame(&mut buf).unwrap();
    assert_eq!(buf[1], 10);
    assert!(n <= announce.frame_len());
    assert_eq!(Message::decode(&buf[1..n]), Ok(announce));
    let sealed = Message::Sealed {
        origin: 1,
        dest: 2,
        id: 3,
        hops: 4,
        sealed: &[9; 40],
    };
    let n = sealed.encode_frame(&mut buf).unwrap();
    assert_eq!(buf[1], 11);
    assert!(n <= sealed.frame_len());
    assert_eq!(Message::decode(&buf[1..n]), Ok(sealed));
    const { assert!(MINOR_SEAL == MINOR) };
}

#[test]
fn chat_by_hand_is_postcard_byte_for_byte_both_ways() {
    let long = "é".repeat(300);
    for id in [
        0,
        1,
        127,
        128,
        16383,
        16384,
        (1 << 21) - 1,
        1 << 21,
        u32::MAX,
    ] {
        for text in [
            "",
            "hi",
            "x".repeat(127).as_str(),
            "y".repeat(128).as_str(),
            &long,
        ] {
            let msg = Message::Chat { id, text };
            let mut by_hand = [0u8; 1024];
            let n = msg.encode_frame(&mut by_hand).unwrap();
            let mut body = [0u8; 1024];
            let body = postcard::to_slice(&msg, &mut body).unwrap();
            let head = frame::header_len(body.len());
            assert_eq!(&by_hand[head..n], &*body, "id {id} len {}", text.len());
            assert!(decode_chat(body).is_none_or(|m| m == msg));
            assert_eq!(Message::decode(body), Ok(msg));
        }
    }
}

#[test]
fn chat_read_by_hand_refuses_what_postcard_refuses() {
    for body in [
        &[1, 5, 2, b'h', b'i'][..],
        &[1, 5, 2, b'h'],
        &[1, 5, 2, b'h', b'i', b'!'],
        &[1, 5, 2, 0xff, 0xfe],
        &[1, 0x80, 0x00, 1, b'a'],
        &[1, 0x85, 0x80, 0x80, 0x80, 0x01, 0],
        &[1, 5, 0x81, 0x00, b'a'],
        &[1],
        &[1, 0x80],
    ] {
        assert_eq!(Message::decode(body), postcard_says(body), "{body:?}");
    }
}

/// What postcard alone says of a body.
fn postcard_says(b: &[u8]) -> Result<Message<'_>, WireError> {
    match postcard::take_from_bytes::<Message<'_>>(b) {
        Ok((m, [])) => Ok(m),
        Ok(_) => Err(WireError::TrailingBytes),
        Err(_) => Err(WireError::Malformed),
    }
}

#[test]
fn broadcast_read_by_hand_is_what_postcard_reads() {
    let long = "é".repeat(300);
    for origin in [0, 1, 127, 128, u64::from(u32::MAX), 1 << 63, u64::MAX] {
        for seq in [0, 127, 128, (1 << 21) - 1, 1 << 21, u32::MAX] {
            for (hops, name, text) in [(0, "", ""), (8, "bob", "hi ☃"), (255, "x", &long)] {
                let msg = Message::Broadcast {
                    origin,
                    seq,
                    hops,
                    name,
                    text,
                };
                let mut body = [0u8; 1024];
                let body = postcard::to_slice(&msg, &mut body).unwrap();
                assert_eq!(decode_broadcast(body), Some(msg), "{msg:?}");
                assert_eq!(Message::decode(body), Ok(msg));
            }
        }
    }
}

#[test]
fn every_cut_and_every_changed_byte_of_a_chat_or_broadcast_decodes_as_postcard_says() {
    let msgs = [
        Message::Chat {
            id: 300,
            text: "hé",
        },
        Message::Broadcast {
            origin: u64::MAX,
            seq: 1 << 21,
            hops: 3,
            name: "bob",
            text: "hé",
        },
    ];
    let mut buf = [0u8; 64];
    for msg in msgs {
        let body = postcard::to_slice(&msg, &mut buf).unwrap().to_vec();
        for end in 0..=body.len() {
            let cut = &body[..end];
            assert_eq!(Message::decode(cut), postcard_says(cut), "{cut:?}");
        }
        for at in 0..body.len() {
            for value in 0..=u8::MAX {
                let mut changed = [0u8; 64];
                changed[..body.len()].copy_from_slice(&body);
                changed[at] = value;
                let changed = &changed[..body.len()];
                assert_eq!(
                    Message::decode(changed),
                    postcard_says(changed),
                    "{changed:?}"
                );
            }
        }
    }
}

#[test]
fn encoding_into_a_short_buffer_says_how_much_is_needed() {
    let msg = Message::Chat {
        id: 1,
        text: "hello",
    };
    let mut buf = [0u8; 4];
    let err = msg.encode_frame(&mut buf).unwrap_err();
    assert_eq!(err.needed, msg.frame_len());
    assert_eq!(buf, [0; 4]);
}

#[test]
fn trailing_bytes_after_a_message_are_refused() {
    let mut buf = [0u8; 64];
    let n = postcard::to_slice(&Message::Ack { id: 1 }, &mut buf)
        .unwrap()
        .len();
    assert_eq!(
        Message::decode(&buf[..n + 1]),
        Err(WireError::TrailingBytes)
    );
}

#[test]
fn a_valid_banner_is_recognised_with_its_length() {
    assert_eq!(
        sniff(b"MESHTALK/1 alice\nrest"),
        Sniff::Banner {
            banner: Banner {
                major: 1,
                name: "alice",
                room: false,
            },
            len: 17
        }
    );
    assert!(matches!(
        sniff(b"MESHTALK/1.4 bob\r\n"),
        Sniff::Banner { .. }
    ));
}

#[test]
fn a_prefix_of_a_banner_waits_and_anything_else_is_text() {
    assert_eq!(sniff(b""), Sniff::Partial);
    assert_eq!(sniff(b"MESH"), Sniff::Partial);
    assert_eq!(sniff(b"MESHTALK/1 al"), Sniff::Partial);
    assert_eq!(sniff(b"hello"), Sniff::Text);
    assert_eq!(sniff(b"MESSAGE"), Sniff::Text);
    assert_eq!(sniff(b"quit"), Sniff::Text);
}

#[test]
fn another_major_version_is_refused_with_both_versions_named() {
    let Sniff::Error(e) = sniff(b"MESHTALK/3 bob\n") else {
        panic!()
    };
    assert_eq!(e, BannerError::Version { major: 3, ours: 2 });
    let mut text = heapless::String::<128>::new();
    core::fmt::write(&mut text, format_args!("{e}")).unwrap();
    assert!(text.contains("MESHTALK/3") && text.contains("MESHTALK/2"));
}

#[test]
fn a_protocol_2_banner_names_its_handshake_and_no_name() {
    let banner = |room| Banner {
        major: 2,
        name: "",
        room,
    };
    assert_eq!(
        sniff(b"MESHTALK/2 XX\n"),
        Sniff::Banner {
            banner: banner(false),
            len: 14
        }
    );
    assert_eq!(
        sniff(b"MESHTALK/2 XXpsk0\n"),
        Sniff::Banner {
            banner: banner(true),
            len: 18
        }
    );
    assert_eq!(
        sniff(b"MESHTALK/2 alice\n"),
        Sniff::Error(BannerError::Malformed)
    );
}

#[test]
fn our_protocol_2_banner_sniffs_as_one_with_its_room_flag() {
    for room in [false, true] {
        let mut buf = [0u8; MAX_BANNER];
        let n = write_secure_banner(room, &mut buf).unwrap();
        let Sniff::Banner { banner, len } = sniff(&buf[..n]) else {
            panic!()
        };
        assert_eq!((banner.major, banner.room, len), (2, room, n));
    }
}

#[test]
fn broken_banners_are_refused() {
    assert_eq!(sniff(b"MESHTALK/1\n"), Sniff::Error(BannerError::Malformed));
    assert_eq!(
        sniff(b"MESHTALK/x bob\n"),
        Sniff::Error(BannerError::Malformed)
    );
    assert_eq!(
        sniff(b"MESHTALK/1 b\0b\n"),
        Sniff::Error(BannerError::BadName)
    );
    assert_eq!(
        sniff(b"MESHTALK/1 \xff\n"),
        Sniff::Error(BannerError::Malformed)
    );
    assert_eq!(
        sniff(
            &[
                b'M', b'E', b'S', b'H', b'T', b'A', b'L', b'K', b'/', b'1', b' '
            ]
            .iter()
            .copied()
            .chain(core::iter::repeat_n(b'a', 60))
            .collect::<heapless::Vec<u8, 80>>()
        ),
        Sniff::Error(BannerError::TooLong)
    );
    assert_eq!(
        sniff(b"MESHTALK/99999999 bob\n"),
        Sniff::Error(BannerError::Malformed)
    );
}

#[test]
fn our_banner_is_one_line_that_sniffs_as_a_banner() {
    let mut buf = [0u8; MAX_BANNER];
    let n = write_banner("alice", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"MESHTALK/1 alice\n");
    assert!(matches!(sniff(&buf[..n]), Sniff::Banner { len, .. } if len == n));
}

#[test]
fn with_hops_changes_only_the_hops_of_what_relays_pass_on() {
    let key = [1u8; 32];
    let relayed = [
        Message::Broadcast {
            origin: 1,
            seq: 2,
            hops: 8,
            name: "a",
            text: "t",
        },
        Message::Announce {
            origin: 1,
            seq: 2,
            hops: 8,
            name: "a",
            key: &key,
            salt: 3,
        },
        Message::Routed {
            origin: 1,
            dest: 2,
            id: 3,
            hops: 8,
            name: "a",
            text: "t",
        },
        Message::Sealed {
            origin: 1,
            dest: 2,
            id: 3,
            hops: 8,
            sealed: &key,
        },
        Message::RoutedAck {
            origin: 1,
            dest: 2,
            id: 3,
            hops: 8,
            code: 0,
        },
    ];
    for msg in relayed {
        let passed = msg.with_hops(5);
        let mut a = [0u8; 128];
        let mut b = [0u8; 128];
        let n = msg.encode_frame(&mut a).unwrap();
        let m = passed.encode_frame(&mut b).unwrap();
        assert_ne!(passed, msg, "{msg:?}");
        assert_eq!(passed.with_hops(8), msg, "{msg:?}");
        assert_eq!(n, m, "only a one-byte field changes: {msg:?}");
    }
    let chat = Message::Chat { id: 1, text: "t" };
    assert_eq!(chat.with_hops(5), chat);
}
