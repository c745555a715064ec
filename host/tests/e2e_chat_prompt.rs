//! End to end: the chat prompt at a terminal (a pseudo-terminal) and the files
//! around it: the shell completion script, the manual page, the saved history, the
//! transcript. Every child gets a temporary HOME and XDG directories, so no test
//! writes the developer's own history. Every wait is bounded.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::home::TempDir;
use common::pty::{leave, spawn_at_a_terminal, type_in};
use rexpect::session::PtySession;

/// The longest any one expected output may take.
const WAIT: Duration = Duration::from_secs(10);
/// The terminal's Up arrow: the previous line of the history.
const UP: &str = "\x1b[A";

/// `meshtalk` with HOME and the XDG directories in `home`, no `RUST_LOG`.
fn meshtalk_in(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_meshtalk"));
    command
        .env("HOME", home)
        .env("XDG_STATE_HOME", home.join("state"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env_remove("RUST_LOG");
    command
}

/// Starts `meshtalk mesh` named alice on a pseudo-terminal, its HOME in `home`, with
/// `extra` flags and no colour; waits for the prompt. Returns the session and its port.
fn alice_at_a_terminal(home: &Path, extra: &[&str]) -> (PtySession, u16) {
    start_alice(home, extra, false)
}

/// As [`alice_at_a_terminal`]; `colour` leaves `NO_COLOR` unset.
fn start_alice(home: &Path, extra: &[&str], colour: bool) -> (PtySession, u16) {
    start_at_a_terminal(home, "alice", extra, colour)
}

/// `meshtalk mesh` named `name` on a pseudo-terminal, as [`alice_at_a_terminal`].
fn start_at_a_terminal(home: &Path, name: &str, extra: &[&str], colour: bool) -> (PtySession, u16) {
    let mut command = meshtalk_in(home);
    command
        .args(["mesh", "--port", "0", "--bind", "127.0.0.1"])
        .args(["--name", name])
        .args(extra)
        .env("TERM", "xterm")
        // rustyline guesses how the terminal draws joined emoji from it.
        .env_remove("TERM_PROGRAM");
    if colour {
        command.env_remove("NO_COLOR");
    } else {
        command.env("NO_COLOR", "1");
    }
    spawn_at_a_terminal(command, WAIT)
}

/// Runs `meshtalk args` to the end with no input; its output.
fn run(home: &Path, args: &[&str]) -> Output {
    meshtalk_in(home)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run meshtalk")
}

/// Runs `script` with bash, `meshtalk` being the binary under test; its output.
fn bash(script: &str) -> Output {
    let bin = Path::new(env!("CARGO_BIN_EXE_meshtalk"));
    let dir = bin.parent().expect("the binary's directory");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![dir.to_path_buf()];
    paths.extend(std::env::split_paths(&path));
    Command::new("bash")
        .args(["--norc", "--noprofile", "-c", script])
        .env("PATH", std::env::join_paths(paths).expect("a PATH"))
        .stdin(Stdio::null())
        .output()
        .expect("run bash")
}

#[test]
fn the_bash_completion_script_is_valid_bash() {
    let out = bash("meshtalk completions bash | bash -n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn completing_meshtalk_m_offers_mesh_and_man() {
    let out = bash(
        "source <(meshtalk completions bash) || exit 3
         COMP_WORDS=(meshtalk m); COMP_CWORD=1; COMP_LINE='meshtalk m'; COMP_POINT=${#COMP_LINE}
         \"$(complete -p meshtalk | sed -E 's/.*-F ([^ ]+).*/\\1/')\" meshtalk m meshtalk
         printf '%s\\n' \"${COMPREPLY[@]}\"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut offered: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    offered.sort();
    assert_eq!(offered, ["man", "mesh"]);
}

#[test]
fn every_shell_gets_a_completion_script_naming_the_modes() {
    let home = TempDir::new("completions");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = run(home.path(), &["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        for mode in ["mesh", "chat", "serve", "send", "man"] {
            assert!(script.contains(mode), "{shell}: no {mode} in\n{script}");
        }
    }
}

#[test]
fn an_unknown_shell_is_refused_with_the_ones_there_are() {
    let home = TempDir::new("completions");
    let out = run(home.path(), &["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bash") && stderr.contains("zsh"),
        "{stderr}"
    );
}

#[test]
fn the_man_page_renders_with_every_mode_and_its_options() {
    let home = TempDir::new("man");
    let out = run(home.path(), &["man"]);
    assert!(out.status.success());
    let roff = String::from_utf8(out.stdout).expect("the page is UTF-8");
    assert!(
        roff.starts_with(".ie \\n(.g") || roff.contains(".TH meshtalk 1"),
        "{roff}"
    );
    for heading in [
        "MESHTALK MESH",
        "MESHTALK CHAT",
        "MESHTALK SERVE",
        "MESHTALK SEND",
    ] {
        assert!(roff.contains(&format!(".SH \"{heading}\"")), "{heading}");
    }
    let groff = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-P-cbou"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut groff) = groff else {
        eprintln!("no groff here: the roff text was checked, not its rendering");
        return;
    };
    {
        use std::io::Write;
        let mut stdin = groff.stdin.take().expect("piped stdin");
        stdin.write_all(roff.as_bytes()).expect("feed groff");
    }
    let rendered = groff.wait_with_output().expect("groff ends");
    let warnings = String::from_utf8_lossy(&rendered.stderr);
    assert!(rendered.status.success(), "{warnings}");
    assert!(warnings.trim().is_empty(), "groff warned: {warnings}");
    let text = String::from_utf8_lossy(&rendered.stdout);
    // groff may hyphenate or use Unicode hyphens; the words themselves are there.
    let text = text.replace('\u{2010}', "-");
    for words in [
        "MESHTALK MESH",
        "--stall-timeout",
        "[default: 10]",
        "--max-text",
    ] {
        assert!(text.contains(words), "no {words:?} in\n{text}");
    }
}

#[test]
fn a_line_typed_in_one_run_is_found_again_with_up_in_the_next() {
    let home = TempDir::new("history");
    let (mut alice, _) = alice_at_a_terminal(home.path(), &[]);
    type_in(&mut alice, "help connect\r");
    alice.exp_string("Open a connection").expect("the help");
    leave(alice);

    let file = home.path().join("state/meshtalk/history");
    let saved = std::fs::read_to_string(&file).expect("the history file");
    assert!(saved.lines().any(|l| l == "help connect"), "{saved}");
    let mode = std::fs::metadata(&file).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");

    let (mut alice, _) = alice_at_a_terminal(home.path(), &[]);
    type_in(&mut alice, UP);
    alice.exp_string("help connect").expect("the saved line");
    type_in(&mut alice, "\r");
    alice
        .exp_string("Open a connection")
        .expect("the help again");
    leave(alice);
}

#[test]
fn with_no_history_nothing_is_saved() {
    let home = TempDir::new("history");
    let (mut alice, _) = alice_at_a_terminal(home.path(), &["--no-history"]);
    type_in(&mut alice, "help connect\r");
    alice.exp_string("Open a connection").expect("the help");
    leave(alice);
    assert!(!home.path().join("state/meshtalk").exists());
}

#[test]
fn ctrl_c_clears_the_typed_line_and_the_prompt_goes_on() {
    let home = TempDir::new("ctrl-c");
    let (mut alice, _) = alice_at_a_terminal(home.path(), &[]);
    type_in(&mut alice, "send bob half a thought");
    alice.exp_string("half a thought").expect("echoed");
    alice.send_control('c').expect("ctrl-c");
    // Had the line stayed, this would run `send bob half a thoughthelp connect`.
    type_in(&mut alice, "help connect\r");
    alice.exp_string("Open a connection").expect("the help");
    leave(alice);
}

#[test]
fn ctrl_c_on_an_empty_line_warns_and_a_second_one_leaves_saying_goodbye() {
    let home = TempDir::new("ctrl-c");
    let (mut alice, port) = alice_at_a_terminal(home.path(), &[]);
    let mut bob = common::proc::Proc::mesh("bob", 0, &["--json"]);
    bob.type_lines(&format!("connect 127.0.0.1 {port}\n"));
    bob.expect("connected", WAIT, |_| true);
    alice.exp_string("connected").expect("bob joined");
    alice.send_control('c').expect("ctrl-c");
    alice
        .exp_regex("press Ctrl-C again or type (/quit|exit) to leave")
        .expect("the warning");
    alice.send_control('c').expect("ctrl-c again");
    alice
        .exp_string("left 1 peer; goodbye")
        .expect("the goodbye");
    alice.exp_eof().expect("alice exits");
    let gone = bob.expect("disconnected", WAIT, |_| true);
    assert_eq!(gone["alias"], "alice");
}

#[test]
fn a_second_ctrl_c_after_two_seconds_only_warns_again() {
    let home = TempDir::new("ctrl-c");
    let (mut alice, _) = alice_at_a_terminal(home.path(), &[]);
    alice.send_control('c').expect("ctrl-c");
    alice.exp_string("to leave").expect("the warning");
    std::thread::sleep(Duration::from_millis(2300));
    alice.send_control('c').expect("ctrl-c");
    alice.exp_string("to leave").expect("the warning again");
    type_in(&mut alice, "help connect\r");
    alice
        .exp_string("Open a connection")
        .expect("still running");
    leave(alice);
}

#[test]
fn exit_at_the_prompt_says_how_many_peers_it_left() {
    let home = TempDir::new("exit");
    let (mut alice, _) = alice_at_a_terminal(home.path(), &[]);
    type_in(&mut alice, "exit\r");
    alice
        .exp_string("left 0 peers; goodbye")
        .expect("the goodbye");
    alice.exp_eof().expect("alice exits");
}

/// A piped `--json` mesh node named `name`, connected to alice's `port`, and alice
/// told of it.
fn peer_of_alice(name: &str, alice: &mut PtySession, port: u16) -> common::proc::Proc {
    let mut peer = common::proc::Proc::mesh(name, 0, &["--json"]);
    peer.type_lines(&format!("connect 127.0.0.1 {port}\n"));
    peer.expect("connected", WAIT, |_| true);
    alice
        .exp_regex(&format!("connected.* #1 [^ ]*{name}"))
        .expect("the peer joined");
    peer
}

#[test]
fn own_messages_are_shown_as_you_to_whom_what() {
    let home = TempDir::new("said");
    let (mut alice, port) = alice_at_a_terminal(home.path(), &[]);
    let bob = peer_of_alice("bob", &mut alice, port);
    type_in(&mut alice, "send bob hello there\r");
    alice
        .exp_regex(r"\] you -> bob: hello there\r\n")
        .expect("own direct line");
    type_in(&mut alice, "broadcast hi all\r");
    alice
        .exp_regex(r"\] you \(room\): hi all\r\n")
        .expect("own room line");
    let texts: Vec<String> = (0..2)
        .map(|_| bob.expect("message", WAIT, |_| true)["text"].to_string())
        .collect();
    assert_eq!(texts, ["\"hello there\"", "\"hi all\""]);
    leave(alice);
}

#[test]
fn every_json_event_carries_an_rfc_3339_time() {
    let home = TempDir::new("json");
    let mut node = meshtalk_in(home.path())
        .args(["mesh", "--json", "--port", "0", "--bind", "127.0.0.1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start meshtalk");
    {
        use std::io::Write;
        let mut stdin = node.stdin.take().expect("piped stdin");
        stdin.write_all(b"help\nlist\nfrobnicate\n").expect("type");
    }
    let out = node.wait_with_output().expect("meshtalk ends");
    let stamp =
        regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(Z|[+-]\d{2}:\d{2})$")
            .expect("regex");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let events: Vec<&str> = lines.iter().filter_map(|l| l["event"].as_str()).collect();
    assert_eq!(events, ["listening", "help", "peers", "error"]);
    for line in &lines {
        let time = line["time"].as_str().unwrap_or_default();
        assert!(stamp.is_match(time), "{line}");
    }
}

/// The lines of the transcript at `file` with their date-time stamps checked
/// (`2026-12-07 13:05:09 +01:00 `) and cut off.
fn transcript_lines(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).expect("the transcript");
    let stamp =
        regex::Regex::new(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{2}:\d{2} ").expect("regex");
    text.lines()
        .map(|line| {
            let found = stamp
                .find(line)
                .unwrap_or_else(|| panic!("no stamp: {line:?}"));
            line[found.end()..].to_string()
        })
        .collect()
}

#[test]
fn the_transcript_holds_both_sides_of_a_conversation_with_dates() {
    let home = TempDir::new("transcript");
    let file = home.path().join("talk.log");
    let log = file.to_str().expect("a UTF-8 path");
    let (mut alice, port) = alice_at_a_terminal(home.path(), &["--log", log]);
    let mut bob = peer_of_alice("bob", &mut alice, port);
    bob.type_lines("send alice hi alice\n");
    alice.exp_string("bob: hi alice").expect("bob's message");
    type_in(&mut alice, "send bob hello bob\r");
    alice
        .exp_string("you -> bob: hello bob")
        .expect("alice's own line");
    bob.expect("message", WAIT, |m| m["text"] == "hello bob");
    bob.type_lines("broadcast \u{1b}[31mred to all\n");
    alice.exp_string("red to all").expect("bob's room message");
    type_in(&mut alice, "broadcast bye all\r");
    alice
        .exp_string("you (room): bye all")
        .expect("alice's room line");
    leave(alice);

    assert_eq!(
        transcript_lines(&file),
        [
            "bob -> you: hi alice",
            "you -> bob: hello bob",
            "bob (room): ^[[31mred to all",
            "you (room): bye all",
        ]
    );
    let mode = std::fs::metadata(&file).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
}

#[test]
fn a_transcript_that_cannot_be_opened_stops_meshtalk_saying_why() {
    let home = TempDir::new("transcript");
    let file = home.path().join("no-such-dir/talk.log");
    let out = run(
        home.path(),
        &[
            "mesh",
            "--port",
            "0",
            "--log",
            file.to_str().expect("UTF-8"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot keep the transcript in"), "{stderr}");
}

#[test]
fn a_direct_message_rings_the_bell_and_its_author_is_highlighted() {
    let home = TempDir::new("bell");
    let (mut alice, port) = start_alice(home.path(), &[], true);
    let mut bob = peer_of_alice("bob", &mut alice, port);
    bob.type_lines("send alice are you there\n");
    alice
        .exp_regex("\x1b\\[1;7;38;5;[0-9]+mbob\x1b\\[0m: are you there\x07")
        .expect("a highlighted message and the bell");
    leave(alice);
}

#[test]
fn a_room_message_rings_the_bell_only_when_it_names_you() {
    let home = TempDir::new("bell");
    let (mut alice, port) = alice_at_a_terminal(home.path(), &[]);
    let mut bob = peer_of_alice("bob", &mut alice, port);
    bob.type_lines("broadcast alicea and malice are not you\n");
    bob.type_lines("broadcast what do you think, Alice?\n");
    let (between, _) = alice.exp_regex("Alice\\?\x07").expect("the mention rings");
    assert!(between.contains("malice are not you"), "{between:?}");
    assert!(!between.contains('\x07'), "{between:?}");
    leave(alice);
}

#[test]
fn with_no_bell_a_direct_message_is_silent() {
    let home = TempDir::new("bell");
    let (mut alice, port) = alice_at_a_terminal(home.path(), &["--no-bell"]);
    let mut bob = peer_of_alice("bob", &mut alice, port);
    bob.type_lines("send alice are you there\n");
    bob.type_lines("send alice last one\n");
    let between = alice.exp_string("last one").expect("both messages");
    assert!(between.contains("are you there"), "{between:?}");
    assert!(!between.contains('\x07'), "{between:?}");
    leave(alice);
}

#[test]
fn with_colour_each_author_is_shown_in_a_colour_of_their_own() {
    let home = TempDir::new("colour");
    let (mut alice, port) = start_alice(home.path(), &[], true);
    let mut bob = peer_of_alice("bob", &mut alice, port);
    let mut carol = common::proc::Proc::mesh("carol", 0, &["--json"]);
    carol.type_lines(&format!("connect 127.0.0.1 {port}\n"));
    carol.expect("connected", WAIT, |_| true);
    alice.exp_string("carol").expect("carol joined");
    bob.type_lines("broadcast from bob\n");
    carol.type_lines("broadcast from carol\n");
    let name = "\x1b\\[1;38;5;([0-9]+)m([a-z]+)\x1b\\[0m \\(room\\): from ([a-z]+)";
    let re = regex::Regex::new(name).expect("regex");
    let mut seen = std::collections::HashMap::new();
    for _ in 0..2 {
        let (_, line) = alice.exp_regex(name).expect("a coloured room line");
        let caps = re.captures(&line).expect("the same regex");
        assert_eq!(&caps[2], &caps[3]);
        seen.insert(caps[2].to_string(), caps[1].to_string());
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_ne!(seen["bob"], seen["carol"], "bob and carol look alike");
    leave(alice);
}

/// A block of three lines as a terminal pastes it (bracketed paste).
const PASTED: &str = "\x1b[200~line one\nline two\nline three\x1b[201~";

#[test]
fn a_pasted_block_is_one_message_shown_as_lines_under_its_author() {
    let home = TempDir::new("paste");
    let (mut alice, port) = alice_at_a_terminal(home.path(), &[]);
    let (mut carol, _) = start_at_a_terminal(home.path(), "carol", &["--no-history"], false);
    type_in(&mut carol, &format!("connect 127.0.0.1 {port}\r"));
    carol.exp_string("connected").expect("carol joined alice");
    alice.exp_string("connected").expect("alice sees carol");
    type_in(&mut carol, "send alice ");
    type_in(&mut carol, PASTED);
    type_in(&mut carol, "\r");
    carol
        .exp_regex(r"you -> alice: line one\r\n {13}line two\r\n {13}line three\r\n")
        .expect("carol's own lines");
    alice
        .exp_regex("\\] carol: line one\r\n {13}line two\r\n {13}line three\x07?\r\n")
        .expect("three lines under carol");
    leave(carol);
    leave(alice);
}

#[test]
fn a_text_peer_gets_a_pasted_block_as_lines() {
    use std::io::{BufRead, BufReader};
    let home = TempDir::new("paste");
    let (mut alice, port) = alice_at_a_terminal(home.path(), &[]);
    // Silent, as netcat is: alice takes it for a text peer.
    let text_peer = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    text_peer.set_read_timeout(Some(WAIT)).expect("timeout");
    alice.exp_string(", text)").expect("a text peer");
    type_in(&mut alice, "send #1 ");
    type_in(&mut alice, PASTED);
    type_in(&mut alice, "\r");
    let mut lines = BufReader::new(text_peer).lines();
    let got: Vec<String> = (0..3)
        .map(|_| lines.next().expect("a line").expect("read"))
        .collect();
    assert_eq!(got, ["line one", "line two", "line three"]);
    leave(alice);
}

/// The terminal's Left arrow.
const LEFT: &str = "\x1b[D";

/// Types `text` at a terminal (`term_program` for `TERM_PROGRAM`), then Left twice;
/// expects the cursor, as rustyline redraws the line after each key, at `columns`
/// (after the text, then one and two graphemes back).
fn cursor_columns_after_typing(text: &str, term_program: Option<&str>, columns: [usize; 3]) {
    let home = TempDir::new("width");
    let mut command = meshtalk_in(home.path());
    command
        .args(["mesh", "--port", "0", "--bind", "127.0.0.1", "--no-history"])
        .env("TERM", "xterm")
        .env("NO_COLOR", "1");
    match term_program {
        Some(program) => command.env("TERM_PROGRAM", program),
        None => command.env_remove("TERM_PROGRAM"),
    };
    let (mut alice, _) = spawn_at_a_terminal(command, WAIT);
    type_in(&mut alice, text);
    // rexpect reads each byte as a char of its own.
    let text: String = text.bytes().map(char::from).collect();
    alice
        .exp_string(&format!("{text}\r\x1b[{}C", columns[0]))
        .expect("the cursor after the text");
    type_in(&mut alice, LEFT);
    alice
        .exp_string(&format!("{text}\r\x1b[{}C", columns[1]))
        .expect("one grapheme back");
    type_in(&mut alice, LEFT);
    alice
        .exp_string(&format!("{text}\r\x1b[{}C", columns[2]))
        .expect("two graphemes back");
    // Ctrl-D leaves only on an empty line.
    alice.send_control('c').expect("ctrl-c");
    leave(alice);
}

#[test]
fn wide_cjk_is_measured_two_columns_a_character_in_the_input_line() {
    // The prompt is 10 columns; 中 and 文 are 2 each.
    cursor_columns_after_typing("中文x", None, [15, 14, 12]);
}

#[test]
fn an_emoji_joined_into_one_grapheme_is_one_wide_character_where_the_terminal_joins_them() {
    // WezTerm draws 👨‍👩‍👧 as one 2-column glyph (rustyline knows it by TERM_PROGRAM).
    cursor_columns_after_typing("中文👨\u{200d}👩\u{200d}👧x", Some("WezTerm"), [17, 16, 14]);
}

#[test]
fn mesh_help_puts_the_mode_first_then_the_terminal_then_the_limits_with_defaults() {
    let home = TempDir::new("help");
    let out = run(home.path(), &["mesh", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    let at = |words: &str| {
        help.find(words)
            .unwrap_or_else(|| panic!("no {words:?} in\n{help}"))
    };
    let order = [
        at("--name"),
        at("--port"),
        at("At a terminal:"),
        at("--no-history"),
        at("--log <FILE>"),
        at("--no-bell"),
        at("Limits:"),
        at("--max-text"),
    ];
    assert!(order.is_sorted(), "{order:?} in\n{help}");
    assert!(help.contains("[default: 0.0.0.0]"), "{help}");
    let max_text = format!("[default: {}]", meshtalk_core::limits::MAX_TEXT);
    assert!(help.contains(&max_text), "{help}");
}
