//! Real multi-host tests: three network namespaces A, B and C, each with one
//! `meshtalk mesh` on its own address from 198.18.0.0/15 (reserved for network
//! benchmarks), joined by veth pairs to a bridge in a fourth namespace that has
//! no route out. They check what loopback cannot: peers told apart by IP, a
//! broadcast across A-B-C where A and C are not linked, delay and loss on a
//! link, a link taken down, and how soon TCP keepalive notices a silent cut.
//!
//! Root only, with `ip` (Debian package iproute2, which also has `tc`). Delay
//! and loss use `tc netem`, or where the kernel has no netem, nftables (Debian
//! package nftables) and a slow `tbf`. A test that cannot run here fails when
//! `MESHTALK_NETNS_REQUIRED=1` (`.ci/run` sets it when it runs as root);
//! otherwise it writes `*** SKIPPED <test>: <why>` to stderr past libtest's
//! capture (so it shows without `--nocapture`, and `.ci/run` counts it as
//! skipped, not passed) and returns. The namespaces are removed even when a
//! test fails.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::netns::{skip, skipped};
use common::{Node, WAIT};

/// The hosts' names and addresses, in the order of the namespaces.
const HOSTS: [(&str, &str); 3] = [
    ("a", "198.18.0.1"),
    ("b", "198.18.0.2"),
    ("c", "198.18.0.3"),
];

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

    /// Starts `meshtalk mesh` as host `i` (0 = A) with the flags `extra`.
    fn node_with(&self, i: usize, extra: &[&str]) -> Node {
        let (name, addr) = HOSTS[i];
        Node::spawn(
            Command::new("ip")
                .args(["netns", "exec", &self.hosts[i]])
                .arg(env!("CARGO_BIN_EXE_meshtalk"))
                .args(["-q", "mesh", "--port", "0", "--bind", addr, "--json"])
                .args(["--no-discover"])
                .args(extra)
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

/// Dead-peer bounds short enough that a link taken down is noticed within 4 s.
const SHORT_BOUNDS: &[&str] = &["--keepalive", "2", "--ping-after", "2", "--dead-after", "2"];

/// A, B and C with B linked to both A and C (A and C not linked).
fn line(net: &Net) -> [Node; 3] {
    line_with(net, SHORT_BOUNDS)
}

/// A, B and C as [`line`] links them, each started with the flags `extra`.
fn line_with(net: &Net, extra: &[&str]) -> [Node; 3] {
    let a = net.node_with(0, extra);
    let mut b = net.node_with(1, extra);
    let c = net.node_with(2, extra);
    link(&mut b, &a, 0);
    link(&mut b, &c, 2);
    [a, b, c]
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

/// The delay and loss put on the B-C link, per packet and both ways.
const LOSS_PERCENT: u32 = 5;
/// netem's delay, where the kernel has netem.
const NETEM_DELAY: &str = "50ms";
/// Without netem, the B-C link's rate: slow enough that a batch of messages
/// and their receipts queue up in front of it, which delays them.
const SLOW_RATE: &str = "16kbit";

/// How the B-C link was made bad.
enum Emulation {
    /// `tc netem` delay and loss.
    Netem,
    /// nftables' random drops and a slow `tbf`, where the kernel has no netem.
    NftablesAndTbf,
}

/// Makes the B-C link lossy and slow, both ways, and says how; an error says
/// why neither way works on this machine.
///
/// `tc netem` where the kernel has it. Otherwise (a kernel built without
/// sch_netem, as in Firecracker VMs) nftables drops packets at random on the
/// bridge's port to C and a token bucket (`tbf`) on each end of C's link
/// queues them.
fn impair_b_to_c(net: &Net) -> Result<(Emulation, String), String> {
    // Both ways: the bridge's port to C, and C's own interface.
    let ends = [(&net.bridge, "vec"), (&net.hosts[2], "eth0")];
    let loss = format!("{LOSS_PERCENT}%");
    let netem = format!("netem delay {NETEM_DELAY} loss {loss}");
    let netem = ends.iter().try_for_each(|(ns, dev)| qdisc(ns, dev, &netem));
    let no_netem = match netem {
        Ok(()) => {
            let how = format!("tc netem delay {NETEM_DELAY} loss {loss}");
            return Ok((Emulation::Netem, how));
        }
        Err(e) => e,
    };
    // A first netem that worked while the second did not is taken off again.
    for (ns, dev) in ends {
        let _ = run("tc", &["-n", ns, "qdisc", "del", "dev", dev, "root"]);
    }
    // Random loss in the bridge, on whatever it forwards to or from C: the
    // link loses packets, neither host's stack sees a local drop.
    let rules = format!(
        "table bridge meshtalk_lossy {{\n\
         \tchain forward {{\n\
         \t\ttype filter hook forward priority 0; policy accept;\n\
         \t\tiifname \"vec\" numgen random mod 100 < {LOSS_PERCENT} counter drop\n\
         \t\toifname \"vec\" numgen random mod 100 < {LOSS_PERCENT} counter drop\n\
         \t}}\n\
         }}\n"
    );
    nft(&net.bridge, &rules).map_err(|e| format!("no netem ({no_netem}) and no nftables ({e})"))?;
    // Delay: a slow token bucket holds what B and C send each other in a queue
    // (up to 5 s of it) instead of dropping it.
    let tbf = format!("tbf rate {SLOW_RATE} burst 1600 latency 5s");
    for (ns, dev) in ends {
        qdisc(ns, dev, &tbf).map_err(|e| format!("no netem ({no_netem}) and no tbf ({e})"))?;
    }
    let how =
        format!("no netem here, so nftables loss {loss} (numgen random) and tbf rate {SLOW_RATE}");
    Ok((Emulation::NftablesAndTbf, how))
}

/// Puts the root qdisc `spec` (e.g. `tbf rate 1mbit ...`) on `dev` in namespace `ns`.
fn qdisc(ns: &str, dev: &str, spec: &str) -> Result<(), String> {
    let mut args = vec!["-n", ns, "qdisc", "add", "dev", dev, "root"];
    args.extend(spec.split_whitespace());
    run("tc", &args)
}

/// How many packets the rules of [`impair_b_to_c`] dropped in namespace `ns`
/// (the sum of their counters; 0 when they cannot be read).
fn nft_dropped(ns: &str) -> u64 {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "list", "table"])
        .args(["bridge", "meshtalk_lossy"])
        .output();
    let listing = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    listing
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            l.split("counter packets ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// Loads the nftables `rules` into namespace `ns` (`nft -f -`); the error says
/// what failed.
fn nft(ns: &str, rules: &str) -> Result<(), String> {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("ip netns exec nft: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(rules.as_bytes())
            .map_err(|e| format!("nft -f -: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("nft -f -: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft -f -: {} (is the nftables package installed?)",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[test]
fn with_delay_and_loss_on_a_link_200_messages_arrive_once_each_in_order() {
    if skipped() {
        return;
    }
    let net = Net::new("tc");
    // A lossy link can be silent for seconds while TCP backs off its resends:
    // a ping unanswered for 4 s is no dead peer here (it dropped the link once in CI).
    let [_a, mut b, c] = line_with(&net, &["--ping-after", "5", "--dead-after", "15"]);
    let (emulation, how) = match impair_b_to_c(&net) {
        Ok(done) => done,
        Err(why) => {
            skip(&why);
            return;
        }
    };
    eprintln!("B-C link: {how}");
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
    eprintln!("200 messages over {how} in {:?}", started.elapsed());
    // About 500 packets cross the link: none lost means no loss was emulated.
    let dropped = match emulation {
        Emulation::NftablesAndTbf => nft_dropped(&net.bridge),
        Emulation::Netem => netem_dropped(&net),
    };
    eprintln!("the link dropped {dropped} packets on the way");
    assert!(dropped > 0, "nothing was dropped: the link was not lossy");
}

/// How many packets the netem qdiscs of [`impair_b_to_c`] dropped, both ends
/// together (`tc -s qdisc show`: `Sent ... (dropped N, ...)`).
fn netem_dropped(net: &Net) -> u64 {
    [(&net.bridge, "vec"), (&net.hosts[2], "eth0")]
        .iter()
        .map(|(ns, dev)| {
            let out = Command::new("tc")
                .args(["-n", ns, "-s", "qdisc", "show", "dev", dev])
                .output();
            qdisc_dropped(
                &out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default(),
            )
        })
        .sum()
}

/// The sum of the `dropped N` counts in `tc -s qdisc show` output.
fn qdisc_dropped(listing: &str) -> u64 {
    listing
        .split("(dropped ")
        .skip(1)
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

#[test]
fn dropped_counts_are_read_from_tc_statistics() {
    let listing = "qdisc netem 8001: root refcnt 2 limit 1000 delay 50ms loss 5%\n \
                   Sent 31337 bytes 420 pkt (dropped 17, overlimits 0 requeues 0)\n \
                   backlog 0b 0p requeues 0\n\
                   qdisc netem 8002: root\n Sent 1 bytes 1 pkt (dropped 4, overlimits 0 requeues 0)\n";
    assert_eq!(qdisc_dropped(listing), 21);
    assert_eq!(qdisc_dropped("qdisc noqueue 0: root refcnt 2\n"), 0);
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

/// TCP keepalive's idle time in the keepalive test, in seconds: the host probes
/// every third of it (at least 1 s), and 3 unanswered probes end the link.
const KEEPALIVE: u64 = 3;

#[test]
fn with_keepalive_3_a_silently_cut_link_is_reported_within_about_twice_3_seconds() {
    if skipped() {
        return;
    }
    let net = Net::new("ka");
    // Pings only after a minute: keepalive alone can notice the cut in time.
    let keepalive = KEEPALIVE.to_string();
    let flags = [
        "--keepalive",
        &keepalive,
        "--ping-after",
        "60",
        "--dead-after",
        "60",
    ];
    let mut b = net.node_with(1, &flags);
    let c = net.node_with(2, &flags);
    link(&mut b, &c, 2);
    // Both silent, the link cut where neither host sees it (the bridge's port to
    // C goes down): nothing but keepalive's probes can tell.
    thread_sleep_secs(1);
    ip(&["-n", &net.bridge, "link", "set", "vec", "down"]);
    let started = Instant::now();
    let gone = b.expect("disconnected", Duration::from_secs(40), |e| {
        e["alias"] == "c"
    });
    let took = started.elapsed();
    eprintln!("keepalive {KEEPALIVE} s: B reported C gone {took:?} after the cut: {gone}");
    // Linux ends the link at the first probe (idle S, then every S/3 s, at least
    // 1 s) once TCP_USER_TIMEOUT, 2 x S here, has passed since the last packet
    // heard: 6 s, of which 1 s passed before the cut (measured: 5.1-5.2 s after
    // it); 2 s more for a loaded machine.
    let bound = Duration::from_secs(2 * KEEPALIVE + 2);
    assert!(
        took <= bound,
        "B saw the cut after {took:?}, over {bound:?}"
    );
    drop(c);
}

/// Sleeps `secs` seconds.
fn thread_sleep_secs(secs: u64) {
    std::thread::sleep(Duration::from_secs(secs));
}
