//! `meshtalk` on a pseudo-terminal (rexpect), as a person at a terminal runs it.

use std::process::Command;
use std::time::Duration;

use rexpect::session::{PtySession, spawn_command};

use super::home::has_home;

/// Starts `command` (a `meshtalk` mode with `--bind 127.0.0.1`, living in a home
/// of its own: [`super::home::live_in`]) on a pseudo-terminal, each expectation
/// bounded by `wait`, and waits for its prompt. Returns the session and the port
/// it listens on.
pub fn spawn_at_a_terminal(mut command: Command, wait: Duration) -> (PtySession, u16) {
    super::proc::quiet_on_the_lan(&mut command);
    assert!(
        has_home(&command),
        "give meshtalk on a terminal a home of its own (common::home::live_in): \
         it keeps its identity there"
    );
    let timeout = u64::try_from(wait.as_millis()).expect("ms");
    let mut session = spawn_command(command, Some(timeout)).expect("start meshtalk on a pty");
    let (_, listening) = session
        .exp_regex(r"listening on 127\.0\.0\.1:[0-9]+")
        .expect("listening line");
    let port = listening
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    session.exp_string("meshtalk> ").expect("the prompt");
    (session, port)
}

/// Types `text` at the session's terminal.
pub fn type_in(session: &mut PtySession, text: &str) {
    session.send(text).expect("type");
    session.flush().expect("flush");
}

/// Ends the session with Ctrl-D and waits for the process to exit. A Ctrl-D that
/// comes while the line editor is between two lines (the terminal back in cooked
/// mode for a moment) is taken by the terminal as end-of-line, not by meshtalk: as
/// a person would, press it again if the first went unseen (at most three times).
pub fn leave(mut session: PtySession) {
    let mut last = None;
    for _ in 0..3 {
        session.send_control('d').expect("ctrl-d");
        match session.exp_eof() {
            Ok(_) => return,
            Err(e) => last = Some(e),
        }
    }
    panic!("meshtalk exits: {last:?}");
}
