//! Routes through the simulator under change (issue 14's simulator part):
//! partitions that heal, convergence counted in rounds of room messages and
//! in virtual time, no message loops on the wire, and the originator table's
//! fixed memory. A round, "converged" and "shortest" are defined in
//! `meshtalk_tests::sim`'s `routes` module: every node says one room message
//! per round of `ROUND` ms; converged means the next hops the nodes give
//! (asked through `Node::reachable` and their links) lead every node to every
//! node its links reach, with no loop.
//!
//! `cargo test -p meshtalk-tests --test sim_routes -- --ignored --nocapture`
//! prints the convergence figures.

use std::sync::OnceLock;

use meshtalk_core::limits::{ANNOUNCE_EVERY, ROUTES};
use meshtalk_core::route::Origins;
use meshtalk_tests::sim::{Change, Convergence, ROUND, Report, Scenario, SimNode, Topology};

/// `n` nodes in a random connected mesh that send only what the changes
/// bring: a beacon each, rounds of room messages after each change, and the
/// direct messages the simulator sends once routes work (and across a
/// partition).
fn changing(seed: u64, n: usize, changes: &[Change]) -> Scenario {
    let mut sc = Scenario::new(seed, n, Topology::RandomConnected);
    sc.unicasts = 0;
    sc.broadcasts = 0;
    sc.changes = changes.to_vec();
    sc
}

/// Runs a scenario and checks every promise, with the seed on failure.
fn run(sc: &Scenario) -> Report {
    let report = sc.run();
    report.assert_ok();
    report
}

/// The node counts the issue names.
const SIZES: [usize; 3] = [16, 32, 64];

/// Partitions that heal, twice per run, over 16, 32 and 64 nodes: run once,
/// read by several tests. Three rounds at most after each change (a
/// partition's side need not converge: see the ignored tests).
fn healed() -> &'static [Report] {
    static RUNS: OnceLock<Vec<Report>> = OnceLock::new();
    RUNS.get_or_init(|| {
        let twice = [
            Change::Partition,
            Change::Heal,
            Change::Partition,
            Change::Heal,
        ];
        let mut runs = Vec::new();
        for (size, seeds) in SIZES.into_iter().zip([6, 4, 2]) {
            for s in 0..seeds {
                let mut sc = changing(0x4ea1_0000 + size as u64 * 100 + s, size, &twice);
                sc.max_rounds = 3;
                runs.push(run(&sc));
            }
        }
        runs
    })
}

#[test]
fn a_direct_message_to_a_node_a_partition_cut_off_is_refused_or_reported_undelivered() {
    let runs = healed();
    let sent: usize = runs.iter().map(|r| r.cut_off_sent).sum();
    let reported: usize = runs.iter().map(|r| r.cut_off_reported).sum();
    eprintln!("across partitions: {sent} sent, {reported} refused or reported undelivered");
    assert!(
        sent >= 4 * runs.len(),
        "each partition sent some across: {sent}"
    );
    assert_eq!(reported, sent);
}

#[test]
fn once_a_partition_healed_and_routes_work_direct_messages_arrive_once_with_a_receipt() {
    let runs = healed();
    let heals = runs.iter().flat_map(|r| &r.convergence);
    let heals = heals.filter(|c| c.change == Change::Heal).count();
    let probes: usize = runs.iter().map(|r| r.probes).sum();
    let delivered: usize = runs.iter().map(|r| r.probes_delivered).sum();
    eprintln!("after {heals} heals: {probes} direct messages, {delivered} delivered once");
    assert_eq!(heals, 2 * runs.len());
    assert!(probes >= 4 * heals, "every heal was probed: {probes}");
    assert_eq!(delivered, probes);
}

/// After a heal every link is back, so every route that outlived the
/// partition is good again; those forgotten at the cut's two ends come back
/// with the first room message of each node, which reaches its whole
/// component: one round.
#[test]
fn after_a_partition_heals_every_route_works_within_one_round() {
    let mut rounds = Vec::new();
    for c in healed().iter().flat_map(|r| &r.convergence) {
        if c.change == Change::Heal {
            assert_eq!(c.components, 1, "{c:?}");
            assert!(c.rounds.is_some_and(|r| r <= 1), "{c:?}");
            assert!(c.ms.is_some_and(|ms| ms < 2 * ROUND), "{c:?}");
            rounds.push(c.rounds);
        }
    }
    eprintln!("rounds after each heal: {rounds:?}");
}

/// With nobody speaking after a change, the nodes' own announces bring every
/// route back: a new link's within a round, any other change by the next
/// periodic announce.
#[test]
fn with_no_room_messages_routes_work_again_by_the_next_periodic_announce() {
    let mut sc = changing(0xa11_0001, 16, &[Change::Cut, Change::Add, Change::Heal]);
    sc.max_rounds = 0;
    sc.announce_every = Some(ANNOUNCE_EVERY);
    sc.quiet_ms = ANNOUNCE_EVERY.as_millis() + 10_000;
    let r = run(&sc);
    for c in &r.convergence {
        let bound = match c.change {
            Change::Add => ROUND,
            _ => ANNOUNCE_EVERY.as_millis() + ROUND,
        };
        assert!(c.ms.is_some_and(|ms| ms <= bound), "{c:?}");
    }
    assert_eq!(r.convergence.len(), 3);
}

/// Plaintext links, so the simulator decodes every frame: room messages, direct
/// messages across partitions that heal and links reset, and their receipts.
#[test]
fn no_message_goes_back_over_the_link_it_came_by_or_comes_to_a_node_twice() {
    let mut frames = 0;
    let mut relays = 0;
    for s in 0..4 {
        let n = [16, 24, 32, 48][s as usize];
        let mut sc = changing(0x100b_0000 + s, n, &[Change::Partition, Change::Heal]);
        sc.plaintext = true;
        sc.broadcasts = n;
        sc.routed = 2 * n;
        sc.partitions = 2;
        sc.resets = 1;
        sc.max_rounds = 2;
        let r = run(&sc);
        eprintln!(
            "seed {s}: {n} nodes, {} routing frames on the wire, {} relays checked, \
             routed {} sent {} delivered {} undelivered {} refused",
            r.frames_watched,
            r.relays_watched,
            r.routed_sent,
            r.routed_delivered,
            r.routed_undelivered,
            r.routed_refused
        );
        frames += r.frames_watched;
        relays += r.relays_watched;
    }
    assert!(
        frames > 1_000 && relays > 1_000,
        "{frames} frames, {relays} relays"
    );
}

/// 96 nodes: more than the [`ROUTES`] a node's table holds. Each speaks twice
/// (a beacon, then a round after a link is added), so every node hears of 95.
#[test]
fn the_node_and_its_originator_table_stay_their_size_among_more_nodes_than_routes() {
    let before = size_of::<SimNode>();
    let n = 96;
    let mut sc = changing(0x3e30, n, &[Change::Add]);
    sc.max_rounds = 1;
    let r = run(&sc);
    eprintln!(
        "{n} nodes: a node is {before} bytes, its table {} bytes for {ROUTES} routes; \
         the most listed reachable by one node: {}",
        size_of::<Origins<ROUTES>>(),
        r.max_reachable
    );
    assert_eq!(size_of::<SimNode>(), before);
    assert!(r.max_reachable <= ROUTES, "{}", r.max_reachable);
    assert!(
        r.max_reachable >= ROUTES - 16,
        "the table filled: {}",
        r.max_reachable
    );
}

/// The median and the most of `values` (`None`, not converged, counts as the most).
fn spread(mut values: Vec<Option<u64>>) -> String {
    values.sort_by_key(|v| v.unwrap_or(u64::MAX));
    let show = |v: Option<&Option<u64>>| match v {
        Some(Some(v)) => v.to_string(),
        Some(None) => "never".to_string(),
        None => "-".to_string(),
    };
    let never = values.iter().filter(|v| v.is_none()).count();
    format!(
        "median {}, most {} ({never} of {} never)",
        show(values.get(values.len() / 2)),
        show(values.last()),
        values.len()
    )
}

/// One line of figures per change: rounds and ms until every route worked and
/// until every route was a shortest path, over the runs.
fn figures(n: usize, found: &[Convergence]) {
    for change in [Change::Cut, Change::Add, Change::Partition, Change::Heal] {
        let of: Vec<&Convergence> = found.iter().filter(|c| c.change == change).collect();
        let pick = |f: fn(&Convergence) -> Option<u64>| spread(of.iter().map(|c| f(c)).collect());
        eprintln!(
            "{n} nodes, {change:?}: routes work after rounds {}, ms {}; shortest after rounds {}, ms {}",
            pick(|c| c.rounds.map(|r| r as u64)),
            pick(|c| c.ms),
            pick(|c| c.shortest_rounds.map(|r| r as u64)),
            pick(|c| c.shortest_ms),
        );
        if let Some(c) = of.iter().find(|c| c.rounds.is_none()) {
            eprintln!(
                "  e.g. not converged: {}",
                c.stuck.as_deref().unwrap_or("?")
            );
        }
    }
}

/// Seeds of the figures: one run per seed and change sequence.
const FIGURE_SEEDS: u64 = 12;

#[test]
#[ignore = "prints the convergence figures (about 2 minutes)"]
fn convergence_figures_for_16_32_and_64_nodes() {
    let sequences: [&[Change]; 3] = [
        &[Change::Cut],
        &[Change::Add],
        &[Change::Partition, Change::Heal],
    ];
    for n in SIZES {
        let mut found = Vec::new();
        for seed in 0..FIGURE_SEEDS {
            for (k, changes) in sequences.iter().enumerate() {
                let s = 0xf16_0000 + n as u64 * 1000 + seed * 10 + k as u64;
                let r = changing(s, n, changes).run();
                r.assert_ok();
                found.extend(r.convergence);
            }
        }
        figures(n, &found);
    }
}

/// What the nodes do alone, with no room message after a change: how long
/// until routes work, in virtual time, from what the nodes announce of
/// themselves (links coming up, nodes new to them, and every
/// `ANNOUNCE_EVERY`). Checked for a period and 10 s after each change.
#[test]
#[ignore = "prints the figures with no room messages after a change (about a minute)"]
fn convergence_figures_with_no_room_messages_after_the_change() {
    for n in SIZES {
        let mut found = Vec::new();
        for seed in 0..3 {
            let s = 0xa10e_0000 + n as u64 * 1000 + seed;
            let mut sc = changing(
                s,
                n,
                &[Change::Cut, Change::Add, Change::Partition, Change::Heal],
            );
            sc.max_rounds = 0;
            sc.announce_every = Some(ANNOUNCE_EVERY);
            sc.quiet_ms = ANNOUNCE_EVERY.as_millis() + 10_000;
            let r = sc.run();
            r.assert_ok();
            found.extend(r.convergence);
        }
        figures(n, &found);
    }
}

/// After a link is cut, every route works again within the rounds. Before
/// `Origins::renew`, a node whose route ran through the cut link kept it while
/// the room messages that would teach the way around came to it over a longer
/// path, a neighbour that lost its own route learned the way back through it,
/// and the two pointed at each other (seeds 0xc070012, 0xc070013, 0xc07001b
/// failed so): now the first copy of a node's new message sets the way to it.
/// Links in the clear, so the wire watch would also see a message go round.
#[test]
fn after_a_link_is_cut_every_route_works_again_within_six_rounds() {
    let mut failed = Vec::new();
    for s in 0..12 {
        let (seed, n) = (0xc07_0010 + s, SIZES[s as usize % 3]);
        let mut sc = changing(seed, n, &[Change::Cut]);
        sc.plaintext = true;
        sc.probe_always = true;
        let r = sc.run();
        let c = &r.convergence[0];
        eprintln!(
            "seed {seed:#x}, {n} nodes: rounds {:?}, {}; {} violation(s){}",
            c.rounds,
            c.stuck.as_deref().unwrap_or("converged"),
            r.violations.len(),
            r.violations
                .iter()
                .map(|v| format!("\n  {v}"))
                .collect::<String>()
        );
        if c.rounds.is_none() || !r.violations.is_empty() {
            failed.push(format!("{seed:#x}"));
        }
    }
    assert!(failed.is_empty(), "seeds that fail: {failed:?}");
}
