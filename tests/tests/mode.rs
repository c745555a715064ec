//! The modes' rules, one behaviour each, driven with plain calls: events in,
//! actions polled out, time jumped. The helpers here serve the server's and the
//! client's tests too (`mode/serve.rs`, `mode/client.rs` beside this file).

use std::net::SocketAddr;

pub(crate) use meshtalk_core::command::Grammar;
pub(crate) use meshtalk_core::event::Event;
use meshtalk_core::event::{Kind, Reason};
pub(crate) use meshtalk_core::mode::*;
pub(crate) use meshtalk_core::offer::Answer;
pub(crate) use meshtalk_core::peers::PeerId;
use meshtalk_core::peers::{Direction, PeerTable};
pub(crate) use meshtalk_core::time::Instant;

#[path = "mode/client.rs"]
mod client;
#[path = "mode/serve.rs"]
mod serve;

/// The longest message in these tests.
pub(crate) const MAX: usize = 100;

/// An action with its text copied out, as a shell does before carrying it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Did {
    Connect(String, u16),
    Send(String),
    Disconnect,
    Error(ClientError),
    LogSent(PeerId, usize),
    Log(Vec<String>),
    Quit(u8),
}

pub(crate) fn did(action: Action<'_>) -> Did {
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
pub(crate) fn poll(mode: &mut impl Mode) -> Vec<Did> {
    let mut out = Vec::new();
    while let Some(action) = mode.poll_action() {
        out.push(did(action));
    }
    out
}

/// Two peers' ids, as a node hands them out.
pub(crate) fn peers() -> (PeerId, PeerId) {
    let mut table: PeerTable<(), 2> = PeerTable::new(2);
    let mut one = || {
        table
            .insert(None, Direction::Inbound, None, ())
            .expect("a slot")
    };
    (one(), one())
}

pub(crate) fn at(secs: u64) -> Instant {
    Instant::from_millis(secs * 1000)
}

pub(crate) fn addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4000))
}

pub(crate) fn connected(peer: PeerId) -> Event<&'static str> {
    Event::Connected {
        peer,
        alias: "vm",
        addr: addr(),
        direction: Direction::Inbound,
        kind: Kind::Native,
        encrypted: false,
    }
}

pub(crate) fn message(peer: PeerId, text: &str) -> Event<&str> {
    Event::Message {
        peer,
        from: "vm",
        text,
        room: None,
    }
}

pub(crate) fn sent(peer: PeerId, id: u32) -> Event<&'static str> {
    Event::Sent {
        peer,
        id,
        receipt: true,
    }
}

pub(crate) fn delivered(peer: PeerId, id: u32) -> Event<&'static str> {
    Event::Delivered { peer, id }
}

pub(crate) fn disconnected(peer: PeerId) -> Event<&'static str> {
    Event::Disconnected {
        peer,
        alias: "vm",
        reason: Reason::Closed,
    }
}

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

#[test]
fn the_mesh_and_the_chat_end_with_their_input_and_keep_no_deadline() {
    assert!(!Mesh.end_of_input(Instant::ZERO));
    assert!(!Chat.end_of_input(Instant::ZERO));
    assert_eq!(Mesh.deadline(), None);
    assert_eq!(Chat.deadline(), None);
}
