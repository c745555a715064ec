//! Commands from the person: saying, broadcasting, sending to a peer.

use core::fmt;
use core::net::SocketAddr;

use heapless::String;

use super::{Event, Kind, Link, Node, NodeError, Phase, Reason, Refusal, TextMode};
use crate::command::{Command, EMOTE_MAX, Emote, Target, Verb, validate_alias};
use crate::display::{SafeLines, SafeStr};
use crate::limits::MAX_HOST;
use crate::outbox::{Job, Span};
use crate::peers::{Alias, Direction, InsertError, LookupError, PeerId};
use crate::time::Instant;
use crate::wire::{self, MAX_NAME, Message};

impl<const P: usize, const F: usize, const A: usize, const R: usize> Node<P, F, A, R> {
    pub(super) fn on_command<'a>(
        &mut self,
        now: Instant,
        command: Command<'a>,
    ) -> Result<(), NodeError<'a>> {
        match command {
            Command::Connect { host, port, alias } => {
                if host.len() > MAX_HOST {
                    return Err(NodeError::HostTooLong);
                }
                if self.config.single_peer && self.only_peer(Verb::Connect).is_ok() {
                    return Err(NodeError::AlreadyConnected);
                }
                let link = Link::new(Phase::Dialing);
                let peer = self
                    .peers
                    .insert(None, Direction::Outbound, alias, link)
                    .map_err(|(e, _)| NodeError::Table(e))?;
                if let Some(host) = self.outbox.put(&[host.as_bytes()]) {
                    self.outbox.push(Job::Connect { peer, host, port });
                }
                Ok(())
            }
            Command::Send { target, text, all } => {
                match self.send_target(target, text, all) {
                    Ok((peer, text)) => self.send_chat(peer, text),
                    // No peer of that name: a node of that name through the mesh.
                    Err(NodeError::Lookup(LookupError::NoSuchName(name))) if !text.is_empty() => {
                        self.send_routed_to(now, name, text)
                    }
                    Err(e) => Err(e),
                }
            }
            Command::Broadcast { text } => self.broadcast(now, text),
            Command::Say { text } => self.say(now, text),
            Command::Me { action } => {
                let mut text: String<EMOTE_MAX> = String::new();
                let emote = Emote {
                    name: &self.config.name,
                    action,
                };
                if core::fmt::write(&mut text, format_args!("{emote}")).is_err() {
                    let len = self.config.name.len() + action.len() + 3;
                    return Err(NodeError::TooLong {
                        len,
                        max: EMOTE_MAX,
                    });
                }
                self.say(now, &text)
            }
            Command::Nick { name } => {
                validate_alias(name).map_err(|e| NodeError::Table(InsertError::BadAlias(e)))?;
                let mut owned: String<MAX_NAME> = String::new();
                // Cannot fail: a valid alias is at most MAX_NAME bytes.
                let _ = owned.push_str(name);
                self.config.name = owned;
                // Native peers hear a hello again, with the new name; a text peer has
                // no way to be told (it sees the name on room messages at a hub).
                let hello = Message::Hello {
                    minor: wire::MINOR,
                    node: self.config.node_id,
                    name,
                };
                self.tell_natives(&hello);
                Ok(())
            }
            Command::Disconnect { target } => {
                let peer = self.resolve(target, Verb::Disconnect)?;
                self.drop_peer(peer, Reason::Local, true);
                Ok(())
            }
            Command::SetAlias { target, alias } => {
                let peer = self.peers.resolve(target)?;
                let old = self.peers.get(peer).map(|p| Alias::try_from(p.alias()));
                self.peers.set_alias(peer, alias)?;
                if let Some(span) = self.outbox.put(&[alias.as_bytes()]) {
                    self.event(Event::Alias { peer, alias: span });
                }
                if let Some(Ok(old)) = old.filter(|_| self.ready_peer(peer)) {
                    self.notice(None, format_args!("{old} is now known as {alias}"));
                }
                Ok(())
            }
            Command::Exit => {
                self.tell_natives(&Message::Bye { reason: "exit" });
                Ok(())
            }
            // The shell's: what it shows (from `peers()`, the help text, what LAN
            // discovery heard) and the files it keeps.
            Command::List
            | Command::Help { .. }
            | Command::Log { .. }
            | Command::Nearby
            | Command::ConnectName { .. }
            | Command::Whoami
            | Command::Verify { .. }
            | Command::Trust { .. } => Ok(()),
        }
    }

    /// Queues `msg` for every native peer (a text peer has no frames to read).
    fn tell_natives(&mut self, msg: &Message<'_>) {
        if let Ok(native) = self.outbox.put_message(msg) {
            self.outbox.push(Job::Fanout {
                except: None,
                native: Some(native),
                line: None,
                next: 0,
                routers: false,
            });
        }
    }

    /// A line said at the prompt (plain text, `/say`, `/me`): to the peer in a one-peer
    /// chat, else to the room.
    fn say(&mut self, now: Instant, text: &str) -> Result<(), NodeError<'static>> {
        if self.config.single_peer {
            let peer = self.only_peer(Verb::Say)?;
            return self.send_chat(peer, text);
        }
        self.broadcast(now, text)
    }

    /// A room message of ours, to every ready peer.
    fn broadcast(&mut self, now: Instant, text: &str) -> Result<(), NodeError<'static>> {
        self.check_len(text)?;
        let peers = self
            .peers
            .iter()
            .filter(|p| matches!(p.state.phase, Phase::Ready(_)))
            .count();
        if peers == 0 {
            return Err(NodeError::NoPeers);
        }
        self.announce_first(now);
        self.last_seq = self.last_seq.wrapping_add(1);
        let (origin, seq) = (self.config.node_id, self.last_seq);
        self.seen.first_sight(origin, seq);
        // The frame is encoded from the `str`s in hand, not read back from the arena.
        let native = self.outbox.put_message(&Message::Broadcast {
            origin,
            seq,
            hops: self.config.hops,
            name: &self.config.name,
            text,
        });
        let Some(text) = self.outbox.put(&[text.as_bytes()]) else {
            return Err(NodeError::Busy);
        };
        let Some(name) = self.outbox.put(&[self.config.name.as_bytes()]) else {
            return Err(NodeError::Busy);
        };
        self.fanout(None, native.ok(), name, text, false);
        self.event(Event::Broadcast { seq, peers });
        Ok(())
    }

    /// Which peer a `send` is for, and the text: in a one-peer node, the whole line
    /// to the one peer there is (`send <message>`); otherwise the first word names the
    /// peer, and one that names none is an error, never a message to the only peer.
    fn send_target<'a>(
        &self,
        target: Option<Target<'a>>,
        text: &'a str,
        all: &'a str,
    ) -> Result<(PeerId, &'a str), NodeError<'a>> {
        if self.config.single_peer {
            return Ok((self.only_peer(Verb::Send)?, all));
        }
        let Some(target) = target else {
            return Err(NodeError::SendNeedsTarget);
        };
        let peer = self.peers.resolve(target)?;
        if text.is_empty() {
            return Err(NodeError::SendNeedsTarget);
        }
        Ok((peer, text))
    }

    /// Why a connection accepted from `addr` may not join, if it may not.
    pub(super) fn refusal(&self, addr: SocketAddr) -> Option<Refusal> {
        if self.config.single_peer && !self.peers.is_empty() {
            return Some(match self.config.serving {
                true => Refusal::Serving,
                false => Refusal::Busy,
            });
        }
        let max = self.config.max_per_ip;
        let same_ip = self
            .peers
            .iter()
            .filter(|p| p.direction == Direction::Inbound && p.state.refuse.is_none())
            .filter(|p| p.addr.is_some_and(|a| a.ip() == addr.ip()))
            .count();
        (same_ip >= max).then_some(Refusal::PerIp { max })
    }

    /// Whether `peer` is in the room: ready to chat.
    fn ready_peer(&self, peer: PeerId) -> bool {
        self.peers
            .get(peer)
            .is_some_and(|p| matches!(p.state.phase, Phase::Ready(_)))
    }

    /// The one peer there is, for a command (`verb`) that names none.
    /// The peer a command's target names; with none, the only peer (`verb`
    /// says which command, for the error when there are several).
    pub fn resolve<'t>(
        &self,
        target: Option<Target<'t>>,
        verb: Verb,
    ) -> Result<PeerId, NodeError<'t>> {
        match target {
            Some(t) => Ok(self.peers.resolve(t)?),
            None => self.only_peer(verb),
        }
    }

    fn only_peer(&self, verb: Verb) -> Result<PeerId, NodeError<'static>> {
        let mut peers = self.peers.iter().filter(|p| p.state.refuse.is_none());
        match (peers.next(), peers.next()) {
            (None, _) => Err(NodeError::NoPeers),
            (Some(p), None) => Ok(p.id),
            (Some(_), Some(_)) => Err(NodeError::WhichPeer {
                verb,
                peers: 2 + peers.count(),
            }),
        }
    }

    pub(super) fn check_len(&self, text: &str) -> Result<(), NodeError<'static>> {
        let max = self.max_text();
        if text.len() > max {
            return Err(NodeError::TooLong {
                len: text.len(),
                max,
            });
        }
        Ok(())
    }

    fn send_chat<'a>(&mut self, peer: PeerId, text: &str) -> Result<(), NodeError<'a>> {
        self.check_len(text)?;
        let Some(p) = self.peers.get_mut(peer) else {
            return Err(NodeError::NotReady(peer));
        };
        let link = &mut p.state;
        let (data, id, receipt) = match link.phase {
            Phase::Ready(Kind::Native) => {
                if link.unacked.is_full() {
                    return Err(NodeError::WindowFull(peer));
                }
                let id = link.next_id;
                let data = self
                    .outbox
                    .put_message(&Message::Chat { id, text })
                    .map_err(|_| NodeError::Busy)?;
                // Cannot fail: checked not full above.
                let _ = link.unacked.push(id);
                link.next_id = link.next_id.wrapping_add(1);
                (data, id, true)
            }
            Phase::Ready(Kind::Text(mode)) => {
                let newline: &[u8] = if mode == TextMode::Lines { b"\n" } else { b"" };
                let id = link.next_id;
                link.next_id = link.next_id.wrapping_add(1);
                // A terminal: made safe, but a multi-line text (serve's log) keeps its lines.
                // In a hub's room, each line says who wrote it, and to whom.
                let data = match self.config.hub {
                    true => {
                        let name = self.config.name.as_str();
                        self.outbox
                            .put_shown(text, |text| ToYou { name, text }, newline)
                    }
                    false => self.outbox.put_shown(text, SafeLines, newline),
                }
                .ok_or(NodeError::Busy)?;
                (data, id, false)
            }
            Phase::Reconnecting => return Err(NodeError::Reconnecting(peer)),
            _ => return Err(NodeError::NotReady(peer)),
        };
        self.outbox.push(Job::Send { peer, data });
        self.event(Event::Sent { peer, id, receipt });
        Ok(())
    }

    /// Queues a room message for every ready peer but `except`: `native` (its
    /// Broadcast frame) for native peers, and a line for text peers: at a hub every
    /// line is prefixed with its author's name; elsewhere only our own go to text
    /// peers, untagged (as the older programs expect).
    pub(super) fn fanout(
        &mut self,
        except: Option<PeerId>,
        native: Option<Span>,
        name: Span,
        text: Span,
        relayed: bool,
    ) {
        // A text peer is a terminal with nobody to protect it: its line is made safe.
        let line = if self.config.hub {
            self.outbox.put_safe_line(Some(name), text)
        } else if !relayed {
            self.outbox.put_safe_line(None, text)
        } else {
            None
        };
        self.outbox.push(Job::Fanout {
            except,
            native,
            line,
            next: 0,
            routers: false,
        });
    }
}

/// A direct message to a text peer of a hub, each line tagged `<name> (to you) `, so
/// that it cannot pass for room text; every character shown safely.
struct ToYou<'t> {
    name: &'t str,
    text: &'t str,
}

impl fmt::Display for ToYou<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, line) in self.text.split('\n').enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "<{}> (to you) {}", SafeStr(self.name), SafeStr(line))?;
        }
        Ok(())
    }
}
