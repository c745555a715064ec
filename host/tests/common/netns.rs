//! Whether the network-namespace tests can run here, and what they say when
//! they cannot: skipped loudly, or failed under `MESHTALK_NETNS_REQUIRED=1`.

use std::io::Write;
use std::process::Command;

/// Set to 1 (by `.ci/run`, as root) to make a test that cannot run fail.
const REQUIRED: &str = "MESHTALK_NETNS_REQUIRED";

/// Why these tests cannot run here, if they cannot.
pub fn skip_reason() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(str::to_string));
    if euid.as_deref() != Some("0") {
        return Some("not root".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(out) if out.status.success() => None,
        _ => Some("no `ip` command (install iproute2)".into()),
    }
}

/// True (after saying so) when these tests cannot run here.
pub fn skipped() -> bool {
    match skip_reason() {
        Some(why) => {
            skip(&why);
            true
        }
        None => false,
    }
}

/// Says that the calling test cannot run, for `why`; a failure when it must.
pub fn skip(why: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a netns test");
    if std::env::var(REQUIRED).is_ok_and(|v| v == "1") {
        panic!(
            "{test} cannot run: {why}; {REQUIRED}=1 says it must (run as root with iproute2 and nftables, or unset it)"
        );
    }
    // `eprintln!` goes to libtest's capture and is shown only on failure:
    // writing to the stderr handle itself is not captured.
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED {test}: {why}; it did NOT run (its `ok` means nothing) ***"
    );
}
