//! End to end: a direct message across the mesh, from the binary. Three
//! `meshtalk mesh --json` nodes in a line, alice - bob - carol: once carol's
//! announce came through bob, alice lists her as reachable with her key, and
//! `send carol` reaches her sealed, with a receipt. Every wait is bounded.

mod common;

use std::time::Duration;

use common::proc::{Proc as Node, link};

/// The longest any one expected event may take.
const WAIT: Duration = Duration::from_secs(10);

/// Alice lists `name` as reachable through the mesh with its key (its
/// announce came); polled, within `WAIT`. Returns the listing's entry.
fn sealable(alice: &mut Node, name: &str) -> serde_json::Value {
    for _ in 0..50 {
        alice.type_line("list_connections");
        let list = alice.expect("peers", WAIT, |_| true);
        let entry = list["reachable"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["name"] == name).cloned());
        if let Some(entry) = entry.filter(|e| e["fingerprint"].is_string()) {
            return entry;
        }
        std::thread::sleep(WAIT / 50);
    }
    panic!("{name} never listed with a key");
}

/// Alice, bob and carol in a line; carol has said something in the room, and
/// alice heard it through bob.
fn line() -> (Node, Node, Node) {
    let alice = Node::json_mesh("alice", 0, &[], WAIT);
    let mut bob = Node::json_mesh("bob", 0, &[], WAIT);
    let mut carol = Node::json_mesh("carol", 0, &[], WAIT);
    link(&mut bob, &alice, None, WAIT);
    link(&mut carol, &bob, None, WAIT);
    carol.type_line("broadcast carol here");
    alice.expect("message", WAIT, |e| e["text"] == "carol here");
    (alice, bob, carol)
}

#[test]
fn a_direct_message_crosses_a_relay_and_its_receipt_comes_back() {
    let (mut alice, _bob, carol) = line();
    sealable(&mut alice, "carol");
    alice.type_line("send carol hi carol, through bob");
    let got = carol.expect("routed", WAIT, |e| e["what"] == "received");
    assert_eq!(got["text"], "hi carol, through bob");
    assert_eq!(got["name"], "alice");
    assert_eq!(got["hops"], 2);
    assert_eq!(got["sealed"], true, "sealed to carol's key: {got}");
    let sent = alice.expect("routed", WAIT, |e| e["what"] == "sent");
    let done = alice.expect("routed", WAIT, |e| e["what"] == "delivered");
    assert_eq!(done["id"], sent["id"]);
    assert_eq!(done["name"], "carol");
}

#[test]
fn list_connections_shows_a_node_reachable_through_the_mesh_and_by_whom() {
    let (mut alice, _bob, _carol) = line();
    alice.type_line("list_connections");
    let list = alice.expect("peers", WAIT, |_| true);
    let peers = list["peers"].as_array().expect("peers");
    assert_eq!(peers.len(), 1, "one direct link: {list}");
    assert_eq!(peers[0]["alias"], "bob");
    let mesh = list["reachable"].as_array().expect("reachable");
    assert_eq!(mesh.len(), 1, "{list}");
    assert_eq!(mesh[0]["name"], "carol");
    assert_eq!(mesh[0]["via"], "bob");
    assert_eq!(mesh[0]["hops"], 2);
}

#[test]
fn a_direct_message_to_a_node_whose_relay_left_is_reported_undelivered() {
    let (mut alice, bob, _carol) = line();
    drop(bob);
    alice.expect("disconnected", WAIT, |e| e["alias"] == "bob");
    alice.type_line("send carol are you there");
    // Alice has no link left: carol is no peer and no route.
    alice.expect("error", WAIT, |e| {
        e["message"].as_str().is_some_and(|m| m.contains("carol"))
    });
}

#[test]
fn a_node_that_never_spoke_is_reached_by_its_announce_sealed_to_the_key_it_showed() {
    let mut alice = Node::json_mesh("alice", 0, &[], WAIT);
    let mut bob = Node::json_mesh("bob", 0, &[], WAIT);
    let mut carol = Node::json_mesh("carol", 0, &[], WAIT);
    link(&mut bob, &alice, None, WAIT);
    link(&mut carol, &bob, None, WAIT);
    let listed = sealable(&mut alice, "carol");
    assert_eq!(listed["via"], "bob");
    carol.type_line("/whoami");
    let me = carol.expect("help", WAIT, |e| e["fingerprint"].is_string());
    assert_eq!(listed["fingerprint"], me["fingerprint"], "{listed} {me}");
    alice.type_line("send carol are you there");
    let got = carol.expect("routed", WAIT, |e| e["what"] == "received");
    assert_eq!(got["text"], "are you there");
    assert_eq!(got["sealed"], true);
    alice.expect("routed", WAIT, |e| e["what"] == "delivered");
}
