//! The one-way client's rules.

use crate::*;
use meshtalk_core::limits::{SEND_LOG_WAIT, WINDOW};
use meshtalk_core::mode::client::Client;
use meshtalk_core::mode::serve::QUIT;

/// A small client: a queue of 16 bytes, a log of 16 bytes.
type Small = Client<16, 16>;

/// A client that dialled and is connected to `peer`.
fn dialled<const Q: usize, const L: usize>(peer: PeerId) -> Client<Q, L> {
    let mut client = Client::new("server", 7000, MAX);
    client.start(at(0));
    assert_eq!(
        poll(&mut client),
        [Did::Connect("server".to_string(), 7000)]
    );
    client.event(&connected(peer), at(0));
    client
}

fn send(text: &str) -> Did {
    Did::Send(text.to_string())
}

#[test]
fn client_dials_the_server_first() {
    let mut client: Client = Client::new("example.org", 7000, MAX);
    client.start(at(0));
    assert_eq!(
        poll(&mut client),
        [Did::Connect("example.org".to_string(), 7000)]
    );
}

#[test]
fn client_sends_nothing_before_it_is_connected() {
    let (peer, _) = peers();
    let mut client: Client = Client::new("server", 7000, MAX);
    client.start(at(0));
    poll(&mut client);
    assert_eq!(client.line("hi", Grammar::Commands, at(0)), Line::Taken);
    assert!(poll(&mut client).is_empty());
    client.event(&connected(peer), at(0));
    assert_eq!(poll(&mut client), [send("hi")]);
}

#[test]
fn client_sends_one_line_at_a_time() {
    let (peer, _) = peers();
    let mut client: Client = dialled(peer);
    client.line("one", Grammar::Commands, at(0));
    client.line("two", Grammar::Commands, at(0));
    assert_eq!(poll(&mut client), [send("one")]);
    client.event(&sent(peer, 1), at(0));
    assert_eq!(poll(&mut client), [send("two")]);
}

#[test]
fn client_keeps_at_most_a_window_of_messages_unconfirmed() {
    let (peer, _) = peers();
    let mut client: Client = dialled(peer);
    for n in 0..=WINDOW {
        client.line(&format!("m{n}"), Grammar::Commands, at(0));
    }
    for n in 0..WINDOW {
        assert_eq!(poll(&mut client), [send(&format!("m{n}"))]);
        client.event(&sent(peer, n as u32), at(0));
    }
    assert!(poll(&mut client).is_empty(), "the window is full");
    client.event(&delivered(peer, 0), at(0));
    assert_eq!(poll(&mut client), [send(&format!("m{WINDOW}"))]);
}

#[test]
fn client_with_a_full_queue_says_not_yet_and_takes_the_line_once_one_left() {
    let (peer, _) = peers();
    let mut client: Small = Client::new("server", 7000, MAX);
    // Not connected: nothing leaves; 16 bytes hold two lines of 7 and their ends.
    assert_eq!(
        client.line("aaaaaaa", Grammar::Commands, at(0)),
        Line::Taken
    );
    assert_eq!(
        client.line("bbbbbbb", Grammar::Commands, at(0)),
        Line::Taken
    );
    assert_eq!(client.line("c", Grammar::Commands, at(0)), Line::NotYet);
    assert_eq!(client.queued(), 16);
    client.event(&connected(peer), at(0));
    assert_eq!(poll(&mut client), [send("aaaaaaa")]);
    assert_eq!(client.line("c", Grammar::Commands, at(0)), Line::Taken);
}

#[test]
fn a_long_script_gets_every_line_to_the_server_in_order() {
    let (peer, _) = peers();
    let mut client: Small = dialled(peer);
    let lines: Vec<String> = (0..5000).map(|n| format!("l{n}")).collect();
    let mut got = Vec::new();
    let mut id = 0;
    // The shell's loop: a line not taken yet is offered again after the events
    // that carrying out the polled sends brought.
    let mut carry_out = |client: &mut Small, got: &mut Vec<String>| {
        while let Some(action) = client.poll_action() {
            if let Did::Send(text) = did(action) {
                got.push(text);
                client.event(&sent(peer, id), at(0));
                client.event(&delivered(peer, id), at(0));
                id += 1;
            }
        }
    };
    for line in &lines {
        let mut tries = 0;
        while client.line(line, Grammar::Commands, at(0)) == Line::NotYet {
            tries += 1;
            assert!(tries < 3, "{line} never taken");
            carry_out(&mut client, &mut got);
        }
    }
    assert!(client.end_of_input(at(0)));
    carry_out(&mut client, &mut got);
    assert_eq!(got.pop().as_deref(), Some(QUIT));
    assert_eq!(got, lines);
}

#[test]
fn quit_goes_after_the_lines_queued_and_later_lines_are_ignored() {
    let (peer, _) = peers();
    let mut client: Client = dialled(peer);
    client.line("one", Grammar::Commands, at(0));
    client.line("two", Grammar::Commands, at(0));
    client.line(QUIT, Grammar::Commands, at(0));
    assert_eq!(client.line("late", Grammar::Commands, at(0)), Line::Taken);
    let mut got = Vec::new();
    for id in 0..4 {
        got.extend(poll(&mut client));
        client.event(&sent(peer, id), at(0));
    }
    assert_eq!(got, [send("one"), send("two"), send(QUIT)]);
}

#[test]
fn an_empty_line_sends_nothing() {
    let (peer, _) = peers();
    let mut client: Client = dialled(peer);
    assert_eq!(client.line("", Grammar::Commands, at(0)), Line::Taken);
    assert!(poll(&mut client).is_empty());
}

#[test]
fn end_of_input_asks_for_the_log_and_goes_on() {
    let (peer, _) = peers();
    let mut client: Client = dialled(peer);
    assert!(client.end_of_input(at(0)));
    assert_eq!(poll(&mut client), [send(QUIT)]);
    client.event(&sent(peer, 1), at(2));
    assert_eq!(client.deadline(), Some(at(2) + SEND_LOG_WAIT));
}

/// A client that sent `quit` to `peer` at 0 s.
fn asked<const Q: usize, const L: usize>(peer: PeerId) -> Client<Q, L> {
    let mut client = dialled(peer);
    client.end_of_input(at(0));
    poll(&mut client);
    client.event(&sent(peer, 1), at(0));
    client
}

#[test]
fn the_log_is_not_shown_as_messages_and_ends_the_program_with_0() {
    let (peer, _) = peers();
    let mut client: Client = asked(peer);
    assert!(!client.event(&message(peer, "a\nb"), at(1)));
    assert!(!client.event(&message(peer, ""), at(1)));
    assert!(!client.event(&message(peer, "c"), at(1)));
    client.event(&disconnected(peer), at(1));
    assert_eq!(
        poll(&mut client),
        [
            Did::Log(["a", "b", "c"].map(String::from).to_vec()),
            Did::Quit(0)
        ]
    );
}

#[test]
fn an_empty_log_is_a_log_of_no_lines() {
    let (peer, _) = peers();
    let mut client: Client = asked(peer);
    client.event(&message(peer, ""), at(1));
    client.event(&disconnected(peer), at(1));
    assert_eq!(poll(&mut client), [Did::Log(Vec::new()), Did::Quit(0)]);
}

#[test]
fn no_log_within_the_wait_ends_the_program_with_1() {
    let (peer, _) = peers();
    let mut client: Client = asked(peer);
    client.timeout(at(0) + SEND_LOG_WAIT);
    assert_eq!(
        poll(&mut client),
        [Did::Error(ClientError::NoLog(SEND_LOG_WAIT)), Did::Quit(1)]
    );
    assert_eq!(client.deadline(), None);
    assert_eq!(
        ClientError::NoLog(SEND_LOG_WAIT).to_string(),
        "no log from the server within 10 s"
    );
}

#[test]
fn a_log_that_came_before_the_wait_ended_is_shown() {
    let (peer, _) = peers();
    let mut client: Client = asked(peer);
    client.event(&message(peer, "x"), at(1));
    client.timeout(at(0) + SEND_LOG_WAIT);
    assert_eq!(
        poll(&mut client),
        [Did::Log(["x".to_string()].to_vec()), Did::Quit(0)]
    );
}

#[test]
fn the_server_closing_before_quit_is_an_error() {
    let (peer, _) = peers();
    let mut client: Client = dialled(peer);
    client.event(&disconnected(peer), at(0));
    assert_eq!(
        poll(&mut client),
        [Did::Error(ClientError::ClosedBeforeAsking), Did::Quit(1)]
    );
}

#[test]
fn the_server_closing_after_quit_without_a_log_is_an_error() {
    let (peer, _) = peers();
    let mut client: Client = asked(peer);
    client.event(&disconnected(peer), at(1));
    assert_eq!(
        poll(&mut client),
        [Did::Error(ClientError::ClosedWithoutLog), Did::Quit(1)]
    );
}

#[test]
fn a_refused_quit_ends_the_program_with_1() {
    let (peer, _) = peers();
    let mut client: Client = dialled(peer);
    client.end_of_input(at(0));
    assert_eq!(poll(&mut client), [send(QUIT)]);
    client.refused(at(0));
    assert_eq!(
        poll(&mut client),
        [Did::Error(ClientError::CouldNotAsk), Did::Quit(1)]
    );
}

#[test]
fn a_refused_line_lets_the_next_one_go() {
    let (peer, _) = peers();
    let mut client: Client = dialled(peer);
    client.line("one", Grammar::Commands, at(0));
    client.line("two", Grammar::Commands, at(0));
    assert_eq!(poll(&mut client), [send("one")]);
    client.refused(at(0));
    assert_eq!(poll(&mut client), [send("two")]);
}

#[test]
fn a_failed_or_refused_dial_ends_the_program_with_1() {
    let (peer, _) = peers();
    let mut client: Client = Client::new("server", 7000, MAX);
    client.start(at(0));
    poll(&mut client);
    client.refused(at(0));
    assert_eq!(poll(&mut client), [Did::Quit(1)]);
    let failed = Event::ConnectFailed {
        peer,
        alias: "server",
        reason: "refused",
    };
    client.event(&failed, at(0));
    assert_eq!(poll(&mut client), [Did::Quit(1)]);
}

#[test]
fn a_line_longer_than_a_message_is_an_error_and_the_next_one_goes() {
    let (peer, _) = peers();
    let mut client: Client = dialled(peer);
    let long = "x".repeat(MAX + 1);
    assert_eq!(client.line(&long, Grammar::Commands, at(0)), Line::Taken);
    client.line("short", Grammar::Commands, at(0));
    let too_long = ClientError::TooLong {
        len: MAX + 1,
        max: MAX,
    };
    assert_eq!(poll(&mut client), [Did::Error(too_long), send("short")]);
    assert_eq!(
        too_long.to_string(),
        "message of 101 bytes is too long (max 100)"
    );
}

#[test]
fn a_line_too_long_for_the_queue_is_an_error_not_a_wait() {
    let (peer, _) = peers();
    let mut client: Small = dialled(peer);
    assert_eq!(client.max_text(), 15);
    let long = "x".repeat(16);
    assert_eq!(client.line(&long, Grammar::Commands, at(0)), Line::Taken);
    assert_eq!(
        poll(&mut client),
        [Did::Error(ClientError::TooLong { len: 16, max: 15 })]
    );
}

#[test]
fn a_host_name_too_long_is_an_error_and_no_dial() {
    let host = "h".repeat(meshtalk_core::limits::MAX_HOST + 1);
    let mut client: Client = Client::new(&host, 7000, MAX);
    client.start(at(0));
    assert_eq!(
        poll(&mut client),
        [Did::Error(ClientError::HostTooLong), Did::Quit(1)]
    );
}

#[test]
fn a_log_longer_than_the_client_keeps_is_cut_and_said() {
    let (peer, _) = peers();
    let mut client: Small = asked(peer);
    client.event(&message(peer, "0123456789"), at(1));
    client.event(&message(peer, "abcdef"), at(1));
    client.event(&message(peer, "z"), at(1));
    client.event(&disconnected(peer), at(1));
    assert_eq!(
        poll(&mut client),
        [
            Did::Log(["0123456789".to_string()].to_vec()),
            Did::Error(ClientError::LogCut { kept: 16 }),
            Did::Quit(0)
        ]
    );
}

#[test]
fn messages_to_a_text_server_await_no_receipt() {
    let (peer, _) = peers();
    let mut client: Client = dialled(peer);
    for n in 0..=WINDOW {
        client.line(&format!("m{n}"), Grammar::Commands, at(0));
    }
    let no_receipt = |id| Event::<&str>::Sent {
        peer,
        id,
        receipt: false,
    };
    for n in 0..=WINDOW {
        assert_eq!(poll(&mut client), [send(&format!("m{n}"))]);
        client.event(&no_receipt(n as u32), at(0));
    }
}

#[test]
fn an_undelivered_message_frees_its_place_in_the_window() {
    let (peer, _) = peers();
    let mut client: Client = dialled(peer);
    for n in 0..=WINDOW {
        client.line(&format!("m{n}"), Grammar::Commands, at(0));
    }
    for n in 0..WINDOW {
        poll(&mut client);
        client.event(&sent(peer, n as u32), at(0));
    }
    client.event(&Event::<&str>::Undelivered { peer, id: 0 }, at(0));
    assert_eq!(poll(&mut client), [send(&format!("m{WINDOW}"))]);
}

#[test]
fn a_message_before_quit_is_shown_and_is_no_log() {
    let (peer, _) = peers();
    let mut client: Client = dialled(peer);
    assert!(client.event(&message(peer, "hello from the server"), at(0)));
    client.end_of_input(at(0));
    poll(&mut client);
    client.event(&sent(peer, 1), at(0));
    client.event(&disconnected(peer), at(1));
    assert_eq!(
        poll(&mut client),
        [Did::Error(ClientError::ClosedWithoutLog), Did::Quit(1)]
    );
}

#[test]
fn a_line_handed_out_to_be_sent_leaves_the_queue() {
    let (peer, _) = peers();
    let mut client: Small = dialled(peer);
    client.line("one", Grammar::Commands, at(0));
    client.line("two", Grammar::Commands, at(0));
    assert_eq!(client.queued(), 8);
    assert_eq!(poll(&mut client), [send("one")]);
    assert_eq!(client.queued(), 4);
}

#[test]
fn a_line_of_exactly_the_longest_message_is_sent() {
    let (peer, _) = peers();
    let mut client: Client = dialled(peer);
    let longest = "x".repeat(MAX);
    assert_eq!(client.line(&longest, Grammar::Commands, at(0)), Line::Taken);
    assert_eq!(poll(&mut client), [send(&longest)]);
}
