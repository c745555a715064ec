//! Where peers can reach the listener: the network interfaces read from the OS
//! and how the listener is bound, for the core's rule ([`meshtalk_core::reach`]).

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};

use meshtalk_core::reach::{self, IfName, Iface, PLACES};
use nix::ifaddrs::getifaddrs;
use nix::net::if_::{InterfaceFlags, if_nametoindex};
use socket2::SockRef;

use crate::log::debug;

/// The addresses a peer can dial, and the line that says them.
pub type Reach = reach::Reach<PLACES>;

/// How the listener is bound: enough to say which interface addresses reach it.
#[derive(Clone, Copy, Debug)]
pub struct Bound(reach::Bound);

impl Bound {
    /// How `listener` is bound.
    pub fn of(listener: &TcpListener) -> io::Result<Bound> {
        let addr = listener.local_addr()?;
        let v6_only = addr.is_ipv6() && SockRef::from(listener).only_v6()?;
        Ok(Bound(reach::Bound { addr, v6_only }))
    }

    /// The address bound (`0.0.0.0:4000`).
    pub fn addr(&self) -> SocketAddr {
        self.0.addr
    }

    /// The addresses that reach it, from the interfaces' addresses now.
    pub fn reach(&self) -> Reach {
        Reach::of(self.0, &interfaces())
    }
}

/// Every IPv4 and IPv6 address of the interfaces; none when they cannot be read
/// (then the listener is said to be reachable from this machine only, and
/// discovery announces nowhere).
pub fn interfaces() -> Vec<Iface> {
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
        let index = if_nametoindex(a.interface_name.as_str()).unwrap_or(0);
        Some(Iface {
            index,
            name: IfName::new(&a.interface_name).unwrap_or_else(|| IfName::number(index)),
            ip,
            up: a.flags.contains(InterfaceFlags::IFF_UP),
            loopback: a.flags.contains(InterfaceFlags::IFF_LOOPBACK),
            multicast: a.flags.contains(InterfaceFlags::IFF_MULTICAST),
        })
    })
    .collect()
}
