//! LAN discovery (`meshtalk_core::discovery`): the beacon on the wire, its
//! schedule, and the table of nodes nearby, driven in virtual time.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use meshtalk_core::discovery::beacon::{MAGIC, OPEN_LEN, PRIVATE_LEN, VERSION};
use meshtalk_core::discovery::{
    BURST_GAP, Beacon, Config, DecodeError, Discovery, DiscoveryError, DropReason, EXPIRE_AFTER,
    EncodeError, Event, Handled, INTERVAL_MAX, INTERVAL_MIN, Input, KEYS_PER_SOURCE, MAX_BEACON,
    NONCE_LEN, Nearby, Output, SOURCE_BURST, SOURCE_REFILL, START_DELAY,
};
use meshtalk_core::noise::Fingerprint;
use meshtalk_core::time::{Duration, Instant};

const ROOM: [u8; 32] = [0x42; 32];
const OTHER_ROOM: [u8; 32] = [0x43; 32];
const NONCE: [u8; NONCE_LEN] = [7; NONCE_LEN];
/// Our own key: no `key(n)` is it.
const OURS: [u8; 32] = [0xee; 32];

fn key(n: u32) -> [u8; 32] {
    let mut k = [0xa5; 32];
    k[..4].copy_from_slice(&n.to_be_bytes());
    k
}

/// A beacon's or config's name (a heapless string, which parses from a `&str`).
fn name<T: core::str::FromStr>(s: &str) -> T {
    s.parse().ok().unwrap()
}

fn beacon(n: u32) -> Beacon {
    Beacon {
        port: 44837,
        key: key(n),
        name: name("carol"),
        leaving: false,
    }
}

fn encode(b: &Beacon, room: Option<&[u8; 32]>) -> Vec<u8> {
    let mut buf = [0u8; MAX_BEACON];
    let len = b.encode(&NONCE, room, &mut buf).unwrap();
    buf[..len].to_vec()
}

fn v4(last: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 168, 1, last)), 5354)
}

/// Source n of many: a distinct IPv4 address.
fn source(n: u32) -> SocketAddr {
    let [_, a, b, c] = n.to_be_bytes();
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, a, b, c)), 5354)
}

fn config(room: Option<[u8; 32]>) -> Config {
    Config {
        key: OURS,
        port: 4000,
        name: name("alice"),
        room_key: room,
    }
}

type Disc = Discovery<2, 8>;

fn discovery(room: Option<[u8; 32]>) -> Disc {
    Discovery::new(config(room), [9; 32]).unwrap()
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// What one drain at `now` produced.
#[derive(Default, Debug)]
struct Drained {
    sent: Vec<(u8, Vec<u8>)>,
    events: Vec<Event>,
    wake: Option<Instant>,
}

fn drain<const I: usize, const N: usize>(d: &mut Discovery<I, N>, now: Instant) -> Drained {
    let mut out = Drained::default();
    for _ in 0..10_000 {
        match d.poll_output(now) {
            Output::Transmit { iface, datagram } => out.sent.push((iface, datagram.to_vec())),
            Output::Event(e) => out.events.push(e),
            Output::Timeout(t) => {
                out.wake = t;
                return out;
            }
        }
    }
    panic!("discovery never asked for a timeout (livelock)");
}

/// Runs the clock from `now` to `until`, waking when asked; the times a beacon
/// went out on `iface`.
fn beacon_times<const I: usize, const N: usize>(
    d: &mut Discovery<I, N>,
    mut now: Instant,
    until: Instant,
    iface: u8,
) -> Vec<u64> {
    let mut times = Vec::new();
    for _ in 0..10_000 {
        let drained = drain(d, now);
        times.extend(
            drained
                .sent
                .iter()
                .filter(|(i, _)| *i == iface)
                .map(|_| now.as_millis()),
        );
        match drained.wake {
            Some(t) if t <= until => {
                now = t.max(now);
                d.handle_input(now, Input::Timeout).unwrap();
            }
            _ => return times,
        }
    }
    panic!("the clock did not reach {until:?} in 10,000 wakes");
}

fn hear<const I: usize, const N: usize>(
    d: &mut Discovery<I, N>,
    now: Instant,
    from: SocketAddr,
    datagram: &[u8],
) -> Handled {
    d.handle_input(
        now,
        Input::Received {
            iface: 0,
            from,
            datagram,
        },
    )
    .unwrap()
}

fn ms(d: Duration) -> u64 {
    d.as_millis()
}

// ---- The beacon on the wire ----

#[test]
fn an_open_beacon_round_trips_port_key_and_name() {
    let b = beacon(1);
    let wire = encode(&b, None);
    assert_eq!(wire.len(), OPEN_LEN);
    assert!(wire.len() <= MAX_BEACON);
    let heard = Beacon::decode(&wire, None).unwrap();
    assert_eq!(heard.beacon, b);
    assert!(
        heard.in_room,
        "without a room key, every open beacon is our room"
    );
}

#[test]
fn an_open_beacon_without_a_name_round_trips() {
    let b = Beacon {
        name: Default::default(),
        ..beacon(1)
    };
    assert_eq!(Beacon::decode(&encode(&b, None), None).unwrap().beacon, b);
}

#[test]
fn a_private_beacon_round_trips_for_a_member() {
    let b = beacon(1);
    let wire = encode(&b, Some(&ROOM));
    assert_eq!(wire.len(), PRIVATE_LEN);
    assert!(wire.len() <= MAX_BEACON);
    let heard = Beacon::decode(&wire, Some(&ROOM)).unwrap();
    assert_eq!(heard.beacon, b);
    assert!(heard.in_room);
}

#[test]
fn a_private_beacon_does_not_open_under_another_room_key_or_none() {
    let wire = encode(&beacon(1), Some(&ROOM));
    assert_eq!(
        Beacon::decode(&wire, Some(&OTHER_ROOM)),
        Err(DecodeError::Sealed)
    );
    assert_eq!(Beacon::decode(&wire, None), Err(DecodeError::Sealed));
}

#[test]
fn a_private_beacon_contains_neither_key_nor_fingerprint_nor_name_nor_port() {
    let b = beacon(1);
    let wire = encode(&b, Some(&ROOM));
    let fingerprint = Fingerprint::of(&b.key);
    let contains = |needle: &[u8]| wire.windows(needle.len()).any(|w| w == needle);
    // Any 4 bytes of the key or fingerprint would already be a leak.
    for part in b.key.windows(4) {
        assert!(!contains(part), "key bytes in the clear");
    }
    for part in fingerprint.as_bytes().windows(4) {
        assert!(!contains(part), "fingerprint bytes in the clear");
    }
    assert!(!contains(b"carol"), "name in the clear");
    assert!(!contains(&b.port.to_be_bytes()), "port in the clear");
    // The open one does carry the key: that is what makes it readable.
    assert!(encode(&b, None).windows(32).any(|w| w == b.key));
}

#[test]
fn private_beacons_have_one_length_whatever_the_name() {
    let long = Beacon {
        name: name("a-name-of-thirty-two-characters-"),
        ..beacon(1)
    };
    let none = Beacon {
        name: Default::default(),
        ..beacon(1)
    };
    assert_eq!(
        encode(&long, Some(&ROOM)).len(),
        encode(&none, Some(&ROOM)).len()
    );
}

#[test]
fn two_private_beacons_of_one_node_share_no_bytes_but_the_header() {
    let b = beacon(1);
    let mut one = [0u8; MAX_BEACON];
    let mut two = [0u8; MAX_BEACON];
    let len = b.encode(&[1; NONCE_LEN], Some(&ROOM), &mut one).unwrap();
    b.encode(&[2; NONCE_LEN], Some(&ROOM), &mut two).unwrap();
    // Magic, version and kind are the same; the rest is fresh for each nonce.
    assert_eq!(one[..6], two[..6]);
    let same = (6..len).filter(|&i| one[i] == two[i]).count();
    assert!(same < 8, "{same} equal bytes: beacons are linkable");
}

#[test]
fn a_private_beacon_is_sealed_as_the_format_says() {
    // Computed independently with Python (hashlib, hmac, cryptography):
    //   nonce = bytes(range(100, 116)); hdr = b"mtbc" + bytes([1, 1]) + nonce
    //   body = (44837).to_bytes(2, "big") + bytes(range(32)) + bytes([5]) + b"carol" + bytes(27)
    //   k = hmac.new(bytes([0x42] * 32), b"meshtalk beacon seal\0" + nonce, hashlib.blake2s).digest()
    //   hdr + ChaCha20Poly1305(k).encrypt(bytes(12), body, hdr)
    let expected = "6d74626301016465666768696a6b6c6d6e6f707172736bdcba784488f640aa7b3c39c3f8\
                    20b69887c342008f45b2940a6a903aa38adf2b960d4a1e6a3d3a450632919cf8b76b0229\
                    345f2ab13ba77000310ae2fbb7ad454f6e22afa795c68f1579eebd8b0b58be3e82";
    let b = Beacon {
        key: core::array::from_fn(|i| i as u8),
        ..beacon(0)
    };
    let nonce: [u8; NONCE_LEN] = core::array::from_fn(|i| 100 + i as u8);
    let mut buf = [0u8; MAX_BEACON];
    let len = b.encode(&nonce, Some(&ROOM), &mut buf).unwrap();
    let hex: std::string::String = buf[..len].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, expected.replace(' ', ""));
}

#[test]
fn an_open_beacon_heard_in_a_private_room_is_not_our_room() {
    let heard = Beacon::decode(&encode(&beacon(1), None), Some(&ROOM)).unwrap();
    assert!(!heard.in_room);
}

#[test]
fn an_oversized_datagram_is_refused_unread() {
    let mut wire = encode(&beacon(1), None);
    wire.resize(MAX_BEACON + 1, 0);
    assert_eq!(
        Beacon::decode(&wire, None),
        Err(DecodeError::Oversized {
            len: MAX_BEACON + 1
        })
    );
}

#[test]
fn a_datagram_of_exactly_the_maximum_is_read_not_refused_unread() {
    let mut wire = encode(&beacon(1), None);
    wire.resize(MAX_BEACON, 0);
    assert_eq!(
        Beacon::decode(&wire, None),
        Err(DecodeError::Length {
            len: MAX_BEACON,
            expected: OPEN_LEN
        })
    );
}

#[test]
fn a_datagram_shorter_than_the_header_is_short() {
    let wire = encode(&beacon(1), None);
    for len in 0..22 {
        assert_eq!(
            Beacon::decode(&wire[..len], None),
            Err(DecodeError::Short { len }),
            "length {len}"
        );
    }
}

#[test]
fn a_datagram_without_the_magic_is_not_a_beacon() {
    let mut wire = encode(&beacon(1), None);
    wire[0] ^= 1;
    assert_eq!(Beacon::decode(&wire, None), Err(DecodeError::Magic));
    assert_eq!(
        Beacon::decode(b"hello, world", None),
        Err(DecodeError::Magic)
    );
}

#[test]
fn another_version_is_refused() {
    let mut wire = encode(&beacon(1), None);
    wire[4] = VERSION + 1;
    assert_eq!(
        Beacon::decode(&wire, None),
        Err(DecodeError::Version {
            version: VERSION + 1
        })
    );
}

#[test]
fn an_unknown_kind_is_refused() {
    let mut wire = encode(&beacon(1), None);
    wire[5] = 2;
    assert_eq!(
        Beacon::decode(&wire, None),
        Err(DecodeError::Kind { kind: 2 })
    );
}

#[test]
fn a_length_other_than_its_kinds_is_refused() {
    let open = encode(&beacon(1), None);
    assert_eq!(
        Beacon::decode(&open[..OPEN_LEN - 1], None),
        Err(DecodeError::Length {
            len: OPEN_LEN - 1,
            expected: OPEN_LEN
        })
    );
    let mut longer = open.clone();
    longer.push(0);
    assert_eq!(
        Beacon::decode(&longer, None),
        Err(DecodeError::Length {
            len: OPEN_LEN + 1,
            expected: OPEN_LEN
        })
    );
    let private = encode(&beacon(1), Some(&ROOM));
    assert_eq!(
        Beacon::decode(&private[..PRIVATE_LEN - 1], Some(&ROOM)),
        Err(DecodeError::Length {
            len: PRIVATE_LEN - 1,
            expected: PRIVATE_LEN
        })
    );
}

#[test]
fn any_flipped_bit_of_a_private_beacon_breaks_its_seal() {
    let wire = encode(&beacon(1), Some(&ROOM));
    // Past the kind byte: the nonce, the sealed body and its tag.
    for bit in 6 * 8..wire.len() * 8 {
        let mut bad = wire.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert_eq!(
            Beacon::decode(&bad, Some(&ROOM)),
            Err(DecodeError::Sealed),
            "bit {bit}"
        );
    }
}

#[test]
fn a_beacon_with_port_zero_is_refused() {
    let mut wire = encode(&beacon(1), None);
    wire[22] = 0;
    wire[23] = 0;
    assert_eq!(Beacon::decode(&wire, None), Err(DecodeError::Port));
}

#[test]
fn a_beacon_whose_name_is_no_alias_is_refused() {
    let wire = encode(&beacon(1), None);
    let name_len = 22 + 2 + 32;
    // Longer than the field.
    let mut bad = wire.clone();
    bad[name_len] = 33;
    assert_eq!(Beacon::decode(&bad, None), Err(DecodeError::Name));
    // A character no alias has.
    let mut bad = wire.clone();
    bad[name_len + 1] = b' ';
    assert_eq!(Beacon::decode(&bad, None), Err(DecodeError::Name));
    // Bytes after the name (the padding must be zero, so one beacon has one form).
    let mut bad = wire.clone();
    bad[OPEN_LEN - 1] = b'x';
    assert_eq!(Beacon::decode(&bad, None), Err(DecodeError::Name));
    // Not UTF-8.
    let mut bad = wire;
    bad[name_len + 1] = 0xff;
    assert_eq!(Beacon::decode(&bad, None), Err(DecodeError::Name));
}

#[test]
fn every_length_and_every_flipped_bit_decodes_without_a_panic() {
    for room in [None, Some(&ROOM)] {
        let wire = encode(&beacon(1), room);
        let mut long = wire.clone();
        long.resize(MAX_BEACON + 2, 0xee);
        for len in 0..=long.len() {
            let _ = Beacon::decode(&long[..len], room);
        }
        for bit in 0..wire.len() * 8 {
            let mut bad = wire.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let _ = Beacon::decode(&bad, room);
        }
    }
}

#[test]
fn encoding_into_a_small_buffer_says_how_much_and_writes_nothing() {
    let mut buf = [0xccu8; OPEN_LEN - 1];
    assert_eq!(
        beacon(1).encode(&NONCE, None, &mut buf),
        Err(EncodeError::BufferTooSmall { needed: OPEN_LEN })
    );
    assert!(buf.iter().all(|&b| b == 0xcc));
    let mut buf = [0xccu8; PRIVATE_LEN - 1];
    assert_eq!(
        beacon(1).encode(&NONCE, Some(&ROOM), &mut buf),
        Err(EncodeError::BufferTooSmall {
            needed: PRIVATE_LEN
        })
    );
}

#[test]
fn a_beacon_for_port_zero_or_a_bad_name_is_not_written() {
    let mut buf = [0u8; MAX_BEACON];
    let zero = Beacon {
        port: 0,
        ..beacon(1)
    };
    assert_eq!(zero.encode(&NONCE, None, &mut buf), Err(EncodeError::Port));
    let spaced = Beacon {
        name: name("a b"),
        ..beacon(1)
    };
    assert!(matches!(
        spaced.encode(&NONCE, None, &mut buf),
        Err(EncodeError::Name(_))
    ));
}

#[test]
fn the_wire_starts_with_magic_version_kind_nonce() {
    let open = encode(&beacon(1), None);
    assert_eq!(open[..4], MAGIC);
    assert_eq!(open[4], VERSION);
    assert_eq!(open[5], 0);
    assert_eq!(open[6..22], NONCE);
    assert_eq!(open[22..24], 44837u16.to_be_bytes());
    assert_eq!(open[24..56], key(1));
    assert_eq!(open[56], 5);
    assert_eq!(&open[57..62], b"carol");
    assert_eq!(encode(&beacon(1), Some(&ROOM))[5], 1);
}

#[test]
fn decode_errors_say_what_to_do() {
    let text = DecodeError::Version { version: 9 }.to_string();
    assert!(text.contains('9') && text.contains("upgrade"), "{text}");
    assert!(DecodeError::Sealed.to_string().contains("room key"));
    assert!(
        EncodeError::BufferTooSmall { needed: 89 }
            .to_string()
            .contains("89")
    );
}

// ---- The schedule ----

#[test]
fn an_interface_bursts_then_backs_off_to_the_longest_interval() {
    let mut d = discovery(None);
    d.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
    let times = beacon_times(&mut d, at(0), at(400_000), 0);
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(times[0] < ms(START_DELAY), "first beacon at {}", times[0]);
    let quarter = |base: Duration| ms(base) * 3 / 4..=ms(base) * 5 / 4;
    // The burst: two more beacons about a second apart.
    assert!(quarter(BURST_GAP).contains(&gaps[0]), "{gaps:?}");
    assert!(quarter(BURST_GAP).contains(&gaps[1]), "{gaps:?}");
    // Then 5 s, 10 s, 20 s, 40 s, each give or take a quarter, then 60 s on.
    for (gap, base) in gaps[2..].iter().zip([5, 10, 20, 40, 60, 60, 60]) {
        assert!(
            quarter(Duration::from_secs(base)).contains(gap),
            "gap {gap} for {base} s: {gaps:?}"
        );
    }
    assert!(gaps.len() >= 9, "{gaps:?}");
    assert!(gaps.iter().all(|&g| g <= ms(INTERVAL_MAX) * 5 / 4));
}

#[test]
fn the_jitter_differs_between_seeds() {
    let mut one = Disc::new(config(None), [1; 32]).unwrap();
    let mut two = Disc::new(config(None), [2; 32]).unwrap();
    one.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
    two.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
    assert_ne!(
        beacon_times(&mut one, at(0), at(100_000), 0),
        beacon_times(&mut two, at(0), at(100_000), 0)
    );
}

#[test]
fn the_start_delay_and_the_gaps_spread_over_their_whole_range() {
    let (mut starts, mut gaps) = (Vec::new(), Vec::new());
    for seed in 0..32u8 {
        let mut d = Disc::new(config(None), [seed; 32]).unwrap();
        d.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
        let times = beacon_times(&mut d, at(0), at(20_000), 0);
        starts.push(times[0]);
        // The first gap after the burst: 5 s give or take a quarter.
        gaps.push(times[3] - times[2]);
    }
    let spread = |v: &[u64]| (*v.iter().min().unwrap(), *v.iter().max().unwrap());
    let (first, last) = spread(&starts);
    assert!(first < 60 && last > 190, "start delays {starts:?}");
    let (short, long) = spread(&gaps);
    assert!(short < 4_250 && long > 5_750, "gaps {gaps:?}");
}

#[test]
fn the_same_seed_replays_the_same_schedule_and_bytes() {
    let run = || {
        let mut d = discovery(Some(ROOM));
        d.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
        let mut now = at(0);
        let mut all = Vec::new();
        for _ in 0..6 {
            let drained = drain(&mut d, now);
            all.push((now, drained.sent));
            now = drained.wake.unwrap();
        }
        all
    };
    assert_eq!(run(), run());
}

#[test]
fn a_new_interface_bursts_while_the_old_one_stays_slow() {
    let mut d = discovery(None);
    d.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
    let _ = beacon_times(&mut d, at(0), at(200_000), 0);
    let now = at(200_000);
    d.handle_input(now, Input::InterfaceUp(1)).unwrap();
    let mut probe = d_clone_times(&mut d, now, 1);
    let new_iface = probe.remove(0);
    assert_eq!(new_iface.len(), 3, "a burst of 3 in 3 s: {new_iface:?}");
    assert!(new_iface[0] - now.as_millis() < ms(START_DELAY));
    let old_iface = probe.remove(0);
    assert!(
        old_iface.len() <= 1,
        "the old interface stays slow: {old_iface:?}"
    );
}

/// The beacon times on interface 1 and on interface 0 over the 3 s after `now`.
fn d_clone_times(d: &mut Disc, mut now: Instant, _iface: u8) -> Vec<Vec<u64>> {
    let until = now + Duration::from_millis(3_000);
    let (mut zero, mut one) = (Vec::new(), Vec::new());
    for _ in 0..10_000 {
        let drained = drain(d, now);
        for (i, _) in &drained.sent {
            if *i == 0 { &mut zero } else { &mut one }.push(now.as_millis());
        }
        match drained.wake {
            Some(t) if t <= until => {
                now = t.max(now);
                d.handle_input(now, Input::Timeout).unwrap();
            }
            _ => return vec![one, zero],
        }
    }
    panic!("the clock did not reach {until:?} in 10,000 wakes");
}

#[test]
fn an_interface_up_again_bursts_again() {
    let mut d = discovery(None);
    d.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
    let _ = beacon_times(&mut d, at(0), at(200_000), 0);
    d.handle_input(at(200_000), Input::InterfaceUp(0)).unwrap();
    let times = beacon_times(&mut d, at(200_000), at(203_000), 0);
    assert_eq!(times.len(), 3, "{times:?}");
}

#[test]
fn an_interface_that_went_sends_no_more_beacons() {
    let mut d = discovery(None);
    d.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
    assert!(d.is_up(0) && !d.is_up(1));
    d.handle_input(at(0), Input::InterfaceDown(0)).unwrap();
    assert!(beacon_times(&mut d, at(0), at(100_000), 0).is_empty());
    assert_eq!(drain(&mut d, at(0)).wake, None);
    assert!(!d.is_up(0));
}

#[test]
fn a_new_node_pulls_the_next_beacon_in_and_the_interval_back() {
    let mut d = discovery(None);
    d.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
    let _ = beacon_times(&mut d, at(0), at(300_000), 0);
    let now = at(300_000);
    let wire = encode(&beacon(1), None);
    assert_eq!(hear(&mut d, now, v4(2), &wire), Handled::Taken);
    let times = beacon_times(&mut d, now, at(330_000), 0);
    assert!(
        times[0] - now.as_millis() <= ms(BURST_GAP) * 5 / 4,
        "next beacon {} ms after the newcomer",
        times[0] - now.as_millis()
    );
    let gap = times[1] - times[0];
    assert!(
        (ms(INTERVAL_MIN) * 3 / 4..=ms(INTERVAL_MIN) * 5 / 4).contains(&gap),
        "then {gap} ms: {times:?}"
    );
}

#[test]
fn a_node_heard_again_does_not_quicken_the_schedule() {
    let run = |again: bool| {
        let mut d = discovery(None);
        d.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
        let wire = encode(&beacon(1), None);
        hear(&mut d, at(0), v4(2), &wire);
        let _ = beacon_times(&mut d, at(0), at(100_000), 0);
        if again {
            hear(&mut d, at(100_000), v4(2), &wire);
        }
        beacon_times(&mut d, at(100_000), at(300_000), 0)
    };
    assert_eq!(run(true), run(false));
}

// ---- The nearby table ----

#[test]
fn a_heard_beacon_is_found_with_its_address_and_port() {
    let mut d = discovery(None);
    d.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
    hear(&mut d, at(5), v4(2), &encode(&beacon(1), None));
    let drained = drain(&mut d, at(5));
    assert_eq!(drained.events, vec![Event::Found { key: key(1) }]);
    assert!(!d.nearby().is_empty());
    let entry = d.nearby().get(&key(1)).unwrap();
    assert_eq!(entry.port(), 44837);
    assert_eq!(entry.name(), "carol");
    assert!(entry.in_room());
    assert_eq!(entry.last_seen(), at(5));
    assert_eq!(entry.first_seen(), at(5));
    assert_eq!(
        entry.dial_addrs().collect::<Vec<_>>(),
        vec![SocketAddr::new(v4(2).ip(), 44837)]
    );
}

#[test]
fn an_ipv6_link_local_address_keeps_its_scope_for_the_dial() {
    let mut d = discovery(None);
    d.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
    let from = SocketAddr::V6(SocketAddrV6::new(
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2),
        5354,
        0,
        3,
    ));
    hear(&mut d, at(0), from, &encode(&beacon(1), None));
    let dial: Vec<_> = d.nearby().get(&key(1)).unwrap().dial_addrs().collect();
    assert!(matches!(dial[0], SocketAddr::V6(a) if a.scope_id() == 3 && a.port() == 44837));
}

#[test]
fn a_nodes_addresses_are_dialled_ipv4_first_each_once() {
    let mut d = discovery(None);
    d.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
    let v6 = SocketAddr::V6(SocketAddrV6::new(
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2),
        5354,
        0,
        3,
    ));
    let mut other_port = v4(2);
    other_port.set_port(6000);
    for (n, from) in [v6, v4(2), other_port, v4(3)].into_iter().enumerate() {
        hear(
            &mut d,
            at(n as u64 * 1_000),
            from,
            &encode(&beacon(1), None),
        );
    }
    let entry = d.nearby().get(&key(1)).unwrap();
    assert_eq!(
        entry.addrs().len(),
        4,
        "two source ports are two addresses heard"
    );
    let dial = |from: SocketAddr| {
        let mut to = from;
        to.set_port(44837);
        to
    };
    assert_eq!(
        entry.dial_addrs().collect::<Vec<_>>(),
        vec![dial(v4(2)), dial(v4(3)), dial(v6)]
    );
}

#[test]
fn a_changed_port_or_a_new_address_is_a_change() {
    let mut d = discovery(None);
    d.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
    hear(&mut d, at(0), v4(2), &encode(&beacon(1), None));
    let _ = drain(&mut d, at(0));
    hear(&mut d, at(1_000), v4(2), &encode(&beacon(1), None));
    assert!(
        drain(&mut d, at(1_000)).events.is_empty(),
        "the same beacon changes nothing"
    );
    let moved = Beacon {
        port: 5000,
        ..beacon(1)
    };
    hear(&mut d, at(2_000), v4(2), &encode(&moved, None));
    assert_eq!(
        drain(&mut d, at(2_000)).events,
        vec![Event::Changed { key: key(1) }]
    );
    hear(&mut d, at(3_000), v4(3), &encode(&moved, None));
    assert_eq!(
        drain(&mut d, at(3_000)).events,
        vec![Event::Changed { key: key(1) }]
    );
    assert_eq!(d.nearby().get(&key(1)).unwrap().addrs().len(), 2);
}

#[test]
fn a_node_keeps_its_latest_addresses() {
    let mut d = discovery(None);
    hear_up(&mut d);
    for n in 0..6u8 {
        hear(
            &mut d,
            at(u64::from(n) * 1_000),
            v4(10 + n),
            &encode(&beacon(1), None),
        );
    }
    let entry = d.nearby().get(&key(1)).unwrap();
    let mut kept: Vec<_> = entry.addrs().iter().map(|a| a.from).collect();
    kept.sort();
    assert_eq!(kept, vec![v4(12), v4(13), v4(14), v4(15)]);
}

#[test]
fn a_new_name_or_a_seal_is_a_change() {
    let mut d = discovery(Some(ROOM));
    hear_up(&mut d);
    hear(&mut d, at(0), v4(2), &encode(&beacon(1), None));
    let _ = drain(&mut d, at(0));
    let renamed = Beacon {
        name: name("dave"),
        ..beacon(1)
    };
    hear(&mut d, at(1_000), v4(2), &encode(&renamed, None));
    assert_eq!(
        drain(&mut d, at(1_000)).events,
        vec![Event::Changed { key: key(1) }]
    );
    assert_eq!(d.nearby().get(&key(1)).unwrap().name(), "dave");
    // The same node, now heard sealed under our room key: a member.
    hear(&mut d, at(2_000), v4(2), &encode(&renamed, Some(&ROOM)));
    assert_eq!(
        drain(&mut d, at(2_000)).events,
        vec![Event::Changed { key: key(1) }]
    );
    assert!(d.nearby().get(&key(1)).unwrap().in_room());
}

#[test]
fn our_own_beacon_looped_back_is_ignored() {
    let mut d = discovery(Some(ROOM));
    d.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
    let drained = drain(&mut d, at(300));
    let (_, ours) = &drained.sent[0];
    assert_eq!(
        hear(&mut d, at(300), v4(1), ours),
        Handled::Dropped(DropReason::Own)
    );
    assert!(d.nearby().is_empty());
}

#[test]
fn a_member_is_in_our_room_and_an_open_node_is_not() {
    let mut d = discovery(Some(ROOM));
    d.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
    hear(&mut d, at(0), v4(2), &encode(&beacon(1), Some(&ROOM)));
    hear(&mut d, at(0), v4(3), &encode(&beacon(2), None));
    assert_eq!(
        hear(&mut d, at(0), v4(4), &encode(&beacon(3), Some(&OTHER_ROOM))),
        Handled::Dropped(DropReason::Malformed(DecodeError::Sealed))
    );
    assert!(d.nearby().get(&key(1)).unwrap().in_room());
    assert!(!d.nearby().get(&key(2)).unwrap().in_room());
    assert!(d.nearby().get(&key(3)).is_none());
    assert_eq!(d.stats().sealed, 1);
    assert_eq!(d.stats().malformed, 1);
}

#[test]
fn an_open_beacon_under_a_members_key_changes_nothing() {
    let mut d = discovery(Some(ROOM));
    d.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
    hear(&mut d, at(0), v4(2), &encode(&beacon(1), Some(&ROOM)));
    let before = d.nearby().get(&key(1)).unwrap().clone();
    let spoof = Beacon {
        port: 6666,
        ..beacon(1)
    };
    assert_eq!(
        hear(&mut d, at(10), v4(66), &encode(&spoof, None)),
        Handled::Dropped(DropReason::Spoofed)
    );
    assert_eq!(d.nearby().get(&key(1)), Some(&before));
    assert_eq!(d.stats().spoofed, 1);
}

#[test]
fn a_flood_from_one_source_is_rate_limited() {
    let mut d = discovery(None);
    d.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
    let taken = (0..100)
        .filter(|&n| hear(&mut d, at(0), v4(66), &encode(&beacon(n), None)) == Handled::Taken)
        .count();
    assert_eq!(taken, usize::from(SOURCE_BURST));
    assert_eq!(d.stats().rate_limited, 100 - u64::from(SOURCE_BURST));
    // It earns one beacon per SOURCE_REFILL, not a burst.
    let later = at(ms(SOURCE_REFILL));
    assert_eq!(
        hear(&mut d, later, v4(66), &encode(&beacon(200), None)),
        Handled::Taken
    );
    assert_eq!(
        hear(&mut d, later, v4(66), &encode(&beacon(201), None)),
        Handled::Dropped(DropReason::RateLimited)
    );
}

#[test]
fn a_rate_limited_source_does_not_hold_back_another() {
    let mut d = discovery(None);
    d.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
    for _ in 0..100 {
        hear(&mut d, at(0), v4(66), &[0u8; 40]);
    }
    assert_eq!(
        hear(&mut d, at(0), v4(2), &encode(&beacon(1), None)),
        Handled::Taken
    );
}

#[test]
fn one_source_with_many_keys_replaces_only_its_own_entries() {
    let mut d: Discovery<1, 16> = Discovery::new(config(None), [9; 32]).unwrap();
    d.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
    hear(&mut d, at(0), v4(2), &encode(&beacon(1), None));
    // One spoofing source, paced under its rate, with ever new keys.
    for n in 0..50u32 {
        let now = at(1 + u64::from(n) * ms(SOURCE_REFILL));
        hear(&mut d, now, v4(66), &encode(&beacon(100 + n), None));
    }
    let from_66 = d
        .nearby()
        .iter()
        .filter(|e| e.addrs().iter().any(|a| a.from == v4(66)))
        .count();
    assert_eq!(from_66, KEYS_PER_SOURCE);
    assert!(
        d.nearby().get(&key(1)).is_some(),
        "the other source's node stays"
    );
    // The ones kept are its latest.
    assert!(d.nearby().get(&key(149)).is_some());
    assert!(d.nearby().get(&key(100)).is_none());
}

#[test]
fn the_table_stays_bounded_under_a_flood_from_many_sources() {
    let mut d = discovery(None);
    d.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
    let mut lost = 0;
    for n in 0..1_000u32 {
        let now = at(u64::from(n));
        hear(&mut d, now, source(n), &encode(&beacon(n), None));
        lost += drain(&mut d, now)
            .events
            .iter()
            .filter(|e| matches!(e, Event::Lost { .. }))
            .count();
        assert!(d.nearby().len() <= 8);
    }
    assert_eq!(d.nearby().len(), 8);
    assert_eq!(lost, 1_000 - 8);
    assert_eq!(d.stats().evicted, 1_000 - 8);
    // What is left is the newest.
    for n in 992..1_000 {
        assert!(d.nearby().get(&key(n)).is_some(), "{n}");
    }
}

#[test]
fn a_full_table_evicts_the_node_heard_from_longest_ago() {
    let mut d = discovery(None);
    d.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
    for n in 1..=8u32 {
        hear(
            &mut d,
            at(u64::from(n)),
            source(n),
            &encode(&beacon(n), None),
        );
    }
    // Node 1 is heard again, so node 2 is now the one heard from longest ago.
    hear(&mut d, at(100), source(1), &encode(&beacon(1), None));
    let _ = drain(&mut d, at(100));
    hear(&mut d, at(200), source(9), &encode(&beacon(9), None));
    assert_eq!(
        drain(&mut d, at(200)).events,
        vec![Event::Lost { key: key(2) }, Event::Found { key: key(9) }]
    );
    assert!(d.nearby().get(&key(1)).is_some());
}

#[test]
fn a_flood_of_open_beacons_in_a_private_room_evicts_outsiders_before_members() {
    let mut d = discovery(Some(ROOM));
    d.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
    hear(&mut d, at(0), v4(2), &encode(&beacon(1), Some(&ROOM)));
    hear(&mut d, at(0), v4(3), &encode(&beacon(2), Some(&ROOM)));
    for n in 0..500u32 {
        hear(
            &mut d,
            at(1 + u64::from(n)),
            source(n),
            &encode(&beacon(100 + n), None),
        );
    }
    assert_eq!(d.nearby().len(), 8);
    assert!(d.nearby().get(&key(1)).is_some());
    assert!(d.nearby().get(&key(2)).is_some());
}

#[test]
fn a_full_table_of_members_evicts_the_oldest_member() {
    let mut d = discovery(Some(ROOM));
    d.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
    for n in 1..=9u32 {
        hear(
            &mut d,
            at(u64::from(n)),
            source(n),
            &encode(&beacon(n), Some(&ROOM)),
        );
    }
    assert_eq!(d.nearby().len(), 8);
    assert!(d.nearby().get(&key(1)).is_none());
    assert!(d.nearby().get(&key(9)).is_some());
}

#[test]
fn a_node_not_heard_for_the_expiry_is_lost_on_time() {
    let mut d = discovery(None);
    hear_up(&mut d);
    hear(&mut d, at(1_000), v4(2), &encode(&beacon(1), None));
    let _ = drain(&mut d, at(1_000));
    let expiry = at(1_000) + EXPIRE_AFTER;
    let just_before = at(expiry.as_millis() - 1);
    assert!(drain(&mut d, just_before).events.is_empty());
    assert!(d.nearby().get(&key(1)).is_some());
    assert_eq!(
        drain(&mut d, expiry).events,
        vec![Event::Lost { key: key(1) }]
    );
    assert!(d.nearby().is_empty());
}

#[test]
fn the_timeout_wakes_the_host_for_the_expiry() {
    let mut d = discovery(None);
    hear_up(&mut d);
    hear(&mut d, at(1_000), v4(2), &encode(&beacon(1), None));
    // Wake only when asked: the node is lost at the moment it expires, not at
    // the next beacon after it.
    let mut now = at(1_000);
    let mut lost_at = None;
    for _ in 0..10_000 {
        let drained = drain(&mut d, now);
        if drained.events.contains(&Event::Lost { key: key(1) }) {
            lost_at = Some(now);
            break;
        }
        assert!(now < at(1_000) + EXPIRE_AFTER, "not lost when it expired");
        now = drained.wake.expect("a node to expire and an interface up");
        d.handle_input(now, Input::Timeout).unwrap();
    }
    assert_eq!(lost_at, Some(at(1_000) + EXPIRE_AFTER));
}

#[test]
fn with_no_interface_and_no_node_there_is_nothing_to_wake_for() {
    let mut d = discovery(None);
    assert_eq!(drain(&mut d, at(0)).wake, None);
}

#[test]
fn an_address_that_expires_leaves_the_others() {
    let mut d = discovery(None);
    hear_up(&mut d);
    hear(&mut d, at(0), v4(2), &encode(&beacon(1), None));
    hear(&mut d, at(60_000), v4(3), &encode(&beacon(1), None));
    let _ = drain(&mut d, at(60_000));
    let expiry = at(0) + EXPIRE_AFTER;
    assert_eq!(
        drain(&mut d, expiry).events,
        vec![Event::Changed { key: key(1) }]
    );
    let entry = d.nearby().get(&key(1)).unwrap();
    assert_eq!(entry.addrs().len(), 1);
    assert_eq!(entry.addrs()[0].from, v4(3));
}

#[test]
fn an_interface_that_went_drops_the_nodes_heard_on_it() {
    let mut d = discovery(None);
    d.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
    d.handle_input(at(0), Input::InterfaceUp(1)).unwrap();
    hear(&mut d, at(0), v4(2), &encode(&beacon(1), None));
    d.handle_input(
        at(0),
        Input::Received {
            iface: 1,
            from: v4(3),
            datagram: &encode(&beacon(2), None),
        },
    )
    .unwrap();
    let _ = drain(&mut d, at(0));
    d.handle_input(at(10), Input::InterfaceDown(0)).unwrap();
    assert_eq!(
        drain(&mut d, at(10)).events,
        vec![Event::Lost { key: key(1) }]
    );
    assert!(d.nearby().get(&key(2)).is_some());
}

#[test]
fn a_datagram_on_an_interface_that_is_down_is_dropped() {
    let mut d = discovery(None);
    assert_eq!(
        hear(&mut d, at(0), v4(2), &encode(&beacon(1), None)),
        Handled::Dropped(DropReason::InterfaceDown)
    );
    assert!(d.nearby().is_empty());
}

#[test]
fn an_interface_out_of_range_is_the_callers_error() {
    let mut d = discovery(None);
    assert_eq!(
        d.handle_input(at(0), Input::InterfaceUp(2)),
        Err(DiscoveryError::Interface { iface: 2, max: 2 })
    );
    assert!(
        d.handle_input(
            at(0),
            Input::Received {
                iface: 7,
                from: v4(2),
                datagram: &[]
            }
        )
        .is_err()
    );
    assert!(d.handle_input(at(0), Input::InterfaceDown(200)).is_err());
}

#[test]
fn a_config_with_port_zero_or_a_bad_name_is_refused() {
    let zero = Config {
        port: 0,
        ..config(None)
    };
    assert!(matches!(
        Disc::new(zero, [0; 32]),
        Err(DiscoveryError::Port)
    ));
    let bad = Config {
        name: name("a b"),
        ..config(None)
    };
    assert!(matches!(
        Disc::new(bad, [0; 32]),
        Err(DiscoveryError::Name(_))
    ));
}

#[test]
fn undrained_events_keep_the_latest() {
    let mut d: Discovery<1, 32> = Discovery::new(config(None), [9; 32]).unwrap();
    d.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
    for n in 0..20u32 {
        hear(&mut d, at(0), source(n), &encode(&beacon(n), None));
    }
    let events = drain(&mut d, at(0)).events;
    assert_eq!(events.len(), meshtalk_core::discovery::EVENTS);
    assert_eq!(events.last(), Some(&Event::Found { key: key(19) }));
    assert_eq!(d.stats().lost_events, 20 - events.len() as u64);
    assert_eq!(d.nearby().len(), 20);
}

#[test]
fn a_beacon_sent_is_one_a_member_opens() {
    let mut d = discovery(Some(ROOM));
    d.handle_input(at(0), Input::InterfaceUp(1)).unwrap();
    let drained = drain(&mut d, at(300));
    let (iface, wire) = &drained.sent[0];
    assert_eq!(*iface, 1);
    let heard = Beacon::decode(wire, Some(&ROOM)).unwrap();
    assert_eq!(heard.beacon.key, OURS);
    assert_eq!(heard.beacon.port, 4000);
    assert_eq!(heard.beacon.name, "alice");
    assert_eq!(d.stats().sent, 1);
}

#[test]
fn a_config_shows_whether_there_is_a_room_key_never_the_key() {
    let shown = format!("{:?}", config(Some(ROOM)));
    assert!(shown.contains("room_key: true"), "{shown}");
    assert!(shown.contains("4000") && shown.contains("alice"), "{shown}");
    assert!(!shown.contains("66"), "room key bytes shown: {shown}");
}

#[test]
fn a_node_expires_after_three_of_the_longest_gaps_missed() {
    // The longest gap with its jitter is 75 s; three of them missed.
    assert_eq!(EXPIRE_AFTER, Duration::from_secs(225));
    assert_eq!(ms(EXPIRE_AFTER), 3 * ms(INTERVAL_MAX) * 5 / 4);
}

#[test]
fn every_beacon_sent_has_a_fresh_nonce() {
    let mut d = discovery(Some(ROOM));
    d.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
    d.handle_input(at(0), Input::InterfaceUp(1)).unwrap();
    let mut now = at(0);
    let mut nonces = Vec::new();
    for _ in 0..100 {
        let drained = drain(&mut d, now);
        nonces.extend(drained.sent.iter().map(|(_, w)| w[6..22].to_vec()));
        now = drained.wake.unwrap();
    }
    assert!(nonces.len() > 10);
    let mut unique = nonces.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), nonces.len(), "a nonce repeated");
    assert!(nonces.iter().all(|n| n.iter().any(|&b| b != 0)));
}

#[test]
fn a_callers_error_says_what_to_do() {
    let text = DiscoveryError::Interface { iface: 9, max: 2 }.to_string();
    assert!(text.contains('9') && text.contains('2'), "{text}");
    assert!(DiscoveryError::Port.to_string().contains("port"));
}

#[test]
fn the_table_of_64_nodes_has_a_fixed_size() {
    let table = core::mem::size_of::<Nearby<64>>();
    let whole = core::mem::size_of::<Discovery<8, 64>>();
    println!("Nearby<64>: {table} bytes; Discovery<8, 64>: {whole} bytes");
    assert!(table <= 32 * 1024, "{table}");
}

fn hear_up(d: &mut Disc) {
    d.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
}

#[test]
fn the_fuzz_entry_point_takes_beacons_and_garbage() {
    let mut corpus: Vec<Vec<u8>> = vec![
        vec![],
        vec![0; 200],
        encode(&beacon(1), None),
        encode(&beacon(1), Some(&ROOM)),
        b"mtbc\x01\x00".to_vec(),
    ];
    for seed in 0..64u8 {
        let mut wire = encode(&beacon(u32::from(seed)), None);
        let at = usize::from(seed) % wire.len();
        wire[at] ^= seed | 1;
        corpus.push(wire);
    }
    for input in &corpus {
        meshtalk_core::fuzz::discovery_beacon(input);
    }
}

// Farewells: a node that stops says so, and is forgotten at once.

fn farewell(n: u32) -> Beacon {
    Beacon {
        leaving: true,
        ..beacon(n)
    }
}

/// The beacons of one drain, decoded under `room`.
fn decoded(drained: &Drained, room: Option<&[u8; 32]>) -> Vec<(u8, Beacon)> {
    drained
        .sent
        .iter()
        .map(|(iface, d)| (*iface, Beacon::decode(d, room).unwrap().beacon))
        .collect()
}

#[test]
fn a_farewell_round_trips_open_and_sealed() {
    for room in [None, Some(&ROOM)] {
        let heard = Beacon::decode(&encode(&farewell(1), room), room).unwrap();
        assert_eq!(heard.beacon, farewell(1));
        assert!(heard.beacon.leaving);
    }
}

#[test]
fn a_sealed_farewell_looks_to_an_outsider_like_any_private_beacon() {
    let bye = encode(&farewell(1), Some(&ROOM));
    let hello = encode(&beacon(1), Some(&ROOM));
    assert_eq!(bye.len(), hello.len());
    assert_eq!(
        bye[..22],
        hello[..22],
        "the same header: magic, version, kind, nonce"
    );
    assert_eq!(Beacon::decode(&bye, None), Err(DecodeError::Sealed));
    assert_eq!(
        Beacon::decode(&bye, Some(&OTHER_ROOM)),
        Err(DecodeError::Sealed)
    );
}

#[test]
fn a_farewell_has_the_length_and_version_of_any_beacon() {
    let bye = encode(&farewell(1), None);
    assert_eq!(bye.len(), OPEN_LEN);
    assert_eq!(bye[4], VERSION);
    assert_eq!(encode(&farewell(1), Some(&ROOM)).len(), PRIVATE_LEN);
}

#[test]
fn a_beacon_with_the_unused_flag_bit_set_is_refused() {
    let mut wire = encode(&beacon(1), None);
    wire[22 + 2 + 32] |= 0x40;
    assert_eq!(Beacon::decode(&wire, None), Err(DecodeError::Name));
}

#[test]
fn leaving_sends_two_farewells_on_every_interface_then_nothing() {
    let mut d = discovery(None);
    d.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
    d.handle_input(at(0), Input::InterfaceUp(1)).unwrap();
    let _ = beacon_times(&mut d, at(0), at(10_000), 0);
    d.handle_input(at(10_000), Input::Leave).unwrap();
    let first = drain(&mut d, at(10_000));
    let sent = decoded(&first, None);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent.iter().all(|(_, b)| b.leaving && b.key == OURS));
    assert_eq!(
        sent.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        vec![0, 1],
        "one on each interface"
    );
    assert!(!d.left());
    let gap = ms(meshtalk_core::discovery::FAREWELL_GAP);
    assert_eq!(first.wake, Some(at(10_000 + gap)));
    d.handle_input(at(10_000 + gap), Input::Timeout).unwrap();
    let second = drain(&mut d, at(10_000 + gap));
    assert_eq!(decoded(&second, None).len(), 2);
    assert!(d.left());
    assert_eq!(second.wake, None, "nothing more to send");
    // An hour on, still nothing.
    assert!(drain(&mut d, at(3_600_000)).sent.is_empty());
}

#[test]
fn leaving_with_no_interface_up_has_left_at_once() {
    let mut d = discovery(None);
    assert!(!d.left(), "not before it leaves");
    d.handle_input(at(0), Input::Leave).unwrap();
    assert!(drain(&mut d, at(0)).sent.is_empty());
    assert!(d.left());
}

#[test]
fn a_private_rooms_farewell_is_sealed_for_its_members() {
    let mut d = discovery(Some(ROOM));
    d.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
    d.handle_input(at(0), Input::Leave).unwrap();
    let drained = drain(&mut d, at(0));
    assert_eq!(drained.sent.len(), 1);
    let wire = &drained.sent[0].1;
    assert_eq!(Beacon::decode(wire, None), Err(DecodeError::Sealed));
    assert!(Beacon::decode(wire, Some(&ROOM)).unwrap().beacon.leaving);
}

#[test]
fn an_interface_that_appears_while_leaving_says_nothing() {
    let mut d = discovery(None);
    d.handle_input(at(0), Input::Leave).unwrap();
    d.handle_input(at(0), Input::InterfaceUp(0)).unwrap();
    assert!(beacon_times(&mut d, at(0), at(60_000), 0).is_empty());
    assert!(d.left());
}

#[test]
fn a_farewell_removes_the_node_at_once() {
    let mut d = discovery(None);
    hear_up(&mut d);
    hear(&mut d, at(0), v4(2), &encode(&beacon(1), None));
    let _ = drain(&mut d, at(0));
    assert_eq!(
        hear(&mut d, at(500), v4(2), &encode(&farewell(1), None)),
        Handled::Taken
    );
    let drained = drain(&mut d, at(500));
    assert_eq!(drained.events, vec![Event::Lost { key: key(1) }]);
    assert!(d.nearby().get(&key(1)).is_none());
}

#[test]
fn a_farewell_removes_every_address_of_the_node() {
    let mut d = discovery(None);
    hear_up(&mut d);
    hear(&mut d, at(0), v4(2), &encode(&beacon(1), None));
    hear(&mut d, at(0), v4(3), &encode(&beacon(1), None));
    let _ = drain(&mut d, at(0));
    hear(&mut d, at(10), v4(3), &encode(&farewell(1), None));
    assert_eq!(
        drain(&mut d, at(10)).events,
        vec![Event::Lost { key: key(1) }]
    );
    assert!(d.nearby().is_empty());
}

#[test]
fn a_farewell_of_a_node_not_heard_changes_nothing() {
    let mut d = discovery(None);
    hear_up(&mut d);
    hear(&mut d, at(0), v4(2), &encode(&beacon(1), None));
    let _ = drain(&mut d, at(0));
    hear(&mut d, at(10), v4(4), &encode(&farewell(2), None));
    assert!(drain(&mut d, at(10)).events.is_empty());
    assert_eq!(d.nearby().len(), 1);
}

#[test]
fn a_forged_open_farewell_removes_only_the_entry_it_names() {
    let mut d = discovery(None);
    hear_up(&mut d);
    hear(&mut d, at(0), v4(2), &encode(&beacon(1), None));
    hear(&mut d, at(0), v4(3), &encode(&beacon(2), None));
    let _ = drain(&mut d, at(0));
    // From a third address, under node 1's key.
    hear(&mut d, at(10), v4(9), &encode(&farewell(1), None));
    assert_eq!(
        drain(&mut d, at(10)).events,
        vec![Event::Lost { key: key(1) }]
    );
    assert!(d.nearby().get(&key(2)).is_some());
}

#[test]
fn an_open_farewell_under_a_members_key_does_not_remove_the_member() {
    let mut d = discovery(Some(ROOM));
    hear_up(&mut d);
    hear(&mut d, at(0), v4(2), &encode(&beacon(1), Some(&ROOM)));
    let _ = drain(&mut d, at(0));
    assert_eq!(
        hear(&mut d, at(10), v4(9), &encode(&farewell(1), None)),
        Handled::Dropped(DropReason::Spoofed)
    );
    assert!(drain(&mut d, at(10)).events.is_empty());
    assert!(d.nearby().get(&key(1)).is_some());
    assert_eq!(d.stats().spoofed, 1);
}

#[test]
fn a_members_sealed_farewell_removes_it_in_a_private_room() {
    let mut d = discovery(Some(ROOM));
    hear_up(&mut d);
    hear(&mut d, at(0), v4(2), &encode(&beacon(1), Some(&ROOM)));
    let _ = drain(&mut d, at(0));
    hear(&mut d, at(10), v4(2), &encode(&farewell(1), Some(&ROOM)));
    assert_eq!(
        drain(&mut d, at(10)).events,
        vec![Event::Lost { key: key(1) }]
    );
}

#[test]
fn another_rooms_farewell_changes_nothing() {
    let mut d = discovery(Some(ROOM));
    hear_up(&mut d);
    hear(&mut d, at(0), v4(2), &encode(&beacon(1), Some(&ROOM)));
    let _ = drain(&mut d, at(0));
    assert_eq!(
        hear(
            &mut d,
            at(10),
            v4(2),
            &encode(&farewell(1), Some(&OTHER_ROOM))
        ),
        Handled::Dropped(DropReason::Malformed(DecodeError::Sealed))
    );
    assert!(d.nearby().get(&key(1)).is_some());
}

#[test]
fn our_own_farewell_looped_back_is_ignored() {
    let mut d = discovery(None);
    hear_up(&mut d);
    let own = Beacon {
        key: OURS,
        ..farewell(1)
    };
    assert_eq!(
        hear(&mut d, at(0), v4(1), &encode(&own, None)),
        Handled::Dropped(DropReason::Own)
    );
}

#[test]
fn a_node_that_said_farewell_is_found_again_when_it_restarts() {
    let mut d = discovery(None);
    hear_up(&mut d);
    hear(&mut d, at(0), v4(2), &encode(&beacon(1), None));
    hear(&mut d, at(10), v4(2), &encode(&farewell(1), None));
    let _ = drain(&mut d, at(10));
    hear(&mut d, at(2_000), v4(2), &encode(&beacon(1), None));
    assert_eq!(
        drain(&mut d, at(2_000)).events,
        vec![Event::Found { key: key(1) }]
    );
}

// --auto-connect: which room members to dial now.

mod auto {
    use super::{OURS, at, key};
    use meshtalk_core::discovery::AutoConnect;
    use meshtalk_core::discovery::auto::{SETTLED, State};
    use meshtalk_core::time::{Duration, Instant};

    type Auto = AutoConnect<8>;

    /// A member key that sorts after ours ([0xee; 32]): only those are ours to dial.
    fn above(n: u8) -> [u8; 32] {
        let mut k = [0xff; 32];
        k[31] = n;
        k
    }

    fn none_linked(_: &[u8; 32]) -> bool {
        false
    }

    /// Every key `next_dial` gives at `now`.
    fn dials(a: &mut Auto, now: Instant) -> Vec<[u8; 32]> {
        let mut out = Vec::new();
        while let Some(k) = a.next_dial(now, none_linked) {
            out.push(k);
            assert!(out.len() <= 8, "next_dial never ends");
        }
        out
    }

    #[test]
    fn a_member_that_sorts_after_us_is_dialled() {
        let mut a = Auto::new(OURS, 3);
        a.heard(&above(1), true);
        assert_eq!(dials(&mut a, at(0)), vec![above(1)]);
        assert_eq!(a.state(&above(1)), Some(State::Dialling));
    }

    #[test]
    fn a_member_that_sorts_before_us_is_left_to_dial_us() {
        let mut a = Auto::new(OURS, 3);
        a.heard(&key(1), true);
        assert!(dials(&mut a, at(0)).is_empty());
    }

    #[test]
    fn a_node_not_in_our_room_is_not_dialled() {
        let mut a = Auto::new(OURS, 3);
        a.heard(&above(1), false);
        assert!(dials(&mut a, at(0)).is_empty());
    }

    #[test]
    fn no_more_members_are_dialled_than_the_limit() {
        let mut a = Auto::new(OURS, 2);
        for n in 1..=5 {
            a.heard(&above(n), true);
        }
        assert_eq!(dials(&mut a, at(0)).len(), 2);
        assert_eq!(a.placed(), 2);
    }

    #[test]
    fn a_member_linked_otherwise_is_not_dialled() {
        let mut a = Auto::new(OURS, 3);
        a.heard(&above(1), true);
        assert_eq!(a.next_dial(at(0), |k| *k == above(1)), None);
    }

    #[test]
    fn a_dropped_link_is_dialled_again_after_the_backoff_not_before() {
        let mut a = Auto::new(OURS, 3);
        a.heard(&above(1), true);
        let _ = dials(&mut a, at(0));
        a.linked(&above(1), at(0));
        assert_eq!(
            a.dropped(&above(1), at(5_000)),
            Some(Duration::from_secs(1))
        );
        assert_eq!(a.state(&above(1)), Some(State::Waiting));
        assert!(dials(&mut a, at(5_999)).is_empty());
        assert_eq!(a.next_at(), Some(at(6_000)));
        assert_eq!(dials(&mut a, at(6_000)), vec![above(1)]);
        assert_eq!(a.next_at(), None);
    }

    #[test]
    fn each_failed_redial_doubles_the_wait_up_to_30_s() {
        let mut a = Auto::new(OURS, 3);
        a.heard(&above(1), true);
        let _ = dials(&mut a, at(0));
        let mut now = at(0);
        let mut waits = Vec::new();
        for _ in 0..8 {
            let wait = a.dropped(&above(1), now).unwrap();
            waits.push(wait.as_millis() / 1000);
            now = a.next_at().unwrap();
            assert_eq!(dials(&mut a, now), vec![above(1)]);
        }
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 30, 30, 30]);
    }

    /// Fails `above(1)`'s dial three times (waits 1, 2, 4 s); re-dialled at 7 s.
    fn failed_thrice(a: &mut Auto) {
        a.heard(&above(1), true);
        let _ = dials(a, at(0));
        for t in [0, 1_000, 3_000] {
            a.dropped(&above(1), at(t));
            let due = a.next_at().unwrap();
            let _ = dials(a, due);
        }
    }

    #[test]
    fn a_link_that_lasted_resets_the_wait() {
        let mut a = Auto::new(OURS, 3);
        failed_thrice(&mut a);
        a.linked(&above(1), at(7_000));
        let lasted = at(7_000 + SETTLED.as_millis());
        assert_eq!(a.dropped(&above(1), lasted), Some(Duration::from_secs(1)));
    }

    #[test]
    fn a_link_refused_as_soon_as_it_is_up_keeps_backing_off() {
        let mut a = Auto::new(OURS, 3);
        failed_thrice(&mut a);
        a.linked(&above(1), at(7_000));
        assert_eq!(
            a.dropped(&above(1), at(7_050)),
            Some(Duration::from_secs(8))
        );
    }

    #[test]
    fn a_member_that_left_is_not_dialled_again() {
        let mut a = Auto::new(OURS, 3);
        a.heard(&above(1), true);
        let _ = dials(&mut a, at(0));
        a.dropped(&above(1), at(0));
        assert!(a.left(&above(1)));
        assert_eq!(a.next_at(), None);
        assert!(dials(&mut a, at(3_600_000)).is_empty());
        assert_eq!(a.state(&above(1)), None);
    }

    #[test]
    fn a_waiting_member_keeps_its_place() {
        let mut a = Auto::new(OURS, 1);
        a.heard(&above(1), true);
        let _ = dials(&mut a, at(0));
        a.dropped(&above(1), at(0));
        a.heard(&above(2), true);
        assert!(
            dials(&mut a, at(500)).is_empty(),
            "above(1) holds the one place"
        );
        assert_eq!(dials(&mut a, at(1_000)), vec![above(1)]);
    }

    #[test]
    fn the_place_of_a_member_that_left_goes_to_another_heard() {
        let mut a = Auto::new(OURS, 1);
        a.heard(&above(1), true);
        a.heard(&above(2), true);
        assert_eq!(dials(&mut a, at(0)), vec![above(1)]);
        a.linked(&above(1), at(0));
        a.left(&above(1));
        assert_eq!(dials(&mut a, at(0)), vec![above(2)]);
    }

    #[test]
    fn a_member_heard_again_keeps_its_state() {
        let mut a = Auto::new(OURS, 3);
        a.heard(&above(1), true);
        let _ = dials(&mut a, at(0));
        a.linked(&above(1), at(0));
        a.heard(&above(1), true);
        assert_eq!(a.state(&above(1)), Some(State::Linked(at(0))));
        assert!(dials(&mut a, at(0)).is_empty());
    }

    #[test]
    fn a_member_heard_outside_our_room_is_forgotten() {
        let mut a = Auto::new(OURS, 3);
        a.heard(&above(1), true);
        let _ = dials(&mut a, at(0));
        a.heard(&above(1), false);
        assert_eq!(a.state(&above(1)), None);
        assert_eq!(a.placed(), 0);
    }

    #[test]
    fn a_due_member_linked_otherwise_gives_up_its_place() {
        let mut a = Auto::new(OURS, 1);
        a.heard(&above(1), true);
        let _ = dials(&mut a, at(0));
        a.dropped(&above(1), at(0));
        assert_eq!(a.next_dial(at(1_000), |k| *k == above(1)), None);
        assert_eq!(a.state(&above(1)), Some(State::Heard));
        assert_eq!(a.placed(), 0);
    }

    #[test]
    fn a_drop_of_a_member_never_dialled_changes_nothing() {
        let mut a = Auto::new(OURS, 3);
        a.heard(&above(1), true);
        a.heard(&above(2), true);
        assert_eq!(a.next_dial(at(0), none_linked), Some(above(1)));
        assert_eq!(a.dropped(&above(9), at(0)), None);
        a.left(&above(2));
        assert_eq!(a.dropped(&above(2), at(0)), None);
        assert_eq!(a.next_at(), None);
    }

    #[test]
    fn a_member_that_always_fails_is_dialled_a_few_times_a_minute_not_in_a_loop() {
        let mut a = Auto::new(OURS, 3);
        a.heard(&above(1), true);
        let mut now = at(0);
        let mut dialled = 0;
        while now < at(120_000) {
            let got = dials(&mut a, now);
            dialled += got.len();
            for k in &got {
                a.dropped(k, now); // the dial fails at once
            }
            now = a.next_at().expect("a re-dial is always scheduled");
        }
        // 1, 2, 4, 8, 16 s, then every 30 s: 9 dials in two minutes.
        assert!(dialled <= 9, "{dialled} dials in two minutes");
    }

    #[test]
    fn a_full_table_of_members_takes_no_more_and_stays_bounded() {
        let mut a = AutoConnect::<2>::new(OURS, 5);
        for n in 1..=4 {
            a.heard(&above(n), true);
        }
        assert_eq!(a.state(&above(3)), None);
        let dialled = std::iter::from_fn(|| a.next_dial(at(0), none_linked)).count();
        assert_eq!(dialled, 2, "the limit is at most the table");
    }
}
