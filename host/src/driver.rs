//! The driver thread: owns the node, turns messages from the I/O threads into
//! inputs and the node's outputs into writes, dials, closes and printed events.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use meshtalk_core::command::{self, Command, HELP};
use meshtalk_core::node::{Config, Event, Handled, Input, Node, Output};
use meshtalk_core::peers::PeerId;
use meshtalk_core::time::Instant;

use crate::log::{debug, diag};
use crate::mode::{Action, Mode};
use crate::net::{self, Conn};
use crate::render::Render;

/// The host's node: 1024 peers, 8 KiB frames, 128 KiB of pending output (~10 MB).
pub type HostNode = Node<1024, 8192, 131072>;

/// How long the writers get to send what is queued when the program ends.
const EXIT_FLUSH: Duration = Duration::from_secs(1);
/// A peer with more than this queued for it pauses the input of every peer.
const HIGH_WATER: usize = 1 << 20;
/// The pause lifts once every peer has less than this queued.
const LOW_WATER: usize = 256 << 10;

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
    /// Bytes read from a peer; its reader reads on once the node has taken them all.
    Data(PeerId, Vec<u8>),
    /// A peer's writer wrote this many of the bytes queued for it.
    Wrote(PeerId, usize),
    /// A peer's connection ended: `None` for an orderly close, else the error.
    Closed(PeerId, Option<String>),
}

/// Runs the node until the person (or the `mode`) quits; returns the exit code. Call it
/// on a thread with a large stack: the node lives on it. No listener: dial only. A
/// peer that takes none of the bytes waiting for it for `stall` is disconnected as
/// not reading.
pub fn run(
    config: Config,
    listener: Option<TcpListener>,
    render: Render,
    mode: Box<dyn Mode>,
    stall: Duration,
) -> i32 {
    let (tx, rx) = channel();
    let (done, done_rx) = channel();
    let listening = listener.as_ref().map(TcpListener::local_addr);
    if let Some(listener) = listener {
        net::spawn_listener(listener, tx.clone());
    }
    let _prompt = crate::prompt::spawn(tx.clone(), render.json);
    let mut driver = Driver {
        node: HostNode::new(config),
        origin: std::time::Instant::now(),
        conns: HashMap::new(),
        aliases: HashMap::new(),
        tx,
        render,
        done: Some(done),
        wake: None,
        stall,
        stall_wake: None,
        paused: false,
        waiting: VecDeque::new(),
        recheck: false,
        mode,
        actions: Vec::new(),
        quit: None,
    };
    // Said only now that the node is built, so that a peer told this address is
    // served at once, not after the node's ~10 MB are set up.
    match listening {
        Some(Ok(addr)) => driver.render.listening(addr),
        Some(Err(e)) => diag!("listening, but on which address? {e}"),
        None => {}
    }
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
    /// How long a peer may take none of the bytes waiting for it.
    stall: Duration,
    /// When to look for stalled peers next (possibly early, never late).
    stall_wake: Option<std::time::Instant>,
    /// Some peer's queue went over [`HIGH_WATER`]: ready peers' bytes wait unfed.
    paused: bool,
    /// Peers whose read chunk waits for the pause to lift, first come first fed.
    waiting: VecDeque<PeerId>,
    /// A queue was dropped while paused: see whether the pause lifts.
    recheck: bool,
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

    /// How long to sleep at most: until the node's or the mode's timeout, or the
    /// next stall check.
    fn next_wait(&self) -> Option<Duration> {
        let wake = match (self.wake, self.mode.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let node =
            wake.map(|at| Duration::from_millis(at.saturating_since(self.now()).as_millis()));
        let stall = self
            .stall_wake
            .map(|at| at.saturating_duration_since(std::time::Instant::now()));
        match (node, stall) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sleeps until a message or a timeout; returns when the person quits.
    fn serve(&mut self, rx: &Receiver<Msg>) {
        loop {
            if self.quit.is_some() {
                return;
            }
            let msg = match self.next_wait() {
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(wait) if wait.is_zero() => Err(RecvTimeoutError::Timeout),
                Some(wait) => rx.recv_timeout(wait),
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
                Ok(Msg::Data(peer, data)) => self.received(peer, data),
                Ok(Msg::Wrote(peer, n)) => self.wrote(peer, n),
                Ok(Msg::Closed(peer, error)) => {
                    self.conns.remove(&peer);
                    let error = error.as_deref();
                    self.input(Input::Closed { peer, error });
                    self.resume();
                }
                Err(RecvTimeoutError::Timeout) => self.timeout(),
            }
            if self.recheck {
                self.recheck = false;
                self.resume();
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
        match Conn::start(peer, stream, &self.tx, done, self.stall) {
            Ok(conn) => {
                self.conns.insert(peer, conn);
            }
            Err(e) => {
                let _ = self.tx.send(Msg::Closed(peer, Some(e.to_string())));
            }
        }
    }

    /// A chunk from a peer's reader: fed now, or held while input is paused.
    fn received(&mut self, peer: PeerId, data: Vec<u8>) {
        let Some(conn) = self.conns.get_mut(&peer) else {
            // The connection was dropped after its reader read this.
            return;
        };
        conn.hold(data);
        self.feed(peer);
    }

    /// Feeds a peer's held chunk, draining whenever the node takes only part of it,
    /// until all is taken or input is paused (the rest then waits its turn).
    fn feed(&mut self, peer: PeerId) {
        let mut stalls = 0;
        loop {
            // A peer that is not ready yet feeds nobody: its greeting goes on.
            if self.paused && self.aliases.contains_key(&peer) {
                if !self.waiting.contains(&peer) {
                    self.waiting.push_back(peer);
                }
                return;
            }
            let now = self.now();
            let Some(conn) = self.conns.get(&peer) else {
                return;
            };
            let rest = conn.pending();
            if rest.is_empty() {
                return;
            }
            let len = rest.len();
            let taken = match self
                .node
                .handle_input(now, Input::Received { peer, bytes: rest })
            {
                Ok(Handled::Consumed(n)) => n.min(len),
                Ok(_) => len,
                Err(e) => {
                    diag!("bytes from {peer} refused: {e}");
                    len
                }
            };
            stalls = if taken == 0 { stalls + 1 } else { 0 };
            let taken = if stalls > 2 {
                diag!("{peer}: node took none of {len} bytes; dropped");
                len
            } else {
                taken
            };
            if let Some(conn) = self.conns.get_mut(&peer) {
                conn.consume(taken);
            }
            self.drain();
        }
    }

    /// A writer's progress: the peer took bytes, and the pause may lift.
    fn wrote(&mut self, peer: PeerId, n: usize) {
        let Some(conn) = self.conns.get_mut(&peer) else {
            return;
        };
        conn.wrote(n);
        if conn.queued() < LOW_WATER {
            self.resume();
        }
    }

    /// Lifts the pause once every queue is below [`LOW_WATER`] and feeds the held
    /// chunks in the order they came, until done or paused again.
    fn resume(&mut self) {
        if !self.paused || self.conns.values().any(|c| c.queued() >= LOW_WATER) {
            return;
        }
        self.paused = false;
        while !self.paused {
            let Some(peer) = self.waiting.pop_front() else {
                return;
            };
            self.feed(peer);
        }
    }

    /// The node's timeout, the stall check, or both, whichever are due.
    fn timeout(&mut self) {
        if self
            .stall_wake
            .is_some_and(|at| at <= std::time::Instant::now())
        {
            self.check_stalls();
        }
        if self.wake.is_some_and(|at| at <= self.now()) {
            self.input(Input::Timeout);
        }
        let now = self.now();
        if self.mode.deadline().is_some_and(|at| at <= now) {
            self.mode.timeout(now, &mut self.actions);
            self.act();
        }
    }

    /// Disconnects every peer that took none of its waiting bytes for the stall
    /// timeout, and sets the next check.
    fn check_stalls(&mut self) {
        let now = std::time::Instant::now();
        self.stall_wake = None;
        let mut stalled = Vec::new();
        for (&peer, conn) in &self.conns {
            let Some(since) = conn.waiting_since() else {
                continue;
            };
            let at = since + self.stall;
            if at <= now {
                stalled.push(peer);
            } else {
                self.stall_wake = Some(self.stall_wake.map_or(at, |w| w.min(at)));
            }
        }
        for peer in stalled {
            if let Some(conn) = self.conns.remove(&peer) {
                conn.abort();
            }
            let reason = format!(
                "not reading (no bytes taken for {} s)",
                self.stall.as_secs_f64()
            );
            self.input(Input::Closed {
                peer,
                error: Some(&reason),
            });
        }
        self.resume();
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
                Output::Transmit { peer, data } => match self.conns.get_mut(&peer) {
                    Some(conn) => {
                        if conn.send(data.to_vec()) {
                            let at = std::time::Instant::now() + self.stall;
                            self.stall_wake = Some(self.stall_wake.map_or(at, |w| w.min(at)));
                        }
                        if conn.queued() > HIGH_WATER {
                            self.paused = true;
                        }
                    }
                    None => debug!("{peer} has no connection for its bytes"),
                },
                Output::Connect { peer, host, port } => {
                    net::dial(peer, host.to_string(), port, self.tx.clone());
                }
                Output::Close { peer } => {
                    if let Some(conn) = self.conns.remove(&peer) {
                        conn.close();
                    }
                    // Its queue no longer holds the room (`resume` feeds, so not from here).
                    self.recheck = self.paused;
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
