//! A child process driven through stdin and watched through stdout, one line at a
//! time, as the end-to-end tests use it: spawn `meshtalk` (or any program), wait
//! for JSON events with a bounded wait, type command lines, link two nodes. The
//! child is killed when its [`Proc`] is dropped. Each child lives in a home of
//! its own (see [`super::home`]) unless the test gives it one.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::home::{TempDir, live_in, own_home};

/// A running child process and the lines it printed on stdout, in order, as raw
/// bytes without their newline.
pub struct Proc {
    pub name: String,
    pub child: Child,
    /// `None` once input has been ended.
    pub stdin: Option<ChildStdin>,
    lines: Receiver<Vec<u8>>,
    /// The port it listens on, once known (0 until then).
    pub port: u16,
    /// The home made for it (removed once it is killed); `None` when the test
    /// gave it one.
    home: Option<TempDir>,
}

impl Proc {
    /// Spawns `command` with piped stdin and stdout (stderr as the command has it,
    /// inherited by default) and reads its stdout on a thread of its own. Unless
    /// `command` sets `XDG_CONFIG_HOME`, it gets a fresh home (HOME and the XDG
    /// directories), so its identity and known peers are its own.
    pub fn spawn(name: &str, command: &mut Command) -> Proc {
        quiet_on_the_lan(command);
        let home = own_home(command, name);
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot start: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut line = Vec::new();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if line.last() == Some(&b'\n') {
                            line.pop();
                        }
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let stdin = child.stdin.take();
        Proc {
            name: name.to_string(),
            child,
            stdin,
            lines,
            port: 0,
            home,
        }
    }

    /// As [`Proc::spawn`], living in `home`, which the test keeps: a node started
    /// again there has the identity and known peers it had.
    pub fn spawn_in(name: &str, command: &mut Command, home: &Path) -> Proc {
        Proc::spawn(name, live_in(command, home))
    }

    /// `meshtalk <args>`.
    pub fn meshtalk(name: &str, args: &[&str]) -> Proc {
        Proc::spawn(
            name,
            Command::new(env!("CARGO_BIN_EXE_meshtalk")).args(args),
        )
    }

    /// `meshtalk mesh --port <port> --bind 127.0.0.1 --name <name>` plus `extra`,
    /// without waiting for anything.
    pub fn mesh(name: &str, port: u16, extra: &[&str]) -> Proc {
        let port = port.to_string();
        let mut args = vec!["mesh", "--port", &port, "--bind", "127.0.0.1"];
        args.extend(["--name", name]);
        args.extend_from_slice(extra);
        Proc::meshtalk(name, &args)
    }

    /// As [`Proc::mesh`] with `--json`, waiting at most `wait` for its `listening`
    /// event, whose port it keeps.
    pub fn json_mesh(name: &str, port: u16, extra: &[&str], wait: Duration) -> Proc {
        let mut args = vec!["--json"];
        args.extend_from_slice(extra);
        let mut node = Proc::mesh(name, port, &args);
        node.port = port_of(&node.expect("listening", wait, |_| true));
        node
    }

    /// As [`Proc::json_mesh`], living in `home`, which the test keeps: started
    /// again there, it is the same node (its key, which its peers pinned).
    pub fn json_mesh_in(
        home: &Path,
        name: &str,
        port: u16,
        extra: &[&str],
        wait: Duration,
    ) -> Proc {
        let port = port.to_string();
        let mut node = Proc::spawn_in(
            name,
            Command::new(env!("CARGO_BIN_EXE_meshtalk"))
                .args(["mesh", "--port", &port, "--bind", "127.0.0.1", "--json"])
                .args(["--name", name])
                .args(extra),
            home,
        );
        node.port = port_of(&node.expect("listening", wait, |_| true));
        node
    }

    /// As [`Proc::mesh`] on a free port, printing human text; its port comes from
    /// the first line, waited for at most `wait`.
    pub fn human_mesh(name: &str, wait: Duration) -> Proc {
        let mut node = Proc::mesh(name, 0, &[]);
        let first = node.next_line(wait);
        let port = first.rsplit(':').next().expect("listening on ADDR:PORT");
        node.port = port
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{e}: {first}"));
        node
    }

    /// The next stdout line, raw, within `wait`; an error when none came.
    pub fn recv_raw(&self, wait: Duration) -> Result<Vec<u8>, RecvTimeoutError> {
        self.lines.recv_timeout(wait)
    }

    /// The next stdout line, lossily decoded, within `wait`; an error when none came.
    pub fn recv(&self, wait: Duration) -> Result<String, RecvTimeoutError> {
        self.recv_raw(wait)
            .map(|line| String::from_utf8_lossy(&line).into_owned())
    }

    /// The next stdout line, raw, failing the test when none comes within `wait`.
    pub fn next_raw_line(&self, wait: Duration) -> Vec<u8> {
        self.recv_raw(wait)
            .unwrap_or_else(|e| panic!("{}: no output within {wait:?} ({e})", self.name))
    }

    /// The next stdout line, failing the test when none comes within `wait`.
    pub fn next_line(&self, wait: Duration) -> String {
        String::from_utf8_lossy(&self.next_raw_line(wait)).into_owned()
    }

    /// Writes to the child's stdin (lines end with their own `\n`).
    pub fn type_lines(&mut self, lines: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(lines.as_bytes()).expect("write stdin");
        stdin.flush().expect("flush stdin");
    }

    /// Writes one command line to the child's stdin.
    pub fn type_line(&mut self, line: &str) {
        self.type_lines(&format!("{line}\n"));
    }

    /// The next event named `event` for which `matches` holds, within `wait`,
    /// skipping others; `None` when none came.
    pub fn wait_for(
        &self,
        event: &str,
        wait: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let line = self.recv_raw(left).ok()?;
            let value = parse(&self.name, &line);
            if value["event"] == event && matches(&value) {
                return Some(value);
            }
        }
    }

    /// Waits at most `wait` for the next event named `event` for which `matches`
    /// holds, skipping others (which a failure lists).
    pub fn expect(&self, event: &str, wait: Duration, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + wait;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.recv_raw(left).unwrap_or_else(|e| {
                panic!(
                    "{}: no matching '{event}' event within {wait:?} ({e}); skipped: {skipped:#?}",
                    self.name
                )
            });
            let value = parse(&self.name, &line);
            if value["event"] == event && matches(&value) {
                return value;
            }
            skipped.push(value);
        }
    }

    /// Waits at most `wait` for the child to exit, stdin left as it is.
    pub fn wait_exit(&mut self, wait: Duration) -> ExitStatus {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "{} did not exit", self.name);
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Ends stdin and waits at most `wait` for the child to exit.
    pub fn end_input_and_wait(&mut self, wait: Duration) -> ExitStatus {
        self.stdin = None;
        self.wait_exit(wait)
    }
}

impl Drop for Proc {
    /// Kills the child; its home, if made for it, goes after it.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        drop(self.home.take());
    }
}

/// One stdout line as JSON, or a failure naming the process.
pub fn parse(name: &str, line: &[u8]) -> Value {
    serde_json::from_slice(line).unwrap_or_else(|e| {
        panic!(
            "{name}: stdout line is no JSON ({e}): {}",
            String::from_utf8_lossy(line)
        )
    })
}

/// The port in a `listening` event.
pub fn port_of(listening: &Value) -> u16 {
    u16::try_from(listening["port"].as_u64().expect("port")).expect("u16")
}

/// Connects `from` to `to` (optionally naming it `alias` at `from`) and waits at
/// most `wait` for each until both say connected. Returns the event at `from`,
/// then the one at `to`.
pub fn link(from: &mut Proc, to: &Proc, alias: Option<&str>, wait: Duration) -> (Value, Value) {
    let named = alias.unwrap_or(&to.name);
    match alias {
        Some(alias) => from.type_line(&format!("connect 127.0.0.1 {} {alias}", to.port)),
        None => from.type_line(&format!("connect 127.0.0.1 {}", to.port)),
    }
    let at_from = from.expect("connected", wait, |e| e["alias"] == named);
    let at_to = to.expect("connected", wait, |e| e["alias"] == from.name.as_str());
    (at_from, at_to)
}

/// Adds `--no-discover` to a `meshtalk mesh` that does not ask for `--discover`:
/// no test sends a discovery beacon out of this machine's real interfaces (the
/// netns tests ask for it, inside their namespaces).
pub fn quiet_on_the_lan(command: &mut Command) {
    let args: Vec<String> = command
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mesh = args.iter().any(|a| a == "mesh");
    let asked = args
        .iter()
        .any(|a| a == "--discover" || a == "--no-discover");
    if mesh && !asked {
        command.arg("--no-discover");
    }
}
