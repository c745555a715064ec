//! Property tests for `meshtalk_core::peers`: the peer table against a plain
//! model (a `Vec` of peers) under random sequences of operations.

use std::net::{IpAddr, SocketAddr};

use meshtalk_core::command::{Target, validate_alias};
use meshtalk_core::limits::MAX_NAME;
use meshtalk_core::peers::{AliasSource, Direction, InsertError, LookupError, PeerId, PeerTable};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

/// Slots in the table under test; the limit is drawn below and above it.
const SLOTS: usize = 4;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(0x7065_6572_7321),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// IPs shared by several addresses; a long IPv6 one whose alias needs the room.
const IPS: [&str; 5] = [
    "10.0.0.1",
    "10.0.0.2",
    "127.0.0.1",
    "fe80::1",
    "1111:2222:3333:4444:5555:6666:7777:8888",
];

fn addr(i: usize) -> SocketAddr {
    let ip: IpAddr = IPS[i % IPS.len()].parse().unwrap();
    SocketAddr::new(ip, 1 + (i / IPS.len()) as u16)
}

/// Names to choose, announce and look up: valid aliases, IP-like ones, default-like
/// ones, and broken ones.
const NAMES: [&str; 14] = [
    "alice",
    "bob",
    "bob-2",
    "10.0.0.1",
    "10.0.0.2",
    "peer1",
    "peer2",
    "abcdefghijklmnopqrstuvwxyz012345",
    "abcdefghijklmnopqrstuvwxyz0123456",
    "",
    "a b",
    "#1",
    "fe80::1",
    "x\u{1b}",
];

#[derive(Clone, Debug)]
enum Op {
    Insert {
        addr: Option<usize>,
        alias: Option<usize>,
    },
    Remove(usize),
    SetAlias(usize, usize),
    Announce(usize, usize),
    SetAddr(usize, usize),
    ResolveId(usize),
    ResolveName(usize),
    ResolveIp(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let addr = 0..IPS.len() * 2;
    let name = 0..NAMES.len();
    // Ids index the ids handed out so far, stale ones included.
    let id = 0..16usize;
    prop_oneof![
        4 => (proptest::option::of(addr.clone()), proptest::option::weighted(0.4, name.clone()))
            .prop_map(|(addr, alias)| Op::Insert { addr, alias }),
        2 => id.clone().prop_map(Op::Remove),
        1 => (id.clone(), name.clone()).prop_map(|(i, n)| Op::SetAlias(i, n)),
        2 => (id.clone(), name.clone()).prop_map(|(i, n)| Op::Announce(i, n)),
        1 => (id.clone(), addr.clone()).prop_map(|(i, a)| Op::SetAddr(i, a)),
        1 => (0..20usize).prop_map(Op::ResolveId),
        1 => name.prop_map(Op::ResolveName),
        1 => addr.prop_map(Op::ResolveIp),
    ]
}

/// What the model knows of one peer; the alias of a peer that did not choose
/// one is read from the table and checked against its base name.
#[derive(Clone, Debug)]
struct Model {
    id: PeerId,
    addr: Option<SocketAddr>,
    /// The alias: chosen, or read from the table when assigned (and checked
    /// then against the name it was made from); it changes only by an operation.
    alias: String,
    source: AliasSource,
    state: u32,
}

struct Harness {
    table: PeerTable<u32, SLOTS>,
    limit: usize,
    peers: Vec<Model>,
    /// Every id handed out, in order.
    issued: Vec<PeerId>,
    next_state: u32,
}

impl Harness {
    fn new(limit: usize) -> Self {
        Harness {
            table: PeerTable::new(limit),
            limit: limit.min(SLOTS),
            peers: Vec::new(),
            issued: Vec::new(),
            next_state: 0,
        }
    }

    fn id(&self, i: usize) -> Option<PeerId> {
        (!self.issued.is_empty()).then(|| self.issued[i % self.issued.len()])
    }

    fn alias(&self, id: PeerId) -> String {
        self.table.get(id).unwrap().alias().to_owned()
    }

    fn owner(&self, alias: &str) -> Option<PeerId> {
        self.table.iter().find(|p| p.alias() == alias).map(|p| p.id)
    }

    fn default_base(addr: Option<SocketAddr>, id: PeerId) -> String {
        match addr {
            Some(a) => a.ip().to_string(),
            None => format!("peer{}", id.number()),
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Insert { addr: a, alias } => {
                let addr = a.map(addr);
                let alias = alias.map(|n| NAMES[n]);
                self.next_state += 1;
                let state = self.next_state;
                let expected_err = if self.peers.len() >= self.limit {
                    Some(InsertError::Full { limit: self.limit })
                } else if let Some(Err(e)) = alias.map(validate_alias) {
                    Some(InsertError::BadAlias(e))
                } else {
                    alias
                        .and_then(|a| self.owner(a))
                        .map(InsertError::AliasTaken)
                };
                let result = self.table.insert(addr, Direction::Inbound, alias, state);
                match (result, expected_err) {
                    (Err((e, back)), Some(expected)) => {
                        assert_eq!(e, expected);
                        assert_eq!(back, state, "the state was not handed back");
                    }
                    (Ok(id), None) => {
                        if let Some(last) = self.issued.last() {
                            assert!(id.number() > last.number(), "a peer number was reused");
                        }
                        self.issued.push(id);
                        let (alias, source) = match alias {
                            Some(a) => (a.to_owned(), AliasSource::Chosen),
                            None => {
                                let got = self.alias(id);
                                self.check_made_unique(&got, &Self::default_base(addr, id), id);
                                (got, AliasSource::Address)
                            }
                        };
                        self.peers.push(Model {
                            id,
                            addr,
                            alias,
                            source,
                            state,
                        });
                    }
                    (result, expected) => {
                        panic!("insert gave {result:?}, the model expected {expected:?}")
                    }
                }
            }
            Op::Remove(i) => {
                let Some(id) = self.id(i) else { return };
                let removed = self.table.remove(id);
                let at = self.peers.iter().position(|p| p.id == id);
                assert_eq!(
                    removed.as_ref().map(|p| p.id),
                    at.map(|at| self.peers[at].id)
                );
                if let Some(at) = at {
                    assert_eq!(removed.unwrap().state, self.peers[at].state);
                    self.peers.remove(at);
                }
            }
            Op::SetAlias(i, n) => {
                let Some(id) = self.id(i) else { return };
                let name = NAMES[n];
                let owner = self.owner(name);
                let expected = match validate_alias(name) {
                    Err(e) => Err(InsertError::BadAlias(e)),
                    Ok(()) => match owner.filter(|&o| o != id) {
                        Some(o) => Err(InsertError::AliasTaken(o)),
                        None => Ok(()),
                    },
                };
                assert_eq!(self.table.set_alias(id, name), expected);
                if expected.is_ok()
                    && let Some(p) = self.peers.iter_mut().find(|p| p.id == id)
                {
                    p.alias = name.to_owned();
                    p.source = AliasSource::Chosen;
                }
            }
            Op::Announce(i, n) => {
                let Some(id) = self.id(i) else { return };
                let name = NAMES[n];
                let before = self.table.get(id).map(|p| p.alias().to_owned());
                let changed = self.table.announce(id, name);
                let Some(at) = self.peers.iter().position(|p| p.id == id) else {
                    assert!(!changed, "a stale id was renamed");
                    return;
                };
                if self.peers[at].source == AliasSource::Chosen || validate_alias(name).is_err() {
                    assert!(
                        !changed,
                        "announce replaced a chosen alias or took a bad name"
                    );
                    return;
                }
                let after = self.alias(id);
                self.check_made_unique(&after, name, id);
                assert_eq!(changed, before.unwrap() != after, "announce's answer");
                self.peers[at].alias = after;
                self.peers[at].source = AliasSource::Announced;
            }
            Op::SetAddr(i, a) => {
                let Some(id) = self.id(i) else { return };
                let addr = addr(a);
                self.table.set_addr(id, addr);
                if let Some(at) = self.peers.iter().position(|p| p.id == id) {
                    self.peers[at].addr = Some(addr);
                    if self.peers[at].source == AliasSource::Address {
                        let got = self.alias(id);
                        self.check_made_unique(&got, &Self::default_base(Some(addr), id), id);
                        self.peers[at].alias = got;
                    }
                }
            }
            Op::ResolveId(n) => {
                let number = self
                    .issued
                    .get(n)
                    .map_or(n as u32 + 1000 * (n as u32 % 2), |id| id.number());
                let expected = self
                    .peers
                    .iter()
                    .find(|p| p.id.number() == number)
                    .map(|p| p.id)
                    .ok_or(LookupError::NoSuchId(number));
                assert_eq!(self.table.resolve(Target::Id(number)), expected);
            }
            Op::ResolveName(n) => self.check_resolve_name(NAMES[n]),
            Op::ResolveIp(a) => self.check_resolve_name(&addr(a).ip().to_string()),
        }
    }

    fn check_resolve_name(&self, name: &str) {
        let got = self.table.resolve(Target::Name(name));
        let owner = self.owner(name);
        let source = |id: PeerId| self.peers.iter().find(|p| p.id == id).map(|p| p.source);
        if let Some(owner) = owner.filter(|&o| source(o) != Some(AliasSource::Address)) {
            assert_eq!(
                got,
                Ok(owner),
                "a chosen or announced alias comes before an IP"
            );
            return;
        }
        let Ok(ip) = name.parse::<IpAddr>() else {
            assert_eq!(got, owner.ok_or(LookupError::NoSuchName(name)));
            return;
        };
        let at_ip: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|p| p.addr.is_some_and(|a| a.ip() == ip))
            .map(|p| p.id)
            .collect();
        let expected = match at_ip[..] {
            [] => owner.ok_or(LookupError::NoSuchName(name)),
            [one] => Ok(one),
            _ => Err(LookupError::Ambiguous {
                ip,
                count: at_ip.len(),
            }),
        };
        assert_eq!(got, expected, "resolving {name}");
    }

    fn check(&self) {
        assert_eq!(self.table.len(), self.peers.len());
        assert_eq!(self.table.iter().count(), self.peers.len());
        assert_eq!(self.table.is_empty(), self.peers.is_empty());
        let mut aliases: Vec<&str> = self.table.iter().map(|p| p.alias()).collect();
        aliases.sort_unstable();
        let all = aliases.len();
        aliases.dedup();
        assert_eq!(aliases.len(), all, "two peers share an alias");
        for m in &self.peers {
            let p = self.table.get(m.id).expect("a live peer is gone");
            assert_eq!(p.id, m.id);
            assert_eq!(p.addr, m.addr);
            assert_eq!(p.state, m.state);
            assert_eq!(p.alias_source(), m.source);
            let alias = p.alias();
            assert_eq!(alias, m.alias, "an alias changed by itself");
            let ip_derived = m.source == AliasSource::Address && m.addr.is_some();
            assert!(
                validate_alias(alias).is_ok() || ip_derived,
                "alias {alias:?} breaks the alias rules"
            );
        }
        for &id in &self.issued {
            if self.peers.iter().all(|m| m.id != id) {
                assert!(self.table.get(id).is_none(), "a stale id reaches a peer");
                assert_eq!(
                    self.table.resolve(Target::Id(id.number())),
                    Err(LookupError::NoSuchId(id.number())),
                    "a stale number resolves"
                );
            }
        }
    }
}

impl Harness {
    /// `alias`, just given to `id`, is `base` when no other peer holds `base`,
    /// else `base` (cut to fit) with the first free `-N` suffix, N from 2.
    fn check_made_unique(&self, alias: &str, base: &str, id: PeerId) {
        let taken = |a: &str| self.table.iter().any(|q| q.id != id && q.alias() == a);
        check_made_unique(alias, base, taken);
    }
}

fn check_made_unique(alias: &str, base: &str, taken: impl Fn(&str) -> bool) {
    if !taken(base) {
        assert_eq!(alias, base, "a free name was not used as it is");
        return;
    }
    let (head, n) = alias
        .rsplit_once('-')
        .unwrap_or_else(|| panic!("{alias:?} has no -N suffix for taken {base:?}"));
    let n: u32 = n.parse().expect("a numeric suffix");
    assert!(n >= 2);
    assert!(
        base.starts_with(head),
        "{alias:?} does not come from {base:?}"
    );
    // A name (at most MAX_NAME) is cut to keep the alias within MAX_NAME; a
    // longer base (an IPv6 address) has the room of ALIAS_CAP and is never cut.
    if base.len() > MAX_NAME || base.len() + 1 + n.to_string().len() <= MAX_NAME {
        assert_eq!(head, base, "{alias:?} cut {base:?} for no reason");
    } else {
        assert_eq!(alias.len(), MAX_NAME, "{alias:?} cut {base:?} too much");
    }
    for k in 2..n {
        let earlier = format!("{head}-{k}");
        assert!(taken(&earlier), "{alias:?} skipped the free {earlier:?}");
    }
}

proptest! {
    #![proptest_config(config(400))]

    #[test]
    fn the_peer_table_behaves_like_a_list_of_peers(
        limit in 0..=SLOTS + 1,
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let mut h = Harness::new(limit);
        for op in &ops {
            h.apply(op);
            h.check();
        }
    }
}

#[test]
fn a_full_table_refuses_exactly_at_its_limit_and_hands_the_state_back() {
    for limit in 0..=SLOTS + 1 {
        let mut t = PeerTable::<u32, SLOTS>::new(limit);
        let effective = limit.min(SLOTS);
        for k in 0..effective {
            assert!(t.insert(None, Direction::Outbound, None, k as u32).is_ok());
        }
        assert_eq!(
            t.insert(None, Direction::Outbound, None, 99),
            Err((InsertError::Full { limit: effective }, 99))
        );
        assert_eq!(t.len(), effective);
    }
}

#[test]
fn an_ipv6_default_alias_with_a_suffix_keeps_the_whole_address() {
    let mut t = PeerTable::<(), SLOTS>::new(SLOTS);
    let ip = IPS[4];
    let a = t
        .insert(Some(addr(4)), Direction::Inbound, None, ())
        .unwrap();
    let b = t
        .insert(Some(addr(4 + IPS.len())), Direction::Inbound, None, ())
        .unwrap();
    assert_eq!(t.get(a).unwrap().alias(), ip);
    assert_eq!(t.get(b).unwrap().alias(), format!("{ip}-2"));
}

#[test]
fn peers_from_one_address_past_a_thousand_get_the_smallest_free_suffix() {
    let mut table: Box<PeerTable<(), 1100>> = Box::new(PeerTable::new(1100));
    let addr = SocketAddr::new(IpAddr::from([10, 0, 0, 1]), 4000);
    let mut ids = Vec::new();
    for _ in 0..1100 {
        let id = table
            .insert(Some(addr), Direction::Inbound, None, ())
            .expect("room");
        ids.push(id);
    }
    let alias = |table: &PeerTable<(), 1100>, id| table.get(id).unwrap().alias().to_owned();
    assert_eq!(alias(&table, ids[0]), "10.0.0.1");
    assert_eq!(alias(&table, ids[1]), "10.0.0.1-2");
    assert_eq!(alias(&table, ids[1099]), "10.0.0.1-1100");
    // Freed suffixes on both sides of the first 1024 candidates are taken again, smallest first.
    table.remove(ids[1049]);
    table.remove(ids[499]);
    let again = table
        .insert(Some(addr), Direction::Inbound, None, ())
        .unwrap();
    assert_eq!(alias(&table, again), "10.0.0.1-500");
    let again = table
        .insert(Some(addr), Direction::Inbound, None, ())
        .unwrap();
    assert_eq!(alias(&table, again), "10.0.0.1-1050");
}
