//! LAN discovery in the driver: starting it, `/nearby`, `connect <name>` of a
//! node it found, `--auto-connect`'s few links to room members (the core's
//! [`AutoConnect`] decides whom and when; this dials), and the farewells when
//! the program ends.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::PoisonError;
use std::time::Duration;

use meshtalk_core::command::Command;
use meshtalk_core::discovery::{self, AutoConnect};
use meshtalk_core::node::{Config, Event, Input};
use meshtalk_core::noise::{KEY_LEN, public_key};
use meshtalk_core::peers::PeerId;
use meshtalk_core::reach::DialHost;
use meshtalk_core::time::Instant;

use super::Driver;
use crate::channel::{Change, Seen, ToDriver};
use crate::discover::{self, Leave, Table};
use crate::keys::Keys;
use crate::log::{debug, diag};

/// Room members `--auto-connect` keeps track of (as many as discovery keeps nodes).
const MEMBERS: usize = 64;
/// The longest the program waits on its way out for its farewells to be sent
/// (they take about 100 ms).
const FAREWELL_WAIT: Duration = Duration::from_millis(500);

/// Discovery running: what it heard, how to make it leave, and our key
/// (auto-connect's tie-break).
pub(super) struct Started {
    table: Table,
    leave: Leave,
    key: [u8; KEY_LEN],
}

/// Starts discovery for a node of `config` and `keys` listening on `bound`;
/// `None` (after saying why) when it cannot run.
pub(super) fn start(
    config: &Config,
    keys: &Keys,
    bound: SocketAddr,
    tx: ToDriver,
) -> Option<Started> {
    let key = public_key(&keys.secret);
    let announce = discovery::Config {
        key,
        port: bound.port(),
        name: config.name.clone(),
        room_key: keys.room_key,
    };
    match discover::spawn(announce, bound.ip(), tx) {
        Ok((table, leave)) => Some(Started { table, leave, key }),
        Err(e) => {
            diag!("LAN discovery is off: {e}");
            None
        }
    }
}

/// What the driver keeps of discovery.
pub(super) struct Nearby {
    started: Option<Started>,
    /// `--auto-connect`: whom to dial, and when again.
    auto: Option<AutoConnect<MEMBERS>>,
    /// The peers auto-connect dialled, and the member each is for.
    dialled: HashMap<PeerId, [u8; KEY_LEN]>,
}

impl Nearby {
    /// `auto`: `--auto-connect`'s limit (with discovery running).
    pub(super) fn new(started: Option<Started>, auto: Option<usize>) -> Nearby {
        let auto = match (&started, auto) {
            (Some(started), Some(limit)) => Some(AutoConnect::new(started.key, limit)),
            _ => None,
        };
        Nearby {
            started,
            auto,
            dialled: HashMap::new(),
        }
    }

    /// When auto-connect dials a member again next, if it will.
    pub(super) fn next_at(&self) -> Option<Instant> {
        self.auto.as_ref()?.next_at()
    }

    /// The program ends: discovery starts sending its farewells.
    pub(super) fn leave(&self) {
        if let Some(started) = &self.started {
            started.leave.ask();
        }
    }

    /// Waits (a little, at most) for the farewells [`Nearby::leave`] started.
    pub(super) fn left(&self) {
        if let Some(started) = &self.started {
            started.leave.wait(FAREWELL_WAIT);
        }
    }

    /// The nodes heard now; `None` when discovery is off.
    fn list(&self) -> Option<Vec<Seen>> {
        let started = self.started.as_ref()?;
        let table = started.table.lock().unwrap_or_else(PoisonError::into_inner);
        Some(table.clone())
    }
}

impl Driver {
    /// `/nearby`: the nodes discovery heard.
    pub(super) fn show_nearby(&self) {
        let Some(list) = self.nearby.list() else {
            self.render.help(
                "LAN discovery is off: `mesh` runs it unless --no-discover is given \
                 (`chat` and `serve` with --discover)",
            );
            return;
        };
        let linked = self.linked_keys();
        self.render.nearby_list(&list, |key| linked.contains(key));
    }

    /// The keys of the peers linked now (secure ones).
    fn linked_keys(&self) -> HashSet<[u8; KEY_LEN]> {
        self.node
            .peers()
            .filter_map(|p| self.node.remote_key(p.id).copied())
            .collect()
    }

    /// `connect <name>`: the line with the address and port of the node heard
    /// under that name, or an error saying none was (or that discovery is off).
    pub(super) fn connect_by_name(&self, name: &str) -> Result<String, String> {
        let Some(list) = self.nearby.list() else {
            return Err(format!(
                "connect {name}: LAN discovery is off, so no node is known by name; \
                 connect <host> <port> dials an address"
            ));
        };
        // A room member first, should an outsider announce the same name.
        let Some(seen) = list
            .iter()
            .filter(|s| s.name == name && !s.addrs.is_empty())
            .max_by_key(|s| (s.in_room, s.last_seen))
        else {
            return Err(format!(
                "no node named {name} heard nearby (/nearby lists them); \
                 connect <host> <port> dials an address"
            ));
        };
        let addr = seen.addrs.first().ok_or("a node heard with no address")?;
        Ok(format!(
            "connect {} {}",
            DialHost::bracketed(*addr),
            addr.port()
        ))
    }

    /// Discovery found, changed or lost a node: shown, and with
    /// `--auto-connect` a room member whose key sorts after ours is dialled.
    pub(super) fn nearby_changed(&mut self, change: Change, seen: &Seen) {
        self.render.nearby_event(change, seen);
        if self.interactive {
            // Tab after `connect` offers the names heard now.
            let names = self.nearby.list().unwrap_or_default();
            let mut names: Vec<String> = names.into_iter().map(|s| s.name).collect();
            names.retain(|n| !n.is_empty());
            names.sort();
            names.dedup();
            self.known_mut().nearby = names;
        }
        if let Some(auto) = &mut self.nearby.auto {
            match change {
                Change::Lost => {
                    auto.left(&seen.key);
                }
                _ => auto.heard(&seen.key, seen.in_room),
            }
        }
        self.auto_dial();
    }

    /// Dials the room members auto-connect picks now (a member whose re-dial is
    /// due, or one heard while below the limit), at the first address heard.
    pub(super) fn auto_dial(&mut self) {
        if self.nearby.auto.is_none() {
            return;
        }
        let now = self.now();
        let linked = self.linked_keys();
        let list = self.nearby.list().unwrap_or_default();
        loop {
            let Some(auto) = &mut self.nearby.auto else {
                return;
            };
            let Some(key) = auto.next_dial(now, |k| linked.contains(k)) else {
                return;
            };
            let Some(addr) = list
                .iter()
                .find(|s| s.key == key)
                .and_then(|s| s.addrs.first())
            else {
                // Not heard any more: its `Lost` is on its way.
                auto.left(&key);
                continue;
            };
            let host = DialHost::bare(*addr).to_string();
            let connect = Command::Connect {
                host: &host,
                port: addr.port(),
                alias: None,
            };
            let before: HashSet<PeerId> = self.node.peers().map(|p| p.id).collect();
            match self.node.handle_input(now, Input::Command(connect)) {
                Ok(_) => {
                    let new = self
                        .node
                        .peers()
                        .map(|p| p.id)
                        .find(|p| !before.contains(p));
                    if let Some(peer) = new {
                        self.nearby.dialled.insert(peer, key);
                    }
                }
                Err(e) => {
                    debug!("auto-connect to {host} port {}: {e}", addr.port());
                    if let Some(auto) = &mut self.nearby.auto {
                        auto.dropped(&key, now);
                    }
                }
            }
            self.drain();
        }
    }

    /// Auto-connect dials again the members whose wait is over.
    pub(super) fn auto_redial_due(&mut self) {
        if self.nearby.next_at().is_some_and(|at| at <= self.now()) {
            self.auto_dial();
        }
    }

    /// A link auto-connect dialled came up or went: linked, or dialled again
    /// after its backoff while the member is heard (unless `--reconnect` dials
    /// it again itself, under its id).
    pub(super) fn auto_link_event(&mut self, event: &Event<String>) {
        if self.nearby.auto.is_none() {
            return;
        }
        match event {
            Event::Connected { peer, .. } => {
                let now = self.now();
                if let (Some(key), Some(auto)) =
                    (self.nearby.dialled.get(peer), &mut self.nearby.auto)
                {
                    auto.linked(key, now);
                }
            }
            Event::Disconnected { peer, .. } | Event::ConnectFailed { peer, .. } => {
                if self.reconnecting(*peer) {
                    return;
                }
                let now = self.now();
                if let (Some(key), Some(auto)) =
                    (self.nearby.dialled.remove(peer), &mut self.nearby.auto)
                    && let Some(wait) = auto.dropped(&key, now)
                {
                    debug!(
                        "auto-connect: {peer} dropped; dialled again in {wait:?} if still heard"
                    );
                }
            }
            _ => {}
        }
    }
}
