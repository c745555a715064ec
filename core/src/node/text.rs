//! Text peers: their lines, the room's notices, `/nick` and `/who`.

use core::fmt;

use heapless::String;

use super::{Event, Kind, Link, MAX_LINE, Node, Phase, Room, Rx, Step, TextMode};
use crate::display::SafeStr;
use crate::outbox::{Job, Span};
use crate::peers::{Alias, InsertError, PeerId, PeerTable};
use crate::time::Instant;
use crate::wire::Message;

impl<const P: usize, const F: usize, const A: usize, const R: usize> Node<P, F, A, R> {
    /// A connection turned out to be a text peer: the room's lines held for it go out,
    /// in its form, first in the queue (a room line queued earlier in this input now
    /// reaches it directly, and is newer than every held one); then it is announced.
    /// No greeting: a client that only writes, then closes with our bytes unread,
    /// would make its kernel reset the connection and lose the end of what it wrote.
    pub(super) fn text_joined(&mut self, peer: PeerId) {
        self.deliver_held(peer);
        self.connected_event(peer);
    }

    /// Sends a new text peer the room's lines held for it while its kind was not known,
    /// in one write (as lines; one that speaks bare writes gets no last newline).
    fn deliver_held(&mut self, peer: PeerId) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        let (Phase::Ready(Kind::Text(mode)), Rx::Banner(_, held)) =
            (p.state.phase, &mut p.state.rx)
        else {
            return;
        };
        if held.is_empty() {
            return;
        }
        let cut = usize::from(mode == TextMode::Bare);
        let data = self
            .outbox
            .put(&[held.get(..held.len() - cut).unwrap_or_default()]);
        held.clear();
        if let Some(data) = data {
            let _ = self.outbox.jobs.push_front(Job::Send { peer, data });
        }
    }

    /// Tells every text peer of a hub (but `except`) what happened in the room, on a line
    /// of its own that begins with `* `: a message's line begins with `<`, so a notice
    /// never passes for one (names hold no spaces, newlines or `<`).
    pub(super) fn notice(&mut self, except: Option<PeerId>, what: fmt::Arguments<'_>) {
        if !self.config.hub {
            return;
        }
        if let Some(line) = self
            .outbox
            .put_fmt(format_args!("* {what}"), MAX_LINE, b"\n")
        {
            self.outbox.push(Job::Fanout {
                except,
                native: None,
                line: Some(line),
                next: 0,
                routers: false,
            });
        }
    }

    /// Answers one text peer (a `/nick` or `/who` it typed), as a notice line.
    fn tell(&mut self, peer: PeerId, what: fmt::Arguments<'_>) {
        if let Some(data) = self
            .outbox
            .put_fmt(format_args!("* {what}"), MAX_LINE, b"\n")
        {
            self.outbox.push(Job::Send { peer, data });
        }
    }

    pub(super) fn on_text_bytes(&mut self, now: Instant, peer: PeerId, bytes: &[u8]) -> Step {
        let max = self.max_text();
        let Some(p) = self.peers.get_mut(peer) else {
            return Step::Wait(bytes.len());
        };
        let Rx::Text(buf) = &mut p.state.rx else {
            return Step::Took(0);
        };
        let room = max.saturating_sub(buf.len());
        let window = bytes.get(..room.min(bytes.len())).unwrap_or_default();
        if let Some(newline) = window.iter().position(|&b| b == b'\n') {
            let line = window.get(..newline).unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            // Cannot fail: the line fits in `room`.
            let _ = buf.extend_from_slice(line);
            if let Phase::Ready(Kind::Text(mode)) = &mut p.state.phase {
                *mode = TextMode::Lines;
            }
            p.state.deadline = None;
            p.state.sends_lines = true;
            // An empty line (someone pressed Enter) is no message.
            if !buf.is_empty() {
                self.flush_text(peer, usize::MAX);
            }
            return Step::Took(newline + 1);
        }
        // Cannot fail: `window` fits in `room`.
        let _ = buf.extend_from_slice(window);
        let sends_lines = p.state.sends_lines;
        if buf.len() >= max {
            // A line longer than a message: send what fits, up to a character boundary.
            let cut = match utf8_cut(buf) {
                // Not even one whole character fits (a limit under 4 bytes): send the bytes.
                0 => buf.len(),
                cut => cut,
            };
            self.flush_text(peer, cut);
        }
        if !sends_lines {
            let at = now + self.config.text_idle;
            self.set_deadline(peer, at);
        }
        Step::Took(window.len())
    }

    /// Sends the first `cut` bytes a text peer sent as one message, keeping the rest.
    pub(super) fn flush_text(&mut self, peer: PeerId, cut: usize) {
        let max = self.max_text();
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        let (alias, link) = p.alias_and_state();
        let Rx::Text(buf) = &mut link.rx else {
            return;
        };
        let cut = cut.min(buf.len());
        let from = self.outbox.put(&[alias.as_bytes()]);
        let text = self
            .outbox
            .put_lossy(buf.get(..cut).unwrap_or_default(), max);
        let kept = buf.len() - cut;
        buf.copy_within(cut.., 0);
        buf.truncate(kept);
        if let (Some(from), Some(text)) = (from, text) {
            self.text_message(peer, from, text);
        }
    }

    /// One message from a text peer: shown, and at a hub relayed to the room (unless
    /// it is `/nick NAME` or `/who`, which the hub answers).
    fn text_message(&mut self, peer: PeerId, from: Span, text: Span) {
        let mut room = None;
        if self.config.hub {
            match RoomCommand::parse(self.outbox.text(text)) {
                Some(RoomCommand::Nick(name)) => return self.nick(peer, &name),
                Some(RoomCommand::Who) => return self.who(peer),
                None => {}
            }
            self.last_seq = self.last_seq.wrapping_add(1);
            let r = Room {
                origin: self.config.node_id,
                seq: self.last_seq,
            };
            self.seen.first_sight(r.origin, r.seq);
            let hops = self.config.hops;
            let native = self
                .outbox
                .put_frame([from, text], |[name, text]| Message::Broadcast {
                    origin: r.origin,
                    seq: r.seq,
                    hops,
                    name,
                    text,
                });
            self.fanout(Some(peer), native, from, text, true);
            room = Some(r);
        }
        self.event(Event::Message {
            peer,
            from,
            text,
            room,
        });
    }

    /// A text peer of a hub asked for a name: it becomes its alias, under the rules of
    /// aliases (and never the hub's own name); the room is told, and so is the person.
    fn nick(&mut self, peer: PeerId, name: &str) {
        let old = match self.peers.get(peer) {
            Some(p) => Alias::try_from(p.alias()).unwrap_or_default(),
            None => return,
        };
        if name.is_empty() {
            return self.tell(peer, format_args!("usage: /nick NAME"));
        }
        if name == self.config.name.as_str() {
            return self.tell(
                peer,
                format_args!("{name} is the hub's own name; choose another"),
            );
        }
        match self.peers.set_alias(peer, name) {
            Ok(()) => {
                self.tell(peer, format_args!("you are now {name}"));
                self.notice(Some(peer), format_args!("{old} is now known as {name}"));
                if let Some(alias) = self.outbox.put(&[name.as_bytes()]) {
                    self.event(Event::Alias { peer, alias });
                }
            }
            Err(InsertError::AliasTaken(_)) => {
                self.tell(peer, format_args!("{name} is taken; choose another"))
            }
            Err(e) => self.tell(
                peer,
                format_args!("cannot take the name {}: {e}", SafeStr(name)),
            ),
        }
    }

    /// A text peer of a hub asked who is in the room: the hub's person and every peer
    /// ready to chat (neighbouring nodes by their names), itself marked.
    fn who(&mut self, peer: PeerId) {
        let list = Who {
            hub: &self.config.name,
            peers: &self.peers,
            you: peer,
        };
        if let Some(data) =
            self.outbox
                .put_fmt(format_args!("* in the room: {list}"), MAX_LINE, b"\n")
        {
            self.outbox.push(Job::Send { peer, data });
        }
    }
}

/// The length of the longest prefix of `bytes` that does not end inside a UTF-8
/// character (all of it when it is not UTF-8 at that point).
fn utf8_cut(bytes: &[u8]) -> usize {
    let len = bytes.len();
    // A character is at most 4 bytes: look back at most 3 for its lead byte.
    for back in 1..=3.min(len) {
        let b = bytes[len - back];
        if b & 0xC0 == 0x80 {
            continue;
        }
        let width = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if width > back { len - back } else { len };
    }
    len
}

/// What a text peer of a hub may ask of it instead of saying something to the room.
#[derive(Debug, PartialEq, Eq)]
enum RoomCommand {
    /// `/nick NAME`: its name from now on (empty: none given). Cut at 64 bytes, which
    /// is too long for an alias whatever the cut.
    Nick(String<64>),
    /// `/who`: who is in the room.
    Who,
}

impl RoomCommand {
    /// The command in a text peer's line, if it is one (`/NICK` and `/Who` too); any
    /// other line, `/me waves` included, is a message.
    fn parse(line: &str) -> Option<RoomCommand> {
        let line = line.trim();
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        if word.eq_ignore_ascii_case("/who") && rest.trim().is_empty() {
            return Some(RoomCommand::Who);
        }
        if !word.eq_ignore_ascii_case("/nick") {
            return None;
        }
        let name = rest.trim();
        let mut owned = String::new();
        let end = (0..=name.len().min(64))
            .rev()
            .find(|&i| name.is_char_boundary(i))
            .unwrap_or(0);
        // Cannot fail: at most 64 bytes.
        let _ = owned.push_str(name.get(..end).unwrap_or_default());
        Some(RoomCommand::Nick(owned))
    }
}

/// The members of a hub's room, for `/who`: `alice (hub), bob, 127.0.0.1 (you)`.
struct Who<'t, L, const P: usize> {
    hub: &'t str,
    peers: &'t PeerTable<L, P>,
    you: PeerId,
}

impl<const F: usize, const P: usize> fmt::Display for Who<'_, Link<F>, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (hub)", self.hub)?;
        for p in self.peers.iter() {
            if let Phase::Ready(_) = p.state.phase {
                let you = if p.id == self.you { " (you)" } else { "" };
                write!(f, ", {}{you}", SafeStr(p.alias()))?;
            }
        }
        Ok(())
    }
}
