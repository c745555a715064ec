//! The driver thread: owns the node, turns messages from the I/O threads into
//! inputs and the node's outputs into writes, dials, closes and printed events.

use std::collections::{HashMap, VecDeque};
use std::net::TcpListener;
use std::ops::Range;
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::time::Duration;

use meshtalk_core::command::{Command, Grammar};
use meshtalk_core::limits::{RATE_PIECE, ROUTES};
use meshtalk_core::mode::{Action, Hears};
use meshtalk_core::node::{Config, Event, Handled, Input, Node, Output, Phase};
use meshtalk_core::peers::PeerId;
use meshtalk_core::shell::backoff::Backoff;
use meshtalk_core::shell::feed::{Feeder, Next};
use meshtalk_core::shell::flow::{self, Flow};
use meshtalk_core::shell::rate::{Limiter, Rate, line_piece};
use meshtalk_core::time::{self, Instant};

use crate::channel::{Msg, ToDriver};
use crate::clock::Clock;
use crate::keys::Keys;
use crate::line::Shared;
use crate::log::{debug, diag};
use crate::net::{self, Conn, Got, Readers, Writers};
use crate::reach::Bound;
use crate::render::Render;
use crate::said::Said;
use keys::KeyRing;

mod events;
mod keys;
mod links;
mod nearby;
mod script;

use links::Dial;
use script::Script;

/// The most peers the host's node holds (`--max-peers` at most).
pub const MAX_PEERS: usize = 1024;
/// The host's node: 1024 peers, 8 KiB frames, 128 KiB of pending output, routes
/// to 64 nodes through the mesh (~10 MB).
pub type HostNode = Node<MAX_PEERS, 8192, 131072, ROUTES>;
/// The bytes waiting for each of the node's peers.
type HostFlow = Flow<MAX_PEERS>;
/// Whose read bytes the node is fed next (the kit's turns and waiting rings).
type HostFeeder = Feeder<MAX_PEERS>;

/// The subcommand's rules (see [`meshtalk_core::mode`]), hearing the host's events.
pub type HostMode = Box<dyn Hears<String> + Send>;

/// How long the writers get to send what is queued when the program ends.
pub(crate) const EXIT_FLUSH: Duration = Duration::from_secs(1);

/// How the host runs its connections, from the command line.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// A peer that takes none of the bytes waiting for it this long is disconnected.
    pub stall: Duration,
    /// TCP keepalive idle time on every connection; `None`: off.
    pub keepalive: Option<Duration>,
    /// Re-dial outbound peers that drop, with backoff.
    pub reconnect: bool,
    /// The most messages per second shown from one peer; `None`: no limit.
    pub rate_limit: Option<f64>,
    /// Announce this node on the LAN and hear others (needs a listener).
    pub discover: bool,
    /// Link to at most this many room members discovery finds; `None`: none.
    pub auto_connect: Option<usize>,
}

/// Runs the node until the person (or the `mode`, or SIGINT/SIGTERM) quits; returns
/// the exit code. Call it on a thread with a large stack: the node lives on it. No
/// listener: dial only.
pub fn run(
    config: Config,
    keys: Keys,
    listener: Option<TcpListener>,
    render: Render,
    mode: HostMode,
    options: Options,
) -> i32 {
    // One write of what a turn printed, not one per event: flushed before the
    // driver sleeps, and on the way out.
    crate::screen::buffer();
    let clock = Clock::start();
    let readers = match Readers::new(clock) {
        Ok(readers) => readers,
        Err(e) => {
            diag!("cannot poll sockets: {e}");
            return 1;
        }
    };
    let (tx, rx) = channel();
    let tx = readers.to_driver(tx);
    let (done, done_rx) = channel();
    let listening = listener.as_ref().map(Bound::of);
    let discovery = match &listening {
        Some(Ok(bound)) if options.discover => {
            nearby::start(&config, &keys, bound.addr(), tx.clone())
        }
        _ => None,
    };
    if let Some(listener) = listener {
        net::spawn_listener(listener, tx.clone());
    }
    // The prompt and signal threads speak a plain channel; a thread passes
    // their messages on and wakes the driver.
    let forward = net::spawn_forwarder(tx.clone());
    crate::signal::spawn(forward.clone(), Msg::Signal);
    let (credits, credits_rx) = channel();
    let chats = mode.chats();
    let known = Shared::default();
    let prompt = crate::prompt::spawn(
        forward,
        render.json,
        credits_rx,
        if chats {
            Grammar::Chat
        } else {
            Grammar::Commands
        },
        known.clone(),
    );
    // A person at a chat prompt chats; a script's every line is a command.
    let grammar = match prompt.interactive() && chats {
        true => Grammar::Chat,
        false => Grammar::Commands,
    };
    let writers = match Writers::start(tx.clone(), options.stall) {
        Ok(writers) => writers,
        Err(e) => {
            diag!("cannot start the writer thread: {e}");
            return 1;
        }
    };
    let stall = time::Duration::from(options.stall);
    let limits = flow::Limits {
        stall: Some(stall),
        ..flow::Limits::default()
    };
    let script = Script::new(credits, &config);
    let mut driver = Driver {
        flow: HostFlow::new(limits, config.node_id),
        node: HostNode::new(Config {
            reconnect: options.reconnect,
            ..config
        }),
        clock,
        conns: Conns::default(),
        writers,
        readers,
        ready: VecDeque::new(),
        dirty: Vec::new(),
        batching: false,
        aliases: HashMap::new(),
        tx,
        render,
        done: Some(done),
        wake: None,
        keepalive: options.keepalive,
        stall_wake: None,
        feeder: HostFeeder::new(Default::default()),
        limiter: options.rate_limit.and_then(rate).map(Limiter::new),
        reconnect: options.reconnect,
        dials: HashMap::new(),
        backoff: Backoff::default(),
        recheck: false,
        mode,
        quit: None,
        script,
        interactive: prompt.interactive(),
        said: None,
        grammar,
        known,
        keys: KeyRing::new(keys),
        bound: None,
        nearby: nearby::Nearby::new(discovery, options.auto_connect),
    };
    // Said only now that the node is built, so that a peer told this address is
    // served at once, not after the node's ~10 MB are set up.
    match listening {
        Some(Ok(bound)) => {
            driver.bound = Some(bound);
            driver
                .render
                .listening(bound.addr(), &bound.reach(), driver.keys.fingerprint());
        }
        Some(Err(e)) => diag!("listening, but on which address? {e}"),
        None => {}
    }
    let now = driver.now();
    driver.mode.start(now);
    driver.act();
    driver.serve(&rx);
    let code = driver.exit(&done_rx);
    crate::screen::flush();
    code
}

struct Driver {
    node: HostNode,
    /// What waits for each peer: when input pauses and who stalls.
    flow: HostFlow,
    /// Core time, for the node and every deadline the driver keeps.
    clock: Clock,
    conns: Conns,
    /// The writer thread, which writes what a socket would not take at once.
    writers: Writers,
    /// The poll of every socket for reading (read on this thread).
    readers: Readers,
    /// Peers whose socket is readable and whose last chunk is all taken: each is
    /// read once per round.
    ready: VecDeque<PeerId>,
    /// Peers with bytes queued in this drain, written when it ends.
    dirty: Vec<PeerId>,
    /// A peer's turn is being fed: its drains leave the writing to its end.
    batching: bool,
    /// Each ready peer's alias, for showing events about it.
    aliases: HashMap<PeerId, String>,
    /// For the dialers, which report back on it.
    tx: ToDriver,
    render: Render,
    /// Handed to each connection; once every copy is gone, every one is flushed and closed.
    done: Option<Sender<()>>,
    /// When the node wants [`Input::Timeout`].
    wake: Option<Instant>,
    /// TCP keepalive idle time for every connection; `None`: off.
    keepalive: Option<Duration>,
    /// When to look for stalled peers next (possibly early, never late).
    stall_wake: Option<Instant>,
    /// Fair feeding: peers whose read chunk waits for the pause to lift (first
    /// come first fed), and peers with bytes left after their turn (round-robin).
    feeder: HostFeeder,
    /// With `--rate-limit`: each peer's token bucket, and who waits for a refill.
    limiter: Option<Limiter<MAX_PEERS>>,
    /// Whether outbound peers that drop are dialled again.
    reconnect: bool,
    /// With `reconnect`: where each outbound peer was dialled, to dial it again.
    dials: HashMap<PeerId, Dial>,
    /// When each peer the node keeps as reconnecting is dialled again.
    backoff: Backoff<MAX_PEERS>,
    /// A queue was dropped while input waits: see whether it can go on.
    recheck: bool,
    /// The subcommand's rules: it sees lines, events and its deadline first, and
    /// what it asks for is polled and carried out once the node is drained.
    mode: HostMode,
    /// Set when the mode ends the program: the exit code.
    quit: Option<i32>,
    /// Stdin's lines waiting their turn, and how they went (see [`Script`]).
    script: Script,
    /// A person types at a terminal: text errors carry no line numbers.
    interactive: bool,
    /// At a terminal, the message of the command being carried out, shown as `you -> ...`.
    said: Option<Said>,
    /// How input lines are read: commands only (scripts), or chat (a person at the prompt).
    grammar: Grammar,
    /// What the prompt completes with: peers' aliases and numbers, hosts seen.
    known: Shared,
    /// This node's keys and its peers' vetted keys.
    keys: KeyRing,
    /// How the listener is bound, for `/whoami`'s addresses; `None`: not listening.
    bound: Option<Bound>,
    /// What LAN discovery heard, and whom `--auto-connect` dialled.
    nearby: nearby::Nearby,
}

impl Driver {
    /// Core time now: the one clock of every deadline the driver keeps.
    fn now(&self) -> Instant {
        self.clock.now()
    }

    /// How long to sleep at most: until the node's or the mode's timeout, the next
    /// stall check, re-dial, refilled bucket, the bound of a waiting input line or
    /// the end of a lingering close.
    fn next_wait(&self) -> Option<Duration> {
        let wake = [
            self.wake,
            self.mode.deadline(),
            self.stall_wake,
            self.limiter.as_ref().and_then(Limiter::next_at),
            self.backoff.next_at(),
            self.nearby.next_at(),
            self.script.rules.next_at(),
            self.readers.linger_until(),
        ]
        .into_iter()
        .flatten()
        .min()?;
        Some(wake.saturating_since(self.now()).into())
    }

    /// Sleeps until a socket is readable, a message or a timeout; then handles the
    /// messages, reads each readable peer once and feeds the held turns, round
    /// after round until there is nothing to do; returns when the person quits.
    /// What a round of input queues for each peer goes in one write at its end
    /// (the turn budget is for fairness between senders, not for writing).
    fn serve(&mut self, rx: &Receiver<Msg>) {
        /// Turns fed in one round at most, after its reads (16 KiB each): sockets
        /// that became readable, the writer's progress and timers wait no longer.
        const ROUND_TURNS: usize = 64;
        let mut readable = Vec::new();
        loop {
            if self.quit.is_some() || self.script.rules.finished() {
                return;
            }
            let busy = !self.ready.is_empty() || !self.feeder.turns().is_empty();
            let wait = if busy {
                Some(Duration::ZERO)
            } else {
                self.next_wait()
            };
            if wait != Some(Duration::ZERO) {
                crate::screen::flush();
            }
            self.readers.wait(wait, &mut readable);
            for slot in readable.drain(..) {
                self.mark_readable(slot);
            }
            loop {
                match rx.try_recv() {
                    Ok(msg) => {
                        if self.handle(msg) || self.quit.is_some() {
                            return;
                        }
                        self.recheck();
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            if self.next_wait().is_some_and(|w| w.is_zero()) {
                self.timeout();
            }
            self.batching = true;
            self.read_round();
            for _ in 0..ROUND_TURNS {
                if self.feeder.turns().is_empty() {
                    break;
                }
                self.take_turn();
            }
            self.batching = false;
            self.flush();
            self.run_script();
        }
    }

    /// Resumes held peers if a dropped queue may have let them go on.
    fn recheck(&mut self) {
        if self.recheck {
            self.recheck = false;
            self.resume();
        }
    }

    /// The poll said `slot`'s socket is readable: it is read in the next round,
    /// unless its last chunk waits for the node (then once that is taken).
    fn mark_readable(&mut self, slot: usize) {
        let Some(Some((peer, conn))) = self.conns.slots.get_mut(slot) else {
            return;
        };
        conn.readable = true;
        if conn.pending().is_empty() && !conn.queued {
            conn.queued = true;
            self.ready.push_back(*peer);
        }
    }

    /// Reads each peer queued as readable once (one chunk) and feeds it; those
    /// queued meanwhile wait for the next round.
    fn read_round(&mut self) {
        for _ in 0..self.ready.len() {
            let Some(peer) = self.ready.pop_front() else {
                return;
            };
            let Some(conn) = self.conns.get_mut(&peer) else {
                continue;
            };
            conn.queued = false;
            if !conn.readable || !conn.pending().is_empty() {
                continue;
            }
            match conn.read(&mut self.readers.buf) {
                Got::Data => self.feed(peer),
                Got::Empty => {}
                Got::Closed(error) => self.closed(peer, error.as_deref()),
            }
            self.recheck();
        }
    }

    /// A peer's connection ended (read or write): the node hears of it.
    fn closed(&mut self, peer: PeerId, error: Option<&str>) {
        self.conns.remove(&peer);
        self.flow.forget(peer);
        self.feeder.forget(peer);
        self.input(Input::Closed { peer, error });
        self.resume();
    }

    /// One message (or the timeout); true when the program is to end.
    fn handle(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Line(line) => self.script.push_line(line),
            Msg::EndOfInput => self.script.end_of_input(),
            Msg::Signal(name) => {
                debug!("{name}: saying goodbye to every peer");
                return true;
            }
            Msg::Accepted(stream, addr) => self.accepted(stream, addr),
            Msg::Dialed(peer, result) => self.dialed(peer, result),
            Msg::Wrote(peer, n) => self.wrote(peer, n),
            Msg::Closed(peer, error) => self.closed(peer, error.as_deref()),
            Msg::Nearby(change, seen) => self.nearby_changed(change, &seen),
        }
        false
    }

    /// Feeds the peer whose turn it is (its next budget of held bytes).
    fn take_turn(&mut self) {
        if let Some(peer) = self.feeder.next_turn() {
            self.feed(peer);
        }
        self.recheck();
    }

    /// Feeds one input (not bytes) and drains the outputs; a refusal is printed.
    fn input(&mut self, input: Input<'_>) {
        let now = self.now();
        if let Err(e) = self.node.handle_input(now, input) {
            self.render.error(&e.to_string());
        }
        self.drain();
    }

    /// Feeds a peer's turn (see [`Driver::feed_turn`]); what the whole turn queued
    /// for each peer goes in one write, not one per drain (in `serve`'s rounds,
    /// one per round: the round writes it).
    fn feed(&mut self, peer: PeerId) {
        let outer = std::mem::replace(&mut self.batching, true);
        self.feed_turn(peer);
        self.batching = outer;
        if !outer {
            self.flush();
        }
    }

    /// Feeds a turn of a peer's held chunk by the kit's rules (see
    /// [`meshtalk_core::shell::feed`]), draining whenever the node takes only part
    /// of it. What is left waits: for the peer's next turn, for the pause to lift,
    /// or for its bucket to refill.
    fn feed_turn(&mut self, peer: PeerId) {
        let mut turn = self.feeder.turn(peer);
        loop {
            let now = self.now();
            // A peer that is not ready yet feeds nobody: its greeting goes on.
            let feeds = self.flow.feeds(peer) || !self.node.is_ready(peer);
            let Some(conn) = self.conns.get(&peer) else {
                return;
            };
            let rest = conn.pending();
            let Next::Offer(max) = self.feeder.next(&mut turn, rest.len(), feeds) else {
                return;
            };
            let piece = match &mut self.limiter {
                None => max,
                Some(limiter) => {
                    if !limiter.admit(peer, now) {
                        return;
                    }
                    line_piece(&rest[..max], RATE_PIECE)
                }
            };
            let bytes = &rest[..piece];
            let taken = match self.node.handle_input(now, Input::Received { peer, bytes }) {
                Ok(Handled::Consumed(n)) => n,
                Ok(_) => piece,
                Err(e) => {
                    diag!("bytes from {peer} refused: {e}");
                    piece
                }
            };
            let took = self.feeder.took(&mut turn, piece, taken);
            if took.dropped {
                diag!("{peer}: node took none of {piece} bytes; dropped");
            }
            if let Some(conn) = self.conns.get_mut(&peer)
                && conn.consume(took.consume)
                && conn.readable
                && !conn.queued
            {
                // All taken: the socket may be read on.
                conn.queued = true;
                self.ready.push_back(peer);
            }
            self.drain();
        }
    }

    /// A writer's progress: the peer took bytes, and input may go on.
    fn wrote(&mut self, peer: PeerId, n: usize) {
        let now = self.now();
        self.flow.taken(now, peer, n);
        self.resume();
    }

    /// Feeds the held chunks that the flow lets go on (all of them once the pause
    /// lifts), in the order they came; the others wait on.
    fn resume(&mut self) {
        let mut pass = self.feeder.resume();
        loop {
            let flow = &self.flow;
            let Some(peer) = self.feeder.next_resumed(&mut pass, |p| flow.feeds(p)) else {
                return;
            };
            self.feed(peer);
        }
    }

    /// The node's timeout, the stall check, re-dials, refilled buckets: whichever are due.
    fn timeout(&mut self) {
        self.readers.expire();
        if self.stall_wake.is_some_and(|at| at <= self.now()) {
            self.check_stalls();
        }
        self.refilled();
        self.redial_due();
        self.auto_redial_due();
        if self.wake.is_some_and(|at| at <= self.now()) {
            // Bytes held back by flow control or a turn's budget are the peer's
            // sign of life: its silence and a half-fed frame are ours.
            let held: Vec<PeerId> = self
                .conns
                .iter()
                .filter(|(_, conn)| !conn.pending().is_empty())
                .map(|(&peer, _)| peer)
                .collect();
            self.input(Input::Timeout { held: &held });
        }
        let now = self.now();
        if self.mode.deadline().is_some_and(|at| at <= now) {
            self.mode.timeout(now);
            self.act();
        }
    }

    /// Gives the peers whose bucket has a token again their turn.
    fn refilled(&mut self) {
        let now = self.now();
        let Some(limiter) = &mut self.limiter else {
            return;
        };
        while let Some(peer) = limiter.next_refilled(now) {
            self.feeder.give_turn(peer);
        }
    }

    /// Disconnects every peer that took none of its waiting bytes for the stall
    /// timeout, and sets the next check.
    fn check_stalls(&mut self) {
        let now = self.now();
        let secs = self
            .flow
            .limits()
            .stall
            .map_or(0.0, |d| d.as_millis() as f64 / 1000.0);
        while let Some(peer) = self.flow.next_stalled(now) {
            if let Some(conn) = self.conns.remove(&peer) {
                conn.abort();
            }
            self.feeder.forget(peer);
            let reason = format!("not reading (no bytes taken for {secs} s)");
            self.input(Input::Closed {
                peer,
                error: Some(&reason),
            });
        }
        self.stall_wake = self.flow.next_stall();
        self.resume();
    }

    /// Carries out the node's outputs until it asks only for a timeout.
    fn drain(&mut self) {
        let now = self.now();
        loop {
            match self.node.poll_output(now) {
                Output::Timeout(at) => {
                    self.wake = at;
                    // A round's batch is written early once it holds much: memory
                    // and latency stay bounded, far below the flow's high water.
                    if !self.batching || self.conns.full() {
                        self.flush();
                    }
                    self.give_verdicts();
                    self.act();
                    return;
                }
                Output::Transmit { peer, data, shared } => {
                    match self.conns.transmit(peer, data, shared) {
                        Some(first) => {
                            if first {
                                self.dirty.push(peer);
                            }
                            self.flow.queued(now, peer, data.len());
                        }
                        None => debug!("{peer} has no connection for its bytes"),
                    }
                }
                Output::Connect { peer, host, port } => {
                    self.script.rules.dialled(peer);
                    if self.reconnect {
                        // A re-dial keeps its backoff.
                        let host = host.to_string();
                        self.dials.insert(peer, Dial { host, port });
                        self.backoff.dialled(peer);
                    }
                    net::dial(peer, host.to_string(), port, self.tx.clone());
                }
                Output::Close { peer } => {
                    if let Some(conn) = self.conns.remove(&peer) {
                        conn.close(&mut self.readers);
                    }
                    self.flow.forget(peer);
                    self.feeder.forget(peer);
                    // Its queue no longer holds the room (`resume` feeds, so not from here).
                    self.recheck = !self.feeder.waiting().is_empty();
                }
                Output::Event(event) => {
                    let event = event.map(String::from);
                    self.show(&event);
                }
            }
        }
    }

    /// Writes what this drain (or batch) queued, one write per peer; what a socket would not
    /// take waits in the writer thread, and may pause input or arm the stall check.
    fn flush(&mut self) {
        let now = self.now();
        for peer in std::mem::take(&mut self.dirty) {
            let Some(n) = self.conns.flush(peer) else {
                continue;
            };
            self.flow.taken(now, peer, n);
            if let Some(at) = self.flow.stall_at(peer) {
                self.stall_wake = Some(self.stall_wake.map_or(at, |w| w.min(at)));
            }
        }
        self.conns.recycle();
    }

    /// Reports every receipt still owed as undelivered, says goodbye to every peer,
    /// lets the writer send it (bounded), returns the exit code.
    fn exit(&mut self, done_rx: &Receiver<()>) -> i32 {
        // Farewells on the LAN go out while the links close.
        self.nearby.leave();
        // Receipts not in by now will not be waited for.
        let owed: Vec<(PeerId, u32)> = self
            .node
            .peers()
            .flat_map(|p| self.node.awaiting(p.id).iter().map(move |&id| (p.id, id)))
            .collect();
        for (peer, id) in owed {
            self.show(&Event::Undelivered { peer, id });
        }
        if self.interactive {
            let linked = self.node.peers().filter(|p| p.phase != Phase::Reconnecting);
            self.render.goodbye(linked.count());
        }
        self.input(Input::Command(Command::Exit));
        for (_, conn) in self.conns.drain() {
            conn.close(&mut self.readers);
        }
        // Nothing is read any more: the lingering connections go too.
        self.readers.clear();
        // Once every writer has dropped its copy, this returns at once.
        self.done = None;
        crate::screen::flush();
        let _ = done_rx.recv_timeout(EXIT_FLUSH);
        self.nearby.left();
        self.quit
            .unwrap_or_else(|| i32::from(self.script.rules.status().code()))
    }

    /// Carries out what the mode asked for, in order: each action's text is copied
    /// out before it is carried out, as a command drains the node, whose events go
    /// back to the mode (which may ask for more).
    fn act(&mut self) {
        loop {
            let now = self.now();
            let Some(action) = self.mode.poll_action() else {
                return;
            };
            // The host name or the message: the mode's, copied out before the node runs.
            let text = match action {
                Action::Connect { host: text, .. } | Action::Send(text) => text.to_string(),
                _ => String::new(),
            };
            let cmd = match action {
                Action::Connect { port, .. } => Command::Connect {
                    host: &text,
                    port,
                    alias: None,
                },
                Action::Send(_) => Command::Send {
                    target: None,
                    text: &text,
                    all: &text,
                },
                Action::Disconnect => Command::Disconnect { target: None },
                Action::Error(e) => {
                    self.error(&e.to_string());
                    continue;
                }
                Action::LogSent { peer, lines } => {
                    self.render.log_sent(peer, lines);
                    continue;
                }
                Action::Log(log) => {
                    let lines: Vec<String> = log.lines().map(String::from).collect();
                    self.render.log(&lines);
                    continue;
                }
                Action::Quit(code) => {
                    self.quit.get_or_insert(i32::from(code));
                    continue;
                }
            };
            let refused = self.node.handle_input(now, Input::Command(cmd)).err();
            if let Some(e) = refused {
                self.error(&e.to_string());
                if !matches!(cmd, Command::Disconnect { .. }) {
                    self.mode.refused(now);
                }
            }
            self.drain();
        }
    }
}

/// Each peer's connection, in a vector indexed by the peer's slot in the node:
/// a lookup for every byte string the node hands out is an index, not a hash.
/// What a drain queues is copied once into a pool shared by all connections, so a
/// room message is one copy however many peers it goes to, and written to each
/// from there.
#[derive(Default)]
struct Conns {
    slots: Vec<Option<(PeerId, Conn)>>,
    /// The bytes queued since the last flush, each node output once.
    pool: Vec<u8>,
    /// Where the last output copied into the pool is: the node marks a
    /// transmit of the same bytes `shared`, and it is written from there.
    last: Option<Range<usize>>,
    /// The most bytes queued for one peer since the last flush.
    most: usize,
}

/// A pool emptied by a flush keeps at most this much room.
const POOL_KEEP: usize = 4 << 20;

impl Conns {
    /// Bytes queued for one peer past which a batch is written before its round
    /// ends: well below the flow's high water (1 MiB a peer).
    const FLUSH_AT: usize = 64 << 10;
    /// Bytes in the pool past which a batch is written before its round ends: the
    /// room it keeps (a fan-out to peers of mixed kinds copies its bytes again at each change of kind).
    const POOL_FLUSH_AT: usize = POOL_KEEP;

    /// Queues the node's `data` for `peer` (the bytes copied last, when the node
    /// says they are `shared`); `Some(true)` when it is the first since the last
    /// flush, `None` when the peer has no connection.
    fn transmit(&mut self, peer: PeerId, data: &[u8], shared: bool) -> Option<bool> {
        if !shared {
            // Other bytes: what was copied last is not theirs, whoever they are for.
            self.last = None;
        }
        let Some(Some((id, conn))) = self.slots.get_mut(peer.slot()) else {
            return None;
        };
        if *id != peer {
            return None;
        }
        let range = match &self.last {
            Some(range) if shared => range.clone(),
            _ => {
                let start = self.pool.len();
                self.pool.extend_from_slice(data);
                let range = start..self.pool.len();
                self.last = Some(range.clone());
                range
            }
        };
        let first = conn.staged() == 0;
        conn.send_shared(&self.pool, range);
        self.most = self.most.max(conn.staged());
        Some(first)
    }

    /// Writes what is queued for `peer`; how many bytes the socket took now.
    fn flush(&mut self, peer: PeerId) -> Option<usize> {
        let pool = &self.pool;
        let conn = match self.slots.get_mut(peer.slot())? {
            Some((id, conn)) if *id == peer => conn,
            _ => return None,
        };
        Some(conn.flush_from(pool))
    }

    /// Whether what is queued has reached [`Conns::FLUSH_AT`] for a peer or
    /// [`Conns::POOL_FLUSH_AT`] in all: time to write it.
    fn full(&self) -> bool {
        self.pool.len() >= Self::POOL_FLUSH_AT || self.most >= Self::FLUSH_AT
    }

    /// Empties the pool once every connection has been flushed.
    fn recycle(&mut self) {
        self.pool.clear();
        self.last = None;
        self.most = 0;
        if self.pool.capacity() > POOL_KEEP {
            self.pool = Vec::new();
        }
    }

    fn get(&self, peer: &PeerId) -> Option<&Conn> {
        match self.slots.get(peer.slot())? {
            Some((id, conn)) if id == peer => Some(conn),
            _ => None,
        }
    }

    fn get_mut(&mut self, peer: &PeerId) -> Option<&mut Conn> {
        match self.slots.get_mut(peer.slot())? {
            Some((id, conn)) if id == peer => Some(conn),
            _ => None,
        }
    }

    /// Adds `peer`'s connection; one the slot still held (a peer gone unnoticed) is closed.
    fn insert(&mut self, peer: PeerId, conn: Conn) {
        let slot = peer.slot();
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, || None);
        }
        if let Some((_, mut old)) = self.slots[slot].replace((peer, conn)) {
            old.settle(&self.pool);
        }
    }

    /// Takes `peer`'s connection out, with its own copy of what is queued for it.
    fn remove(&mut self, peer: &PeerId) -> Option<Conn> {
        let entry = self.slots.get_mut(peer.slot())?;
        let (_, mut conn) = entry.take_if(|(id, _)| id == peer)?;
        conn.settle(&self.pool);
        Some(conn)
    }

    fn iter(&self) -> impl Iterator<Item = (&PeerId, &Conn)> {
        self.slots.iter().flatten().map(|(id, conn)| (id, conn))
    }

    fn drain(&mut self) -> impl Iterator<Item = (PeerId, Conn)> + '_ {
        let pool = &self.pool;
        self.slots.drain(..).flatten().map(|(id, mut conn)| {
            conn.settle(pool);
            (id, conn)
        })
    }
}

/// `--rate-limit` messages a second as the kit counts them, in thousandths (a
/// rate the command line let through is at least one thousandth).
fn rate(per_sec: f64) -> Option<Rate> {
    let milli = (per_sec * 1000.0).round().clamp(1.0, f64::from(u32::MAX));
    Rate::new(milli as u32).ok()
}
