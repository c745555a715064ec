//! End to end: `meshtalk mesh` at a terminal (a pseudo-terminal), with a second,
//! piped `--json` node as its peer; and the diagnostics flags. Every wait is
//! bounded; children are killed on drop (rexpect's session does it for the pty).

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc::channel;
use std::thread;
use std::time::Duration;

use common::home::{TempDir, live_in};
use common::proc::{Proc as Node, port_of};
use common::pty::spawn_at_a_terminal;
use rexpect::session::PtySession;

/// The longest any one expected output may take.
const WAIT: Duration = Duration::from_secs(10);
/// A colour (SGR) escape sequence: ESC [ digits and semicolons, then `m`.
const SGR: &str = "\x1b\\[[0-9;]*m";

/// Starts `meshtalk mesh` named alice on a pseudo-terminal (stdin, stdout and
/// stderr), living in `home`; `colour` leaves `NO_COLOR` unset. Returns the
/// session and its port.
fn alice_at_a_terminal(home: &TempDir, colour: bool) -> (PtySession, u16) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_meshtalk"));
    live_in(&mut command, home.path());
    command
        .args([
            "mesh",
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--name",
            "alice",
            // Never the developer's saved history.
            "--no-history",
        ])
        .env_remove("RUST_LOG")
        .env("TERM", "xterm");
    if colour {
        command.env_remove("NO_COLOR");
    } else {
        command.env("NO_COLOR", "1");
    }
    spawn_at_a_terminal(command, WAIT)
}

impl Node {
    /// A running `meshtalk mesh --json` with piped stdin and stdout.
    fn start(name: &str) -> Node {
        Node::mesh(name, 0, &["--json"])
    }
}

#[test]
fn message_is_printed_above_a_half_typed_line_which_is_then_sent_whole() {
    let home = TempDir::new("prompt");
    let (mut alice, port) = alice_at_a_terminal(&home, false);
    alice.send("send bob hel").expect("type");
    alice.flush().expect("flush");
    alice
        .exp_string("send bob hel")
        .expect("the typed text echoed");

    let mut bob = Node::start("bob");
    bob.type_lines(&format!("connect 127.0.0.1 {port}\n"));
    bob.expect("connected", WAIT, |_| true);
    bob.type_lines("send alice hi from bob\n");
    alice.exp_string("bob: hi from bob").expect("the message");
    // The prompt and the half-typed text are drawn again below the message.
    alice
        .exp_string("meshtalk> send bob hel")
        .expect("the half-typed line redrawn");

    alice.send("lo\r").expect("type");
    alice.flush().expect("flush");
    let message = bob.expect("message", WAIT, |_| true);
    assert_eq!(message["from"], "alice");
    assert_eq!(message["text"], "hello");
}

#[test]
fn ctrl_d_at_the_prompt_says_goodbye_and_exits() {
    let home = TempDir::new("prompt");
    let (mut alice, port) = alice_at_a_terminal(&home, false);
    let mut bob = Node::start("bob");
    bob.type_lines(&format!("connect 127.0.0.1 {port}\n"));
    bob.expect("connected", WAIT, |_| true);
    alice.exp_string("connected").expect("bob joined");
    alice.send_control('d').expect("ctrl-d");
    let gone = bob.expect("disconnected", WAIT, |_| true);
    assert_eq!(gone["alias"], "alice");
    alice.exp_eof().expect("alice exits");
    assert!(bob.end_input_and_wait(WAIT).success());
}

#[test]
fn with_no_color_set_a_terminal_gets_no_colour() {
    let home = TempDir::new("prompt");
    let (mut alice, _) = alice_at_a_terminal(&home, false);
    alice.send("/frobnicate\r").expect("type");
    alice.flush().expect("flush");
    let (before, error) = alice
        .exp_regex(r"\[[0-9]{2}:[0-9]{2}:[0-9]{2}\] error: unknown command")
        .expect("a plain error line");
    let sgr = regex::Regex::new(SGR).expect("regex");
    assert!(!sgr.is_match(&before), "{before:?}");
    assert!(!sgr.is_match(&error), "{error:?}");
}

#[test]
fn on_a_terminal_with_colour_errors_are_red() {
    let home = TempDir::new("prompt");
    let (mut alice, _) = alice_at_a_terminal(&home, true);
    alice.send("/frobnicate\r").expect("type");
    alice.flush().expect("flush");
    alice
        .exp_string("\x1b[31merror: unknown command '/frobnicate'")
        .expect("a red error");
}

/// Runs a piped `--json` node with `flags` and `RUST_LOG` set to `rust_log`, lets
/// a client connect, ends its input; returns what it wrote on stderr.
fn stderr_of_a_connection(flags: &[&str], rust_log: Option<&str>) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_meshtalk"));
    match rust_log {
        Some(level) => command.env("RUST_LOG", level),
        None => command.env_remove("RUST_LOG"),
    };
    command
        .args(flags)
        .args(["mesh", "--port", "0", "--bind", "127.0.0.1", "--json"])
        .stderr(Stdio::piped());
    let mut node = Node::spawn("node", &mut command);
    let mut stderr = node.child.stderr.take().expect("piped stderr");
    let (tx, rx) = channel();
    thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    let port = port_of(&node.expect("listening", WAIT, |_| true));
    let _client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    node.expect("connected", WAIT, |_| true);
    assert!(node.end_input_and_wait(WAIT).success());
    rx.recv_timeout(WAIT).expect("stderr closed")
}

#[test]
fn quiet_prints_no_diagnostics_even_with_rust_log_debug() {
    let stderr = stderr_of_a_connection(&["-q"], Some("debug"));
    assert_eq!(stderr, "");
}

#[test]
fn verbose_prints_debug_diagnostics_on_stderr() {
    let stderr = stderr_of_a_connection(&["-v"], None);
    assert!(
        stderr.contains("meshtalk: debug: accepted 127.0.0.1:"),
        "{stderr}"
    );
}

#[test]
fn rust_log_debug_prints_what_verbose_prints() {
    let stderr = stderr_of_a_connection(&[], Some("debug"));
    assert!(
        stderr.contains("meshtalk: debug: accepted 127.0.0.1:"),
        "{stderr}"
    );
}

#[test]
fn without_flags_a_quiet_session_prints_no_debug_lines() {
    let stderr = stderr_of_a_connection(&[], None);
    assert!(!stderr.contains("debug:"), "{stderr}");
}
