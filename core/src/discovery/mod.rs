//! LAN discovery: beacons that say "a meshtalk listens here", their schedule,
//! and the table of nodes heard, as one sans-I/O state machine.
//!
//! The host owns the UDP sockets, one per interface (IPv4 multicast, IPv6
//! link-local multicast, joined on that interface), and numbers its
//! sockets `0..I` (an "interface" here is one socket: IPv4 and IPv6 on one
//! network card are two). It tells [`Discovery`] when an interface appears or
//! goes, hands it every datagram with its source, and sends each
//! [`Output::Transmit`] on that interface's socket to the group. What it
//! learns is a hint: dialling a node found here runs the Noise handshake,
//! which alone proves the node holds the key its beacon names.
//!
//! - [`beacon`]: the datagram, open or sealed for a private room.
//! - [`Nearby`]: the nodes heard, bounded against floods and spoofs.
//! - The schedule: a burst per interface, then a backing-off interval; when
//!   the node stops ([`Input::Leave`]), a couple of farewells, after which
//!   the others forget it at once instead of after [`EXPIRE_AFTER`].
//! - [`auto`]: `--auto-connect`'s rule, which room members to dial now.

pub mod auto;
pub mod beacon;
mod nearby;
mod schedule;

use core::fmt;
use core::net::SocketAddr;

use clatter::crypto::hash::Blake2s;
use clatter::traits::Hash as _;
use heapless::{Deque, String};

use crate::alias::{AliasError, validate_alias};
use crate::limits::MAX_NAME;
use crate::noise::KEY_LEN;
use crate::time::{Duration, Instant};
pub use auto::AutoConnect;
pub use beacon::{Beacon, DecodeError, EncodeError, Heard, MAX_BEACON, NONCE_LEN};
pub use nearby::{Addr, Entry, Nearby};
use nearby::{Farewell, Swept, Update};
use schedule::Schedule;

// Every limit of discovery in one place (kept here rather than in
// `crate::limits`, which other work changes at the same time).

/// Beacons in the burst when an interface appears (RFC 6762 announces twice;
/// one more covers a lost datagram).
pub const BURST: u8 = 3;
/// The gap between the burst's beacons (give or take a quarter).
pub const BURST_GAP: Duration = Duration::from_secs(1);
/// The first beacon on an interface goes out within this of its appearing
/// (RFC 6762's 0–250 ms), so nodes started by one script do not collide.
pub const START_DELAY: Duration = Duration::from_millis(250);
/// The first gap after the burst (give or take a quarter); each beacon doubles it.
pub const INTERVAL_MIN: Duration = Duration::from_secs(5);
/// The gap the doubling stops at: a quiet network sees one beacon per node
/// and interface a minute.
pub const INTERVAL_MAX: Duration = Duration::from_secs(60);
/// An address not heard from for this long is dropped, and a node with it:
/// three beacons missed at the longest gap with its jitter.
pub const EXPIRE_AFTER: Duration = Duration::from_millis(3 * (INTERVAL_MAX.as_millis() * 5 / 4));
/// Farewells sent on each interface when the node stops (one more than one,
/// against a lost datagram).
pub const FAREWELLS: u8 = 2;
/// The gap between two farewells: short, as the node is on its way out, yet
/// apart, so that one burst of loss does not take both.
pub const FAREWELL_GAP: Duration = Duration::from_millis(100);
/// Addresses kept per node (a node on several interfaces, IPv4 and IPv6).
pub const ADDRS: usize = 4;
/// Entries one source IP may fill; a further key replaces its own oldest
/// (a few nodes may share a machine).
pub const KEYS_PER_SOURCE: usize = 4;
/// Beacons one source IP may send at once, before its rate applies.
pub const SOURCE_BURST: u8 = 4;
/// After its burst, a source IP earns one beacon per this span.
pub const SOURCE_REFILL: Duration = Duration::from_millis(500);
/// Events held for the host between two drains; an older one is dropped past it.
pub const EVENTS: usize = 8;
/// What the random stream of jitter and nonces is derived under.
const RANDOM_LABEL: &[u8] = b"meshtalk discovery random\0";

/// What this node announces.
#[derive(Clone)]
pub struct Config {
    /// Our static public key.
    pub key: [u8; KEY_LEN],
    /// The TCP port we listen on.
    pub port: u16,
    /// Our name (an alias), sealed in a private room; empty: none.
    pub name: String<MAX_NAME>,
    /// A private room's key: beacons are sealed under it, and only sealed
    /// beacons that open under it count as our room.
    pub room_key: Option<[u8; KEY_LEN]>,
}

/// Shows whether there is a room key, never a key.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("port", &self.port)
            .field("name", &self.name)
            .field("room_key", &self.room_key.is_some())
            .finish_non_exhaustive()
    }
}

/// A call the host got wrong; nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscoveryError {
    /// An interface index outside `0..I`.
    Interface {
        /// The index given.
        iface: u8,
        /// How many interfaces the state machine holds.
        max: usize,
    },
    /// The configured TCP port is 0.
    Port,
    /// The configured name is not a valid alias.
    Name(AliasError),
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiscoveryError::Interface { iface, max } => write!(
                f,
                "interface {iface} is out of range: discovery holds {max} interfaces"
            ),
            DiscoveryError::Port => {
                f.write_str("cannot announce TCP port 0; listen on a port first")
            }
            DiscoveryError::Name(e) => write!(f, "cannot announce that name: {e}"),
        }
    }
}

/// What the host tells discovery.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// Interface `iface` is up and its socket joined the group: burst on it.
    /// Given again for an interface already up (its address changed), it bursts again.
    InterfaceUp(u8),
    /// Interface `iface` went: no more beacons on it, and addresses heard on it are dropped.
    InterfaceDown(u8),
    /// A datagram arrived on interface `iface`'s socket.
    Received {
        /// The interface whose socket it came in on.
        iface: u8,
        /// Its source address, as the socket reports it.
        from: SocketAddr,
        /// Its bytes.
        datagram: &'a [u8],
    },
    /// The time [`Output::Timeout`] asked for has come.
    Timeout,
    /// The node is stopping: send [`FAREWELLS`] farewells on every interface up,
    /// [`FAREWELL_GAP`] apart, and no other beacon; [`Discovery::left`] says
    /// when they are all out.
    Leave,
}

/// What [`Discovery::handle_input`] made of an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handled {
    /// Taken in (for a datagram: a beacon that updated the table).
    Taken,
    /// A datagram dropped, and why; the table did not change.
    Dropped(DropReason),
}

/// Why a datagram changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Not a beacon we can use (see the error).
    Malformed(DecodeError),
    /// Its source IP is over its rate ([`SOURCE_BURST`], [`SOURCE_REFILL`]); it was not read.
    RateLimited,
    /// Our own beacon, looped back by multicast.
    Own,
    /// An open beacon (or farewell) under the key of a member of our private
    /// room: not the member.
    Spoofed,
    /// It came in on an interface that is not up.
    InterfaceDown,
}

/// A change in the table of nodes nearby; look the node up with [`Discovery::nearby`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A node not in the table was heard.
    Found {
        /// Its key.
        key: [u8; KEY_LEN],
    },
    /// A node's port, name, room or addresses changed.
    Changed {
        /// Its key.
        key: [u8; KEY_LEN],
    },
    /// A node left the table: it said farewell, was not heard for
    /// [`EXPIRE_AFTER`], its interfaces went, or it was evicted for a newer one.
    Lost {
        /// Its key.
        key: [u8; KEY_LEN],
    },
}

/// What discovery asks of the host.
#[derive(Debug)]
#[must_use = "every output must be carried out, until Output::Timeout"]
pub enum Output<'a> {
    /// Send this datagram on interface `iface`'s socket to the group.
    Transmit {
        /// The interface to send on.
        iface: u8,
        /// The beacon, lent until the next poll.
        datagram: &'a [u8],
    },
    /// The table changed.
    Event(Event),
    /// Nothing more now: call again with [`Input::Timeout`] at this time, if any.
    Timeout(Option<Instant>),
}

/// Counters of what discovery dropped, for diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Beacons sent.
    pub sent: u64,
    /// Datagrams that were not a beacon we could use.
    pub malformed: u64,
    /// Of those, private-room beacons we could not open.
    pub sealed: u64,
    /// Datagrams dropped unread, their source over its rate.
    pub rate_limited: u64,
    /// Open beacons under a room member's key.
    pub spoofed: u64,
    /// Entries evicted for newer ones.
    pub evicted: u64,
    /// Events dropped because the host did not drain them in time.
    pub lost_events: u64,
}

/// LAN discovery for up to `I` interfaces and `N` nodes nearby.
///
/// The run loop, which the host owns (as for [`crate::node::Node`]):
///
/// ```text
/// loop {
///     wait for a datagram, an interface change, or the timeout;
///     discovery.handle_input(now, input)?;
///     loop {                                   // after EVERY input, drain:
///         match discovery.poll_output(now) {
///             Output::Timeout(t) => { timeout = t; break }
///             Output::Transmit { iface, datagram } => send it on iface's socket,
///             Output::Event(e) => update the view (discovery.nearby()),
///         }
///     }
/// }
/// ```
pub struct Discovery<const I: usize, const N: usize> {
    config: Config,
    schedule: Schedule<I>,
    nearby: Nearby<N>,
    events: Deque<Event, EVENTS>,
    random: Random,
    stats: Stats,
    buf: [u8; MAX_BEACON],
}

impl<const I: usize, const N: usize> Discovery<I, N> {
    /// Discovery announcing `config`; `seed` is 32 fresh random bytes from the
    /// host (a repeated seed repeats the beacons' nonces). No interface is up.
    pub fn new(config: Config, seed: [u8; 32]) -> Result<Self, DiscoveryError> {
        if config.port == 0 {
            return Err(DiscoveryError::Port);
        }
        if !config.name.is_empty() {
            validate_alias(&config.name).map_err(DiscoveryError::Name)?;
        }
        Ok(Discovery {
            config,
            schedule: Schedule::new(),
            nearby: Nearby::new(),
            events: Deque::new(),
            random: Random { seed, counter: 0 },
            stats: Stats::default(),
            buf: [0; MAX_BEACON],
        })
    }

    /// What this node announces.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The nodes heard nearby.
    pub fn nearby(&self) -> &Nearby<N> {
        &self.nearby
    }

    /// The counters of what was dropped.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Whether interface `iface` is up.
    pub fn is_up(&self, iface: u8) -> bool {
        self.schedule.is_up(usize::from(iface))
    }

    /// Whether the node is leaving and every farewell is out: the host may stop.
    pub fn left(&self) -> bool {
        self.schedule.left()
    }

    /// Takes one input at `now`; then drain [`Discovery::poll_output`] until
    /// it says [`Output::Timeout`]. Only a call the host got wrong is an `Err`.
    pub fn handle_input(
        &mut self,
        now: Instant,
        input: Input<'_>,
    ) -> Result<Handled, DiscoveryError> {
        match input {
            Input::InterfaceUp(iface) => {
                let i = self.interface(iface)?;
                let random = self.random.next_u32();
                self.schedule.up(i, now, random);
                Ok(Handled::Taken)
            }
            Input::InterfaceDown(iface) => {
                let i = self.interface(iface)?;
                self.schedule.down(i);
                Ok(Handled::Taken)
            }
            Input::Received {
                iface,
                from,
                datagram,
            } => {
                let i = self.interface(iface)?;
                let handled = self.received(now, i, iface, from, datagram);
                if let Handled::Dropped(why) = handled {
                    match why {
                        DropReason::Malformed(e) => {
                            self.stats.malformed += 1;
                            if e == DecodeError::Sealed {
                                self.stats.sealed += 1;
                            }
                        }
                        DropReason::RateLimited => self.stats.rate_limited += 1,
                        DropReason::Spoofed => self.stats.spoofed += 1,
                        DropReason::Own | DropReason::InterfaceDown => {}
                    }
                }
                Ok(handled)
            }
            Input::Timeout => Ok(Handled::Taken),
            Input::Leave => {
                self.schedule.leave(now);
                Ok(Handled::Taken)
            }
        }
    }

    /// The next thing to do at `now`: events first, then expiries, then a due
    /// beacon; last, when to call again.
    pub fn poll_output(&mut self, now: Instant) -> Output<'_> {
        if let Some(event) = self.events.pop_front() {
            return Output::Event(event);
        }
        let schedule = &self.schedule;
        if let Some(swept) = self
            .nearby
            .sweep(now, |iface| schedule.is_up(usize::from(iface)))
        {
            return Output::Event(match swept {
                Swept::Changed(key) => Event::Changed { key },
                Swept::Gone(key) => Event::Lost { key },
            });
        }
        let due = self.schedule.next().is_some_and(|t| t <= now);
        let random = if due { self.random.next() } else { [0; 32] };
        let jitter = u32::from_le_bytes([random[16], random[17], random[18], random[19]]);
        if let Some(iface) = self.schedule.fire(now, jitter) {
            let mut nonce = [0u8; NONCE_LEN];
            nonce.copy_from_slice(&random[..NONCE_LEN]);
            let beacon = Beacon {
                port: self.config.port,
                key: self.config.key,
                name: self.config.name.clone(),
                leaving: self.schedule.leaving(),
            };
            // The config was checked in `new` and the buffer holds MAX_BEACON,
            // so this cannot fail; if it did, the beacon is skipped, not sent garbled.
            if let Ok(len) = beacon.encode(&nonce, self.config.room_key.as_ref(), &mut self.buf) {
                self.stats.sent += 1;
                // `iface` < I came from an input that fitted a u8.
                let iface = u8::try_from(iface).unwrap_or(u8::MAX);
                return Output::Transmit {
                    iface,
                    datagram: &self.buf[..len],
                };
            }
        }
        let wake = match (self.schedule.next(), self.nearby.next_expiry()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Output::Timeout(wake)
    }

    /// A datagram from `from` on interface `i`.
    fn received(
        &mut self,
        now: Instant,
        i: usize,
        iface: u8,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Handled {
        if !self.schedule.is_up(i) {
            return Handled::Dropped(DropReason::InterfaceDown);
        }
        if !self.nearby.admit(from.ip(), now) {
            return Handled::Dropped(DropReason::RateLimited);
        }
        let heard = match Beacon::decode(datagram, self.config.room_key.as_ref()) {
            Ok(heard) => heard,
            Err(e) => return Handled::Dropped(DropReason::Malformed(e)),
        };
        if heard.beacon.key == self.config.key {
            return Handled::Dropped(DropReason::Own);
        }
        let key = heard.beacon.key;
        if heard.beacon.leaving {
            return match self.nearby.farewell(&key, heard.in_room) {
                Farewell::Gone => {
                    self.push_event(Event::Lost { key });
                    Handled::Taken
                }
                Farewell::Unknown => Handled::Taken,
                Farewell::Spoofed => Handled::Dropped(DropReason::Spoofed),
            };
        }
        match self.nearby.update(&heard, from, iface, now) {
            Update::New { evicted } => {
                if let Some(old) = evicted {
                    self.stats.evicted += 1;
                    self.push_event(Event::Lost { key: old });
                }
                self.push_event(Event::Found { key });
                let random = self.random.next_u32();
                self.schedule.quicken(now, random);
            }
            Update::Changed => self.push_event(Event::Changed { key }),
            Update::Same => {}
            Update::Spoofed => return Handled::Dropped(DropReason::Spoofed),
        }
        Handled::Taken
    }

    /// Queues an event, dropping the oldest when the host has not drained.
    fn push_event(&mut self, event: Event) {
        if let Err(event) = self.events.push_back(event) {
            self.stats.lost_events += 1;
            let _ = self.events.pop_front();
            let _ = self.events.push_back(event);
        }
    }

    /// `iface` as an index, if it is one of ours.
    fn interface(&self, iface: u8) -> Result<usize, DiscoveryError> {
        let i = usize::from(iface);
        if i < I {
            Ok(i)
        } else {
            Err(DiscoveryError::Interface { iface, max: I })
        }
    }
}

/// The random stream of jitter and nonces: BLAKE2s-HMAC of the host's seed
/// over a counter, so it is unpredictable without the seed and replays exactly
/// with it (a failing test reproduces).
#[derive(Clone)]
struct Random {
    seed: [u8; 32],
    counter: u64,
}

impl Random {
    /// The next 32 random bytes.
    fn next(&mut self) -> [u8; 32] {
        let digest = Blake2s::hmac_many(&self.seed, &[RANDOM_LABEL, &self.counter.to_le_bytes()]);
        self.counter = self.counter.wrapping_add(1);
        let mut out = [0u8; 32];
        out.copy_from_slice(clatter::bytearray::ByteArray::as_slice(&digest));
        out
    }

    /// The next 32 random bits.
    fn next_u32(&mut self) -> u32 {
        let b = self.next();
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
}
