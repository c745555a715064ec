//! Drives one node by plain function calls, as the node and limits tests do: feed
//! it an input, drain what it asks for into owned [`Out`]s, pick out the bytes
//! sent to a peer or the events shown.

use meshtalk_core::command;
use meshtalk_core::node::{Event, Handled, Input, Node, Output};
use meshtalk_core::peers::PeerId;
use meshtalk_core::time::Instant;

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
pub fn drain(node: &mut TestNode, now: Instant) -> (Vec<Out>, Option<Instant>) {
    let mut outs = Vec::new();
    for _ in 0..100_000 {
        match node.poll_output(now) {
            Output::Transmit { peer, data } => outs.push(Out::Tx(peer, data.to_vec())),
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

/// Hands the node one input and drains it.
pub fn input(node: &mut TestNode, now: Instant, input: Input<'_>) -> Vec<Out> {
    node.handle_input(now, input).unwrap();
    drain(node, now).0
}

/// Hands the node one command line, as typed, and drains it.
pub fn command(node: &mut TestNode, now: Instant, line: &str) -> Vec<Out> {
    let cmd = command::parse(line).unwrap().unwrap();
    input(node, now, Input::Command(cmd))
}

/// Feeds all of `bytes`, draining whenever the node takes only part.
pub fn receive(node: &mut TestNode, now: Instant, peer: PeerId, bytes: &[u8]) -> Vec<Out> {
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
pub fn sent_bytes(outs: &[Out], to: PeerId) -> Vec<u8> {
    outs.iter()
        .filter_map(|o| match o {
            Out::Tx(p, data) if *p == to => Some(data.clone()),
            _ => None,
        })
        .flatten()
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
