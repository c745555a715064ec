//! What the person sees: one line per event, as human text or as one JSON object.
//!
//! Human text passes every peer-supplied string through [`SafeStr`], so nothing a
//! peer sends can drive the terminal; JSON keeps the exact text (serde_json escapes it).
//! Human lines are stamped with the local time of day and coloured when stdout is
//! a terminal and `NO_COLOR` is unset or empty; with a prompt on screen they are
//! printed above the line being typed, through the prompt's printer.

use std::cell::RefCell;
use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering};

use meshtalk_core::alias::mentions;
use meshtalk_core::display::{SafeMessage, SafeStr, needs_escape};
use meshtalk_core::node::{Event, Kind, PeerInfo, Phase, Reachable, Routed};
use meshtalk_core::noise::Fingerprint;
use meshtalk_core::peers::PeerId;
use meshtalk_core::trust::Trust;
use serde_json::{Value, json};

use crate::reach::Reach;
use crate::screen::{indent, print_line, write_out};
use crate::transcript;

/// Prints events to stdout, in the chosen format.
#[derive(Clone, Copy, Debug)]
pub struct Render {
    pub json: bool,
}

impl Render {
    /// The address the listener got (the port matters when 0 was asked for),
    /// then the addresses peers can reach it at, then this node's key fingerprint,
    /// each on a line of its own (scripts read the address bound off the first).
    pub fn listening(&self, addr: SocketAddr, reach: &Reach, fingerprint: Fingerprint) {
        if self.json {
            let mut event = json!({
                "event": "listening", "addr": addr.to_string(), "port": addr.port(),
                "addresses": addresses(reach), "fingerprint": fingerprint.to_string(),
            });
            if reach.this_machine_only() {
                event["this_machine_only"] = json!(true);
            }
            emit(event);
        } else {
            human(format_args!("listening on {addr}"));
            // An interface's name is the system's, not ours: made safe as a peer's text.
            human(format_args!("{}", SafeStr(&reach.to_string())));
            human(format_args!("your key's fingerprint: {fingerprint}"));
        }
    }

    /// `/whoami`: this node's fingerprint and, when it listens, where it is reached.
    /// With `--json`, a `help` event whose text says both, with them as fields too.
    pub fn whoami(&self, fingerprint: Fingerprint, reach: Option<&Reach>) {
        let key = format!(
            "your key's fingerprint: {fingerprint} (read it to the people you chat with; they \
             compare it with what /verify shows them)"
        );
        if !self.json {
            match reach {
                Some(reach) => print_line(format!("{key}\n{}", SafeStr(&reach.to_string()))),
                None => print_line(key),
            }
            return;
        }
        let mut event = json!({"event": "help", "fingerprint": fingerprint.to_string()});
        match reach {
            Some(reach) => {
                event["text"] = json!(format!("{key}\n{reach}"));
                event["addresses"] = json!(addresses(reach));
                if reach.this_machine_only() {
                    event["this_machine_only"] = json!(true);
                }
            }
            None => event["text"] = json!(key),
        }
        emit(event);
    }

    /// A command or connection that failed; the program goes on.
    pub fn error(&self, message: &str) {
        if self.json {
            emit(json!({"event": "error", "message": message}));
        } else {
            human(format_args!(
                "{}",
                Paint(RED, format_args!("error: {}", SafeStr(message)))
            ));
        }
    }

    /// The help text (ours, never a peer's).
    pub fn help(&self, text: &str) {
        if self.json {
            emit(json!({"event": "help", "text": text}));
        } else {
            print_line(text.trim_end_matches('\n').to_string());
        }
    }

    /// The answer to `list_connections`: the peer list (`redial_in` says how
    /// soon a reconnecting peer is dialled again), then the nodes reachable
    /// through the mesh and by whom.
    pub fn peers<'a>(
        &self,
        peers: impl Iterator<Item = PeerInfo<'a>>,
        redial_in: impl Fn(PeerId) -> Option<std::time::Duration>,
        reachable: impl Iterator<Item = Reachable<'a>>,
    ) {
        let mut reachable: Vec<Reachable<'a>> = reachable.collect();
        reachable.sort_by(|a, b| (a.hops, a.name).cmp(&(b.hops, b.name)));
        // By number, as people count them (the node lists them by slot, and slots are reused).
        let mut peers: Vec<PeerInfo<'a>> = peers.collect();
        peers.sort_by_key(|p| p.id.number());
        let peers = peers.into_iter();
        if self.json {
            let list: Vec<Value> = peers
                .map(|p| {
                    let mut peer = json!({
                        "peer": p.id.number(),
                        "alias": p.alias,
                        "addr": p.addr.map(|a| a.to_string()),
                        "direction": p.direction.name(),
                        "state": p.phase.name(),
                        "unacked": p.unacked,
                    });
                    if let Some(wait) = redial_in(p.id).filter(|_| p.phase == Phase::Reconnecting) {
                        peer["redial_in_ms"] =
                            json!(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
                    }
                    peer
                })
                .collect();
            let mesh: Vec<Value> = reachable
                .iter()
                .map(|r| {
                    json!({
                        "name": r.name,
                        "node": r.node,
                        "via": r.via_alias,
                        "via_peer": r.via.number(),
                        "hops": r.hops,
                        "fingerprint": r.key.map(|k| Fingerprint::of(k).to_string()),
                    })
                })
                .collect();
            emit(json!({"event": "peers", "peers": list, "reachable": mesh}));
            return;
        }
        let mut any = false;
        for p in peers {
            any = true;
            let addr = p.addr.map_or_else(|| "-".to_string(), |a| a.to_string());
            let waiting = match p.unacked {
                0 => String::new(),
                n => format!(", {n} awaiting receipt"),
            };
            let state = match redial_in(p.id).filter(|_| p.phase == Phase::Reconnecting) {
                // Whole seconds, rounded up: "in 0 s" only when it is under way.
                Some(wait) => format!("reconnecting in {} s", wait.as_millis().div_ceil(1000)),
                // Nothing a text peer says is encrypted: said wherever it is listed.
                None if matches!(p.phase, Phase::Ready(Kind::Text(_))) => {
                    format!("{}, unencrypted", p.phase.name())
                }
                None => p.phase.name().to_string(),
            };
            human(format_args!(
                "{} {} ({addr}, {}, {state}{waiting})",
                p.id,
                Name(p.alias),
                p.direction.name(),
            ));
        }
        if !any {
            human(format_args!("no connections"));
        }
        for r in reachable {
            let hops = match r.hops {
                1 => "1 hop".to_string(),
                n => format!("{n} hops"),
            };
            let key = match r.key {
                Some(key) => format!(", key {}", Fingerprint::of(key)),
                None => String::new(),
            };
            human(format_args!(
                "{} through the mesh, via {} ({hops}{key}; send {} ... reaches it)",
                Name(r.name),
                Name(r.via_alias),
                Name(r.name),
            ));
        }
    }

    /// One event from the node; `alias` is the current alias of the event's peer, if
    /// known; `note`, what is known of its link (a secure peer's vetted key).
    pub fn event(&self, event: &Event<String>, alias: Option<&str>, note: Option<&Note>) {
        record(event, alias);
        if self.json {
            write_out(|out| {
                let _ = write_event_json(out, event, note);
            });
        } else {
            let alert = alerts(event);
            let bell = if alert && bell() { "\x07" } else { "" };
            human(format_args!(
                "{}{bell}",
                EventText {
                    event,
                    alias,
                    alert,
                    note,
                    plain_shown: false,
                }
            ));
        }
    }

    /// As [`Render::event`], for an event that answers input line `line`: its JSON
    /// object says so (`"line": N`), so a script knows which command it answers.
    pub fn event_at(
        &self,
        event: &Event<String>,
        alias: Option<&str>,
        line: Option<u64>,
        note: Option<&Note>,
    ) {
        let Some(line) = line.filter(|_| self.json) else {
            return self.event(event, alias, note);
        };
        record(event, alias);
        let mut object = Vec::new();
        let _ = write_event_json(&mut object, event, note);
        if object.ends_with(b"}\n") {
            object.truncate(object.len() - 2);
            let _ = writeln!(object, ",\"line\":{line}}}");
        }
        write_out(|out| {
            let _ = out.write_all(&object);
        });
    }

    /// A command from input line `line` failed: as [`Render::error`], with the line
    /// number (in JSON always; in text when `numbered`, for scripts).
    pub fn error_at(&self, line: u64, numbered: bool, message: &str) {
        if self.json {
            emit(json!({"event": "error", "line": line, "message": message}));
        } else if numbered {
            self.error(&format!("line {line}: {message}"));
        } else {
            self.error(message);
        }
    }
}

impl Render {
    /// `serve` sent a client its log (`lines` messages): the client said `quit`, the
    /// end of its talk, which is shown as this and never as a message.
    pub fn log_sent(&self, peer: PeerId, lines: usize) {
        if self.json {
            emit(json!({"event": "log_sent", "peer": peer.number(), "lines": lines}));
        } else {
            let plural = if lines == 1 { "" } else { "s" };
            human(format_args!(
                "the client is quitting; sent the log ({lines} line{plural})"
            ));
        }
    }

    /// The log a server sent back to `send`: `log:`, then one line each.
    pub fn log(&self, lines: &[String]) {
        if self.json {
            emit(json!({"event": "log", "lines": lines}));
            return;
        }
        human(format_args!("log:"));
        write_out(|out| {
            for line in lines {
                let _ = writeln!(out, "{}", SafeStr(line));
            }
        });
    }

    /// `mesh --reconnect` dials a dropped peer again after `wait`.
    pub fn reconnecting(&self, peer: PeerId, host: &str, port: u16, wait: std::time::Duration) {
        let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        if self.json {
            emit(
                json!({"event": "reconnecting", "peer": peer.number(), "host": host, "port": port, "in_ms": ms}),
            );
        } else {
            let secs = wait.as_secs_f64();
            human(format_args!(
                "reconnecting to {} port {port} in {secs} s",
                SafeStr(host)
            ));
        }
    }

    /// The person's own message to `alias`, as the screen's transcript: `you -> bob: text`.
    pub fn said_to(&self, alias: &str, text: &str) {
        human(format_args!(
            "{} -> {}: {}",
            Paint(BOLD, "you"),
            Name(alias),
            SafeMessage(text)
        ));
    }

    /// The person's own message to the room: `you (room): text`.
    pub fn said_to_room(&self, text: &str) {
        human(format_args!(
            "{} (room): {}",
            Paint(BOLD, "you"),
            SafeMessage(text)
        ));
    }

    /// The person leaves (at a terminal): `left 2 peers`, before the goodbyes go out.
    pub fn goodbye(&self, peers: usize) {
        if !self.json {
            let plural = if peers == 1 { "" } else { "s" };
            human(format_args!("left {peers} peer{plural}; goodbye"));
        }
    }

    /// `send --text` is connected (raw text, no banner).
    pub fn text_connected(&self, addr: SocketAddr) {
        if self.json {
            emit(json!({
                "event": "connected", "addr": addr.to_string(), "direction": "out", "kind": "text",
            }));
        } else {
            human(format_args!("connected to {addr} (plain text)"));
        }
    }
}

/// A message event, to the transcript (if one is kept); `alias` is the sending link's.
fn record(event: &Event<String>, alias: Option<&str>) {
    if let Event::Message {
        from, text, room, ..
    } = event
    {
        let who = match room {
            None => transcript::Line::From(from),
            Some(_) => transcript::Line::Room {
                from,
                via: alias.filter(|via| via != from),
            },
        };
        transcript::write(who, text);
    }
}

/// One event as a JSON line. Keys are in alphabetical order, as serde_json's map
/// writes them; a message, the event a busy room prints for each of its messages,
/// is written directly, without building a map.
fn write_event_json(
    out: &mut dyn Write,
    event: &Event<String>,
    note: Option<&Note>,
) -> std::io::Result<()> {
    let key = match note {
        Some(Note::Key(key)) => Some(key),
        _ => None,
    };
    let value = match event {
        Event::Connected {
            peer,
            alias,
            addr,
            direction: d,
            kind: k,
            encrypted,
        } => json!({
            "event": "connected", "peer": peer.number(), "alias": alias,
            "addr": addr.to_string(), "direction": d.name(), "kind": k.name(),
            "encrypted": encrypted,
            "fingerprint": key.map(|k| k.fingerprint.to_string()),
            "key": key.map(|k| k.trust.name()),
        }),
        Event::ConnectFailed {
            peer,
            alias,
            reason,
        } => json!({
            "event": "connect_failed", "peer": peer.number(), "alias": alias, "reason": reason,
        }),
        Event::Message {
            peer,
            from,
            text,
            room,
        } => {
            if room.is_some() {
                out.write_all(b"{\"broadcast\":true,")?;
            } else {
                out.write_all(b"{")?;
            }
            // A plain-text peer's words, marked as on the screen.
            if matches!(note, Some(Note::Plain)) {
                out.write_all(b"\"encrypted\":false,")?;
            }
            out.write_all(b"\"event\":\"message\",\"from\":")?;
            json_string(out, from)?;
            if let Some(room) = room {
                write!(out, ",\"origin\":\"{:016x}\"", room.origin)?;
            }
            write!(out, ",\"peer\":{}", peer.number())?;
            if let Some(room) = room {
                write!(out, ",\"seq\":{}", room.seq)?;
            }
            out.write_all(b",\"text\":")?;
            json_string(out, text)?;
            return with_json_time(|time| writeln!(out, ",\"time\":\"{time}\"}}"));
        }
        Event::Sent { peer, id, receipt } => {
            json!({"event": "sent", "peer": peer.number(), "id": id, "receipt": receipt})
        }
        Event::Delivered { peer, id } => {
            json!({"event": "delivered", "peer": peer.number(), "id": id})
        }
        Event::Undelivered { peer, id } => {
            json!({"event": "undelivered", "peer": peer.number(), "id": id})
        }
        Event::Broadcast { seq, peers } => {
            json!({"event": "broadcast", "seq": seq, "peers": peers})
        }
        Event::Refused { addr, why } => {
            json!({"event": "refused", "addr": addr.to_string(), "reason": why.to_string()})
        }
        Event::Alias { peer, alias } => {
            json!({"event": "alias", "peer": peer.number(), "alias": alias})
        }
        Event::Vet { peer, alias } => {
            json!({"event": "vet", "peer": peer.number(), "alias": alias})
        }
        Event::Routed {
            peer,
            node,
            name,
            id,
            what,
        } => {
            let mut e = json!({
                "event": "routed", "peer": peer.number(), "node": format!("{node:016x}"),
                "name": name, "id": id,
            });
            match what {
                Routed::Received { text, hops, sealed } => {
                    e["what"] = json!("received");
                    e["text"] = json!(text);
                    e["hops"] = json!(hops);
                    e["sealed"] = json!(sealed);
                }
                Routed::Sent => e["what"] = json!("sent"),
                Routed::Delivered => e["what"] = json!("delivered"),
                Routed::Undelivered(why) => {
                    e["what"] = json!("undelivered");
                    e["reason"] = json!(why.to_string());
                }
            }
            e
        }
        Event::Disconnected {
            peer,
            alias,
            reason,
        } => json!({
            "event": "disconnected", "peer": peer.number(), "alias": alias,
            "reason": reason.to_string(),
        }),
    };
    json_line(out, value)
}

/// The human line for one event, peer-supplied text made safe.
struct EventText<'a> {
    event: &'a Event<String>,
    alias: Option<&'a str>,
    /// A message for the person (a direct one, or one naming them): its author is highlighted.
    alert: bool,
    /// What is known of the peer's link: its key, or that it is plaintext.
    note: Option<&'a Note>,
    /// The plaintext mark is written (the rest of the line follows).
    plain_shown: bool,
}

/// What the shell knows of a peer's link, shown with its events.
#[derive(Clone, Copy, Debug)]
pub enum Note {
    /// A secure link, and its key as vetted.
    Key(KeyNote),
    /// A plain-text peer (netcat): nothing it says is encrypted.
    Plain,
}

/// A secure peer's key as it was vetted: shown with its connected event.
#[derive(Clone, Copy, Debug)]
pub struct KeyNote {
    /// The key's fingerprint, to read aloud and compare.
    pub fingerprint: Fingerprint,
    /// What `known_peers` said of it.
    pub trust: Trust,
}

impl Display for EventText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = |peer: PeerId| PeerName(peer, self.alias);
        match self.event {
            Event::Connected {
                peer,
                alias,
                addr,
                direction: d,
                kind: k,
                encrypted,
            } => {
                write!(
                    f,
                    "{} {peer} {} ({addr}, {}, {}){}",
                    Paint(GREEN, "connected"),
                    Name(alias),
                    d.name(),
                    k.name(),
                    match (encrypted, k) {
                        (true, _) => ", encrypted",
                        (false, Kind::Text(_)) => ", unencrypted",
                        (false, Kind::Native) => "",
                    }
                )?;
                match self.note {
                    Some(Note::Key(key)) => {
                        write!(f, ", key {} ({})", key.fingerprint, key.trust.name())
                    }
                    _ => Ok(()),
                }
            }
            // A plain-text peer's words, marked: anyone on the way could read or change them.
            Event::Message { .. }
                if matches!(self.note, Some(Note::Plain)) && !self.plain_shown =>
            {
                write!(f, "[unencrypted] ")?;
                EventText {
                    plain_shown: true,
                    ..*self
                }
                .fmt(f)
            }
            // The reason says where: `127.0.0.1 port 1: connection refused`.
            Event::ConnectFailed { reason, .. } => write!(
                f,
                "{} {}",
                Paint(YELLOW, "could not connect to"),
                SafeStr(reason)
            ),
            Event::Message {
                from,
                text,
                room: None,
                ..
            } => write!(f, "{}: {}", Author(from, self.alert), SafeMessage(text)),
            Event::Message {
                from,
                text,
                room: Some(_),
                ..
            } if self.alias == Some(from.as_str()) => {
                write!(
                    f,
                    "{} (room): {}",
                    Author(from, self.alert),
                    SafeMessage(text)
                )
            }
            Event::Message {
                peer,
                from,
                text,
                room: Some(_),
            } => write!(
                f,
                "{} (room, via {}): {}",
                Author(from, self.alert),
                who(*peer),
                SafeMessage(text)
            ),
            Event::Sent { peer, id, .. } => write!(f, "sent message {id} to {}", who(*peer)),
            Event::Delivered { peer, id } => {
                let delivered = Paint(GREEN, "delivered");
                write!(f, "{delivered} message {id} to {}", who(*peer))
            }
            Event::Undelivered { peer, id } => {
                let undelivered = Paint(YELLOW, "not delivered:");
                write!(f, "{undelivered} message {id} to {}", who(*peer))
            }
            Event::Broadcast { seq, peers } => {
                write!(f, "broadcast {seq} sent to {peers} peer(s)")
            }
            Event::Refused { addr, why } => write!(f, "refused {addr}: {why}"),
            Event::Alias { peer, alias } => {
                write!(f, "{peer} is now known as {}", SafeStr(alias))
            }
            Event::Routed { name, what, .. } => match what {
                Routed::Received { text, sealed, .. } => {
                    // Sealed end to end is the rule; a message relays could read is marked.
                    let how = if *sealed { "" } else { ", unencrypted" };
                    write!(
                        f,
                        "{} (via mesh{how}): {}",
                        Author(name, self.alert),
                        SafeMessage(text)
                    )
                }
                Routed::Sent => write!(f, "sent to {} through the mesh", SafeStr(name)),
                Routed::Delivered => write!(f, "delivered to {} through the mesh", SafeStr(name)),
                Routed::Undelivered(why) => {
                    write!(f, "not delivered to {}: {why}", SafeStr(name))
                }
            },
            Event::Vet { peer, alias } => {
                write!(f, "{peer} {}: checking its key", SafeStr(alias))
            }
            Event::Disconnected {
                peer,
                alias,
                reason,
            } => write!(
                f,
                "{} {peer} {}: {}",
                Paint(YELLOW, "disconnected"),
                Name(alias),
                SafeStr(&reason.to_string())
            ),
        }
    }
}

/// A peer's name (made safe), in bold and in its own colour when colour is on.
struct Name<'a>(&'a str);

impl Display for Name<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Author(self.0, false).fmt(f)
    }
}

/// A message's author: as a [`Name`], and highlighted (reverse video) when the
/// message is for the person.
struct Author<'a>(&'a str, bool);

impl Display for Author<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !colour() {
            return SafeStr(self.0).fmt(f);
        }
        let style = if self.1 { HIGHLIGHT } else { BOLD };
        let hue = name_colour(self.0);
        write!(f, "\x1b[{style};38;5;{hue}m{}\x1b[0m", SafeStr(self.0))
    }
}

/// Colours of the 256-colour palette, all mid-tone, so that a name reads on a dark
/// and on a light background; red-only and plain green/yellow hues are left to
/// errors and joins/leaves.
const NAME_COLOURS: [u8; 16] = [
    31, 32, 35, 37, 61, 62, 64, 97, 98, 125, 127, 130, 133, 166, 169, 172,
];

/// The colour of `name`: the same every run and on every machine (FNV-1a of its
/// bytes), so a person is recognised by it.
fn name_colour(name: &str) -> u8 {
    let hash = name.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    NAME_COLOURS[hash as usize % NAME_COLOURS.len()]
}

/// Who the person is, and whether a message for them rings the terminal's bell.
struct Alerts {
    name: String,
    bell: bool,
}

static ALERTS: OnceLock<Alerts> = OnceLock::new();

/// Messages for `name` (direct ones, and room ones naming it) are highlighted, and
/// ring the bell when `bell` and stdout is a terminal. Set once, before the driver starts.
pub fn alert_for(name: &str, bell: bool) {
    let bell = bell && std::io::stdout().is_terminal();
    let _ = ALERTS.set(Alerts {
        name: name.to_string(),
        bell,
    });
}

/// Whether `event` is a message for the person: to them directly, or naming them.
fn alerts(event: &Event<String>) -> bool {
    let Some(alerts) = ALERTS.get() else {
        return false;
    };
    match event {
        Event::Message { room: None, .. } => true,
        Event::Message { text, .. } => mentions(text, &alerts.name),
        _ => false,
    }
}

/// Whether messages for the person ring the bell.
fn bell() -> bool {
    ALERTS.get().is_some_and(|a| a.bell)
}

/// A peer shown by alias when known, else by number.
struct PeerName<'a>(PeerId, Option<&'a str>);

impl Display for PeerName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.1 {
            Some(alias) => Name(alias).fmt(f),
            None => self.0.fmt(f),
        }
    }
}

/// The addresses of `reach` as people type them, for a JSON event's `addresses`.
fn addresses(reach: &Reach) -> Vec<String> {
    reach.places().iter().map(ToString::to_string).collect()
}

/// One JSON line on stdout; a closed stdout is not our problem to report.
fn emit(value: Value) {
    write_out(|out| {
        let _ = json_line(out, value);
    });
}

/// `value` with its `time` and a newline, straight to the writer (no `fmt` adapter in
/// between), with its strings safe for a terminal ([`SafeJson`]).
fn json_line(out: &mut dyn Write, mut value: Value) -> std::io::Result<()> {
    if let Value::Object(fields) = &mut value {
        let time = with_json_time(str::to_string);
        fields.insert("time".into(), Value::String(time));
    }
    let mut ser = serde_json::Serializer::with_formatter(&mut *out, SafeJson);
    serde::Serialize::serialize(&value, &mut ser)?;
    out.write_all(b"\n")
}

/// One JSON string, terminal-safe as [`json_line`] writes them.
fn json_string(out: &mut dyn Write, s: &str) -> std::io::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(&mut *out, SafeJson);
    serde::Serialize::serialize(s, &mut ser).map_err(std::io::Error::from)
}

/// serde_json's compact format, except that DEL, C1 controls and bidi controls in
/// strings are written as `\u009b`-style escapes (serde_json escapes C0 already): the
/// same JSON value, and no raw byte on stdout that a terminal would obey.
struct SafeJson;

impl serde_json::ser::Formatter for SafeJson {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut run = 0;
        for (i, c) in fragment.char_indices() {
            if !needs_escape(c) {
                continue;
            }
            // `run` and `i` are char boundaries with run <= i (from `char_indices`).
            writer.write_all(&fragment.as_bytes()[run..i])?;
            // Every such character is in the Basic Multilingual Plane: four hex digits.
            write!(writer, "\\u{:04x}", u32::from(c))?;
            run = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[run..])
    }
}

thread_local! {
    /// The last JSON time stamp made, and the millisecond it is for: a busy room
    /// gets many events a millisecond.
    static JSON_TIME: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
}

/// Calls `use_it` with the local time now in RFC 3339, to the millisecond
/// (`2026-12-07T13:05:09.042+01:00`), as JSON events carry it in `time`.
fn with_json_time<T>(use_it: impl FnOnce(&str) -> T) -> T {
    let now = chrono::Local::now();
    let ms = now.timestamp_millis();
    JSON_TIME.with_borrow_mut(|(at, text)| {
        if *at != ms {
            *at = ms;
            *text = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
        }
        use_it(text)
    })
}

/// One human line, stamped with the local time of day, and the date too when the
/// day changed since the line before.
fn human(line: std::fmt::Arguments<'_>) {
    static DAY: AtomicI32 = AtomicI32::new(NO_DAY);
    let time = stamp(chrono::Local::now().naive_local(), &DAY);
    // Peers' text has no newline of its own (made safe): each one is a message's
    // next line, indented under its author, past the stamp.
    let line = indent(&line.to_string(), time.len() + 3);
    print_line(format!("{} {line}", Paint(DIM, format_args!("[{time}]"))));
}

/// [`stamp`]'s day before the first line.
const NO_DAY: i32 = i32::MIN;

/// `HH:MM:SS` at `now`, or `YYYY-MM-DD HH:MM:SS` when the day is another than the
/// one `day` holds (the last line's; the first line's day is taken as known).
fn stamp(now: chrono::NaiveDateTime, day: &AtomicI32) -> String {
    use chrono::Datelike;
    let today = now.date().num_days_from_ce();
    let before = day.swap(today, Ordering::Relaxed);
    if before == today || before == NO_DAY {
        now.format("%H:%M:%S").to_string()
    } else {
        now.format("%Y-%m-%d %H:%M:%S").to_string()
    }
}

const BOLD: &str = "1";
/// Bold reverse video: readable on dark and light backgrounds alike.
const HIGHLIGHT: &str = "1;7";
const DIM: &str = "2";
const RED: &str = "31";
const GREEN: &str = "32";
const YELLOW: &str = "33";

/// Whether human text is coloured: stdout is a terminal and `NO_COLOR` is unset or empty.
fn colour() -> bool {
    static COLOUR: OnceLock<bool> = OnceLock::new();
    *COLOUR.get_or_init(|| {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        !no_color && std::io::stdout().is_terminal()
    })
}

/// Text in an ANSI style (an SGR code) when colour is on, else plain.
struct Paint<T>(&'static str, T);

impl<T: Display> Display for Paint<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if colour() {
            write!(f, "\x1b[{}m{}\x1b[0m", self.0, self.1)
        } else {
            self.1.fmt(f)
        }
    }
}

/// LAN discovery's findings: a node found, changed or lost, and `/nearby`.
impl Render {
    /// A node nearby was found, changed or lost.
    pub fn nearby_event(&self, change: crate::channel::Change, seen: &crate::channel::Seen) {
        use crate::channel::Change;
        if self.json {
            let mut event = nearby_json(seen);
            event["event"] = json!("nearby");
            event["change"] = json!(change.name());
            emit(event);
            return;
        }
        let who = nearby_name(seen);
        let addrs = nearby_addrs(seen);
        let room = if seen.in_room { " (in your room)" } else { "" };
        match change {
            Change::Found if !seen.name.is_empty() => human(format_args!(
                "nearby: {who} at {addrs}{room}; `connect {}` links to it",
                SafeStr(&seen.name)
            )),
            Change::Found => human(format_args!("nearby: {who} at {addrs}{room}")),
            Change::Changed => human(format_args!("nearby: {who} now at {addrs}{room}")),
            Change::Lost => human(format_args!("nearby: {who} is no longer heard")),
        }
    }

    /// `/nearby`: every node heard, with whether it is linked (`linked(key)`).
    pub fn nearby_list(&self, list: &[crate::channel::Seen], linked: impl Fn(&[u8; 32]) -> bool) {
        if self.json {
            let nodes: Vec<Value> = list
                .iter()
                .map(|seen| {
                    let mut node = nearby_json(seen);
                    node["linked"] = json!(linked(&seen.key));
                    node
                })
                .collect();
            emit(json!({"event": "nearby_list", "nodes": nodes}));
            return;
        }
        if list.is_empty() {
            print_line("no node heard nearby yet (beacons come every few seconds)".into());
            return;
        }
        let mut text = format!("{} node(s) nearby:", list.len());
        for seen in list {
            let ago = seen.last_seen.elapsed().as_secs();
            text.push_str(&format!(
                "\n  {} at {}, heard {ago} s ago{}{}",
                nearby_name(seen),
                nearby_addrs(seen),
                if seen.in_room {
                    ", in your room"
                } else {
                    ", not in your room"
                },
                if linked(&seen.key) { ", linked" } else { "" },
            ));
        }
        print_line(text);
    }
}

/// A node nearby as JSON: name (`null` when unknown), fingerprint, addresses, room, age.
fn nearby_json(seen: &crate::channel::Seen) -> Value {
    let addrs: Vec<String> = seen.addrs.iter().map(ToString::to_string).collect();
    json!({
        "name": (!seen.name.is_empty()).then_some(seen.name.as_str()),
        "fingerprint": Fingerprint::of(&seen.key).to_string(),
        "addrs": addrs,
        "in_room": seen.in_room,
        "last_seen_ms": u64::try_from(seen.last_seen.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// A node nearby for people: its name, else its fingerprint.
fn nearby_name(seen: &crate::channel::Seen) -> String {
    if seen.name.is_empty() {
        format!("a node with key {}", Fingerprint::of(&seen.key))
    } else {
        SafeStr(&seen.name).to_string()
    }
}

/// A node's addresses, comma-separated.
fn nearby_addrs(seen: &crate::channel::Seen) -> String {
    let addrs: Vec<String> = seen.addrs.iter().map(ToString::to_string).collect();
    addrs.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshtalk_core::node::Room;
    use meshtalk_core::peers::{Direction, PeerTable};

    fn peer() -> PeerId {
        let mut table = PeerTable::<(), 4>::new(4);
        table
            .insert(None, Direction::Inbound, None, ())
            .expect("room in the table")
    }

    /// The event's JSON line with its `time` (checked: RFC 3339, about now) shown as `T`.
    fn line(event: &Event<String>) -> String {
        let mut out = Vec::new();
        write_event_json(&mut out, event, None).expect("written to a Vec");
        let line = String::from_utf8(out).expect("JSON is UTF-8");
        let start = line.find("\"time\":\"").expect("a time field") + 8;
        let len = line[start..].find('"').expect("the time's end");
        let time = chrono::DateTime::parse_from_rfc3339(&line[start..start + len])
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        let age = chrono::Local::now().signed_duration_since(time);
        assert!(age.num_seconds().abs() < 60, "{line}");
        format!("{}T{}", &line[..start], &line[start + len..])
    }

    fn message(text: &str, room: Option<Room>) -> Event<String> {
        Event::Message {
            peer: peer(),
            from: "al\"ice".into(),
            text: text.into(),
            room,
        }
    }

    #[test]
    fn a_direct_message_is_the_json_line_of_its_fields() {
        let p = peer().number();
        let text = "hi \"there\"\n\t\u{1b}[31m é";
        let expected =
            json!({"event": "message", "peer": p, "from": "al\"ice", "text": text, "time": "T"});
        assert_eq!(line(&message(text, None)), format!("{expected}\n"));
    }

    #[test]
    fn a_room_message_carries_broadcast_origin_and_seq() {
        let p = peer().number();
        let room = Room {
            origin: 0xab,
            seq: 7,
        };
        let expected = json!({
            "event": "message", "peer": p, "from": "al\"ice", "text": "x",
            "broadcast": true, "origin": "00000000000000ab", "seq": 7, "time": "T",
        });
        assert_eq!(line(&message("x", Some(room))), format!("{expected}\n"));
    }

    #[test]
    fn c1_del_and_bidi_controls_are_written_as_escapes_of_the_same_json_value() {
        let text = "csi\u{9b}2J del\x7f rtl\u{202e}x lrm\u{200e} esc\u{1b} é ☃";
        let out = line(&message(text, None));
        for raw in ['\u{9b}', '\x7f', '\u{202e}', '\u{200e}', '\u{1b}'] {
            assert!(!out.contains(raw), "raw {raw:?} in {out}");
        }
        assert!(
            out.contains("csi\\u009b2J del\\u007f rtl\\u202ex lrm\\u200e esc\\u001b é ☃"),
            "{out}"
        );
        let value: Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(value["text"], text);
        let mut other = Vec::new();
        json_line(&mut other, json!({"event": "error", "message": text})).expect("written");
        let other = String::from_utf8(other).expect("UTF-8");
        assert!(!other.contains('\u{9b}'), "{other}");
        let value: Value = serde_json::from_str(&other).expect("JSON");
        assert_eq!(value["message"], text);
    }

    #[test]
    fn other_events_are_one_json_line_each() {
        let event = Event::Alias {
            peer: peer(),
            alias: "bob".into(),
        };
        let expected =
            json!({"event": "alias", "peer": peer().number(), "alias": "bob", "time": "T"});
        assert_eq!(line(&event), format!("{expected}\n"));
    }

    #[test]
    fn a_name_keeps_its_colour_and_names_spread_over_the_palette() {
        assert_eq!(name_colour("alice"), name_colour("alice"));
        let names = [
            "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
        ];
        let mut colours: Vec<u8> = names.iter().map(|n| name_colour(n)).collect();
        assert!(colours.iter().all(|c| NAME_COLOURS.contains(c)));
        colours.sort_unstable();
        colours.dedup();
        assert!(colours.len() >= 5, "{colours:?}");
    }

    #[test]
    fn the_time_gets_the_date_on_the_first_line_of_a_new_day_only() {
        let at = |text: &str| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").expect("a time")
        };
        let day = AtomicI32::new(NO_DAY);
        assert_eq!(stamp(at("2026-12-07 23:59:58"), &day), "23:59:58");
        assert_eq!(stamp(at("2026-12-07 23:59:59"), &day), "23:59:59");
        assert_eq!(
            stamp(at("2026-12-08 00:00:01"), &day),
            "2026-12-08 00:00:01"
        );
        assert_eq!(stamp(at("2026-12-08 00:00:02"), &day), "00:00:02");
    }
}
