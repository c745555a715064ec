//! The system calls a hub makes over a measured span: `perf stat` attached to its process,
//! started with its counters off and switched on and off through a control FIFO, so the
//! span is exact and perf's own start-up is not in it.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The system calls counted, in the order of [`Syscalls::counts`]: those that send, those
/// that receive, and those that wait for readiness (mio's epoll_wait; ncat's pselect6).
pub const CALLS: [&str; 12] = [
    "write",
    "writev",
    "sendto",
    "sendmsg",
    "read",
    "recvfrom",
    "epoll_wait",
    "epoll_pwait",
    "select",
    "pselect6",
    "poll",
    "ppoll",
];

/// How many of [`CALLS`], from the first, send bytes.
const SENDS: usize = 4;

/// How long perf may take to start or to answer a command.
const ANSWER: Duration = Duration::from_secs(5);

/// Counts of each of [`CALLS`] over one span.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Syscalls {
    pub counts: [u64; CALLS.len()],
}

impl Syscalls {
    /// Calls that send bytes: write, writev, sendto and sendmsg.
    pub fn sends(&self) -> u64 {
        self.counts[..SENDS].iter().sum()
    }

    /// Calls that receive bytes: read and recvfrom.
    pub fn reads(&self) -> u64 {
        self.counts[SENDS..SENDS + 2].iter().sum()
    }

    /// Calls that wait for readiness: epoll_wait, epoll_pwait, select, pselect6, poll, ppoll.
    pub fn waits(&self) -> u64 {
        self.counts[SENDS + 2..].iter().sum()
    }

    /// Every counted call.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Reads `perf stat -x ,` output: `count,unit,event,...` lines; `<not counted>` (the
    /// counters were off all along) is 0. Fails when a call is missing or not supported.
    pub fn parse(text: &str) -> Result<Syscalls, PerfError> {
        let mut out = Syscalls::default();
        let mut found = [false; CALLS.len()];
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let fields: Vec<&str> = line.split(',').collect();
            let (Some(count), Some(event)) = (fields.first(), fields.get(2)) else {
                continue;
            };
            let Some(i) = event
                .strip_prefix("syscalls:sys_enter_")
                .and_then(|call| CALLS.iter().position(|c| *c == call))
            else {
                continue;
            };
            out.counts[i] = match count.trim() {
                "<not counted>" => 0,
                n => n
                    .parse()
                    .map_err(|_| PerfError::Output(format!("{event}: '{n}'")))?,
            };
            found[i] = true;
        }
        match found.iter().position(|f| !f) {
            Some(i) => Err(PerfError::Output(format!(
                "no count for syscalls:sys_enter_{}",
                CALLS[i]
            ))),
            None => Ok(out),
        }
    }
}

/// Why no syscall counts came.
#[derive(Debug)]
pub enum PerfError {
    /// perf is not installed (Debian: `apt-get install -y linux-perf`).
    Missing,
    /// perf could not be started or driven (a FIFO, a pipe, the process).
    Io(String),
    /// perf exited instead of counting (no permission for tracepoints, say:
    /// `/proc/sys/kernel/perf_event_paranoid`, or no tracefs).
    Refused(String),
    /// perf runs but did not answer a command in time, or did not end when asked.
    NoAnswer(String),
    /// perf's output had no count for a call.
    Output(String),
}

impl fmt::Display for PerfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PerfError::Missing => write!(
                f,
                "perf not found: syscalls not counted (Debian: `apt-get install -y linux-perf`)"
            ),
            PerfError::Io(e) => write!(f, "perf could not be driven: {e}"),
            PerfError::Refused(e) => write!(
                f,
                "perf did not count ({e}); check /proc/sys/kernel/perf_event_paranoid and that tracefs is mounted"
            ),
            PerfError::NoAnswer(e) => write!(f, "perf did not answer: {e}"),
            PerfError::Output(e) => write!(f, "perf's output was not understood: {e}"),
        }
    }
}

/// A `perf stat` attached to one process, its counters off until [`Counter::enable`].
pub struct Counter {
    child: Child,
    ctl: File,
    ack: File,
    dir: PathBuf,
}

/// Where perf is: `/usr/bin/perf` or on PATH.
fn perf_path() -> Option<PathBuf> {
    let fixed = Path::new("/usr/bin/perf");
    if fixed.is_file() {
        return Some(fixed.to_path_buf());
    }
    super::hub::which("perf")
}

fn io_err(what: &str) -> impl Fn(io::Error) -> PerfError + '_ {
    move |e| PerfError::Io(format!("{what}: {e}"))
}

/// Opens a FIFO for reading and writing without waiting for the other side, non-blocking.
fn open_fifo(path: &Path) -> Result<File, PerfError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(io_err("opening a control FIFO"))
}

impl Counter {
    /// Attaches `perf stat` to every thread of process `pid`, counters off.
    pub fn attach(pid: u32) -> Result<Counter, PerfError> {
        let perf = perf_path().ok_or(PerfError::Missing)?;
        static RUN: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "meshtalk-load-perf-{}-{}",
            std::process::id(),
            RUN.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).map_err(io_err("making a directory for perf's FIFOs"))?;
        let (ctl_path, ack_path) = (dir.join("ctl"), dir.join("ack"));
        for p in [&ctl_path, &ack_path] {
            nix::unistd::mkfifo(
                p,
                nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
            )
            .map_err(|e| PerfError::Io(format!("mkfifo {}: {e}", p.display())))?;
        }
        // Opened here first (read-write, so neither side waits for the other).
        let ctl = open_fifo(&ctl_path)?;
        let ack = open_fifo(&ack_path)?;
        let events = CALLS
            .iter()
            .map(|c| format!("syscalls:sys_enter_{c}"))
            .collect::<Vec<_>>()
            .join(",");
        let child = Command::new(perf)
            .args(["stat", "-x", ",", "-D", "-1", "-e", &events])
            .arg("-o")
            .arg(dir.join("out"))
            .arg("--control")
            .arg(format!(
                "fifo:{},{}",
                ctl_path.display(),
                ack_path.display()
            ))
            .args(["-p", &pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io_err("starting perf"))?;
        let mut counter = Counter {
            child,
            ctl,
            ack,
            dir,
        };
        // A command perf answers shows it is attached: counters stay off.
        counter.command("disable")?;
        Ok(counter)
    }

    /// Sends one control command and waits for perf's `ack`.
    fn command(&mut self, what: &str) -> Result<(), PerfError> {
        self.ctl
            .write_all(format!("{what}\n").as_bytes())
            .map_err(io_err("writing to perf's control FIFO"))?;
        let deadline = Instant::now() + ANSWER;
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        // perf writes `ack\n` and a NUL.
        while !got.windows(4).any(|w| w == b"ack\n") {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(PerfError::Refused(format!(
                    "perf exited ({status}): {}",
                    self.stderr()
                )));
            }
            if Instant::now() > deadline {
                return Err(PerfError::NoAnswer(format!(
                    "no answer to '{what}' in {ANSWER:?}"
                )));
            }
            match self.ack.read(&mut buf) {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(1))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err("reading perf's answer")(e)),
            }
        }
        Ok(())
    }

    /// What perf wrote to its standard error (only once it has exited).
    fn stderr(&mut self) -> String {
        let mut s = String::new();
        if let Some(e) = self.child.stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s.trim().replace('\n', "; ")
    }

    /// Counting starts when this returns.
    pub fn enable(&mut self) -> Result<(), PerfError> {
        self.command("enable")
    }

    /// Stops counting, ends perf and returns the counts over the enabled span(s).
    pub fn finish(mut self) -> Result<Syscalls, PerfError> {
        self.command("disable")?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .map_err(|e| PerfError::Io(format!("signalling perf: {e}")))?;
        let deadline = Instant::now() + ANSWER;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(2)),
                _ => return Err(PerfError::NoAnswer("it did not end on SIGINT".into())),
            }
        }
        let text =
            fs::read_to_string(self.dir.join("out")).map_err(io_err("reading perf's output"))?;
        Syscalls::parse(&text)
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        // Only this perf, by its own pid; then its FIFOs and output go.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "# started on Mon Dec  7 14:17:42 2026

11401,,syscalls:sys_enter_write,292338132,100.00,,
0,,syscalls:sys_enter_writev,292338132,100.00,,
<not counted>,,syscalls:sys_enter_sendto,0,100.00,,
2,,syscalls:sys_enter_sendmsg,292338132,100.00,,
300,,syscalls:sys_enter_read,292338132,100.00,,
5,,syscalls:sys_enter_recvfrom,292338132,100.00,,
40,,syscalls:sys_enter_epoll_wait,292364882,100.00,,
0,,syscalls:sys_enter_epoll_pwait,292364882,100.00,,
0,,syscalls:sys_enter_select,292364882,100.00,,
7,,syscalls:sys_enter_pselect6,292364882,100.00,,
0,,syscalls:sys_enter_poll,292364882,100.00,,
0,,syscalls:sys_enter_ppoll,292364882,100.00,,
";

    #[test]
    fn perf_stat_csv_gives_each_call_its_count_and_groups_them_into_sends_reads_and_waits() {
        let s = Syscalls::parse(OUTPUT).unwrap();
        assert_eq!(s.counts, [11401, 0, 0, 2, 300, 5, 40, 0, 0, 7, 0, 0]);
        assert_eq!((s.sends(), s.reads(), s.waits()), (11403, 305, 47));
        assert_eq!(s.total(), 11755);
    }

    #[test]
    fn a_call_perf_did_not_report_or_could_not_count_is_an_error_not_a_zero() {
        let missing: String = OUTPUT
            .lines()
            .filter(|l| !l.contains("recvfrom"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(matches!(
            Syscalls::parse(&missing),
            Err(PerfError::Output(e)) if e.contains("recvfrom")
        ));
        let unsupported = OUTPUT.replace(
            "2,,syscalls:sys_enter_sendmsg",
            "<not supported>,,syscalls:sys_enter_sendmsg",
        );
        assert!(matches!(
            Syscalls::parse(&unsupported),
            Err(PerfError::Output(_))
        ));
    }
}

#[cfg(test)]
mod live {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::process::ChildStdin;

    /// A shell that echoes each line it reads: one read and one write per line.
    fn echo() -> (Child, ChildStdin, BufReader<std::process::ChildStdout>) {
        let mut child = Command::new("sh")
            .args(["-c", "while read -r l; do echo \"$l\"; done"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        (child, stdin, stdout)
    }

    #[test]
    fn perf_counts_the_calls_of_the_enabled_span_only() {
        let (mut child, mut stdin, mut stdout) = echo();
        let mut line = String::new();
        // Before the span: not counted.
        for _ in 0..20 {
            writeln!(stdin, "x").unwrap();
            line.clear();
            stdout.read_line(&mut line).unwrap();
        }
        // Where perf is missing or may not count (not root, say), there is nothing to test;
        // a perf that runs but is misdriven (no answer, bad output) fails.
        let mut counter = match Counter::attach(child.id()) {
            Err(e @ (PerfError::Missing | PerfError::Refused(_))) => {
                eprintln!("not run: {e}");
                drop(stdin);
                let _ = child.wait();
                return;
            }
            attached => attached.unwrap(),
        };
        counter.enable().unwrap();
        for _ in 0..50 {
            writeln!(stdin, "x").unwrap();
            line.clear();
            stdout.read_line(&mut line).unwrap();
        }
        let calls = counter.finish().unwrap();
        drop(stdin);
        let _ = child.wait();
        // The shell's `read` takes a byte per call: at least two reads and one write a line.
        assert!(
            (50..70).contains(&calls.counts[0]),
            "writes {:?}",
            calls.counts
        );
        // Two reads a line, but the shell may already wait in the first read when
        // counting begins: that call entered before the span and is not counted.
        assert!(calls.reads() >= 99, "reads {:?}", calls.counts);
    }
}
