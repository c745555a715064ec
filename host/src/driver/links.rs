//! Connections coming and going: accepted and dialled sockets started, re-dials with
//! backoff, stalled readers dropped, rate-limited peers given their turn again.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};

use meshtalk_core::node::{Handled, Input, NodeError, Phase};
use meshtalk_core::peers::PeerId;

use super::Driver;
use crate::channel::Msg;
use crate::log::debug;
use crate::net::{self, Conn};

impl Driver {
    pub(super) fn accepted(&mut self, stream: TcpStream, addr: SocketAddr) {
        let addr = canonical(addr);
        let now = self.now();
        let Some(entropy) = entropy() else {
            self.render.error(&format!(
                "refused {addr}: the OS gave no random bytes for its keys"
            ));
            return;
        };
        match self
            .node
            .handle_input(now, Input::Accepted { addr, entropy })
        {
            Ok(Handled::Accepted(peer)) => self.start(peer, stream),
            Ok(_) => {}
            Err(e) => {
                self.render.error(&format!("refused {addr}: {e}"));
                if let NodeError::Accept(refused) = e {
                    tell(stream, refused.response());
                }
                // Dropping the stream closes it.
            }
        }
        self.drain();
    }

    pub(super) fn dialed(&mut self, peer: PeerId, result: io::Result<TcpStream>) {
        let connected = result.and_then(|stream| Ok((canonical(stream.peer_addr()?), stream)));
        match connected {
            Ok((addr, stream)) => {
                let Some(entropy) = entropy() else {
                    let reason = "the OS gave no random bytes for the link's keys";
                    self.input(Input::ConnectFailed { peer, reason });
                    return;
                };
                // A peer disconnected while dialling gets a Close from the node.
                self.start(peer, stream);
                self.input(Input::Connected {
                    peer,
                    addr,
                    entropy,
                });
            }
            Err(e) => {
                let reason = e.to_string();
                self.input(Input::ConnectFailed {
                    peer,
                    reason: &reason,
                });
            }
        }
    }

    /// Starts a connection's threads; a failure closes the peer in the node.
    fn start(&mut self, peer: PeerId, stream: TcpStream) {
        let Some(done) = self.done.clone() else {
            return;
        };
        if let Some(idle) = self.keepalive
            && let Err(e) = net::keepalive(&stream, idle)
        {
            debug!("{peer}: no TCP keepalive: {e}");
        }
        let token = mio::Token(peer.slot());
        match Conn::start(peer, stream, &self.writers, &self.readers, token, done) {
            Ok(conn) => {
                self.conns.insert(peer, conn);
                // Bytes may have come before the socket was registered.
                self.mark_readable(peer.slot());
            }
            Err(e) => {
                let _ = self.tx.send(Msg::Closed(peer, Some(e.to_string())));
            }
        }
    }

    /// Says that `peer`, which the node keeps as reconnecting, will be dialled again,
    /// and when; the wait doubles for the next time (the kit's backoff).
    pub(super) fn schedule(&mut self, peer: PeerId) {
        let Some(dial) = self.dials.get(&peer) else {
            return;
        };
        let Some(wait) = self.backoff.schedule(peer, self.now()) else {
            return;
        };
        self.render
            .reconnecting(peer, &dial.host, dial.port, wait.into());
    }

    /// Dials again each reconnecting peer whose wait is over, under its id and alias; a
    /// peer disconnected meanwhile is gone from the node, and its dial forgotten.
    pub(super) fn redial_due(&mut self) {
        let now = self.now();
        while let Some(peer) = self.backoff.next_due(now) {
            let Some(dial) = self.dials.get(&peer) else {
                continue;
            };
            let (host, port) = (dial.host.clone(), dial.port);
            let redial = Input::Redial {
                peer,
                host: &host,
                port,
            };
            if let Err(e) = self.node.handle_input(self.now(), redial) {
                debug!("{peer}: not dialled again: {e}");
                self.dials.remove(&peer);
                self.backoff.forget(peer);
            }
            self.drain();
        }
    }

    /// Whether the node keeps `peer` to be dialled again (`--reconnect`).
    pub(super) fn reconnecting(&self, peer: PeerId) -> bool {
        self.node.phase(peer) == Some(Phase::Reconnecting)
    }
}

/// Writes the node's refusal to a connection it could not take, before it is
/// closed. The socket is new and its buffer empty: the write does not wait (and
/// is not allowed to).
fn tell(mut stream: TcpStream, response: &[u8]) {
    if stream.set_nonblocking(true).is_ok() {
        let _ = stream.write_all(response);
    }
}

/// An address as people write it: an IPv4 peer of a socket bound to `::` arrives as
/// `[::ffff:127.0.0.1]:port`, and is `127.0.0.1:port` (also to the per-address limit).
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// Where an outbound peer was dialled, for `mesh --reconnect` to dial it again
/// (when is the kit's [`Backoff`]).
#[derive(Clone, Debug)]
pub(super) struct Dial {
    pub(super) host: String,
    pub(super) port: u16,
}

/// 32 fresh random bytes from the OS: a connection's ephemeral key.
fn entropy() -> Option<[u8; 32]> {
    let mut bytes = [0; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes)
}
