//! The LAN discovery entry point: beacons from anyone, as datagrams.

use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use heapless::String;

use crate::discovery::beacon::NONCE_LEN;
use crate::discovery::{Beacon, Config, Discovery, Input, MAX_BEACON, Output};
use crate::time::Instant;

/// The room key the fuzzed beacons may be read under.
const ROOM: [u8; 32] = [0x42; 32];

/// Decodes `data` as a beacon (the first byte picks no room key, or a room
/// key) and checks that a beacon read is the one its fields encode to, byte
/// for byte; then feeds the data to a small [`Discovery`] as datagrams from a
/// few sources and checks that its table stays within its bounds and every
/// drain ends (an empty datagram makes the node leave: farewells, then quiet).
pub fn discovery_beacon(data: &[u8]) {
    let Some((&mode, datagram)) = data.split_first() else {
        return;
    };
    let room = (mode & 1 == 1).then_some(&ROOM);
    if let Ok(heard) = Beacon::decode(datagram, room) {
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&datagram[6..6 + NONCE_LEN]);
        // An invariant, not input: a beacon that decoded has fields its encoder
        // takes, and encodes into MAX_BEACON bytes, as every beacon does.
        let mut again = [0u8; MAX_BEACON];
        let len = heard
            .beacon
            .encode(&nonce, room, &mut again)
            .expect("a beacon read is one that can be written");
        assert_eq!(&again[..len], datagram, "a beacon has one form on the wire");
    }

    let mut name = String::new();
    let _ = name.push_str("fuzz");
    let config = Config {
        key: [0; 32],
        port: 1,
        name,
        room_key: room.copied(),
    };
    // Cannot fail: port 1 and the name "fuzz" are valid, whatever the data.
    let Ok(mut discovery) = Discovery::<2, 4>::new(config, [mode; 32]) else {
        panic!("a valid config was refused");
    };
    let mut now = Instant::ZERO;
    let _ = discovery.handle_input(now, Input::InterfaceUp(0));
    // Datagrams: a length byte, then that many bytes (the source from the first).
    let mut rest = datagram;
    while let Some((&len, tail)) = rest.split_first() {
        let take = usize::from(len).min(tail.len());
        let (one, after) = tail.split_at(take);
        rest = after;
        let octet = one.first().copied().unwrap_or(0);
        let from = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, octet & 7)), 5354);
        now = Instant::from_millis(now.as_millis() + u64::from(len) * 97);
        let iface = len & 1;
        if one.is_empty() {
            let _ = discovery.handle_input(now, Input::Leave);
        }
        let _ = discovery.handle_input(now, Input::InterfaceUp(iface));
        let _ = discovery.handle_input(
            now,
            Input::Received {
                iface,
                from,
                datagram: one,
            },
        );
        let mut polls = 0;
        loop {
            polls += 1;
            assert!(polls < 64, "a drain that does not end");
            match discovery.poll_output(now) {
                Output::Timeout(t) => {
                    assert!(t.is_none_or(|t| t > now), "a wake that is already due");
                    break;
                }
                Output::Transmit { datagram, .. } => {
                    assert!(datagram.len() <= MAX_BEACON);
                }
                Output::Event(_) => {}
            }
        }
        assert!(discovery.nearby().len() <= 4);
    }
}
