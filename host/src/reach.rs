//! Where peers can reach the listener: the addresses to give people, read from the
//! network interfaces, not the `0.0.0.0` it is bound to.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};

use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;
use socket2::SockRef;

use crate::log::debug;

/// How the listener is bound: enough to say which interface addresses reach it.
#[derive(Clone, Copy, Debug)]
pub struct Bound {
    addr: SocketAddr,
    /// An IPv6 socket that takes IPv6 only (`IPV6_V6ONLY`); bound to `::`
    /// without it, it takes IPv4 too (dual stack).
    v6_only: bool,
}

impl Bound {
    /// How `listener` is bound.
    pub fn of(listener: &TcpListener) -> io::Result<Bound> {
        let addr = listener.local_addr()?;
        let v6_only = addr.is_ipv6() && SockRef::from(listener).only_v6()?;
        Ok(Bound { addr, v6_only })
    }

    /// The address bound (`0.0.0.0:4000`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The addresses that reach it, from the interfaces' addresses now.
    pub fn reach(&self) -> Reach {
        reach(self, &interfaces())
    }
}

/// The addresses a peer can dial, written as people type them
/// (`192.168.1.20:4000`, `[fe80::1%eth0]:4000`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reach {
    pub addrs: Vec<String>,
    /// Only loopback addresses: no other machine can reach this one.
    pub this_machine_only: bool,
}

impl Reach {
    /// One line for the person: `reachable at A, B` or, when only loopback
    /// reaches it, `reachable from this machine only: 127.0.0.1:P`.
    pub fn line(&self) -> String {
        let addrs = self.addrs.join(", ");
        if self.this_machine_only {
            format!("reachable from this machine only: {addrs}")
        } else {
            format!("reachable at {addrs}")
        }
    }
}

/// One address of a network interface, as `getifaddrs` lists it.
#[derive(Clone, Debug)]
struct IfAddr {
    /// The interface's name (`eth0`): an IPv6 link-local address's `%scope`.
    name: String,
    ip: IpAddr,
    /// The interface is up and not the loopback one.
    usable: bool,
}

/// Every IPv4 and IPv6 address of the interfaces; none when they cannot be read
/// (then the listener is said to be reachable from this machine only).
fn interfaces() -> Vec<IfAddr> {
    let all = match getifaddrs() {
        Ok(all) => all,
        Err(e) => {
            debug!("cannot list the network interfaces: {e}");
            return Vec::new();
        }
    };
    all.filter_map(|a| {
        let address = a.address?;
        let ip = match (address.as_sockaddr_in(), address.as_sockaddr_in6()) {
            (Some(v4), _) => IpAddr::V4(v4.ip()),
            (_, Some(v6)) => IpAddr::V6(v6.ip()),
            _ => return None,
        };
        let usable = a.flags.contains(InterfaceFlags::IFF_UP)
            && !a.flags.contains(InterfaceFlags::IFF_LOOPBACK);
        Some(IfAddr {
            name: a.interface_name,
            ip,
            usable,
        })
    })
    .collect()
}

/// The addresses of `ifaces` that reach a listener bound as `bound`: for an
/// unspecified address every usable non-loopback one of its family (both, for
/// a dual-stack `::`), IPv4 first; for a specific address, that one alone. With
/// none, the loopback address of its family, said to be for this machine only.
fn reach(bound: &Bound, ifaces: &[IfAddr]) -> Reach {
    let port = bound.addr.port();
    let ip = bound.addr.ip();
    if !ip.is_unspecified() {
        let scope = match bound.addr {
            SocketAddr::V6(v6) if v6.scope_id() != 0 => Some(scope_name(v6.scope_id())),
            _ => None,
        };
        return Reach {
            addrs: vec![written(ip, scope.as_deref(), port)],
            this_machine_only: ip.is_loopback(),
        };
    }
    let v4 = ip.is_ipv4() || !bound.v6_only;
    let v6 = ip.is_ipv6();
    let mut addrs: Vec<String> = Vec::new();
    for want_v4 in [true, false] {
        for a in ifaces.iter().filter(|a| a.usable && !a.ip.is_loopback()) {
            let take = match a.ip {
                IpAddr::V4(_) => want_v4 && v4,
                IpAddr::V6(v6_ip) => !want_v4 && v6 && !v6_ip.is_unspecified(),
            };
            let scope = match a.ip {
                IpAddr::V6(v6_ip) if v6_ip.is_unicast_link_local() => Some(a.name.as_str()),
                _ => None,
            };
            let addr = written(a.ip, scope, port);
            if take && !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
    }
    if !addrs.is_empty() {
        return Reach {
            addrs,
            this_machine_only: false,
        };
    }
    let mut addrs = Vec::new();
    if v4 {
        addrs.push(written(IpAddr::V4(Ipv4Addr::LOCALHOST), None, port));
    }
    if v6 {
        addrs.push(written(IpAddr::V6(Ipv6Addr::LOCALHOST), None, port));
    }
    Reach {
        addrs,
        this_machine_only: true,
    }
}

/// The name of the interface whose index is `scope_id` (`eth0`), else the number.
fn scope_name(scope_id: u32) -> String {
    nix::net::if_::if_indextoname(scope_id)
        .ok()
        .and_then(|name| name.into_string().ok())
        .unwrap_or_else(|| scope_id.to_string())
}

/// `ip:port`, an IPv6 one in brackets with its `%scope` when it has one.
fn written(ip: IpAddr, scope: Option<&str>, port: u16) -> String {
    match (ip, scope) {
        (IpAddr::V4(ip), _) => format!("{ip}:{port}"),
        (IpAddr::V6(ip), Some(scope)) => format!("[{ip}%{scope}]:{port}"),
        (IpAddr::V6(ip), None) => format!("[{ip}]:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(name: &str, ip: &str, usable: bool) -> IfAddr {
        IfAddr {
            name: name.into(),
            ip: ip.parse().expect("an IP"),
            usable,
        }
    }

    /// lo, eth0 (IPv4, a global and a link-local IPv6), wlan0 (IPv6 first), and
    /// docker0, which is down.
    fn machine() -> Vec<IfAddr> {
        vec![
            iface("lo", "127.0.0.1", false),
            iface("lo", "::1", false),
            iface("eth0", "192.168.1.20", true),
            iface("wlan0", "fd00::7", true),
            iface("wlan0", "10.0.0.5", true),
            iface("eth0", "fe80::1", true),
            iface("docker0", "172.17.0.1", false),
        ]
    }

    fn bound(addr: &str, v6_only: bool) -> Bound {
        Bound {
            addr: addr.parse().expect("a socket address"),
            v6_only,
        }
    }

    fn shown(addrs: &[&str], this_machine_only: bool) -> Reach {
        Reach {
            addrs: addrs.iter().map(|a| a.to_string()).collect(),
            this_machine_only,
        }
    }

    #[test]
    fn all_ipv4_is_every_ipv4_address_of_an_up_interface_but_loopback() {
        assert_eq!(
            reach(&bound("0.0.0.0:4000", false), &machine()),
            shown(&["192.168.1.20:4000", "10.0.0.5:4000"], false)
        );
    }

    #[test]
    fn dual_stack_all_is_the_ipv4_addresses_then_the_ipv6_ones_link_local_with_its_scope() {
        assert_eq!(
            reach(&bound("[::]:4000", false), &machine()),
            shown(
                &[
                    "192.168.1.20:4000",
                    "10.0.0.5:4000",
                    "[fd00::7]:4000",
                    "[fe80::1%eth0]:4000"
                ],
                false
            )
        );
    }

    #[test]
    fn ipv6_only_all_is_the_ipv6_addresses_alone() {
        assert_eq!(
            reach(&bound("[::]:4000", true), &machine()),
            shown(&["[fd00::7]:4000", "[fe80::1%eth0]:4000"], false)
        );
    }

    #[test]
    fn a_specific_address_is_that_address_alone() {
        assert_eq!(
            reach(&bound("10.0.0.5:4000", false), &machine()),
            shown(&["10.0.0.5:4000"], false)
        );
    }

    #[test]
    fn a_loopback_address_is_for_this_machine_only() {
        assert_eq!(
            reach(&bound("127.0.0.1:4000", false), &machine()),
            shown(&["127.0.0.1:4000"], true)
        );
    }

    #[test]
    fn all_addresses_on_a_machine_with_only_loopback_are_loopback_for_this_machine_only() {
        let lo = [iface("lo", "127.0.0.1", false), iface("lo", "::1", false)];
        assert_eq!(
            reach(&bound("0.0.0.0:4000", false), &lo),
            shown(&["127.0.0.1:4000"], true)
        );
        assert_eq!(
            reach(&bound("[::]:4000", false), &lo),
            shown(&["127.0.0.1:4000", "[::1]:4000"], true)
        );
    }

    #[test]
    fn an_address_on_two_interfaces_is_listed_once() {
        let twice = [iface("a", "10.0.0.5", true), iface("b", "10.0.0.5", true)];
        assert_eq!(
            reach(&bound("0.0.0.0:4000", false), &twice),
            shown(&["10.0.0.5:4000"], false)
        );
    }

    #[test]
    fn the_line_says_where_or_that_only_this_machine_can() {
        assert_eq!(
            shown(&["10.0.0.5:4000", "[fe80::1%eth0]:4000"], false).line(),
            "reachable at 10.0.0.5:4000, [fe80::1%eth0]:4000"
        );
        assert_eq!(
            shown(&["127.0.0.1:4000"], true).line(),
            "reachable from this machine only: 127.0.0.1:4000"
        );
    }
}
