//! A deterministic simulator: 2–128 [`Node`]s wired through in-memory byte
//! pipes, driven by virtual time and one seed.
//!
//! Every connection is two directional byte queues between two node-side
//! [`PeerId`]s. Each direction keeps TCP's order but rechunks and coalesces the
//! bytes at random (1 byte to 4 KiB a read) after a seeded delay. Links can be
//! reset mid-frame, cut and re-dialled later (a partition that heals), or
//! disconnected by a person; one node can be a slow reader. Everything random
//! comes from the seed, so a failing seed reproduces exactly.
//!
//! The loop always takes the earliest pending thing in virtual time (a scripted
//! action, a dial, a node's timer, a read on a pipe), ties broken by kind and
//! index, and fails on livelock after a bounded number of steps. A run ends when
//! nothing is pending; it must end soon after its last action.
//!
//! Around each node runs the shell a host runs, from the shell kit
//! ([`meshtalk_core::shell`]): the same code, not a copy, feeds it in turns,
//! pauses and resumes its peers' input, and drops peers that stop reading.
//!
//! After a run, [`Report::violations`] lists every broken promise: unicasts
//! delivered twice, out of order, to the wrong node, or neither delivered nor
//! reported undelivered; receipts for messages never delivered; a send refused
//! as "window full" while the simulator's own count says fewer than
//! [`WINDOW`] messages to that peer await their receipt; a scripted send
//! skipped for want of a ready peer on a network where nothing failed, or
//! while a link of its sender has been up for [`READY_WITHIN`];
//! broadcasts delivered twice, to their sender, beyond the hop limit, or
//! missing at a node whose path from the sender stayed up. With private rooms
//! ([`Rooms`]): a link between two rooms that becomes ready, or that an end
//! leaves without closing it for the room key; a room message shown in another
//! room, or, where nothing failed, anywhere but exactly the nodes its room's
//! links reach.
//!
//! Direct messages across the mesh: each ends once, delivered (shown at its
//! node alone, once) or reported undelivered or refused; once routes work
//! after a change, delivered; to a node no link path reaches, never. With
//! links in the clear, no message goes back over the link it came by, and no
//! direct message or receipt comes to one node twice.
//!
//! By concern: `rng` (the seeded generator), `network` (pipes, segments,
//! latency, backpressure), `scenario` (topologies, the scenario and its scripted
//! actions), `oracle` (what must hold: the checks and the report), `routes`
//! (topology changes, convergence counted in rounds, the wire's loop watch),
//! and here the loop that drives it all.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use meshtalk_core::command;
use meshtalk_core::limits::{ROUTES, WINDOW};
use meshtalk_core::node::{
    Config, Event, Fault, Handled, Input, Kind, Node, NodeError, Output, Reason, Routed, Secure,
};
use meshtalk_core::noise::PeerError;
use meshtalk_core::peers::{LookupError, PeerId};
use meshtalk_core::shell::feed::{Feeder, Next, Settings};
use meshtalk_core::shell::flow::{Flow, Limits};
use meshtalk_core::time::Instant;

mod network;
mod oracle;
mod rng;
mod routes;
mod scenario;

use network::*;
use oracle::*;
pub use oracle::{Report, Totals};
pub use rng::Rng;
use routes::*;
pub use routes::{Change, Convergence, GAP, ROUND, SPREAD, TICK};
use scenario::*;
pub use scenario::{Backpressure, Rooms, Scenario, Topology};

/// The node type under simulation: 16 peers, 1 KiB frames, 4 frames of outputs.
pub type SimNode = Node<16, 1024, 4096, ROUTES>;

/// The port every node listens on.
const PORT: u16 = 7000;

/// Dials start in `[0, SETUP_DIALS)` ms; people start acting at `SETUP` ms.
const SETUP_DIALS: u64 = 200;
const SETUP: u64 = 1_000;

/// Scripted actions happen in `[SETUP, SETUP + SPAN)` ms.
const SPAN: u64 = 3_000;

/// Beacons (one room message per node, when a scenario sends across the mesh)
/// go in `[SETUP, SETUP + BEACONS)` ms, and messages across the mesh start
/// `ROUTES_SETTLE` ms later, once the floods have taught every route.
const BEACONS: u64 = 500;
const ROUTES_SETTLE: u64 = 1_500;

/// A link that stays up this long after a broadcast carries it, however slow.
const FLIGHT: u64 = 5_000;

/// After the last action the run must go quiet within this time.
const SETTLE: u64 = 30_000;

/// The most steps (inputs and reads) a run may take before it counts as livelock.
const MAX_STEPS: u64 = 400_000;

/// A link up this long is ready at both ends (banners, handshake and hellos
/// take well under this, even for the slow reader): a send skipped for want of
/// a ready peer while such a link is up is a violation.
const READY_WITHIN: u64 = 1_000;

/// What the harness knows of one of a node's peers (from its outputs and events).
#[derive(Clone, Copy, Debug)]
struct PeerView {
    remote: usize,
    conn: Option<usize>,
    ready: bool,
}

struct SimNodeState {
    node: Box<SimNode>,
    wake: Option<u64>,
    peers: BTreeMap<PeerId, PeerView>,
    slow: bool,
    /// Counter for message texts.
    sent: usize,
    /// Node id (for checking room origins).
    id: u64,
    /// The shell's count of bytes waiting for each peer (with backpressure).
    flow: Flow<16>,
    /// The shell's turns and waiting rings: the kit's fair feeding.
    feeder: Feeder<16>,
    /// Commands the person gave: each may queue one frame for every peer, paused or not.
    commands: usize,
    /// Its private room ([`Scenario::rooms`]): nodes link only within one.
    room: usize,
    /// Whether it holds a room key (the nodes of one room all do, or none does).
    keyed: bool,
}

/// An output, copied out of the node.
enum Out {
    Transmit {
        peer: PeerId,
        data: Vec<u8>,
    },
    Connect {
        peer: PeerId,
        host: String,
        port: u16,
    },
    Close {
        peer: PeerId,
    },
    Event(Event<String>),
    Timeout(Option<u64>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Action(usize),
    Dial(usize),
    Deliver(usize, usize),
    Timer(usize),
    Stall(usize),
    /// A node's shell has a turn to give or a paused peer to feed again.
    Turn(usize),
}

struct Sim {
    sc: Scenario,
    rng: Rng,
    /// Keys and handshake entropy, drawn apart from `rng` so that encryption
    /// leaves every other random choice of a seed as it was.
    keys: Rng,
    now: u64,
    nodes: Vec<SimNodeState>,
    conns: Vec<Conn>,
    /// The receiving ends (node, peer) of links a byte of which was flipped
    /// on the wire ([`Scenario::tampers`]).
    tampered: BTreeSet<(usize, PeerId)>,
    edges: Vec<(usize, usize)>,
    actions: Vec<(u64, Action)>,
    next_action: usize,
    last_action_at: u64,
    dials: Vec<PendingDial>,
    unicasts: Vec<Unicast>,
    by_text: BTreeMap<String, usize>,
    bcasts: Vec<Bcast>,
    bcast_by_text: BTreeMap<String, usize>,
    expect_sent: Option<usize>,
    expect_bcast: Option<usize>,
    /// Direct messages across the mesh, and which one a command now sends.
    routed: Vec<RoutedMsg>,
    routed_by_text: BTreeMap<String, usize>,
    expect_routed: Option<usize>,
    shown_order: u64,
    /// Scripted sends skipped for want of a ready peer: (time, node).
    skipped: Vec<(u64, usize)>,
    /// The topology change under way ([`Scenario::changes`]).
    phase: Option<Phase>,
    /// Links cut by changes, to dial again at the next heal.
    cut_links: CutLinks,
    /// What the wire showed of each message at each node (links in the clear).
    ledger: Ledger,
    report: Report,
}

impl Sim {
    fn new(sc: Scenario) -> Self {
        let mut rng = Rng::new(sc.seed);
        let mut keys = Rng::new(!sc.seed);
        let n = sc.nodes;
        assert!((2..=128).contains(&n), "2 to 128 nodes");
        let slow = if sc.slow_reader {
            Some(rng.below(n as u64) as usize)
        } else {
            None
        };
        let hops = sc.hops.unwrap_or(32);
        // Rooms and their keys, drawn from `keys` only when there are rooms:
        // a scenario without them draws as before.
        let (room_of, room_keys) = match sc.rooms {
            None => (vec![0; n], vec![None]),
            Some(rooms) => {
                let count = rooms.count();
                let mut room_of: Vec<usize> = (0..n).map(|i| i % count).collect();
                for i in (1..n).rev() {
                    room_of.swap(i, keys.below(i as u64 + 1) as usize);
                }
                let keyed = rooms.keys.max(1);
                let room_keys: Vec<_> = (0..count)
                    .map(|r| (r < keyed).then(|| keys.key()))
                    .collect();
                (room_of, room_keys)
            }
        };
        let nodes = (0..n)
            .map(|i| {
                let room = room_of[i];
                let id = rng.next_u64() | 1;
                let mut config = Config::new(&name(i), id).expect("valid name");
                config.hops = hops;
                // Every link secure: the Noise handshake and sealed frames under
                // all of the simulator's checks.
                let mut secure = Secure::new(keys.key());
                secure.room_key = room_keys[room];
                if !sc.plaintext {
                    config.secure = Some(secure);
                }
                // A run ends when every node is idle: keepalive pings and
                // periodic announces would never let it.
                config.ping_after = None;
                config.announce_every = sc.announce_every;
                let node = Box::new(SimNode::new(config));
                // A secure node's id is made from its key.
                let id = node.config().node_id;
                SimNodeState {
                    node,
                    wake: None,
                    peers: BTreeMap::new(),
                    slow: slow == Some(i),
                    sent: 0,
                    id,
                    flow: Flow::new(sc.backpressure.map(|b| b.limits).unwrap_or_default(), id),
                    feeder: Feeder::new(sc.feeding),
                    commands: 0,
                    room,
                    keyed: room_keys[room].is_some(),
                }
            })
            .collect();
        let edges = edges_for(&mut rng, n, sc.topology);
        let mut actions = Vec::new();
        for &(a, b) in &edges {
            actions.push((rng.below(SETUP_DIALS), Action::Dial { from: a, to: b }));
        }
        // Links to double or cut are links that can be up: within a room.
        let room_edges: Vec<(usize, usize)> = edges
            .iter()
            .copied()
            .filter(|&(a, b)| room_of[a] == room_of[b])
            .collect();
        for _ in 0..sc.double_links {
            if let Some((a, b)) = rng.pick(&room_edges) {
                // After the first dials, so the link exists to be doubled.
                let at = SETUP_DIALS + rng.below(SETUP_DIALS);
                actions.push((at, Action::DialAgain { from: b, to: a }));
            }
        }
        let span = sc.span_ms.max(1);
        let at = |rng: &mut Rng| SETUP + rng.below(span);
        for _ in 0..sc.unicasts {
            let from = rng.below(n as u64) as usize;
            actions.push((at(&mut rng), Action::Unicast { from }));
        }
        for _ in 0..sc.broadcasts {
            let from = rng.below(n as u64) as usize;
            actions.push((at(&mut rng), Action::Broadcast { from }));
        }
        let beacons = sc.routed > 0 || !sc.changes.is_empty();
        if beacons {
            // Every node speaks once early on (its beacon), then the messages
            // across the mesh go while partitions come and heal.
            for from in 0..n {
                actions.push((SETUP + rng.below(BEACONS), Action::Broadcast { from }));
            }
        }
        if !sc.changes.is_empty() {
            // The changes come one after another, each once the last settled.
            actions.push((SETUP + BEACONS + ROUTES_SETTLE, Action::Change(0)));
        }
        if sc.routed > 0 {
            for _ in 0..sc.routed {
                let from = rng.below(n as u64) as usize;
                let t = SETUP + BEACONS + ROUTES_SETTLE + rng.below(span);
                actions.push((t, Action::Routed { from }));
            }
        }
        for _ in 0..sc.resets {
            // A third of them while links are still exchanging banners and hellos.
            let t = if rng.chance(1, 3) {
                rng.below(SETUP_DIALS + 50)
            } else {
                at(&mut rng)
            };
            actions.push((t, Action::Reset));
        }
        for _ in 0..sc.tampers {
            actions.push((at(&mut rng), Action::Tamper));
        }
        for _ in 0..sc.partitions {
            if let Some((a, b)) = rng.pick(&room_edges) {
                let t = at(&mut rng);
                actions.push((t, Action::Cut { a, b }));
                let heal = t + rng.range(300, 1_500);
                actions.push((heal, Action::Dial { from: a, to: b }));
            }
        }
        for _ in 0..sc.disconnects {
            let from = rng.below(n as u64) as usize;
            actions.push((at(&mut rng), Action::Disconnect { from }));
        }
        // Stable order: by time, then as generated.
        actions.sort_by_key(|&(t, _)| t);
        let last_action_at = actions.last().map_or(0, |&(t, _)| t);
        let report = Report {
            seed: sc.seed,
            nodes: n,
            links: edges.len(),
            bounded: sc.backpressure.is_some(),
            unicasts_scripted: sc.unicasts,
            broadcasts_scripted: sc.broadcasts + if beacons { n } else { 0 },
            routed_scripted: sc.routed,
            faults_scripted: sc.resets + sc.tampers + sc.partitions + sc.disconnects,
            rooms: room_keys.len(),
            ..Report::default()
        };
        Sim {
            sc,
            rng,
            keys,
            now: 0,
            tampered: BTreeSet::new(),
            nodes,
            conns: Vec::new(),
            edges,
            actions,
            next_action: 0,
            last_action_at,
            dials: Vec::new(),
            unicasts: Vec::new(),
            by_text: BTreeMap::new(),
            bcasts: Vec::new(),
            bcast_by_text: BTreeMap::new(),
            expect_sent: None,
            expect_bcast: None,
            routed: Vec::new(),
            routed_by_text: BTreeMap::new(),
            expect_routed: None,
            shown_order: 0,
            skipped: Vec::new(),
            phase: None,
            cut_links: Vec::new(),
            ledger: Ledger::default(),
            report,
        }
    }

    fn trace(&mut self, line: impl FnOnce() -> String) {
        if self.sc.trace {
            let l = format!("{} {}", self.now, line());
            self.report.trace.push(l);
        }
    }

    fn step(&mut self) {
        self.report.steps += 1;
        // Each change with its rounds may take as many steps as a whole run.
        let max = MAX_STEPS * (1 + self.sc.changes.len() as u64);
        if self.report.steps > max {
            panic!(
                "simulation seed {:#x}: livelock: more than {max} steps (virtual time {} ms)",
                self.sc.seed, self.now
            );
        }
    }

    fn next_event(&self) -> Option<(u64, Ev)> {
        let mut best: Option<(u64, Ev)> = None;
        let mut offer = |at: u64, ev: Ev| {
            if best.is_none_or(|b| (at, ev) < b) {
                best = Some((at, ev));
            }
        };
        if let Some(&(at, _)) = self.actions.get(self.next_action) {
            offer(at, Ev::Action(self.next_action));
        }
        for (i, d) in self.dials.iter().enumerate() {
            if !d.cancelled {
                offer(d.at, Ev::Dial(i));
            }
        }
        for (c, conn) in self.conns.iter().enumerate() {
            for (d, dir) in conn.dirs.iter().enumerate() {
                if let Some(at) = dir.next_at() {
                    offer(at, Ev::Deliver(c, d));
                }
            }
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if let Some(at) = n.wake {
                offer(at, Ev::Timer(i));
            }
            if let Some(at) = self.stall_at(i) {
                offer(at, Ev::Stall(i));
            }
            if !n.feeder.turns().is_empty() || n.feeder.resumable(|p| n.flow.feeds(p)) {
                offer(self.now, Ev::Turn(i));
            }
        }
        best.map(|(at, ev)| (at.max(self.now), ev))
    }

    fn run(mut self) -> Report {
        while let Some((at, ev)) = self.next_event() {
            self.step();
            self.now = at;
            // Periodic announces keep the nodes busy for ever: such a run ends
            // once its changes had their time.
            let periodic = self.sc.announce_every.is_some();
            if periodic && self.now > self.last_action_at + SETTLE + self.sc.quiet_ms {
                break;
            }
            if !periodic && self.now > self.last_action_at + SETTLE {
                let what = format!("still busy {SETTLE} ms after the last action: next {ev:?}");
                self.violation(what);
                break;
            }
            match ev {
                Ev::Action(i) => {
                    self.next_action = i + 1;
                    let (_, action) = self.actions[i];
                    self.act(action);
                }
                Ev::Dial(i) => {
                    let d = self.dials.remove(i);
                    self.dial(d);
                }
                Ev::Deliver(c, d) => self.deliver(c, d),
                Ev::Timer(i) => {
                    self.nodes[i].wake = None;
                    let held = self.held(i);
                    self.input(i, Input::Timeout { held: &held });
                }
                Ev::Stall(i) => self.drop_stalled(i),
                Ev::Turn(i) => self.take_turn(i),
            }
        }
        for node in &self.nodes {
            let counted = node.feeder.counters();
            self.report.turns_cut += counted.turns_cut;
            self.report.feeds_paused += counted.paused;
            self.report.stuck_drops += counted.stuck_drops;
        }
        self.report.end_ms = self.now;
        self.note_reachable();
        if let Some(phase) = &self.phase {
            let k = phase.change;
            self.violation(format!("change {k} never settled"));
        }
        self.check();
        self.report
    }

    /// When node `i`'s shell next finds a peer stalled, if nothing moves.
    fn stall_at(&self, i: usize) -> Option<u64> {
        self.sc.backpressure?;
        self.nodes[i].flow.next_stall().map(Instant::as_millis)
    }

    /// Node `i`'s shell no longer holds anything for `peer` (it left).
    fn forget(&mut self, i: usize, peer: PeerId) {
        self.nodes[i].flow.forget(peer);
        self.nodes[i].feeder.forget(peer);
    }

    /// Drops every peer of node `i` that took nothing for the stall timeout, as
    /// the host does: the connection is cut and the node told why.
    fn drop_stalled(&mut self, i: usize) {
        let now = Instant::from_millis(self.now);
        while let Some(peer) = self.nodes[i].flow.next_stalled(now) {
            self.report.stalls += 1;
            self.trace(|| format!("n{i} drops {peer}: not reading"));
            self.nodes[i].feeder.forget(peer);
            let Some((c, e)) = self.end_of(i, peer) else {
                continue;
            };
            self.cut(c, Some((e, "not reading")));
        }
    }

    /// Gives node `i` one input (not bytes), then drains it.
    fn input(&mut self, i: usize, input: Input<'_>) -> Option<Handled> {
        self.trace(|| format!("n{i} <- {input:?}"));
        let now = Instant::from_millis(self.now);
        let result = self.nodes[i].node.handle_input(now, input);
        let handled = match result {
            Ok(h) => Some(h),
            Err(e) => {
                self.command_error(i, e);
                None
            }
        };
        self.drain(i);
        handled
    }

    /// Node `i`'s shell takes its turn: first the paused peers the flow lets go
    /// on (in the order they paused), then the peer at the front of the turns.
    fn take_turn(&mut self, i: usize) {
        let mut pass = self.nodes[i].feeder.resume();
        loop {
            let node = &mut self.nodes[i];
            let flow = &node.flow;
            let Some(peer) = node.feeder.next_resumed(&mut pass, |p| flow.feeds(p)) else {
                break;
            };
            self.feed_peer(i, peer);
        }
        if let Some(peer) = self.nodes[i].feeder.next_turn() {
            self.feed_peer(i, peer);
        }
    }

    fn feed_peer(&mut self, i: usize, peer: PeerId) {
        if let Some((c, e)) = self.end_of(i, peer) {
            self.feed(c, e);
        }
    }

    /// Feeds end `e` of link `c` a turn of the chunk its shell holds, by the
    /// kit's rules, as the host does: up to the turn budget, honouring
    /// `Consumed(n)` with a drain after each piece; a piece the node keeps
    /// refusing is dropped (a violation). What is left waits in the feeder's
    /// rings; what was taken makes room in the pipe.
    fn feed(&mut self, c: usize, e: usize) {
        let (i, peer) = (self.conns[c].ends[e].node, self.conns[c].ends[e].peer);
        let d = 1 - e;
        let mut turn = self.nodes[i].feeder.turn(peer);
        loop {
            self.step();
            let alive = self.conns[c].ends[e].alive;
            let dir = &mut self.conns[c].dirs[d];
            if !alive {
                // The socket is gone: what was read goes with it.
                let n = dir.pending.min(dir.rx.len());
                dir.rx.drain(..n);
                dir.pending = 0;
                break;
            }
            let pending = dir.pending;
            let node = &mut self.nodes[i];
            // A peer still greeting is fed, as by the host.
            let feeds = node.flow.feeds(peer) || !node.node.is_ready(peer);
            let Next::Offer(n) = node.feeder.next(&mut turn, pending, feeds) else {
                break;
            };
            let bytes: Vec<u8> = self.conns[c].dirs[d].rx.iter().take(n).copied().collect();
            let now = Instant::from_millis(self.now);
            let result = self.nodes[i].node.handle_input(
                now,
                Input::Received {
                    peer,
                    bytes: &bytes,
                },
            );
            let taken = match result {
                Ok(Handled::Consumed(k)) => k,
                other => {
                    self.violation(format!("n{i}: Received answered {other:?}"));
                    n
                }
            };
            self.trace(|| format!("n{i} <- {n} bytes from {peer}, took {taken}"));
            if taken > n {
                self.violation(format!("n{i}: consumed {taken} of {n} bytes"));
            }
            let took = self.nodes[i].feeder.took(&mut turn, n, taken);
            if took.dropped {
                let limit = self.sc.feeding.stuck_limit;
                self.violation(format!(
                    "n{i}: took none of {n} bytes from {peer} {limit} times in a row, \
                     draining in between; the shell dropped them"
                ));
            }
            let dir = &mut self.conns[c].dirs[d];
            let k = took.consume.min(dir.pending);
            dir.rx.drain(..k);
            dir.pending -= k;
            self.watch_taken(i, c, d, &bytes[..k.min(bytes.len())]);
            self.drain(i);
        }
        // Room in the pipe: the sender's shell writes on.
        self.pump(c, d);
    }

    fn poll(&mut self, i: usize) -> Out {
        let now = Instant::from_millis(self.now);
        match self.nodes[i].node.poll_output(now) {
            Output::Transmit { peer, data, .. } => Out::Transmit {
                peer,
                data: data.to_vec(),
            },
            Output::Connect { peer, host, port } => Out::Connect {
                peer,
                host: host.to_string(),
                port,
            },
            Output::Close { peer } => Out::Close { peer },
            Output::Event(e) => Out::Event(e.map(str::to_string)),
            Output::Timeout(t) => Out::Timeout(t.map(Instant::as_millis)),
        }
    }

    fn drain(&mut self, i: usize) {
        let mut polled = 0u32;
        loop {
            polled += 1;
            if polled > 10_000 {
                panic!(
                    "simulation seed {:#x}: n{i} gave 10000 outputs without a Timeout",
                    self.sc.seed
                );
            }
            match self.poll(i) {
                Out::Timeout(t) => {
                    self.nodes[i].wake = t;
                    break;
                }
                Out::Transmit { peer, data } => self.transmit(i, peer, data),
                Out::Connect { peer, host, port } => self.connect(i, peer, &host, port),
                Out::Close { peer } => self.close(i, peer),
                Out::Event(e) => self.event(i, e),
            }
        }
        if self.expect_sent.take().is_some() {
            self.violation(format!("n{i}: a send gave no Sent event"));
        }
        if self.expect_bcast.take().is_some() {
            self.violation(format!("n{i}: a broadcast gave no Broadcast event"));
        }
    }

    fn end_of(&self, i: usize, peer: PeerId) -> Option<(usize, usize)> {
        let c = self.nodes[i].peers.get(&peer)?.conn?;
        let e = self.conns[c]
            .ends
            .iter()
            .position(|end| end.node == i && end.peer == peer)?;
        Some((c, e))
    }
}
