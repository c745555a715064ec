//! End to end: the command language at the chat prompt, on a pseudo-terminal. Plain
//! text is a message (to the room in `mesh`, to the peer in `chat`), `/` forms as IRC
//! users type them, did-you-mean for typos, and Tab completion. The other side is a
//! piped `--json` node, so what arrived can be checked exactly. Every child gets a
//! temporary HOME (no developer's history is read or written); every wait is bounded.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::home::TempDir;
use common::pty::{leave, spawn_at_a_terminal, type_in};
use rexpect::session::PtySession;
use serde_json::Value;

use common::proc::Proc;

/// The longest any one expected output may take.
const WAIT: Duration = Duration::from_secs(10);

/// `meshtalk <mode> --name <name>` listening on loopback, on a pseudo-terminal, with
/// its HOME in `home`, no colour; waits for its prompt. Returns the session and port.
fn at_a_terminal(home: &Path, mode: &str, name: &str) -> (PtySession, u16) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_meshtalk"));
    command
        .args([mode, "--port", "0", "--bind", "127.0.0.1", "--name", name])
        .env("HOME", home)
        .env("XDG_STATE_HOME", home.join("state"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("TERM", "xterm")
        .env("NO_COLOR", "1")
        .env_remove("TERM_PROGRAM")
        .env_remove("RUST_LOG");
    spawn_at_a_terminal(command, WAIT)
}

/// A piped `meshtalk <mode> --json` named `name` that connects to `port`; the terminal
/// session is told of it.
fn joins(mode: &str, name: &str, session: &mut PtySession, port: u16) -> Proc {
    let args = [
        mode,
        "--json",
        "--port",
        "0",
        "--bind",
        "127.0.0.1",
        "--name",
        name,
    ];
    let mut peer = Proc::meshtalk(name, &args);
    peer.type_line(&format!("connect 127.0.0.1 {port}"));
    peer.expect("connected", WAIT, |_| true);
    session
        .exp_regex(&format!("connected.* #[0-9]+ [^ ]*{name}"))
        .expect("the peer joined");
    peer
}

/// The next message the peer got: (from, text, whether it came as a room message).
fn next_message(peer: &Proc) -> (String, String, bool) {
    let m: Value = peer.expect("message", WAIT, |_| true);
    (
        m["from"].as_str().unwrap_or_default().to_string(),
        m["text"].as_str().unwrap_or_default().to_string(),
        m["broadcast"] == true,
    )
}

fn message(from: &str, text: &str, room: bool) -> (String, String, bool) {
    (from.to_string(), text.to_string(), room)
}

#[test]
fn plain_text_at_the_mesh_prompt_goes_to_the_room() {
    let home = TempDir::new("slash-room");
    let (mut alice, port) = at_a_terminal(home.path(), "mesh", "alice");
    let bob = joins("mesh", "bob", &mut alice, port);
    type_in(&mut alice, "all good here, anyone about?\r");
    alice
        .exp_string("you (room): all good here, anyone about?")
        .expect("own room line");
    assert_eq!(
        next_message(&bob),
        message("alice", "all good here, anyone about?", true)
    );
    leave(alice);
}

#[test]
fn plain_text_at_the_chat_prompt_goes_to_the_peer() {
    let home = TempDir::new("slash-chat");
    let (mut alice, port) = at_a_terminal(home.path(), "chat", "alice");
    let bob = joins("chat", "bob", &mut alice, port);
    type_in(&mut alice, "q: are you there?\r");
    alice
        .exp_string("you -> bob: q: are you there?")
        .expect("own line");
    assert_eq!(
        next_message(&bob),
        message("alice", "q: are you there?", false)
    );
    leave(alice);
}

#[test]
fn msg_and_me_and_say_send_what_irc_users_expect() {
    let home = TempDir::new("slash-msg");
    let (mut alice, port) = at_a_terminal(home.path(), "mesh", "alice");
    let bob = joins("mesh", "bob", &mut alice, port);
    type_in(&mut alice, "/msg bob psst\r");
    alice
        .exp_string("you -> bob: psst")
        .expect("own direct line");
    assert_eq!(next_message(&bob), message("alice", "psst", false));
    type_in(&mut alice, "/me waves\r");
    alice
        .exp_string("you (room): * alice waves")
        .expect("own action");
    assert_eq!(next_message(&bob), message("alice", "* alice waves", true));
    type_in(&mut alice, "/say exit is a seed word\r");
    assert_eq!(
        next_message(&bob),
        message("alice", "exit is a seed word", true)
    );
    leave(alice);
}

#[test]
fn nick_tells_the_peer_which_shows_the_new_name() {
    let home = TempDir::new("slash-nick");
    let (mut alice, port) = at_a_terminal(home.path(), "mesh", "alice");
    let bob = joins("mesh", "bob", &mut alice, port);
    type_in(&mut alice, "/nick carl\r");
    alice
        .exp_string("you are now known as carl")
        .expect("own new name");
    let alias = bob.expect("alias", WAIT, |_| true);
    assert_eq!(alias["alias"], "carl", "{alias}");
    type_in(&mut alice, "hello again\r");
    assert_eq!(next_message(&bob), message("carl", "hello again", true));
    leave(alice);
}

#[test]
fn who_lists_the_peers() {
    let home = TempDir::new("slash-who");
    let (mut alice, port) = at_a_terminal(home.path(), "mesh", "alice");
    let _bob = joins("mesh", "bob", &mut alice, port);
    type_in(&mut alice, "/who\r");
    alice
        .exp_regex(r"#1 bob \(127\.0\.0\.1:[0-9]+, in, ")
        .expect("bob listed");
    leave(alice);
}

#[test]
fn a_typo_of_a_command_word_is_not_sent_but_answered_with_the_word_meant() {
    let home = TempDir::new("slash-typo");
    let (mut alice, port) = at_a_terminal(home.path(), "mesh", "alice");
    let bob = joins("mesh", "bob", &mut alice, port);
    type_in(&mut alice, "sned bob hi\r");
    alice
        .exp_string("unknown command 'sned'; did you mean 'send'? (/say sends it as text)")
        .expect("the suggestion");
    type_in(&mut alice, "/sned bob hi\r");
    alice
        .exp_string("unknown command '/sned'; did you mean '/send'?")
        .expect("the slash suggestion");
    type_in(&mut alice, "after the typos\r");
    // Bob's first message is the line after the typos: neither reached him.
    assert_eq!(
        next_message(&bob),
        message("alice", "after the typos", true)
    );
    leave(alice);
}

#[test]
fn tab_completes_a_command_word_and_an_alias() {
    let home = TempDir::new("slash-tab");
    let (mut alice, port) = at_a_terminal(home.path(), "mesh", "alice");
    let bob = joins("mesh", "bob", &mut alice, port);
    // `/ms` has one completion, `/msg`; `b` one alias, `bob`.
    type_in(&mut alice, "/ms\t");
    alice.exp_string("/msg ").expect("the command completed");
    type_in(&mut alice, "b\t");
    alice.exp_string("/msg bob ").expect("the alias completed");
    type_in(&mut alice, "tabbed\r");
    assert_eq!(next_message(&bob), message("alice", "tabbed", false));
    leave(alice);
}

#[test]
fn tab_lists_the_matches_when_there_are_several() {
    let home = TempDir::new("slash-list");
    let (mut alice, port) = at_a_terminal(home.path(), "mesh", "alice");
    let _bob = joins("mesh", "bob", &mut alice, port);
    let _bobby = joins("mesh", "bobby", &mut alice, port);
    type_in(&mut alice, "/m\t");
    alice.exp_regex(r"/msg +/me").expect("both commands listed");
    // The line is as it was: finish it as a direct message to one of two aliases.
    type_in(&mut alice, "sg bo\t");
    alice.exp_regex(r"bob +bobby").expect("both aliases listed");
    // Ctrl-C clears the half-typed line, so that Ctrl-D ends the input.
    alice.send_control('c').expect("ctrl-c");
    leave(alice);
}
