//! The shell's flow control: when input pauses, whom a paused node still reads,
//! and when a peer that takes nothing is stalled.

use std::collections::BTreeSet;

use meshtalk_core::peers::{Direction, PeerId, PeerTable};
use meshtalk_core::shell::flow::{Flow, Limits};
use meshtalk_core::time::{Duration, Instant};

const HIGH: usize = 4096;
const LOW: usize = 1024;
const STALL: u64 = 2_000;

fn flow() -> Flow<4> {
    Flow::new(
        Limits {
            high_water: HIGH,
            low_water: LOW,
            stall: Some(Duration::from_millis(STALL)),
        },
        7,
    )
}

/// Three peers of a table with four slots.
fn peers() -> (PeerTable<(), 4>, [PeerId; 3]) {
    let mut table = PeerTable::new(4);
    let mut add = || table_insert(&mut table);
    let ids = [add(), add(), add()];
    (table, ids)
}

fn table_insert(table: &mut PeerTable<(), 4>) -> PeerId {
    table
        .insert(None, Direction::Inbound, None, ())
        .expect("room in the table")
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

#[test]
fn a_backlog_over_the_high_water_pauses_input() {
    let (_, [a, _, _]) = peers();
    let mut f = flow();
    f.queued(at(0), a, HIGH);
    assert!(!f.paused(), "at the high water, not over it");
    f.queued(at(0), a, 1);
    assert!(f.paused());
}

#[test]
fn the_pause_lifts_only_once_every_backlog_is_under_the_low_water() {
    let (_, [a, b, _]) = peers();
    let mut f = flow();
    f.queued(at(0), a, HIGH + 1);
    f.queued(at(0), b, LOW);
    f.taken(at(10), a, HIGH + 1);
    assert!(f.paused(), "b still has the low water waiting");
    f.taken(at(20), b, 1);
    assert!(!f.paused());
}

#[test]
fn a_peer_that_leaves_takes_its_backlog_and_the_pause_with_it() {
    let (_, [a, _, _]) = peers();
    let mut f = flow();
    f.queued(at(0), a, 10 * HIGH);
    f.forget(a);
    assert!(!f.paused());
    assert_eq!(f.backlog(a), 0);
}

#[test]
fn while_paused_only_a_peer_the_node_waits_for_is_fed() {
    let (_, [a, b, c]) = peers();
    let mut f = flow();
    f.queued(at(0), a, HIGH + 1);
    f.queued(at(0), b, LOW);
    f.queued(at(0), c, LOW - 1);
    assert!(
        f.feeds(a),
        "over the high water: it may be waiting for us too"
    );
    assert!(f.feeds(b), "at the low water");
    assert!(!f.feeds(c), "little waits for it: it waits for nobody here");
}

#[test]
fn while_one_backlog_is_over_the_ceiling_a_paused_node_feeds_nobody() {
    let (_, [a, b, _]) = peers();
    let mut f = flow();
    f.queued(at(0), a, f.ceiling() + 1);
    f.queued(at(0), b, LOW);
    assert!(!f.feeds(a) && !f.feeds(b));
    f.taken(at(10), a, 1);
    assert!(f.feeds(a) && f.feeds(b), "back at the ceiling");
}

#[test]
fn every_peer_is_fed_while_input_is_not_paused() {
    let (_, [a, b, _]) = peers();
    let mut f = flow();
    f.queued(at(0), a, HIGH);
    assert!(f.feeds(a) && f.feeds(b));
}

#[test]
fn a_peer_stalls_after_the_stall_timeout_and_at_most_half_as_long_again() {
    let (_, [a, _, _]) = peers();
    let mut f = flow();
    f.queued(at(100), a, 10);
    let when = f.stall_at(a).expect("bytes wait").as_millis();
    assert!(
        (100 + STALL..=100 + STALL + STALL / 2).contains(&when),
        "{when}"
    );
    assert_eq!(f.stalled(at(when - 1)).0.count(), 0);
    assert_eq!(f.stalled(at(when)).0.collect::<Vec<_>>(), vec![a]);
}

#[test]
fn bytes_taken_restart_the_stall_clock_and_more_queued_do_not() {
    let (_, [a, _, _]) = peers();
    let mut f = flow();
    f.queued(at(0), a, 100);
    let first = f.stall_at(a).unwrap();
    f.queued(at(500), a, 100);
    assert_eq!(f.stall_at(a), Some(first), "queueing more is not progress");
    f.taken(at(900), a, 1);
    assert_eq!(f.stall_at(a), Some(first + Duration::from_millis(900)));
}

#[test]
fn a_peer_with_nothing_waiting_never_stalls() {
    let (_, [a, _, _]) = peers();
    let mut f = flow();
    f.queued(at(0), a, 100);
    f.taken(at(10), a, 100);
    assert_eq!(f.stall_at(a), None);
    assert_eq!(f.stalled(at(1_000_000)).0.count(), 0);
}

#[test]
fn the_stall_check_says_when_to_look_next() {
    let (_, [a, b, _]) = peers();
    let mut f = flow();
    f.queued(at(0), a, 1);
    f.queued(at(5_000), b, 1);
    let (due, next) = f.stalled(at(4_000));
    assert_eq!(due.collect::<Vec<_>>(), vec![a]);
    assert_eq!(next, f.stall_at(b));
}

#[test]
fn without_a_stall_timeout_nobody_stalls() {
    let (_, [a, _, _]) = peers();
    let mut f: Flow<4> = Flow::new(
        Limits {
            stall: None,
            ..Limits::default()
        },
        7,
    );
    f.queued(at(0), a, 1);
    assert_eq!(f.stall_at(a), None);
}

#[test]
fn a_peer_in_a_reused_slot_starts_with_nothing_waiting() {
    let (mut table, [a, _, _]) = peers();
    let mut f = flow();
    f.queued(at(0), a, HIGH + 1);
    table.remove(a);
    let newcomer = table_insert(&mut table);
    assert_eq!(newcomer.slot(), a.slot(), "the freed slot is reused");
    f.queued(at(10), newcomer, 5);
    assert_eq!(f.backlog(newcomer), 5);
    assert_eq!(f.backlog(a), 0);
    assert!(!f.paused(), "the old peer's backlog left with it");
}

#[test]
fn stall_deadlines_are_spread_per_peer_and_per_node_over_half_the_timeout() {
    let (_, ids) = peers();
    // How far past the stall timeout `peer` of the node salted `salt` stalls.
    let spread = |salt: u64, peer: PeerId| {
        let mut f: Flow<4> = Flow::new(flow().limits(), salt);
        f.queued(at(0), peer, 1);
        f.stall_at(peer).expect("bytes wait").as_millis() - STALL
    };
    let mut all = BTreeSet::new();
    for salt in 0..16 {
        let node: BTreeSet<u64> = ids.iter().map(|&p| spread(salt, p)).collect();
        assert!(
            node.len() > 1,
            "node {salt}: its peers all stall at once: {node:?}"
        );
        all.extend(node);
    }
    let one_peer: BTreeSet<u64> = (0..16).map(|salt| spread(salt, ids[0])).collect();
    assert!(
        one_peer.len() > 8,
        "16 nodes give the same peer slot {} distinct deadlines: {one_peer:?}",
        one_peer.len()
    );
    let (lo, hi) = (all.first().copied(), all.last().copied());
    assert!(
        lo < Some(STALL / 8) && hi > Some(3 * STALL / 8) && hi <= Some(STALL / 2),
        "48 deadlines do not cover half the timeout: {lo:?}..{hi:?}"
    );
}

#[test]
fn a_backlog_that_empties_and_fills_again_starts_a_new_stall_clock() {
    let (_, [a, _, _]) = peers();
    let mut f = flow();
    f.queued(at(0), a, 100);
    f.taken(at(10), a, 100);
    f.queued(at(5_000), a, 100);
    let when = f.stall_at(a).expect("bytes wait").as_millis();
    assert!(
        (5_000 + STALL..=5_000 + STALL + STALL / 2).contains(&when),
        "the clock did not restart when bytes began to wait again: {when}"
    );
}

#[test]
fn taking_no_bytes_is_not_progress() {
    let (_, [a, _, _]) = peers();
    let mut f = flow();
    f.queued(at(0), a, 100);
    let first = f.stall_at(a);
    f.taken(at(900), a, 0);
    assert_eq!(f.stall_at(a), first);
}

#[test]
fn a_newcomer_in_a_reused_slot_starts_its_own_stall_clock() {
    let (mut table, [a, _, _]) = peers();
    let mut f = flow();
    f.queued(at(0), a, 100);
    table.remove(a);
    let newcomer = table_insert(&mut table);
    assert_eq!(newcomer.slot(), a.slot(), "the freed slot is reused");
    f.queued(at(5_000), newcomer, 5);
    let when = f.stall_at(newcomer).expect("bytes wait").as_millis();
    assert!(
        when >= 5_000 + STALL,
        "the newcomer inherited the old peer's clock: stalls at {when}"
    );
}

#[test]
fn stall_timeouts_of_a_few_milliseconds_are_spread_within_half_again() {
    let (_, ids) = peers();
    for stall in 0..=3 {
        let limits = Limits {
            stall: Some(Duration::from_millis(stall)),
            ..flow().limits()
        };
        for salt in 0..8 {
            let mut f: Flow<4> = Flow::new(limits, salt);
            for &p in &ids {
                f.queued(at(100), p, 1);
                let when = f.stall_at(p).expect("bytes wait").as_millis();
                assert!(
                    (100 + stall..=100 + stall + stall / 2).contains(&when),
                    "stall {stall} ms, salt {salt}: stalls at {when}"
                );
            }
        }
    }
}

#[test]
fn a_peer_due_now_is_not_also_the_next_to_look_at() {
    let (_, [a, _, _]) = peers();
    let mut f = flow();
    f.queued(at(0), a, 1);
    let when = f.stall_at(a).expect("bytes wait");
    let (due, next) = f.stalled(when);
    assert_eq!(due.collect::<Vec<_>>(), vec![a]);
    assert_eq!(next, None, "the only waiting peer is due already");
}
