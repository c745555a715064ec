//! The peer table: a fixed number of slots, each peer with a stable id, an
//! address and a unique alias, found by alias, by IP or by `#id`.

use core::fmt::{self, Write as _};
use core::net::{IpAddr, SocketAddr};

use heapless::String;

use crate::alias::{AliasError, Target, validate_alias};
use crate::limits::MAX_NAME;

/// Room for an alias: a chosen one is at most [`MAX_NAME`] characters, a default
/// one may be an IPv6 address with a `-N` suffix.
pub const ALIAS_CAP: usize = 48;

/// A peer's alias.
pub type Alias = String<ALIAS_CAP>;

/// A handle to a peer. `serial` is never reused, so a handle to a peer that has
/// left never reaches the peer that took its slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId {
    slot: u16,
    serial: u32,
}

impl PeerId {
    /// The number people use for this peer: `#3` is number 3.
    pub fn number(self) -> u32 {
        self.serial
    }

    /// The table slot this peer holds (below the table's size): an index for
    /// per-peer arrays kept beside the table.
    pub fn slot(self) -> usize {
        usize::from(self.slot)
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.serial)
    }
}

/// Who opened the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// We dialled the peer.
    Outbound,
    /// The peer dialled us.
    Inbound,
}

/// Where a peer's alias came from: a person's choice is never replaced by a default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AliasSource {
    /// A person here chose it (`connect ... alias`, `set_alias`).
    Chosen,
    /// The name the peer announced.
    Announced,
    /// The peer's IP, for want of a name.
    Address,
}

/// One peer and the state its owner keeps for it.
#[derive(Debug)]
pub struct Peer<S> {
    /// The peer's handle, never reused for another peer.
    pub id: PeerId,
    /// The remote address; `None` while a dial is under way.
    pub addr: Option<SocketAddr>,
    /// Who dialled whom.
    pub direction: Direction,
    alias: Alias,
    alias_source: AliasSource,
    /// What the table's owner keeps for the peer.
    pub state: S,
}

impl<S> Peer<S> {
    /// The alias the person sees, unique in the table.
    pub fn alias(&self) -> &str {
        &self.alias
    }

    /// The alias, and the state to change while reading it.
    pub fn alias_and_state(&mut self) -> (&str, &mut S) {
        (&self.alias, &mut self.state)
    }

    /// Where the alias came from.
    pub fn alias_source(&self) -> AliasSource {
        self.alias_source
    }
}

/// Why a peer could not be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertError {
    /// Every slot (or the configured limit) is taken.
    Full {
        /// The table's limit.
        limit: usize,
    },
    /// The chosen alias belongs to another peer.
    AliasTaken(PeerId),
    /// The chosen alias breaks the alias rules.
    BadAlias(AliasError),
}

impl fmt::Display for InsertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InsertError::Full { limit } => write!(
                f,
                "peer table is full ({limit} peers); disconnect one first"
            ),
            InsertError::AliasTaken(id) => write!(f, "that alias is taken by {id}"),
            InsertError::BadAlias(e) => write!(f, "{e}"),
        }
    }
}

/// Why a target did not name exactly one peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupError<'a> {
    /// No peer has this number (`#id`).
    NoSuchId(u32),
    /// No peer has this alias or IP.
    NoSuchName(&'a str),
    /// Several peers share this IP: an alias or `#id` is needed.
    Ambiguous {
        /// The shared IP.
        ip: IpAddr,
        /// How many peers have it.
        count: usize,
    },
}

impl fmt::Display for LookupError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupError::NoSuchId(n) => {
                write!(f, "no peer #{n}; list_connections shows who is here")
            }
            LookupError::NoSuchName(name) => write!(
                f,
                "no peer with alias or IP '{name}'; list_connections shows who is here"
            ),
            LookupError::Ambiguous { ip, count } => {
                write!(f, "{count} peers at {ip}; use an alias or #id")
            }
        }
    }
}

/// A fixed-capacity table of at most `N` peers, each carrying a state `S`.
pub struct PeerTable<S, const N: usize> {
    slots: [Option<Peer<S>>; N],
    limit: usize,
    len: usize,
    /// One past the last occupied slot: walks stop here, not at `N` (each slot
    /// is as large as a peer's receive buffer, so empty ones are not free to skip).
    end: usize,
    last_serial: u32,
}

impl<S, const N: usize> Default for PeerTable<S, N> {
    fn default() -> Self {
        Self::new(N)
    }
}

impl<S, const N: usize> PeerTable<S, N> {
    /// An empty table that holds at most `limit` peers (and never more than `N`).
    pub fn new(limit: usize) -> Self {
        PeerTable {
            slots: core::array::from_fn(|_| None),
            limit: limit.min(N).min(u16::MAX as usize),
            len: 0,
            end: 0,
            last_serial: 0,
        }
    }

    /// How many peers there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no peers.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most peers the table takes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Adds a peer. `alias` is a person's choice; without one the alias is the
    /// peer's IP (made unique), or `peer<N>` while the address is unknown.
    pub fn insert(
        &mut self,
        addr: Option<SocketAddr>,
        direction: Direction,
        alias: Option<&str>,
        state: S,
    ) -> Result<PeerId, (InsertError, S)> {
        if self.len >= self.limit {
            return Err((InsertError::Full { limit: self.limit }, state));
        }
        if let Some(alias) = alias {
            if let Err(e) = validate_alias(alias) {
                return Err((InsertError::BadAlias(e), state));
            }
            if let Some(owner) = self.by_alias(alias) {
                return Err((InsertError::AliasTaken(owner), state));
            }
        }
        let Some(slot) = self.slots.iter().take(self.limit).position(Option::is_none) else {
            return Err((InsertError::Full { limit: self.limit }, state));
        };
        self.last_serial = self.last_serial.wrapping_add(1).max(1);
        let id = PeerId {
            // Fits: the limit is at most u16::MAX.
            slot: slot as u16,
            serial: self.last_serial,
        };
        let (alias, alias_source) = match alias {
            Some(chosen) => (truncated(chosen), AliasSource::Chosen),
            None => (self.default_alias(addr, id), AliasSource::Address),
        };
        self.slots[slot] = Some(Peer {
            id,
            addr,
            direction,
            alias,
            alias_source,
            state,
        });
        self.len += 1;
        self.end = self.end.max(slot + 1);
        Ok(id)
    }

    /// Takes a peer out of the table; `None` if `id` is gone already.
    pub fn remove(&mut self, id: PeerId) -> Option<Peer<S>> {
        let slot = self.slots.get_mut(usize::from(id.slot))?;
        if slot.as_ref().is_some_and(|p| p.id == id) {
            self.len -= 1;
            let peer = slot.take();
            while self.end > 0 && self.slots.get(self.end - 1).is_some_and(Option::is_none) {
                self.end -= 1;
            }
            peer
        } else {
            None
        }
    }

    /// The peer `id`, unless it is gone (its slot may hold another).
    pub fn get(&self, id: PeerId) -> Option<&Peer<S>> {
        self.slots
            .get(usize::from(id.slot))?
            .as_ref()
            .filter(|p| p.id == id)
    }

    /// The peer `id` to change, unless it is gone.
    pub fn get_mut(&mut self, id: PeerId) -> Option<&mut Peer<S>> {
        self.slots
            .get_mut(usize::from(id.slot))?
            .as_mut()
            .filter(|p| p.id == id)
    }

    /// The peer in slot `index`, for walking the table by position.
    pub fn at(&self, index: usize) -> Option<&Peer<S>> {
        self.slots.get(index)?.as_ref()
    }

    /// How many slots to walk by position: every slot past this one is empty.
    pub fn slots(&self) -> usize {
        self.end
    }

    /// Every peer, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = &Peer<S>> {
        self.slots.iter().take(self.end).flatten()
    }

    /// Every peer to change, in slot order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Peer<S>> {
        self.slots.iter_mut().take(self.end).flatten()
    }

    /// Finds the one peer a person meant: `#id`, an alias, or an IP shared by no other peer.
    pub fn resolve<'t>(&self, target: Target<'t>) -> Result<PeerId, LookupError<'t>> {
        match target {
            Target::Id(n) => self
                .iter()
                .find(|p| p.id.serial == n)
                .map(|p| p.id)
                .ok_or(LookupError::NoSuchId(n)),
            Target::Name(name) => {
                // An alias that is only a default copy of the IP does not settle
                // which of several peers at that IP is meant.
                let alias = self.by_alias(name).filter(|&id| {
                    self.get(id)
                        .is_some_and(|p| p.alias_source != AliasSource::Address)
                });
                if let Some(id) = alias {
                    return Ok(id);
                }
                let Ok(ip) = name.parse::<IpAddr>() else {
                    return self.by_alias(name).ok_or(LookupError::NoSuchName(name));
                };
                let mut at_ip = self.iter().filter(|p| p.addr.is_some_and(|a| a.ip() == ip));
                match (at_ip.next(), at_ip.count()) {
                    (None, _) => self.by_alias(name).ok_or(LookupError::NoSuchName(name)),
                    (Some(p), 0) => Ok(p.id),
                    (Some(_), more) => Err(LookupError::Ambiguous {
                        ip,
                        count: more + 1,
                    }),
                }
            }
        }
    }

    /// A person renames a peer.
    pub fn set_alias(&mut self, id: PeerId, alias: &str) -> Result<(), InsertError> {
        validate_alias(alias).map_err(InsertError::BadAlias)?;
        if let Some(owner) = self.by_alias(alias).filter(|&owner| owner != id) {
            return Err(InsertError::AliasTaken(owner));
        }
        if let Some(peer) = self.get_mut(id) {
            peer.alias = truncated(alias);
            peer.alias_source = AliasSource::Chosen;
        }
        Ok(())
    }

    /// The peer announced its name: it becomes the alias unless a person chose one.
    /// Returns true when the alias changed.
    pub fn announce(&mut self, id: PeerId, name: &str) -> bool {
        let Some(peer) = self.get(id) else {
            return false;
        };
        if peer.alias_source == AliasSource::Chosen || validate_alias(name).is_err() {
            return false;
        }
        let alias = self.unique(name, id);
        let Some(peer) = self.get_mut(id) else {
            return false;
        };
        let changed = peer.alias != alias;
        peer.alias = alias;
        peer.alias_source = AliasSource::Announced;
        changed
    }

    /// The dial finished: the peer's address is known, and becomes its alias if it has no other.
    pub fn set_addr(&mut self, id: PeerId, addr: SocketAddr) {
        let alias = self.default_alias(Some(addr), id);
        if let Some(peer) = self.get_mut(id) {
            peer.addr = Some(addr);
            if peer.alias_source == AliasSource::Address {
                peer.alias = alias;
            }
        }
    }

    fn by_alias(&self, alias: &str) -> Option<PeerId> {
        self.iter().find(|p| p.alias == alias).map(|p| p.id)
    }

    fn default_alias(&self, addr: Option<SocketAddr>, id: PeerId) -> Alias {
        let mut base = Alias::new();
        // Cannot fail: an IP address or "peer" and a u32 is at most 39 characters.
        let _ = match addr {
            Some(addr) => write!(base, "{}", addr.ip()),
            None => write!(base, "peer{}", id.serial),
        };
        self.unique(&base, id)
    }

    /// `base`, or `base-2`, `base-3`, ... : the first that no peer but `id` uses.
    /// One pass over the table marks the suffixes in use (1024 at a time), so
    /// a thousand peers from one address do not cost a scan per candidate.
    fn unique(&self, base: &str, id: PeerId) -> Alias {
        let plain = truncated(base);
        let others = || self.iter().filter(move |p| p.id != id);
        if !others().any(|p| p.alias == plain) {
            return plain;
        }
        const WINDOW: u32 = 1024;
        let mut from = 2u32;
        loop {
            let mut used = [0u64; (WINDOW / 64) as usize];
            for p in others() {
                if let Some(n) = suffix_of(&p.alias, base)
                    && let Some(bit) = n.checked_sub(from).filter(|&bit| bit < WINDOW)
                {
                    // Cannot panic: `bit < WINDOW`.
                    used[(bit / 64) as usize] |= 1 << (bit % 64);
                }
            }
            if let Some((word, bits)) = used.iter().enumerate().find(|(_, w)| **w != u64::MAX) {
                return with_suffix(base, from + word as u32 * 64 + bits.trailing_ones());
            }
            // Terminates: at most N peers can hold suffixes.
            from = from.saturating_add(WINDOW);
        }
    }
}

/// How many bytes of `base` an alias keeps before a suffix of `suffix_len`
/// bytes: a name keeps the alias rules (MAX_NAME); a longer base, an IPv6
/// address, has the room of ALIAS_CAP so the whole address stays.
fn kept(base: &str, suffix_len: usize) -> usize {
    let cap = if base.len() > MAX_NAME {
        ALIAS_CAP
    } else {
        MAX_NAME
    };
    floor_char_boundary(base, cap.saturating_sub(suffix_len))
}

/// `base` with the suffix `-n`, cut to fit.
fn with_suffix(base: &str, n: u32) -> Alias {
    let mut suffix = String::<12>::new();
    // Cannot fail: '-' and a u32 fit in 12 bytes.
    let _ = write!(suffix, "-{n}");
    let keep = kept(base, suffix.len());
    let mut alias = Alias::new();
    // Cannot fail: keep + suffix <= cap <= ALIAS_CAP.
    let _ = alias.push_str(base.get(..keep).unwrap_or_default());
    let _ = alias.push_str(&suffix);
    alias
}

/// The `n` for which `alias` is `with_suffix(base, n)`, if it is one.
fn suffix_of(alias: &str, base: &str) -> Option<u32> {
    let (head, digits) = alias.rsplit_once('-')?;
    if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u32 = digits.parse().ok()?;
    let keep = kept(base, 1 + digits.len());
    (n >= 2 && base.get(..keep) == Some(head)).then_some(n)
}

/// `s` cut to fit an [`Alias`], at a character boundary.
fn truncated(s: &str) -> Alias {
    let mut alias = Alias::new();
    let end = floor_char_boundary(s, ALIAS_CAP);
    // Cannot fail: `end` is at most ALIAS_CAP bytes.
    let _ = alias.push_str(s.get(..end).unwrap_or_default());
    alias
}

/// The largest character boundary of `s` at or below `at`.
fn floor_char_boundary(s: &str, at: usize) -> usize {
    let mut end = at.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn alias_defaults_to_the_ip_and_stays_unique() {
        let mut t = PeerTable::<(), 4>::new(4);
        let a = t
            .insert(Some(addr("127.0.0.1:1")), Direction::Inbound, None, ())
            .unwrap();
        let b = t
            .insert(Some(addr("127.0.0.1:2")), Direction::Inbound, None, ())
            .unwrap();
        assert_eq!(t.get(a).unwrap().alias(), "127.0.0.1");
        assert_eq!(t.get(b).unwrap().alias(), "127.0.0.1-2");
    }

    #[test]
    fn a_walk_by_position_ends_after_the_last_occupied_slot() {
        let mut t = PeerTable::<(), 8>::new(8);
        assert_eq!(t.slots(), 0);
        let mut insert = || t.insert(None, Direction::Inbound, None, ()).unwrap();
        let ids = [insert(), insert(), insert()];
        assert_eq!(t.slots(), 3);
        t.remove(ids[1]).unwrap();
        assert_eq!(t.slots(), 3, "a hole in the middle keeps the end");
        t.remove(ids[2]).unwrap();
        assert_eq!(t.slots(), 1, "the end comes back over every empty slot");
        let mut walked = t.iter().map(|p| p.id);
        assert_eq!(walked.next(), Some(ids[0]));
        assert_eq!(walked.next(), None);
        drop(walked);
        t.remove(ids[0]).unwrap();
        assert_eq!(t.slots(), 0);
    }

    #[test]
    fn lookup_by_a_shared_ip_is_ambiguous() {
        let mut t = PeerTable::<(), 4>::new(4);
        t.insert(Some(addr("127.0.0.1:1")), Direction::Inbound, Some("a"), ())
            .unwrap();
        t.insert(Some(addr("127.0.0.1:2")), Direction::Inbound, Some("b"), ())
            .unwrap();
        let err = t.resolve(Target::Name("127.0.0.1")).unwrap_err();
        let mut text = String::<64>::new();
        write!(text, "{err}").unwrap();
        assert_eq!(text, "2 peers at 127.0.0.1; use an alias or #id");
    }

    #[test]
    fn an_ip_shared_by_peers_whose_alias_is_that_ip_is_still_ambiguous() {
        let mut t = PeerTable::<(), 4>::new(4);
        t.insert(Some(addr("127.0.0.1:1")), Direction::Inbound, None, ())
            .unwrap();
        t.insert(Some(addr("127.0.0.1:2")), Direction::Inbound, None, ())
            .unwrap();
        assert!(matches!(
            t.resolve(Target::Name("127.0.0.1")),
            Err(LookupError::Ambiguous { count: 2, .. })
        ));
        let second = t.resolve(Target::Name("127.0.0.1-2"));
        assert!(
            second.is_ok(),
            "a default alias that is no IP still names its peer"
        );
    }

    #[test]
    fn a_removed_peers_id_never_reaches_the_peer_in_its_slot() {
        let mut t = PeerTable::<(), 1>::new(1);
        let old = t.insert(None, Direction::Outbound, None, ()).unwrap();
        t.remove(old).unwrap();
        let new = t.insert(None, Direction::Outbound, None, ()).unwrap();
        assert!(t.get(old).is_none());
        assert!(t.get(new).is_some());
        assert_eq!(
            t.resolve(Target::Id(old.number())),
            Err(LookupError::NoSuchId(1))
        );
    }

    #[test]
    fn a_full_table_hands_the_state_back() {
        let mut t = PeerTable::<u8, 2>::new(1);
        t.insert(None, Direction::Outbound, None, 1).unwrap();
        assert_eq!(
            t.insert(None, Direction::Outbound, None, 2),
            Err((InsertError::Full { limit: 1 }, 2))
        );
    }

    #[test]
    fn an_announced_name_replaces_a_default_alias_but_not_a_chosen_one() {
        let mut t = PeerTable::<(), 4>::new(4);
        let a = t
            .insert(Some(addr("10.0.0.1:1")), Direction::Inbound, None, ())
            .unwrap();
        let b = t
            .insert(
                Some(addr("10.0.0.2:1")),
                Direction::Inbound,
                Some("bobby"),
                (),
            )
            .unwrap();
        assert!(t.announce(a, "bob"));
        assert!(!t.announce(b, "bob"));
        assert_eq!(t.get(a).unwrap().alias(), "bob");
        assert_eq!(t.get(b).unwrap().alias(), "bobby");
    }

    #[test]
    fn a_clashing_announced_name_gets_a_suffix_within_32_characters() {
        let mut t = PeerTable::<(), 4>::new(4);
        let long = "abcdefghijklmnopqrstuvwxyz012345";
        let a = t.insert(None, Direction::Inbound, None, ()).unwrap();
        let b = t.insert(None, Direction::Inbound, None, ()).unwrap();
        t.announce(a, long);
        t.announce(b, long);
        let alias = t.get(b).unwrap().alias();
        assert_eq!(alias, "abcdefghijklmnopqrstuvwxyz0123-2");
        assert!(validate_alias(alias).is_ok());
    }

    #[test]
    fn a_chosen_alias_must_be_free() {
        let mut t = PeerTable::<(), 4>::new(4);
        let a = t.insert(None, Direction::Inbound, Some("x"), ()).unwrap();
        let b = t.insert(None, Direction::Inbound, None, ()).unwrap();
        assert_eq!(t.set_alias(b, "x"), Err(InsertError::AliasTaken(a)));
        assert_eq!(t.set_alias(a, "x"), Ok(()));
    }
}
