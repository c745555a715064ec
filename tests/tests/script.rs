//! The shell kit's script rules, one behaviour each: the order of input lines,
//! which lines wait and for how long, which line an event answers, the end of
//! input and the exit status.

use std::net::SocketAddr;

use meshtalk_core::command::{self, Command};
use meshtalk_core::node::{Config, Event, Handled, Input, Kind, NodeError, Reason};
use meshtalk_core::peers::{Direction, LookupError, PeerId, PeerTable};
use meshtalk_core::shell::script::{EXIT_FAILED, EXIT_UNDELIVERED, Next, Script, Status, Step};
use meshtalk_core::time::{Duration, Instant};

use meshtalk_tests::harness::{Pair, TestNode, command, drain};

/// The script of a node with the default config (a line waits 25 s at most,
/// the end of input 10 s).
fn script() -> Script<8> {
    Script::new(&config())
}

fn config() -> Config {
    Config::new("alice", 1).unwrap()
}

/// The default bound of a waiting line: `ping_after` plus `dead_after`.
const WAIT: u64 = 25_000;
/// The default wait for owed receipts at the end: `dead_after`.
const END_WAIT: u64 = 10_000;

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// Two peers of a table with eight slots.
fn peers() -> [PeerId; 2] {
    let mut table: PeerTable<(), 8> = PeerTable::new(8);
    let mut add = || {
        table
            .insert(None, Direction::Inbound, None, ())
            .expect("room in the table")
    };
    [add(), add()]
}

/// A peer, and another that later took its slot in the table.
fn peer_and_successor() -> (PeerId, PeerId) {
    let mut table: PeerTable<(), 8> = PeerTable::new(8);
    let old = table.insert(None, Direction::Inbound, None, ()).unwrap();
    table.remove(old);
    let new = table.insert(None, Direction::Inbound, None, ()).unwrap();
    assert_eq!(old.slot(), new.slot());
    (old, new)
}

/// A node with no peers.
fn idle_node() -> TestNode {
    TestNode::new(config())
}

/// A node dialling a peer (the dial under way).
fn dialling_node() -> TestNode {
    let mut node = idle_node();
    command(&mut node, at(0), "connect 127.0.0.1 4000");
    node
}

/// Alice linked to bob, owing a receipt for a message bob has not seen yet.
fn owing_pair() -> Pair {
    let mut pair = Pair::connect(|name, id| Config::new(name, id).unwrap());
    command(&mut pair.a, at(0), "send bob hello");
    assert_eq!(pair.a.awaiting(pair.a_to_b).len(), 1);
    pair
}

fn parse(line: &str) -> Command<'_> {
    command::parse(line).unwrap().unwrap()
}

/// Reads `n` lines, runs the first and says it waited at `now`.
fn waiting(n: usize, now: Instant) -> Script<8> {
    let mut script = script();
    for _ in 0..n {
        script.read();
    }
    assert_eq!(script.next_line(), Next::Run(1));
    assert!(!script.ran(now, Step::Wait));
    script
}

fn sent(peer: PeerId, id: u32) -> Event<&'static str> {
    Event::Sent {
        peer,
        id,
        receipt: true,
    }
}

fn addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4000))
}

// ---- order ----

#[test]
fn lines_run_one_at_a_time_in_the_order_read_numbered_from_one() {
    let mut script = script();
    assert_eq!(script.read(), 1);
    assert_eq!(script.read(), 2);
    assert_eq!(script.next_line(), Next::Run(1));
    assert_eq!(script.current(), Some(1));
    assert!(script.ran(at(0), Step::Done));
    assert_eq!(script.current(), None);
    assert_eq!(script.next_line(), Next::Run(2));
    assert!(script.ran(at(0), Step::Done));
    assert_eq!(script.next_line(), Next::Idle);
}

#[test]
fn a_waiting_line_is_run_again_and_the_lines_behind_it_wait() {
    let mut script = waiting(2, at(0));
    assert_eq!(script.current(), None);
    assert_eq!(script.next_line(), Next::Run(1));
    assert!(script.ran(at(5), Step::Done));
    assert_eq!(script.next_line(), Next::Run(2));
}

#[test]
fn lines_after_exit_are_read_but_not_run() {
    let mut script = script();
    for _ in 0..3 {
        script.read();
    }
    assert_eq!(script.next_line(), Next::Run(1));
    assert!(script.ran(at(0), Step::Exit));
    assert_eq!(script.next_line(), Next::Skip(2));
    assert_eq!(script.next_line(), Next::Skip(3));
    assert_eq!(script.current(), None);
    assert_eq!(script.next_line(), Next::Idle);
}

#[test]
fn the_end_of_input_comes_once_after_every_line_read_is_done() {
    let mut script = script();
    script.read();
    script.read_end();
    assert_eq!(script.next_line(), Next::Run(1));
    assert!(script.ran(at(0), Step::Done));
    assert_eq!(script.next_line(), Next::End);
    assert_eq!(script.next_line(), Next::Idle);
}

#[test]
fn saying_a_line_ran_when_none_is_running_changes_nothing() {
    let mut script = script();
    script.read();
    assert!(!script.ran(at(0), Step::Done));
    assert!(!script.ran(at(0), Step::Wait));
    assert_eq!(script.next_at(), None);
    assert_eq!(script.next_line(), Next::Run(1));
}

// ---- waiting, and its bound ----

#[test]
fn a_message_waits_while_input_is_paused_until_its_bound() {
    let node = idle_node();
    let script = waiting(1, at(1_000));
    let send = parse("send bob hi");
    assert!(script.holds(at(1_000 + WAIT - 1), &send, &node, true));
    assert!(!script.holds(at(1_000 + WAIT), &send, &node, true));
    assert!(!script.holds(at(1_000), &send, &node, false));
}

#[test]
fn a_line_that_is_no_message_does_not_wait_for_paused_input() {
    let node = idle_node();
    let script = script();
    assert!(!script.holds(at(0), &parse("connect 127.0.0.1 4000"), &node, true));
}

#[test]
fn the_bound_of_a_wait_counts_from_the_first_time_the_line_waited() {
    let node = idle_node();
    let mut script = waiting(1, at(0));
    assert_eq!(script.next_line(), Next::Run(1));
    assert!(!script.ran(at(20_000), Step::Wait));
    assert!(!script.holds(at(WAIT), &parse("send bob hi"), &node, true));
    assert_eq!(script.next_at(), Some(at(WAIT)));
}

#[test]
fn a_line_done_ends_the_wait_and_the_next_one_waits_afresh() {
    let node = idle_node();
    let mut script = waiting(2, at(0));
    assert_eq!(script.next_line(), Next::Run(1));
    assert!(script.ran(at(WAIT), Step::Done));
    assert_eq!(script.next_at(), None);
    assert!(script.holds(at(WAIT), &parse("send bob hi"), &node, true));
}

#[test]
fn a_room_message_waits_for_a_dial_under_way_past_the_bound() {
    let node = dialling_node();
    let script = waiting(1, at(0));
    assert!(script.holds(at(10 * WAIT), &parse("broadcast hi"), &node, false));
    assert!(script.holds(at(10 * WAIT), &Command::Say { text: "hi" }, &node, false));
    assert!(!script.holds(at(0), &parse("broadcast hi"), &idle_node(), false));
}

#[test]
fn a_link_ready_or_one_that_came_in_is_no_dial_under_way() {
    let pair = Pair::connect(|name, id| Config::new(name, id).unwrap());
    let mut accepting = idle_node();
    let accepted = accepting.handle_input(
        at(0),
        Input::Accepted {
            addr: addr(),
            entropy: [0; 32],
        },
    );
    assert!(matches!(accepted, Ok(Handled::Accepted(_))));
    drain(&mut accepting, at(0));
    let broadcast = parse("broadcast hi");
    assert!(!script().holds(at(0), &broadcast, &pair.a, false));
    assert!(!script().holds(at(0), &broadcast, &accepting, false));
}

#[test]
fn a_direct_message_does_not_wait_for_a_dial_under_way() {
    let node = dialling_node();
    assert!(!script().holds(at(0), &parse("send bob hi"), &node, false));
}

#[test]
fn a_chat_line_in_a_two_peer_chat_does_not_wait_for_a_dial() {
    let mut config = config();
    config.single_peer = true;
    let mut node = TestNode::new(config.clone());
    command(&mut node, at(0), "connect 127.0.0.1 4000");
    let script: Script<8> = Script::new(&config);
    assert!(!script.holds(at(0), &Command::Me { action: "waves" }, &node, false));
}

#[test]
fn disconnect_waits_for_owed_receipts_until_its_bound() {
    let pair = owing_pair();
    let disconnect = parse("disconnect bob");
    assert!(script().holds(at(0), &disconnect, &pair.a, false));
    let script = waiting(1, at(0));
    assert!(!script.holds(at(WAIT), &disconnect, &pair.a, false));
    assert!(!script.holds(at(0), &disconnect, &pair.b, false));
}

#[test]
fn a_peer_still_connecting_makes_the_line_wait_past_the_bound() {
    let [peer, _] = peers();
    let script = waiting(1, at(0));
    let e = NodeError::NotReady(peer);
    assert!(script.waits(at(10 * WAIT), &e, &idle_node()));
}

#[test]
fn a_full_receipt_window_makes_the_line_wait_until_its_bound() {
    let [peer, _] = peers();
    let script = waiting(1, at(0));
    let e = NodeError::WindowFull(peer);
    assert!(script.waits(at(WAIT - 1), &e, &idle_node()));
    assert!(!script.waits(at(WAIT), &e, &idle_node()));
}

#[test]
fn a_peer_not_found_makes_the_line_wait_only_while_a_dial_is_under_way() {
    let script = script();
    for e in [
        NodeError::Lookup(LookupError::NoSuchName("bob")),
        NodeError::NoPeers,
        NodeError::WhichPeer {
            peers: 2,
            verb: command::Verb::Send,
        },
    ] {
        assert!(script.waits(at(0), &e, &dialling_node()), "{e}");
        assert!(!script.waits(at(0), &e, &idle_node()), "{e}");
    }
}

#[test]
fn any_other_refusal_fails_the_line_at_once() {
    let script = script();
    let e = NodeError::TooLong {
        len: 5000,
        max: 960,
    };
    assert!(!script.waits(at(0), &e, &dialling_node()));
}

// ---- which line an event answers ----

#[test]
fn what_a_line_brings_about_answers_that_line() {
    let mut script = script();
    script.read();
    let broadcast: Event<&str> = Event::Broadcast { seq: 1, peers: 2 };
    assert_eq!(script.answers(&broadcast), None);
    assert_eq!(script.next_line(), Next::Run(1));
    assert_eq!(script.answers(&broadcast), Some(1));
}

#[test]
fn a_receipt_answers_the_line_that_sent_the_message() {
    let [bob, carol] = peers();
    let mut script = script();
    script.read();
    script.read();
    assert_eq!(script.next_line(), Next::Run(1));
    assert_eq!(script.answers(&sent(bob, 7)), Some(1));
    assert!(script.ran(at(0), Step::Done));
    assert_eq!(script.next_line(), Next::Run(2));
    assert_eq!(script.answers(&sent(carol, 7)), Some(2));
    assert!(script.ran(at(0), Step::Done));
    let delivered = |peer| Event::<&str>::Delivered { peer, id: 7 };
    assert_eq!(script.answers(&delivered(bob)), Some(1));
    assert_eq!(script.answers(&delivered(carol)), Some(2));
    // Each receipt is answered once.
    assert_eq!(script.answers(&delivered(bob)), None);
    assert_eq!(script.status(), Status::default());
}

#[test]
fn a_lost_message_answers_its_line_and_the_status_says_undelivered() {
    let [bob, _] = peers();
    let mut script = script();
    script.read();
    assert_eq!(script.next_line(), Next::Run(1));
    script.answers(&sent(bob, 1));
    assert!(script.ran(at(0), Step::Done));
    let lost: Event<&str> = Event::Undelivered { peer: bob, id: 1 };
    assert_eq!(script.answers(&lost), Some(1));
    assert_eq!(script.status().code(), EXIT_UNDELIVERED);
}

#[test]
fn a_message_sent_by_no_line_is_not_remembered_but_its_loss_counts() {
    let [bob, _] = peers();
    let mut script = script();
    assert_eq!(script.answers(&sent(bob, 1)), None);
    let lost: Event<&str> = Event::Undelivered { peer: bob, id: 1 };
    assert_eq!(script.answers(&lost), None);
    assert!(script.status().undelivered);
}

#[test]
fn a_message_that_gets_no_receipt_is_not_remembered() {
    let [bob, _] = peers();
    let mut script = script();
    script.read();
    assert_eq!(script.next_line(), Next::Run(1));
    let to_text_peer: Event<&str> = Event::Sent {
        peer: bob,
        id: 1,
        receipt: false,
    };
    assert_eq!(script.answers(&to_text_peer), Some(1));
    assert!(script.ran(at(0), Step::Done));
    let delivered: Event<&str> = Event::Delivered { peer: bob, id: 1 };
    assert_eq!(script.answers(&delivered), None);
}

#[test]
fn a_receipt_from_a_peer_in_a_reused_slot_is_not_taken_for_the_old_peers() {
    let (old, new) = peer_and_successor();
    let mut script = script();
    script.read();
    assert_eq!(script.next_line(), Next::Run(1));
    script.answers(&sent(old, 1));
    assert!(script.ran(at(0), Step::Done));
    let delivered = |peer| Event::<&str>::Delivered { peer, id: 1 };
    assert_eq!(script.answers(&delivered(new)), None);
    assert_eq!(script.answers(&delivered(old)), Some(1));
}

#[test]
fn a_new_peer_in_a_slot_starts_with_no_owed_lines() {
    let (old, new) = peer_and_successor();
    let mut script = script();
    script.read();
    script.read();
    assert_eq!(script.next_line(), Next::Run(1));
    script.answers(&sent(old, 1));
    assert!(script.ran(at(0), Step::Done));
    assert_eq!(script.next_line(), Next::Run(2));
    script.answers(&sent(new, 2));
    assert!(script.ran(at(0), Step::Done));
    let delivered = |peer, id| Event::<&str>::Delivered { peer, id };
    assert_eq!(script.answers(&delivered(old, 1)), None);
    assert_eq!(script.answers(&delivered(new, 2)), Some(2));
}

#[test]
fn a_peer_owing_more_than_a_window_of_lines_forgets_the_oldest() {
    let [bob, _] = peers();
    let mut script = script();
    let window = meshtalk_core::limits::WINDOW as u32;
    for id in 0..=window {
        script.read();
        assert!(matches!(script.next_line(), Next::Run(_)));
        script.answers(&sent(bob, id));
        assert!(script.ran(at(0), Step::Done));
    }
    let delivered = |id| Event::<&str>::Delivered { peer: bob, id };
    assert_eq!(script.answers(&delivered(0)), None);
    assert_eq!(script.answers(&delivered(1)), Some(2));
    assert_eq!(
        script.answers(&delivered(window)),
        Some(u64::from(window) + 1)
    );
}

#[test]
fn a_dials_outcome_answers_the_line_that_dialled() {
    let [bob, carol] = peers();
    let mut script = script();
    script.read();
    script.read();
    assert_eq!(script.next_line(), Next::Run(1));
    script.dialled(bob);
    assert!(script.ran(at(0), Step::Done));
    assert_eq!(script.next_line(), Next::Run(2));
    let connected: Event<&str> = Event::Connected {
        peer: bob,
        alias: "bob",
        addr: addr(),
        direction: Direction::Outbound,
        kind: Kind::Native,
        encrypted: true,
    };
    assert_eq!(script.answers(&connected), Some(1));
    // Its later departure answers whatever line is running.
    let gone = |peer| Event::<&str>::Disconnected {
        peer,
        alias: "bob",
        reason: Reason::Closed,
    };
    assert_eq!(script.answers(&gone(bob)), Some(2));
    assert!(script.ran(at(0), Step::Done));
    assert_eq!(script.answers(&gone(carol)), None);
}

#[test]
fn a_failed_dial_of_the_script_fails_it() {
    let [bob, _] = peers();
    let mut script = script();
    script.read();
    assert_eq!(script.next_line(), Next::Run(1));
    script.dialled(bob);
    assert!(script.ran(at(0), Step::Done));
    let failed: Event<&str> = Event::ConnectFailed {
        peer: bob,
        alias: "bob",
        reason: "connection refused",
    };
    assert_eq!(script.answers(&failed), Some(1));
    assert_eq!(script.status().code(), EXIT_FAILED);
}

#[test]
fn a_failed_dial_no_line_asked_for_does_not_fail_the_script() {
    let [bob, _] = peers();
    let mut script = script();
    script.dialled(bob);
    let failed: Event<&str> = Event::ConnectFailed {
        peer: bob,
        alias: "bob",
        reason: "connection refused",
    };
    assert_eq!(script.answers(&failed), None);
    assert_eq!(script.status().code(), 0);
}

// ---- the end and the exit status ----

#[test]
fn the_script_is_not_finished_before_its_end() {
    let mut script = script();
    assert!(!script.finish(at(0), &idle_node()));
    assert!(!script.finished());
}

#[test]
fn the_end_is_finished_at_once_when_no_receipt_is_owed() {
    let mut script = script();
    script.end();
    assert!(script.finish(at(0), &idle_node()));
    assert!(script.finished());
}

#[test]
fn exit_ends_the_script_like_the_end_of_input() {
    let mut script = script();
    script.read();
    assert_eq!(script.next_line(), Next::Run(1));
    assert!(script.ran(at(0), Step::Exit));
    assert!(script.finish(at(0), &idle_node()));
}

#[test]
fn the_end_waits_for_owed_receipts_at_most_dead_after() {
    let pair = owing_pair();
    let mut script = script();
    script.end();
    assert!(!script.finish(at(1_000), &pair.a));
    assert_eq!(script.next_at(), Some(at(1_000 + END_WAIT)));
    assert!(!script.finish(at(1_000 + END_WAIT - 1), &pair.a));
    assert!(script.finish(at(1_000 + END_WAIT), &pair.a));
    // Finished stays finished.
    assert!(script.finish(at(0), &pair.a));
}

#[test]
fn the_wait_of_a_line_and_of_the_end_are_bounded_by_the_nodes_timeouts() {
    let mut config = config();
    config.ping_after = None;
    config.dead_after = Duration::from_secs(3);
    let mut script: Script<8> = Script::new(&config);
    script.read();
    assert_eq!(script.next_line(), Next::Run(1));
    assert!(!script.ran(at(100), Step::Wait));
    assert_eq!(script.next_at(), Some(at(3_100)));
    assert_eq!(script.next_line(), Next::Run(1));
    assert!(script.ran(at(200), Step::Exit));
    let pair = owing_pair();
    assert!(!script.finish(at(500), &pair.a));
    assert_eq!(script.next_at(), Some(at(3_500)));
}

#[test]
fn the_exit_status_adds_failed_and_undelivered() {
    let status = |failed, undelivered| Status {
        failed,
        undelivered,
    };
    assert_eq!(status(false, false).code(), 0);
    assert_eq!(status(true, false).code(), 1);
    assert_eq!(status(false, true).code(), 4);
    assert_eq!(status(true, true).code(), 5);
}

#[test]
fn a_failed_line_fails_the_script() {
    let mut script = script();
    script.fail();
    assert_eq!(script.status().code(), EXIT_FAILED);
}
