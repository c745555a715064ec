//! End to end: at start, and at `/whoami`, `meshtalk` says the addresses it can
//! be reached at (issue 14): each non-loopback address of an interface that is
//! up, with the port, never `0.0.0.0`; only loopback is said plainly to be for
//! this machine only. What it lists is checked against `ip -o addr` (iproute2).
//! Nothing here connects to any address: the nodes only listen.
//!
//! A test that needs `ip`, IPv6 or root (a network namespace of its own) and
//! cannot have it here writes `*** SKIPPED <test>: <why>` to stderr and returns,
//! or fails where `MESHTALK_NETNS_REQUIRED=1` (as `host/tests/netns.rs` does).

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::Command;

use common::WAIT;
use common::proc::{Proc, port_of};

/// A `meshtalk mesh --port 0` with `args` (the name and `-q` added), human text.
fn human(name: &str, args: &[&str]) -> Proc {
    let mut all = vec!["-q", "mesh", "--port", "0", "--name", name];
    all.extend_from_slice(args);
    Proc::meshtalk(name, &all)
}

/// The port in a `listening on ADDR:PORT` line.
fn port_in(line: &str) -> u16 {
    let port = line.rsplit(':').next().expect("listening on ADDR:PORT");
    port.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{e}: {line}"))
}

/// The addresses of a `reachable at A, B` line (its time stamp left out).
fn reachable_at(line: &str) -> BTreeSet<String> {
    let (_, addrs) = line
        .split_once("reachable at ")
        .unwrap_or_else(|| panic!("no 'reachable at' in {line:?}"));
    addrs.split(", ").map(str::to_string).collect()
}

/// The addresses of interfaces that are up and not loopback, of `family` (`-4`,
/// `-6`), as `ip -o addr` shows them, each as meshtalk writes it with `port`
/// (an IPv6 link-local one with its `%interface`); `None` without `ip`.
fn machine_addresses(family: &str, port: u16) -> Option<BTreeSet<String>> {
    let out = Command::new("ip")
        .args(["-o", family, "addr", "show", "up"])
        .output()
        .ok()
        .filter(|out| out.status.success())?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut addrs = BTreeSet::new();
    // `2: eth0    inet 192.168.1.20/24 brd ... scope global eth0\ ...`
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (Some(name), Some(cidr)) = (words.get(1), words.get(3)) else {
            continue;
        };
        let name = name.split('@').next().unwrap_or(name);
        let ip = cidr.split('/').next().unwrap_or(cidr);
        if is_loopback_interface(name) || ip.starts_with("127.") || ip == "::1" {
            continue;
        }
        addrs.insert(match family {
            "-4" => format!("{ip}:{port}"),
            _ if line.contains(" scope link ") => format!("[{ip}%{name}]:{port}"),
            _ => format!("[{ip}]:{port}"),
        });
    }
    Some(addrs)
}

/// Whether the kernel flags interface `name` as loopback (`IFF_LOOPBACK`, 0x8).
fn is_loopback_interface(name: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{name}/flags"))
        .ok()
        .and_then(|flags| u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).ok())
        .is_some_and(|flags| flags & 0x8 != 0)
}

/// The running test cannot run here because of `why`: a failure where
/// `MESHTALK_NETNS_REQUIRED` is 1, else a line on stderr that libtest does not
/// capture.
fn skip(why: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("an addresses test");
    if std::env::var("MESHTALK_NETNS_REQUIRED").is_ok_and(|v| v == "1") {
        panic!("{test} cannot run: {why}; MESHTALK_NETNS_REQUIRED=1 says it must");
    }
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED {test}: {why}; it did NOT run (its `ok` means nothing) ***"
    );
}

#[test]
fn bound_to_loopback_it_says_it_is_reachable_from_this_machine_only() {
    let node = human("lo", &["--bind", "127.0.0.1"]);
    let port = port_in(&node.next_line(WAIT));
    let second = node.next_line(WAIT);
    assert!(
        second.ends_with(&format!(
            "reachable from this machine only: 127.0.0.1:{port}"
        )),
        "{second}"
    );
}

#[test]
fn bound_to_all_ipv4_it_lists_exactly_the_machines_non_loopback_ipv4_addresses() {
    let node = human("all4", &[]);
    let first = node.next_line(WAIT);
    assert!(first.contains("listening on 0.0.0.0:"), "{first}");
    let port = port_in(&first);
    let Some(expected) = machine_addresses("-4", port) else {
        return skip("no `ip` command (install iproute2)");
    };
    let second = node.next_line(WAIT);
    assert!(!second.contains("0.0.0.0"), "{second}");
    if expected.is_empty() {
        assert!(
            second.ends_with(&format!(
                "reachable from this machine only: 127.0.0.1:{port}"
            )),
            "{second}"
        );
    } else {
        assert_eq!(reachable_at(&second), expected, "{second}");
    }
}

#[test]
fn whoami_repeats_the_addresses_said_at_start() {
    let mut node = human("who", &[]);
    node.next_line(WAIT);
    let at_start = node.next_line(WAIT);
    let said = at_start
        .split_once("reachable ")
        .map(|(_, rest)| format!("reachable {rest}"))
        .unwrap_or_else(|| panic!("no addresses in {at_start:?}"));
    node.type_line("/whoami");
    let mut lines = Vec::new();
    while !lines.iter().any(|l: &String| l.starts_with("reachable ")) {
        lines.push(node.next_line(WAIT));
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("your key's fingerprint: ")),
        "{lines:#?}"
    );
    assert_eq!(lines.last(), Some(&said), "{lines:#?}");
}

#[test]
fn json_listening_and_whoami_carry_the_addresses_as_a_field() {
    let mut node = Proc::meshtalk(
        "json",
        &["-q", "mesh", "--port", "0", "--name", "json", "--json"],
    );
    let listening = node.expect("listening", WAIT, |_| true);
    let port = port_of(&listening);
    assert_eq!(listening["addr"], format!("0.0.0.0:{port}"), "{listening}");
    let addresses = listening["addresses"]
        .as_array()
        .unwrap_or_else(|| panic!("no addresses array: {listening}"));
    assert!(!addresses.is_empty(), "{listening}");
    let listed: BTreeSet<String> = addresses
        .iter()
        .map(|a| a.as_str().expect("a string").to_string())
        .collect();
    if let Some(expected) = machine_addresses("-4", port).filter(|e| !e.is_empty()) {
        assert_eq!(listed, expected, "{listening}");
        assert!(listening.get("this_machine_only").is_none(), "{listening}");
    }
    node.type_line("/whoami");
    let whoami = node.expect("help", WAIT, |e| e.get("addresses").is_some());
    assert_eq!(whoami["addresses"], listening["addresses"], "{whoami}");
    assert_eq!(whoami["fingerprint"], listening["fingerprint"], "{whoami}");
}

#[test]
fn json_bound_to_loopback_says_this_machine_only() {
    let node = Proc::meshtalk(
        "json-lo",
        &[
            "-q",
            "mesh",
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--name",
            "j",
            "--json",
        ],
    );
    let listening = node.expect("listening", WAIT, |_| true);
    let port = port_of(&listening);
    assert_eq!(
        listening["addresses"],
        serde_json::json!([format!("127.0.0.1:{port}")]),
        "{listening}"
    );
    assert_eq!(listening["this_machine_only"], true, "{listening}");
}

#[test]
fn bound_to_all_dual_stack_it_lists_the_ipv6_addresses_too_link_local_with_scope() {
    let dual = std::fs::read_to_string("/proc/sys/net/ipv6/bindv6only").ok();
    if dual.as_deref().map(str::trim) != Some("0") {
        return skip("no IPv6, or `::` is not dual stack here (net.ipv6.bindv6only)");
    }
    let node = human("all6", &["--bind", "::"]);
    let first = node.next_line(WAIT);
    assert!(first.contains("listening on [::]:"), "{first}");
    let port = port_in(&first);
    let (Some(v4), Some(v6)) = (machine_addresses("-4", port), machine_addresses("-6", port))
    else {
        return skip("no `ip` command (install iproute2)");
    };
    let expected: BTreeSet<String> = v4.into_iter().chain(v6).collect();
    let second = node.next_line(WAIT);
    if expected.is_empty() {
        assert!(
            second.contains("reachable from this machine only: "),
            "{second}"
        );
    } else {
        assert_eq!(reachable_at(&second), expected, "{second}");
    }
}

#[test]
fn on_a_machine_with_loopback_only_all_addresses_are_for_this_machine_only() {
    // A network namespace of its own (root only): its one interface is `lo`.
    let probe = Command::new("unshare").args(["-n", "true"]).output();
    if !probe.is_ok_and(|out| out.status.success()) {
        return skip("cannot make a network namespace (`unshare -n`: root, util-linux)");
    }
    let node = Proc::spawn(
        "alone",
        Command::new("unshare")
            .args(["-n", env!("CARGO_BIN_EXE_meshtalk")])
            .args(["-q", "mesh", "--port", "0", "--name", "alone"]),
    );
    let port = port_in(&node.next_line(WAIT));
    let second = node.next_line(WAIT);
    assert!(
        second.ends_with(&format!(
            "reachable from this machine only: 127.0.0.1:{port}"
        )),
        "{second}"
    );
}
