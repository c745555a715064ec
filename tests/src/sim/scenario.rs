//! What a run is made of: the topology, the scenario's counts and faults, and
//! the actions people and faults take at their times.

use super::*;

/// How the nodes are wired at the start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topology {
    Line,
    Ring,
    Star,
    /// A random spanning tree plus about `nodes / 2` random extra links.
    RandomConnected,
    /// This many random connected components (each a random tree plus extras).
    Components(usize),
    /// Every node linked to every other.
    Complete,
}

/// One simulated run: who, how wired, what people do and what goes wrong.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub seed: u64,
    pub nodes: usize,
    pub topology: Topology,
    /// `send #id <text>` commands, each from a random node to a random ready peer.
    pub unicasts: usize,
    /// `broadcast <text>` commands, each from a random node.
    pub broadcasts: usize,
    /// `send <name> <text>` commands across the mesh, each from a random node
    /// to a random node it has no link to. With any, every node first speaks
    /// once in the room (a beacon its routes are learned from).
    pub routed: usize,
    /// Links reset at random times, preferably with bytes in flight.
    pub resets: usize,
    /// One byte flipped on the wire of a link ready at both ends (after its
    /// handshake): the receiver closes that link, and shows nothing of it.
    pub tampers: usize,
    /// Links cut (reset) and re-dialled by the same side later.
    pub partitions: usize,
    /// Links closed by a person's `disconnect`, and re-dialled later.
    pub disconnects: usize,
    /// Links dialled a second time from the other side at the same moment, so
    /// two nodes share two connections (the second alias gets a `-2`).
    pub double_links: usize,
    /// One node reads its bytes in tiny chunks with extra delay.
    pub slow_reader: bool,
    /// Private rooms the nodes are split into; `None`: no node has a room key,
    /// so all are in one room (as hosts run without `--room-key`).
    pub rooms: Option<Rooms>,
    /// The nodes' hop limit; `None` for one that never binds (more than any path).
    pub hops: Option<u8>,
    /// Bounded pipes and the shell's flow control, as the host runs them;
    /// `None`: pipes take everything at once.
    pub backpressure: Option<Backpressure>,
    /// People act within this many ms after setup: small for bursts.
    pub span_ms: u64,
    /// The shells' feeding rules (turn budget, stuck limit): the kit's, as the
    /// host runs them unless a test changes them.
    pub feeding: Settings,
    /// Keep a line per input, output and read, to compare runs.
    pub trace: bool,
    /// Links in the clear (protocol 1) instead of secure: the simulator then
    /// decodes every frame on the wire and checks that no message loops
    /// ([`Report::frames_watched`]).
    pub plaintext: bool,
    /// Changes to the topology, made one after another once the first routes
    /// are learned; after each, rounds of room messages until every route
    /// works, counted in [`Report::convergence`].
    pub changes: Vec<Change>,
    /// The most rounds after a change; 0: no room message at all, the routes
    /// are left to what the nodes do alone for [`Scenario::quiet_ms`].
    pub max_rounds: usize,
    /// How long after a change's last round (or the change, with no rounds)
    /// the routes may still converge before the change counts as not converged.
    pub quiet_ms: u64,
    /// Send the probes after a change even when the routes did not converge:
    /// a path exists, so each must still be delivered. `false`: only once they
    /// work.
    pub probe_always: bool,
    /// The nodes' periodic announces ([`Config::announce_every`](meshtalk_core::node::Config::announce_every)):
    /// `None` (the default) so that a run goes idle; with them, a run ends
    /// [`Scenario::quiet_ms`] past the settling time after its last action.
    pub announce_every: Option<meshtalk_core::time::Duration>,
}

impl Scenario {
    /// Four unicasts and one broadcast per node, no faults, no hop limit.
    pub fn new(seed: u64, nodes: usize, topology: Topology) -> Self {
        Scenario {
            seed,
            nodes,
            topology,
            unicasts: 4 * nodes,
            broadcasts: nodes,
            routed: 0,
            resets: 0,
            tampers: 0,
            partitions: 0,
            disconnects: 0,
            double_links: 0,
            slow_reader: false,
            rooms: None,
            hops: None,
            backpressure: None,
            span_ms: SPAN,
            feeding: Settings::default(),
            trace: false,
            plaintext: false,
            changes: Vec::new(),
            max_rounds: 6,
            quiet_ms: 1_000,
            probe_always: false,
            announce_every: None,
        }
    }

    pub fn faulty(&self) -> bool {
        self.resets + self.tampers + self.partitions + self.disconnects + self.changes.len() > 0
    }

    /// Runs the scenario to the end.
    pub fn run(&self) -> Report {
        Sim::new(self.clone()).run()
    }
}

/// Nodes in private rooms: each holds one of `keys` room keys, or none when
/// `keyless` (no key is a room of its own too), spread evenly over the rooms
/// at random. A link between two rooms never becomes ready; a room's
/// messages reach only the nodes its own links connect.
#[derive(Clone, Copy, Debug)]
pub struct Rooms {
    /// How many different room keys (at least one).
    pub keys: usize,
    /// Whether some nodes hold no room key at all.
    pub keyless: bool,
}

impl Rooms {
    /// How many rooms: one per key, and one for the nodes with none.
    pub fn count(&self) -> usize {
        self.keys.max(1) + usize::from(self.keyless)
    }
}

/// How much a link holds and how the shell around each node holds back, as the
/// host does with sockets: a node's bytes for a peer wait in the shell's queue
/// (counted by [`Flow`]) until the pipe has room; a paused node feeds no ready
/// peer; a peer that takes nothing for the stall timeout is dropped.
#[derive(Clone, Copy, Debug)]
pub struct Backpressure {
    /// Bytes one direction of a link holds, on the wire and unread: the two
    /// sockets' buffers.
    pub window: usize,
    /// The shell's high and low water and stall timeout.
    pub limits: Limits,
}

#[derive(Clone, Copy, Debug)]
pub(super) enum Action {
    Dial {
        from: usize,
        to: usize,
    },
    /// Dial even when a link between the two exists.
    DialAgain {
        from: usize,
        to: usize,
    },
    Unicast {
        from: usize,
    },
    Broadcast {
        from: usize,
    },
    /// A direct message across the mesh, to a node `from` has no link to.
    Routed {
        from: usize,
    },
    Reset,
    /// Flip one byte on the wire of a secure link.
    Tamper,
    /// Cut (reset) the link between these two; a later `Dial` heals it.
    Cut {
        a: usize,
        b: usize,
    },
    Disconnect {
        from: usize,
    },
    /// The scenario's change number `k` ([`Scenario::changes`]).
    Change(usize),
    /// Round `r` of change `k`: every node says one room message.
    Round(usize, usize),
    /// Whether the routes have converged since change `k`.
    Check(usize),
}

pub(super) fn ip(node: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        10,
        0,
        (node / 250) as u8,
        (node % 250 + 1) as u8,
    ))
}

pub(super) fn node_of(host: &str) -> Option<usize> {
    let ip: Ipv4Addr = host.parse().ok()?;
    let [_, _, hi, lo] = ip.octets();
    Some(usize::from(hi) * 250 + usize::from(lo) - 1)
}

pub(super) fn name(node: usize) -> String {
    format!("n{node}")
}

/// `n3`, or `n3-2` for a second link to the same node.
pub(super) fn is_alias_of(alias: &str, node: usize) -> bool {
    let base = name(node);
    alias.strip_prefix(&base).is_some_and(|rest| {
        rest.is_empty()
            || rest
                .strip_prefix('-')
                .is_some_and(|n| n.parse::<u32>().is_ok())
    })
}

pub(super) fn edges_for(rng: &mut Rng, n: usize, topology: Topology) -> Vec<(usize, usize)> {
    // Random labels, so the hub or the line's end is not always node 0.
    let mut label: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        label.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut edges = Vec::new();
    let tree_plus = |rng: &mut Rng, group: &[usize], edges: &mut Vec<(usize, usize)>| {
        for i in 1..group.len() {
            let j = rng.below(i as u64) as usize;
            edges.push((group[i], group[j]));
        }
        let extra = group.len() / 2;
        for _ in 0..extra {
            if group.len() < 3 {
                break;
            }
            let a = group[rng.below(group.len() as u64) as usize];
            let b = group[rng.below(group.len() as u64) as usize];
            let dup = edges
                .iter()
                .any(|&(x, y)| (x, y) == (a, b) || (x, y) == (b, a));
            if a != b && !dup {
                edges.push((a, b));
            }
        }
    };
    match topology {
        Topology::Line => (1..n).for_each(|i| edges.push((label[i - 1], label[i]))),
        Topology::Ring => {
            (1..n).for_each(|i| edges.push((label[i - 1], label[i])));
            if n >= 3 {
                edges.push((label[n - 1], label[0]));
            }
        }
        Topology::Star => (1..n).for_each(|i| edges.push((label[0], label[i]))),
        Topology::RandomConnected => tree_plus(rng, &label, &mut edges),
        Topology::Complete => {
            for i in 0..n {
                for j in i + 1..n {
                    edges.push((label[i], label[j]));
                }
            }
        }
        Topology::Components(k) => {
            let k = k.clamp(1, n);
            for c in 0..k {
                let group: Vec<usize> = label.iter().copied().skip(c).step_by(k).collect();
                tree_plus(rng, &group, &mut edges);
            }
        }
    }
    // Either side may dial.
    for e in &mut edges {
        if rng.chance(1, 2) {
            *e = (e.1, e.0);
        }
    }
    edges
}

impl Sim {
    /// Whether nodes `a` and `b` are in one room: the same room key, or neither has one.
    pub(super) fn same_room(&self, a: usize, b: usize) -> bool {
        self.nodes[a].room == self.nodes[b].room
    }

    /// Node `i`'s room, in words.
    pub(super) fn room_name(&self, i: usize) -> String {
        match self.nodes[i].keyed {
            true => format!("room key {}", self.nodes[i].room),
            false => "no room key".to_string(),
        }
    }

    /// The topology's links within a room: the only ones that may become ready.
    pub(super) fn room_edges(&self) -> Vec<(usize, usize)> {
        let edges = self.edges.iter().copied();
        edges.filter(|&(a, b)| self.same_room(a, b)).collect()
    }

    /// Whether node `i` has a link within its room.
    pub(super) fn linked_in_room(&self, i: usize) -> bool {
        self.room_edges().iter().any(|&(a, b)| a == i || b == i)
    }

    /// The nodes a room message from `from` must reach where nothing fails:
    /// those of its room within `hops` links of its room, itself left out.
    pub(super) fn room_reach(&self, from: usize, hops: usize) -> BTreeSet<usize> {
        let n = self.nodes.len();
        let mut adj = vec![Vec::new(); n];
        for (a, b) in self.room_edges() {
            adj[a].push(b);
            adj[b].push(a);
        }
        let mut dist = vec![usize::MAX; n];
        dist[from] = 0;
        let mut queue = VecDeque::from([from]);
        while let Some(x) = queue.pop_front() {
            for &y in &adj[x] {
                if dist[y] == usize::MAX && dist[x] < hops {
                    dist[y] = dist[x] + 1;
                    queue.push_back(y);
                }
            }
        }
        (0..n)
            .filter(|&y| y != from && dist[y] != usize::MAX)
            .collect()
    }

    pub(super) fn ready_peers(&self, i: usize) -> Vec<(PeerId, PeerView)> {
        self.nodes[i]
            .peers
            .iter()
            .filter(|(_, v)| v.ready)
            .map(|(&p, &v)| (p, v))
            .collect()
    }

    pub(super) fn command(&mut self, i: usize, line: &str) {
        self.nodes[i].commands += 1;
        match command::parse(line) {
            Ok(Some(cmd)) => {
                self.input(i, Input::Command(cmd));
            }
            other => self.violation(format!("`{line}` parsed as {other:?}")),
        }
    }

    pub(super) fn text(&mut self, kind: char, from: usize) -> String {
        // A direct message across the mesh is sealed: a shorter text fits.
        let max = match kind {
            'r' => self.nodes[from].node.max_routed_text(),
            _ => SimNode::MAX_TEXT,
        };
        let n = self.nodes[from].sent;
        self.nodes[from].sent += 1;
        let mut text = format!("{kind}{from}-{n}");
        let pad = match self.rng.below(4) {
            0 => 0,
            1 => self.rng.range(1, 40),
            2 => self.rng.range(40, 400),
            _ => self.rng.range(400, max as u64),
        };
        if pad > 0 {
            text.push(' ');
        }
        while text.len() < pad as usize {
            let c = ['a', 'z', 'é', '→', ' ', '0'][self.rng.below(6) as usize];
            let c = if text.len() + c.len_utf8() <= pad as usize {
                c
            } else {
                'a'
            };
            text.push(c);
        }
        text
    }

    /// A scripted send from node `i` found no ready peer. Fine while every link
    /// it has within its room is new or down; with such a link up for
    /// [`READY_WITHIN`], the node failed to make it ready. Where nothing failed,
    /// checked again in [`Sim::check`].
    pub(super) fn skipped_send(&mut self, i: usize) {
        if !self.linked_in_room(i) {
            self.report.sends_isolated += 1;
        }
        self.skipped.push((self.now, i));
        let now = self.now;
        let up = self.conns.iter().position(|c| {
            c.ends.iter().all(|e| e.alive)
                && c.ends.iter().any(|e| e.node == i)
                && self.same_room(c.ends[0].node, c.ends[1].node)
                && now >= c.opened_at + READY_WITHIN
        });
        if let Some(c) = up {
            let since = self.conns[c].opened_at;
            self.violation(format!(
                "n{i} skipped a scripted send with no ready peer, though link {c} \
                 has been up since t={since}ms"
            ));
        }
    }

    pub(super) fn act(&mut self, action: Action) {
        self.trace(|| format!("action {action:?}"));
        match action {
            Action::DialAgain { from, to } => {
                let line = format!("connect {} {PORT}", ip(to));
                self.command(from, &line);
            }
            Action::Dial { from, to } => {
                let linked = self.nodes[from].peers.values().any(|v| v.remote == to)
                    || self.nodes[to].peers.values().any(|v| v.remote == from);
                if !linked {
                    let line = format!("connect {} {PORT}", ip(to));
                    self.command(from, &line);
                }
            }
            Action::Unicast { from } => {
                let ready = self.ready_peers(from);
                let Some((peer, view)) = self.rng.pick(&ready) else {
                    self.report.unicasts_skipped += 1;
                    self.skipped_send(from);
                    return;
                };
                let text = self.text('u', from);
                let u = self.unicasts.len();
                self.unicasts.push(Unicast {
                    from,
                    to: view.remote,
                    conn: view.conn.unwrap_or(usize::MAX),
                    id: None,
                    peer,
                    shown: Vec::new(),
                    receipts: Vec::new(),
                });
                self.by_text.insert(key(&text).to_string(), u);
                self.expect_sent = Some(u);
                let line = format!("send #{} {text}", peer.number());
                self.command(from, &line);
            }
            Action::Broadcast { from } => {
                let peers = self.ready_peers(from).len();
                if peers == 0 {
                    self.report.broadcasts_skipped += 1;
                    self.skipped_send(from);
                    return;
                }
                let text = self.text('b', from);
                let b = self.bcasts.len();
                self.bcasts.push(Bcast {
                    from,
                    at: self.now,
                    seq: None,
                    peers,
                    shown: BTreeMap::new(),
                    bad: Vec::new(),
                });
                self.bcast_by_text.insert(key(&text).to_string(), b);
                self.expect_bcast = Some(b);
                self.command(from, &format!("broadcast {text}"));
            }
            Action::Reset => {
                let live: Vec<usize> = (0..self.conns.len())
                    .filter(|&c| self.conns[c].ends.iter().all(|e| e.alive))
                    .collect();
                // Prefer a link with bytes on the way: a reset mid-frame.
                let busy: Vec<usize> = live
                    .iter()
                    .copied()
                    .filter(|&c| {
                        self.conns[c]
                            .dirs
                            .iter()
                            .any(|d| !d.rx.is_empty() || !d.segs.is_empty())
                    })
                    .collect();
                let pick = if busy.is_empty() { &live } else { &busy };
                match self.rng.pick(pick) {
                    Some(c) => self.reset(c),
                    None => self.report.faults_skipped += 1,
                }
            }
            Action::Tamper => {
                // Bytes on the wire of a link ready at both ends: sealed frames.
                let mut on_wire = Vec::new();
                for (c, conn) in self.conns.iter().enumerate() {
                    let ready = conn.ends.iter().all(|e| e.alive && e.ready_at.is_some());
                    for d in 0..2 {
                        let segs = &conn.dirs[d].segs;
                        for (s, (_, seg)) in segs.iter().enumerate() {
                            if ready && matches!(seg, Seg::Bytes(b) if !b.is_empty()) {
                                on_wire.push((c, d, s));
                            }
                        }
                    }
                }
                match self.rng.pick(&on_wire) {
                    Some((c, d, s)) => self.tamper(c, d, s),
                    None => self.report.faults_skipped += 1,
                }
            }
            Action::Cut { a, b } => {
                let cut = (0..self.conns.len()).find(|&c| {
                    let [x, y] = &self.conns[c].ends;
                    (x.alive || y.alive)
                        && ((x.node, y.node) == (a, b) || (x.node, y.node) == (b, a))
                });
                match cut {
                    Some(c) => self.reset(c),
                    None => self.report.faults_skipped += 1,
                }
            }
            Action::Routed { from } => {
                let far: Vec<usize> = (0..self.nodes.len())
                    .filter(|&to| to != from)
                    .filter(|&to| {
                        !self.edges.contains(&(from, to)) && !self.edges.contains(&(to, from))
                    })
                    .collect();
                let Some(to) = self.rng.pick(&far) else {
                    self.report.routed_skipped += 1;
                    return;
                };
                self.send_routed(from, to, Expect::Either);
            }
            Action::Change(k) => self.change(k),
            Action::Round(k, r) => self.round(k, r),
            Action::Check(k) => self.check_routes(k),
            Action::Disconnect { from } => {
                let ready = self.ready_peers(from);
                let Some((peer, view)) = self.rng.pick(&ready) else {
                    self.report.faults_skipped += 1;
                    return;
                };
                self.command(from, &format!("disconnect #{}", peer.number()));
                // Heal later: the same node dials again.
                let at = self.now + self.rng.range(300, 1_500);
                let heal = (
                    at,
                    Action::Dial {
                        from,
                        to: view.remote,
                    },
                );
                let pos = self.actions[self.next_action..]
                    .iter()
                    .position(|&(t, _)| t > at)
                    .map_or(self.actions.len(), |p| p + self.next_action);
                self.actions.insert(pos, heal);
                self.last_action_at = self.last_action_at.max(at);
            }
        }
    }

    /// `send <name> <text>` from `from` to `to`, followed as a direct message
    /// across the mesh with what it must come to.
    pub(super) fn send_routed(&mut self, from: usize, to: usize, expect: Expect) {
        let text = self.text('r', from);
        let r = self.routed.len();
        self.routed.push(RoutedMsg {
            from,
            to,
            at: self.now,
            id: None,
            refused: None,
            shown: Vec::new(),
            outcomes: Vec::new(),
            expect,
            change: self.phase.as_ref().map(|p| p.change),
        });
        self.routed_by_text.insert(key(&text).to_string(), r);
        self.expect_routed = Some(r);
        self.command(from, &format!("send {} {text}", name(to)));
        self.expect_routed = None;
    }
}
