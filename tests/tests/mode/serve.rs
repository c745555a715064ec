//! The one-way server's rules.

use crate::*;
use meshtalk_core::limits::{SERVE_LOG, SERVE_RECEIPT_WAIT};
use meshtalk_core::mode::serve::{QUIT, Serve};

/// A server whose client `peer` is connected and has said `lines`.
fn serving<const LOG: usize>(peer: PeerId, lines: &[&str]) -> Serve<LOG> {
    let mut serve = Serve::new(MAX);
    serve.event(&connected(peer), Instant::ZERO);
    for line in lines {
        assert!(serve.event(&message(peer, line), Instant::ZERO));
    }
    serve
}

/// The pieces `lines` go back in when the client says quit.
fn pieces(lines: &[&str]) -> Vec<String> {
    let (peer, _) = peers();
    let mut serve: Serve<SERVE_LOG> = serving(peer, lines);
    serve.event(&message(peer, QUIT), Instant::ZERO);
    poll(&mut serve)
        .into_iter()
        .filter_map(|did| match did {
            Did::Send(text) => Some(text),
            _ => None,
        })
        .collect()
}

#[test]
fn a_clients_quit_is_not_shown_as_a_message_and_its_log_goes_back() {
    let (peer, _) = peers();
    let mut serve: Serve = serving(peer, &["hello"]);
    assert!(!serve.event(&message(peer, QUIT), Instant::ZERO));
    assert_eq!(
        poll(&mut serve),
        [Did::LogSent(peer, 1), Did::Send("hello".to_string())]
    );
}

#[test]
fn log_is_one_message_of_lines_joined_by_newlines() {
    assert_eq!(pieces(&["a", "b"]), ["a\nb"]);
}

#[test]
fn empty_log_is_one_empty_message() {
    assert_eq!(pieces(&[]), [""]);
}

#[test]
fn log_longer_than_a_message_is_cut_between_lines() {
    let line = "x".repeat(MAX / 2 - 1);
    assert_eq!(
        pieces(&[&line, &line, &line]),
        [format!("{line}\n{line}"), line.clone()]
    );
}

#[test]
fn a_piece_is_filled_up_to_exactly_one_message() {
    // Two lines and their newline: exactly MAX bytes, one piece; a byte more, two.
    let a = "a".repeat(MAX / 2);
    let b = "b".repeat(MAX / 2 - 1);
    assert_eq!(pieces(&[&a, &b]), [format!("{a}\n{b}")]);
    let b = "b".repeat(MAX / 2);
    assert_eq!(pieces(&[&a, &b]), [a.clone(), b.clone()]);
}

#[test]
fn every_piece_is_filled_like_the_first() {
    let line = "x".repeat(MAX / 2 - 1);
    let two = format!("{line}\n{line}");
    assert_eq!(
        pieces(&[&line, &line, &line, &line, &line]),
        [two.clone(), two, line.clone()]
    );
}

#[test]
fn a_line_longer_than_a_message_goes_back_whole_in_a_piece_of_its_own() {
    let long = "z".repeat(MAX + 10);
    assert_eq!(
        pieces(&["a", &long, "b"]),
        ["a".to_string(), long.clone(), "b".to_string()]
    );
}

#[test]
fn a_line_holding_a_newline_goes_back_as_it_came() {
    assert_eq!(pieces(&["one\ntwo", "three"]), ["one\ntwo\nthree"]);
}

#[test]
fn log_keeps_the_newest_lines_within_its_limit() {
    let (peer, _) = peers();
    let line = "y".repeat(1000);
    let mut serve: Serve = serving(peer, &["first"]);
    for _ in 0..SERVE_LOG / 1000 + 5 {
        serve.event(&message(peer, &line), Instant::ZERO);
    }
    assert!(serve.log_len() <= SERVE_LOG);
    assert_eq!(serve.lines().last(), Some(line.as_str()));
    assert!(!serve.lines().any(|l| l == "first"));
}

#[test]
fn log_drops_its_oldest_lines_whole_to_make_room() {
    let (peer, _) = peers();
    // Each line costs its length and a newline: 4 + 4 + 4 fill 12 bytes.
    let mut serve: Serve<12> = serving(peer, &["one", "two", "six"]);
    assert_eq!(serve.log_len(), 12);
    serve.event(&message(peer, "ten\nmo"), Instant::ZERO);
    assert_eq!(serve.lines().collect::<Vec<_>>(), ["six", "ten\nmo"]);
    assert_eq!(serve.log_len(), 4 + 7);
}

#[test]
fn a_line_that_fills_the_whole_log_is_kept_alone() {
    let (peer, _) = peers();
    let mut serve: Serve<12> = serving(peer, &["one", "two"]);
    serve.event(&message(peer, "eleven byte"), Instant::ZERO);
    assert_eq!(serve.lines().collect::<Vec<_>>(), ["eleven byte"]);
    assert_eq!(serve.log_len(), 12);
}

#[test]
fn a_line_longer_than_the_whole_log_leaves_it_empty() {
    let (peer, _) = peers();
    let mut serve: Serve<12> = serving(peer, &["one"]);
    serve.event(&message(peer, "much too long"), Instant::ZERO);
    assert_eq!(serve.lines().count(), 0);
    assert_eq!(serve.log_len(), 0);
}

#[test]
fn only_the_clients_direct_messages_are_logged() {
    let (peer, other) = peers();
    let mut serve: Serve = serving(peer, &["mine"]);
    serve.event(&message(other, "not the client"), Instant::ZERO);
    let room = Event::Message {
        peer,
        from: "far",
        text: "room text",
        room: Some(meshtalk_core::event::Room {
            origin: Default::default(),
            seq: 1,
        }),
    };
    serve.event(&room, Instant::ZERO);
    assert_eq!(serve.lines().collect::<Vec<_>>(), ["mine"]);
}

#[test]
fn client_is_disconnected_once_its_log_is_sent_and_confirmed() {
    let (peer, _) = peers();
    let mut serve: Serve = serving(peer, &["a"]);
    serve.event(&message(peer, QUIT), at(0));
    poll(&mut serve);
    serve.event(&sent(peer, 7), at(0));
    assert!(poll(&mut serve).is_empty(), "not before the receipt");
    serve.event(&delivered(peer, 7), at(1));
    assert_eq!(poll(&mut serve), [Did::Disconnect]);
    assert_eq!(serve.deadline(), None);
}

#[test]
fn a_text_client_is_disconnected_once_its_log_is_sent() {
    let (peer, _) = peers();
    let mut serve: Serve = serving(peer, &["a"]);
    serve.event(&message(peer, QUIT), at(0));
    poll(&mut serve);
    let no_receipt: Event<&str> = Event::Sent {
        peer,
        id: 1,
        receipt: false,
    };
    serve.event(&no_receipt, at(0));
    assert_eq!(poll(&mut serve), [Did::Disconnect]);
}

#[test]
fn client_is_disconnected_after_the_wait_when_its_log_is_not_confirmed() {
    let (peer, _) = peers();
    let mut serve: Serve = serving(peer, &["a"]);
    serve.event(&message(peer, QUIT), at(0));
    poll(&mut serve);
    serve.event(&sent(peer, 7), at(0));
    assert_eq!(serve.deadline(), Some(at(0) + SERVE_RECEIPT_WAIT));
    serve.timeout(at(0) + SERVE_RECEIPT_WAIT);
    assert_eq!(poll(&mut serve), [Did::Disconnect]);
    assert_eq!(serve.deadline(), None);
    serve.timeout(at(60));
    assert!(poll(&mut serve).is_empty(), "disconnected once");
}

#[test]
fn every_piece_of_the_log_is_waited_for_before_the_disconnect() {
    let (peer, _) = peers();
    let line = "x".repeat(MAX - 1);
    let mut serve: Serve = serving(peer, &[&line, &line, &line]);
    serve.event(&message(peer, QUIT), at(0));
    assert_eq!(
        serve.poll_action(),
        Some(Action::LogSent { peer, lines: 3 })
    );
    for id in 0..3 {
        // Each piece's `sent` and receipt come while it is carried out, before the
        // next is polled: the pieces left are not touched by them.
        assert_eq!(serve.poll_action(), Some(Action::Send(line.as_str())));
        serve.event(&sent(peer, id), at(0));
        serve.event(&delivered(peer, id), at(0));
    }
    assert_eq!(poll(&mut serve), [Did::Disconnect]);
}

#[test]
fn only_the_closing_clients_sends_and_receipts_count_for_its_log() {
    let (peer, other) = peers();
    let mut serve: Serve = serving(peer, &["a"]);
    serve.event(&message(peer, QUIT), at(0));
    poll(&mut serve);
    serve.event(&sent(other, 1), at(0));
    serve.event(&delivered(other, 1), at(0));
    assert!(poll(&mut serve).is_empty());
    serve.event(&sent(peer, 7), at(0));
    serve.event(&delivered(other, 7), at(0));
    assert!(poll(&mut serve).is_empty());
    serve.event(&delivered(peer, 7), at(0));
    assert_eq!(poll(&mut serve), [Did::Disconnect]);
}

#[test]
fn a_refused_piece_is_not_waited_for() {
    let (peer, _) = peers();
    let mut serve: Serve = serving(peer, &[]);
    serve.event(&message(peer, QUIT), at(0));
    assert_eq!(
        poll(&mut serve),
        [Did::LogSent(peer, 0), Did::Send(String::new())]
    );
    serve.refused(at(0));
    assert_eq!(poll(&mut serve), [Did::Disconnect]);
}

#[test]
fn a_client_that_leaves_while_its_log_goes_back_gets_no_more_of_it() {
    let (peer, _) = peers();
    let line = "x".repeat(MAX - 1);
    let mut serve: Serve = serving(peer, &[&line, &line]);
    serve.event(&message(peer, QUIT), at(0));
    serve.poll_action();
    serve.poll_action();
    serve.event(&disconnected(peer), at(0));
    assert!(poll(&mut serve).is_empty());
    assert_eq!(serve.deadline(), None);
}

#[test]
fn a_new_client_while_a_log_goes_back_gets_none_of_it() {
    let (peer, other) = peers();
    let line = "x".repeat(MAX - 1);
    let mut serve: Serve = serving(peer, &[&line, &line]);
    serve.event(&message(peer, QUIT), at(0));
    serve.poll_action();
    serve.poll_action();
    // The node lets a client in only once the last is gone; were it not so, what
    // is left of the old log still goes to nobody.
    serve.event(&connected(other), at(0));
    serve.event(&message(other, "new"), at(0));
    assert!(poll(&mut serve).is_empty());
    assert_eq!(serve.lines().collect::<Vec<_>>(), ["new"]);
}

#[test]
fn the_next_client_gets_a_fresh_log() {
    let (peer, other) = peers();
    let mut serve: Serve = serving(peer, &["old"]);
    serve.event(&message(peer, QUIT), at(0));
    poll(&mut serve);
    serve.event(&message(peer, "after quit"), at(0));
    serve.event(&disconnected(peer), at(0));
    serve.event(&connected(other), at(1));
    serve.event(&message(other, "new"), at(1));
    serve.event(&message(other, QUIT), at(1));
    assert_eq!(
        poll(&mut serve),
        [Did::LogSent(other, 1), Did::Send("new".to_string())]
    );
}

#[test]
fn a_client_that_leaves_without_quit_takes_its_log_with_it() {
    let (peer, other) = peers();
    let mut serve: Serve = serving(peer, &["gone"]);
    serve.event(&disconnected(peer), at(0));
    assert_eq!(serve.lines().count(), 0);
    serve.event(&connected(other), at(1));
    serve.event(&message(other, QUIT), at(1));
    assert_eq!(
        poll(&mut serve),
        [Did::LogSent(other, 0), Did::Send(String::new())]
    );
}

#[test]
fn serve_answers_its_own_help_and_goes_on_when_input_ends() {
    let mut serve: Serve = Serve::new(MAX);
    assert!(matches!(
        serve.line("help", Grammar::Commands, at(0)),
        Line::Answered(Answer::Help(_))
    ));
    assert!(matches!(
        serve.line("connect a 1", Grammar::Commands, at(0)),
        Line::Answered(Answer::NotHere { .. })
    ));
    assert_eq!(
        serve.line("disconnect", Grammar::Commands, at(0)),
        Line::Command
    );
    assert!(serve.end_of_input(at(0)));
    assert!(!serve.chats());
}
