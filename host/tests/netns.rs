//! Real multi-host tests: three network namespaces A, B and C, each with one
//! `meshtalk mesh` on its own address from 198.18.0.0/15 (reserved for network
//! benchmarks), joined by veth pairs to a bridge in a fourth namespace that has
//! no route out. They check what loopback cannot: peers told apart by IP, a
//! broadcast across A-B-C where A and C are not linked, delay and loss on a
//! link, and a link taken down.
//!
//! Root only, with `ip` (Debian package iproute2, which also has `tc`); anything
//! else prints why the test is skipped and passes. The namespaces are removed
//! even when a test fails.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Node, WAIT};

/// The hosts' names and addresses, in the order of the namespaces.
const HOSTS: [(&str, &str); 3] = [
    ("a", "198.18.0.1"),
    ("b", "198.18.0.2"),
    ("c", "198.18.0.3"),
];

/// Why these tests cannot run here, if they cannot.
fn skip_reason() -> Option<String> {
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

/// Runs `ip` (or `tc`) with `args`; the error is its stderr.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs `ip` with `args`, panicking on failure.
fn ip(args: &[&str]) {
    run("ip", args).unwrap_or_else(|e| panic!("{e}"));
}

/// The namespaces of one test; dropping it deletes them (and so their links).
struct Net {
    /// The bridge's namespace.
    bridge: String,
    /// A, B and C.
    hosts: Vec<String>,
}

impl Net {
    /// Three hosts on a bridge; `tag` keeps tests running at once apart.
    fn new(tag: &str) -> Net {
        let base = format!("mt{}{tag}", std::process::id());
        let mut net = Net {
            bridge: format!("{base}br"),
            hosts: Vec::new(),
        };
        ip(&["netns", "add", &net.bridge]);
        let br = net.bridge.clone();
        ip(&["-n", &br, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &br, "link", "set", "br0", "up"]);
        for (name, addr) in HOSTS {
            let ns = format!("{base}{name}");
            ip(&["netns", "add", &ns]);
            net.hosts.push(ns.clone());
            let port = format!("ve{name}");
            ip(&[
                "-n", &br, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ]);
            ip(&["-n", &br, "link", "set", &port, "master", "br0", "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        }
        net
    }

    /// Starts `meshtalk mesh` as host `i` (0 = A), listening on its own address.
    fn node(&self, i: usize) -> Node {
        let (name, addr) = HOSTS[i];
        Node::spawn(
            Command::new("ip")
                .args(["netns", "exec", &self.hosts[i]])
                .arg(env!("CARGO_BIN_EXE_meshtalk"))
                .args(["-q", "mesh", "--port", "0", "--bind", addr, "--json"])
                // Short dead-peer bounds, so a link taken down is noticed soon.
                .args(["--keepalive", "2", "--ping-after", "2", "--dead-after", "2"])
                .args(["--name", name]),
            name,
            true,
        )
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.hosts.iter().chain([&self.bridge]) {
            let _ = run("ip", &["netns", "del", ns]);
        }
    }
}

/// `from` dials host `to` by its address and both see the link.
fn link(from: &mut Node, to: &Node, to_host: usize) {
    let addr = HOSTS[to_host].1;
    from.type_line(&format!("connect {addr} {}", to.port));
    from.expect("connected", WAIT, |e| {
        e["addr"].as_str().is_some_and(|a| a.starts_with(addr))
    });
    to.expect("connected", WAIT, |e| e["alias"] == from.name.as_str());
}

/// A, B and C with B linked to both A and C (A and C not linked).
fn line(net: &Net) -> [Node; 3] {
    let a = net.node(0);
    let mut b = net.node(1);
    let c = net.node(2);
    link(&mut b, &a, 0);
    link(&mut b, &c, 2);
    [a, b, c]
}

/// Prints why the test is skipped, if it is.
fn skipped() -> bool {
    match skip_reason() {
        Some(why) => {
            eprintln!("netns test skipped: {why}");
            true
        }
        None => false,
    }
}

#[test]
fn peers_on_other_hosts_are_told_apart_by_ip() {
    if skipped() {
        return;
    }
    let net = Net::new("ip");
    let [a, mut b, c] = line(&net);
    b.type_line("send 198.18.0.1 hello a");
    b.type_line("send 198.18.0.3 hello c");
    let at_a = a.expect("message", WAIT, |_| true);
    let at_c = c.expect("message", WAIT, |_| true);
    assert_eq!(at_a["text"], "hello a");
    assert_eq!(at_c["text"], "hello c");
    b.expect("delivered", WAIT, |_| true);
    b.expect("delivered", WAIT, |_| true);
}

#[test]
fn a_broadcast_from_a_reaches_c_through_b_exactly_once() {
    if skipped() {
        return;
    }
    let net = Net::new("bc");
    let [mut a, b, c] = line(&net);
    a.type_line("broadcast across the room");
    for node in [&b, &c] {
        let got = node.expect("message", WAIT, |_| true);
        assert_eq!(got["text"], "across the room");
        assert_eq!(got["broadcast"], true);
    }
    // Nothing more comes to C: no second copy.
    let later = c.raw_lines_until_quiet(Duration::from_secs(1), WAIT);
    let copies = later
        .iter()
        .filter(|l| String::from_utf8_lossy(l).contains("across the room"))
        .count();
    assert_eq!(copies, 0, "C got the broadcast again");
}

#[test]
fn with_delay_and_loss_on_a_link_200_messages_arrive_once_each_in_order() {
    if skipped() {
        return;
    }
    let net = Net::new("tc");
    let [_a, mut b, c] = line(&net);
    // Both ways on the B-C path: the bridge's port to C and C's own interface.
    let netem = ["delay", "50ms", "loss", "5%"];
    for (ns, dev) in [(&net.bridge, "vec"), (&net.hosts[2], "eth0")] {
        let mut args = vec!["-n", ns, "qdisc", "add", "dev", dev, "root", "netem"];
        args.extend(netem);
        if let Err(e) = run("tc", &args) {
            eprintln!("netns netem test skipped: this kernel has no netem ({e})");
            return;
        }
    }
    let started = Instant::now();
    // At most 32 messages may await their receipt: send in batches of 20.
    for batch in 0..10 {
        for i in batch * 20..(batch + 1) * 20 {
            b.type_line(&format!("send 198.18.0.3 m{i:03}"));
        }
        for _ in 0..20 {
            b.expect("delivered", Duration::from_secs(30), |_| true);
        }
    }
    for i in 0..200 {
        let got = c.expect("message", WAIT, |_| true);
        assert_eq!(got["text"], format!("m{i:03}"), "out of order or doubled");
    }
    let later = c.raw_lines_until_quiet(Duration::from_secs(1), WAIT);
    assert!(
        later
            .iter()
            .all(|l| !String::from_utf8_lossy(l).contains("\"message\"")),
        "more messages than sent"
    );
    eprintln!(
        "200 messages over netem delay 50ms loss 5% in {:?}",
        started.elapsed()
    );
}

#[test]
fn a_link_taken_down_is_reported_as_a_disconnect() {
    if skipped() {
        return;
    }
    let net = Net::new("dn");
    let [_a, mut b, c] = line(&net);
    ip(&["-n", &net.bridge, "link", "set", "vec", "down"]);
    let started = Instant::now();
    // A message in flight, which cannot be delivered now.
    b.type_line("send 198.18.0.3 into the void");
    // The node reports what was not delivered first, then the peer gone.
    b.expect("undelivered", Duration::from_secs(40), |_| true);
    let gone = b.expect("disconnected", WAIT, |e| e["alias"] == "c");
    eprintln!(
        "link down: B reported C gone after {:?}: {gone}",
        started.elapsed()
    );
    drop(c);
}
