//! The modes' rules, one behaviour each, driven with plain calls: events in,
//! actions polled out, time jumped.

extern crate std;

use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use core::net::SocketAddr;

use super::client::Client;
use super::serve::{QUIT, Serve};
use super::*;
use crate::event::{Kind, Reason};
use crate::limits::{SEND_LOG_WAIT, SERVE_LOG, SERVE_RECEIPT_WAIT, WINDOW};
use crate::peers::{Direction, PeerTable};

/// The longest message in these tests.
const MAX: usize = 100;

/// An action with its text copied out, as a shell does before carrying it out.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Did {
    Connect(String, u16),
    Send(String),
    Disconnect,
    Error(ClientError),
    LogSent(PeerId, usize),
    Log(Vec<String>),
    Quit(u8),
}

fn did(action: Action<'_>) -> Did {
    match action {
        Action::Connect { host, port } => Did::Connect(host.to_string(), port),
        Action::Send(text) => Did::Send(text.to_string()),
        Action::Disconnect => Did::Disconnect,
        Action::Error(e) => Did::Error(e),
        Action::LogSent { peer, lines } => Did::LogSent(peer, lines),
        Action::Log(log) => Did::Log(log.lines().map(String::from).collect()),
        Action::Quit(code) => Did::Quit(code),
    }
}

/// Every action the mode asks for now, in order.
fn poll(mode: &mut impl Mode) -> Vec<Did> {
    let mut out = Vec::new();
    while let Some(action) = mode.poll_action() {
        out.push(did(action));
    }
    out
}

/// Two peers' ids, as a node hands them out.
fn peers() -> (PeerId, PeerId) {
    let mut table: PeerTable<(), 2> = PeerTable::new(2);
    let mut one = || {
        table
            .insert(None, Direction::Inbound, None, ())
            .expect("a slot")
    };
    (one(), one())
}

fn at(secs: u64) -> Instant {
    Instant::from_millis(secs * 1000)
}

fn addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4000))
}

fn connected(peer: PeerId) -> Event<&'static str> {
    Event::Connected {
        peer,
        alias: "vm",
        addr: addr(),
        direction: Direction::Inbound,
        kind: Kind::Native,
        encrypted: false,
    }
}

fn message(peer: PeerId, text: &str) -> Event<&str> {
    Event::Message {
        peer,
        from: "vm",
        text,
        room: None,
    }
}

fn sent(peer: PeerId, id: u32) -> Event<&'static str> {
    Event::Sent {
        peer,
        id,
        receipt: true,
    }
}

fn delivered(peer: PeerId, id: u32) -> Event<&'static str> {
    Event::Delivered { peer, id }
}

fn disconnected(peer: PeerId) -> Event<&'static str> {
    Event::Disconnected {
        peer,
        alias: "vm",
        reason: Reason::Closed,
    }
}

// ---- the two-peer chat and the mesh ----

#[test]
fn the_chat_answers_help_and_refusals_itself_and_leaves_the_rest_to_the_shell() {
    let now = Instant::ZERO;
    let taken = Chat.line("help s", Grammar::Commands, now);
    assert!(
        matches!(taken, Line::Answered(Answer::Help(text)) if text.starts_with("send <message>")),
        "{taken:?}"
    );
    let taken = Chat.line("broadcast hi", Grammar::Commands, now);
    assert!(
        matches!(taken, Line::Answered(Answer::NotHere { .. })),
        "{taken:?}"
    );
    for line in ["send hi there", "all good here", "frob"] {
        assert_eq!(Chat.line(line, Grammar::Chat, now), Line::Command, "{line}");
    }
    assert!(poll(&mut Chat).is_empty());
}

#[test]
fn the_mesh_takes_no_line_and_shows_every_event() {
    let (peer, _) = peers();
    assert_eq!(
        Mesh.line("help", Grammar::Chat, Instant::ZERO),
        Line::Command
    );
    assert!(Mesh.event(&message(peer, "hi"), Instant::ZERO));
    assert!(Mesh.chats() && Chat.chats());
}

// ---- the one-way server ----

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
        room: Some(crate::event::Room {
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

// ---- the one-way client ----

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
    let host = "h".repeat(crate::limits::MAX_HOST + 1);
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
