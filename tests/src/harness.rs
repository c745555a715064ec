//! Drives one node by plain function calls, as the node and limits tests do: feed
//! it an input, drain what it asks for into owned [`Out`]s, pick out the bytes
//! sent to a peer or the events shown.

use std::net::SocketAddr;

use meshtalk_core::command;
use meshtalk_core::frame::{Decoded, FrameDecoder};
use meshtalk_core::node::{Config, Event, Handled, Input, Node, Output};
use meshtalk_core::peers::PeerId;
use meshtalk_core::time::Instant;
use meshtalk_core::wire::Message;

/// The node the tests drive: room for 8 peers, 1 KiB frames, 4 KiB queues.
pub type TestNode = Node<8, 1024, 4096>;

/// What a node asked for, owned so a test can keep it.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Tx(PeerId, Vec<u8>),
    Connect(PeerId, String, u16),
    Close(PeerId),
    Ev(Event<String>),
}

/// Polls until the node has nothing more to do; returns the outputs and the timeout.
pub fn drain<const P: usize, const F: usize, const A: usize>(
    node: &mut Node<P, F, A>,
    now: Instant,
) -> (Vec<Out>, Option<Instant>) {
    let mut outs = Vec::new();
    for _ in 0..100_000 {
        match node.poll_output(now) {
            Output::Transmit { peer, data, .. } => outs.push(Out::Tx(peer, data.to_vec())),
            Output::Connect { peer, host, port } => {
                outs.push(Out::Connect(peer, host.into(), port))
            }
            Output::Close { peer } => outs.push(Out::Close(peer)),
            Output::Event(e) => outs.push(Out::Ev(e.map(String::from))),
            Output::Timeout(t) => return (outs, t),
        }
    }
    panic!("drain did not end");
}

/// Hands the node one input (not bytes: see [`receive`]) and drains it.
pub fn input<const P: usize, const F: usize, const A: usize>(
    node: &mut Node<P, F, A>,
    now: Instant,
    input: Input<'_>,
) -> Vec<Out> {
    let handled = node.handle_input(now, input).unwrap();
    assert!(
        !matches!(handled, Handled::Consumed(_)),
        "bytes go through receive(), which feeds the rest"
    );
    drain(node, now).0
}

/// Hands the node one command line, as typed, and drains it.
pub fn command<const P: usize, const F: usize, const A: usize>(
    node: &mut Node<P, F, A>,
    now: Instant,
    line: &str,
) -> Vec<Out> {
    let cmd = command::parse(line).unwrap().unwrap();
    input(node, now, Input::Command(cmd))
}

/// Feeds all of `bytes`, draining whenever the node takes only part.
pub fn receive<const P: usize, const F: usize, const A: usize>(
    node: &mut Node<P, F, A>,
    now: Instant,
    peer: PeerId,
    bytes: &[u8],
) -> Vec<Out> {
    let mut outs = Vec::new();
    let mut rest = bytes;
    for _ in 0..1_000_000 {
        let Handled::Consumed(n) = node
            .handle_input(now, Input::Received { peer, bytes: rest })
            .unwrap()
        else {
            panic!("Received must answer Consumed");
        };
        rest = &rest[n..];
        outs.extend(drain(node, now).0);
        if rest.is_empty() {
            return outs;
        }
    }
    panic!("the node stopped taking bytes");
}

/// Every byte sent to `to`, in order.
/// The messages in `bytes`, a plaintext link's stream of frames, as debug text.
pub fn messages(bytes: &[u8]) -> Vec<String> {
    let mut decoder = FrameDecoder::<4096>::new();
    let mut rest = bytes;
    let mut found = Vec::new();
    loop {
        let (used, got) = decoder.decode(rest);
        match got {
            Decoded::Frame(body) => found.push(format!("{:?}", Message::decode(body).unwrap())),
            Decoded::NeedMore => return found,
            Decoded::Error(e) => panic!("{e}"),
        }
        rest = &rest[used..];
    }
}

pub fn sent_bytes(outs: &[Out], to: PeerId) -> Vec<u8> {
    outs.iter()
        .filter_map(|o| match o {
            Out::Tx(p, data) if *p == to => Some(data.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// The texts of the messages among `events`, in order.
pub fn texts(events: &[Event<String>]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

/// The events among `outs`, in order.
pub fn events(outs: &[Out]) -> Vec<Event<String>> {
    outs.iter()
        .filter_map(|o| match o {
            Out::Ev(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// Two native nodes, alice (`a`, id 1) and bob (`b`, id 2), joined by one connection
/// whose bytes are carried by hand; each side's events are kept.
pub struct Pair {
    pub a: TestNode,
    pub b: TestNode,
    /// The connection as each side names it.
    pub a_to_b: PeerId,
    pub b_to_a: PeerId,
    pub a_events: Vec<Event<String>>,
    pub b_events: Vec<Event<String>>,
    /// Every byte carried between them, both ways, in the order carried.
    pub wire: Vec<u8>,
}

impl Pair {
    /// Alice dials bob, each configured by `config(name, id)`; the events of the
    /// connecting are kept.
    pub fn connect(config: impl Fn(&str, u64) -> Config) -> Pair {
        let now = Instant::from_millis(0);
        let addr = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let mut a = TestNode::new(config("alice", 1));
        let mut b = TestNode::new(config("bob", 2));
        let outs = command(&mut a, now, "connect 127.0.0.1 4000");
        let Some(Out::Connect(a_to_b, host, 4000)) = outs.first().cloned() else {
            panic!("no connect: {outs:?}")
        };
        assert_eq!(host, "127.0.0.1");
        let Handled::Accepted(b_to_a) = b
            .handle_input(
                now,
                Input::Accepted {
                    addr: addr(5000),
                    entropy: [0xb0; 32],
                },
            )
            .unwrap()
        else {
            panic!("not accepted")
        };
        let mut pair = Pair {
            a,
            b,
            a_to_b,
            b_to_a,
            a_events: vec![],
            b_events: vec![],
            wire: vec![],
        };
        let connected = Input::Connected {
            entropy: [0xa0; 32],
            peer: a_to_b,
            addr: addr(4000),
        };
        let outs = input(&mut pair.a, now, connected);
        pair.carry(outs, true);
        pair
    }

    /// Delivers `outs` (from alice if `from_a`) and everything they cause, until quiet.
    pub fn carry(&mut self, outs: Vec<Out>, from_a: bool) {
        let mut queue = vec![(outs, from_a)];
        while let Some((outs, from_a)) = queue.pop() {
            let (events, to, node) = if from_a {
                (&mut self.a_events, self.b_to_a, &mut self.b)
            } else {
                (&mut self.b_events, self.a_to_b, &mut self.a)
            };
            let mut bytes = Vec::new();
            for o in outs {
                match o {
                    Out::Tx(_, data) => bytes.extend(data),
                    Out::Ev(e) => events.push(e),
                    _ => {}
                }
            }
            self.wire.extend(&bytes);
            if !bytes.is_empty() {
                queue.push((receive(node, Instant::from_millis(0), to, &bytes), !from_a));
            }
        }
    }

    /// Alice types `line`; what it causes is carried both ways.
    pub fn a_says(&mut self, line: &str) {
        let outs = command(&mut self.a, Instant::from_millis(0), line);
        self.carry(outs, true);
    }

    /// Bob types `line`; what it causes is carried both ways.
    pub fn b_says(&mut self, line: &str) {
        let outs = command(&mut self.b, Instant::from_millis(0), line);
        self.carry(outs, false);
    }
}
