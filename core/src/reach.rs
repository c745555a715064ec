//! Where this node can be reached: the one rule, from the network interfaces
//! and the address the listener is bound to, behind what the node tells people
//! ([`Reach`]: `reachable at 192.168.1.20:4000, [fe80::1%eth0]:4000`), the
//! interfaces LAN discovery announces it on ([`links`]), and how an address a
//! node was found at is written for `connect` ([`DialHost`]).
//!
//! The host reads the interfaces from the OS, one [`Iface`] per address, and
//! hands them in; nothing here knows a socket. A listener bound to an
//! unspecified address takes connections to the addresses of its family (a
//! dual-stack `::` both families), one bound to a specific address that alone:
//! the rule both [`Reach`] and [`announces`] read, so what is said and what is
//! announced agree.
//!
//! A module of its own rather than inside [`crate::discovery`]: the node says
//! where it is reached with discovery off too (`--no-discover`, `/whoami`), and
//! discovery's state machine never sees an interface's address (the host
//! numbers its sockets); only the choice of those sockets reads this rule.

use core::fmt::{self, Write};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use heapless::Vec;

/// The longest interface name kept: Linux's `IFNAMSIZ` (16) less its NUL.
pub const IF_NAME: usize = 15;
/// The addresses a [`Reach`] lists at most in the host: more than a machine
/// has but for a router; past it the line says how many more there are.
pub const PLACES: usize = 16;

/// An interface's name (`eth0`), or its index written in decimal when its name
/// does not fit: an IPv6 link-local address's `%scope`. Fixed size, `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IfName {
    bytes: [u8; IF_NAME],
    len: u8,
}

impl IfName {
    /// No name.
    const EMPTY: IfName = IfName {
        bytes: [0; IF_NAME],
        len: 0,
    };

    /// `name`, or `None` when it is longer than [`IF_NAME`] bytes.
    pub fn new(name: &str) -> Option<IfName> {
        let mut out = IfName::EMPTY;
        out.write_str(name).ok()?;
        Some(out)
    }

    /// The index `index` written as a name (`3`), as `%3` means interface 3.
    pub fn number(index: u32) -> IfName {
        let mut out = IfName::EMPTY;
        // Ten digits at most: they fit.
        let _ = write!(out, "{index}");
        out
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        let bytes = self.bytes.get(..usize::from(self.len)).unwrap_or_default();
        // Only whole `&str`s are written in: always UTF-8.
        core::str::from_utf8(bytes).unwrap_or_default()
    }
}

/// Appends, or fails leaving the name as it was when the text does not fit.
impl Write for IfName {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let at = usize::from(self.len);
        let end = at.checked_add(s.len()).ok_or(fmt::Error)?;
        let room = self.bytes.get_mut(at..end).ok_or(fmt::Error)?;
        room.copy_from_slice(s.as_bytes());
        self.len = u8::try_from(end).map_err(|_| fmt::Error)?;
        Ok(())
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// One address of a network interface, as the host reads it from the OS
/// (`getifaddrs`): an interface with three addresses is three of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Iface {
    /// The interface's index (an IPv6 scope id); 0: unknown.
    pub index: u32,
    /// Its name, for an IPv6 link-local address's `%scope`.
    pub name: IfName,
    /// The address.
    pub ip: IpAddr,
    /// The interface is up (`IFF_UP`).
    pub up: bool,
    /// It is the loopback interface (`IFF_LOOPBACK`).
    pub loopback: bool,
    /// It can multicast (`IFF_MULTICAST`).
    pub multicast: bool,
}

/// How the listener is bound: enough to say which interface addresses reach it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bound {
    /// The address bound (`0.0.0.0:4000`).
    pub addr: SocketAddr,
    /// An IPv6 socket that takes IPv6 only (`IPV6_V6ONLY`); bound to `::`
    /// without it, it takes IPv4 too (dual stack).
    pub v6_only: bool,
}

/// Whether a listener bound to `bind` (`v6_only` as in [`Bound`]) takes
/// connections to `ip`: the one rule of this module.
fn takes(bind: IpAddr, v6_only: bool, ip: IpAddr) -> bool {
    if !bind.is_unspecified() {
        return bind == ip;
    }
    match ip {
        IpAddr::V4(_) => bind.is_ipv4() || !v6_only,
        IpAddr::V6(_) => bind.is_ipv6(),
    }
}

/// An address to give people: `192.168.1.20:4000`, `[fd00::7]:4000`, or an
/// IPv6 link-local one with its interface, `[fe80::1%eth0]:4000` (its
/// `Display`, as people type it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    ip: IpAddr,
    /// The interface an IPv6 address is scoped to; none for any other.
    scope: Option<IfName>,
    port: u16,
}

impl Place {
    /// `ip:port` on the interface of `iface` (its address), scoped to it when
    /// the address is IPv6 link-local.
    fn on(iface: &Iface, port: u16) -> Place {
        let scope = match iface.ip {
            IpAddr::V6(v6) if v6.is_unicast_link_local() => Some(iface.name),
            _ => None,
        };
        Place {
            ip: iface.ip,
            scope,
            port,
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.ip, self.scope) {
            (IpAddr::V4(ip), _) => write!(f, "{ip}:{}", self.port),
            (IpAddr::V6(ip), Some(scope)) => write!(f, "[{ip}%{scope}]:{}", self.port),
            (IpAddr::V6(ip), None) => write!(f, "[{ip}]:{}", self.port),
        }
    }
}

/// Where a listener can be reached: the addresses to give people, at most `N`
/// of them, and whether only this machine can reach it. Its `Display` is the
/// line for the person: `reachable at A, B`, or when only loopback reaches it,
/// `reachable from this machine only: 127.0.0.1:4000`; with addresses left
/// out, `... and 3 more`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reach<const N: usize> {
    places: Vec<Place, N>,
    /// Addresses past the `N`th, not listed.
    left_out: usize,
    this_machine_only: bool,
}

impl<const N: usize> Reach<N> {
    /// Where a listener bound as `bound` is reached on a machine with the
    /// interface addresses `ifaces`:
    ///
    /// - bound to an unspecified address, every address of its family (both
    ///   for a dual-stack `::`) of an interface that is up and not loopback,
    ///   IPv4 first, each in the order of `ifaces`, an address on two
    ///   interfaces listed once (a link-local one is not the same address on
    ///   another interface); with none, the loopback address of each family it
    ///   takes, for this machine only;
    /// - bound to a specific address, that one alone (with its scope's
    ///   interface name, else its number), for this machine only if loopback.
    ///
    /// Past `N` addresses, the later ones are left out (IPv6 before any IPv4)
    /// and counted ([`Reach::left_out`]).
    pub fn of(bound: Bound, ifaces: &[Iface]) -> Reach<N> {
        let mut reach = Reach {
            places: Vec::new(),
            left_out: 0,
            this_machine_only: false,
        };
        let port = bound.addr.port();
        let ip = bound.addr.ip();
        if !ip.is_unspecified() {
            let scope = match bound.addr {
                SocketAddr::V6(v6) if v6.scope_id() != 0 => Some(
                    ifaces
                        .iter()
                        .find(|a| a.index == v6.scope_id())
                        .map_or(IfName::number(v6.scope_id()), |a| a.name),
                ),
                _ => None,
            };
            reach.this_machine_only = ip.is_loopback();
            reach.add(Place { ip, scope, port }, false);
            return reach;
        }
        let mut offered = 0;
        for (k, place) in offers(bound, ifaces).enumerate() {
            offered += 1;
            let again = offers(bound, ifaces).take(k).any(|p| p == place);
            reach.add(place, again);
        }
        if offered > 0 {
            return reach;
        }
        reach.this_machine_only = true;
        let loopbacks = [
            (Ipv4Addr::UNSPECIFIED.into(), Ipv4Addr::LOCALHOST.into()),
            (Ipv6Addr::UNSPECIFIED.into(), Ipv6Addr::LOCALHOST.into()),
        ];
        for (family, loopback) in loopbacks {
            if takes(ip, bound.v6_only, family) {
                reach.add(
                    Place {
                        ip: loopback,
                        scope: None,
                        port,
                    },
                    false,
                );
            }
        }
        reach
    }

    /// Lists `place` unless `again` (it came before): past `N`, counts it.
    fn add(&mut self, place: Place, again: bool) {
        if again {
            return;
        }
        if self.places.push(place).is_err() {
            self.left_out = self.left_out.saturating_add(1);
        }
    }

    /// The addresses listed, in order.
    pub fn places(&self) -> &[Place] {
        &self.places
    }

    /// How many addresses past the `N`th were left out.
    pub fn left_out(&self) -> usize {
        self.left_out
    }

    /// Only loopback reaches it: no other machine can.
    pub fn this_machine_only(&self) -> bool {
        self.this_machine_only
    }
}

impl<const N: usize> fmt::Display for Reach<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.this_machine_only {
            f.write_str("reachable from this machine only: ")?;
        } else {
            f.write_str("reachable at ")?;
        }
        for (i, place) in self.places.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{place}")?;
        }
        match (self.left_out, self.places.is_empty()) {
            (0, _) => Ok(()),
            (n, true) => write!(f, "{n} addresses"),
            (n, false) => write!(f, " and {n} more"),
        }
    }
}

/// The interface addresses that reach a listener bound to an unspecified
/// address, in the order given to people (duplicates included): IPv4, then IPv6.
fn offers(bound: Bound, ifaces: &[Iface]) -> impl Iterator<Item = Place> + '_ {
    let port = bound.addr.port();
    [true, false].into_iter().flat_map(move |v4| {
        ifaces
            .iter()
            .filter(move |a| {
                a.ip.is_ipv4() == v4
                    && a.up
                    && !a.loopback
                    && !a.ip.is_loopback()
                    && !a.ip.is_unspecified()
                    && takes(bound.addr.ip(), bound.v6_only, a.ip)
            })
            .map(move |a| Place::on(a, port))
    })
}

/// Whether a listener bound to `bind` is announced on an interface with the
/// address `ip`: never on loopback; for `0.0.0.0` on its IPv4 addresses, for
/// `::` those and its IPv6 link-local ones (discovery's IPv6 is link-local
/// multicast), for a specific address on that one alone.
pub fn announces(bind: IpAddr, ip: IpAddr) -> bool {
    let family = match ip {
        IpAddr::V4(_) => true,
        IpAddr::V6(v6) => !bind.is_unspecified() || v6.is_unicast_link_local(),
    };
    !ip.is_loopback() && family && takes(bind, false, ip)
}

/// Where discovery sends and listens: an interface and a family (IPv4 and IPv6
/// on one card are two links).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Link {
    /// The interface's name (`eth0`).
    pub name: IfName,
    /// Its index, for IPv6 and scope ids.
    pub index: u32,
    /// IPv4: the interface's address, to join and send by; `None`: IPv6.
    pub v4: Option<Ipv4Addr>,
}

/// Whether `iface` is one to announce on for a listener bound to `bind`: up,
/// multicast-capable, not loopback, its index known, and [`announces`].
fn announced(bind: IpAddr, iface: &Iface) -> bool {
    iface.up && iface.multicast && !iface.loopback && iface.index != 0 && announces(bind, iface.ip)
}

/// The interfaces and families discovery announces a listener bound to `bind`
/// on, from the interface addresses `ifaces`: one link per interface and
/// family, by the first address of each that is announced on; in the order of
/// `ifaces`. A node bound to `127.0.0.1` announces nowhere.
pub fn links(bind: IpAddr, ifaces: &[Iface]) -> impl Iterator<Item = Link> + '_ {
    ifaces.iter().enumerate().filter_map(move |(i, a)| {
        let same = |b: &Iface| b.index == a.index && b.ip.is_ipv4() == a.ip.is_ipv4();
        let first = !ifaces.iter().take(i).any(|b| same(b) && announced(bind, b));
        (first && announced(bind, a)).then_some(Link {
            name: a.name,
            index: a.index,
            v4: match a.ip {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            },
        })
    })
}

/// The host of an address a node was found at, as `connect` takes it:
/// `198.18.0.2`, or IPv6 with its scope id, `fe80::1%3`; in brackets,
/// `[fe80::1%3]`, for a line typed with the port after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DialHost {
    addr: SocketAddr,
    brackets: bool,
}

impl DialHost {
    /// `addr`'s host bare, as a `connect` command's host: `fe80::1%3`.
    pub fn bare(addr: SocketAddr) -> DialHost {
        DialHost {
            addr,
            brackets: false,
        }
    }

    /// `addr`'s host as typed in a `connect` line: an IPv6 one in brackets.
    pub fn bracketed(addr: SocketAddr) -> DialHost {
        DialHost {
            addr,
            brackets: true,
        }
    }
}

impl fmt::Display for DialHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let SocketAddr::V6(v6) = self.addr else {
            return write!(f, "{}", self.addr.ip());
        };
        let (open, close) = if self.brackets { ("[", "]") } else { ("", "") };
        match v6.scope_id() {
            0 => write!(f, "{open}{}{close}", v6.ip()),
            scope => write!(f, "{open}{}%{scope}{close}", v6.ip()),
        }
    }
}
