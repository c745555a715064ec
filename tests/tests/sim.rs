//! The deterministic multi-node simulator: seeded runs over many topologies,
//! each checking that unicasts arrive once and in order (or are reported
//! undelivered) and that broadcasts reach every node of the room exactly once.

use std::sync::Mutex;

use meshtalk_core::shell::feed::Settings;
use meshtalk_core::shell::flow::Limits;
use meshtalk_core::time::Duration;
use meshtalk_tests::sim::{Backpressure, Report, Rooms, Scenario, Topology, Totals};

/// The name of the enclosing function (a test's name, for its totals line).
macro_rules! test_name {
    () => {{
        fn here() {}
        let path = std::any::type_name_of_val(&here);
        let path = path.strip_suffix("::here").unwrap_or(path);
        path.rsplit("::").next().unwrap_or(path)
    }};
}

/// What the tests that finished so far simulated.
static SUITE: Mutex<Totals> = Mutex::new(Totals::ZERO);

/// Prints one test's totals and then the suite's so far: with
/// `cargo test -p meshtalk-tests --test sim -- --nocapture`, the last
/// `sim suite so far` line is the whole suite's.
fn record(test: &str, totals: &Totals) {
    let mut suite = SUITE.lock().unwrap_or_else(|e| e.into_inner());
    suite.merge(totals);
    eprintln!("sim test {test}: {totals}");
    eprintln!("sim suite so far: {suite}");
}

/// Runs `count` seeds from `base`, each scenario made by `make`, checks each,
/// and checks that the runs did what they scripted: unicasts and broadcasts
/// were sent and delivered, and few sends found no ready peer.
fn runs(test: &str, base: u64, count: u64, make: impl Fn(u64) -> Scenario) -> Totals {
    let mut totals = Totals::default();
    for seed in base..base + count {
        let report = make(seed).run();
        report.assert_ok();
        totals.add(&report);
    }
    record(test, &totals);
    if totals.unicasts_scripted > 0 {
        assert!(
            totals.unicasts > 0 && totals.unicasts_delivered > 0,
            "{test}: no unicast was sent and delivered: {totals}"
        );
    }
    if totals.broadcasts_scripted > 0 {
        assert!(
            totals.broadcasts > 0 && totals.broadcast_deliveries > 0,
            "{test}: no broadcast was sent and delivered: {totals}"
        );
    }
    // Links that are reset stay down, so a node may be cut off for good; where
    // nothing failed, each skip at a node with a link is a violation already.
    let scripted = totals.unicasts_scripted + totals.broadcasts_scripted;
    let linked = scripted - totals.sends_isolated;
    assert!(
        (totals.sends_skipped - totals.sends_isolated) * 5 <= linked,
        "{test}: more than a fifth of the scripted sends found no ready peer: {totals}"
    );
    assert!(
        totals.faults_skipped * 4 <= totals.faults_scripted,
        "{test}: more than a quarter of the scripted faults found no link: {totals}"
    );
    totals
}

/// 2..=16 nodes, chosen by the seed.
fn size(seed: u64) -> usize {
    2 + (seed.wrapping_mul(0x9e37_79b9) >> 7) as usize % 15
}

#[test]
fn every_broadcast_reaches_each_node_of_a_line_exactly_once() {
    runs(test_name!(), 0x1000, 6, |s| {
        Scenario::new(s, size(s), Topology::Line)
    });
}

#[test]
fn every_broadcast_reaches_each_node_of_a_ring_exactly_once() {
    runs(test_name!(), 0x2000, 6, |s| {
        Scenario::new(s, size(s).max(3), Topology::Ring)
    });
}

#[test]
fn every_broadcast_reaches_each_node_of_a_star_exactly_once() {
    runs(test_name!(), 0x3000, 6, |s| {
        Scenario::new(s, size(s), Topology::Star)
    });
}

#[test]
fn every_broadcast_reaches_each_node_of_a_random_mesh_exactly_once() {
    runs(test_name!(), 0x4000, 8, |s| {
        Scenario::new(s, size(s), Topology::RandomConnected)
    });
}

#[test]
fn broadcasts_stay_inside_their_component() {
    runs(test_name!(), 0x5000, 6, |s| {
        let n = size(s).max(4);
        Scenario::new(s, n, Topology::Components(2 + s as usize % 3))
    });
}

#[test]
fn unicasts_arrive_once_and_in_order_on_a_clean_network() {
    runs(test_name!(), 0x6000, 6, |s| {
        let mut sc = Scenario::new(s, size(s), Topology::RandomConnected);
        sc.unicasts = 10 * sc.nodes;
        sc
    });
}

#[test]
fn the_slow_reader_gets_everything_without_stalling_the_others() {
    runs(test_name!(), 0x7000, 4, |s| {
        let mut sc = Scenario::new(s, 3 + s as usize % 6, Topology::RandomConnected);
        sc.slow_reader = true;
        sc
    });
}

#[test]
fn a_broadcast_goes_no_further_than_its_hop_limit() {
    runs(test_name!(), 0x8000, 6, |s| {
        let n = 6 + s as usize % 10;
        let mut sc = Scenario::new(s, n, Topology::Line);
        sc.hops = Some(1 + (s % 4) as u8);
        sc
    });
    runs(&format!("{} (stars)", test_name!()), 0x8100, 4, |s| {
        let mut sc = Scenario::new(s, 8 + s as usize % 8, Topology::Star);
        sc.hops = Some(1);
        sc
    });
}

#[test]
fn a_hop_limited_broadcast_reaches_every_node_within_the_limit_in_a_mesh_with_cycles() {
    // A copy that comes first over a long path has fewer hops left; the later
    // copy over the short path must still carry it to the nodes it can reach.
    for topology in [
        Topology::Ring,
        Topology::RandomConnected,
        Topology::Complete,
    ] {
        let test = format!("{} ({topology:?})", test_name!());
        runs(&test, 0x8200, 8, |s| {
            let mut sc = Scenario::new(s, 6 + s as usize % 10, topology);
            sc.hops = Some(2 + (s % 2) as u8);
            sc
        });
    }
}

#[test]
fn unicasts_across_a_link_reset_are_delivered_once_or_reported_undelivered() {
    runs(test_name!(), 0x9000, 8, |s| {
        let mut sc = Scenario::new(s, size(s).max(3), Topology::RandomConnected);
        sc.unicasts = 8 * sc.nodes;
        sc.resets = 2 + s as usize % 4;
        sc
    });
}

#[test]
fn broadcasts_survive_partitions_that_heal() {
    runs(test_name!(), 0xa000, 8, |s| {
        let topology = [Topology::Ring, Topology::RandomConnected, Topology::Line][s as usize % 3];
        let mut sc = Scenario::new(s, size(s).max(3), topology);
        sc.partitions = 1 + s as usize % 3;
        sc.disconnects = s as usize % 2;
        sc.slow_reader = s % 4 == 0;
        sc
    });
}

#[test]
fn links_closed_by_a_person_report_what_they_did_not_deliver() {
    runs(test_name!(), 0xb000, 6, |s| {
        let mut sc = Scenario::new(s, size(s).max(3), Topology::RandomConnected);
        sc.disconnects = 2 + s as usize % 3;
        sc
    });
}

#[test]
fn the_simulation_is_deterministic_for_a_seed() {
    let make = || {
        let mut sc = Scenario::new(0xc0ffee, 9, Topology::RandomConnected);
        sc.resets = 2;
        sc.partitions = 1;
        sc.slow_reader = true;
        sc.trace = true;
        sc
    };
    let (a, b): (Report, Report) = (make().run(), make().run());
    assert!(a.trace.len() > 1000, "trace too short: {}", a.trace.len());
    assert_eq!(a.trace, b.trace, "seed 0xc0ffee gave two different traces");
    let other = Scenario {
        seed: 0xc0ffef,
        ..make()
    }
    .run();
    assert_ne!(a.trace, other.trace, "another seed gave the same trace");
    let mut totals = Totals::default();
    for r in [&a, &b, &other] {
        r.assert_ok();
        totals.add(r);
    }
    record(test_name!(), &totals);
}

#[test]
fn a_text_peers_line_is_shown_and_the_node_goes_on() {
    use meshtalk_core::node::{Event, Handled, Input, Output};
    use meshtalk_core::time::Instant;
    use meshtalk_tests::sim::SimNode;

    // Before the fix the node spun forever on the empty rest after the line;
    // run it on a thread so a regression fails instead of hanging the suite.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let config = meshtalk_core::node::Config::new("a", 1).unwrap();
        let mut node = Box::new(SimNode::new(config));
        let t = Instant::ZERO;
        let addr = "10.0.0.9:4000".parse().unwrap();
        let Ok(Handled::Accepted(peer)) = node.handle_input(
            t,
            Input::Accepted {
                addr,
                entropy: [0; 32],
            },
        ) else {
            panic!("not accepted");
        };
        while !matches!(node.poll_output(t), Output::Timeout(_)) {}
        let bytes = b"hello\nworld\n";
        let mut texts = Vec::new();
        let mut off = 0;
        while off < bytes.len() {
            let input = Input::Received {
                peer,
                bytes: &bytes[off..],
            };
            let Ok(Handled::Consumed(n)) = node.handle_input(t, input) else {
                panic!("bytes refused");
            };
            off += n;
            loop {
                match node.poll_output(t) {
                    Output::Timeout(_) => break,
                    Output::Event(Event::Message { text, .. }) => texts.push(text.to_string()),
                    _ => {}
                }
            }
        }
        let _ = tx.send(texts);
    });
    let texts = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the node hung on a text peer's line");
    assert_eq!(texts, ["hello", "world"]);
}

#[test]
fn bursts_of_messages_are_taken_in_parts_without_loss() {
    runs(test_name!(), 0xd000, 8, |s| {
        let topology = [Topology::Complete, Topology::RandomConnected][s as usize % 2];
        let mut sc = Scenario::new(s, 4 + s as usize % 13, topology);
        sc.unicasts = 15 * sc.nodes;
        sc.broadcasts = 3 * sc.nodes;
        sc.span_ms = 50;
        sc.resets = s as usize % 3;
        sc.slow_reader = s % 3 == 0;
        sc
    });
}

#[test]
fn a_full_window_refuses_sends_instead_of_losing_them() {
    let totals = runs(test_name!(), 0xe000, 3, |s| {
        let mut sc = Scenario::new(s, 2, Topology::Line);
        sc.unicasts = 200;
        sc.broadcasts = 0;
        sc.span_ms = 20;
        sc
    });
    assert!(totals.refused > 0, "the window never filled");
}

#[test]
fn a_second_link_between_two_nodes_is_closed_and_each_broadcast_still_arrives_once() {
    runs(test_name!(), 0xf000, 6, |s| {
        let topology = [Topology::Line, Topology::RandomConnected][s as usize % 2];
        let mut sc = Scenario::new(s, size(s).max(3), topology);
        sc.double_links = 1 + s as usize % 3;
        sc.unicasts = 6 * sc.nodes;
        sc
    });
}

#[test]
fn every_promise_holds_over_a_sweep_of_topologies_faults_and_loads() {
    runs(test_name!(), 0x10_000, 60, |s| {
        let topology = [
            Topology::Complete,
            Topology::RandomConnected,
            Topology::Star,
            Topology::Ring,
            Topology::Components(3),
            Topology::Line,
        ][s as usize % 6];
        let mut sc = Scenario::new(s, 3 + s as usize % 14, topology);
        sc.unicasts = 8 * sc.nodes;
        sc.broadcasts = 2 * sc.nodes;
        sc.span_ms = [50, 500, 3_000][s as usize % 3];
        sc.resets = (s % 4) as usize;
        sc.slow_reader = s % 5 == 0;
        sc.partitions = (s % 7 % 3) as usize;
        sc.disconnects = (s % 11 % 3) as usize;
        sc.double_links = (s % 13 % 3) as usize;
        if s % 9 == 0 {
            sc.hops = Some(2);
        }
        sc
    });
}

/// Bursts of broadcasts and unicasts (`per_node` of each kind per node within
/// 100 ms, texts up to 1 KiB) through small pipes (2 KiB) and small waters
/// (4 KiB high, 1 KiB low), so every queue overflows; `stall`: the shells'
/// stall timeout in ms.
fn burst(seed: u64, topology: Topology, stall: Option<u64>, per_node: usize) -> Scenario {
    let n = 3 + seed as usize % 6;
    let mut sc = Scenario::new(seed, n, topology);
    sc.broadcasts = per_node * n;
    sc.unicasts = per_node * n / 3;
    sc.span_ms = 100;
    sc.backpressure = Some(Backpressure {
        window: 2048,
        limits: Limits {
            high_water: 4096,
            low_water: 1024,
            stall: stall.map(Duration::from_millis),
        },
    });
    sc
}

#[test]
fn bursts_through_lines_and_stars_of_relays_pause_and_go_on_without_a_drop() {
    for topology in [Topology::Line, Topology::Star] {
        let test = test_name!();
        let totals = runs(&format!("{test} ({topology:?})"), 0xb000, 16, |s| {
            burst(s, topology, Some(2_000), 30)
        });
        assert_eq!(
            totals.stalls, 0,
            "{topology:?}: peers dropped as not reading"
        );
        assert!(
            totals.max_backlog > 4096,
            "{topology:?}: no queue went over the high water"
        );
    }
}

#[test]
fn bursts_around_cycles_of_relays_end_with_nothing_stuck_and_every_drop_reported() {
    let test = test_name!();
    let ring = runs(&format!("{test} (rings)"), 0xb100, 8, |s| {
        burst(s, Topology::Ring, Some(2_000), 30)
    });
    assert!(
        ring.max_backlog > 4096,
        "rings: no queue went over the high water: {ring}"
    );
    let mesh = runs(&format!("{test} (full meshes)"), 0xb100, 8, |s| {
        burst(s, Topology::Complete, Some(2_000), 30)
    });
    // These seeds wait for good without a stall timeout (the next test): here
    // the stall timeout must have broken the cycle, and what the dropped links
    // carried must have been reported undelivered (each run checks that).
    assert!(
        mesh.runs_with_stalls > 0 && mesh.undelivered > 0,
        "full meshes: no peer was dropped as not reading, so no wait cycle was broken: {mesh}"
    );
}

#[test]
fn without_a_stall_timeout_a_full_mesh_under_bursts_waits_for_good() {
    let reports: Vec<Report> = (0xb100..0xb10c)
        .map(|seed| burst(seed, Topology::Complete, None, 30).run())
        .collect();
    let mut totals = Totals::default();
    reports.iter().for_each(|r| totals.add(r));
    record(test_name!(), &totals);
    let stuck = reports
        .iter()
        .filter(|r| r.violations.iter().any(|v| v.contains("deadlock:")))
        .count();
    assert!(
        stuck > 0,
        "no wait cycle formed: the burst scenario tests nothing"
    );
}

/// The simulator's shells run the kit's feeding rules, not a copy: a turn budget
/// set in the scenario reaches them, and the turns they cut are the kit's count.
#[test]
fn a_tiny_turn_budget_set_in_the_kit_cuts_the_simulated_shells_turns() {
    let make = |turn_budget| {
        let mut sc = Scenario::new(0x7_0000, 5, Topology::Complete);
        sc.unicasts = 30;
        sc.broadcasts = 10;
        sc.span_ms = 100;
        sc.feeding = Settings {
            turn_budget,
            ..Settings::default()
        };
        sc
    };
    let usual = make(Settings::default().turn_budget).run();
    let tiny = make(64).run();
    let mut totals = Totals::default();
    for r in [&usual, &tiny] {
        r.assert_ok();
        totals.add(r);
    }
    record(test_name!(), &totals);
    // A read is at most 4 KiB: the host's 16 KiB budget never cuts one.
    assert_eq!(usual.turns_cut, 0, "the default budget cut a turn");
    assert!(
        tiny.turns_cut > 100,
        "a 64-byte budget cut only {} turns: the shells do not run the kit's budget",
        tiny.turns_cut
    );
    assert_eq!(tiny.unicasts_delivered, usual.unicasts_delivered);
}

/// Under bursts the shells' flow pauses peers, and the kit's waiting ring feeds
/// them again once the pause lifts: counted by the kit, with nothing lost.
#[test]
fn paused_peers_wait_in_the_kits_ring_and_are_fed_again() {
    let report = burst(0xb000, Topology::Line, Some(2_000), 30).run();
    report.assert_ok();
    let mut totals = Totals::default();
    totals.add(&report);
    record(test_name!(), &totals);
    assert!(
        report.feeds_paused > 0,
        "no feed paused under bursts: the shells do not use the kit's waiting ring"
    );
    assert_eq!(report.stalls, 0);
}

/// A byte flipped on the wire of a secure link closes that link only (its
/// receiver finds the damage and drops it): what it carried is reported
/// undelivered or comes by another path, nothing altered is shown, and every
/// other promise of the oracle holds.
#[test]
fn a_tampered_byte_closes_that_link_only_and_nothing_from_it_is_shown() {
    let (mut tampers, mut closes) = (0, 0);
    let mut totals = Totals::default();
    for seed in 0x7a00..0x7a08 {
        let mut sc = Scenario::new(seed, size(seed).max(4), Topology::RandomConnected);
        sc.tampers = 4;
        let report = sc.run();
        report.assert_ok();
        tampers += report.tampers;
        closes += report.tampered_closes;
        totals.add(&report);
    }
    record(test_name!(), &totals);
    assert!(tampers >= 8, "only {tampers} bytes flipped on the wire");
    assert!(closes > 0, "{tampers} bytes flipped, no link closed for it");
}

/// A bit flipped in a sealed frame's length (sent in the clear: Noise leaves
/// framing to the transport) shows only when the frame it announces should
/// end: the receiver waits for it, and closes the link at its frame timeout.
/// Till then the link carries nothing, and nothing from it is shown. (Both
/// seeds flip a length byte on a link that is its receiver's only path.)
#[test]
fn a_flipped_length_bit_holds_its_link_till_the_frame_timeout_and_nothing_is_shown() {
    let mut totals = Totals::default();
    for (seed, topology) in [(0x7a83, Topology::Star), (0x7b83, Topology::Line)] {
        let mut sc = Scenario::new(seed, size(seed).max(4), topology);
        sc.tampers = 4;
        let report = sc.run();
        report.assert_ok();
        assert!(
            report.tampered_closes > 0 && report.end_ms > 10_000,
            "seed {seed:#x}: no link held open till a frame timeout: {} closes, end at {} ms",
            report.tampered_closes,
            report.end_ms
        );
        totals.add(&report);
    }
    record(test_name!(), &totals);
}

/// Nodes split into `keys` private rooms (and one of nodes with no room key,
/// when `keyless`), over a topology that links nodes of different rooms too.
fn rooms(seed: u64, nodes: usize, topology: Topology, keys: usize, keyless: bool) -> Scenario {
    let mut sc = Scenario::new(seed, nodes, topology);
    sc.rooms = Some(Rooms { keys, keyless });
    sc
}

/// A link between two rooms (another room key, or a key against none) never
/// becomes ready, and each of its ends closes it for the room key: the
/// dialler and the node it dialled alike (the oracle checks every such link).
#[test]
fn a_link_between_two_room_keys_never_becomes_ready_and_both_ends_close_it() {
    let totals = runs(test_name!(), 0x7b00, 8, |s| {
        let topology = [Topology::Complete, Topology::RandomConnected][s as usize % 2];
        rooms(s, size(s).max(4), topology, 2 + s as usize % 2, false)
    });
    assert!(
        totals.cross_room_links >= 8,
        "few links across rooms: {totals}"
    );
    assert_eq!(
        totals.room_refusals,
        2 * totals.cross_room_links,
        "not every end of a link across rooms closed it for the room key: {totals}"
    );
}

/// Nodes with no room key are a room of their own: a keyed node and a keyless
/// one never link, either way round.
#[test]
fn nodes_without_a_room_key_are_a_room_apart_from_the_keyed_ones() {
    let totals = runs(test_name!(), 0x7c00, 8, |s| {
        let topology = [Topology::Complete, Topology::RandomConnected][s as usize % 2];
        rooms(s, size(s).max(4), topology, 1, true)
    });
    assert!(
        totals.cross_room_links >= 8,
        "few links across rooms: {totals}"
    );
    assert_eq!(
        totals.room_refusals,
        2 * totals.cross_room_links,
        "{totals}"
    );
}

/// A room message reaches exactly the nodes of its room that its room's links
/// connect, once each: not a node of another room, and not a node of its own
/// room that only other rooms' nodes lie between.
#[test]
fn a_room_message_reaches_exactly_the_nodes_its_rooms_links_connect_once_each() {
    let totals = runs(test_name!(), 0x7d00, 12, |s| {
        let topology = [
            Topology::RandomConnected,
            Topology::Ring,
            Topology::Line,
            Topology::Components(2),
            Topology::Complete,
            Topology::Star,
        ][s as usize % 6];
        let mut sc = rooms(s, size(s).max(4), topology, 2 + s as usize % 2, s % 3 == 0);
        sc.broadcasts = 3 * sc.nodes;
        sc
    });
    assert!(
        totals.room_cut_off > 0,
        "no room message had a node of its room cut off by other rooms: {totals}"
    );
}

/// Within each room, unicasts arrive once and in order, as on a network of one room.
#[test]
fn unicasts_in_each_room_arrive_once_and_in_order_beside_other_rooms() {
    runs(test_name!(), 0x7e00, 8, |s| {
        let topology = [Topology::Complete, Topology::RandomConnected][s as usize % 2];
        let mut sc = rooms(s, size(s).max(4), topology, 2, s % 2 == 0);
        sc.unicasts = 10 * sc.nodes;
        sc
    });
}

/// Resets, partitions that heal, second links and a slow reader in a network
/// of rooms: no link across rooms ever becomes ready, no message crosses
/// rooms, and every other promise holds.
#[test]
fn rooms_stay_apart_through_resets_partitions_and_second_links() {
    runs(test_name!(), 0x7f00, 12, |s| {
        let topology = [
            Topology::Complete,
            Topology::RandomConnected,
            Topology::Ring,
        ][s as usize % 3];
        let mut sc = rooms(s, size(s).max(4), topology, 2 + s as usize % 2, s % 2 == 0);
        sc.unicasts = 6 * sc.nodes;
        sc.broadcasts = 2 * sc.nodes;
        sc.resets = s as usize % 2;
        sc.partitions = 1 + s as usize % 2;
        sc.double_links = s as usize % 3;
        sc.slow_reader = s % 4 == 0;
        sc
    });
}

/// A scenario of `n` nodes that sends only direct messages across the mesh
/// (after each node's beacon): `2 n` of them.
fn across_the_mesh(seed: u64, n: usize, topology: Topology) -> Scenario {
    let mut sc = Scenario::new(seed, n, topology);
    sc.unicasts = 0;
    sc.broadcasts = 0;
    sc.routed = 2 * n;
    sc
}

/// Runs `count` seeds of `make`, checks each: the routed messages sent,
/// delivered, undelivered and refused in all, and the most hops one crossed.
fn routed_runs(base: u64, count: u64, make: impl Fn(u64) -> Scenario) -> [usize; 5] {
    let mut sum = [0; 5];
    for seed in base..base + count {
        let r = make(seed).run();
        r.assert_ok();
        eprintln!(
            "seed {seed}: {} nodes, routed {} sent, {} delivered, {} undelivered, {} refused, \
             longest {} hops",
            r.nodes,
            r.routed_sent,
            r.routed_delivered,
            r.routed_undelivered,
            r.routed_refused,
            r.routed_max_hops
        );
        let got = [
            r.routed_sent,
            r.routed_delivered,
            r.routed_undelivered,
            r.routed_refused,
            usize::from(r.routed_max_hops),
        ];
        for (s, g) in sum.iter_mut().zip(got).take(4) {
            *s += g;
        }
        sum[4] = sum[4].max(got[4]);
    }
    sum
}

#[test]
fn direct_messages_cross_random_meshes_of_16_to_64_nodes_once_each_with_a_receipt() {
    let table = size_of::<meshtalk_core::route::Origins<{ meshtalk_core::limits::ROUTES }>>();
    eprintln!(
        "originator table: {table} bytes for {} routes, whatever the traffic",
        meshtalk_core::limits::ROUTES
    );
    let [sent, delivered, undelivered, _, longest] = routed_runs(9_100, 4, |s| {
        let n = [16, 33, 48, 64][(s % 4) as usize];
        across_the_mesh(s, n, Topology::RandomConnected)
    });
    assert!(sent > 0 && delivered == sent && undelivered == 0);
    assert!(longest >= 3, "some messages crossed relays: {longest}");
}

#[test]
fn a_direct_message_to_another_component_is_refused_at_once() {
    let [sent, delivered, _, refused, _] = routed_runs(9_200, 3, |s| {
        across_the_mesh(s, 16 + 8 * (s as usize % 3), Topology::Components(2))
    });
    assert!(refused > 0, "some went to the other component");
    assert_eq!(sent, delivered);
}

#[test]
fn direct_messages_across_partitions_that_heal_are_delivered_once_or_reported() {
    let [sent, delivered, undelivered, _, _] = routed_runs(9_300, 6, |s| {
        let mut sc = across_the_mesh(s, 16 + 16 * (s as usize % 3), Topology::RandomConnected);
        sc.partitions = 2 + s as usize % 4;
        sc
    });
    assert!(sent > 0 && delivered > 0);
    eprintln!("partitions: {undelivered} of {sent} undelivered");
}
