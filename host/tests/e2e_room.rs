//! End to end: the room a `mesh --hub` gives plain-text clients (netcat, telnet), and
//! `--reconnect` that can be stopped. Real `meshtalk` processes on 127.0.0.1, plain
//! TCP clients for the text peers; every wait is bounded, children are killed on drop.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::home::TempDir;
use common::proc::Proc as Node;
use serde_json::Value;

/// The longest any one expected event or line may take.
const WAIT: Duration = Duration::from_secs(20);

/// A plain TCP client of a node, read line by line.
struct Client {
    reader: BufReader<TcpStream>,
    /// Its address as the node sees it.
    addr: String,
}

impl Client {
    /// Connects to `node` without a word: its kind is not known until it speaks or
    /// the greeting time is up.
    fn connect(node: &Node) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", node.port)).expect("connect");
        stream.set_read_timeout(Some(WAIT)).expect("read timeout");
        let addr = stream.local_addr().expect("addr").to_string();
        Client {
            reader: BufReader::new(stream),
            addr,
        }
    }

    /// Connects, and waits until `node` has it as a text peer; its alias there.
    fn join(node: &Node) -> (Client, String) {
        let client = Client::connect(node);
        let connected = node.expect("connected", WAIT, |e| e["addr"] == client.addr.as_str());
        assert_eq!(connected["kind"], "text", "{connected}");
        let alias = connected["alias"].as_str().expect("alias").to_string();
        (client, alias)
    }

    fn say(&mut self, line: &str) {
        let stream = self.reader.get_mut();
        stream
            .write_all(format!("{line}\n").as_bytes())
            .expect("write");
    }

    /// The next line, without its newline; fails the test at the read timeout.
    fn line(&mut self) -> String {
        let mut raw = Vec::new();
        let n = self.reader.read_until(b'\n', &mut raw).expect("a line");
        assert!(n > 0, "closed before a line");
        String::from_utf8_lossy(&raw)
            .trim_end_matches('\n')
            .to_string()
    }

    /// Lines up to and including the first one for which `wanted` holds (at most 50).
    fn line_where(&mut self, wanted: impl Fn(&str) -> bool) -> (String, Vec<String>) {
        let mut before = Vec::new();
        for _ in 0..50 {
            let line = self.line();
            if wanted(&line) {
                return (line, before);
            }
            before.push(line);
        }
        panic!("no such line among {before:?}")
    }
}

fn hub() -> Node {
    Node::json_mesh("hub", 0, &["--hub"], WAIT)
}

#[test]
fn a_hubs_own_room_messages_reach_text_peers_tagged_and_its_direct_ones_marked_as_to_them() {
    let mut hub = hub();
    let (mut client, _) = Client::join(&hub);
    hub.type_line("broadcast hello room");
    let (line, _) = client.line_where(|l| l.contains("hello room"));
    assert_eq!(line, "<hub> hello room");
    hub.type_line("send #1 just for you");
    let (line, _) = client.line_where(|l| l.contains("just for you"));
    assert_eq!(line, "<hub> (to you) just for you");
}

#[test]
fn text_peers_of_a_hub_hear_of_joins_and_leaves_as_notices() {
    let hub = hub();
    let (mut one, _) = Client::join(&hub);
    let (two, alias_two) = Client::join(&hub);
    let (line, _) = one.line_where(|l| l.contains("joined"));
    assert_eq!(line, format!("* {alias_two} joined"));
    drop(two);
    let (line, _) = one.line_where(|l| l.contains("left"));
    assert_eq!(line, format!("* {alias_two} left"));
}

#[test]
fn a_text_peer_of_a_hub_chooses_its_name_with_nick_and_lists_the_room_with_who() {
    let mut hub = hub();
    let mut native = Node::json_mesh("nat", 0, &[], WAIT);
    common::proc::link(&mut native, &hub, None, WAIT);
    let (mut one, alias_one) = Client::join(&hub);
    let (mut two, _) = Client::join(&hub);
    one.say("/nick dave");
    let (line, _) = one.line_where(|l| l.contains("dave"));
    assert_eq!(line, "* you are now dave");
    let (line, _) = two.line_where(|l| l.contains("dave"));
    assert_eq!(line, format!("* {alias_one} is now known as dave"));
    hub.expect("alias", WAIT, |e| e["alias"] == "dave");
    // Its lines carry the name, at the hub, to text peers and across the mesh.
    one.say("hi from dave");
    let (line, _) = two.line_where(|l| l.contains("hi from dave"));
    assert_eq!(line, "<dave> hi from dave");
    let heard = native.expect("message", WAIT, |e| e["text"] == "hi from dave");
    assert_eq!(heard["from"], "dave", "{heard}");
    // A name taken is refused, to the asker only.
    two.say("/nick dave");
    let (line, _) = two.line_where(|l| l.starts_with("* "));
    assert_eq!(line, "* dave is taken; choose another");
    two.say("/who");
    let (line, _) = two.line_where(|l| l.starts_with("* in the room"));
    let members: Vec<&str> = line
        .trim_start_matches("* in the room: ")
        .split(", ")
        .collect();
    assert!(members.contains(&"hub (hub)"), "{line}");
    assert!(members.contains(&"dave"), "{line}");
    assert!(members.contains(&"nat"), "{line}");
    assert!(members.iter().any(|m| m.ends_with(" (you)")), "{line}");
    // Neither command was said to the room.
    hub.type_line("help");
    let said = events_until(&hub, "help");
    assert!(
        said.iter()
            .all(|e| e["event"] != "message" || !e["text"].as_str().unwrap_or("").starts_with('/')),
        "a command went to the room: {said:?}"
    );
}

#[test]
fn a_text_peer_that_has_just_connected_gets_what_the_room_said_before_its_kind_was_known() {
    let mut hub = hub();
    let (mut one, alias_one) = Client::join(&hub);
    // Connected and silent: for the next 500 ms the hub does not know how it talks.
    let mut newcomer = Client::connect(&hub);
    // The hub has accepted it (its accept can lag on a busy machine) and still
    // waits to learn its kind: listed as greeting.
    let mut state = Value::Null;
    for _ in 0..50 {
        hub.type_line("list");
        let list = hub.expect("peers", WAIT, |_| true);
        state = list["peers"]
            .as_array()
            .and_then(|peers| peers.iter().find(|p| p["addr"] == newcomer.addr.as_str()))
            .map_or(Value::Null, |p| p["state"].clone());
        if !state.is_null() {
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(state, "greeting", "the newcomer is not waiting to be known");
    one.say("said while you were connecting");
    // The hub's events are in order: the newcomer is not announced before the line,
    // so its kind was still undecided when the room said it.
    let before_said = events_until(&hub, "message");
    assert!(
        before_said
            .iter()
            .all(|e| e["event"] != "connected" || e["addr"] != newcomer.addr.as_str()),
        "the newcomer's kind was decided before the line was said: {before_said:?}"
    );
    // Like a client that connects and waits 300 ms before reading.
    thread::sleep(Duration::from_millis(300));
    let (line, before) = newcomer.line_where(|l| l.contains("said while you were connecting"));
    assert_eq!(
        line,
        format!("<{alias_one}> said while you were connecting")
    );
    assert!(before.iter().all(|l| l.starts_with("* ")), "{before:?}");
    hub.expect("connected", WAIT, |e| e["addr"] == newcomer.addr.as_str());
}

#[test]
fn a_peer_being_redialled_keeps_its_number_and_alias_is_listed_as_reconnecting_and_disconnect_stops_it()
 {
    // Carol comes back as herself: her key, which dave pinned, with her.
    let home = TempDir::new("carol");
    let carol = Node::json_mesh_in(home.path(), "carol", 0, &[], WAIT);
    let port = carol.port;
    let mut dave = Node::json_mesh("dave", 0, &["--reconnect"], WAIT);
    dave.type_line(&format!("connect 127.0.0.1 {port} cc"));
    let first = dave.expect("connected", WAIT, |e| e["alias"] == "cc");
    let number = first["peer"].as_u64().expect("peer number");
    drop(carol);
    dave.expect("disconnected", WAIT, |e| e["alias"] == "cc");
    let again = dave.expect("reconnecting", WAIT, |_| true);
    assert_eq!(again["peer"], number, "{again}");

    // Listed, by its number and alias, with when it is dialled next.
    dave.type_line("list");
    let list = dave.expect("peers", WAIT, |_| true);
    let peers = list["peers"].as_array().expect("peers");
    assert_eq!(peers.len(), 1, "{list}");
    assert_eq!(peers[0]["peer"], number, "{list}");
    assert_eq!(peers[0]["alias"], "cc", "{list}");
    assert!(
        ["reconnecting", "dialing"].contains(&peers[0]["state"].as_str().unwrap_or("")),
        "{list}"
    );

    // Back: the same number and alias.
    let carol = Node::json_mesh_in(home.path(), "carol", port, &[], WAIT);
    let back = dave.expect("connected", WAIT, |e| e["alias"] == "cc");
    assert_eq!(back["peer"], number, "{back}");

    // Dropped again, then disconnected while waiting: no more dials.
    drop(carol);
    dave.expect("reconnecting", WAIT, |e| e["peer"] == number);
    dave.type_line("disconnect cc");
    let gone = dave.expect("disconnected", WAIT, |e| e["peer"] == number);
    assert_eq!(gone["reason"], "disconnected here", "{gone}");
    let carol = Node::json_mesh_in(home.path(), "carol", port, &[], WAIT);
    // The first re-dial would have come within 1 s; wait past it.
    thread::sleep(Duration::from_millis(2500));
    dave.type_line("help");
    let said = events_until(&dave, "help");
    assert!(
        said.iter()
            .all(|e| e["event"] != "reconnecting" && e["event"] != "connected"),
        "dialled again: {said:?}"
    );
    assert!(
        carol
            .wait_for("connected", Duration::from_millis(200), |_| true)
            .is_none(),
        "carol was dialled"
    );
}

/// Every event up to the next one named `event` (bounded).
fn events_until(node: &Node, event: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = node
            .recv(left)
            .unwrap_or_else(|e| panic!("{}: no '{event}' event within {WAIT:?} ({e})", node.name));
        let value: Value = serde_json::from_str(&line).expect("JSON");
        if value["event"] == event {
            return seen;
        }
        seen.push(value);
    }
}
