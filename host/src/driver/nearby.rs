//! LAN discovery in the driver: starting it, `/nearby`, `connect <name>` of a
//! node it found, and `--auto-connect`'s few links to room members.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::PoisonError;

use meshtalk_core::command::{Command, Grammar, Verb};
use meshtalk_core::discovery;
use meshtalk_core::node::{Config, Input};
use meshtalk_core::noise::{KEY_LEN, public_key};

use super::Driver;
use crate::channel::{Change, Seen, ToDriver};
use crate::discover::{self, Table};
use crate::keys::Keys;
use crate::log::{debug, diag};

/// Discovery running: what it heard, and our key (auto-connect's tie-break).
pub(super) struct Started {
    table: Table,
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
        Ok(table) => Some(Started { table, key }),
        Err(e) => {
            diag!("LAN discovery is off: {e}");
            None
        }
    }
}

/// What the driver keeps of discovery.
pub(super) struct Nearby {
    started: Option<Started>,
    /// `--auto-connect`: the most room members dialled.
    auto: Option<usize>,
    /// The keys auto-connect dialled (forgotten when the node is lost).
    dialled: HashSet<[u8; KEY_LEN]>,
}

impl Nearby {
    pub(super) fn new(started: Option<Started>, auto: Option<usize>) -> Nearby {
        Nearby {
            started,
            auto,
            dialled: HashSet::new(),
        }
    }

    /// The nodes heard now; `None` when discovery is off.
    fn list(&self) -> Option<Vec<Seen>> {
        let started = self.started.as_ref()?;
        let table = started.table.lock().unwrap_or_else(PoisonError::into_inner);
        Some(table.clone())
    }
}

/// Whether `line` is `/nearby` (or, in a script, `nearby`).
pub(super) fn is_nearby(line: &str, grammar: Grammar) -> bool {
    match line.trim() {
        "/nearby" => true,
        "nearby" => grammar == Grammar::Commands,
        _ => false,
    }
}

/// `addr`'s host as the command line takes it (an IPv6 one in brackets, with its scope).
fn host(addr: &SocketAddr) -> String {
    match addr {
        SocketAddr::V4(v4) => v4.ip().to_string(),
        SocketAddr::V6(v6) if v6.scope_id() != 0 => format!("[{}%{}]", v6.ip(), v6.scope_id()),
        SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
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

    /// `connect <name>` (one word, no address) while discovery runs: the line
    /// with the address and port of the node heard under that name, or an
    /// error saying none was; `None` for any other line.
    pub(super) fn connect_by_name(&self, line: &str) -> Option<Result<String, String>> {
        let mut words = line.split_whitespace();
        let verb = words.next()?;
        let verb = verb.strip_prefix('/').unwrap_or(verb);
        if verb != Verb::Connect.name() && !Verb::Connect.synonyms().contains(&verb) {
            return None;
        }
        let name = words.next()?;
        if words.next().is_some() || name.contains(':') || name.parse::<IpAddr>().is_ok() {
            return None;
        }
        let list = self.nearby.list()?;
        // A room member first, should an outsider announce the same name.
        let Some(seen) = list
            .iter()
            .filter(|s| s.name == name && !s.addrs.is_empty())
            .max_by_key(|s| (s.in_room, s.last_seen))
        else {
            return Some(Err(format!(
                "no node named {name} heard nearby (/nearby lists them); \
                 connect <host> <port> dials an address"
            )));
        };
        let addr = seen.addrs.first()?;
        Some(Ok(format!("connect {} {}", host(addr), addr.port())))
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
        if change == Change::Lost {
            self.nearby.dialled.remove(&seen.key);
            return;
        }
        let (Some(limit), Some(started)) = (self.nearby.auto, &self.nearby.started) else {
            return;
        };
        if !seen.in_room
            || seen.key <= started.key
            || self.nearby.dialled.contains(&seen.key)
            || self.nearby.dialled.len() >= limit
            || self.linked_keys().contains(&seen.key)
        {
            return;
        }
        let Some(addr) = seen.addrs.first() else {
            return;
        };
        self.nearby.dialled.insert(seen.key);
        let host = match addr {
            SocketAddr::V6(v6) if v6.scope_id() != 0 => format!("{}%{}", v6.ip(), v6.scope_id()),
            _ => addr.ip().to_string(),
        };
        let connect = Command::Connect {
            host: &host,
            port: addr.port(),
            alias: None,
        };
        let now = self.now();
        if let Err(e) = self.node.handle_input(now, Input::Command(connect)) {
            debug!("auto-connect to {host} port {}: {e}", addr.port());
        }
        self.drain();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearby_is_a_command_bare_only_in_scripts() {
        assert!(is_nearby("/nearby", Grammar::Chat));
        assert!(is_nearby(" /nearby ", Grammar::Commands));
        assert!(is_nearby("nearby", Grammar::Commands));
        assert!(
            !is_nearby("nearby", Grammar::Chat),
            "a word said to the room"
        );
        assert!(!is_nearby("/nearby bob", Grammar::Commands));
    }

    #[test]
    fn a_found_nodes_address_is_written_as_connect_takes_it() {
        let v4: SocketAddr = "198.18.0.2:4000".parse().expect("v4");
        assert_eq!(host(&v4), "198.18.0.2");
        let scoped = SocketAddr::V6(std::net::SocketAddrV6::new(
            "fe80::1".parse().expect("v6"),
            4000,
            0,
            3,
        ));
        assert_eq!(host(&scoped), "[fe80::1%3]");
    }
}
