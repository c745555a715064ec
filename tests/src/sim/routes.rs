//! Routes under change: topology changes made one at a time ([`Change`]),
//! rounds of room messages after each, convergence measured by asking the
//! nodes (never a model of their algorithm), direct messages that must be
//! delivered once routes work or reported when no path exists, and, on links
//! in the clear, a watch of every frame on the wire for loops.
//!
//! **A round** is [`ROUND`] ms of virtual time in which every node says one
//! room message, at a random moment in its first [`SPREAD`] ms; the first
//! round begins [`GAP`] ms after the change (time for links to come up and
//! for whatever the nodes announce alone). **Converged** means: for every two
//! nodes joined by links up now, the next hops the nodes give (a direct link,
//! else the route [`Node::reachable`] lists) lead from one to the other, link
//! by link, with no loop; **shortest** also asks that they take no more links
//! than the shortest path; a change that dials links has not converged before
//! they are up. Checked every [`TICK`] ms; a change's rounds are those begun
//! when it was first found converged (0: before any room message), its time
//! is virtual ms from the change (the first [`GAP`] ms of it before any room
//! message).

use meshtalk_core::frame::{Decoded, FrameDecoder};
use meshtalk_core::wire::Message;

use super::*;

/// A round's length, in ms of virtual time.
pub const ROUND: u64 = 1_000;
/// Every node speaks within this many ms of its round's start.
pub const SPREAD: u64 = 300;
/// The first round begins this many ms after the change.
pub const GAP: u64 = 500;
/// Convergence is checked this often, in ms.
pub const TICK: u64 = 25;
/// Direct messages sent between random nodes once routes converged (all must
/// arrive), and across a partition (none may).
const PROBES: usize = 4;

/// A change to the topology, made once routes are learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// One link that is up is cut (reset), until a [`Change::Heal`].
    Cut,
    /// A link between two nodes not linked yet is dialled.
    Add,
    /// Every link between a connected part of about half the nodes and the
    /// rest is cut, until a [`Change::Heal`]; direct messages across the cut
    /// are then sent, and must be refused or reported undelivered.
    Partition,
    /// Every link cut before is dialled again.
    Heal,
}

/// How the routes converged after one change.
#[derive(Clone, Debug)]
pub struct Convergence {
    pub change: Change,
    pub nodes: usize,
    /// Groups of nodes joined by links up, once the change settled.
    pub components: usize,
    /// Rounds begun before every route worked, and virtual ms from the
    /// change; `None`: not within the rounds (and [`Scenario::quiet_ms`]).
    pub rounds: Option<usize>,
    pub ms: Option<u64>,
    /// The same for every route being a shortest path.
    pub shortest_rounds: Option<usize>,
    pub shortest_ms: Option<u64>,
    /// Why the routes were not converged at the last check, if they were not.
    pub stuck: Option<String>,
}

/// The change under way and what was measured of it.
pub(super) struct Phase {
    pub(super) change: usize,
    at: u64,
    rounds: usize,
    working: Option<(usize, u64)>,
    shortest: Option<(usize, u64)>,
    /// Whether the probes went, and the messages across a partition.
    probed: bool,
    across: bool,
    /// The direct messages sent during the change, which must be settled
    /// before the next, and when the last left.
    awaited: Vec<usize>,
    last_sent: u64,
    stuck: Option<String>,
    /// The links the change dials: routes cannot have converged to it
    /// before these are up.
    dialled: Vec<(usize, usize)>,
}

/// What a check found of the routes.
#[derive(Default)]
pub(super) struct Routes {
    /// Every node's next hops lead to every node its links reach.
    working: bool,
    /// And by a shortest path.
    shortest: bool,
    /// Why not, for the first pair found.
    why: Option<String>,
    /// That pair (from, to), when a route does not work.
    broken: Option<(usize, usize)>,
}

/// Links cut by changes and not healed yet.
pub(super) type CutLinks = Vec<(usize, usize)>;

/// What one frame on the wire is, for the loop watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Key {
    /// A room message: (origin, sequence).
    Room(u64, u32),
    /// A direct message across the mesh: (origin, destination, id).
    Routed(u64, u64, u32),
    /// Its receipt or refusal: (origin, destination, id, code).
    Ack(u64, u64, u32, u8),
}

/// One direction of a link in the clear, decoded: the banner line skipped,
/// then frames.
pub(super) struct Watch {
    banner_done: bool,
    frames: FrameDecoder<4096>,
}

impl Watch {
    pub(super) fn new() -> Box<Self> {
        Box::new(Watch {
            banner_done: false,
            frames: FrameDecoder::new(),
        })
    }

    /// The routing messages among the next `bytes` of the stream, with their hops left.
    pub(super) fn feed(&mut self, mut bytes: &[u8]) -> Vec<(Key, u8)> {
        let mut found = Vec::new();
        if !self.banner_done {
            match bytes.iter().position(|&b| b == b'\n') {
                Some(at) => {
                    self.banner_done = true;
                    bytes = &bytes[at + 1..];
                }
                None => return found,
            }
        }
        loop {
            let (used, decoded) = self.frames.decode(bytes);
            match decoded {
                Decoded::NeedMore => break,
                Decoded::Frame(body) => match Message::decode(body) {
                    Ok(Message::Broadcast {
                        origin, seq, hops, ..
                    }) => found.push((Key::Room(origin, seq), hops)),
                    Ok(Message::Routed {
                        origin,
                        dest,
                        id,
                        hops,
                        ..
                    }) => found.push((Key::Routed(origin, dest, id), hops)),
                    Ok(Message::RoutedAck {
                        origin,
                        dest,
                        id,
                        hops,
                        code,
                    }) => found.push((Key::Ack(origin, dest, id, code), hops)),
                    _ => {}
                },
                Decoded::Error(e) if e.is_fatal() => break,
                Decoded::Error(_) => {}
            }
            bytes = &bytes[used..];
        }
        found
    }
}

/// What the wire showed of each message at each node: the links (and hops
/// left) by which copies arrived, and those it was sent on.
#[derive(Default)]
pub(super) struct Ledger {
    arrived: BTreeMap<(usize, Key), Vec<(usize, u8)>>,
    sent: BTreeMap<(usize, Key), Vec<(usize, u8)>>,
}

impl Sim {
    /// Puts `action` among those to come, at `at` (after any at the same time).
    pub(super) fn schedule(&mut self, at: u64, action: Action) {
        let pos = self.actions[self.next_action..]
            .iter()
            .position(|&(t, _)| t > at)
            .map_or(self.actions.len(), |p| p + self.next_action);
        self.actions.insert(pos, (at, action));
        self.last_action_at = self.last_action_at.max(at);
    }

    /// The links up and ready at both ends within a room: per node, its neighbours.
    pub(super) fn live_links(&self) -> Vec<Vec<usize>> {
        let mut adj = vec![Vec::new(); self.nodes.len()];
        for c in &self.conns {
            let [x, y] = [c.ends[0].node, c.ends[1].node];
            let up = c.ends.iter().all(|e| e.alive && e.ready_at.is_some());
            if up && self.same_room(x, y) && !adj[x].contains(&y) {
                adj[x].push(y);
                adj[y].push(x);
            }
        }
        adj
    }

    /// The number of links between `from` and every node over `adj` (`u32::MAX`: none).
    fn distances(adj: &[Vec<usize>], from: usize) -> Vec<u32> {
        let mut dist = vec![u32::MAX; adj.len()];
        dist[from] = 0;
        let mut queue = VecDeque::from([from]);
        while let Some(x) = queue.pop_front() {
            for &y in &adj[x] {
                if dist[y] == u32::MAX {
                    dist[y] = dist[x] + 1;
                    queue.push_back(y);
                }
            }
        }
        dist
    }

    /// Per node, the next hop it gives to each node (`usize::MAX`: none): a
    /// ready link to it, else its route's next hop (as [`Node::reachable`]
    /// lists it), while that link is ready.
    fn next_hops(&self) -> Vec<Vec<usize>> {
        let now = Instant::from_millis(self.now);
        let n = self.nodes.len();
        let index: BTreeMap<u64, usize> = (0..n).map(|i| (self.nodes[i].id, i)).collect();
        (0..n)
            .map(|x| {
                let node = &self.nodes[x];
                let mut hops = vec![usize::MAX; n];
                for r in node.node.reachable(now) {
                    let via = node.peers.get(&r.via).filter(|v| v.ready);
                    if let (Some(&d), Some(v)) = (index.get(&r.node), via) {
                        hops[d] = v.remote;
                    }
                }
                for v in node.peers.values().filter(|v| v.ready) {
                    hops[v.remote] = v.remote;
                }
                hops
            })
            .collect()
    }

    /// Whether every route works and is a shortest path between nodes that
    /// links up now join, and if not, the first pair that fails.
    pub(super) fn routes_converged(&self) -> Routes {
        let adj = self.live_links();
        let hops = self.next_hops();
        let n = self.nodes.len();
        let mut shortest = true;
        let mut longer = None;
        for x in 0..n {
            let dist = Self::distances(&adj, x);
            for (d, &want) in dist.iter().enumerate() {
                if d == x || want == u32::MAX {
                    continue;
                }
                let (mut at, mut steps) = (x, 0u32);
                while at != d {
                    let next = hops[at][d];
                    let why = if next == usize::MAX {
                        format!("n{x}->n{d} ({want} links apart): n{at} has no way on")
                    } else if !adj[at].contains(&next) {
                        format!("n{x}->n{d}: n{at}'s next hop n{next} is not linked now")
                    } else if steps as usize >= n {
                        format!("n{x}->n{d}: a loop through n{at} and n{next}")
                    } else {
                        String::new()
                    };
                    if !why.is_empty() {
                        return Routes {
                            why: Some(why),
                            broken: Some((x, d)),
                            ..Routes::default()
                        };
                    }
                    at = next;
                    steps += 1;
                }
                if steps > want && shortest {
                    shortest = false;
                    longer = Some(format!("n{x}->n{d}: {steps} links, not {want}"));
                }
            }
        }
        Routes {
            working: true,
            shortest,
            why: longer,
            broken: None,
        }
    }

    /// Makes the scenario's change `k`, then checks and rounds follow.
    pub(super) fn change(&mut self, k: usize) {
        let change = self.sc.changes[k];
        self.trace(|| format!("change {k}: {change:?}"));
        let mut dialled = Vec::new();
        match change {
            Change::Cut => {
                let live: Vec<usize> = (0..self.conns.len())
                    .filter(|&c| self.conns[c].ends.iter().all(|e| e.alive))
                    .collect();
                if let Some(c) = self.rng.pick(&live) {
                    self.cut_links
                        .push((self.conns[c].ends[0].node, self.conns[c].ends[1].node));
                    self.reset(c);
                }
            }
            Change::Add => {
                let adj = self.live_links();
                let n = self.nodes.len();
                let pairs: Vec<(usize, usize)> = (0..n)
                    .flat_map(|a| (0..n).map(move |b| (a, b)))
                    .filter(|&(a, b)| a < b && !adj[a].contains(&b) && self.same_room(a, b))
                    .filter(|&(a, b)| {
                        self.nodes[a].peers.len() < 12 && self.nodes[b].peers.len() < 12
                    })
                    .collect();
                if let Some((a, b)) = self.rng.pick(&pairs) {
                    self.act(Action::Dial { from: a, to: b });
                    dialled.push((a, b));
                }
            }
            Change::Partition => {
                // A connected part: nodes in the order a breadth-first walk
                // from a random node meets them, the first half of them.
                let adj = self.live_links();
                let n = self.nodes.len();
                let start = self.rng.below(n as u64) as usize;
                let mut side = vec![false; n];
                let dist = Self::distances(&adj, start);
                let mut order: Vec<usize> = (0..n).filter(|&y| dist[y] != u32::MAX).collect();
                order.sort_by_key(|&y| dist[y]);
                for &y in order.iter().take(n / 2) {
                    side[y] = true;
                }
                let across: Vec<usize> = (0..self.conns.len())
                    .filter(|&c| {
                        let ends = &self.conns[c].ends;
                        ends.iter().all(|e| e.alive) && side[ends[0].node] != side[ends[1].node]
                    })
                    .collect();
                for c in across {
                    self.cut_links
                        .push((self.conns[c].ends[0].node, self.conns[c].ends[1].node));
                    self.reset(c);
                }
            }
            Change::Heal => {
                for (a, b) in std::mem::take(&mut self.cut_links) {
                    self.act(Action::Dial { from: a, to: b });
                    dialled.push((a, b));
                }
            }
        }
        self.phase = Some(Phase {
            change: k,
            at: self.now,
            rounds: 0,
            working: None,
            shortest: None,
            probed: false,
            across: false,
            awaited: Vec::new(),
            last_sent: self.now,
            stuck: None,
            dialled,
        });
        self.schedule(self.now + TICK, Action::Check(k));
        if self.sc.max_rounds > 0 {
            self.schedule(self.now + GAP, Action::Round(k, 1));
        }
    }

    /// Round `r` after change `k`: every node speaks once, unless routes
    /// converged (every route works and is a shortest path).
    pub(super) fn round(&mut self, k: usize, r: usize) {
        let Some(phase) = self.phase.as_mut().filter(|p| p.change == k) else {
            return;
        };
        if phase.shortest.is_some() || r > self.sc.max_rounds {
            return;
        }
        phase.rounds = r;
        self.report.rounds_run += 1;
        self.report.broadcasts_scripted += self.nodes.len();
        for from in 0..self.nodes.len() {
            let at = self.now + self.rng.below(SPREAD);
            self.schedule(at, Action::Broadcast { from });
        }
        self.schedule(self.now + ROUND, Action::Round(k, r + 1));
    }

    /// The check after change `k`: notes when routes first work and first are
    /// shortest; once they work (or, with [`Scenario::probe_always`], once the
    /// change gave up), sends the probes; after a partition, sends direct
    /// messages across it; once all of those are settled, records the change
    /// and makes the next.
    pub(super) fn check_routes(&mut self, k: usize) {
        let Some(phase) = self.phase.as_ref().filter(|p| p.change == k) else {
            return;
        };
        let (at, rounds) = (phase.at, phase.rounds);
        let since = self.now - at;
        let adj = self.live_links();
        let down = phase.dialled.iter().find(|&&(a, b)| !adj[a].contains(&b));
        let routes = match down.copied() {
            Some((a, b)) => Routes {
                why: Some(format!("link n{a}-n{b} not up yet")),
                ..Routes::default()
            },
            None => self.routes_converged(),
        };
        let (working, shortest) = (routes.working, routes.shortest);
        self.note_reachable();
        let limit = GAP + self.sc.max_rounds as u64 * ROUND + self.sc.quiet_ms;
        let gave_up = since > limit;
        let phase = self.phase.as_mut().expect("checked above");
        phase.stuck = routes.why;
        if working && phase.working.is_none() {
            phase.working = Some((rounds, since));
        }
        if shortest && phase.shortest.is_none() {
            phase.shortest = Some((rounds, since));
        }
        let probe = !phase.probed && (working || (gave_up && self.sc.probe_always));
        let partition = self.sc.changes[k] == Change::Partition;
        let across = partition && !phase.across && since >= GAP / 2;
        if probe {
            self.probe(false, routes.broken);
        }
        if across {
            self.probe(true, None);
        }
        let phase = self.phase.as_ref().expect("checked above");
        let awaited = phase.awaited.iter().all(|&r| {
            let m = &self.routed[r];
            m.refused.is_some() || !m.outcomes.is_empty() || m.id.is_none()
        });
        let settled = awaited || self.now > phase.last_sent + ROUTED_WAIT_MS + 1_000;
        let probed = phase.probed || (gave_up && !self.sc.probe_always);
        let finished = (phase.shortest.is_some() || gave_up)
            && probed
            && (phase.across || !partition)
            && settled;
        if !finished {
            self.schedule(self.now + TICK, Action::Check(k));
            return;
        }
        let phase = self.phase.take().expect("checked above");
        let adj = self.live_links();
        let mut seen = vec![false; self.nodes.len()];
        let mut components = 0;
        for x in 0..self.nodes.len() {
            if !seen[x] {
                components += 1;
                for (y, d) in Self::distances(&adj, x).into_iter().enumerate() {
                    seen[y] |= d != u32::MAX;
                }
            }
        }
        self.report.convergence.push(Convergence {
            change: self.sc.changes[k],
            nodes: self.nodes.len(),
            components,
            rounds: phase.working.map(|w| w.0),
            ms: phase.working.map(|w| w.1),
            shortest_rounds: phase.shortest.map(|s| s.0),
            shortest_ms: phase.shortest.map(|s| s.1),
            stuck: phase.stuck,
        });
        if k + 1 < self.sc.changes.len() {
            self.schedule(self.now + GAP, Action::Change(k + 1));
        }
    }

    /// Direct messages between random nodes that links join now, not
    /// neighbours (each must be delivered), or (`across`) to nodes no link
    /// path reaches (each must be refused or reported undelivered). The
    /// `broken` pair, whose route does not work, goes first.
    fn probe(&mut self, across: bool, broken: Option<(usize, usize)>) {
        let adj = self.live_links();
        let n = self.nodes.len();
        let first = self.routed.len();
        if let Some((from, to)) = broken {
            self.report.routed_scripted += 1;
            self.send_routed(from, to, Expect::Delivered);
        }
        for _ in 0..PROBES {
            let from = self.rng.below(n as u64) as usize;
            let dist = Self::distances(&adj, from);
            let to: Vec<usize> = match across {
                false => (0..n)
                    .filter(|&y| dist[y] != u32::MAX && dist[y] > 1)
                    .collect(),
                true => (0..n).filter(|&y| dist[y] == u32::MAX).collect(),
            };
            if let Some(to) = self.rng.pick(&to) {
                self.report.routed_scripted += 1;
                let expect = match across {
                    false => Expect::Delivered,
                    true => Expect::Unreachable,
                };
                self.send_routed(from, to, expect);
            }
        }
        let end = self.routed.len();
        let now = self.now;
        if let Some(phase) = self.phase.as_mut() {
            phase.awaited.extend(first..end);
            phase.last_sent = now;
            match across {
                false => phase.probed = true,
                true => phase.across = true,
            }
        }
    }

    /// Node `i` transmitted `bytes` on end `e` of link `c`: on a link in the
    /// clear, each routing message in them must not go back over a link a copy
    /// of it came by, nor be sent twice by one node (a room message: twice on
    /// one link with the same hops left).
    pub(super) fn watch_sent(&mut self, i: usize, c: usize, e: usize, bytes: &[u8]) {
        let Some(watch) = self.conns[c].dirs[e].watch_tx.as_mut() else {
            return;
        };
        let me = self.nodes[i].id;
        for (key, hops) in watch.feed(bytes) {
            self.report.frames_watched += 1;
            let arrived = self
                .ledger
                .arrived
                .get(&(i, key))
                .cloned()
                .unwrap_or_default();
            let sent = self.ledger.sent.entry((i, key)).or_default();
            let again = match key {
                Key::Room(..) => sent.contains(&(c, hops)),
                Key::Routed(..) | Key::Ack(..) => !sent.is_empty(),
            };
            sent.push((c, hops));
            if again {
                self.violation(format!(
                    "n{i} sent {key:?} again (link {c}, {hops} hops left)"
                ));
            }
            let relayed = match key {
                Key::Room(origin, _) => origin != me,
                Key::Routed(origin, ..) => origin != me,
                // A receipt or refusal begins at the node that answers: it relays
                // only one that came to it.
                Key::Ack(..) => !arrived.is_empty(),
            };
            if !relayed {
                continue;
            }
            self.report.relays_watched += 1;
            let back = match key {
                // The copy relayed is one that came with a hop more: some such
                // copy must have come by another link.
                Key::Room(..) => {
                    let came: Vec<usize> = arrived
                        .iter()
                        .filter(|a| a.1 == hops.saturating_add(1))
                        .map(|a| a.0)
                        .collect();
                    if came.is_empty() {
                        self.violation(format!(
                            "n{i} relayed {key:?} with {hops} hops left on link {c}, \
                             but no copy came to it with a hop more"
                        ));
                    }
                    !came.is_empty() && came.iter().all(|&l| l == c)
                }
                Key::Routed(..) | Key::Ack(..) => arrived.iter().any(|a| a.0 == c),
            };
            if back {
                self.violation(format!(
                    "n{i} relayed {key:?} back over link {c}, the link it came by"
                ));
            }
        }
    }

    /// Node `i` took `bytes` from link `c` (direction `d`): a direct message or
    /// receipt that comes to a node a second time, or back to its origin, looped.
    pub(super) fn watch_taken(&mut self, i: usize, c: usize, d: usize, bytes: &[u8]) {
        let Some(watch) = self.conns[c].dirs[d].watch_rx.as_mut() else {
            return;
        };
        let me = self.nodes[i].id;
        for (key, hops) in watch.feed(bytes) {
            let arrived = self.ledger.arrived.entry((i, key)).or_default();
            let twice = !matches!(key, Key::Room(..)) && !arrived.is_empty();
            arrived.push((c, hops));
            let home = matches!(key, Key::Routed(origin, ..) if origin == me)
                || matches!(key, Key::Ack(_, dest, ..) if dest == me);
            if twice || home {
                self.violation(format!(
                    "{key:?} came to n{i} again over link {c} ({hops} hops left): a loop"
                ));
            }
        }
    }

    /// Every node's table stays within its capacity: the most nodes one node
    /// lists as reachable through the mesh, noted in the report.
    pub(super) fn note_reachable(&mut self) {
        let now = Instant::from_millis(self.now);
        for node in &self.nodes {
            let count = node.node.reachable(now).count();
            self.report.max_reachable = self.report.max_reachable.max(count);
        }
    }
}

/// How long a direct message may await its receipt, in ms.
const ROUTED_WAIT_MS: u64 = meshtalk_core::limits::ROUTED_WAIT.as_millis();

#[cfg(test)]
mod tests {
    use super::*;

    /// The watch finds the same routing frames however the stream is cut.
    #[test]
    fn the_wire_watch_skips_the_banner_and_finds_routing_frames_however_cut() {
        let mut stream = b"MESHTALK/1.3 alice\n".to_vec();
        let msgs = [
            Message::Hello {
                minor: 3,
                node: 7,
                name: "alice",
            },
            Message::Broadcast {
                origin: 7,
                seq: 2,
                hops: 5,
                name: "alice",
                text: "hi",
            },
            Message::Routed {
                origin: 7,
                dest: 9,
                id: 4,
                hops: 31,
                name: "alice",
                text: "to bob",
            },
            Message::RoutedAck {
                origin: 7,
                dest: 9,
                id: 4,
                hops: 30,
                code: 0,
            },
        ];
        for m in msgs {
            let mut frame = vec![0; m.frame_len()];
            let len = m.encode_frame(&mut frame).expect("room for the frame");
            stream.extend_from_slice(&frame[..len]);
        }
        let want = vec![
            (Key::Room(7, 2), 5),
            (Key::Routed(7, 9, 4), 31),
            (Key::Ack(7, 9, 4, 0), 30),
        ];
        for cut in 1..stream.len() {
            let mut watch = Watch::new();
            let mut found = watch.feed(&stream[..cut]);
            found.extend(watch.feed(&stream[cut..]));
            assert_eq!(found, want, "cut at {cut}");
        }
    }
}
