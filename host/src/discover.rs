//! LAN discovery's I/O: one UDP socket per interface and family, on a thread of
//! its own, feeding the core's [`Discovery`] (which decides what to send and
//! when) and telling the driver what it found.
//!
//! Why one socket per interface, not one on `INADDR_ANY` (termchat issue 58):
//! a multicast join and the interface a datagram leaves by are per interface,
//! so one socket reaches one LAN only, the default route's. Each socket joins
//! the group on its interface alone and, with `IP_MULTICAST_ALL` off, hears
//! only the group as joined there, so the core knows which interface a beacon
//! came in on. The interfaces are read again every [`RESCAN`].
//!
//! Only interfaces that are up, multicast-capable and not loopback are used,
//! and of those only the ones the listener is reachable on (`--bind`): a node
//! bound to `127.0.0.1` announces nowhere. The core's [`links`] decides which,
//! from the interfaces [`interfaces`] reads.
//!
//! When the program ends, [`Leave`] has the thread send the core's farewells
//! (others forget the node at once) and stop.

use std::collections::HashMap;
use std::io::{self, ErrorKind};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use meshtalk_core::discovery::{Config, Discovery, Event, Handled, Input, Output};
use meshtalk_core::noise::KEY_LEN;
use meshtalk_core::reach::{Link, links};
use meshtalk_core::time::{self, Instant};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use socket2::{Domain, Protocol, Socket, Type};

use crate::channel::{Change, Msg, Seen, ToDriver};
use crate::clock::Clock;
use crate::log::{debug, diag};
use crate::reach::interfaces;

/// The IPv4 group: in 239.255.0.0/16, the IPv4 Local Scope of RFC 2365, which
/// routers do not forward off the site (and TTL 1 keeps it on the link).
pub const GROUP_V4: Ipv4Addr = Ipv4Addr::new(239, 255, 77, 84);
/// The IPv6 group: ff02::/16 is link-local scope, never routed; `6d74` is "mt".
pub const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x6d74);
/// The UDP port beacons go to (unassigned by IANA; apart from mDNS's 5353).
pub const PORT: u16 = 44838;
/// Sockets at most: one per interface and family.
const IFACES: usize = 16;
/// Nodes nearby remembered at most.
const NODES: usize = 64;
/// How often the interfaces are read again.
const RESCAN: Duration = Duration::from_secs(3);
/// Datagrams read from one socket per wake, so a flood on one starves no other.
const READS: usize = 64;
/// Room for a datagram: larger than any beacon, so an oversized one is seen as such.
const DATAGRAM: usize = 2048;
/// The poll token of [`Leave`]'s waker (the sockets' are below [`IFACES`]).
const WAKE: Token = Token(IFACES);

/// The discovery state machine as the host holds it.
type HostDiscovery = Discovery<IFACES, NODES>;

/// The nodes heard nearby now, kept current by the discovery thread.
pub type Table = Arc<Mutex<Vec<Seen>>>;

/// Tells the discovery thread that the program ends: it sends its farewells
/// and stops.
pub struct Leave {
    asked: Arc<AtomicBool>,
    waker: Waker,
    left: Receiver<()>,
}

impl Leave {
    /// Asks for the farewells; they go out while the caller does other things.
    pub fn ask(&self) {
        self.asked.store(true, Ordering::SeqCst);
        if let Err(e) = self.waker.wake() {
            debug!("discovery: cannot wake it to say farewell: {e}");
        }
    }

    /// Waits at most `wait` for the farewells [`Leave::ask`] asked for to be out.
    pub fn wait(&self, wait: Duration) {
        let _ = self.left.recv_timeout(wait);
    }
}

/// Starts discovery announcing `config` on the interfaces that reach a listener
/// bound to `bind`; the table it keeps and how to make it leave, or why it cannot run.
pub fn spawn(config: Config, bind: IpAddr, to_driver: ToDriver) -> Result<(Table, Leave), String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("no random bytes from the OS: {e}"))?;
    let discovery = HostDiscovery::new(config, seed).map_err(|e| e.to_string())?;
    let poll = Poll::new().map_err(|e| format!("cannot poll sockets: {e}"))?;
    let waker = Waker::new(poll.registry(), WAKE)
        .map_err(|e| format!("cannot wake the discovery thread: {e}"))?;
    let asked = Arc::new(AtomicBool::new(false));
    let (left_tx, left) = channel();
    let leave = Leave {
        asked: asked.clone(),
        waker,
        left,
    };
    let table = Table::default();
    let mut runner = Runner {
        discovery,
        poll,
        slots: (0..IFACES).map(|_| None).collect(),
        bind,
        clock: Clock::start(),
        to_driver,
        table: table.clone(),
        known: HashMap::new(),
        wake: None,
        asked,
        left: left_tx,
        leaving: false,
    };
    thread::Builder::new()
        .name("discover".into())
        .spawn(move || runner.run())
        .map_err(|e| format!("cannot start the discovery thread: {e}"))?;
    Ok((table, leave))
}

/// One interface's socket.
struct Slot {
    link: Link,
    socket: UdpSocket,
    /// The group and port, with the interface's scope for IPv6.
    to: SocketAddr,
    /// Datagrams may be waiting (mio is edge-triggered: read until empty).
    readable: bool,
}

struct Runner {
    discovery: HostDiscovery,
    poll: Poll,
    /// Socket `i` is the core's interface `i`.
    slots: Vec<Option<Slot>>,
    bind: IpAddr,
    clock: Clock,
    to_driver: ToDriver,
    table: Table,
    /// The last of each node told to the driver, for its `Lost` event.
    known: HashMap<[u8; KEY_LEN], Seen>,
    /// When the core wants its timeout.
    wake: Option<Instant>,
    /// Set by [`Leave::ask`]: the program ends.
    asked: Arc<AtomicBool>,
    /// Told once the farewells are out.
    left: Sender<()>,
    /// The core was told to leave.
    leaving: bool,
}

impl Runner {
    /// Reads interfaces, datagrams and the clock until the driver is gone.
    fn run(&mut self) {
        let mut events = Events::with_capacity(IFACES);
        let mut buf = vec![0u8; DATAGRAM];
        let mut next_scan = self.clock.now();
        let rescan = time::Duration::from_millis(RESCAN.as_millis() as u64);
        loop {
            let now = self.clock.now();
            if next_scan <= now {
                self.rescan();
                next_scan = Instant::from_millis(now.as_millis() + rescan.as_millis());
            }
            let busy = self.slots.iter().flatten().any(|s| s.readable);
            let until = self.wake.map_or(next_scan, |w| w.min(next_scan));
            let timeout = if busy {
                Duration::ZERO
            } else {
                until.saturating_since(self.clock.now()).into()
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout))
                && e.kind() != ErrorKind::Interrupted
            {
                diag!("discovery stops: cannot poll its sockets: {e}");
                return;
            }
            for event in &events {
                if let Some(Some(slot)) = self.slots.get_mut(event.token().0) {
                    slot.readable = true;
                }
            }
            for i in 0..IFACES {
                if !self.read(i, &mut buf) {
                    return;
                }
            }
            if self.wake.is_some_and(|w| w <= self.clock.now()) {
                let now = self.clock.now();
                let _ = self.discovery.handle_input(now, Input::Timeout);
            }
            if !self.leaving && self.asked.load(Ordering::SeqCst) {
                self.leaving = true;
                let now = self.clock.now();
                let _ = self.discovery.handle_input(now, Input::Leave);
            }
            if !self.drain() {
                return;
            }
            if self.discovery.left() {
                debug!("discovery: farewells sent");
                let _ = self.left.send(());
                return;
            }
        }
    }

    /// Reads up to [`READS`] datagrams from socket `i` into the core; false
    /// once the driver is gone.
    fn read(&mut self, i: usize, buf: &mut [u8]) -> bool {
        let iface = u8::try_from(i).unwrap_or(u8::MAX);
        for _ in 0..READS {
            let Some(Some(slot)) = self.slots.get_mut(i) else {
                return true;
            };
            if !slot.readable {
                return true;
            }
            let (n, from) = match slot.socket.recv_from(buf) {
                Ok(got) => got,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    slot.readable = false;
                    return true;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    debug!("discovery on {}: {e}", slot.link.name);
                    continue;
                }
            };
            let input = Input::Received {
                iface,
                from,
                datagram: &buf[..n],
            };
            let now = self.clock.now();
            let handled = self.discovery.handle_input(now, input);
            debug!("beacon from {from} on {}: {handled:?}", slot.link.name);
            // Its events now, before the core's queue of them can overflow.
            if handled == Ok(Handled::Taken) && !self.drain() {
                return false;
            }
        }
        true
    }

    /// Carries out the core's outputs; false once the driver is gone.
    fn drain(&mut self) -> bool {
        let now = self.clock.now();
        let mut changes = Vec::new();
        loop {
            match self.discovery.poll_output(now) {
                Output::Transmit { iface, datagram } => {
                    if let Some(Some(slot)) = self.slots.get(usize::from(iface))
                        && let Err(e) = slot.socket.send_to(datagram, slot.to)
                    {
                        debug!("beacon on {} not sent: {e}", slot.link.name);
                    }
                }
                Output::Event(event) => changes.push(event),
                Output::Timeout(at) => {
                    self.wake = at;
                    break;
                }
            }
        }
        self.publish();
        for event in changes {
            let (change, key) = match event {
                Event::Found { key } => (Change::Found, key),
                Event::Changed { key } => (Change::Changed, key),
                Event::Lost { key } => (Change::Lost, key),
            };
            let seen = match change {
                Change::Lost => self.known.remove(&key),
                _ => self.seen(&key),
            };
            let Some(seen) = seen else { continue };
            if change != Change::Lost {
                self.known.insert(key, seen.clone());
            }
            if self.to_driver.send(Msg::Nearby(change, seen)).is_err() {
                return false;
            }
        }
        // Bounded by the core's table, even should a `Lost` have been dropped.
        let nearby = self.discovery.nearby();
        self.known.retain(|key, _| nearby.get(key).is_some());
        true
    }

    /// The node of `key` as the driver sees it, if the core holds it.
    fn seen(&self, key: &[u8; KEY_LEN]) -> Option<Seen> {
        let entry = self.discovery.nearby().get(key)?;
        let now = self.clock.now();
        let ago = Duration::from(now.saturating_since(entry.last_seen()));
        let addrs: Vec<SocketAddr> = entry.dial_addrs().collect();
        Some(Seen {
            key: *entry.key(),
            name: entry.name().to_string(),
            addrs,
            last_seen: std::time::Instant::now()
                .checked_sub(ago)
                .unwrap_or_else(std::time::Instant::now),
            in_room: entry.in_room(),
        })
    }

    /// Puts the core's table where the driver reads it (`/nearby`).
    fn publish(&self) {
        let keys: Vec<[u8; KEY_LEN]> = self.discovery.nearby().iter().map(|e| *e.key()).collect();
        let all: Vec<Seen> = keys.iter().filter_map(|k| self.seen(k)).collect();
        *self.table.lock().unwrap_or_else(PoisonError::into_inner) = all;
    }

    /// Reads the interfaces: a socket for each new one, none for each gone.
    fn rescan(&mut self) {
        let links: Vec<Link> = links(self.bind, &interfaces()).collect();
        let now = self.clock.now();
        for i in 0..IFACES {
            let gone = self.slots[i]
                .as_ref()
                .is_some_and(|slot| !links.contains(&slot.link));
            if gone && let Some(slot) = self.slots[i].take() {
                debug!("discovery: {} is gone", slot.link.name);
                let fd = slot.socket.as_raw_fd();
                let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
                let iface = u8::try_from(i).unwrap_or(u8::MAX);
                let _ = self
                    .discovery
                    .handle_input(now, Input::InterfaceDown(iface));
            }
        }
        for link in links {
            if self.slots.iter().flatten().any(|s| s.link == link) {
                continue;
            }
            let Some(i) = self.slots.iter().position(Option::is_none) else {
                debug!("discovery: no socket left for {}", link.name);
                continue;
            };
            let (socket, to) = match open(&link) {
                Ok(opened) => opened,
                Err(e) => {
                    debug!("discovery: no socket on {}: {e}", link.name);
                    continue;
                }
            };
            let slot = Slot {
                link,
                socket,
                to,
                readable: true,
            };
            if let Err(e) = self.poll.registry().register(
                &mut SourceFd(&slot.socket.as_raw_fd()),
                Token(i),
                Interest::READABLE,
            ) {
                debug!("discovery: cannot poll {}: {e}", slot.link.name);
                continue;
            }
            debug!("discovery on {} ({to})", slot.link.name);
            self.slots[i] = Some(slot);
            let iface = u8::try_from(i).unwrap_or(u8::MAX);
            let _ = self.discovery.handle_input(now, Input::InterfaceUp(iface));
        }
    }
}

/// A non-blocking socket joined to the group on `link` alone, sending there
/// with TTL (hops) 1 and looping back to this machine (two nodes on one machine
/// find each other); and where to send.
fn open(link: &Link) -> io::Result<(UdpSocket, SocketAddr)> {
    let (socket, to) = match link.v4 {
        Some(ip) => {
            let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
            reuse(&socket)?;
            // Bound to the group: unicast datagrams to the port never reach it.
            socket.bind(&SocketAddr::V4(SocketAddrV4::new(GROUP_V4, PORT)).into())?;
            socket.set_multicast_all_v4(false)?;
            socket.join_multicast_v4(&GROUP_V4, &ip)?;
            socket.set_multicast_if_v4(&ip)?;
            socket.set_multicast_loop_v4(true)?;
            socket.set_multicast_ttl_v4(1)?;
            (socket, SocketAddr::V4(SocketAddrV4::new(GROUP_V4, PORT)))
        }
        None => {
            let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
            reuse(&socket)?;
            socket.set_only_v6(true)?;
            let group = SocketAddrV6::new(GROUP_V6, PORT, 0, link.index);
            // A link-local group with the interface's scope: bound to that interface.
            socket.bind(&SocketAddr::V6(group).into())?;
            socket.set_multicast_all_v6(false)?;
            socket.join_multicast_v6(&GROUP_V6, link.index)?;
            socket.set_multicast_if_v6(link.index)?;
            socket.set_multicast_loop_v6(true)?;
            socket.set_multicast_hops_v6(1)?;
            (socket, SocketAddr::V6(group))
        }
    };
    socket.set_nonblocking(true)?;
    Ok((socket.into(), to))
}

/// Several sockets (ours on each interface, other nodes on this machine) share the port.
fn reuse(socket: &Socket) -> io::Result<()> {
    socket.set_reuse_address(true)
}
