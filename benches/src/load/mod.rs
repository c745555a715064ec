//! The whole-program load tool's parts: hubs under test, the clients that load
//! them (protocol 2 for the native ones), the reference relay, and the statistics and
//! plot of the results.

pub mod client;
pub mod hub;
pub mod perf;
pub mod relay;
pub mod secure;
pub mod soak;
pub mod stats;
pub mod svg;
pub mod tls;

use std::sync::OnceLock;
use std::time::Instant;

/// The clock every timestamp in a message is measured from (one process, one clock).
pub fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since [`epoch`].
pub fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

/// CPU seconds (user + system) used so far by this process or, with `thread`, by the calling thread.
pub fn own_cpu(thread: bool) -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    let who = if thread {
        UsageWho::RUSAGE_THREAD
    } else {
        UsageWho::RUSAGE_SELF
    };
    match getrusage(who) {
        Ok(u) => {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 * 1e-6;
            t(u.user_time()) + t(u.system_time())
        }
        Err(_) => 0.0,
    }
}

/// Raises the soft limit of open files to the hard limit; returns the limit now in force.
pub fn raise_nofile() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(_) => soft,
        },
        Ok((soft, _)) => soft,
        Err(_) => 0,
    }
}

/// The kernel's count of connections dropped because a listen queue was full
/// (`TcpExt: ListenOverflows` in `/proc/net/netstat`, for the whole network namespace).
pub fn listen_overflows() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (lines.next()?, lines.next()?);
    let at = names
        .split_whitespace()
        .position(|n| n == "ListenOverflows")?;
    values.split_whitespace().nth(at)?.parse().ok()
}
