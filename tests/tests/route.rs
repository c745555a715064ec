//! Routing across the mesh: the originator table (learning, aging, eviction,
//! next hop choice), and direct messages relayed hop by hop with their receipts,
//! on small meshes whose bytes are carried by hand.

use std::collections::VecDeque;
use std::net::SocketAddr;

use meshtalk_core::command;
use meshtalk_core::limits::ANNOUNCE_SOON;
use meshtalk_core::limits::{ROUTE_TTL, ROUTED_WAIT, ROUTES};
use meshtalk_core::node::{
    Config, Event, Handled, Input, Node, NodeError, Output, Routed, Secure, Unroutable,
};
use meshtalk_core::noise::{self, node_id};
use meshtalk_core::peers::{LookupError, PeerId};
use meshtalk_core::route::Origins;
use meshtalk_core::time::{Duration, Instant};
use meshtalk_core::wire::{Message, ROUTED_DELIVERED};
use meshtalk_tests::harness::messages;

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// Peer handles for table tests: the table only compares them.
fn peers() -> (PeerId, PeerId) {
    let mut mesh = Mesh::new(&["a", "b", "c"]);
    let ab = mesh.link(0, 1);
    let ac = mesh.link(0, 2);
    (mesh.links[ab].1, mesh.links[ac].1)
}

const TTL: Duration = Duration::from_secs(60);

// ---- the table ----

#[test]
fn a_route_is_learned_with_its_next_hop_and_distance() {
    let (l1, _) = peers();
    let mut t = Origins::<4>::new(TTL);
    assert!(t.learn(at(0), 7, l1, 3, "carol"));
    let r = t.get(at(0), 7).unwrap();
    assert_eq!(
        (r.node, r.via, r.hops, r.name.as_str()),
        (7, l1, 3, "carol")
    );
    assert!(t.get(at(0), 8).is_none());
}

#[test]
fn a_path_as_short_or_shorter_through_another_link_replaces_the_route() {
    let (l1, l2) = peers();
    let mut t = Origins::<4>::new(TTL);
    t.learn(at(0), 7, l1, 3, "carol");
    assert!(t.learn(at(1), 7, l2, 2, "carol"));
    assert_eq!(t.get(at(1), 7).unwrap().via, l2);
    assert!(
        t.learn(at(2), 7, l1, 2, "carol"),
        "as short: the newer wins"
    );
    assert_eq!(t.get(at(2), 7).unwrap().via, l1);
}

#[test]
fn a_longer_path_through_another_link_leaves_a_fresh_route_alone() {
    let (l1, l2) = peers();
    let mut t = Origins::<4>::new(TTL);
    t.learn(at(0), 7, l1, 2, "carol");
    assert!(!t.learn(at(1), 7, l2, 5, "carol"));
    let r = t.get(at(1), 7).unwrap();
    assert_eq!((r.via, r.hops), (l1, 2));
}

#[test]
fn the_routes_own_link_may_make_it_longer() {
    let (l1, _) = peers();
    let mut t = Origins::<4>::new(TTL);
    t.learn(at(0), 7, l1, 2, "carol");
    assert!(t.learn(at(1), 7, l1, 4, ""));
    let r = t.get(at(1), 7).unwrap();
    assert_eq!(
        (r.hops, r.name.as_str()),
        (4, "carol"),
        "an empty name keeps the name"
    );
}

#[test]
fn a_route_not_heard_again_ages_out_and_any_path_then_replaces_it() {
    let (l1, l2) = peers();
    let mut t = Origins::<4>::new(TTL);
    t.learn(at(0), 7, l1, 1, "carol");
    let later = at(0) + TTL;
    assert!(t.get(later, 7).is_none(), "aged out");
    assert!(t.learn(later, 7, l2, 6, "carol"));
    assert_eq!(t.get(later, 7).unwrap().via, l2);
}

#[test]
fn expiring_forgets_the_aged_routes_and_keeps_the_fresh() {
    let (l1, _) = peers();
    let mut t = Origins::<4>::new(TTL);
    t.learn(at(0), 7, l1, 1, "carol");
    t.learn(at(10), 8, l1, 1, "dave");
    t.expire(at(0) + TTL);
    assert_eq!(t.len(), 1);
    assert!(!t.is_empty() && t.get(at(0) + TTL, 8).is_some());
    t.expire(at(10) + TTL);
    assert!(t.is_empty());
}

#[test]
fn a_dropped_link_takes_its_routes_with_it() {
    let (l1, l2) = peers();
    let mut t = Origins::<4>::new(TTL);
    t.learn(at(0), 7, l1, 1, "carol");
    t.learn(at(0), 8, l1, 2, "dave");
    t.learn(at(0), 9, l2, 2, "erin");
    assert_eq!(t.lose_via(l1), 2);
    assert!(t.get(at(0), 7).is_none() && t.get(at(0), 8).is_none());
    assert!(t.get(at(0), 9).is_some());
}

#[test]
fn a_route_through_a_dropped_link_keeps_its_key_and_name_for_when_it_is_heard_again() {
    let (l1, l2) = peers();
    let mut t = Origins::<4>::new(TTL);
    t.learn(at(0), 7, l1, 1, "carol");
    assert!(t.set_key(7, [9; 32]));
    assert_eq!(t.lose_via(l1), 1);
    assert!(t.get(at(0), 7).is_none(), "not used while lost");
    assert_eq!(t.iter_all().next().map(|r| r.name.as_str()), Some("carol"));
    // Heard again, by a longer way even: used, with the key it had.
    assert!(t.learn(at(1), 7, l2, 3, ""));
    let route = t.get(at(1), 7).unwrap();
    assert_eq!((route.via, route.hops, route.key), (l2, 3, Some([9; 32])));
    assert_eq!(route.name, "carol");
}

#[test]
fn the_first_copy_of_a_new_message_sets_the_route_however_long() {
    let (l1, l2) = peers();
    let mut t = Origins::<4>::new(TTL);
    t.learn(at(0), 7, l1, 1, "carol");
    assert!(
        !t.learn(at(1), 7, l2, 3, ""),
        "a longer way through another link"
    );
    assert!(t.renew(at(1), 7, l2, 3, ""), "the way a new message came");
    assert_eq!(t.get(at(1), 7).map(|r| (r.via, r.hops)), Some((l2, 3)));
    assert!(!t.renew(at(2), 7, l2, 3, ""), "the same way: no change");
}

#[test]
fn a_lost_route_gives_way_before_a_fresh_one_when_the_table_is_full() {
    let (l1, l2) = peers();
    let mut t = Origins::<2>::new(TTL);
    t.learn(at(0), 7, l1, 1, "carol");
    t.learn(at(1), 8, l2, 1, "dave");
    t.lose_via(l2);
    t.learn(at(2), 9, l1, 1, "erin");
    assert!(
        t.get(at(2), 7).is_some(),
        "carol, heard least recently, stays"
    );
    assert!(
        t.iter_all().all(|r| r.node != 8),
        "dave's lost route gave way"
    );
}

#[test]
fn the_least_recently_heard_route_gives_way_when_the_table_is_full() {
    let (l1, _) = peers();
    let mut t = Origins::<2>::new(TTL);
    t.learn(at(0), 7, l1, 1, "carol");
    t.learn(at(1), 8, l1, 1, "dave");
    t.learn(at(2), 7, l1, 1, "carol");
    t.learn(at(3), 9, l1, 1, "erin");
    assert_eq!(t.len(), 2);
    assert!(t.get(at(3), 8).is_none(), "dave was heard least recently");
    assert!(t.get(at(3), 7).is_some() && t.get(at(3), 9).is_some());
}

#[test]
fn a_route_is_found_by_the_name_its_node_announced() {
    let (l1, _) = peers();
    let mut t = Origins::<4>::new(TTL);
    t.learn(at(0), 7, l1, 2, "carol");
    assert_eq!(t.by_name(at(0), "carol").map(|r| r.node), Some(7));
    assert!(t.by_name(at(0), "dave").is_none());
}

#[test]
fn the_table_memory_is_fixed_by_its_capacity() {
    let one = size_of::<Origins<1>>();
    let many = size_of::<Origins<ROUTES>>();
    eprintln!("Origins<1>: {one} bytes, Origins<{ROUTES}>: {many} bytes");
    assert_eq!(many - one, (ROUTES - 1) * (size_of::<Origins<2>>() - one));
}

// ---- direct messages across a mesh ----

type RNode = Node<8, 1024, 4096, ROUTES>;

/// Nodes joined by links whose bytes are carried by hand, in order.
struct Mesh {
    nodes: Vec<RNode>,
    /// (a, a's peer, b, b's peer, up)
    links: Vec<(usize, PeerId, usize, PeerId, bool)>,
    events: Vec<Vec<Event<String>>>,
    now: Instant,
    /// Bytes from this node to this peer are lost (a link failing unseen).
    black_hole: Option<(usize, PeerId)>,
}

enum Out {
    Tx(PeerId, Vec<u8>),
    Connect(PeerId),
    Ev(Event<String>),
    Other,
}

fn drain(node: &mut RNode, now: Instant) -> Vec<Out> {
    let mut outs = Vec::new();
    for _ in 0..100_000 {
        match node.poll_output(now) {
            Output::Transmit { peer, data, .. } => outs.push(Out::Tx(peer, data.to_vec())),
            Output::Connect { peer, .. } => outs.push(Out::Connect(peer)),
            Output::Event(e) => outs.push(Out::Ev(e.map(String::from))),
            Output::Close { .. } => outs.push(Out::Other),
            Output::Timeout(_) => return outs,
        }
    }
    panic!("drain did not end");
}

impl Mesh {
    fn new(names: &[&str]) -> Mesh {
        Self::with(names, |_| None)
    }

    /// Nodes with secure links, each its own key (their ids are their keys').
    fn secure(names: &[&str]) -> Mesh {
        Self::with(names, |i| Some(Secure::new([i as u8 + 1; 32])))
    }

    fn with(names: &[&str], secure: impl Fn(usize) -> Option<Secure>) -> Mesh {
        let nodes = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let mut config = Config::new(n, 100 + i as u64).unwrap();
                config.secure = secure(i);
                RNode::new(config)
            })
            .collect();
        Mesh {
            nodes,
            links: Vec::new(),
            events: vec![Vec::new(); names.len()],
            now: at(0),
            black_hole: None,
        }
    }

    fn addr(i: usize) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, i as u8 + 1], 4000))
    }

    /// `a` dials `b`; returns the link's index once it is ready.
    fn link(&mut self, a: usize, b: usize) -> usize {
        let line = format!("connect 10.0.0.{} 4000", b + 1);
        let cmd = command::parse(&line).unwrap().unwrap();
        let _ = self.nodes[a]
            .handle_input(self.now, Input::Command(cmd))
            .unwrap();
        let outs = drain(&mut self.nodes[a], self.now);
        let Some(&Out::Connect(pa)) = outs.iter().find(|o| matches!(o, Out::Connect(_))) else {
            panic!("no connect")
        };
        let accepted = Input::Accepted {
            addr: Self::addr(a),
            entropy: [a as u8 + 1; 32],
        };
        let Handled::Accepted(pb) = self.nodes[b].handle_input(self.now, accepted).unwrap() else {
            panic!("not accepted")
        };
        self.links.push((a, pa, b, pb, true));
        let connected = Input::Connected {
            entropy: [b as u8 + 101; 32],
            peer: pa,
            addr: Self::addr(b),
        };
        let _ = self.nodes[a].handle_input(self.now, connected).unwrap();
        let mut queue = VecDeque::from([(a, drain(&mut self.nodes[a], self.now))]);
        queue.push_back((b, drain(&mut self.nodes[b], self.now)));
        self.pump(queue);
        self.links.len() - 1
    }

    /// The other end of `node`'s peer `peer`, while its link is up.
    fn far_end(&self, node: usize, peer: PeerId) -> Option<(usize, PeerId)> {
        self.links.iter().find_map(|&(a, pa, b, pb, up)| match up {
            true if (a, pa) == (node, peer) => Some((b, pb)),
            true if (b, pb) == (node, peer) => Some((a, pa)),
            _ => None,
        })
    }

    fn pump(&mut self, mut queue: VecDeque<(usize, Vec<Out>)>) {
        let mut steps = 0;
        while let Some((i, outs)) = queue.pop_front() {
            steps += 1;
            assert!(steps < 100_000, "the mesh does not go quiet");
            for o in outs {
                match o {
                    Out::Ev(e) => self.events[i].push(e),
                    Out::Tx(peer, bytes) => {
                        if self.black_hole == Some((i, peer)) {
                            continue;
                        }
                        let Some((j, pj)) = self.far_end(i, peer) else {
                            continue;
                        };
                        let mut rest = &bytes[..];
                        while !rest.is_empty() {
                            let input = Input::Received {
                                peer: pj,
                                bytes: rest,
                            };
                            let Ok(Handled::Consumed(n)) =
                                self.nodes[j].handle_input(self.now, input)
                            else {
                                panic!("Received must answer Consumed");
                            };
                            rest = &rest[n..];
                            queue.push_back((j, drain(&mut self.nodes[j], self.now)));
                        }
                    }
                    Out::Connect(_) | Out::Other => {}
                }
            }
        }
    }

    /// Node `i` types `line`; what it causes is carried everywhere.
    fn says(&mut self, i: usize, line: &str) -> Result<(), NodeError<'static>> {
        let cmd = command::parse(line).unwrap().unwrap();
        if let Err(e) = self.nodes[i].handle_input(self.now, Input::Command(cmd)) {
            // Owned again: the tests compare the error's kind.
            return Err(match e {
                NodeError::Lookup(LookupError::NoSuchName(_)) => {
                    NodeError::Lookup(LookupError::NoSuchName("?"))
                }
                NodeError::NoRoute(_) => NodeError::NoRoute("?"),
                NodeError::NoKey(_) => NodeError::NoKey("?"),
                NodeError::RoutedFull => NodeError::RoutedFull,
                other => panic!("{other:?}"),
            });
        }
        let outs = drain(&mut self.nodes[i], self.now);
        self.pump(VecDeque::from([(i, outs)]));
        Ok(())
    }

    /// The link `l` drops (both ends see it close).
    fn cut(&mut self, l: usize) {
        let (a, pa, b, pb, _) = self.links[l];
        self.links[l].4 = false;
        let mut queue = VecDeque::new();
        for (n, p) in [(a, pa), (b, pb)] {
            let closed = Input::Closed {
                peer: p,
                error: None,
            };
            let _ = self.nodes[n].handle_input(self.now, closed).unwrap();
            queue.push_back((n, drain(&mut self.nodes[n], self.now)));
        }
        self.pump(queue);
    }

    /// Time passes by `d`; every node's timers fire.
    fn wait(&mut self, d: Duration) {
        self.now = self.now + d;
        let mut queue = VecDeque::new();
        for i in 0..self.nodes.len() {
            let timeout = Input::Timeout { held: &[] };
            let _ = self.nodes[i].handle_input(self.now, timeout).unwrap();
            queue.push_back((i, drain(&mut self.nodes[i], self.now)));
        }
        self.pump(queue);
    }

    /// The routed events of node `i`, taken.
    fn routed(&mut self, i: usize) -> Vec<(u64, String, Routed<String>)> {
        std::mem::take(&mut self.events[i])
            .into_iter()
            .filter_map(|e| match e {
                Event::Routed {
                    node, name, what, ..
                } => Some((node, name, what)),
                _ => None,
            })
            .collect()
    }
}

/// alice - bob - carol in a line; carol has spoken in the room.
fn line() -> Mesh {
    let mut mesh = Mesh::new(&["alice", "bob", "carol"]);
    mesh.link(0, 1);
    mesh.link(1, 2);
    mesh.says(2, "broadcast hello all").unwrap();
    mesh
}

#[test]
fn a_direct_message_crosses_a_relay_and_its_receipt_comes_back() {
    let mut mesh = line();
    mesh.routed(0);
    mesh.says(0, "send carol hi there").unwrap();
    let at_carol = mesh.routed(2);
    assert_eq!(
        at_carol,
        vec![(
            100,
            "alice".into(),
            Routed::Received {
                text: "hi there".into(),
                hops: 2,
                sealed: false,
            }
        )]
    );
    let at_alice = mesh.routed(0);
    assert_eq!(
        at_alice,
        vec![
            (102, "carol".into(), Routed::Sent),
            (102, "carol".into(), Routed::Delivered)
        ]
    );
    assert!(mesh.routed(1).is_empty(), "the relay shows nothing");
    assert!(mesh.nodes[0].routed_awaiting().is_empty());
}

#[test]
fn reachable_lists_nodes_through_the_mesh_with_their_next_hop() {
    let mesh = line();
    let now = mesh.now;
    let reach: Vec<_> = mesh.nodes[0]
        .reachable(now)
        .map(|r| (r.name.to_string(), r.node, r.via_alias.to_string(), r.hops))
        .collect();
    assert_eq!(reach, vec![("carol".into(), 102, "bob".into(), 2)]);
}

#[test]
fn a_name_nobody_heard_of_is_refused_at_once() {
    let mut mesh = Mesh::new(&["alice", "bob", "carol"]);
    mesh.link(0, 1);
    mesh.link(1, 2);
    // carol never spoke: nobody but bob knows her.
    assert_eq!(
        mesh.says(0, "send carol hi"),
        Err(NodeError::Lookup(LookupError::NoSuchName("?")))
    );
    assert!(mesh.nodes[0].routed_awaiting().is_empty());
}

#[test]
fn a_route_aged_out_and_not_heard_again_is_no_route() {
    let mut mesh = line();
    // carol's bytes to bob are lost: her announces no longer refresh the route.
    mesh.black_hole = Some((2, mesh.links[1].3));
    mesh.wait(ROUTE_TTL);
    assert_eq!(mesh.says(0, "send carol hi"), Err(NodeError::NoRoute("?")));
}

#[test]
fn a_relay_that_lost_its_way_answers_at_once_with_no_route() {
    let mut mesh = Mesh::new(&["alice", "bob", "carol", "dave"]);
    mesh.link(0, 1);
    let bc = mesh.link(1, 2);
    mesh.link(2, 3);
    mesh.says(3, "broadcast dave here").unwrap();
    // bob loses carol, and with her the way to dave; alice does not know.
    mesh.cut(bc);
    mesh.routed(0);
    mesh.says(0, "send dave hi").unwrap();
    assert!(mesh.routed(3).is_empty());
    assert_eq!(
        mesh.routed(0),
        vec![
            (103, "dave".into(), Routed::Sent),
            (103, "dave".into(), Routed::Undelivered(Unroutable::NoRoute))
        ]
    );
    assert_eq!(mesh.nodes[1].stats().unrouted, 1);
}

#[test]
fn the_next_hop_dropping_before_the_receipt_is_undelivered_link_lost() {
    let mut mesh = line();
    mesh.black_hole = Some((0, mesh.links[0].1));
    mesh.says(0, "send carol hi").unwrap();
    mesh.routed(0);
    mesh.cut(0);
    assert_eq!(
        mesh.routed(0),
        vec![(
            102,
            "carol".into(),
            Routed::Undelivered(Unroutable::LinkLost)
        )]
    );
}

#[test]
fn a_receipt_that_never_comes_is_undelivered_after_the_wait() {
    let mut mesh = line();
    // bob's bytes to carol are lost, and nobody notices the link failing.
    mesh.black_hole = Some((1, mesh.links[1].1));
    mesh.says(0, "send carol hi").unwrap();
    mesh.routed(0);
    mesh.wait(Duration::from_millis(ROUTED_WAIT.as_millis() - 1));
    assert!(mesh.routed(0).is_empty(), "not yet");
    mesh.wait(Duration::from_millis(1));
    assert_eq!(
        mesh.routed(0),
        vec![(
            102,
            "carol".into(),
            Routed::Undelivered(Unroutable::Timeout)
        )]
    );
}

#[test]
fn a_route_learned_again_is_used_again() {
    let mut mesh = line();
    mesh.cut(1);
    assert!(
        mesh.says(0, "send carol lost").is_ok(),
        "alice still has a way"
    );
    mesh.link(2, 1);
    mesh.says(2, "broadcast back again").unwrap();
    mesh.routed(0);
    mesh.says(0, "send carol found").unwrap();
    let delivered = mesh
        .routed(0)
        .into_iter()
        .any(|(_, _, w)| w == Routed::Delivered);
    assert!(delivered);
}

#[test]
fn a_message_farther_than_its_hop_limit_is_answered_hop_limit() {
    let mut mesh = Mesh::new(&["alice", "bob", "carol", "dave"]);
    let mut config = Config::new("alice", 100).unwrap();
    config.hops = 2;
    mesh.nodes[0] = RNode::new(config);
    mesh.link(0, 1);
    mesh.link(1, 2);
    mesh.link(2, 3);
    mesh.says(3, "broadcast dave here").unwrap();
    mesh.routed(0);
    mesh.says(0, "send dave hi").unwrap();
    assert!(mesh.routed(3).is_empty());
    assert_eq!(
        mesh.routed(0),
        vec![
            (103, "dave".into(), Routed::Sent),
            (
                103,
                "dave".into(),
                Routed::Undelivered(Unroutable::HopLimit)
            )
        ]
    );
}

#[test]
fn a_direct_peer_is_sent_to_directly_not_routed() {
    let mut mesh = line();
    mesh.says(1, "send carol hi").unwrap();
    assert!(mesh.routed(1).is_empty(), "a chat on the link, as before");
    assert!(
        mesh.events[2]
            .iter()
            .any(|e| matches!(e, Event::Message { room: None, .. }))
    );
}

#[test]
fn a_linked_node_is_sent_to_by_its_alias_never_by_its_name_through_the_mesh() {
    let mut mesh = line();
    mesh.says(0, "set_alias bob bobby").unwrap();
    assert_eq!(
        mesh.says(0, "send bob hi"),
        Err(NodeError::Lookup(LookupError::NoSuchName("?")))
    );
}

#[test]
fn a_full_window_of_messages_across_the_mesh_refuses_one_more() {
    let mut mesh = line();
    mesh.black_hole = Some((1, mesh.links[1].1));
    for k in 0..meshtalk_core::limits::ROUTED_WINDOW {
        mesh.says(0, &format!("send carol {k}")).unwrap();
    }
    assert_eq!(
        mesh.says(0, "send carol one more"),
        Err(NodeError::RoutedFull)
    );
    mesh.cut(0);
    let lost = mesh.routed(0);
    let lost = lost
        .iter()
        .filter(|(_, _, w)| *w == Routed::Undelivered(Unroutable::LinkLost));
    assert_eq!(
        lost.count(),
        meshtalk_core::limits::ROUTED_WINDOW,
        "each reported"
    );
}

#[test]
fn the_receipt_finds_its_way_back_through_relays_that_never_heard_the_sender_speak() {
    let mut mesh = Mesh::new(&["alice", "bob", "carol", "dave"]);
    mesh.link(0, 1);
    mesh.link(1, 2);
    mesh.link(2, 3);
    // Only dave speaks: carol learns the way to alice from alice's message itself.
    mesh.says(3, "broadcast dave here").unwrap();
    mesh.routed(0);
    mesh.says(0, "send dave hi").unwrap();
    let outcome = mesh.routed(0).pop().map(|(_, _, w)| w);
    assert_eq!(outcome, Some(Routed::Delivered));
    let now = mesh.now;
    let carol_knows: Vec<_> = mesh.nodes[2]
        .reachable(now)
        .map(|r| (r.node, r.hops))
        .collect();
    assert_eq!(carol_knows, vec![(100, 2)], "alice, two hops away");
}

#[test]
fn a_receipt_refreshes_the_route_it_came_back_by() {
    let mut mesh = line();
    mesh.wait(Duration::from_millis(ROUTE_TTL.as_millis() - 1_000));
    mesh.says(0, "send carol still there?").unwrap();
    mesh.wait(Duration::from_secs(2));
    // Past the TTL of carol's room message, but not of her receipt.
    mesh.routed(0);
    mesh.says(0, "send carol yes").unwrap();
    let outcome = mesh.routed(0).pop().map(|(_, _, w)| w);
    assert_eq!(outcome, Some(Routed::Delivered));
}

// ---- announces, and messages sealed end to end ----

/// `msg` as one frame.
fn frame(msg: &Message<'_>) -> Vec<u8> {
    let mut buf = vec![0; msg.frame_len()];
    let n = msg.encode_frame(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

impl Mesh {
    /// Node `i`'s id.
    fn id(&self, i: usize) -> u64 {
        self.nodes[i].config().node_id
    }

    /// What node `i` holds of the route to node `j`: (next hop's alias, its key).
    fn route_to(&self, i: usize, j: usize) -> Option<(String, Option<[u8; 32]>)> {
        let id = self.id(j);
        self.nodes[i]
            .reachable(self.now)
            .find(|r| r.node == id)
            .map(|r| (r.via_alias.to_string(), r.key.copied()))
    }

    /// Node `i`'s route to the node `id`: (next hop's alias, hops).
    fn route_of(&self, i: usize, id: u64) -> Option<(String, u8)> {
        self.nodes[i]
            .reachable(self.now)
            .find(|r| r.node == id)
            .map(|r| (r.via_alias.to_string(), r.hops))
    }

    /// Node `i` reads `bytes` from its peer `peer` (a plaintext link): what it sent back.
    fn feed(&mut self, i: usize, peer: PeerId, bytes: &[u8]) -> Vec<u8> {
        let input = Input::Received { peer, bytes };
        let _ = self.nodes[i].handle_input(self.now, input).unwrap();
        drain(&mut self.nodes[i], self.now)
            .into_iter()
            .filter_map(|o| match o {
                Out::Tx(to, bytes) if to == peer => Some(bytes),
                _ => None,
            })
            .flatten()
            .collect()
    }
}

fn public(i: usize) -> [u8; 32] {
    noise::public_key(&[i as u8 + 1; 32])
}

#[test]
fn a_secure_nodes_id_is_made_of_its_key_and_the_random_id_it_was_given() {
    let mesh = Mesh::secure(&["alice", "twin"]);
    assert_eq!(mesh.id(0), node_id(&public(0), 100));
    // The same key run twice (one home, two terminals) is two nodes.
    let mut config = Config::new("twin", 101).unwrap();
    config.secure = Some(Secure::new([1; 32]));
    assert_ne!(RNode::new(config).config().node_id, mesh.id(0));
}

#[test]
fn a_direct_message_between_secure_nodes_is_sealed_to_its_destination_and_delivered() {
    let mut mesh = Mesh::secure(&["alice", "bob", "carol"]);
    mesh.link(0, 1);
    mesh.link(1, 2);
    mesh.wait(ANNOUNCE_SOON);
    mesh.routed(0);
    mesh.says(0, "send carol for your eyes only").unwrap();
    let alice = mesh.id(0);
    assert_eq!(
        mesh.routed(2),
        vec![(
            alice,
            "alice".into(),
            Routed::Received {
                text: "for your eyes only".into(),
                hops: 2,
                sealed: true,
            }
        )]
    );
    let outcome = mesh.routed(0).pop().map(|(_, _, w)| w);
    assert_eq!(outcome, Some(Routed::Delivered));
    assert!(mesh.routed(1).is_empty(), "the relay shows nothing");
}

#[test]
fn a_room_message_said_right_after_a_link_came_up_is_preceded_by_its_nodes_announce() {
    let mut mesh = Mesh::secure(&["alice", "bob", "carol"]);
    mesh.link(0, 1);
    mesh.link(1, 2);
    mesh.says(2, "broadcast hello").unwrap();
    assert_eq!(mesh.route_to(0, 2).map(|r| r.1), Some(Some(public(2))));
    mesh.says(0, "send carol hi").unwrap();
    let outcome = mesh.routed(0).pop().map(|(_, _, w)| w);
    assert_eq!(outcome, Some(Routed::Delivered));
}

#[test]
fn a_node_heard_of_before_its_announce_came_cannot_be_sent_to_until_it_does() {
    let mut mesh = Mesh::secure(&["alice", "bob", "carol"]);
    mesh.link(1, 2);
    mesh.wait(ANNOUNCE_SOON);
    // carol announced before alice came: alice hears her speak first.
    mesh.link(0, 1);
    mesh.says(2, "broadcast hello").unwrap();
    assert_eq!(
        mesh.route_to(0, 2).map(|r| r.1),
        Some(None),
        "a route, no key"
    );
    assert_eq!(mesh.says(0, "send carol hi"), Err(NodeError::NoKey("?")));
    // alice's announce is news to carol, who answers with hers.
    mesh.wait(ANNOUNCE_SOON);
    mesh.wait(ANNOUNCE_SOON);
    assert_eq!(mesh.route_to(0, 2).map(|r| r.1), Some(Some(public(2))));
    mesh.says(0, "send carol hi").unwrap();
    let outcome = mesh.routed(0).pop().map(|(_, _, w)| w);
    assert_eq!(outcome, Some(Routed::Delivered));
}

#[test]
fn announces_give_every_node_a_route_to_nodes_that_never_spoke() {
    let mut mesh = Mesh::new(&["alice", "bob", "carol", "dave"]);
    mesh.link(0, 1);
    mesh.link(1, 2);
    mesh.link(2, 3);
    assert_eq!(mesh.route_to(0, 3), None);
    mesh.wait(ANNOUNCE_SOON);
    for (i, j) in [(0, 3), (3, 0), (0, 2), (1, 3)] {
        assert!(mesh.route_to(i, j).is_some(), "{i} to {j}");
    }
    assert_eq!(mesh.route_to(0, 3).unwrap().0, "bob");
}

#[test]
fn a_newcomer_and_the_mesh_learn_each_other_one_announce_round_after_it_links() {
    let mut mesh = Mesh::new(&["alice", "bob", "carol"]);
    mesh.link(0, 1);
    mesh.wait(ANNOUNCE_SOON);
    mesh.link(1, 2);
    // carol's announce tells alice of her; alice, hearing a node new to her,
    // announces herself, and carol learns of alice.
    mesh.wait(ANNOUNCE_SOON);
    mesh.wait(ANNOUNCE_SOON);
    assert!(mesh.route_to(0, 2).is_some());
    assert!(mesh.route_to(2, 0).is_some());
}

#[test]
fn an_announced_key_is_taken_only_when_it_hashes_to_the_announcing_nodes_id() {
    let mut mesh = Mesh::new(&["alice", "bob"]);
    let l = mesh.link(0, 1);
    let from_bob = mesh.links[l].1;
    let key = public(7);
    let honest = node_id(&key, 5);
    for (origin, seq) in [(honest, 1), (4242, 1)] {
        let forged = Message::Announce {
            origin,
            seq,
            hops: 8,
            name: "eve",
            key: &key,
            salt: 5,
        };
        mesh.feed(0, from_bob, &frame(&forged));
    }
    let keys: Vec<_> = mesh.nodes[0]
        .reachable(mesh.now)
        .map(|r| (r.node, r.key.copied()))
        .collect();
    assert!(keys.contains(&(honest, Some(key))), "{keys:?}");
    assert!(keys.contains(&(4242, None)), "{keys:?}");
}

#[test]
fn a_sealed_message_its_destination_cannot_open_is_answered_unreadable() {
    let mut mesh = Mesh::new(&["alice", "bob"]);
    let l = mesh.link(0, 1);
    let at_bob = mesh.links[l].3;
    let sealed = Message::Sealed {
        origin: mesh.id(0),
        dest: mesh.id(1),
        id: 9,
        hops: 8,
        sealed: &[0x55; 120],
    };
    let back = mesh.feed(1, at_bob, &frame(&sealed));
    let code = Unroutable::Unreadable.code();
    assert_ne!(code, ROUTED_DELIVERED);
    let answers = messages(&back);
    assert!(
        answers
            .iter()
            .any(|m| m.starts_with("RoutedAck") && m.contains(&format!("code: {code}"))),
        "{answers:?}"
    );
    assert!(mesh.routed(1).is_empty(), "nothing shown");
}

#[test]
fn a_sealed_message_too_long_to_seal_in_a_frame_is_refused_with_the_limit() {
    let mut mesh = Mesh::secure(&["alice", "bob", "carol"]);
    mesh.link(0, 1);
    mesh.link(1, 2);
    mesh.wait(ANNOUNCE_SOON);
    let max = mesh.nodes[0].max_routed_text();
    assert!(max < mesh.nodes[0].max_text());
    let line = format!("send carol {}", "x".repeat(max + 1));
    let cmd = command::parse(&line).unwrap().unwrap();
    let err = mesh.nodes[0].handle_input(mesh.now, Input::Command(cmd));
    assert_eq!(
        err.map_err(|e| e.to_string()),
        Err(format!(
            "message of {} bytes is too long (max {max})",
            max + 1
        ))
    );
    mesh.says(0, &format!("send carol {}", "x".repeat(max)))
        .unwrap();
    let outcome = mesh.routed(0).pop().map(|(_, _, w)| w);
    assert_eq!(outcome, Some(Routed::Delivered));
}

#[test]
fn a_nodes_newer_announce_sets_the_way_it_came_even_a_longer_one() {
    let mut mesh = Mesh::new(&["alice", "bob", "carol"]);
    let ab = mesh.link(0, 1);
    let ac = mesh.link(0, 2);
    let (from_bob, from_carol) = (mesh.links[ab].1, mesh.links[ac].1);
    let announce = |seq, hops| Message::Announce {
        origin: 4242,
        seq,
        hops,
        name: "erin",
        key: &[],
        salt: 0,
    };
    mesh.feed(0, from_bob, &frame(&announce(1, 8)));
    assert_eq!(mesh.route_of(0, 4242), Some(("bob".into(), 1)));
    // A later copy of the same announce by a longer way changes nothing...
    mesh.feed(0, from_carol, &frame(&announce(1, 6)));
    assert_eq!(mesh.route_of(0, 4242), Some(("bob".into(), 1)));
    // ...but the first copy of a newer one is the way now (bob's may be broken).
    mesh.feed(0, from_carol, &frame(&announce(2, 5)));
    assert_eq!(mesh.route_of(0, 4242), Some(("carol".into(), 4)));
}
