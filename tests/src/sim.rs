//! A deterministic simulator: 2–16 [`Node`]s wired through in-memory byte
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
//! After a run, [`Report::violations`] lists every broken promise: unicasts
//! delivered twice, out of order, to the wrong node, or neither delivered nor
//! reported undelivered; receipts for messages never delivered; a send refused
//! as "window full" while the simulator's own count says fewer than
//! [`WINDOW`] messages to that peer await their receipt; a scripted send
//! skipped for want of a ready peer on a network where nothing failed, or
//! while a link of its sender has been up for [`READY_WITHIN`];
//! broadcasts delivered twice, to their sender, beyond the hop limit, or
//! missing at a node whose path from the sender stayed up.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use meshtalk_core::command;
use meshtalk_core::flow::{Flow, Limits};
use meshtalk_core::limits::WINDOW;
use meshtalk_core::node::{Config, Event, Handled, Input, Kind, Node, NodeError, Output, Reason};
use meshtalk_core::peers::PeerId;
use meshtalk_core::time::Instant;

/// The node type under simulation: 16 peers, 1 KiB frames, 4 frames of outputs.
pub type SimNode = Node<16, 1024, 4096>;

/// The port every node listens on.
const PORT: u16 = 7000;
/// Dials start in `[0, SETUP_DIALS)` ms; people start acting at `SETUP` ms.
const SETUP_DIALS: u64 = 200;
const SETUP: u64 = 1_000;
/// Scripted actions happen in `[SETUP, SETUP + SPAN)` ms.
const SPAN: u64 = 3_000;
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

/// A small seeded generator (SplitMix64): all the simulator's randomness.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        if items.is_empty() {
            return None;
        }
        items.get(self.below(items.len() as u64) as usize).copied()
    }
}

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
    /// Links reset at random times, preferably with bytes in flight.
    pub resets: usize,
    /// Links cut (reset) and re-dialled by the same side later.
    pub partitions: usize,
    /// Links closed by a person's `disconnect`, and re-dialled later.
    pub disconnects: usize,
    /// Links dialled a second time from the other side at the same moment, so
    /// two nodes share two connections (the second alias gets a `-2`).
    pub double_links: usize,
    /// One node reads its bytes in tiny chunks with extra delay.
    pub slow_reader: bool,
    /// The nodes' hop limit; `None` for one that never binds (more than any path).
    pub hops: Option<u8>,
    /// Bounded pipes and the shell's flow control, as the host runs them;
    /// `None`: pipes take everything at once.
    pub backpressure: Option<Backpressure>,
    /// People act within this many ms after setup: small for bursts.
    pub span_ms: u64,
    /// Keep a line per input, output and read, to compare runs.
    pub trace: bool,
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
            resets: 0,
            partitions: 0,
            disconnects: 0,
            double_links: 0,
            slow_reader: false,
            hops: None,
            backpressure: None,
            span_ms: SPAN,
            trace: false,
        }
    }

    pub fn faulty(&self) -> bool {
        self.resets + self.partitions + self.disconnects > 0
    }

    /// Runs the scenario to the end.
    pub fn run(&self) -> Report {
        Sim::new(self.clone()).run()
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

/// What a run did and what it got wrong.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub seed: u64,
    pub nodes: usize,
    pub links: usize,
    /// Bounded pipes and flow control ([`Scenario::backpressure`]).
    pub bounded: bool,
    /// Unicasts the scenario scripted; each is sent, refused or skipped.
    pub unicasts_scripted: usize,
    pub unicasts_sent: usize,
    pub unicasts_delivered: usize,
    pub unicasts_undelivered: usize,
    /// Refused by the node as "window full" (a violation unless the window was).
    pub unicasts_refused: usize,
    /// Not given to the node: the sender had no ready peer at the time.
    pub unicasts_skipped: usize,
    /// Unicasts and broadcasts skipped at a node the topology gave no link.
    pub sends_isolated: usize,
    pub broadcasts_scripted: usize,
    pub broadcasts_sent: usize,
    /// Broadcasts not given to the node: the sender had no ready peer.
    pub broadcasts_skipped: usize,
    pub broadcast_deliveries: usize,
    pub resets: usize,
    /// Resets, cuts and disconnects the scenario scripted.
    pub faults_scripted: usize,
    /// Scripted resets, cuts and disconnects that found no link to act on.
    pub faults_skipped: usize,
    /// The longest a link took from its dial being accepted to being ready at both ends.
    pub slowest_ready_ms: u64,
    /// Peers dropped by the shell for taking nothing for the stall timeout.
    pub stalls: usize,
    /// The most bytes a shell ever held for one peer.
    pub max_backlog: usize,
    pub steps: u64,
    pub end_ms: u64,
    pub trace: Vec<String>,
    pub violations: Vec<String>,
}

impl Report {
    /// Panics with the seed and every violation, if there are any.
    pub fn assert_ok(&self) {
        if self.violations.is_empty() {
            return;
        }
        let mut text = format!(
            "simulation seed {:#x} ({} nodes): {} violation(s):\n",
            self.seed,
            self.nodes,
            self.violations.len()
        );
        for v in self.violations.iter().take(30) {
            let _ = writeln!(text, "  {v}");
        }
        panic!("{text}");
    }
}

/// Totals over many runs, for the report.
#[derive(Clone, Copy, Debug, Default)]
pub struct Totals {
    pub runs: usize,
    /// Runs through bounded pipes with the shells' flow control.
    pub bounded_runs: usize,
    pub nodes: usize,
    pub unicasts_scripted: usize,
    /// Unicasts sent (the node answered with `Sent`).
    pub unicasts: usize,
    pub unicasts_delivered: usize,
    pub broadcasts_scripted: usize,
    /// Broadcasts sent (the node answered with `Broadcast`).
    pub broadcasts: usize,
    pub broadcast_deliveries: usize,
    /// Unicast and broadcast deliveries.
    pub deliveries: usize,
    pub refused: usize,
    pub undelivered: usize,
    /// Scripted unicasts and broadcasts skipped for want of a ready peer.
    pub sends_skipped: usize,
    /// Of those, skipped at nodes the topology gave no link.
    pub sends_isolated: usize,
    pub faults_scripted: usize,
    pub faults_skipped: usize,
    pub resets: usize,
    pub stalls: usize,
    /// Runs in which a peer was dropped as not reading.
    pub runs_with_stalls: usize,
    pub max_backlog: usize,
    pub slowest_ready_ms: u64,
    pub steps: u64,
}

impl Totals {
    pub const ZERO: Totals = Totals {
        runs: 0,
        bounded_runs: 0,
        nodes: 0,
        unicasts_scripted: 0,
        unicasts: 0,
        unicasts_delivered: 0,
        broadcasts_scripted: 0,
        broadcasts: 0,
        broadcast_deliveries: 0,
        deliveries: 0,
        refused: 0,
        undelivered: 0,
        sends_skipped: 0,
        sends_isolated: 0,
        faults_scripted: 0,
        faults_skipped: 0,
        resets: 0,
        stalls: 0,
        runs_with_stalls: 0,
        max_backlog: 0,
        slowest_ready_ms: 0,
        steps: 0,
    };

    pub fn add(&mut self, r: &Report) {
        self.runs += 1;
        self.bounded_runs += usize::from(r.bounded);
        self.nodes += r.nodes;
        self.unicasts_scripted += r.unicasts_scripted;
        self.unicasts += r.unicasts_sent;
        self.unicasts_delivered += r.unicasts_delivered;
        self.broadcasts_scripted += r.broadcasts_scripted;
        self.broadcasts += r.broadcasts_sent;
        self.broadcast_deliveries += r.broadcast_deliveries;
        self.deliveries += r.unicasts_delivered + r.broadcast_deliveries;
        self.refused += r.unicasts_refused;
        self.undelivered += r.unicasts_undelivered;
        self.sends_skipped += r.unicasts_skipped + r.broadcasts_skipped;
        self.sends_isolated += r.sends_isolated;
        self.faults_scripted += r.faults_scripted;
        self.faults_skipped += r.faults_skipped;
        self.resets += r.resets;
        self.stalls += r.stalls;
        self.runs_with_stalls += usize::from(r.stalls > 0);
        self.max_backlog = self.max_backlog.max(r.max_backlog);
        self.slowest_ready_ms = self.slowest_ready_ms.max(r.slowest_ready_ms);
        self.steps += r.steps;
    }

    /// Adds another set of totals (for a whole suite).
    pub fn merge(&mut self, o: &Totals) {
        self.runs += o.runs;
        self.bounded_runs += o.bounded_runs;
        self.nodes += o.nodes;
        self.unicasts_scripted += o.unicasts_scripted;
        self.unicasts += o.unicasts;
        self.unicasts_delivered += o.unicasts_delivered;
        self.broadcasts_scripted += o.broadcasts_scripted;
        self.broadcasts += o.broadcasts;
        self.broadcast_deliveries += o.broadcast_deliveries;
        self.deliveries += o.deliveries;
        self.refused += o.refused;
        self.undelivered += o.undelivered;
        self.sends_skipped += o.sends_skipped;
        self.sends_isolated += o.sends_isolated;
        self.faults_scripted += o.faults_scripted;
        self.faults_skipped += o.faults_skipped;
        self.resets += o.resets;
        self.stalls += o.stalls;
        self.runs_with_stalls += o.runs_with_stalls;
        self.max_backlog = self.max_backlog.max(o.max_backlog);
        self.slowest_ready_ms = self.slowest_ready_ms.max(o.slowest_ready_ms);
        self.steps += o.steps;
    }
}

impl std::fmt::Display for Totals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} runs ({} bounded), {} nodes; unicasts: {} scripted, {} sent, {} delivered, \
             {} undelivered, {} refused (window full); broadcasts: {} scripted, {} sent, \
             {} deliveries; {} sends skipped (no ready peer; {} at nodes with no link), \
             {} of {} scripted faults skipped (no link); {} resets, {} stalls in {} runs, max backlog {} B, \
             slowest link ready in {} ms, {} steps",
            self.runs,
            self.bounded_runs,
            self.nodes,
            self.unicasts_scripted,
            self.unicasts,
            self.unicasts_delivered,
            self.undelivered,
            self.refused,
            self.broadcasts_scripted,
            self.broadcasts,
            self.broadcast_deliveries,
            self.sends_skipped,
            self.sends_isolated,
            self.faults_skipped,
            self.faults_scripted,
            self.resets,
            self.stalls,
            self.runs_with_stalls,
            self.max_backlog,
            self.slowest_ready_ms,
            self.steps
        )
    }
}

// ---- the simulator ----

#[derive(Clone, Copy, Debug)]
enum Action {
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
    Reset,
    /// Cut (reset) the link between these two; a later `Dial` heals it.
    Cut {
        a: usize,
        b: usize,
    },
    Disconnect {
        from: usize,
    },
}

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
    /// Commands the person gave: each may queue one frame for every peer, paused or not.
    commands: usize,
}

enum Seg {
    Bytes(Vec<u8>),
    Fin,
}

#[derive(Default)]
struct Dir {
    /// Segments on the wire, with their arrival times (non-decreasing).
    segs: VecDeque<(u64, Seg)>,
    /// Arrived, not yet taken by the node.
    rx: VecDeque<u8>,
    /// The receiver reads again no earlier than this.
    ready_at: u64,
    last_arrival: u64,
    /// The receiving socket is gone: bytes are dropped.
    dead: bool,
    latency: u64,
    /// With backpressure: bytes the sender's shell holds until the pipe has room,
    /// and whether its FIN goes after them.
    queue: VecDeque<u8>,
    fin_queued: bool,
}

impl Dir {
    fn next_at(&self) -> Option<u64> {
        if self.dead {
            return None;
        }
        if !self.rx.is_empty() {
            return Some(self.ready_at);
        }
        self.segs.front().map(|&(at, _)| at.max(self.ready_at))
    }

    fn clear(&mut self) {
        self.segs.clear();
        self.rx.clear();
        self.queue.clear();
        self.fin_queued = false;
        self.dead = true;
    }

    /// Whether bytes have arrived that the receiver has not taken.
    fn arrived(&self, now: u64) -> bool {
        !self.rx.is_empty() || self.segs.front().is_some_and(|&(at, _)| at <= now)
    }

    /// Bytes on the wire and unread.
    fn held(&self) -> usize {
        let wire: usize = self
            .segs
            .iter()
            .map(|(_, seg)| match seg {
                Seg::Bytes(b) => b.len(),
                Seg::Fin => 0,
            })
            .sum();
        wire + self.rx.len()
    }
}

struct End {
    node: usize,
    peer: PeerId,
    /// The node still has this peer.
    alive: bool,
    /// When the node reported it ready.
    ready_at: Option<u64>,
}

struct Conn {
    ends: [End; 2],
    /// `dirs[e]` carries bytes from end `e` to end `1 - e`.
    dirs: [Dir; 2],
    /// When either end first went away.
    down_at: Option<u64>,
    /// When the dial was accepted.
    opened_at: u64,
}

struct PendingDial {
    at: u64,
    node: usize,
    peer: PeerId,
    to: usize,
    cancelled: bool,
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

/// One unicast shown on a link: (showing order, the sender's id, unicast index).
type Shown = (u64, usize, usize);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Receipt {
    Delivered(u64),
    Undelivered(u64),
}

struct Unicast {
    from: usize,
    to: usize,
    conn: usize,
    /// The sender's number for it, from its `Sent` event.
    id: Option<u32>,
    peer: PeerId,
    /// (node, conn, time, order) for every time it was shown.
    shown: Vec<(usize, Option<usize>, String, u64, u64)>,
    receipts: Vec<Receipt>,
}

struct Bcast {
    from: usize,
    at: u64,
    seq: Option<u32>,
    /// Ready peers when sent, as the harness saw them.
    peers: usize,
    /// Receiving node, how many times.
    shown: BTreeMap<usize, usize>,
    bad: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Action(usize),
    Dial(usize),
    Deliver(usize, usize),
    Timer(usize),
    Stall(usize),
}

struct Sim {
    sc: Scenario,
    rng: Rng,
    now: u64,
    nodes: Vec<SimNodeState>,
    conns: Vec<Conn>,
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
    shown_order: u64,
    /// Scripted sends skipped for want of a ready peer: (time, node).
    skipped: Vec<(u64, usize)>,
    report: Report,
}

fn ip(node: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        10,
        0,
        (node / 250) as u8,
        (node % 250 + 1) as u8,
    ))
}

fn node_of(host: &str) -> Option<usize> {
    let ip: Ipv4Addr = host.parse().ok()?;
    let [_, _, hi, lo] = ip.octets();
    Some(usize::from(hi) * 250 + usize::from(lo) - 1)
}

fn name(node: usize) -> String {
    format!("n{node}")
}

/// `n3`, or `n3-2` for a second link to the same node.
fn is_alias_of(alias: &str, node: usize) -> bool {
    let base = name(node);
    alias.strip_prefix(&base).is_some_and(|rest| {
        rest.is_empty()
            || rest
                .strip_prefix('-')
                .is_some_and(|n| n.parse::<u32>().is_ok())
    })
}

/// The first word of a message text: its tracking key (`u3-7`, `b2-1`).
fn key(text: &str) -> &str {
    text.split(' ').next().unwrap_or(text)
}

fn edges_for(rng: &mut Rng, n: usize, topology: Topology) -> Vec<(usize, usize)> {
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
    fn new(sc: Scenario) -> Self {
        let mut rng = Rng::new(sc.seed);
        let n = sc.nodes;
        assert!((2..=16).contains(&n), "2 to 16 nodes");
        let slow = if sc.slow_reader {
            Some(rng.below(n as u64) as usize)
        } else {
            None
        };
        let hops = sc.hops.unwrap_or(32);
        let nodes = (0..n)
            .map(|i| {
                let id = rng.next_u64() | 1;
                let mut config = Config::new(&name(i), id).expect("valid name");
                config.hops = hops;
                // A run ends when every node is idle: keepalive pings would never let it.
                config.ping_after = None;
                SimNodeState {
                    node: Box::new(SimNode::new(config)),
                    wake: None,
                    peers: BTreeMap::new(),
                    slow: slow == Some(i),
                    sent: 0,
                    id,
                    flow: Flow::new(sc.backpressure.map(|b| b.limits).unwrap_or_default(), id),
                    commands: 0,
                }
            })
            .collect();
        let edges = edges_for(&mut rng, n, sc.topology);
        let mut actions = Vec::new();
        for &(a, b) in &edges {
            actions.push((rng.below(SETUP_DIALS), Action::Dial { from: a, to: b }));
        }
        for _ in 0..sc.double_links {
            if let Some((a, b)) = rng.pick(&edges) {
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
        for _ in 0..sc.resets {
            // A third of them while links are still exchanging banners and hellos.
            let t = if rng.chance(1, 3) {
                rng.below(SETUP_DIALS + 50)
            } else {
                at(&mut rng)
            };
            actions.push((t, Action::Reset));
        }
        for _ in 0..sc.partitions {
            if let Some((a, b)) = rng.pick(&edges) {
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
            broadcasts_scripted: sc.broadcasts,
            faults_scripted: sc.resets + sc.partitions + sc.disconnects,
            ..Report::default()
        };
        Sim {
            sc,
            rng,
            now: 0,
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
            shown_order: 0,
            skipped: Vec::new(),
            report,
        }
    }

    fn violation(&mut self, what: String) {
        let line = format!("t={}ms: {what}", self.now);
        self.report.violations.push(line);
    }

    fn trace(&mut self, line: impl FnOnce() -> String) {
        if self.sc.trace {
            let l = format!("{} {}", self.now, line());
            self.report.trace.push(l);
        }
    }

    fn step(&mut self) {
        self.report.steps += 1;
        if self.report.steps > MAX_STEPS {
            panic!(
                "simulation seed {:#x}: livelock: more than {MAX_STEPS} steps (virtual time {} ms)",
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
                if let Some(at) = dir.next_at()
                    && !self.holds_back(c, d)
                {
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
        }
        best.map(|(at, ev)| (at.max(self.now), ev))
    }

    fn run(mut self) -> Report {
        while let Some((at, ev)) = self.next_event() {
            self.step();
            self.now = at;
            if self.now > self.last_action_at + SETTLE {
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
            }
        }
        self.report.end_ms = self.now;
        self.check();
        self.report
    }

    // ---- flow control (with backpressure) ----

    /// Whether the receiver of direction `d` of link `c` is paused for this peer:
    /// its bytes stay in the pipe (a peer still greeting is fed, as by the host).
    fn holds_back(&self, c: usize, d: usize) -> bool {
        let end = &self.conns[c].ends[1 - d];
        let node = &self.nodes[end.node];
        !node.flow.feeds(end.peer) && node.node.is_ready(end.peer)
    }

    /// When node `i`'s shell next finds a peer stalled, if nothing moves.
    fn stall_at(&self, i: usize) -> Option<u64> {
        self.sc.backpressure?;
        let node = &self.nodes[i];
        node.peers
            .keys()
            .filter_map(|&peer| node.flow.stall_at(peer))
            .map(Instant::as_millis)
            .min()
    }

    /// Moves what the pipe has room for from the sender's queue onto the wire.
    fn pump(&mut self, c: usize, e: usize) {
        let Some(bp) = self.sc.backpressure else {
            return;
        };
        let now = self.now;
        let (node, peer) = (self.conns[c].ends[e].node, self.conns[c].ends[e].peer);
        let slow = self.nodes[self.conns[c].ends[1 - e].node].slow;
        let jitter = self.rng.below(if slow { 20 } else { 8 });
        let dir = &mut self.conns[c].dirs[e];
        if dir.dead {
            return;
        }
        let room = bp.window.saturating_sub(dir.held());
        let n = room.min(dir.queue.len());
        let at = (now + dir.latency + jitter).max(dir.last_arrival);
        if n > 0 {
            dir.last_arrival = at;
            let bytes: Vec<u8> = dir.queue.drain(..n).collect();
            dir.segs.push_back((at, Seg::Bytes(bytes)));
        }
        if dir.queue.is_empty() && dir.fin_queued {
            dir.fin_queued = false;
            dir.last_arrival = at;
            dir.segs.push_back((at, Seg::Fin));
        }
        if n > 0 {
            self.nodes[node]
                .flow
                .taken(Instant::from_millis(now), peer, n);
        }
    }

    /// The peers of node `i` whose bytes wait in their pipes, unfed: their sign of life.
    fn held(&self, i: usize) -> Vec<PeerId> {
        if self.sc.backpressure.is_none() {
            return Vec::new();
        }
        self.nodes[i]
            .peers
            .keys()
            .copied()
            .filter(|&peer| {
                self.end_of(i, peer)
                    .is_some_and(|(c, e)| self.conns[c].dirs[1 - e].arrived(self.now))
            })
            .collect()
    }

    /// Drops every peer of node `i` that took nothing for the stall timeout, as
    /// the host does: the connection is cut and the node told why.
    fn drop_stalled(&mut self, i: usize) {
        let now = Instant::from_millis(self.now);
        let (due, _) = self.nodes[i].flow.stalled(now);
        let due: Vec<PeerId> = due.collect();
        for peer in due {
            self.report.stalls += 1;
            self.trace(|| format!("n{i} drops {peer}: not reading"));
            self.nodes[i].flow.forget(peer);
            let Some((c, e)) = self.end_of(i, peer) else {
                continue;
            };
            self.cut(c, Some((e, "not reading")));
        }
    }

    // ---- feeding nodes ----

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

    fn command_error(&mut self, i: usize, e: NodeError<'_>) {
        let text = format!("{e:?}");
        self.trace(|| format!("n{i} error {text}"));
        if let NodeError::WindowFull(peer) = e {
            self.report.unicasts_refused += 1;
            let waiting = self.awaiting_receipt(i, peer);
            let ours = self
                .expect_sent
                .is_some_and(|u| self.unicasts[u].peer == peer);
            if !ours || waiting < WINDOW {
                self.violation(format!(
                    "n{i}: a send to {peer} refused ({e}), but {waiting} message(s) to it \
                     await their receipt, fewer than the window of {WINDOW}"
                ));
            }
        } else {
            self.violation(format!("n{i}: input refused: {e} ({text})"));
        }
        if let Some(u) = self.expect_sent.take() {
            self.by_text.retain(|_, &mut v| v != u);
        }
        if let Some(b) = self.expect_bcast.take() {
            self.bcast_by_text.retain(|_, &mut v| v != b);
        }
    }

    /// Gives node `i` bytes from `peer`, honouring `Consumed(n)`: the rest is
    /// fed again after draining. Returns how many were taken.
    fn feed(&mut self, i: usize, peer: PeerId, bytes: &[u8]) -> usize {
        let mut off = 0;
        let mut stalled = false;
        while off < bytes.len() {
            self.step();
            let now = Instant::from_millis(self.now);
            let rest = &bytes[off..];
            let result = self.nodes[i]
                .node
                .handle_input(now, Input::Received { peer, bytes: rest });
            let n = match result {
                Ok(Handled::Consumed(n)) => n,
                other => {
                    self.violation(format!("n{i}: Received answered {other:?}"));
                    bytes.len() - off
                }
            };
            self.trace(|| format!("n{i} <- {} bytes from {peer}, took {n}", rest.len()));
            if n > rest.len() {
                self.violation(format!("n{i}: consumed {n} of {} bytes", rest.len()));
            }
            off += n.min(rest.len());
            self.drain(i);
            if n == 0 {
                if stalled {
                    self.violation(format!(
                        "n{i}: took none of {} bytes from {peer} even after a full drain",
                        rest.len()
                    ));
                    return off;
                }
                stalled = true;
            } else {
                stalled = false;
            }
        }
        off
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

    // ---- outputs ----

    /// The simulator's own count of node `i`'s unicasts to `peer` that were sent
    /// and have had no receipt yet: what fills the node's window.
    fn awaiting_receipt(&self, i: usize, peer: PeerId) -> usize {
        self.unicasts
            .iter()
            .filter(|u| u.from == i && u.peer == peer && u.id.is_some() && u.receipts.is_empty())
            .count()
    }

    fn end_of(&self, i: usize, peer: PeerId) -> Option<(usize, usize)> {
        let c = self.nodes[i].peers.get(&peer)?.conn?;
        let e = self.conns[c]
            .ends
            .iter()
            .position(|end| end.node == i && end.peer == peer)?;
        Some((c, e))
    }

    fn transmit(&mut self, i: usize, peer: PeerId, data: Vec<u8>) {
        self.trace(|| format!("n{i} -> {} bytes to {peer}", data.len()));
        let Some((c, e)) = self.end_of(i, peer) else {
            self.violation(format!("n{i}: transmit to {peer}, which has no connection"));
            return;
        };
        if self.sc.backpressure.is_some() {
            let dir = &mut self.conns[c].dirs[e];
            if dir.dead || data.is_empty() {
                return;
            }
            dir.queue.extend(&data);
            let flow = &mut self.nodes[i].flow;
            flow.queued(Instant::from_millis(self.now), peer, data.len());
            self.report.max_backlog = self.report.max_backlog.max(flow.backlog(peer));
            self.pump(c, e);
            return;
        }
        let slow = self.nodes[self.conns[c].ends[1 - e].node].slow;
        let jitter = self.rng.below(if slow { 20 } else { 8 });
        let dir = &mut self.conns[c].dirs[e];
        if dir.dead || data.is_empty() {
            return;
        }
        let at = (self.now + dir.latency + jitter).max(dir.last_arrival);
        dir.last_arrival = at;
        dir.segs.push_back((at, Seg::Bytes(data)));
    }

    fn connect(&mut self, i: usize, peer: PeerId, host: &str, port: u16) {
        self.trace(|| format!("n{i} dials {host}:{port} as {peer}"));
        let Some(to) = node_of(host).filter(|&n| n < self.nodes.len() && port == PORT) else {
            self.violation(format!("n{i}: dial to unknown {host}:{port}"));
            return;
        };
        self.nodes[i].peers.insert(
            peer,
            PeerView {
                remote: to,
                conn: None,
                ready: false,
            },
        );
        let at = self.now + self.rng.range(1, 20);
        self.dials.push(PendingDial {
            at,
            node: i,
            peer,
            to,
            cancelled: false,
        });
    }

    fn close(&mut self, i: usize, peer: PeerId) {
        self.trace(|| format!("n{i} closes {peer}"));
        let end = self.end_of(i, peer);
        self.nodes[i].peers.remove(&peer);
        self.nodes[i].flow.forget(peer);
        let Some((c, e)) = end else {
            // Still dialling: the dial is abandoned.
            for d in &mut self.dials {
                if d.node == i && d.peer == peer {
                    d.cancelled = true;
                }
            }
            return;
        };
        let now = self.now;
        let conn = &mut self.conns[c];
        conn.ends[e].alive = false;
        conn.down_at.get_or_insert(now);
        // Our socket is gone: what the other side sends is lost.
        conn.dirs[1 - e].clear();
        let out = &mut conn.dirs[e];
        if !out.queue.is_empty() {
            // The shell writes what it holds for the peer before the FIN.
            out.fin_queued = true;
        } else if !out.dead {
            let at = (now + out.latency).max(out.last_arrival);
            out.last_arrival = at;
            out.segs.push_back((at, Seg::Fin));
        }
    }

    fn dial(&mut self, d: PendingDial) {
        if d.cancelled || !self.nodes[d.node].peers.contains_key(&d.peer) {
            return;
        }
        let c = self.conns.len();
        let from_addr = SocketAddr::new(ip(d.node), 40_000 + c as u16);
        let to_addr = SocketAddr::new(ip(d.to), PORT);
        let Some(Handled::Accepted(accepted)) =
            self.input(d.to, Input::Accepted { addr: from_addr })
        else {
            self.violation(format!("n{}: refused a connection from n{}", d.to, d.node));
            let reason = "refused";
            self.input(
                d.node,
                Input::ConnectFailed {
                    peer: d.peer,
                    reason,
                },
            );
            return;
        };
        let latency = [self.rng.range(1, 30), self.rng.range(1, 30)];
        let dir = |latency| Dir {
            latency,
            ..Dir::default()
        };
        self.conns.push(Conn {
            ends: [
                End {
                    node: d.node,
                    peer: d.peer,
                    alive: true,
                    ready_at: None,
                },
                End {
                    node: d.to,
                    peer: accepted,
                    alive: true,
                    ready_at: None,
                },
            ],
            dirs: [dir(latency[0]), dir(latency[1])],
            down_at: None,
            opened_at: self.now,
        });
        self.nodes[d.to].peers.insert(
            accepted,
            PeerView {
                remote: d.node,
                conn: Some(c),
                ready: false,
            },
        );
        if let Some(v) = self.nodes[d.node].peers.get_mut(&d.peer) {
            v.conn = Some(c);
        }
        self.input(
            d.node,
            Input::Connected {
                peer: d.peer,
                addr: to_addr,
            },
        );
    }

    // ---- pipes ----

    fn deliver(&mut self, c: usize, d: usize) {
        let now = self.now;
        let to = self.conns[c].ends[1 - d].node;
        let peer = self.conns[c].ends[1 - d].peer;
        let slow = self.nodes[to].slow;
        let dir = &mut self.conns[c].dirs[d];
        while let Some((at, Seg::Bytes(_))) = dir.segs.front() {
            if *at > now {
                break;
            }
            if let Some((_, Seg::Bytes(b))) = dir.segs.pop_front() {
                dir.rx.extend(b);
            }
        }
        if dir.rx.is_empty() {
            // Only a FIN can be due now.
            if let Some(&(at, Seg::Fin)) = dir.segs.front()
                && at <= now
            {
                dir.segs.pop_front();
                dir.dead = true;
                let end = &mut self.conns[c].ends[1 - d];
                if end.alive {
                    end.alive = false;
                    self.conns[c].down_at.get_or_insert(now);
                    self.input(to, Input::Closed { peer, error: None });
                }
            }
            return;
        }
        let max = if slow {
            self.rng.range(1, 16)
        } else {
            match self.rng.below(4) {
                0 => self.rng.range(1, 16),
                1 => self.rng.range(1, 256),
                _ => self.rng.range(1, 4096),
            }
        };
        let gap = if slow {
            self.rng.range(1, 4)
        } else {
            self.rng.below(3)
        };
        let dir = &mut self.conns[c].dirs[d];
        let chunk: Vec<u8> = dir.rx.iter().take(max as usize).copied().collect();
        dir.ready_at = now + gap;
        let alive = self.conns[c].ends[1 - d].alive;
        let taken = if alive {
            self.feed(to, peer, &chunk)
        } else {
            chunk.len()
        };
        let dir = &mut self.conns[c].dirs[d];
        if !dir.dead {
            dir.rx.drain(..taken.min(dir.rx.len()));
            // Room in the pipe: the sender's shell writes on.
            self.pump(c, d);
        }
    }

    fn reset(&mut self, c: usize) {
        self.report.resets += 1;
        self.trace(|| format!("reset conn {c}"));
        self.cut(c, None);
    }

    /// Resets link `c`; the shell of end `e` (if given) cut it, for the reason given.
    fn cut(&mut self, c: usize, by: Option<(usize, &str)>) {
        let now = self.now;
        let conn = &mut self.conns[c];
        conn.dirs[0].clear();
        conn.dirs[1].clear();
        conn.down_at.get_or_insert(now);
        for e in 0..2 {
            let end = &mut self.conns[c].ends[e];
            if end.alive {
                end.alive = false;
                let (node, peer) = (end.node, end.peer);
                self.nodes[node].flow.forget(peer);
                let error = match by {
                    Some((by, why)) if by == e => why,
                    _ => "reset",
                };
                self.input(
                    node,
                    Input::Closed {
                        peer,
                        error: Some(error),
                    },
                );
            }
        }
    }

    // ---- scripted actions ----

    fn ready_peers(&self, i: usize) -> Vec<(PeerId, PeerView)> {
        self.nodes[i]
            .peers
            .iter()
            .filter(|(_, v)| v.ready)
            .map(|(&p, &v)| (p, v))
            .collect()
    }

    fn command(&mut self, i: usize, line: &str) {
        self.nodes[i].commands += 1;
        match command::parse(line) {
            Ok(Some(cmd)) => {
                self.input(i, Input::Command(cmd));
            }
            other => self.violation(format!("`{line}` parsed as {other:?}")),
        }
    }

    fn text(&mut self, kind: char, from: usize) -> String {
        let n = self.nodes[from].sent;
        self.nodes[from].sent += 1;
        let mut text = format!("{kind}{from}-{n}");
        let pad = match self.rng.below(4) {
            0 => 0,
            1 => self.rng.range(1, 40),
            2 => self.rng.range(40, 400),
            _ => self.rng.range(400, SimNode::MAX_TEXT as u64),
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
    /// it has is new or down; with a link up for [`READY_WITHIN`], the node failed
    /// to make it ready. Where nothing failed, checked again in [`Sim::check`].
    fn skipped_send(&mut self, i: usize) {
        if !self.edges.iter().any(|&(a, b)| a == i || b == i) {
            self.report.sends_isolated += 1;
        }
        self.skipped.push((self.now, i));
        let now = self.now;
        let up = self.conns.iter().position(|c| {
            c.ends.iter().all(|e| e.alive)
                && c.ends.iter().any(|e| e.node == i)
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

    fn act(&mut self, action: Action) {
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

    // ---- events ----

    fn event(&mut self, i: usize, e: Event<String>) {
        self.trace(|| format!("n{i} event {e:?}"));
        match e {
            Event::Connected {
                peer, alias, kind, ..
            } => {
                let Some(view) = self.nodes[i].peers.get(&peer).copied() else {
                    self.violation(format!("n{i}: Connected for unknown {peer}"));
                    return;
                };
                if kind != Kind::Native {
                    self.violation(format!(
                        "n{i}: n{} became a {kind:?} peer, not native",
                        view.remote
                    ));
                }
                if !is_alias_of(&alias, view.remote) {
                    self.violation(format!("n{i}: n{} got alias {alias:?}", view.remote));
                }
                if view.ready {
                    self.violation(format!("n{i}: Connected twice for {peer}"));
                }
                if let Some(v) = self.nodes[i].peers.get_mut(&peer) {
                    v.ready = true;
                }
                if let Some((c, e)) = self.end_of(i, peer) {
                    let conn = &mut self.conns[c];
                    conn.ends[e].ready_at = Some(self.now);
                    if conn.ends.iter().all(|e| e.ready_at.is_some()) {
                        let took = self.now - conn.opened_at;
                        self.report.slowest_ready_ms = self.report.slowest_ready_ms.max(took);
                    }
                }
            }
            Event::ConnectFailed { peer, reason, .. } => {
                self.nodes[i].peers.remove(&peer);
                self.violation(format!("n{i}: connect failed: {reason}"));
            }
            Event::Refused { addr, .. } => {
                self.violation(format!(
                    "n{i}: refused {addr}, but no node here is a one-peer chat"
                ));
            }
            Event::Message {
                peer,
                from,
                text,
                room: None,
            } => {
                let via = self.end_of(i, peer).map(|(c, _)| c);
                let order = self.shown_order;
                self.shown_order += 1;
                match self.by_text.get(key(&text)).copied() {
                    Some(u) => self.unicasts[u].shown.push((i, via, from, self.now, order)),
                    None => self.violation(format!("n{i}: unknown message {:?}", key(&text))),
                }
            }
            Event::Message {
                peer,
                from,
                text,
                room: Some(room),
            } => {
                let Some(b) = self.bcast_by_text.get(key(&text)).copied() else {
                    self.violation(format!("n{i}: unknown room message {:?}", key(&text)));
                    return;
                };
                let sender = self.bcasts[b].from;
                let origin_ok = room.origin == self.nodes[sender].id
                    && Some(room.seq) == self.bcasts[b].seq
                    && from == name(sender);
                if !origin_ok {
                    let bad = format!("n{i} got it as {room:?} from {from:?} via {peer}");
                    self.bcasts[b].bad.push(bad);
                }
                *self.bcasts[b].shown.entry(i).or_default() += 1;
            }
            Event::Sent { peer, id, receipt } => {
                let Some(u) = self.expect_sent.take() else {
                    self.violation(format!("n{i}: Sent {id} to {peer} that nobody sent"));
                    return;
                };
                if !receipt || peer != self.unicasts[u].peer {
                    self.violation(format!(
                        "n{i}: Sent {id} to {peer} (receipt {receipt}) for a message to {}",
                        self.unicasts[u].peer
                    ));
                }
                self.unicasts[u].id = Some(id);
                self.report.unicasts_sent += 1;
            }
            Event::Delivered { peer, id } | Event::Undelivered { peer, id } => {
                let delivered = matches!(e, Event::Delivered { .. });
                let found = self
                    .unicasts
                    .iter()
                    .position(|u| u.from == i && u.peer == peer && u.id == Some(id));
                let Some(u) = found else {
                    self.violation(format!("n{i}: receipt for unknown message {id} to {peer}"));
                    return;
                };
                let r = if delivered {
                    Receipt::Delivered(self.now)
                } else {
                    Receipt::Undelivered(self.now)
                };
                self.unicasts[u].receipts.push(r);
            }
            Event::Broadcast { seq, peers } => {
                let Some(b) = self.expect_bcast.take() else {
                    self.violation(format!("n{i}: Broadcast {seq} that nobody sent"));
                    return;
                };
                if peers != self.bcasts[b].peers {
                    self.violation(format!(
                        "n{i}: broadcast went to {peers} peers, {} were ready",
                        self.bcasts[b].peers
                    ));
                }
                self.bcasts[b].seq = Some(seq);
                self.report.broadcasts_sent += 1;
            }
            Event::Alias { .. } => {}
            Event::Disconnected { peer, reason, .. } => {
                if let Reason::Fault(f) = reason {
                    self.violation(format!("n{i}: dropped {peer} for a protocol fault: {f}"));
                }
                if let Some((c, e)) = self.end_of(i, peer) {
                    self.conns[c].ends[e].alive = false;
                    self.conns[c].down_at.get_or_insert(self.now);
                }
                self.nodes[i].peers.remove(&peer);
                self.nodes[i].flow.forget(peer);
            }
        }
    }

    // ---- the checks ----

    fn check(&mut self) {
        let faulty = self.sc.faulty() || self.report.stalls > 0;
        let mut v = Vec::new();
        if let Some(bp) = self.sc.backpressure {
            self.check_flow(bp, &mut v);
        }
        let r = &self.report;
        let accounted = r.unicasts_sent + r.unicasts_refused + r.unicasts_skipped;
        if accounted != r.unicasts_scripted {
            v.push(format!(
                "{} unicasts scripted, but {} sent, {} refused and {} skipped",
                r.unicasts_scripted, r.unicasts_sent, r.unicasts_refused, r.unicasts_skipped
            ));
        }
        let accounted = r.broadcasts_sent + r.broadcasts_skipped;
        if accounted != r.broadcasts_scripted {
            v.push(format!(
                "{} broadcasts scripted, but {} sent and {} skipped",
                r.broadcasts_scripted, r.broadcasts_sent, r.broadcasts_skipped
            ));
        }
        if !faulty {
            // Every node with a link has a ready peer once setup is over.
            for &(at, node) in &self.skipped {
                let links = self.edges.iter().filter(|&&(a, b)| a == node || b == node);
                let links = links.count();
                if links > 0 {
                    v.push(format!(
                        "t={at}ms: n{node} skipped a scripted send with no ready peer, \
                         though it has {links} link(s) and nothing failed"
                    ));
                }
            }
            // A second link between two nodes is closed as a duplicate: one stays.
            let up = self.conns.iter().filter(|c| c.down_at.is_none()).count();
            let pairs = self.edges.len();
            if up != pairs {
                v.push(format!(
                    "{up} links up at the end, for {pairs} linked pairs"
                ));
            }
        }
        // Unicasts.
        let mut per_link: BTreeMap<(usize, usize), Vec<Shown>> = BTreeMap::new();
        for (u, m) in self.unicasts.iter().enumerate() {
            let Some(id) = m.id else { continue };
            let what = format!("unicast #{u} n{}->n{} (id {id})", m.from, m.to);
            if m.shown.len() > 1 {
                v.push(format!("{what} shown {} times", m.shown.len()));
            }
            for (node, via, from, _, order) in &m.shown {
                if *node != m.to || *via != Some(m.conn) || !is_alias_of(from, m.from) {
                    v.push(format!(
                        "{what} shown at n{node} via link {via:?} from {from:?}, sent on link {}",
                        m.conn
                    ));
                }
                // Order within the sender's link: sender's number against showing order.
                per_link
                    .entry((m.conn, m.from))
                    .or_default()
                    .push((*order, id as usize, u));
            }
            match m.receipts.as_slice() {
                [Receipt::Delivered(t)] => {
                    self.report.unicasts_delivered += 1;
                    if !m.shown.iter().any(|s| s.3 <= *t) {
                        v.push(format!("{what}: Delivered but never shown"));
                    }
                }
                [Receipt::Undelivered(_)] => {
                    self.report.unicasts_undelivered += 1;
                    if !faulty {
                        v.push(format!("{what}: Undelivered with no fault"));
                    }
                }
                [] => v.push(format!("{what}: no receipt at all")),
                more => v.push(format!("{what}: receipts {more:?}")),
            }
            let undelivered = m
                .receipts
                .iter()
                .any(|r| matches!(r, Receipt::Undelivered(_)));
            if m.shown.is_empty() && !undelivered {
                v.push(format!("{what}: lost without an Undelivered"));
            }
        }
        for ((link, from), mut shown) in per_link {
            shown.sort();
            for w in shown.windows(2) {
                if w[0].1 > w[1].1 {
                    v.push(format!(
                        "on link {link} from n{from}: message id {} shown after id {} (unicasts #{} #{})",
                        w[1].1, w[0].1, w[1].2, w[0].2
                    ));
                }
            }
        }
        // Broadcasts.
        let n = self.nodes.len();
        let hops = self.sc.hops.map_or(usize::MAX, usize::from);
        for (b, m) in self.bcasts.iter().enumerate() {
            if m.seq.is_none() {
                continue;
            }
            let what = format!("broadcast #{b} from n{} at {} ms", m.from, m.at);
            self.report.broadcast_deliveries += m.shown.values().sum::<usize>();
            for bad in &m.bad {
                v.push(format!("{what}: {bad}"));
            }
            if m.shown.contains_key(&m.from) {
                v.push(format!("{what}: shown at its own sender"));
            }
            for (&node, &times) in &m.shown {
                if times > 1 {
                    v.push(format!("{what}: shown {times} times at n{node}"));
                }
            }
            // Links up at both ends when it was sent and for its whole flight.
            let mut adj = vec![Vec::new(); n];
            for c in &self.conns {
                let ready = c.ends.iter().all(|e| e.ready_at.is_some_and(|t| t <= m.at));
                let stays = c.down_at.is_none_or(|t| t > m.at + FLIGHT);
                if ready && stays {
                    let (x, y) = (c.ends[0].node, c.ends[1].node);
                    adj[x].push(y);
                    adj[y].push(x);
                }
            }
            let mut dist = vec![usize::MAX; n];
            dist[m.from] = 0;
            let mut queue = VecDeque::from([m.from]);
            while let Some(x) = queue.pop_front() {
                for &y in &adj[x] {
                    if dist[y] == usize::MAX {
                        dist[y] = dist[x] + 1;
                        queue.push_back(y);
                    }
                }
            }
            for (node, &d) in dist.iter().enumerate() {
                let got = m.shown.contains_key(&node);
                if d == 0 {
                    continue;
                }
                let must = d <= hops;
                if must && !got && d != usize::MAX {
                    v.push(format!(
                        "{what}: not shown at n{node}, {d} hop(s) away over links that stayed up"
                    ));
                }
                if got && !faulty && d > hops {
                    v.push(format!(
                        "{what}: shown at n{node}, {d} hops away, beyond the limit of {hops}"
                    ));
                }
                if got && !faulty && d == usize::MAX {
                    v.push(format!("{what}: shown at n{node}, outside its component"));
                }
            }
        }
        self.report.violations.extend(v);
    }

    /// Nothing may stay stuck on a link that is up (a wait cycle nobody broke),
    /// and what a shell holds for a peer is bounded by the flow's ceiling plus
    /// what one feed and the person's own commands add.
    fn check_flow(&self, bp: Backpressure, v: &mut Vec<String>) {
        for (c, conn) in self.conns.iter().enumerate() {
            if !conn.ends.iter().all(|e| e.alive) {
                continue;
            }
            for (d, dir) in conn.dirs.iter().enumerate() {
                let (from, to) = (conn.ends[d].node, conn.ends[1 - d].node);
                if !dir.queue.is_empty() || dir.held() > 0 {
                    let paused = self.nodes[to].flow.paused();
                    v.push(format!(
                        "deadlock: link {c} n{from}->n{to} still holds {} queued and {} in the pipe at the end (n{to} paused: {paused})",
                        dir.queue.len(),
                        dir.held()
                    ));
                }
            }
        }
        let most_commands = self.nodes.iter().map(|n| n.commands).max().unwrap_or(0);
        let frame = SimNode::MAX_TEXT + 256;
        // Over the ceiling a paused shell feeds nobody: one feed (a pipe's worth) may pass it.
        let bound = 4 * bp.limits.high_water + 2 * bp.window + most_commands * frame;
        if self.report.max_backlog > bound {
            v.push(format!(
                "a shell held {} bytes for one peer, over the bound of {bound}",
                self.report.max_backlog
            ));
        }
    }
}
