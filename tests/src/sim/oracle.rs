//! What must hold, and what a run did: the bookkeeping of every unicast and
//! broadcast from the nodes' events, the checks after a run, and the report.

use super::*;

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
    /// Unicasts and broadcasts skipped at a node the topology gave no link
    /// within its room.
    pub sends_isolated: usize,
    pub broadcasts_scripted: usize,
    pub broadcasts_sent: usize,
    /// Broadcasts not given to the node: the sender had no ready peer.
    pub broadcasts_skipped: usize,
    pub broadcast_deliveries: usize,
    /// Direct messages across the mesh the scenario scripted: each is sent,
    /// refused (no route known) or skipped (its sender is linked to every node).
    pub routed_scripted: usize,
    pub routed_sent: usize,
    pub routed_refused: usize,
    pub routed_skipped: usize,
    pub routed_delivered: usize,
    pub routed_undelivered: usize,
    /// The most nodes one delivered message crossed.
    pub routed_max_hops: u8,
    /// Direct messages sent once routes worked after a change, and how many
    /// of them were delivered (all must be).
    pub probes: usize,
    pub probes_delivered: usize,
    /// Direct messages sent across a partition, and how many were refused at
    /// once or reported undelivered (all must be).
    pub cut_off_sent: usize,
    pub cut_off_reported: usize,
    /// How the routes converged after each change ([`Scenario::changes`]).
    pub convergence: Vec<Convergence>,
    /// Rounds of room messages made after changes.
    pub rounds_run: usize,
    /// Routing frames decoded on the wire (links in the clear), and of those
    /// the relays checked for going back or going twice.
    pub frames_watched: u64,
    pub relays_watched: u64,
    /// The most nodes one node listed as reachable through the mesh, at any check.
    pub max_reachable: usize,
    pub resets: usize,
    /// Bytes flipped on the wire of secure links.
    pub tampers: usize,
    /// Links closed for a fault after a byte of theirs was flipped: expected.
    pub tampered_closes: usize,
    /// Private rooms the nodes were split into (1: all in one).
    pub rooms: usize,
    /// Links dialled between nodes of different rooms.
    pub cross_room_links: usize,
    /// Ends of such links closed for another room key, as they must be.
    pub room_refusals: usize,
    /// Nodes of a room message's room that no path of its room's links joins
    /// to its sender (other rooms' nodes between): kept from it, per message.
    pub room_cut_off: usize,
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
    /// Turns the shells' feeders cut at their budget, over all nodes (the kit counts).
    pub turns_cut: u64,
    /// Times a shell's feeder paused a peer's input for flow control.
    pub feeds_paused: u64,
    /// Pieces a shell dropped because its node took none of them, again and again.
    pub stuck_drops: u64,
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
    /// Of those, skipped at nodes the topology gave no link within their room.
    pub sends_isolated: usize,
    pub faults_scripted: usize,
    pub faults_skipped: usize,
    pub resets: usize,
    pub stalls: usize,
    /// Runs in which a peer was dropped as not reading.
    pub runs_with_stalls: usize,
    pub max_backlog: usize,
    pub slowest_ready_ms: u64,
    /// Links dialled between nodes of different rooms.
    pub cross_room_links: usize,
    /// Ends of those closed for another room key.
    pub room_refusals: usize,
    /// Nodes a room message was kept from: of its room, but cut off from its
    /// sender by other rooms (per message).
    pub room_cut_off: usize,
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
        cross_room_links: 0,
        room_refusals: 0,
        room_cut_off: 0,
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
        self.cross_room_links += r.cross_room_links;
        self.room_refusals += r.room_refusals;
        self.room_cut_off += r.room_cut_off;
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
        self.cross_room_links += o.cross_room_links;
        self.room_refusals += o.room_refusals;
        self.room_cut_off += o.room_cut_off;
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
             slowest link ready in {} ms; {} links across rooms, {} ends closed for the room key, \
             {} room deliveries owed to nobody (cut off by other rooms); {} steps",
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
            self.cross_room_links,
            self.room_refusals,
            self.room_cut_off,
            self.steps
        )
    }
}

/// One unicast shown on a link: (showing order, the sender's id, unicast index).
pub(super) type Shown = (u64, usize, usize);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Receipt {
    Delivered(u64),
    Undelivered(u64),
}

pub(super) struct Unicast {
    pub(super) from: usize,
    pub(super) to: usize,
    pub(super) conn: usize,
    /// The sender's number for it, from its `Sent` event.
    pub(super) id: Option<u32>,
    pub(super) peer: PeerId,
    /// (node, conn, time, order) for every time it was shown.
    pub(super) shown: Vec<(usize, Option<usize>, String, u64, u64)>,
    pub(super) receipts: Vec<Receipt>,
}

/// A direct message across the mesh, as the simulator followed it.
pub(super) struct RoutedMsg {
    pub(super) from: usize,
    pub(super) to: usize,
    pub(super) at: u64,
    /// The sender's id for it, from its `Routed::Sent` event.
    pub(super) id: Option<u32>,
    /// The node refused the command at once, and why.
    pub(super) refused: Option<String>,
    /// (node, time, hops) for every time it was shown.
    pub(super) shown: Vec<(usize, u64, u8)>,
    /// Every outcome its sender reported, and when.
    pub(super) outcomes: Vec<(Routed<String>, u64)>,
    /// What it must come to.
    pub(super) expect: Expect,
    /// The change under way when it was sent.
    pub(super) change: Option<usize>,
}

/// What a direct message across the mesh must come to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Expect {
    /// Delivered, or reported undelivered if something failed.
    Either,
    /// Delivered once with its receipt: routes worked when it was sent, and
    /// nothing changes until it is settled.
    Delivered,
    /// Refused at once or reported undelivered: no link path reached its
    /// destination when it was sent, and none comes until it is settled.
    Unreachable,
}

pub(super) struct Bcast {
    pub(super) from: usize,
    pub(super) at: u64,
    pub(super) seq: Option<u32>,
    /// Ready peers when sent, as the harness saw them.
    pub(super) peers: usize,
    /// Receiving node, how many times.
    pub(super) shown: BTreeMap<usize, usize>,
    pub(super) bad: Vec<String>,
}

/// The first word of a message text: its tracking key (`u3-7`, `b2-1`).
pub(super) fn key(text: &str) -> &str {
    text.split(' ').next().unwrap_or(text)
}

impl Sim {
    pub(super) fn violation(&mut self, what: String) {
        let line = format!("t={}ms: {what}", self.now);
        self.report.violations.push(line);
    }

    pub(super) fn command_error(&mut self, i: usize, e: NodeError<'_>) {
        let text = format!("{e:?}");
        self.trace(|| format!("n{i} error {text}"));
        let no_route = matches!(
            e,
            NodeError::NoRoute(_) | NodeError::Lookup(LookupError::NoSuchName(_))
        );
        if let Some(r) = self.expect_routed.filter(|_| no_route) {
            self.report.routed_refused += 1;
            self.routed[r].refused = Some(e.to_string());
            return;
        }
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

    /// The simulator's own count of node `i`'s unicasts to `peer` that were sent
    /// and have had no receipt yet: what fills the node's window.
    pub(super) fn awaiting_receipt(&self, i: usize, peer: PeerId) -> usize {
        self.unicasts
            .iter()
            .filter(|u| u.from == i && u.peer == peer && u.id.is_some() && u.receipts.is_empty())
            .count()
    }

    pub(super) fn event(&mut self, i: usize, e: Event<String>) {
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
                if !self.same_room(i, view.remote) {
                    self.violation(format!(
                        "n{i} ({}): a link to n{} ({}) became ready across rooms",
                        self.room_name(i),
                        view.remote,
                        self.room_name(view.remote)
                    ));
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
                if !self.same_room(i, sender) {
                    let bad = format!(
                        "shown at n{i} ({}), another room than its sender's ({})",
                        self.room_name(i),
                        self.room_name(sender)
                    );
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
            Event::Routed { node, id, what, .. } => self.routed_event(i, node, id, what),
            Event::Alias { .. } => {}
            Event::Vet { .. } => self.violation(format!("n{i}: asked to vet a key unasked")),
            Event::Disconnected { peer, reason, .. } => {
                let tampered = self.tampered.contains(&(i, peer));
                // Its link, though the node may have closed it already: the
                // latest with this end (a peer number is used again only later).
                let link = self.conns.iter().enumerate().rev().find_map(|(c, conn)| {
                    let e = conn
                        .ends
                        .iter()
                        .position(|e| e.node == i && e.peer == peer)?;
                    Some((c, e))
                });
                let across = link.filter(|&(c, _)| {
                    let ends = &self.conns[c].ends;
                    !self.same_room(ends[0].node, ends[1].node)
                });
                match reason {
                    Reason::Fault(_) if tampered => self.report.tampered_closes += 1,
                    Reason::Fault(Fault::Secure(PeerError::RoomKey)) if across.is_some() => {
                        self.report.room_refusals += 1;
                        if let Some((c, e)) = across {
                            self.conns[c].ends[e].room_refused = true;
                        }
                    }
                    Reason::Fault(f) => {
                        self.violation(format!("n{i}: dropped {peer} for a protocol fault: {f}"))
                    }
                    _ => {}
                }
                if let Some((c, e)) = self.end_of(i, peer) {
                    self.conns[c].ends[e].alive = false;
                    self.conns[c].down_at.get_or_insert(self.now);
                }
                self.nodes[i].peers.remove(&peer);
                self.forget(i, peer);
            }
        }
    }

    /// A direct message across the mesh: ours left, settled, or one came.
    pub(super) fn routed_event(&mut self, i: usize, node: u64, id: u32, what: Routed<String>) {
        match what {
            Routed::Sent => {
                let Some(r) = self.expect_routed.take() else {
                    self.violation(format!("n{i}: routed message {id} that nobody sent"));
                    return;
                };
                if node != self.nodes[self.routed[r].to].id {
                    self.violation(format!("n{i}: routed #{r} sent to the wrong node {node:x}"));
                }
                self.routed[r].id = Some(id);
                self.report.routed_sent += 1;
            }
            Routed::Received { text, hops, .. } => {
                let Some(r) = self.routed_by_text.get(key(&text)).copied() else {
                    self.violation(format!("n{i}: unknown routed message {:?}", key(&text)));
                    return;
                };
                if node != self.nodes[self.routed[r].from].id {
                    self.violation(format!("n{i}: routed #{r} from the wrong node {node:x}"));
                }
                self.routed[r].shown.push((i, self.now, hops));
            }
            Routed::Delivered | Routed::Undelivered(_) => {
                let found = self
                    .routed
                    .iter()
                    .position(|m| m.from == i && m.id == Some(id) && self.nodes[m.to].id == node);
                let Some(r) = found else {
                    self.violation(format!("n{i}: outcome for unknown routed message {id}"));
                    return;
                };
                self.routed[r].outcomes.push((what, self.now));
            }
        }
    }

    /// Every direct message across the mesh ended once: refused at once, or
    /// sent and then delivered (shown at its node alone, once) or undelivered.
    /// Where nothing failed, one to a node within reach was delivered and one
    /// to a node out of reach refused.
    fn check_routed(&mut self, faulty: bool, v: &mut Vec<String>) {
        let r = &self.report;
        let accounted = r.routed_sent + r.routed_refused + r.routed_skipped;
        if accounted != r.routed_scripted {
            v.push(format!(
                "{} routed messages scripted, but {} sent, {} refused and {} skipped",
                r.routed_scripted, r.routed_sent, r.routed_refused, r.routed_skipped
            ));
        }
        let hops = usize::from(self.sc.hops.unwrap_or(32));
        for (k, m) in self.routed.iter().enumerate() {
            let what = format!("routed #{k} n{}->n{} at {} ms", m.from, m.to, m.at);
            let reach = self.room_reach(m.from, hops).contains(&m.to);
            let delivered = matches!(m.outcomes.as_slice(), [(Routed::Delivered, _)]);
            match m.expect {
                Expect::Either => {}
                Expect::Delivered => {
                    self.report.probes += 1;
                    if delivered && m.shown.len() == 1 {
                        self.report.probes_delivered += 1;
                    } else {
                        let change = m.change.map(|c| self.sc.changes[c]);
                        v.push(format!(
                            "{what}: sent after {change:?} (routes worked, or the rounds were over), yet refused \
                             ({:?}) or not delivered once ({:?})",
                            m.refused, m.outcomes
                        ));
                    }
                }
                Expect::Unreachable => {
                    self.report.cut_off_sent += 1;
                    let undelivered =
                        matches!(m.outcomes.as_slice(), [(Routed::Undelivered(_), _)]);
                    if (m.refused.is_some() || undelivered) && m.shown.is_empty() {
                        self.report.cut_off_reported += 1;
                    } else {
                        v.push(format!(
                            "{what}: sent across a partition, yet not refused or reported \
                             undelivered ({:?}, shown {} times)",
                            m.outcomes,
                            m.shown.len()
                        ));
                    }
                }
            }
            if m.shown.len() > 1 {
                v.push(format!("{what}: shown {} times", m.shown.len()));
            }
            for &(node, _, h) in &m.shown {
                if node != m.to {
                    v.push(format!("{what}: shown at n{node}"));
                }
                self.report.routed_max_hops = self.report.routed_max_hops.max(h);
            }
            if let Some(why) = &m.refused {
                if !faulty && reach {
                    v.push(format!(
                        "{what}: refused ({why}), though within reach and nothing failed"
                    ));
                }
                if !m.shown.is_empty() || !m.outcomes.is_empty() {
                    v.push(format!("{what}: refused, yet shown or settled"));
                }
                continue;
            }
            if m.id.is_none() {
                continue;
            }
            if !reach && !faulty {
                v.push(format!("{what}: sent to a node out of reach"));
            }
            match m.outcomes.as_slice() {
                [(Routed::Delivered, t)] => {
                    self.report.routed_delivered += 1;
                    if !m.shown.iter().any(|s| s.1 <= *t) {
                        v.push(format!("{what}: delivered but never shown"));
                    }
                }
                [(Routed::Undelivered(why), _)] => {
                    self.report.routed_undelivered += 1;
                    if !faulty {
                        v.push(format!("{what}: undelivered ({why}) with no fault"));
                    }
                }
                [] => v.push(format!("{what}: neither delivered nor undelivered")),
                more => v.push(format!("{what}: outcomes {more:?}")),
            }
        }
        if !faulty {
            let unrouted: u64 = self.nodes.iter().map(|n| n.node.stats().unrouted).sum();
            if unrouted > 0 {
                v.push(format!(
                    "{unrouted} routed messages or receipts dropped with no fault"
                ));
            }
        }
    }

    pub(super) fn check(&mut self) {
        let faulty = self.sc.faulty() || self.report.stalls > 0;
        let mut v = Vec::new();
        self.check_routed(faulty, &mut v);
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
            // Every node with a link in its room has a ready peer once setup is over.
            let room_edges = self.room_edges();
            for &(at, node) in &self.skipped {
                let links = room_edges.iter().filter(|&&(a, b)| a == node || b == node);
                let links = links.count();
                if links > 0 {
                    v.push(format!(
                        "t={at}ms: n{node} skipped a scripted send with no ready peer, \
                         though it has {links} link(s) in its room and nothing failed"
                    ));
                }
            }
            // A second link between two nodes is closed as a duplicate: one stays;
            // a link across rooms is closed by both of its ends, for that.
            let up = self.conns.iter().filter(|c| c.down_at.is_none()).count();
            let pairs = room_edges.len();
            if up != pairs {
                v.push(format!(
                    "{up} links up at the end, for {pairs} linked pairs in a room"
                ));
            }
            for (c, conn) in self.conns.iter().enumerate() {
                let [x, y] = [conn.ends[0].node, conn.ends[1].node];
                if self.same_room(x, y) {
                    continue;
                }
                for end in &conn.ends {
                    if !end.room_refused {
                        v.push(format!(
                            "link {c} n{x}->n{y} across rooms: n{} did not close it \
                             for another room key",
                            end.node
                        ));
                    }
                }
            }
        }
        self.report.cross_room_links = self
            .conns
            .iter()
            .filter(|c| !self.same_room(c.ends[0].node, c.ends[1].node))
            .count();
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
                let down = c.down_at.into_iter().chain(c.tampered_at).min();
                let stays = down.is_none_or(|t| t > m.at + FLIGHT);
                // A link across rooms that became ready is a violation of its own.
                let room = self.same_room(c.ends[0].node, c.ends[1].node);
                if ready && stays && room {
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
            let joined = self.room_reach(m.from, usize::MAX);
            let cut_off = (0..n)
                .filter(|&y| y != m.from && self.same_room(y, m.from) && !joined.contains(&y));
            self.report.room_cut_off += cut_off.count();
            if !faulty {
                // Exactly the nodes its room's links reach, from the topology alone.
                let want = self.room_reach(m.from, hops);
                let got: BTreeSet<usize> = m.shown.keys().copied().collect();
                for node in want.difference(&got) {
                    v.push(format!(
                        "{what}: not shown at n{node}, which its room's links reach"
                    ));
                }
                for node in got.difference(&want) {
                    v.push(format!(
                        "{what}: shown at n{node} ({}), which its room's ({}) links do not reach",
                        self.room_name(*node),
                        self.room_name(m.from)
                    ));
                }
            }
        }
        self.report.violations.extend(v);
    }

    /// Nothing may stay stuck on a link that is up (a wait cycle nobody broke),
    /// and what a shell holds for a peer is bounded by the flow's ceiling plus
    /// what one feed and the person's own commands add.
    pub(super) fn check_flow(&self, bp: Backpressure, v: &mut Vec<String>) {
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
