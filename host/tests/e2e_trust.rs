//! End to end: whom a node trusts. Keys pinned on first use (`known_peers`), a
//! known name back with another key (refused, both fingerprints shown, then
//! `/trust`), `--strict-keys`, private rooms (`--room-key`), and text peers in
//! them (`--allow-text`). Each node lives in a home of its own; every wait is
//! bounded and the nodes are killed on drop.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use common::home::{TempDir, live_in};
use common::proc::Proc;
use common::{Node, WAIT, assert_closed, connect};

/// `meshtalk mesh --json` named `name` on a free loopback port, living in
/// `home` (kept by the test, so a node started again there has its keys), with
/// `extra` flags; waits until it listens.
fn node_in(home: &Path, name: &str, extra: &[&str]) -> Node {
    Node::spawn(
        live_in(
            Command::new(env!("CARGO_BIN_EXE_meshtalk"))
                .args(["-q", "mesh", "--port", "0", "--bind", "127.0.0.1", "--json"])
                .args(["--name", name])
                .args(extra),
            home,
        ),
        name,
        true,
    )
}

/// `from` dials `to`.
fn dial(from: &mut Proc, to: &Node) {
    from.type_line(&format!("connect 127.0.0.1 {}", to.port));
}

/// The next `error` event of `node` whose message holds `needle`.
fn error_with(node: &Node, needle: &str) -> String {
    let e = node.expect("error", WAIT, |e| {
        e["message"].as_str().is_some_and(|m| m.contains(needle))
    });
    e["message"].as_str().unwrap_or_default().to_string()
}

/// Types `/trust name` at `node` and waits until it is done.
fn trust(node: &mut Node, name: &str) {
    node.type_line(&format!("/trust {name}"));
    node.expect("help", WAIT, |e| {
        e["text"]
            .as_str()
            .is_some_and(|t| t.contains("trusted now"))
    });
}

/// A room key file made by `meshtalk keygen --room`.
fn room_key(dir: &TempDir, name: &str) -> String {
    let path = dir.path().join(name);
    let made = Command::new(env!("CARGO_BIN_EXE_meshtalk"))
        .args(["keygen", "--room"])
        .arg(&path)
        .output()
        .expect("run keygen");
    assert!(made.status.success(), "{made:?}");
    path.to_string_lossy().into_owned()
}

#[test]
fn the_first_contact_pins_the_key_and_the_next_one_says_known() {
    let (a_home, b_home) = (TempDir::new("alice"), TempDir::new("bob"));
    let alice = node_in(a_home.path(), "alice", &[]);
    let mut bob = node_in(b_home.path(), "bob", &[]);
    dial(&mut bob, &alice);
    let first = alice.expect("connected", WAIT, |e| e["alias"] == "bob");
    assert_eq!(first["encrypted"], true, "{first}");
    assert_eq!(first["key"], "first seen", "{first}");
    let pinned = std::fs::read_to_string(a_home.path().join("config/meshtalk/known_peers"))
        .expect("alice's known_peers");
    assert!(pinned.starts_with("bob "), "{pinned}");
    drop(bob);
    let mut again = node_in(b_home.path(), "bob", &[]);
    dial(&mut again, &alice);
    let known = alice.expect("connected", WAIT, |e| e["alias"] == "bob");
    assert_eq!(known["key"], "known", "{known}");
    assert_eq!(known["fingerprint"], first["fingerprint"]);
}

#[test]
fn a_known_name_with_a_new_key_is_refused_until_trusted() {
    let a_home = TempDir::new("alice");
    let alice = node_in(a_home.path(), "alice", &[]);
    let mut bob = Node::mesh("bob", &[]);
    dial(&mut bob, &alice);
    let first = alice.expect("connected", WAIT, |e| e["alias"] == "bob");
    drop(bob);
    // Someone else, or bob on a new machine: the same name, another key.
    let mut impostor = Node::mesh("bob", &[]);
    dial(&mut impostor, &alice);
    let said = error_with(&alice, "key changed");
    let old = first["fingerprint"].as_str().expect("a fingerprint");
    assert!(said.contains(old), "{said}");
    assert!(said.contains("/trust bob"), "{said}");
    let gone = alice.expect("disconnected", WAIT, |e| e["alias"] == "bob");
    assert!(
        gone["reason"]
            .as_str()
            .is_some_and(|r| r.contains("trusted")),
        "{gone}"
    );
    // Nothing it sent was shown; the impostor was told why.
    impostor.expect("disconnected", WAIT, |e| {
        e["reason"].as_str().is_some_and(|r| r.contains("your key"))
    });
    let mut alice = alice;
    trust(&mut alice, "bob");
    dial(&mut impostor, &alice);
    let trusted = alice.expect("connected", WAIT, |e| e["alias"] == "bob");
    assert_eq!(trusted["key"], "known", "{trusted}");
    assert_ne!(trusted["fingerprint"], first["fingerprint"]);
}

#[test]
fn strict_keys_take_only_names_already_known() {
    let alice = Node::mesh("alice", &["--strict-keys"]);
    let mut bob = Node::mesh("bob", &[]);
    dial(&mut bob, &alice);
    let said = error_with(&alice, "--strict-keys");
    assert!(said.contains("/trust bob"), "{said}");
    alice.expect("disconnected", WAIT, |e| e["alias"] == "bob");
    let mut alice = alice;
    trust(&mut alice, "bob");
    dial(&mut bob, &alice);
    alice.expect("connected", WAIT, |e| {
        e["alias"] == "bob" && e["key"] == "known"
    });
}

#[test]
fn nodes_with_different_room_keys_never_link_and_both_say_why() {
    let keys = TempDir::new("room-keys");
    let (one, two) = (room_key(&keys, "one"), room_key(&keys, "two"));
    let alice = Node::mesh("alice", &["--room-key", &one]);
    let mut bob = Node::mesh("bob", &["--room-key", &two]);
    dial(&mut bob, &alice);
    let why = "not the same room key";
    bob.expect("disconnected", WAIT, |e| {
        e["reason"].as_str().is_some_and(|r| r.contains(why))
    });
    alice.expect("disconnected", WAIT, |e| {
        e["reason"].as_str().is_some_and(|r| r.contains(why))
    });
    // The same key links.
    let mut carol = Node::mesh("carol", &["--room-key", &one]);
    dial(&mut carol, &alice);
    let joined = alice.expect("connected", WAIT, |e| e["alias"] == "carol");
    assert_eq!(joined["encrypted"], true);
}

#[test]
fn a_private_room_refuses_a_text_peer_unless_it_allows_text() {
    let keys = TempDir::new("room-keys");
    let key = room_key(&keys, "room");
    let private = Node::mesh("alice", &["--room-key", &key]);
    let mut text = connect(&private);
    text.write_all(b"hello from netcat\n").expect("write");
    let told = assert_closed(&text, WAIT);
    let told = String::from_utf8_lossy(&told);
    assert!(told.contains("private meshtalk room"), "{told}");
    private.expect("refused", WAIT, |_| true);

    let open = Node::mesh("bob", &["--room-key", &key, "--allow-text"]);
    let mut text = connect(&open);
    text.write_all(b"hello from netcat\n").expect("write");
    let joined = open.expect("connected", WAIT, |e| e["kind"] == "text");
    assert_eq!(joined["encrypted"], false, "{joined}");
    let said = open.expect("message", WAIT, |e| e["text"] == "hello from netcat");
    assert_eq!(said["encrypted"], false, "its words are marked too: {said}");
}
