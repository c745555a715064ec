//! End to end: attacks on a real `meshtalk mesh` on loopback. Each test starts a
//! node, attacks it with what a stranger on the network could send, and ends by
//! checking that two well-behaved peers still exchange a message. Every wait is
//! bounded; the node is killed on drop.
//!
//! The node speaks protocol 2: banners are `MESHTALK/2 XX`, a Noise handshake
//! follows, and then every frame's body is sealed. The hand-made peers
//! ([`Native`]) do the handshake and seal what they write, so attacks on frames
//! still reach the frame and message decoders; bytes written unsealed after
//! the handshake meet the integrity check first.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::{
    BANNER, Native, Node, Rng, WAIT, assert_closed, assert_still_serving, connect, frame,
    frame_header, handshake, random32, read_frame, read_line, seal_frames,
};
use meshtalk_core::noise::TAG;
use meshtalk_core::wire::Message;
use socket2::{Domain, Socket, Type};

/// The largest frame body the host accepts (`HostNode` in `host/src/driver/mod.rs`):
/// on a secure link, a sealed body (the message and its tag).
const MAX_FRAME: usize = 8192;

/// `value` as an unbounded LEB128 varint (any length, unlike a frame header).
fn varint(mut value: u128) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// A frame header announcing `len` body bytes.
fn header(len: usize) -> Vec<u8> {
    varint(len as u128)
}

/// The node's JSON `disconnected` event for `peer`.
fn expect_gone(node: &Node, peer: u64) -> String {
    let gone = node.expect("disconnected", WAIT, |e| e["peer"] == peer);
    gone["reason"].as_str().unwrap_or_default().to_string()
}

/// The node's JSON `disconnected` event whose reason contains `why`, for a
/// connection it never showed as connected (a banner or handshake refused).
fn expect_dropped(node: &Node, why: &str) -> String {
    let gone = node.expect("disconnected", WAIT, |e| {
        e["reason"].as_str().is_some_and(|r| r.contains(why))
    });
    gone["reason"].as_str().unwrap_or_default().to_string()
}

// ---- garbage ----

/// Garbage after the handshake goes unsealed: the node closes each such link
/// at its first frame (an integrity or frame error), where protocol 1 read it
/// as frames.
#[test]
fn random_garbage_from_many_connections_leaves_the_node_serving() {
    let mut node = Node::mesh("target", &[]);
    let mut rng = Rng::new(0x9a4b_a6e5);
    for _ in 0..20 {
        let mut stream = connect(&node);
        let len = 1 + (rng.next_u64() % 64_000) as usize;
        let _ = stream.write_all(&rng.bytes(len));
    }
    // And garbage after a valid banner and handshake, where sealed frames are expected.
    for i in 0..10 {
        let mut peer = Native::join(&node, &format!("junk{i}"), true);
        let len = 1 + (rng.next_u64() % 20_000) as usize;
        let _ = peer.stream.write_all(&rng.bytes(len));
    }
    assert_still_serving(&mut node);
}

#[test]
fn a_50_mib_line_with_no_newline_is_cut_into_messages_and_memory_stays_bounded() {
    let mut node = Node::mesh("target", &[]);
    let before = node.status_kib("VmRSS");
    let peak_before = node.status_kib("VmHWM");
    let mut stream = connect(&node);
    let chunk = vec![b'a'; 1 << 20];
    let writer = {
        let mut stream = stream.try_clone().expect("clone");
        stream
            .set_write_timeout(Some(Duration::from_secs(60)))
            .expect("write timeout");
        thread::spawn(move || {
            for _ in 0..50 {
                stream.write_all(&chunk)?;
            }
            Ok::<(), std::io::Error>(())
        })
    };
    let connected = node.expect("connected", WAIT, |e| e["kind"] == "text");
    let peer = connected["peer"].as_u64().expect("peer");
    // Count the bytes shown as messages until the whole line has come through.
    let mut shown = 0usize;
    let deadline = Instant::now() + Duration::from_secs(40);
    while shown < 50 << 20 {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = node.expect("message", left, |e| e["peer"] == peer);
        shown += msg["text"].as_str().map_or(0, str::len);
    }
    writer.join().expect("writer").expect("all 50 MiB written");
    let after = node.status_kib("VmRSS");
    let peak = node.status_kib("VmHWM");
    eprintln!(
        "50 MiB line: VmRSS {before} KiB before, {after} KiB after (growth {} KiB), VmHWM {peak} KiB",
        after.saturating_sub(before)
    );
    // Measured: 280-348 KiB of growth, the peak no higher (debug build, 5 runs);
    // a node that kept the line would grow by 50 MiB.
    let growth = after
        .saturating_sub(before)
        .max(peak.saturating_sub(peak_before.max(before)));
    assert!(
        growth < 1024,
        "RSS grew from {before} KiB to {after} KiB (peak {peak} KiB): {growth} KiB"
    );
    let _ = stream.write_all(b"\n");
    assert_still_serving(&mut node);
}

// ---- banners that are almost right ----

/// Sends `banner` on a new connection and checks the node closes it.
fn refused_banner(node: &Node, banner: &[u8]) -> Vec<u8> {
    let mut stream = connect(node);
    stream.write_all(banner).expect("write banner");
    assert_closed(&stream, WAIT)
}

/// Protocol 2's banner carries no name: the node answers with `MESHTALK/2 XX`,
/// not `MESHTALK/1 target`.
#[test]
fn a_banner_of_another_version_is_answered_with_ours_and_closed() {
    let mut node = Node::mesh("target", &[]);
    for banner in [&b"MESHTALK/1 x\n"[..], b"MESHTALK/3 x\n"] {
        let answer = refused_banner(&node, banner);
        assert!(
            answer.starts_with(BANNER),
            "the node says which version it speaks: {:?}",
            String::from_utf8_lossy(&answer)
        );
    }
    assert_still_serving(&mut node);
}

#[test]
fn a_protocol_1_banner_is_closed_with_an_upgrade_error() {
    let mut node = Node::mesh("target", &[]);
    let answer = refused_banner(&node, b"MESHTALK/1 oldtimer\n");
    assert_eq!(answer, BANNER, "{:?}", String::from_utf8_lossy(&answer));
    let reason = expect_dropped(&node, "upgrade");
    assert!(reason.contains("MESHTALK/1"), "{reason}");
    assert_still_serving(&mut node);
}

/// Protocol 2's banner has no name: a huge pattern word stands for it.
#[test]
fn a_banner_with_a_huge_name_is_closed() {
    let mut node = Node::mesh("target", &[]);
    let mut banner = b"MESHTALK/2 ".to_vec();
    banner.extend(std::iter::repeat_n(b'X', 100_000));
    banner.push(b'\n');
    let mut stream = connect(&node);
    // The node may close before taking it all: a failed write is fine.
    let _ = stream.write_all(&banner);
    assert_closed(&stream, WAIT);
    assert_still_serving(&mut node);
}

/// In protocol 2 the NUL sits in the pattern word, where the name was.
#[test]
fn a_banner_with_a_nul_in_the_name_is_closed() {
    let mut node = Node::mesh("target", &[]);
    refused_banner(&node, b"MESHTALK/2 X\0X\n");
    refused_banner(&node, b"MESHTALK/2 XX\0\n");
    assert_still_serving(&mut node);
}

#[test]
fn a_banner_with_invalid_utf8_is_closed() {
    let mut node = Node::mesh("target", &[]);
    refused_banner(&node, b"MESHTALK/2 \xff\xfe\xc0\n");
    refused_banner(&node, b"MESHTALK/\xff XX\n");
    assert_still_serving(&mut node);
}

#[test]
fn a_banner_never_finished_is_closed_after_the_banner_timeout() {
    let mut node = Node::mesh("target", &[]);
    let mut stream = connect(&node);
    stream.write_all(b"MESHTALK/2 X").expect("write");
    // The banner timeout is 2 s; WAIT bounds it generously.
    let started = Instant::now();
    assert_closed(&stream, WAIT);
    eprintln!("unfinished banner closed after {:?}", started.elapsed());
    assert_still_serving(&mut node);
}

// ---- handshakes that are not ----

/// A connection that sent a good banner and read the node's.
fn after_the_banners(node: &Node) -> TcpStream {
    let mut stream = connect(node);
    stream.write_all(BANNER).expect("write banner");
    assert_eq!(read_line(&mut stream), BANNER);
    stream
}

#[test]
fn garbage_as_handshake_message_1_is_closed_with_a_handshake_error() {
    let mut node = Node::mesh("target", &[]);
    let mut rng = Rng::new(0x4a5d_0001);
    let mut stream = after_the_banners(&node);
    // Shorter than an ephemeral key (32 bytes): no message 1.
    let mut bytes = frame_header(20);
    bytes.extend(rng.bytes(20));
    stream.write_all(&bytes).expect("write message 1");
    assert_closed(&stream, WAIT);
    let reason = expect_dropped(&node, "handshake failed");
    assert!(reason.contains("message 1"), "{reason}");
    assert_still_serving(&mut node);
}

/// XX's message 1 is a bare public key, which any 32 bytes are: the node
/// answers it, and the forgery fails at message 3, which needs our static key.
#[test]
fn garbage_as_handshake_message_3_is_closed_with_a_handshake_error() {
    let mut node = Node::mesh("target", &[]);
    let mut stream = after_the_banners(&node);
    let mut bytes = frame_header(32);
    bytes.extend(random32());
    stream.write_all(&bytes).expect("write message 1");
    let message_2 = read_frame(&mut stream);
    assert!(message_2.len() > 32, "message 2: {} bytes", message_2.len());
    let mut bytes = frame_header(100);
    bytes.extend(Rng::new(0x4a5d_0003).bytes(100));
    stream.write_all(&bytes).expect("write message 3");
    assert_closed(&stream, WAIT);
    let reason = expect_dropped(&node, "handshake failed");
    assert!(reason.contains("message 3"), "{reason}");
    assert_still_serving(&mut node);
}

#[test]
fn a_handshake_never_finished_is_closed_after_the_banner_timeout() {
    let mut node = Node::mesh("target", &[]);
    let mut stream = after_the_banners(&node);
    let mut bytes = frame_header(32);
    bytes.extend(random32());
    stream.write_all(&bytes).expect("write message 1");
    read_frame(&mut stream);
    // No message 3: the handshake has the banner's 2 s.
    let started = Instant::now();
    assert_closed(&stream, WAIT);
    eprintln!("unfinished handshake closed after {:?}", started.elapsed());
    assert_still_serving(&mut node);
}

// ---- frames after a valid banner and handshake ----

#[test]
fn a_frame_length_of_2_pow_63_closes_the_peer() {
    let mut node = Node::mesh("target", &[]);
    let mut peer = Native::join(&node, "huge", true);
    peer.write_raw(&varint(1 << 63));
    let reason = expect_gone(&node, peer.peer);
    assert!(reason.contains("protocol error"), "{reason}");
    peer.assert_closed(WAIT);
    assert_still_serving(&mut node);
}

#[test]
fn an_overlong_varint_closes_the_peer() {
    let mut node = Node::mesh("target", &[]);
    let mut peer = Native::join(&node, "overlong", true);
    // Six continuation bytes: no u32 length is ever this long.
    peer.write_raw(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]);
    let reason = expect_gone(&node, peer.peer);
    assert!(reason.contains("protocol error"), "{reason}");
    peer.assert_closed(WAIT);
    assert_still_serving(&mut node);
}

/// The frame itself is empty (its header is not sealed), not a sealed empty body.
#[test]
fn a_zero_length_frame_closes_the_peer() {
    let mut node = Node::mesh("target", &[]);
    let mut peer = Native::join(&node, "empty", true);
    peer.write_raw(&[0]);
    let reason = expect_gone(&node, peer.peer);
    assert!(reason.contains("protocol error"), "{reason}");
    peer.assert_closed(WAIT);
    assert_still_serving(&mut node);
}

/// Sealed, the frame is one byte over with its header inside and its tag; the
/// node skips it unread and opens the next one with the nonce after it.
#[test]
fn a_frame_one_byte_over_the_maximum_is_skipped_and_the_next_frame_is_read() {
    let mut node = Node::mesh("target", &[]);
    let mut peer = Native::join(&node, "big", true);
    let inner = header(MAX_FRAME).len();
    let mut bytes = peer.seal_body(&vec![0xa5; MAX_FRAME + 1 - TAG - inner]);
    assert_eq!(bytes.len(), header(MAX_FRAME + 1).len() + MAX_FRAME + 1);
    bytes.extend(peer.seal(&frame(&Message::Chat {
        id: 1,
        text: "after the big one",
    })));
    peer.write_raw(&bytes);
    node.expect("message", WAIT, |e| {
        e["peer"] == peer.peer && e["text"] == "after the big one"
    });
    assert_still_serving(&mut node);
}

#[test]
fn a_frame_cut_short_by_a_close_drops_the_peer() {
    let mut node = Node::mesh("target", &[]);
    let mut peer = Native::join(&node, "cut", true);
    let mut bytes = header(100);
    bytes.extend([1u8; 50]);
    peer.write_raw(&bytes);
    common::half_close(&peer.stream);
    expect_gone(&node, peer.peer);
    peer.assert_closed(WAIT);
    assert_still_serving(&mut node);
}

/// The random bodies are sealed, so they pass the integrity check and reach
/// the message decoder, as they did unsealed in protocol 1.
#[test]
fn frames_with_random_bodies_never_take_the_node_down() {
    let mut node = Node::mesh("target", &[]);
    let mut rng = Rng::new(0x5eed_b0d1);
    for i in 0..20 {
        let mut peer = Native::join(&node, &format!("rand{i}"), true);
        let mut bytes = Vec::new();
        for _ in 0..50 {
            let len = 1 + (rng.next_u64() % 300) as usize;
            bytes.extend(peer.seal_body(&rng.bytes(len)));
        }
        let _ = peer.stream.write_all(&bytes);
    }
    assert_still_serving(&mut node);
}

#[test]
fn a_sealed_frame_with_one_bit_flipped_closes_the_peer_with_an_integrity_error() {
    let mut node = Node::mesh("target", &[]);
    let mut peer = Native::join(&node, "flipper", true);
    let mut bytes = peer.seal(&frame(&Message::Chat {
        id: 1,
        text: "tampered with",
    }));
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    peer.write_raw(&bytes);
    let reason = expect_gone(&node, peer.peer);
    assert!(reason.contains("integrity"), "{reason}");
    peer.assert_closed(WAIT);
    assert_still_serving(&mut node);
}

#[test]
fn a_sealed_frame_sent_twice_closes_the_peer_with_an_integrity_error() {
    let mut node = Node::mesh("target", &[]);
    let mut peer = Native::join(&node, "replayer", true);
    let once = peer.seal(&frame(&Message::Chat {
        id: 1,
        text: "said once",
    }));
    peer.write_raw(&[once.clone(), once].concat());
    node.expect("message", WAIT, |e| {
        e["peer"] == peer.peer && e["text"] == "said once"
    });
    let reason = expect_gone(&node, peer.peer);
    assert!(reason.contains("integrity"), "{reason}");
    peer.assert_closed(WAIT);
    assert_still_serving(&mut node);
}

#[test]
fn ten_thousand_tiny_frames_in_one_write_are_all_shown_in_order() {
    let mut node = Node::mesh("target", &[]);
    let mut peer = Native::join(&node, "tiny", true);
    let texts: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
    let bytes: Vec<u8> = texts
        .iter()
        .enumerate()
        .flat_map(|(i, text)| frame(&Message::Chat { id: i as u32, text }))
        .collect();
    peer.write(&bytes);
    for text in &texts {
        let msg = node.expect("message", WAIT, |e| e["peer"] == peer.peer);
        assert_eq!(msg["text"], text.as_str());
    }
    assert_still_serving(&mut node);
}

#[test]
fn invalid_utf8_in_a_text_field_closes_the_peer() {
    let mut node = Node::mesh("target", &[]);
    let mut peer = Native::join(&node, "badtext", true);
    // postcard: variant 1 (Chat), id 7, a 3-byte string that is no UTF-8.
    let body = [1u8, 7, 3, 0xff, 0xfe, 0xc0];
    let mut bytes = header(body.len());
    bytes.extend(body);
    peer.write(&bytes);
    let reason = expect_gone(&node, peer.peer);
    assert!(reason.contains("malformed"), "{reason}");
    peer.assert_closed(WAIT);
    assert_still_serving(&mut node);
}

// ---- many connections ----

/// Feeds `banner` one byte a second to every open connection for at most
/// `seconds` s; returns how many the node closed.
/// `n` connections that each begin a banner at once (a connection silent for
/// half a second, or a few slow letters, is a text peer, which may stay).
fn banner_starts(node: &Node, n: usize) -> Vec<Option<TcpStream>> {
    (0..n)
        .map(|_| {
            let mut stream = connect(node);
            stream
                .write_all(BANNER_START)
                .expect("write the banner's start");
            Some(stream)
        })
        .collect()
}

fn slowloris(conns: &mut [Option<TcpStream>], banner: &[u8], seconds: usize) -> usize {
    let mut closed = 0;
    for bytes in banner.chunks(1).cycle().take(seconds) {
        let tick = Instant::now();
        for slot in conns.iter_mut() {
            let Some(stream) = slot else { continue };
            stream.set_nonblocking(true).expect("nonblocking");
            let mut buf = [0u8; 256];
            let gone = match stream.read(&mut buf) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
            } || stream.write_all(bytes).is_err();
            if gone {
                closed += 1;
                *slot = None;
            }
        }
        if conns.iter().all(Option::is_none) {
            break;
        }
        thread::sleep(Duration::from_secs(1).saturating_sub(tick.elapsed()));
    }
    closed
}

/// A banner that never ends: after the prefix, name letters forever.
const SLOW_BANNER: &[u8] = b"XXpsk0XXpsk0XXpsk0XXpsk0XXpsk0XXpsk0";
/// What a slowloris connection sends at once, before trickling [`SLOW_BANNER`].
const BANNER_START: &[u8] = b"MESHTALK/2 ";

#[test]
fn three_hundred_slowloris_connections_do_not_stop_the_node_serving_others() {
    let mut node = Node::mesh("target", &[]);
    let mut conns = banner_starts(&node, 300);
    slowloris(&mut conns, SLOW_BANNER, 3);
    // Checked while the slowloris connections are still there.
    assert_still_serving(&mut node);
    drop(conns);
}

#[test]
fn slowloris_banners_are_closed_after_the_banner_timeout() {
    let mut node = Node::mesh("target", &[]);
    let mut conns = banner_starts(&node, 300);
    // The banner timeout is 2 s; 10 s is a generous bound.
    let closed = slowloris(&mut conns, SLOW_BANNER, 10);
    assert_eq!(closed, 300, "slowloris connections still open after 10 s");
    assert_still_serving(&mut node);
}

#[test]
fn a_flood_of_500_connects_and_closes_leaks_no_descriptor() {
    let mut node = Node::mesh("target", &[]);
    let fds = node.open_fds();
    for _ in 0..500 {
        drop(connect(&node));
    }
    let after = node.settle_fds(fds, Duration::from_secs(30));
    eprintln!("connect/close flood: {fds} descriptors before, {after} after");
    assert!(after <= fds, "{after} descriptors open, {fds} before");
    assert_still_serving(&mut node);
}

#[test]
fn connections_over_max_peers_are_closed_and_the_node_keeps_serving() {
    let mut node = Node::mesh("target", &["--max-peers", "16"]);
    let mut peers = Vec::new();
    for i in 0..16 {
        let mut stream = connect(&node);
        stream
            .write_all(format!("text peer {i}\n").as_bytes())
            .expect("write");
        node.expect("connected", WAIT, |_| true);
        peers.push(stream);
    }
    let mut told = Vec::new();
    for _ in 0..10 {
        let stream = connect(&node);
        let said = assert_closed(&stream, WAIT);
        told.push(String::from_utf8_lossy(&said).into_owned());
    }
    eprintln!("over --max-peers the node said: {:?}", told[0]);
    drop(peers);
    // Once the 16 have gone there is room again.
    for _ in 0..16 {
        node.expect("disconnected", WAIT, |_| true);
    }
    assert_still_serving(&mut node);
}

#[test]
fn a_connection_over_max_peers_is_told_why() {
    let node = Node::mesh("target", &["--max-peers", "1"]);
    let mut first = connect(&node);
    first.write_all(b"hello\n").expect("write");
    node.expect("connected", WAIT, |_| true);
    let second = connect(&node);
    let said = assert_closed(&second, WAIT);
    assert!(!said.is_empty(), "the second connection was told nothing");
}

/// A socket that sends a reset (not a FIN) when dropped.
fn resetting(node: &Node) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", node.port).parse().expect("addr");
    socket.connect(&addr.into()).expect("connect");
    socket
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER 0");
    socket.into()
}

#[test]
fn connections_that_half_close_are_closed_by_the_node_too() {
    let mut node = Node::mesh("target", &[]);
    // Silent, then half-closed.
    let silent = connect(&node);
    common::half_close(&silent);
    assert_closed(&silent, WAIT);
    // A text peer's line, then half-closed: the line is shown.
    let mut text = connect(&node);
    text.write_all(b"last words\n").expect("write");
    common::half_close(&text);
    node.expect("message", WAIT, |e| e["text"] == "last words");
    assert_closed(&text, WAIT);
    // A native peer half-closes after its hello.
    let native = Native::join(&node, "halfway", false);
    common::half_close(&native.stream);
    expect_gone(&node, native.peer);
    native.assert_closed(WAIT);
    assert_still_serving(&mut node);
}

#[test]
fn connections_reset_at_once_or_mid_frame_leave_the_node_serving() {
    let mut node = Node::mesh("target", &[]);
    let fds = node.open_fds();
    for _ in 0..50 {
        drop(resetting(&node));
    }
    for _ in 0..20 {
        let mut stream = resetting(&node);
        let _ = stream.write_all(b"MESHTALK/2 X");
        drop(stream);
    }
    // A native peer reset in the middle of a frame.
    let native = Native::join(&node, "reset", false);
    let socket = Socket::from(native.stream.try_clone().expect("clone"));
    socket
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER 0");
    let mut bytes = header(200);
    bytes.extend([0u8; 100]);
    (&native.stream).write_all(&bytes).expect("write");
    let peer = native.peer;
    drop(socket);
    drop(native);
    expect_gone(&node, peer);
    let after = node.settle_fds(fds, Duration::from_secs(30));
    eprintln!("resets: {fds} descriptors before, {after} after");
    assert!(after <= fds, "{after} descriptors open, {fds} before");
    assert_still_serving(&mut node);
}

// ---- a reader that never reads ----

#[test]
fn a_native_peer_that_never_reads_is_dropped_as_not_reading_while_the_room_chats() {
    let mut node = Node::mesh("target", &["--stall-timeout", "2"]);
    let stuck = Native::join(&node, "stuck", false);
    let mut chatter = Native::join(&node, "chatter", true);
    let text = "r".repeat(4000);
    let origin = 0x0c4a_77e7;
    // 16 MB of room messages: far more than the socket buffers and the
    // node's queue for the stuck peer hold. Sealed here, in order, then written.
    let sealed: Vec<Vec<u8>> = (1..=4000u32)
        .map(|seq| {
            chatter.seal(&frame(&Message::Broadcast {
                origin,
                seq,
                hops: 4,
                name: "chatter",
                text: &text,
            }))
        })
        .collect();
    let writer = {
        let mut stream = chatter.stream.try_clone().expect("clone");
        stream
            .set_write_timeout(Some(Duration::from_secs(30)))
            .expect("write timeout");
        thread::spawn(move || {
            for bytes in &sealed {
                stream.write_all(bytes)?;
            }
            Ok::<(), std::io::Error>(())
        })
    };
    let gone = node.expect("disconnected", Duration::from_secs(30), |e| {
        e["peer"] == stuck.peer
    });
    let reason = gone["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("not reading"), "{gone}");
    writer
        .join()
        .expect("writer")
        .expect("the room's messages all went out");
    eprintln!("stuck reader: node VmHWM {} KiB", node.status_kib("VmHWM"));
    chatter.write(&frame(&Message::Chat {
        id: 1,
        text: "after the stall",
    }));
    node.expect("message", WAIT, |e| e["text"] == "after the stall");
    assert_still_serving(&mut node);
}

// ---- terminal escapes ----

/// True when `out` holds a byte or character that a terminal acts on, other than
/// the newline that ends each line.
fn has_terminal_control(out: &str) -> Option<char> {
    out.chars().find(|&c| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
    })
}

#[test]
fn escape_sequences_from_peers_reach_human_output_only_in_visible_form() {
    let mut node = Node::mesh_human("target", &[]);
    let nasty = [
        "csi \x1b[2J\x1b[31mred\x1b[0m",
        "osc52 \x1b]52;c;ZXZpbA==\x07",
        "c1 \u{9b}31m \u{9d}0;title\u{9c}",
        "bidi \u{202e}txt.exe\u{202c} \u{2066}iso\u{2069}",
        "overwrite safe\rEVIL\x08\x08\x08\x08",
        "bell \x07 del \x7f nul \0",
    ];
    // From a text peer (one line each) and from a native peer (chat messages).
    let mut text = connect(&node);
    for line in &nasty {
        text.write_all(line.as_bytes()).expect("write");
        text.write_all(b"\n").expect("write");
    }
    let native = {
        // The human node prints no JSON: greet it by hand.
        let mut stream = connect(&node);
        let (mut session, _) = handshake(&mut stream, "nasty");
        let _drained = common::drain_until_closed(&stream);
        for (i, line) in nasty.iter().enumerate() {
            let chat = frame(&Message::Chat {
                id: i as u32,
                text: line,
            });
            stream
                .write_all(&seal_frames(&mut session, &chat))
                .expect("chat");
        }
        let end = frame(&Message::Chat {
            id: 99,
            text: "end of the nasty lines",
        });
        stream
            .write_all(&seal_frames(&mut session, &end))
            .expect("chat");
        stream
    };
    text.write_all(b"end of the text lines\n").expect("write");
    let mut out = Vec::new();
    let deadline = Instant::now() + WAIT;
    let seen = |out: &[u8], marker: &str| String::from_utf8_lossy(out).contains(marker);
    while !(seen(&out, "end of the nasty lines") && seen(&out, "end of the text lines")) {
        let left = deadline.saturating_duration_since(Instant::now());
        out.extend(node.next_raw_line(left));
    }
    let shown = String::from_utf8(out).expect("human output is UTF-8");
    assert_eq!(
        has_terminal_control(&shown),
        None,
        "raw control in: {shown:?}"
    );
    for visible in [
        "^[[2J",
        "^[]52;c;ZXZpbA==",
        "\\u{9b}31m",
        "\\u{202e}txt.exe",
        "safe^MEVIL",
    ] {
        assert!(
            shown.contains(visible),
            "{visible:?} not shown in {shown:?}"
        );
    }
    drop(native);
    assert_still_serving(&mut node);
}
