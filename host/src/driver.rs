//! The driver thread: owns the node, turns messages from the I/O threads into
//! inputs and the node's outputs into writes, dials, closes and printed events.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use meshtalk_core::command::{self, Command, HELP};
use meshtalk_core::node::{Config, Event, Handled, Input, Node, Output};
use meshtalk_core::peers::PeerId;
use meshtalk_core::time::Instant;

use crate::mode::{Action, Mode};
use crate::net::{self, Conn};
use crate::render::Render;

/// The host's node: 1024 peers, 8 KiB frames, 128 KiB of pending output (~10 MB).
pub type HostNode = Node<1024, 8192, 131072>;

/// How long the writers get to send what is queued when the program ends.
const EXIT_FLUSH: Duration = Duration::from_secs(1);

/// Everything the driver hears about, from every other thread.
pub enum Msg {
    /// A line typed (or piped) on stdin.
    Line(String),
    /// Stdin ended: say goodbye and quit.
    EndOfInput,
    /// The listener accepted a connection.
    Accepted(TcpStream, SocketAddr),
    /// A dial asked for by the node finished.
    Dialed(PeerId, io::Result<TcpStream>),
    /// Bytes read from a peer.
    Data(PeerId, Vec<u8>),
    /// A peer's connection ended: `None` for an orderly close, else the error.
    Closed(PeerId, Option<String>),
}

/// Runs the node until the person (or the `mode`) quits; returns the exit code. Call it
/// on a thread with a large stack: the node lives on it. No listener: dial only.
pub fn run(
    config: Config,
    listener: Option<TcpListener>,
    render: Render,
    mode: Box<dyn Mode>,
) -> i32 {
    let (tx, rx) = channel();
    let (done, done_rx) = channel();
    if let Some(listener) = listener {
        net::spawn_listener(listener, tx.clone());
    }
    net::spawn_stdin(tx.clone());
    let mut driver = Driver {
        node: HostNode::new(config),
        origin: std::time::Instant::now(),
        conns: HashMap::new(),
        aliases: HashMap::new(),
        tx,
        render,
        done: Some(done),
        wake: None,
        mode,
        actions: Vec::new(),
        quit: None,
    };
    let now = driver.now();
    driver.mode.start(now, &mut driver.actions);
    driver.act();
    driver.serve(&rx);
    driver.exit(&done_rx)
}

struct Driver {
    node: HostNode,
    /// The std time that is core time zero.
    origin: std::time::Instant,
    conns: HashMap<PeerId, Conn>,
    /// Each ready peer's alias, for showing events about it.
    aliases: HashMap<PeerId, String>,
    /// For the dialers, which report back on it.
    tx: Sender<Msg>,
    render: Render,
    /// Handed to each writer; once every copy is gone, every writer has finished.
    done: Option<Sender<()>>,
    /// When the node wants [`Input::Timeout`].
    wake: Option<Instant>,
    /// The subcommand's rules: it sees lines, events and its deadline first.
    mode: Box<dyn Mode>,
    /// What the mode asked for, carried out once the node is drained.
    actions: Vec<Action>,
    /// Set when the mode ends the program: the exit code.
    quit: Option<i32>,
}

impl Driver {
    /// Core time now: milliseconds since `origin`.
    fn now(&self) -> Instant {
        let ms = self.origin.elapsed().as_millis();
        Instant::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    /// Sleeps until a message or the node's timeout; returns when the person quits.
    fn serve(&mut self, rx: &Receiver<Msg>) {
        loop {
            if self.quit.is_some() {
                return;
            }
            let wake = match (self.wake, self.mode.deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let msg = match wake {
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(at) => {
                    let wait = at.saturating_since(self.now()).as_millis();
                    if wait == 0 {
                        Err(RecvTimeoutError::Timeout)
                    } else {
                        rx.recv_timeout(Duration::from_millis(wait))
                    }
                }
            };
            match msg {
                Ok(Msg::Line(line)) => {
                    let now = self.now();
                    if self.mode.line(&line, now, &mut self.actions) {
                        self.act();
                    } else if self.line(&line) {
                        return;
                    }
                }
                Ok(Msg::EndOfInput) => {
                    let now = self.now();
                    if !self.mode.end_of_input(now, &mut self.actions) {
                        return;
                    }
                    self.act();
                }
                Err(RecvTimeoutError::Disconnected) => return,
                Ok(Msg::Accepted(stream, addr)) => self.accepted(stream, addr),
                Ok(Msg::Dialed(peer, result)) => self.dialed(peer, result),
                Ok(Msg::Data(peer, data)) => self.received(peer, &data),
                Ok(Msg::Closed(peer, error)) => {
                    self.conns.remove(&peer);
                    let error = error.as_deref();
                    self.input(Input::Closed { peer, error });
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.input(Input::Timeout);
                    let now = self.now();
                    if self.mode.deadline().is_some_and(|at| at <= now) {
                        self.mode.timeout(now, &mut self.actions);
                        self.act();
                    }
                }
            }
        }
    }

    /// One line from the person; true when it asks to quit.
    fn line(&mut self, line: &str) -> bool {
        match command::parse(line) {
            Ok(None) => {}
            Err(e) => self.render.error(&e.to_string()),
            Ok(Some(Command::Exit)) => return true,
            Ok(Some(Command::Help { topic })) => {
                self.render.help(command::help_text(topic).unwrap_or(HELP));
            }
            Ok(Some(Command::List)) => self.render.peers(self.node.peers()),
            Ok(Some(cmd)) => self.input(Input::Command(cmd)),
        }
        false
    }

    /// Feeds one input (not bytes) and drains the outputs; a refusal is printed.
    fn input(&mut self, input: Input<'_>) {
        let now = self.now();
        if let Err(e) = self.node.handle_input(now, input) {
            self.render.error(&e.to_string());
        }
        self.drain();
    }

    fn accepted(&mut self, stream: TcpStream, addr: SocketAddr) {
        let now = self.now();
        match self.node.handle_input(now, Input::Accepted { addr }) {
            Ok(Handled::Accepted(peer)) => self.start(peer, stream),
            Ok(_) => {}
            // Dropping the stream closes it.
            Err(e) => self.render.error(&format!("refused {addr}: {e}")),
        }
        self.drain();
    }

    fn dialed(&mut self, peer: PeerId, result: io::Result<TcpStream>) {
        let connected = result.and_then(|stream| Ok((stream.peer_addr()?, stream)));
        match connected {
            Ok((addr, stream)) => {
                // A peer disconnected while dialling gets a Close from the node.
                self.start(peer, stream);
                self.input(Input::Connected { peer, addr });
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
        match Conn::start(peer, stream, &self.tx, done) {
            Ok(conn) => {
                self.conns.insert(peer, conn);
            }
            Err(e) => {
                let _ = self.tx.send(Msg::Closed(peer, Some(e.to_string())));
            }
        }
    }

    /// Feeds a peer's bytes, draining whenever the node takes only part of them.
    fn received(&mut self, peer: PeerId, data: &[u8]) {
        let mut rest = data;
        let mut stalls = 0;
        while !rest.is_empty() {
            let now = self.now();
            let taken = match self
                .node
                .handle_input(now, Input::Received { peer, bytes: rest })
            {
                Ok(Handled::Consumed(n)) => n.min(rest.len()),
                Ok(_) => rest.len(),
                Err(e) => {
                    eprintln!("meshtalk: bytes from {peer} refused: {e}");
                    rest.len()
                }
            };
            rest = &rest[taken..];
            self.drain();
            stalls = if taken == 0 { stalls + 1 } else { 0 };
            if stalls > 2 {
                eprintln!(
                    "meshtalk: {peer}: node took none of {} bytes; dropped",
                    rest.len()
                );
                return;
            }
        }
    }

    /// Carries out the node's outputs until it asks only for a timeout.
    fn drain(&mut self) {
        let now = self.now();
        loop {
            match self.node.poll_output(now) {
                Output::Timeout(at) => {
                    self.wake = at;
                    self.act();
                    return;
                }
                Output::Transmit { peer, data } => match self.conns.get(&peer) {
                    Some(conn) => conn.send(data.to_vec()),
                    None => eprintln!("meshtalk: {peer} has no connection for its bytes"),
                },
                Output::Connect { peer, host, port } => {
                    net::dial(peer, host.to_string(), port, self.tx.clone());
                }
                Output::Close { peer } => {
                    if let Some(conn) = self.conns.remove(&peer) {
                        conn.close();
                    }
                }
                Output::Event(event) => {
                    let event = event.map(String::from);
                    self.show(&event);
                }
            }
        }
    }

    /// Prints an event with its peer's alias as of that event. The node may already
    /// have dropped the peer (its bytes and its close came in one read), so the
    /// aliases are tracked from the events themselves.
    fn show(&mut self, event: &Event<String>) {
        match event {
            Event::Connected { peer, alias, .. } | Event::Alias { peer, alias } => {
                self.aliases.insert(*peer, alias.clone());
            }
            _ => {}
        }
        let alias = event_peer(event).and_then(|peer| self.aliases.get(&peer));
        let now = self.now();
        if self.mode.event(event, now, &mut self.actions) {
            self.render.event(event, alias.map(String::as_str));
        }
        if let Event::Disconnected { peer, .. } | Event::ConnectFailed { peer, .. } = event {
            self.aliases.remove(peer);
        }
    }

    /// Says goodbye to every peer, lets the writers send it (bounded), returns the exit code.
    fn exit(&mut self, done_rx: &Receiver<()>) -> i32 {
        self.input(Input::Command(Command::Exit));
        for (_, conn) in self.conns.drain() {
            conn.close();
        }
        // Once every writer has dropped its copy, this returns at once.
        self.done = None;
        let _ = done_rx.recv_timeout(EXIT_FLUSH);
        self.quit.unwrap_or(0)
    }

    /// Carries out what the mode asked for, in order (each command drains the node,
    /// which may queue more).
    fn act(&mut self) {
        while !self.actions.is_empty() {
            let action = self.actions.remove(0);
            let now = self.now();
            let cmd = match &action {
                Action::Connect { host, port } => Command::Connect {
                    host,
                    port: *port,
                    alias: None,
                },
                Action::Send(text) => Command::Send {
                    target: None,
                    text,
                    all: text,
                },
                Action::Disconnect => Command::Disconnect { target: None },
                Action::Help(text) => {
                    self.render.help(text);
                    continue;
                }
                Action::Error(message) => {
                    self.render.error(message);
                    continue;
                }
                Action::LogSent { peer, lines } => {
                    let alias = self.aliases.get(peer).map(String::as_str);
                    self.render.log_sent(*peer, alias, *lines);
                    continue;
                }
                Action::Log(lines) => {
                    self.render.log(lines);
                    continue;
                }
                Action::Quit(code) => {
                    self.quit.get_or_insert(*code);
                    continue;
                }
            };
            let refused = self.node.handle_input(now, Input::Command(cmd)).err();
            if let Some(e) = refused {
                self.render.error(&e.to_string());
                if !matches!(action, Action::Disconnect) {
                    self.mode.refused(now, &mut self.actions);
                }
            }
            self.drain();
        }
    }
}

/// The peer an event is about, if any.
fn event_peer<S>(event: &Event<S>) -> Option<PeerId> {
    match event {
        Event::Connected { peer, .. }
        | Event::ConnectFailed { peer, .. }
        | Event::Message { peer, .. }
        | Event::Sent { peer, .. }
        | Event::Delivered { peer, .. }
        | Event::Undelivered { peer, .. }
        | Event::Alias { peer, .. }
        | Event::Disconnected { peer, .. } => Some(*peer),
        Event::Broadcast { .. } | Event::Refused { .. } => None,
    }
}
