//! Where this node can be reached (`meshtalk_core::reach`): the addresses given
//! to people, the interfaces LAN discovery announces on, and how a found node's
//! address is written for `connect`.

use core::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};

use meshtalk_core::reach::{
    Bound, DialHost, IF_NAME, IfName, Iface, Link, PLACES, Reach, announces, links,
};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an address")
}

fn name(s: &str) -> IfName {
    IfName::new(s).expect("a short name")
}

/// An address `ip` of interface `index` named `name`: up, multicast, not loopback.
fn up(index: u32, name_: &str, addr: &str) -> Iface {
    Iface {
        index,
        name: name(name_),
        ip: ip(addr),
        up: true,
        loopback: false,
        multicast: true,
    }
}

/// An address of the loopback interface (up, as it always is).
fn lo(addr: &str) -> Iface {
    Iface {
        loopback: true,
        multicast: false,
        ..up(1, "lo", addr)
    }
}

/// An address of an interface that is down.
fn down(index: u32, name_: &str, addr: &str) -> Iface {
    Iface {
        up: false,
        ..up(index, name_, addr)
    }
}

/// lo, eth0 (IPv4, a global and a link-local IPv6), wlan0 (IPv6 first), and
/// docker0, which is down.
fn machine() -> Vec<Iface> {
    vec![
        lo("127.0.0.1"),
        lo("::1"),
        up(2, "eth0", "192.168.1.20"),
        up(3, "wlan0", "fd00::7"),
        up(3, "wlan0", "10.0.0.5"),
        up(2, "eth0", "fe80::1"),
        down(4, "docker0", "172.17.0.1"),
    ]
}

fn bound(addr: &str, v6_only: bool) -> Bound {
    Bound {
        addr: addr.parse().expect("a socket address"),
        v6_only,
    }
}

/// What a [`Reach`] lists, as written, and whether it is for this machine only.
fn shown<const N: usize>(reach: &Reach<N>) -> (Vec<String>, bool) {
    let addrs = reach.places().iter().map(ToString::to_string).collect();
    (addrs, reach.this_machine_only())
}

fn reach(addr: &str, v6_only: bool, ifaces: &[Iface]) -> (Vec<String>, bool) {
    shown(&Reach::<PLACES>::of(bound(addr, v6_only), ifaces))
}

fn strings(addrs: &[&str]) -> Vec<String> {
    addrs.iter().map(|a| a.to_string()).collect()
}

#[test]
fn all_ipv4_is_every_ipv4_address_of_an_up_interface_but_loopback() {
    assert_eq!(
        reach("0.0.0.0:4000", false, &machine()),
        (strings(&["192.168.1.20:4000", "10.0.0.5:4000"]), false)
    );
}

#[test]
fn dual_stack_all_is_the_ipv4_addresses_then_the_ipv6_ones_link_local_with_its_scope() {
    assert_eq!(
        reach("[::]:4000", false, &machine()),
        (
            strings(&[
                "192.168.1.20:4000",
                "10.0.0.5:4000",
                "[fd00::7]:4000",
                "[fe80::1%eth0]:4000"
            ]),
            false
        )
    );
}

#[test]
fn ipv6_only_all_is_the_ipv6_addresses_alone() {
    assert_eq!(
        reach("[::]:4000", true, &machine()),
        (strings(&["[fd00::7]:4000", "[fe80::1%eth0]:4000"]), false)
    );
}

#[test]
fn a_specific_address_is_that_address_alone() {
    assert_eq!(
        reach("10.0.0.5:4000", false, &machine()),
        (strings(&["10.0.0.5:4000"]), false)
    );
}

#[test]
fn a_loopback_address_is_for_this_machine_only() {
    assert_eq!(
        reach("127.0.0.1:4000", false, &machine()),
        (strings(&["127.0.0.1:4000"]), true)
    );
    assert_eq!(
        reach("[::1]:4000", false, &machine()),
        (strings(&["[::1]:4000"]), true)
    );
}

#[test]
fn all_addresses_on_a_machine_with_only_loopback_are_loopback_for_this_machine_only() {
    let lo = [lo("127.0.0.1"), lo("::1")];
    assert_eq!(
        reach("0.0.0.0:4000", false, &lo),
        (strings(&["127.0.0.1:4000"]), true)
    );
    assert_eq!(
        reach("[::]:4000", false, &lo),
        (strings(&["127.0.0.1:4000", "[::1]:4000"]), true)
    );
    assert_eq!(
        reach("[::]:4000", true, &lo),
        (strings(&["[::1]:4000"]), true)
    );
}

#[test]
fn with_no_interface_read_all_addresses_are_loopback_for_this_machine_only() {
    assert_eq!(
        reach("0.0.0.0:4000", false, &[]),
        (strings(&["127.0.0.1:4000"]), true)
    );
}

#[test]
fn an_address_on_two_interfaces_is_listed_once() {
    let twice = [up(5, "a", "10.0.0.5"), up(6, "b", "10.0.0.5")];
    assert_eq!(
        reach("0.0.0.0:4000", false, &twice),
        (strings(&["10.0.0.5:4000"]), false)
    );
}

#[test]
fn a_link_local_address_on_two_interfaces_is_two_places() {
    let twice = [up(5, "a", "fe80::1"), up(6, "b", "fe80::1")];
    assert_eq!(
        reach("[::]:4000", false, &twice),
        (strings(&["[fe80::1%a]:4000", "[fe80::1%b]:4000"]), false)
    );
}

#[test]
fn a_loopback_address_on_an_interface_not_flagged_loopback_is_never_given() {
    let odd = [up(5, "dummy0", "127.0.0.2"), up(5, "dummy0", "10.0.0.5")];
    assert_eq!(
        reach("0.0.0.0:4000", false, &odd),
        (strings(&["10.0.0.5:4000"]), false)
    );
}

#[test]
fn an_interfaces_unspecified_address_is_never_given() {
    let odd = [
        up(5, "a", "0.0.0.0"),
        up(5, "a", "::"),
        up(6, "b", "10.0.0.5"),
    ];
    assert_eq!(
        reach("[::]:4000", false, &odd),
        (strings(&["10.0.0.5:4000"]), false)
    );
}

#[test]
fn a_specific_scoped_address_is_written_with_its_interfaces_name_else_its_number() {
    let scoped = |scope_id| Bound {
        addr: SocketAddr::V6(SocketAddrV6::new(ip6("fe80::1"), 4000, 0, scope_id)),
        v6_only: false,
    };
    let on_eth0 = Reach::<PLACES>::of(scoped(2), &machine());
    assert_eq!(shown(&on_eth0), (strings(&["[fe80::1%eth0]:4000"]), false));
    let unknown = Reach::<PLACES>::of(scoped(9), &machine());
    assert_eq!(shown(&unknown), (strings(&["[fe80::1%9]:4000"]), false));
}

fn ip6(s: &str) -> Ipv6Addr {
    s.parse().expect("an IPv6 address")
}

#[test]
fn the_line_says_where_or_that_only_this_machine_can() {
    let two = [up(5, "a", "10.0.0.5"), up(2, "eth0", "fe80::1")];
    assert_eq!(
        Reach::<PLACES>::of(bound("[::]:4000", false), &two).to_string(),
        "reachable at 10.0.0.5:4000, [fe80::1%eth0]:4000"
    );
    assert_eq!(
        Reach::<PLACES>::of(bound("127.0.0.1:4000", false), &two).to_string(),
        "reachable from this machine only: 127.0.0.1:4000"
    );
}

#[test]
fn past_its_capacity_the_later_addresses_are_left_out_and_counted() {
    let full = Reach::<2>::of(bound("[::]:4000", false), &machine());
    assert_eq!(
        shown(&full),
        (strings(&["192.168.1.20:4000", "10.0.0.5:4000"]), false)
    );
    assert_eq!(full.left_out(), 2, "the two IPv6 addresses");
    assert_eq!(
        full.to_string(),
        "reachable at 192.168.1.20:4000, 10.0.0.5:4000 and 2 more"
    );
}

#[test]
fn an_address_left_out_twice_is_counted_once() {
    let ifaces = [
        up(5, "a", "10.0.0.1"),
        up(5, "a", "10.0.0.2"),
        up(6, "b", "10.0.0.2"),
        up(6, "b", "10.0.0.3"),
    ];
    let full = Reach::<1>::of(bound("0.0.0.0:4000", false), &ifaces);
    assert_eq!(shown(&full), (strings(&["10.0.0.1:4000"]), false));
    assert_eq!(full.left_out(), 2);
}

#[test]
fn a_full_loopback_fallback_counts_what_it_leaves_out() {
    let full = Reach::<1>::of(bound("[::]:4000", false), &[]);
    assert_eq!(shown(&full), (strings(&["127.0.0.1:4000"]), true));
    assert_eq!(
        full.to_string(),
        "reachable from this machine only: 127.0.0.1:4000 and 1 more"
    );
}

#[test]
fn with_no_room_at_all_the_line_says_how_many_addresses_there_are() {
    let none = Reach::<0>::of(bound("0.0.0.0:4000", false), &machine());
    assert_eq!(shown(&none), (vec![], false));
    assert_eq!(none.left_out(), 2);
    assert_eq!(none.to_string(), "reachable at 2 addresses");
}

#[test]
fn an_interface_name_that_fits_is_kept_and_a_longer_one_refused() {
    let longest = "x".repeat(IF_NAME);
    assert_eq!(IfName::new(&longest).map(|n| n.to_string()), Some(longest));
    assert_eq!(IfName::new(&"x".repeat(IF_NAME + 1)), None);
    assert_eq!(IfName::new("").map(|n| n.to_string()), Some(String::new()));
}

#[test]
fn an_interface_index_is_written_as_its_number() {
    assert_eq!(IfName::number(3).to_string(), "3");
    assert_eq!(IfName::number(u32::MAX).to_string(), "4294967295");
    assert_eq!(format!("{:?}", IfName::number(0)), "\"0\"");
}

// Which interfaces LAN discovery announces on.

#[test]
fn a_node_bound_to_loopback_announces_on_no_interface() {
    for addr in ["127.0.0.1", "192.0.2.2", "fe80::1", "::1"] {
        assert!(!announces(ip("127.0.0.1"), ip(addr)), "{addr}");
        assert!(!announces(ip("::1"), ip(addr)), "{addr}");
    }
}

#[test]
fn loopback_is_never_announced_on() {
    for bind in ["0.0.0.0", "::", "127.0.0.1"] {
        assert!(!announces(ip(bind), ip("127.0.0.1")), "{bind}");
        assert!(!announces(ip(bind), ip("::1")), "{bind}");
    }
}

#[test]
fn bound_to_every_ipv4_address_it_announces_on_ipv4_only() {
    assert!(announces(ip("0.0.0.0"), ip("192.0.2.2")));
    assert!(!announces(ip("0.0.0.0"), ip("fe80::1")));
}

#[test]
fn bound_to_every_address_it_announces_on_ipv4_and_ipv6_link_local() {
    assert!(announces(ip("::"), ip("192.0.2.2")));
    assert!(announces(ip("::"), ip("fe80::1")));
    assert!(!announces(ip("::"), ip("2001:db8::1")));
}

#[test]
fn bound_to_one_address_it_announces_on_that_address_alone() {
    assert!(announces(ip("198.18.0.1"), ip("198.18.0.1")));
    assert!(!announces(ip("198.18.0.1"), ip("198.18.1.1")));
    assert!(announces(ip("2001:db8::1"), ip("2001:db8::1")));
}

fn link(index: u32, name_: &str, v4: Option<&str>) -> Link {
    Link {
        name: name(name_),
        index,
        v4: v4.map(|a| a.parse().expect("an IPv4 address")),
    }
}

fn links_of(bind: &str, ifaces: &[Iface]) -> Vec<Link> {
    links(ip(bind), ifaces).collect()
}

#[test]
fn bound_to_every_address_it_announces_on_each_interface_once_per_family() {
    assert_eq!(
        links_of("::", &machine()),
        [
            link(2, "eth0", Some("192.168.1.20")),
            link(3, "wlan0", Some("10.0.0.5")),
            link(2, "eth0", None),
        ]
    );
}

#[test]
fn bound_to_every_ipv4_address_it_has_no_ipv6_link() {
    assert_eq!(
        links_of("0.0.0.0", &machine()),
        [
            link(2, "eth0", Some("192.168.1.20")),
            link(3, "wlan0", Some("10.0.0.5")),
        ]
    );
}

#[test]
fn an_interface_with_two_addresses_of_a_family_is_announced_on_by_its_first() {
    let two = [
        up(5, "a", "10.0.0.1"),
        up(5, "a", "10.0.0.2"),
        up(5, "a", "fe80::1"),
        up(5, "a", "fe80::2"),
    ];
    assert_eq!(
        links_of("::", &two),
        [link(5, "a", Some("10.0.0.1")), link(5, "a", None)]
    );
}

#[test]
fn the_first_address_announced_on_picks_the_link_not_the_first_address() {
    // A global IPv6 address before the link-local one is not announced on.
    let ifaces = [up(5, "a", "2001:db8::1"), up(5, "a", "fe80::1")];
    assert_eq!(links_of("::", &ifaces), [link(5, "a", None)]);
    // An address of a down interface does not stand in for another's.
    let ifaces = [down(5, "a", "10.0.0.1"), up(5, "a", "10.0.0.2")];
    assert_eq!(
        links_of("0.0.0.0", &ifaces),
        [link(5, "a", Some("10.0.0.2"))]
    );
}

#[test]
fn only_an_interface_that_is_up_multicasts_is_not_loopback_and_has_an_index_is_a_link() {
    let quiet = Iface {
        multicast: false,
        ..up(6, "tun0", "10.8.0.1")
    };
    let looped = Iface {
        loopback: true,
        ..up(7, "lo1", "10.9.0.1")
    };
    let ifaces = [
        lo("127.0.0.1"),
        down(4, "docker0", "172.17.0.1"),
        quiet,
        looped,
        up(0, "unknown", "10.10.0.1"),
        up(2, "eth0", "192.168.1.20"),
    ];
    assert_eq!(
        links_of("0.0.0.0", &ifaces),
        [link(2, "eth0", Some("192.168.1.20"))]
    );
}

#[test]
fn bound_to_one_address_it_announces_on_that_addresses_interface_alone() {
    assert_eq!(
        links_of("10.0.0.5", &machine()),
        [link(3, "wlan0", Some("10.0.0.5"))]
    );
    assert_eq!(links_of("127.0.0.1", &machine()), []);
}

// How a found node's address is written for `connect`.

#[test]
fn a_found_nodes_address_is_written_as_connect_takes_it() {
    let v4: SocketAddr = "198.18.0.2:4000".parse().expect("v4");
    assert_eq!(DialHost::bracketed(v4).to_string(), "198.18.0.2");
    assert_eq!(DialHost::bare(v4).to_string(), "198.18.0.2");
    let scoped = SocketAddr::V6(SocketAddrV6::new(ip6("fe80::1"), 4000, 0, 3));
    assert_eq!(DialHost::bracketed(scoped).to_string(), "[fe80::1%3]");
    assert_eq!(DialHost::bare(scoped).to_string(), "fe80::1%3");
    let global: SocketAddr = "[2001:db8::1]:4000".parse().expect("v6");
    assert_eq!(DialHost::bracketed(global).to_string(), "[2001:db8::1]");
    assert_eq!(DialHost::bare(global).to_string(), "2001:db8::1");
}
