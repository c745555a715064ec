//! The hubs under test, each a real process on 127.0.0.1: `meshtalk mesh --hub`,
//! `ncat --chat`, and this tool's own minimal relay (the machine's ceiling).

use std::io;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Which program relays the room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HubKind {
    Meshtalk,
    Ncat,
    /// `ncat --chat --ssl`: its clients speak TLS.
    NcatSsl,
    Relay,
}

impl HubKind {
    pub fn name(self) -> &'static str {
        match self {
            HubKind::Meshtalk => "meshtalk",
            HubKind::Ncat => "ncat",
            HubKind::NcatSsl => "ncat-ssl",
            HubKind::Relay => "relay",
        }
    }
}

/// Where the programs are.
#[derive(Clone, Debug)]
pub struct Programs {
    pub meshtalk: PathBuf,
    pub ncat: Option<PathBuf>,
    pub myself: PathBuf,
}

/// A running hub process, killed when dropped.
pub struct Hub {
    pub kind: HubKind,
    pub port: u16,
    child: Child,
    /// A meshtalk hub's own directory for its identity and `known_peers`
    /// (removed when the hub is dropped): each run is a new node, which pins
    /// no load client's key from an earlier run, and nothing is written to
    /// the user's config.
    home: Option<PathBuf>,
}

/// Hub options that vary by scenario.
#[derive(Clone, Copy, Debug)]
pub struct HubOptions {
    pub max_peers: usize,
    pub stall_timeout: f64,
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Finds a program on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

impl Hub {
    /// Starts a hub and waits (at most 5 s) until it accepts connections.
    pub fn start(kind: HubKind, programs: &Programs, opts: HubOptions) -> io::Result<Hub> {
        let port = free_port()?;
        let mut home = None;
        let mut cmd = match kind {
            HubKind::Meshtalk => {
                let dir = std::env::temp_dir()
                    .join(format!("meshtalk-load-hub-{}-{port}", std::process::id()));
                std::fs::create_dir_all(&dir)?;
                let mut c = Command::new(&programs.meshtalk);
                c.args([
                    "-q",
                    "mesh",
                    // No LAN beacons from a benchmark's hub.
                    "--no-discover",
                    "--hub",
                    "--json",
                    "--bind",
                    "127.0.0.1",
                    "--name",
                    "hub",
                ])
                .args(["--port", &port.to_string()])
                .args(["--max-peers", &opts.max_peers.min(1024).to_string()])
                // Every load client comes from 127.0.0.1.
                .args(["--max-per-ip", &opts.max_peers.to_string()])
                .args(["--stall-timeout", &opts.stall_timeout.to_string()])
                .arg("--identity")
                .arg(dir.join("identity"));
                home = Some(dir);
                c
            }
            HubKind::Ncat | HubKind::NcatSsl => {
                let ncat = programs.ncat.as_ref().ok_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, "ncat is not installed")
                })?;
                let mut c = Command::new(ncat);
                c.args(["-l", "--chat", "-m", &opts.max_peers.to_string()])
                    .args(["127.0.0.1", &port.to_string()]);
                if kind == HubKind::NcatSsl {
                    // A throwaway certificate ncat makes at start.
                    c.arg("--ssl");
                }
                c
            }
            HubKind::Relay => {
                let mut c = Command::new(&programs.myself);
                c.args(["--relay-serve", &port.to_string()]);
                c
            }
        };
        // stdin stays open (meshtalk exits at end of input); output is not part of the test.
        let child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("starting {}: {e}", kind.name())))?;
        let mut hub = Hub {
            kind,
            port,
            child,
            home,
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(Some(status)) = hub.child.try_wait() {
                return Err(io::Error::other(format!(
                    "{} exited at start: {status}",
                    kind.name()
                )));
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "{} did not listen within 5 s",
                    kind.name()
                )));
            }
            thread::sleep(Duration::from_millis(20));
        }
        // Let the probe connection be noticed and gone before clients arrive.
        thread::sleep(Duration::from_millis(50));
        Ok(hub)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU seconds (user + system, all threads) the hub has used so far.
    pub fn cpu(&self) -> f64 {
        proc_cpu(self.pid())
    }

    /// CPU seconds the hub's live threads have run, to the nanosecond: for short
    /// intervals, where [`Hub::cpu`]'s 10 ms clock ticks would be most of the figure.
    pub fn run_time(&self) -> f64 {
        proc_run_time(self.pid())
    }

    /// Resident memory in KiB.
    pub fn rss_kib(&self) -> u64 {
        proc_rss_kib(self.pid())
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(home) = &self.home {
            let _ = std::fs::remove_dir_all(home);
        }
    }
}

/// utime + stime of a process from /proc/<pid>/stat, in seconds.
pub fn proc_cpu(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the command name (which may hold spaces) start at field 3.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime is field 14, stime 15: indices 11 and 12 after the name.
    (ticks(11) + ticks(12)) as f64 / clock_ticks()
}

/// The sum of the first field of /proc/<pid>/task/*/schedstat (nanoseconds on a CPU), in
/// seconds. A thread that ends takes its time with it: only for intervals in which the
/// process starts or ends no thread.
pub fn proc_run_time(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return f64::NAN;
    };
    let ns: u64 = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    ns as f64 * 1e-9
}

fn clock_ticks() -> f64 {
    // sysconf(_SC_CLK_TCK) is 100 on every Linux this runs on.
    100.0
}

/// VmRSS of a process in KiB.
pub fn proc_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// The meshtalk binary of this workspace, built by `cargo build --release -p meshtalk`.
pub fn workspace_meshtalk() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    target.join("release").join("meshtalk")
}
