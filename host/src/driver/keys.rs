//! Trust on first use: a secure peer's key vetted against `known_peers` before
//! the node makes it ready, and the commands that show and accept keys
//! (`/whoami`, `/verify`, `/trust`).

use std::collections::HashMap;

use meshtalk_core::command::{Target, Verb};
use meshtalk_core::node::Input;
use meshtalk_core::noise::Fingerprint;
use meshtalk_core::peers::PeerId;
use meshtalk_core::trust::{Refused, Trust};

use super::Driver;
use crate::keys::Keys;
use crate::render::{KeyNote, Note};

/// The keys of a node with secure links, and what was decided of its peers' keys.
pub(crate) struct KeyRing {
    keys: Keys,
    /// How each secure peer's key was vetted, or that a peer is plaintext:
    /// shown with its events.
    notes: HashMap<PeerId, Note>,
    /// The last key each name was refused with, for `/trust`.
    refused: HashMap<String, [u8; 32]>,
    /// Verdicts to give the node once its drain ends.
    verdicts: Vec<(PeerId, bool)>,
}

impl KeyRing {
    pub(crate) fn new(keys: Keys) -> Self {
        KeyRing {
            keys,
            notes: HashMap::new(),
            refused: HashMap::new(),
            verdicts: Vec::new(),
        }
    }

    /// This node's fingerprint.
    pub(crate) fn fingerprint(&self) -> Fingerprint {
        self.keys.fingerprint
    }
}

impl Driver {
    /// The node asks whether `peer`'s key may be trusted under `alias`: decided
    /// now, given to the node when its drain ends.
    pub(super) fn vet(&mut self, peer: PeerId, alias: &str) {
        let Some(key) = self.node.remote_key(peer).copied() else {
            return;
        };
        let fingerprint = Fingerprint::of(&key);
        let ring = &mut self.keys;
        let trust = match ring.keys.known.check(alias, &key).decide(ring.keys.strict) {
            Ok(trust) => {
                if trust == Trust::First
                    && let Err(e) = ring.keys.known.record(alias, &key)
                {
                    // Trusted all the same: the link is as safe as before; only
                    // the pin is lost, and the person is told.
                    self.render
                        .error(&format!("could not pin {alias}'s key: {e}"));
                }
                Some(trust)
            }
            Err(why) => {
                let pins = ring.keys.known.path().display();
                let refused = Refused {
                    name: alias,
                    key: fingerprint,
                    why,
                    pins,
                };
                self.render.error(&refused.to_string());
                None
            }
        };
        let ring = &mut self.keys;
        match trust {
            Some(trust) => {
                ring.notes
                    .insert(peer, Note::Key(KeyNote { fingerprint, trust }));
            }
            None => {
                ring.refused.insert(alias.to_string(), key);
            }
        }
        ring.verdicts.push((peer, trust.is_some()));
    }

    /// Gives the node the verdicts decided during its drain.
    pub(super) fn give_verdicts(&mut self) {
        for (peer, trusted) in std::mem::take(&mut self.keys.verdicts) {
            self.input(Input::Vetted { peer, trusted });
        }
    }

    /// What is known of `peer`'s link, for its events.
    pub(super) fn note(&self, peer: PeerId) -> Option<&Note> {
        self.keys.notes.get(&peer)
    }

    /// `peer` is a plain-text peer: its events say so.
    pub(super) fn plain(&mut self, peer: PeerId) {
        self.keys.notes.insert(peer, Note::Plain);
    }

    /// `peer` is gone: its note with it.
    pub(super) fn forget_key(&mut self, peer: PeerId) {
        self.keys.notes.remove(&peer);
    }

    /// `/whoami`: this node's fingerprint and the addresses it is reachable at
    /// (the interfaces read again: an address may have come or gone since start).
    pub(super) fn whoami(&self) {
        let reach = self.bound.map(|bound| bound.reach());
        self.render.whoami(self.keys.fingerprint(), reach.as_ref());
    }

    /// `/verify [target]`: a peer's fingerprint.
    pub(super) fn verify(&self, target: Option<Target<'_>>) -> Result<(), String> {
        let peer = self
            .node
            .resolve(target, Verb::Verify)
            .map_err(|e| e.to_string())?;
        let alias = self
            .node
            .peers()
            .find(|p| p.id == peer)
            .map_or(String::new(), |p| p.alias.to_string());
        match self.node.remote_key(peer) {
            Some(key) => {
                self.render.help(&format!(
                    "{alias}'s key fingerprint: {} (it should be what {alias}'s /whoami shows)",
                    Fingerprint::of(key)
                ));
                Ok(())
            }
            None => Err(format!(
                "{alias} has no key: its link is not encrypted (a plain-text peer, or not ready)"
            )),
        }
    }

    /// `/trust name`: accepts the key `name` was last refused with.
    pub(super) fn trust(&mut self, name: &str) -> Result<(), String> {
        let Some(key) = self.keys.refused.get(name).copied() else {
            return Err(format!(
                "no key was refused for {name}; /trust accepts the key a known name was \
                 refused with"
            ));
        };
        self.keys
            .keys
            .known
            .trust(name, &key)
            .map_err(|e| e.to_string())?;
        self.keys.refused.remove(name);
        self.render.help(&format!(
            "{name}'s key {} is trusted now; connect again",
            Fingerprint::of(&key)
        ));
        Ok(())
    }
}
