//! LAN discovery between real hosts: network namespaces on bridges in a
//! namespace of their own, addresses from 198.18.0.0/15, no route out, so no
//! beacon ever reaches this machine's own interfaces. Nodes find each other
//! with no address typed (`/nearby`, `connect <name>`, `--auto-connect`), a node
//! on two bridges is found on both, a private room's beacons say nothing to
//! outsiders, hostile datagrams change nothing, a node that quits is gone from
//! the others' `/nearby` at once (its farewell), and `--auto-connect` dials a
//! member whose link dropped again.
//!
//! Root only, with `ip` (iproute2); skipped otherwise unless
//! `MESHTALK_NETNS_REQUIRED=1`, as `netns.rs` does. The capture and the hostile
//! sender are this test binary itself, run in a namespace (`ip netns exec`) as
//! the test [`udp_helper`], which does nothing unless told to.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::home::TempDir;
use common::netns::skipped;
use common::{Node, WAIT};
use serde_json::Value;

/// The discovery group and port (host/src/discover.rs).
const GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 77, 84);
const PORT: u16 = 44838;
/// How long a node may take to find another: its first beacon goes within
/// 250 ms of start, two more follow a second apart.
const FIND: Duration = Duration::from_secs(10);

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Namespaces on bridges; dropping it deletes them.
struct Net {
    base: String,
    /// The bridges' namespace.
    bridges: String,
    /// Each host's namespace and its addresses.
    hosts: Vec<(String, Vec<&'static str>)>,
}

impl Net {
    /// Hosts named by `hosts`, each with (bridge, address) pairs: bridge `n` is
    /// `brN`, 198.18.N.0/24; a host's interfaces are `eth0`, `eth1`...
    fn new(tag: &str, hosts: &[(&str, &[(usize, &'static str)])]) -> Net {
        let base = format!("md{}{tag}", std::process::id());
        let mut net = Net {
            bridges: format!("{base}br"),
            base: base.clone(),
            hosts: Vec::new(),
        };
        ip(&["netns", "add", &net.bridges]);
        let br = net.bridges.clone();
        let most = hosts
            .iter()
            .flat_map(|(_, links)| links.iter().map(|(b, _)| *b))
            .max()
            .unwrap_or(0);
        for b in 0..=most {
            let name = format!("br{b}");
            ip(&["-n", &br, "link", "add", &name, "type", "bridge"]);
            ip(&["-n", &br, "link", "set", &name, "up"]);
        }
        for (name, links) in hosts {
            let ns = format!("{base}{name}");
            ip(&["netns", "add", &ns]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            let mut addrs = Vec::new();
            for (i, (b, addr)) in links.iter().enumerate() {
                let port = format!("v{name}{i}");
                let dev = format!("eth{i}");
                ip(&[
                    "-n", &br, "link", "add", &port, "type", "veth", "peer", "name", &dev, "netns",
                    &ns,
                ]);
                ip(&[
                    "-n",
                    &br,
                    "link",
                    "set",
                    &port,
                    "master",
                    &format!("br{b}"),
                    "up",
                ]);
                ip(&["-n", &ns, "addr", "add", &format!("{addr}/24"), "dev", &dev]);
                ip(&["-n", &ns, "link", "set", &dev, "up"]);
                addrs.push(*addr);
            }
            net.hosts.push((ns, addrs));
        }
        net
    }

    /// `meshtalk mesh --discover --json` as host `i`, listening on every
    /// address (`0.0.0.0`) and a free port unless `extra` says `--port`, with
    /// `extra` flags and environment.
    fn node(&self, i: usize, name: &str, extra: &[&str], env: &[(&str, &str)]) -> Node {
        let mut command = Command::new("ip");
        let port = if extra.contains(&"--port") {
            &[][..]
        } else {
            &["--port", "0"][..]
        };
        command
            .args(["netns", "exec", &self.hosts[i].0])
            .arg(env!("CARGO_BIN_EXE_meshtalk"))
            .args(["-q", "mesh"])
            .args(port)
            .args(["--json", "--discover"])
            .args(extra)
            .args(["--name", name]);
        for (k, v) in env {
            command.env(k, v);
        }
        Node::spawn(&mut command, name, true)
    }

    /// Runs [`udp_helper`] in host `i`'s namespace with `env`; its output.
    fn helper(&self, i: usize, env: &[(&str, &str)]) -> Output {
        let exe = std::env::current_exe().expect("the test binary");
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.hosts[i].0])
            .arg(exe)
            .args([
                "--exact",
                "udp_helper",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("MT_HELPER_IF", self.hosts[i].1[0]);
        for (k, v) in env {
            command.env(k, v);
        }
        command.output().expect("run the UDP helper")
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for (ns, _) in &self.hosts {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.bridges])
            .output();
        let _ = &self.base;
    }
}

/// A node that quits is gone from the others' tables within this (its
/// farewell); without one it would linger 225 s.
const GONE: Duration = Duration::from_secs(2);

/// Sends `node` a signal by name (`TERM`, `INT`) with kill(1).
fn signal(node: &Node, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &node.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} failed");
}

/// Waits for a `nearby` event at `node` saying `name` was found; that event.
fn finds(node: &Node, name: &str) -> Value {
    node.expect("nearby", FIND, |e| {
        e["change"] == "found" && e["name"] == name
    })
}

/// Waits until `node` has found every one of `names`, in any order.
fn finds_all(node: &Node, names: &[&str]) {
    let mut left: BTreeSet<&str> = names.iter().copied().collect();
    while !left.is_empty() {
        let e = node.expect("nearby", FIND, |e| {
            e["change"] == "found" && e["name"].as_str().is_some_and(|n| left.contains(n))
        });
        left.remove(e["name"].as_str().unwrap_or_default());
    }
}

/// `/nearby` at `node`: its list.
fn nearby_list(node: &mut Node) -> Vec<Value> {
    node.type_line("/nearby");
    let list = node.expect("nearby_list", WAIT, |_| true);
    list["nodes"].as_array().cloned().unwrap_or_default()
}

fn names(list: &[Value]) -> BTreeSet<String> {
    list.iter()
        .filter_map(|n| n["name"].as_str().map(str::to_string))
        .collect()
}

/// Not a test of its own: run by the tests in a namespace (`MT_HELPER` says
/// what to do), it listens to the discovery group (`capture`: each datagram as
/// hex, one a line, for `MT_SECS`) or sends hostile datagrams to it (`hostile`).
#[test]
fn udp_helper() {
    let Ok(what) = std::env::var("MT_HELPER") else {
        return;
    };
    let iface: Ipv4Addr = std::env::var("MT_HELPER_IF")
        .expect("MT_HELPER_IF")
        .parse()
        .expect("an IPv4 address");
    match what.as_str() {
        "capture" => {
            let secs: u64 = std::env::var("MT_SECS").map_or(4, |s| s.parse().expect("secs"));
            let socket = UdpSocket::bind(SocketAddrV4::new(GROUP, PORT)).expect("bind the group");
            socket.join_multicast_v4(&GROUP, &iface).expect("join");
            socket
                .set_read_timeout(Some(Duration::from_millis(200)))
                .expect("timeout");
            let until = Instant::now() + Duration::from_secs(secs);
            let mut buf = [0u8; 4096];
            let mut out = std::io::stdout().lock();
            while Instant::now() < until {
                if let Ok((n, _)) = socket.recv_from(&mut buf) {
                    let hex: String = buf[..n].iter().map(|b| format!("{b:02x}")).collect();
                    writeln!(out, "DATAGRAM {hex}").expect("write");
                }
            }
        }
        "hostile" => {
            let socket = UdpSocket::bind(SocketAddrV4::new(iface, 0)).expect("bind");
            socket2::SockRef::from(&socket)
                .set_multicast_if_v4(&iface)
                .expect("multicast if");
            let to = SocketAddrV4::new(GROUP, PORT);
            let mut sent = 0u64;
            // Garbage, an oversized datagram, and a flood of near-beacons.
            let _ = socket.send_to(b"not a beacon at all", to);
            let _ = socket.send_to(&[0x6d; 1400], to);
            let mut beacon = b"mtbc\x01".to_vec();
            beacon.extend([0xab; 60]);
            for i in 0..20_000u32 {
                beacon[6..10].copy_from_slice(&i.to_be_bytes());
                if socket.send_to(&beacon, to).is_ok() {
                    sent += 1;
                }
            }
            println!("SENT {sent}");
        }
        other => panic!("unknown helper {other}"),
    }
}

#[test]
fn three_nodes_on_a_lan_find_each_other_and_connect_by_name() {
    if skipped() {
        return;
    }
    let net = Net::new(
        "three",
        &[
            ("a", &[(0, "198.18.0.1")]),
            ("b", &[(0, "198.18.0.2")]),
            ("c", &[(0, "198.18.0.3")]),
        ],
    );
    let mut alice = net.node(0, "alice", &[], &[]);
    let bob = net.node(1, "bob", &[], &[]);
    let carol = net.node(2, "carol", &[], &[]);
    let found = alice.expect("nearby", FIND, |e| e["change"] == "found");
    let bob_found = found["name"] == "bob";
    finds(&alice, if bob_found { "carol" } else { "bob" });
    if bob_found {
        assert_eq!(
            found["addrs"][0],
            format!("198.18.0.2:{}", bob.port),
            "{found}"
        );
        assert_eq!(found["in_room"], true, "{found}");
    }
    finds_all(&bob, &["alice", "carol"]);
    finds_all(&carol, &["alice", "bob"]);
    let list = nearby_list(&mut alice);
    assert_eq!(
        names(&list),
        BTreeSet::from(["bob".to_string(), "carol".to_string()]),
        "{list:?}"
    );
    let bob_entry = list.iter().find(|n| n["name"] == "bob").expect("bob");
    assert_eq!(
        bob_entry["addrs"][0],
        format!("198.18.0.2:{}", bob.port),
        "{list:?}"
    );
    assert_eq!(bob_entry["linked"], false, "{list:?}");
    // A name not heard is an error that says where the names are.
    alice.type_line("connect dave");
    let error = alice.expect("error", WAIT, |_| true);
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("no node named dave heard nearby")),
        "{error}"
    );
    // No address typed: the name of a node heard.
    alice.type_line("connect carol");
    alice.expect("connected", WAIT, |e| {
        e["alias"] == "carol"
            && e["addr"]
                .as_str()
                .is_some_and(|a| a.starts_with("198.18.0.3:"))
    });
    carol.expect("connected", WAIT, |e| e["alias"] == "alice");
    let list = nearby_list(&mut alice);
    let carol_entry = list.iter().find(|n| n["name"] == "carol").expect("carol");
    assert_eq!(carol_entry["linked"], true, "{list:?}");
    drop(bob);
}

#[test]
fn a_node_on_two_lans_is_found_on_both() {
    if skipped() {
        return;
    }
    let net = Net::new(
        "two",
        &[
            ("a", &[(0, "198.18.0.1")]),
            ("b", &[(0, "198.18.0.2"), (1, "198.18.1.2")]),
            ("c", &[(1, "198.18.1.3")]),
        ],
    );
    let alice = net.node(0, "alice", &[], &[]);
    let mut bob = net.node(1, "bob", &[], &[]);
    let carol = net.node(2, "carol", &[], &[]);
    let at_a = finds(&alice, "bob");
    assert_eq!(
        at_a["addrs"][0],
        format!("198.18.0.2:{}", bob.port),
        "{at_a}"
    );
    let at_c = finds(&carol, "bob");
    assert_eq!(
        at_c["addrs"][0],
        format!("198.18.1.2:{}", bob.port),
        "{at_c}"
    );
    finds_all(&bob, &["alice", "carol"]);
    assert_eq!(
        names(&nearby_list(&mut bob)),
        BTreeSet::from(["alice".to_string(), "carol".to_string()])
    );
    // A and C share no LAN: neither hears the other.
    let mut alice = alice;
    assert_eq!(
        names(&nearby_list(&mut alice)),
        BTreeSet::from(["bob".to_string()])
    );
}

#[test]
fn a_private_rooms_beacons_carry_no_name_or_key_and_outsiders_cannot_read_them() {
    if skipped() {
        return;
    }
    let net = Net::new(
        "room",
        &[
            ("a", &[(0, "198.18.0.1")]),
            ("b", &[(0, "198.18.0.2")]),
            ("c", &[(0, "198.18.0.3")]),
        ],
    );
    let room = [("MESHTALK_ROOM_PASSPHRASE", "correct horse battery staple")];
    let capture = std::thread::scope(|s| {
        let capture = s.spawn(|| net.helper(2, &[("MT_HELPER", "capture"), ("MT_SECS", "5")]));
        std::thread::sleep(Duration::from_millis(300));
        let alice = net.node(0, "alicexyz", &[], &room);
        let bob = net.node(1, "bobbyqrs", &[], &room);
        let mut outsider = net.node(2, "outsider", &[], &[]);
        let found = finds(&alice, "bobbyqrs");
        assert_eq!(found["in_room"], true, "{found}");
        finds(&bob, "alicexyz");
        let capture = capture.join().expect("capture");
        // The outsider has heard their beacons all this time: none is a node it lists.
        let list = nearby_list(&mut outsider);
        assert!(
            list.iter().all(|n| n["in_room"] != true),
            "the outsider counts room members as its room: {list:?}"
        );
        assert!(names(&list).is_empty(), "names leaked: {list:?}");
        capture
    });
    let text = String::from_utf8_lossy(&capture.stdout);
    let datagrams: Vec<Vec<u8>> = text
        .lines()
        .filter_map(|l| l.strip_prefix("DATAGRAM "))
        .map(|hex| {
            (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
                .collect()
        })
        .collect();
    assert!(
        datagrams.len() >= 4,
        "captured too few beacons: {text} {}",
        String::from_utf8_lossy(&capture.stderr)
    );
    for d in &datagrams {
        for name in [&b"alicexyz"[..], b"bobbyqrs"] {
            assert!(
                !d.windows(name.len()).any(|w| w == name),
                "a name in the clear: {d:02x?}"
            );
        }
    }
    // The key is in no two beacons alike: past the header, no 8 bytes repeat
    // between any two (an open beacon repeats its 32-byte key in each).
    let header = 5;
    for (i, x) in datagrams.iter().enumerate() {
        for y in &datagrams[i + 1..] {
            let xs: BTreeSet<&[u8]> = x[header..].windows(8).collect();
            assert!(
                !y[header..].windows(8).any(|w| xs.contains(w)),
                "8 bytes repeat between two sealed beacons: {x:02x?} {y:02x?}"
            );
        }
    }
}

#[test]
fn hostile_datagrams_on_the_lan_change_nothing_and_the_node_serves_on() {
    if skipped() {
        return;
    }
    let net = Net::new(
        "hostile",
        &[
            ("a", &[(0, "198.18.0.1")]),
            ("b", &[(0, "198.18.0.2")]),
            ("c", &[(0, "198.18.0.3")]),
        ],
    );
    let mut alice = net.node(0, "alice", &[], &[]);
    let bob = net.node(1, "bob", &[], &[]);
    finds(&alice, "bob");
    let out = net.helper(2, &[("MT_HELPER", "hostile")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("SENT "), "the helper sent nothing: {text}");
    // Nothing of it is a node, and alice lists bob still and dials him by name.
    assert_eq!(
        names(&nearby_list(&mut alice)),
        BTreeSet::from(["bob".to_string()])
    );
    alice.type_line("connect bob");
    alice.expect("connected", WAIT, |e| e["alias"] == "bob");
    bob.expect("connected", WAIT, |e| e["alias"] == "alice");
}

#[test]
fn auto_connect_links_the_room_members_found_with_no_address_typed() {
    if skipped() {
        return;
    }
    let net = Net::new(
        "auto",
        &[
            ("a", &[(0, "198.18.0.1")]),
            ("b", &[(0, "198.18.0.2")]),
            ("c", &[(0, "198.18.0.3")]),
        ],
    );
    let nodes: Vec<Node> = ["alice", "bob", "carol"]
        .iter()
        .enumerate()
        .map(|(i, name)| net.node(i, name, &["--auto-connect"], &[]))
        .collect();
    // Every pair linked once: the node whose key sorts first dials.
    for (i, node) in nodes.iter().enumerate() {
        let mut peers = BTreeSet::new();
        let deadline = Instant::now() + FIND;
        while peers.len() < 2 && Instant::now() < deadline {
            let e = node.expect("connected", FIND, |_| true);
            peers.insert(e["alias"].as_str().unwrap_or_default().to_string());
        }
        assert_eq!(peers.len(), 2, "node {i} linked to {peers:?}");
    }
}

#[test]
fn bound_to_every_address_a_node_is_heard_over_ipv6_link_local_too() {
    if skipped() {
        return;
    }
    let net = Net::new(
        "six",
        &[("a", &[(0, "198.18.0.1")]), ("b", &[(0, "198.18.0.2")])],
    );
    let alice = net.node(0, "alice", &["--bind", "::"], &[]);
    let _bob = net.node(1, "bob", &["--bind", "::"], &[]);
    // IPv6 comes once the link-local address is past duplicate detection.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let e = alice.expect("nearby", Duration::from_secs(20), |e| e["name"] == "bob");
        let addrs: Vec<&str> = e["addrs"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        // Link-local with its interface's scope: dialable as it stands.
        if addrs
            .iter()
            .any(|a| a.starts_with("[fe80:") && a.contains('%'))
        {
            assert!(addrs[0].starts_with("198.18.0.2:"), "IPv4 first: {addrs:?}");
            break;
        }
        assert!(Instant::now() < deadline, "never heard over IPv6: {e}");
    }
}

/// The issue's proof: three machines on one LAN, no address typed; alice and
/// carol each link to bob by name, and alice's direct message reaches carol
/// through bob, with its receipt.
#[test]
fn found_by_name_a_line_carries_a_direct_message_from_a_to_c_through_b() {
    if skipped() {
        return;
    }
    let net = Net::new(
        "line",
        &[
            ("a", &[(0, "198.18.0.1")]),
            ("b", &[(0, "198.18.0.2")]),
            ("c", &[(0, "198.18.0.3")]),
        ],
    );
    let mut alice = net.node(0, "alice", &[], &[]);
    let bob = net.node(1, "bob", &[], &[]);
    let mut carol = net.node(2, "carol", &[], &[]);
    finds(&alice, "bob");
    finds(&carol, "bob");
    alice.type_line("connect bob");
    alice.expect("connected", WAIT, |e| e["alias"] == "bob");
    carol.type_line("connect bob");
    carol.expect("connected", WAIT, |e| e["alias"] == "bob");
    bob.expect("connected", WAIT, |e| e["alias"] == "carol");
    carol.type_line("broadcast carol here");
    alice.expect("message", WAIT, |e| e["text"] == "carol here");
    alice.type_line("send carol hi carol, found on the LAN");
    let got = carol.expect("routed", WAIT, |e| e["what"] == "received");
    assert_eq!(got["text"], "hi carol, found on the LAN");
    assert_eq!(got["hops"], 2, "through bob: {got}");
    alice.expect("routed", WAIT, |e| {
        e["what"] == "delivered" && e["name"] == "carol"
    });
}

/// Each way out of the program (the end of input, `/quit`, SIGTERM, SIGINT)
/// says farewell: the others drop the node from `/nearby` within a second or
/// two, where they used to keep it for 225 s.
#[test]
fn a_node_that_quits_is_gone_from_the_others_nearby_within_a_second_or_two() {
    if skipped() {
        return;
    }
    let net = Net::new(
        "bye",
        &[
            ("a", &[(0, "198.18.0.1")]),
            ("b", &[(0, "198.18.0.2")]),
            ("c", &[(0, "198.18.0.3")]),
            ("d", &[(0, "198.18.0.4")]),
            ("e", &[(0, "198.18.0.5")]),
        ],
    );
    let mut alice = net.node(0, "alice", &[], &[]);
    let mut leavers = vec![
        ("bob", net.node(1, "bob", &[], &[])),
        ("carol", net.node(2, "carol", &[], &[])),
        ("dave", net.node(3, "dave", &[], &[])),
        ("erin", net.node(4, "erin", &[], &[])),
    ];
    finds_all(&alice, &["bob", "carol", "dave", "erin"]);
    for (name, node) in &mut leavers {
        let start = Instant::now();
        let how = match *name {
            "bob" => {
                node.stdin = None;
                "the end of input"
            }
            "carol" => {
                node.type_line("/quit");
                "/quit"
            }
            "dave" => {
                signal(node, "TERM");
                "SIGTERM"
            }
            _ => {
                signal(node, "INT");
                "SIGINT"
            }
        };
        let lost = alice.expect("nearby", GONE, |e| {
            e["change"] == "lost" && e["name"] == *name
        });
        println!(
            "{name} quit by {how}: gone from alice's table after {:?}",
            start.elapsed()
        );
        assert_eq!(lost["in_room"], true, "{lost}");
        assert!(node.wait_exit(WAIT).success(), "{name} after {how}");
    }
    let list = nearby_list(&mut alice);
    assert!(list.is_empty(), "still listed: {list:?}");
}

/// A private room's farewell is sealed like its beacons: the members drop the
/// node at once; an outsider, which never listed it, learns nothing new.
#[test]
fn a_private_room_members_farewell_is_heard_by_members() {
    if skipped() {
        return;
    }
    let net = Net::new(
        "roombye",
        &[("a", &[(0, "198.18.0.1")]), ("b", &[(0, "198.18.0.2")])],
    );
    let room = [("MESHTALK_ROOM_PASSPHRASE", "correct horse battery staple")];
    let alice = net.node(0, "alice", &[], &room);
    let mut bob = net.node(1, "bob", &[], &room);
    finds(&alice, "bob");
    bob.type_line("/quit");
    alice.expect("nearby", GONE, |e| {
        e["change"] == "lost" && e["name"] == "bob"
    });
}

/// `--auto-connect` keeps its links: the member it dialled is killed (no
/// farewell) and started again on its port with its key; its link comes back
/// with nothing typed (the dialler tries again, 1 s, then 2 s, 4 s... apart).
#[test]
fn an_auto_connected_member_killed_and_restarted_is_linked_again_without_typing() {
    if skipped() {
        return;
    }
    let net = Net::new(
        "redial",
        &[("a", &[(0, "198.18.0.1")]), ("b", &[(0, "198.18.0.2")])],
    );
    let homes = [TempDir::new("redial-alice"), TempDir::new("redial-bob")];
    let env = |i: usize| -> Vec<(String, String)> {
        let home = homes[i].path();
        vec![
            ("HOME".into(), home.display().to_string()),
            (
                "XDG_CONFIG_HOME".into(),
                home.join("config").display().to_string(),
            ),
            (
                "XDG_STATE_HOME".into(),
                home.join("state").display().to_string(),
            ),
            (
                "XDG_DATA_HOME".into(),
                home.join("data").display().to_string(),
            ),
        ]
    };
    let start = |i: usize, name: &str, port: Option<u16>| -> Node {
        let env = env(i);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let port = port.map(|p| p.to_string());
        let mut extra = vec!["--auto-connect"];
        if let Some(port) = &port {
            extra.extend(["--port", port]);
        }
        net.node(i, name, &extra, &env)
    };
    let mut nodes = vec![start(0, "alice", None), start(1, "bob", None)];
    // Which one dials is up to the keys: the one whose key sorts first.
    let linked = nodes[0].expect("connected", FIND, |e| e["alias"] == "bob");
    let dialled = if linked["direction"] == "out" { 1 } else { 0 };
    let dialler = 1 - dialled;
    let name = ["alice", "bob"][dialled];
    nodes[1].expect("connected", WAIT, |e| e["alias"] == "alice");
    let port = nodes[dialled].port;
    // Killed: no farewell, so it stays in the dialler's table.
    drop(nodes.remove(dialled));
    let dialler_node = nodes.pop().expect("the dialler");
    dialler_node.expect("disconnected", WAIT, |_| true);
    let again = start(dialled, name, Some(port));
    let began = Instant::now();
    dialler_node.expect("connected", Duration::from_secs(20), |e| {
        e["alias"] == name && e["direction"] == "out"
    });
    println!(
        "{} linked to {name} again {:?} after its restart",
        ["alice", "bob"][dialler],
        began.elapsed()
    );
    again.expect("connected", WAIT, |e| e["direction"] == "in");
}
