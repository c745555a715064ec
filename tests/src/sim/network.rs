//! The simulated network: links of two directional pipes that keep TCP's order
//! but rechunk and delay bytes by the seed, with bounded pipes and the shells'
//! write queues under backpressure; dials, closes, resets and cuts.

use super::*;

pub(super) enum Seg {
    Bytes(Vec<u8>),
    Fin,
}

#[derive(Default)]
pub(super) struct Dir {
    /// Segments on the wire, with their arrival times (non-decreasing).
    pub(super) segs: VecDeque<(u64, Seg)>,
    /// Arrived, not yet taken by the node.
    pub(super) rx: VecDeque<u8>,
    /// The first this-many bytes of `rx` were read as one chunk that the shell
    /// still holds (its turn was cut or its input paused): nothing more is read
    /// until the node has taken them, as the host reads a socket.
    pub(super) pending: usize,
    /// The receiver reads again no earlier than this.
    pub(super) ready_at: u64,
    pub(super) last_arrival: u64,
    /// The receiving socket is gone: bytes are dropped.
    pub(super) dead: bool,
    pub(super) latency: u64,
    /// With backpressure: bytes the sender's shell holds until the pipe has room,
    /// and whether its FIN goes after them.
    pub(super) queue: VecDeque<u8>,
    pub(super) fin_queued: bool,
    /// On a link in the clear: the sender's frames as it wrote them, and the
    /// receiver's as it took them ([`Scenario::plaintext`]).
    pub(super) watch_tx: Option<Box<Watch>>,
    pub(super) watch_rx: Option<Box<Watch>>,
}

impl Dir {
    pub(super) fn next_at(&self) -> Option<u64> {
        if self.dead || self.pending > 0 {
            return None;
        }
        if !self.rx.is_empty() {
            return Some(self.ready_at);
        }
        self.segs.front().map(|&(at, _)| at.max(self.ready_at))
    }

    pub(super) fn clear(&mut self) {
        self.segs.clear();
        self.rx.clear();
        self.pending = 0;
        self.queue.clear();
        self.fin_queued = false;
        self.dead = true;
    }

    /// Whether bytes have arrived that the receiver has not taken.
    pub(super) fn arrived(&self, now: u64) -> bool {
        !self.rx.is_empty() || self.segs.front().is_some_and(|&(at, _)| at <= now)
    }

    /// Bytes on the wire and unread.
    pub(super) fn held(&self) -> usize {
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

pub(super) struct End {
    pub(super) node: usize,
    pub(super) peer: PeerId,
    /// The node still has this peer.
    pub(super) alive: bool,
    /// When the node reported it ready.
    pub(super) ready_at: Option<u64>,
    /// The node closed it for another room key ([`PeerError::RoomKey`]).
    pub(super) room_refused: bool,
}

pub(super) struct Conn {
    pub(super) ends: [End; 2],
    /// `dirs[e]` carries bytes from end `e` to end `1 - e`.
    pub(super) dirs: [Dir; 2],
    /// When either end first went away.
    pub(super) down_at: Option<u64>,
    /// When a byte of it was flipped on the wire: from then on it need carry
    /// nothing (a flipped length bit holds it open, waiting for a frame that
    /// never ends, until the receiver's frame timeout closes it).
    pub(super) tampered_at: Option<u64>,
    /// When the dial was accepted.
    pub(super) opened_at: u64,
}

pub(super) struct PendingDial {
    pub(super) at: u64,
    pub(super) node: usize,
    pub(super) peer: PeerId,
    pub(super) to: usize,
    pub(super) cancelled: bool,
}

impl Sim {
    /// Moves what the pipe has room for from the sender's queue onto the wire.
    pub(super) fn pump(&mut self, c: usize, e: usize) {
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
    pub(super) fn held(&self, i: usize) -> Vec<PeerId> {
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

    pub(super) fn transmit(&mut self, i: usize, peer: PeerId, data: Vec<u8>) {
        self.trace(|| format!("n{i} -> {} bytes to {peer}", data.len()));
        let Some((c, e)) = self.end_of(i, peer) else {
            self.violation(format!("n{i}: transmit to {peer}, which has no connection"));
            return;
        };
        if !self.conns[c].dirs[e].dead {
            self.watch_sent(i, c, e, &data);
        }
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

    pub(super) fn connect(&mut self, i: usize, peer: PeerId, host: &str, port: u16) {
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

    pub(super) fn close(&mut self, i: usize, peer: PeerId) {
        self.trace(|| format!("n{i} closes {peer}"));
        let end = self.end_of(i, peer);
        self.nodes[i].peers.remove(&peer);
        self.forget(i, peer);
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

    pub(super) fn dial(&mut self, d: PendingDial) {
        if d.cancelled || !self.nodes[d.node].peers.contains_key(&d.peer) {
            return;
        }
        let c = self.conns.len();
        let from_addr = SocketAddr::new(ip(d.node), 40_000 + c as u16);
        let to_addr = SocketAddr::new(ip(d.to), PORT);
        let entropy = self.keys.key();
        let Some(Handled::Accepted(accepted)) = self.input(
            d.to,
            Input::Accepted {
                addr: from_addr,
                entropy,
            },
        ) else {
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
                    room_refused: false,
                },
                End {
                    node: d.to,
                    peer: accepted,
                    alive: true,
                    ready_at: None,
                    room_refused: false,
                },
            ],
            dirs: [dir(latency[0]), dir(latency[1])],
            down_at: None,
            tampered_at: None,
            opened_at: self.now,
        });
        if self.sc.plaintext {
            for dir in &mut self.conns[c].dirs {
                dir.watch_tx = Some(Watch::new());
                dir.watch_rx = Some(Watch::new());
            }
        }
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
        let entropy = self.keys.key();
        self.input(
            d.node,
            Input::Connected {
                entropy,
                peer: d.peer,
                addr: to_addr,
            },
        );
    }

    pub(super) fn deliver(&mut self, c: usize, d: usize) {
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
        // One read: a chunk that the shell holds until the node took it.
        dir.pending = dir.rx.len().min(max as usize);
        dir.ready_at = now + gap;
        self.feed(c, 1 - d);
    }

    /// Flips one bit of segment `s` on the wire of link `c`, direction `d`.
    pub(super) fn tamper(&mut self, c: usize, d: usize, s: usize) {
        let flip = self.rng.next_u64();
        if let Some((_, Seg::Bytes(bytes))) = self.conns[c].dirs[d].segs.get_mut(s) {
            let at = (flip % bytes.len() as u64) as usize;
            bytes[at] ^= 1 << (flip >> 61);
            self.report.tampers += 1;
            self.conns[c].tampered_at.get_or_insert(self.now);
            let to = &self.conns[c].ends[1 - d];
            self.tampered.insert((to.node, to.peer));
            self.trace(|| format!("tamper conn {c} dir {d} byte {at}"));
        }
    }

    pub(super) fn reset(&mut self, c: usize) {
        self.report.resets += 1;
        self.trace(|| format!("reset conn {c}"));
        self.cut(c, None);
    }

    /// Resets link `c`; the shell of end `e` (if given) cut it, for the reason given.
    pub(super) fn cut(&mut self, c: usize, by: Option<(usize, &str)>) {
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
                self.forget(node, peer);
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
}
