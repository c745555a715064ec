//! The shell kit's rules, one behaviour each: fair turns, the Consumed loop and
//! its stuck rule, the waiting ring, the rate limit and reconnect backoff.

use meshtalk_core::peers::{Direction, PeerId, PeerTable};
use meshtalk_core::shell::backoff::Backoff;
use meshtalk_core::shell::feed::{Feeder, Full, Next, Ring, Settings, Took};
use meshtalk_core::shell::flow::{Flow, Limits};
use meshtalk_core::shell::rate::{Bucket, Limiter, Rate, ZeroRate, line_piece};
use meshtalk_core::time::{Duration, Instant};

/// Four peers of a table with four slots.
fn peers() -> [PeerId; 4] {
    let mut table: PeerTable<(), 4> = PeerTable::new(4);
    let mut add = || {
        table
            .insert(None, Direction::Inbound, None, ())
            .expect("room in the table")
    };
    [add(), add(), add(), add()]
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn settings(turn_budget: usize) -> Settings {
    Settings {
        turn_budget,
        stuck_limit: 3,
    }
}

// ---- feeding ----

#[test]
fn a_turn_offers_what_is_pending_up_to_its_budget() {
    let [a, ..] = peers();
    let mut feeder: Feeder<4> = Feeder::new(settings(100));
    let mut turn = feeder.turn(a);
    assert_eq!(feeder.next(&mut turn, 30, true), Next::Offer(30));
    assert_eq!(feeder.next(&mut turn, 300, true), Next::Offer(100));
    assert_eq!(feeder.next(&mut turn, 0, true), Next::Done);
}

#[test]
fn a_turn_stops_at_its_budget_and_the_peer_goes_to_the_back_of_the_turns() {
    let [a, b, ..] = peers();
    let mut feeder: Feeder<4> = Feeder::new(settings(100));
    // b was cut before a's turn: it is served first.
    let mut turn = feeder.turn(b);
    assert_eq!(feeder.next(&mut turn, 200, true), Next::Offer(100));
    feeder.took(&mut turn, 100, 100);
    assert_eq!(feeder.next(&mut turn, 100, true), Next::Cut);
    let mut turn = feeder.turn(a);
    assert_eq!(feeder.next(&mut turn, 500, true), Next::Offer(100));
    feeder.took(&mut turn, 100, 60);
    assert_eq!(turn.budget(), 40);
    assert_eq!(feeder.next(&mut turn, 440, true), Next::Offer(40));
    feeder.took(&mut turn, 40, 40);
    assert_eq!(feeder.next(&mut turn, 400, true), Next::Cut);
    assert_eq!(feeder.turns().iter().collect::<Vec<_>>(), vec![b, a]);
    assert_eq!(feeder.counters().turns_cut, 2);
    assert_eq!(feeder.next_turn(), Some(b));
    assert_eq!(feeder.next_turn(), Some(a));
    assert_eq!(feeder.next_turn(), None);
}

#[test]
fn a_refilled_peer_is_given_one_turn() {
    let [a, ..] = peers();
    let mut feeder: Feeder<4> = Feeder::new(Settings::default());
    assert!(feeder.give_turn(a));
    assert!(!feeder.give_turn(a), "already in the turns");
    assert_eq!(feeder.next_turn(), Some(a));
    assert_eq!(feeder.next_turn(), None);
}

#[test]
fn a_peer_with_no_room_in_a_ring_is_counted_as_an_overflow() {
    let [a, b, ..] = peers();
    let mut feeder: Feeder<1> = Feeder::new(Settings::default());
    assert!(feeder.give_turn(a));
    assert!(!feeder.give_turn(b));
    let mut turn = feeder.turn(a);
    feeder.next(&mut turn, 1, false);
    let mut turn = feeder.turn(b);
    feeder.next(&mut turn, 1, false);
    assert_eq!(feeder.counters().overflows, 2);
    assert_eq!(feeder.waiting().iter().collect::<Vec<_>>(), vec![a]);
}

#[test]
fn a_peer_cut_twice_is_queued_once() {
    let [a, ..] = peers();
    let mut feeder: Feeder<4> = Feeder::new(settings(1));
    for _ in 0..2 {
        let mut turn = feeder.turn(a);
        feeder.took(&mut turn, 1, 1);
        assert_eq!(feeder.next(&mut turn, 5, true), Next::Cut);
    }
    assert_eq!(feeder.turns().len(), 1);
}

#[test]
fn a_piece_the_node_refuses_three_times_is_dropped() {
    let [a, ..] = peers();
    let mut feeder: Feeder<4> = Feeder::new(Settings::default());
    let mut turn = feeder.turn(a);
    let kept = Took {
        consume: 0,
        dropped: false,
    };
    assert_eq!(feeder.took(&mut turn, 10, 0), kept);
    assert_eq!(feeder.took(&mut turn, 10, 0), kept);
    assert_eq!(
        feeder.took(&mut turn, 10, 0),
        Took {
            consume: 10,
            dropped: true
        }
    );
    assert_eq!(feeder.counters().stuck_drops, 1);
    assert_eq!(feeder.counters().stuck_bytes, 10);
}

#[test]
fn a_piece_taken_in_between_resets_the_stuck_count() {
    let [a, ..] = peers();
    let mut feeder: Feeder<4> = Feeder::new(Settings::default());
    let mut turn = feeder.turn(a);
    feeder.took(&mut turn, 10, 0);
    feeder.took(&mut turn, 10, 0);
    assert_eq!(feeder.took(&mut turn, 10, 4).consume, 4);
    feeder.took(&mut turn, 6, 0);
    assert!(!feeder.took(&mut turn, 6, 0).dropped);
    assert!(feeder.took(&mut turn, 6, 0).dropped);
    assert_eq!(feeder.counters().stuck_drops, 1);
}

#[test]
fn an_empty_offer_is_never_counted_as_a_refusal() {
    let [a, ..] = peers();
    let mut feeder: Feeder<4> = Feeder::new(Settings::default());
    let mut turn = feeder.turn(a);
    for _ in 0..5 {
        assert!(!feeder.took(&mut turn, 0, 0).dropped);
    }
    assert_eq!(feeder.counters().stuck_drops, 0);
}

#[test]
fn a_feeder_keeps_the_settings_it_was_given() {
    let mut feeder: Feeder<4> = Feeder::new(settings(7));
    assert_eq!(feeder.settings(), settings(7));
    let [a, ..] = peers();
    let mut turn = feeder.turn(a);
    assert_eq!(feeder.next(&mut turn, 100, true), Next::Offer(7));
}

#[test]
fn the_node_taking_more_than_offered_counts_as_all() {
    let [a, ..] = peers();
    let mut feeder: Feeder<4> = Feeder::new(settings(100));
    let mut turn = feeder.turn(a);
    assert_eq!(feeder.took(&mut turn, 10, 50).consume, 10);
    assert_eq!(turn.budget(), 90);
}

#[test]
fn a_paused_peer_waits_and_is_fed_first_when_the_pause_lifts() {
    let [a, b, c, _] = peers();
    let mut feeder: Feeder<4> = Feeder::new(Settings::default());
    for peer in [b, a] {
        let mut turn = feeder.turn(peer);
        assert_eq!(feeder.next(&mut turn, 10, false), Next::Paused);
    }
    // c was cut: it waits in the turns, behind whoever the pause lifts for.
    let mut turn = feeder.turn(c);
    feeder.took(&mut turn, 1, 1);
    assert_eq!(feeder.resume(), feeder.resume());
    assert!(!feeder.resumable(|_| false));
    assert!(feeder.resumable(|p| p == a));
    // Only a may go on: it is fed, b waits on.
    let mut pass = feeder.resume();
    assert_eq!(feeder.next_resumed(&mut pass, |p| p == a), Some(a));
    assert_eq!(feeder.next_resumed(&mut pass, |p| p == a), None);
    assert_eq!(feeder.waiting().iter().collect::<Vec<_>>(), vec![b]);
    // The pause lifts: b first, in the order they paused.
    let mut pass = feeder.resume();
    assert_eq!(feeder.next_resumed(&mut pass, |_| true), Some(b));
    assert_eq!(feeder.next_resumed(&mut pass, |_| true), None);
    assert_eq!(feeder.counters().paused, 2);
    assert_eq!(feeder.counters().resumed, 2);
}

#[test]
fn a_resume_pass_does_not_revisit_a_peer_that_pauses_again() {
    let [a, ..] = peers();
    let mut feeder: Feeder<4> = Feeder::new(Settings::default());
    let mut turn = feeder.turn(a);
    feeder.next(&mut turn, 10, false);
    let mut pass = feeder.resume();
    assert_eq!(feeder.next_resumed(&mut pass, |_| true), Some(a));
    // Fed, it paused at once.
    let mut turn = feeder.turn(a);
    feeder.next(&mut turn, 10, false);
    assert_eq!(feeder.next_resumed(&mut pass, |_| true), None);
    assert_eq!(feeder.waiting().len(), 1);
}

#[test]
fn a_forgotten_peer_leaves_both_rings() {
    let [a, b, ..] = peers();
    let mut feeder: Feeder<4> = Feeder::new(settings(1));
    let mut turn = feeder.turn(a);
    feeder.next(&mut turn, 10, false);
    let mut turn = feeder.turn(b);
    feeder.took(&mut turn, 1, 1);
    feeder.next(&mut turn, 10, true);
    let mut turn = feeder.turn(a);
    feeder.took(&mut turn, 1, 1);
    feeder.next(&mut turn, 10, true);
    feeder.forget(a);
    assert_eq!(feeder.waiting().len(), 0);
    assert_eq!(feeder.turns().iter().collect::<Vec<_>>(), vec![b]);
}

#[test]
fn a_full_ring_hands_the_peer_back() {
    let [a, b, c, _] = peers();
    let mut ring: Ring<2> = Ring::new();
    assert_eq!(ring.push(a), Ok(true));
    assert_eq!(ring.push(a), Ok(false));
    assert_eq!(ring.push(b), Ok(true));
    assert_eq!(ring.push(c), Err(Full(c)));
    assert_eq!(ring.pop(), Some(a));
    assert_eq!(ring.push(c), Ok(true));
    assert_eq!(ring.iter().collect::<Vec<_>>(), vec![b, c]);
    assert!(ring.remove(b));
    assert!(!ring.remove(b));
    assert_eq!(ring.iter().collect::<Vec<_>>(), vec![c]);
    let mut none: Ring<0> = Ring::new();
    assert_eq!(none.push(a), Err(Full(a)));
    assert!(Full(a).to_string().contains(&a.to_string()));
    assert_eq!(none.pop(), None);
}

#[test]
fn a_ring_keeps_its_order_across_the_wrap() {
    let ps = peers();
    let mut ring: Ring<3> = Ring::new();
    let mut model = std::collections::VecDeque::new();
    // Push, pop and remove through many wraps, against a VecDeque.
    for step in 0..60usize {
        let peer = ps[step * 7 % 4];
        match step % 5 {
            0 | 1 | 3 => {
                let pushed = ring.push(peer);
                if model.contains(&peer) {
                    assert_eq!(pushed, Ok(false));
                } else if model.len() == 3 {
                    assert_eq!(pushed, Err(Full(peer)));
                } else {
                    assert_eq!(pushed, Ok(true));
                    model.push_back(peer);
                }
            }
            2 => assert_eq!(ring.pop(), model.pop_front()),
            _ => {
                let there = model.iter().position(|&p| p == peer);
                assert_eq!(ring.remove(peer), there.is_some());
                if let Some(i) = there {
                    model.remove(i);
                }
            }
        }
        assert_eq!(ring.iter().collect::<Vec<_>>(), Vec::from(model.clone()));
        assert_eq!(ring.len(), model.len());
    }
}

// ---- flow: stall drops ----

#[test]
fn a_stalled_peer_is_handed_out_once_and_counted() {
    let [a, b, ..] = peers();
    let mut flow: Flow<4> = Flow::new(
        Limits {
            high_water: 100,
            low_water: 10,
            stall: Some(Duration::from_millis(1_000)),
        },
        7,
    );
    flow.queued(at(0), a, 50);
    flow.queued(at(0), b, 50);
    flow.taken(at(600), b, 10);
    let when = flow.stall_at(a).expect("bytes wait");
    assert_eq!(flow.next_stall(), Some(when.min(flow.stall_at(b).unwrap())));
    assert_eq!(flow.next_stalled(at(when.as_millis() - 1)), None);
    assert_eq!(flow.next_stalled(when), Some(a));
    assert_eq!(flow.next_stalled(when), None, "a is forgotten");
    assert_eq!(flow.backlog(a), 0);
    assert_eq!(flow.stalls(), 1);
    assert_eq!(flow.next_stall(), flow.stall_at(b));
}

// ---- rate ----

#[test]
fn a_zero_rate_is_refused() {
    assert_eq!(Rate::new(0), Err(ZeroRate));
    assert_eq!(Rate::new(2_500).map(Rate::milli_per_sec), Ok(2_500));
    assert!(ZeroRate.to_string().contains("more than 0"));
}

#[test]
fn the_bucket_refills_at_the_rate() {
    // 2 messages a second: a full bucket holds 2.
    let rate = Rate::new(2_000).unwrap();
    let mut bucket = Bucket::new(rate, at(0));
    bucket.take();
    bucket.take();
    assert!(!bucket.ready(rate, at(0)));
    assert!(!bucket.ready(rate, at(499)));
    assert!(bucket.ready(rate, at(500)), "one token after half a second");
    bucket.take();
    assert!(!bucket.ready(rate, at(999)));
    assert!(bucket.ready(rate, at(1_000)));
    // Never more than a second's worth.
    assert!(bucket.ready(rate, at(60_000)));
    assert_eq!(bucket.micros(), 2_000_000);
}

#[test]
fn a_slow_rate_refills_exactly_however_often_it_is_asked() {
    // 0.3 messages a second, asked every millisecond: no rounding loss.
    let rate = Rate::new(300).unwrap();
    let mut bucket = Bucket::new(rate, at(0));
    bucket.take();
    assert_eq!(bucket.ready_at(rate), at(3_334));
    for ms in 1..3_334 {
        assert!(!bucket.ready(rate, at(ms)), "ready early at {ms} ms");
    }
    assert!(bucket.ready(rate, at(3_334)));
}

#[test]
fn an_overdrawn_bucket_waits_until_it_holds_a_token_again() {
    let rate = Rate::new(10_000).unwrap();
    let mut bucket = Bucket::new(rate, at(0));
    assert!(bucket.ready(rate, at(0)));
    // A piece held 11 messages: one more than the bucket.
    for _ in 0..11 {
        bucket.take();
    }
    assert!(!bucket.ready(rate, at(0)));
    assert_eq!(bucket.ready_at(rate), at(200));
    assert!(!bucket.ready(rate, at(199)));
    assert!(bucket.ready(rate, at(200)));
}

#[test]
fn a_clock_that_goes_back_gives_no_tokens() {
    let rate = Rate::new(1_000).unwrap();
    let mut bucket = Bucket::new(rate, at(5_000));
    bucket.take();
    assert!(!bucket.ready(rate, at(1_000)));
    assert_eq!(bucket.ready_at(rate), at(6_000));
}

#[test]
fn the_piece_ends_after_a_newline() {
    assert_eq!(line_piece(b"ab\ncd\n", 256), 3);
    assert_eq!(line_piece(b"\n", 256), 1);
    assert_eq!(line_piece(b"", 256), 0);
}

#[test]
fn a_piece_without_a_newline_is_at_most_the_cap() {
    assert_eq!(line_piece(b"abcdef", 4), 4);
    assert_eq!(line_piece(b"abc", 4), 3);
    assert_eq!(line_piece(b"abcd\n", 4), 4);
}

#[test]
fn a_dry_peer_is_throttled_until_its_bucket_refills() {
    let [a, b, ..] = peers();
    let rate = Rate::new(1_000).unwrap();
    let mut limiter: Limiter<4> = Limiter::new(rate);
    assert!(limiter.admit(a, at(0)), "a new peer's bucket is full");
    limiter.shown(a);
    assert!(!limiter.admit(a, at(10)));
    assert!(limiter.admit(b, at(10)));
    assert_eq!(limiter.next_at(), Some(at(1_000)));
    assert_eq!(limiter.next_refilled(at(999)), None);
    assert_eq!(limiter.next_refilled(at(1_000)), Some(a));
    assert_eq!(limiter.next_refilled(at(1_000)), None);
    assert_eq!(limiter.next_at(), None);
}

#[test]
fn a_throttled_peer_that_leaves_is_let_go_and_its_bucket_dropped() {
    let [a, ..] = peers();
    let rate = Rate::new(1_000).unwrap();
    let mut limiter: Limiter<4> = Limiter::new(rate);
    limiter.admit(a, at(0));
    limiter.shown(a);
    assert!(!limiter.admit(a, at(0)));
    limiter.forget(a);
    assert!(limiter.bucket(a).is_none());
    assert_eq!(limiter.next_refilled(at(0)), None);
    assert!(limiter.admit(a, at(0)), "back with a full bucket");
}

#[test]
fn a_newcomer_in_the_slot_of_a_peer_gone_unnoticed_gets_a_full_bucket() {
    let mut table: PeerTable<(), 4> = PeerTable::new(4);
    let gone = table.insert(None, Direction::Inbound, None, ()).unwrap();
    let rate = Rate::new(1_000).unwrap();
    let mut limiter: Limiter<4> = Limiter::new(rate);
    assert!(limiter.admit(gone, at(0)));
    limiter.shown(gone);
    table.remove(gone);
    let newcomer = table.insert(None, Direction::Inbound, None, ()).unwrap();
    assert_eq!(newcomer.slot(), gone.slot());
    assert!(
        limiter.bucket(newcomer).is_none(),
        "the old bucket is not its"
    );
    assert!(limiter.admit(newcomer, at(0)), "its own bucket is full");
    assert!(limiter.bucket(gone).is_none());
}

// ---- backoff ----

#[test]
fn backoff_doubles_to_the_max_and_resets_on_connect() {
    let [a, ..] = peers();
    let mut backoff: Backoff<4> = Backoff::new(secs(1), secs(30));
    assert!(backoff.dialled(a));
    let waits: Vec<u64> = (0..7)
        .map(|_| backoff.schedule(a, at(0)).unwrap().as_millis() / 1000)
        .collect();
    assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
    // A re-dial keeps the wait; getting through resets it.
    backoff.dialled(a);
    assert_eq!(backoff.schedule(a, at(0)), Some(secs(30)));
    backoff.connected(a);
    assert_eq!(backoff.schedule(a, at(0)), Some(secs(1)));
}

#[test]
fn a_redial_is_due_after_its_wait_and_handed_out_once() {
    let [a, b, ..] = peers();
    let mut backoff: Backoff<4> = Backoff::default();
    backoff.dialled(a);
    backoff.dialled(b);
    backoff.schedule(a, at(500));
    backoff.schedule(b, at(0));
    assert_eq!(backoff.next_at(), Some(at(1_000)));
    assert_eq!(
        backoff.redial_in(a, at(700)),
        Some(Duration::from_millis(800))
    );
    assert_eq!(backoff.next_due(at(999)), None);
    assert_eq!(backoff.next_due(at(1_500)), Some(b), "the earliest first");
    assert_eq!(backoff.next_due(at(1_500)), Some(a));
    assert_eq!(backoff.next_due(at(1_500)), None);
    assert_eq!(backoff.redial_in(a, at(1_500)), None);
}

#[test]
fn a_forgotten_or_unknown_peer_is_never_redialled() {
    let [a, b, ..] = peers();
    let mut backoff: Backoff<4> = Backoff::default();
    assert_eq!(backoff.schedule(b, at(0)), None, "never dialled");
    backoff.dialled(a);
    backoff.schedule(a, at(0));
    backoff.forget(a);
    assert_eq!(backoff.next_at(), None);
    assert_eq!(backoff.next_due(at(100_000)), None);
    let mut none: Backoff<0> = Backoff::default();
    assert!(!none.dialled(a), "no slot for it");
}
