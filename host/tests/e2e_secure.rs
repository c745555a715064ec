//! End to end: what protocol 2's secure links promise, seen from the network.
//! Two `meshtalk mesh` nodes talk through a TCP forwarder in the test that
//! records (or tampers with) the bytes between them: the text never crosses in
//! the clear, a flipped bit closes the link, a recorded session cannot be played
//! again, and a protocol 1 node is told to upgrade. Every wait is bounded; the
//! nodes are killed on drop.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{BANNER, Node, WAIT, assert_closed, connect, read_frame, read_line};
use serde_json::Value;

/// What the forwarder does to the bytes from the dialler to the listener.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Meddle {
    /// Nothing: it only records them.
    Record,
    /// Once armed, flips one bit in the middle of the next whole frame after the
    /// handshake (the banner, then handshake messages 1 and 3, come first).
    FlipOneBit,
}

/// A TCP forwarder on a free loopback port to a node's port, recording what
/// passes each way (every connection, appended).
struct Proxy {
    port: u16,
    /// The bytes from the dialler towards the node.
    up: Arc<Mutex<Vec<u8>>>,
    /// The bytes from the node back to the dialler.
    down: Arc<Mutex<Vec<u8>>>,
    /// With [`Meddle::FlipOneBit`]: set to flip the next frame; cleared once flipped.
    armed: Arc<AtomicBool>,
}

impl Proxy {
    /// Forwards every connection to `node` on threads of its own, for as long
    /// as the test runs.
    fn to(node: &Node, meddle: Meddle) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let proxy = Proxy {
            port,
            up: Arc::default(),
            down: Arc::default(),
            armed: Arc::default(),
        };
        let (up, down, armed) = (proxy.up.clone(), proxy.down.clone(), proxy.armed.clone());
        let target = node.port;
        thread::spawn(move || {
            for dialler in listener.incoming() {
                let Ok(dialler) = dialler else { return };
                let Ok(node) = TcpStream::connect(("127.0.0.1", target)) else {
                    return;
                };
                let mut frames = Frames::new(meddle, armed.clone());
                pump(&dialler, &node, up.clone(), move |b| frames.pass(b));
                pump(&node, &dialler, down.clone(), |_| {});
            }
        });
        proxy
    }

    /// What the dialler sent so far.
    fn up(&self) -> Vec<u8> {
        self.up.lock().expect("lock").clone()
    }

    /// What the node sent back so far.
    fn down(&self) -> Vec<u8> {
        self.down.lock().expect("lock").clone()
    }

    /// The next frame after the handshake gets one bit flipped.
    fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` on a thread of its own, each chunk recorded in `log`
/// and shown to `meddle` (which may change it) first; passes a close on.
fn pump(
    from: &TcpStream,
    to: &TcpStream,
    log: Arc<Mutex<Vec<u8>>>,
    mut meddle: impl FnMut(&mut [u8]) + Send + 'static,
) {
    let mut from = from.try_clone().expect("clone");
    let mut to = to.try_clone().expect("clone");
    thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            log.lock().expect("lock").extend_from_slice(&buf[..n]);
            meddle(&mut buf[..n]);
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
        let _ = from.shutdown(Shutdown::Read);
    });
}

/// Follows the frames of one direction of a secure link, byte by byte, to find
/// where a frame after the handshake begins and ends.
struct Frames {
    meddle: Meddle,
    armed: Arc<AtomicBool>,
    /// Still in the banner line.
    banner: bool,
    /// Whole frames seen so far (0 and 1 are handshake messages 1 and 3).
    seen: usize,
    /// In a header: its length so far and the shift of its next byte.
    header: Option<(usize, u32)>,
    /// In a body: its length, the bytes of it seen, and whether to flip it.
    body: Option<(usize, usize, bool)>,
}

impl Frames {
    fn new(meddle: Meddle, armed: Arc<AtomicBool>) -> Frames {
        Frames {
            meddle,
            armed,
            banner: true,
            seen: 0,
            header: None,
            body: None,
        }
    }

    /// Passes `bytes` on, flipping one bit if this is the frame to flip.
    fn pass(&mut self, bytes: &mut [u8]) {
        for b in bytes {
            if self.banner {
                self.banner = *b != b'\n';
                continue;
            }
            if let Some((len, at, flip)) = &mut self.body {
                if *flip && *at == *len / 2 {
                    *b ^= 0x04;
                }
                *at += 1;
                if *at == *len {
                    self.body = None;
                    self.seen += 1;
                }
                continue;
            }
            let (len, shift) = self.header.take().unwrap_or((0, 0));
            let len = len | usize::from(*b & 0x7f) << shift;
            if *b & 0x80 != 0 {
                self.header = Some((len, shift + 7));
                continue;
            }
            let after_handshake = self.seen >= 2;
            let flip = self.meddle == Meddle::FlipOneBit
                && after_handshake
                && len > 0
                && self.armed.swap(false, Ordering::SeqCst);
            match len {
                0 => self.seen += 1,
                _ => self.body = Some((len, 0, flip)),
            }
        }
    }
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Alice dials bob through `proxy`; waits until both show the link, and
/// returns alice's number for bob and bob's for alice.
fn link_through(alice: &mut Node, bob: &Node, proxy: &Proxy) -> (u64, u64) {
    alice.type_line(&format!("connect 127.0.0.1 {} bob", proxy.port));
    let at_alice = alice.expect("connected", WAIT, |e| e["alias"] == "bob");
    let at_bob = bob.expect("connected", WAIT, |e| e["alias"] == "alice");
    assert_eq!(at_alice["encrypted"], true, "{at_alice}");
    assert_eq!(at_bob["encrypted"], true, "{at_bob}");
    (peer_of(&at_alice), peer_of(&at_bob))
}

fn peer_of(event: &Value) -> u64 {
    event["peer"].as_u64().expect("peer number")
}

#[test]
fn a_message_text_never_crosses_the_network_in_the_clear() {
    let mut bob = Node::mesh("bob", &[]);
    let mut alice = Node::mesh("alice", &[]);
    let proxy = Proxy::to(&bob, Meddle::Record);
    link_through(&mut alice, &bob, &proxy);
    alice.type_line("send bob the eagle lands at midnight");
    bob.expect("message", WAIT, |e| {
        e["text"] == "the eagle lands at midnight"
    });
    alice.expect("delivered", WAIT, |_| true);
    bob.type_line("send alice copy that, eagle");
    alice.expect("message", WAIT, |e| e["text"] == "copy that, eagle");
    let (up, down) = (proxy.up(), proxy.down());
    assert!(up.starts_with(BANNER) && down.starts_with(BANNER));
    // The banner, the handshake and at least one sealed message each way.
    assert!(up.len() > 150 && down.len() > 150, "{up:?} {down:?}");
    for secret in [&b"eagle"[..], b"midnight", b"copy that"] {
        assert!(!contains(&up, secret), "{secret:?} in alice's bytes");
        assert!(!contains(&down, secret), "{secret:?} in bob's bytes");
    }
    // The names travel inside the handshake, encrypted, too.
    assert!(!contains(&up, b"alice") && !contains(&down, b"bob"));
}

#[test]
fn a_bit_flipped_in_transit_closes_that_link_and_the_others_chat_on() {
    let mut bob = Node::mesh("bob", &[]);
    let mut carol = Node::mesh("carol", &[]);
    common::proc::link(&mut carol, &bob, None, WAIT);
    let mut alice = Node::mesh("alice", &[]);
    let proxy = Proxy::to(&bob, Meddle::FlipOneBit);
    let (_, alice_at_bob) = link_through(&mut alice, &bob, &proxy);
    proxy.arm();
    alice.type_line("send bob this one was tampered with");
    // Nothing from alice is shown before her link closes.
    let gone = loop {
        let line = bob.next_raw_line(WAIT);
        let event = common::proc::parse("bob", &line);
        assert!(
            !(event["event"] == "message" && event["peer"] == alice_at_bob),
            "shown: {event}"
        );
        if event["event"] == "disconnected" && event["peer"] == alice_at_bob {
            break event;
        }
    };
    let reason = gone["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("integrity check"), "{gone}");
    assert!(!proxy.armed.load(Ordering::SeqCst), "no frame was flipped");
    alice.expect("disconnected", WAIT, |e| e["alias"] == "bob");
    carol.type_line("send bob still with you?");
    bob.expect("message", WAIT, |e| e["text"] == "still with you?");
    bob.type_line("send carol yes");
    carol.expect("message", WAIT, |e| e["text"] == "yes");
}

#[test]
fn a_recorded_session_played_again_is_refused_at_the_handshake() {
    let bob = Node::mesh("bob", &[]);
    let mut alice = Node::mesh("alice", &[]);
    let proxy = Proxy::to(&bob, Meddle::Record);
    link_through(&mut alice, &bob, &proxy);
    alice.type_line("send bob open sesame");
    bob.expect("message", WAIT, |e| e["text"] == "open sesame");
    alice.expect("delivered", WAIT, |_| true);
    alice.type_line("disconnect bob");
    bob.expect("disconnected", WAIT, |e| e["alias"] == "alice");
    let recorded = proxy.up();
    let first_reply = proxy.down();

    // Alice's bytes again, on a new connection: banner and message 1 first.
    let mut replay = connect(&bob);
    let message_1_end = {
        let banner = BANNER.len();
        let len = usize::from(recorded[banner]);
        assert!(len < 0x80, "message 1 has a one-byte header");
        banner + 1 + len
    };
    replay
        .write_all(&recorded[..message_1_end])
        .expect("replay the banner and message 1");
    assert_eq!(read_line(&mut replay), BANNER);
    let message_2 = read_frame(&mut replay);
    // Bob answers with a fresh ephemeral key: the recorded message 3 cannot fit it.
    assert!(
        !contains(&first_reply, &message_2[..32]),
        "bob reused his ephemeral key"
    );
    let _ = replay.write_all(&recorded[message_1_end..]);
    assert_closed(&replay, WAIT);
    let gone = bob.expect("disconnected", WAIT, |_| true);
    let reason = gone["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("handshake failed at message 3"), "{gone}");
    // The replay never became a link, so nothing it carried was shown.
    assert!(
        bob.wait_for("connected", Duration::from_millis(500), |_| true)
            .is_none()
    );
}

#[test]
fn a_protocol_1_banner_is_answered_with_protocol_2s_and_closed() {
    let bob = Node::mesh("bob", &[]);
    let mut old = connect(&bob);
    old.write_all(b"MESHTALK/1 alice\n").expect("write banner");
    let answer = assert_closed(&old, WAIT);
    assert_eq!(answer, BANNER, "{:?}", String::from_utf8_lossy(&answer));
    let gone = bob.expect("disconnected", WAIT, |_| true);
    let reason = gone["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("MESHTALK/1") && reason.contains("upgrade"),
        "{gone}"
    );
}
