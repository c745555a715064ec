//! The node's events on screen and in the transcript: each with its peer's alias as of
//! that event, the input line it answers, and the prompt's completions kept current.

use meshtalk_core::node::{Event, Kind};

use super::Driver;
use crate::line::Known;
use crate::said::Said;
use crate::transcript;

impl Driver {
    /// Prints an event with its peer's alias as of that event. The node may already
    /// have dropped the peer (its bytes and its close came in one read), so the
    /// aliases are tracked from the events themselves.
    pub(super) fn show(&mut self, event: &Event<String>) {
        match event {
            // Decided here, never shown: the connected event says what was decided.
            Event::Vet { peer, alias } => {
                self.vet(*peer, alias);
                return;
            }
            Event::Connected {
                peer, alias, kind, ..
            } => {
                if let Kind::Text(_) = kind {
                    self.plain(*peer);
                }
                self.aliases.insert(*peer, alias.clone());
                self.backoff.connected(*peer);
            }
            Event::Alias { peer, alias } => {
                self.aliases.insert(*peer, alias.clone());
            }
            Event::Message { peer, .. } => {
                if let Some(limiter) = &mut self.limiter {
                    limiter.shown(*peer);
                }
            }
            _ => {}
        }
        let line = self.script.rules.answers(event);
        let alias = event.peer().and_then(|peer| self.aliases.get(&peer));
        let now = self.now();
        if self.mode.event(event, now) && !self.show_said(event) {
            let note = event.peer().and_then(|peer| self.note(peer));
            self.render
                .event_at(event, alias.map(String::as_str), line, note);
        }
        // A peer the node keeps as reconnecting is dialled again (said after its
        // drop); one that is gone (disconnected here, say) is dialled no more.
        if let Event::Disconnected { peer, .. } | Event::ConnectFailed { peer, .. } = event {
            if let Some(limiter) = &mut self.limiter {
                limiter.forget(*peer);
            }
            self.aliases.remove(peer);
            self.forget_key(*peer);
            if self.reconnecting(*peer) {
                self.schedule(*peer);
            } else {
                self.dials.remove(peer);
                self.backoff.forget(*peer);
            }
        }
        self.auto_link_event(event);
        if matches!(
            event,
            Event::Connected { .. }
                | Event::Alias { .. }
                | Event::Disconnected { .. }
                | Event::ConnectFailed { .. }
        ) {
            self.publish();
        }
    }

    /// Puts the person's own message in the transcript where the node says it went,
    /// and at a terminal shows it (`you -> bob: text`) in place of the `sent` or
    /// `broadcast` line; false if that line is still to be shown.
    fn show_said(&self, event: &Event<String>) -> bool {
        let Some(said) = &self.said else {
            return false;
        };
        match *event {
            Event::Sent { peer, .. } => {
                let Some(info) = self.node.peers().find(|p| p.id == peer) else {
                    return false;
                };
                // The node chose the peer; the text is what the command said.
                let text = said.text();
                transcript::write(transcript::Line::To(info.alias), text);
                if self.interactive {
                    self.render.said_to(info.alias, text);
                }
                self.interactive
            }
            // Said to nobody: the `broadcast ... 0 peer(s)` line tells so.
            Event::Broadcast { peers, .. } if peers > 0 => match said {
                Said::Room(text) => {
                    transcript::write(transcript::Line::ToRoom, text);
                    if self.interactive {
                        self.render.said_to_room(text);
                    }
                    self.interactive
                }
                Said::To(_) => false,
            },
            _ => false,
        }
    }

    /// The prompt's completions, to update.
    pub(super) fn known_mut(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Tells the prompt the peers as they are now (aliases, numbers, hosts), for Tab.
    fn publish(&self) {
        if !self.interactive {
            return;
        }
        let peers: Vec<(String, u32)> = self
            .node
            .peers()
            .map(|p| (p.alias.to_string(), p.id.number()))
            .collect();
        let hosts: Vec<String> = self
            .node
            .peers()
            .filter_map(|p| p.addr)
            .map(|a| a.ip().to_string())
            .collect();
        let mut known = self.known_mut();
        known.peers = peers;
        for host in hosts {
            known.saw_host(&host);
        }
    }
}
