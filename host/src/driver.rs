//! The driver thread: owns the node, turns messages from the I/O threads into
//! inputs and the node's outputs into writes, dials, closes and printed events.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::ops::Range;
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::time::Duration;

use meshtalk_core::command::{self, Command, Emote, Grammar, HELP};
use meshtalk_core::limits::RATE_PIECE;
use meshtalk_core::node::{Config, Event, Handled, Input, Node, NodeError, Output, Phase};
use meshtalk_core::peers::{Direction, PeerId};
use meshtalk_core::shell::backoff::Backoff;
use meshtalk_core::shell::feed::{Feeder, Next};
use meshtalk_core::shell::flow::{self, Flow};
use meshtalk_core::shell::rate::{Limiter, Rate, line_piece};
use meshtalk_core::time::{self, Instant};

use crate::channel::{Msg, ToDriver};
use crate::line::{Known, Shared};
use crate::log::{debug, diag};
use crate::mode::{Action, Mode};
use crate::net::{self, Conn, Got, Readers, Writers};
use crate::render::Render;
use crate::said::Said;
use crate::transcript;

/// The most peers the host's node holds (`--max-peers` at most).
pub const MAX_PEERS: usize = 1024;
/// The host's node: 1024 peers, 8 KiB frames, 128 KiB of pending output (~10 MB).
pub type HostNode = Node<MAX_PEERS, 8192, 131072>;
/// The bytes waiting for each of the node's peers.
type HostFlow = Flow<MAX_PEERS>;
/// Whose read bytes the node is fed next (the kit's turns and waiting rings).
type HostFeeder = Feeder<MAX_PEERS>;

/// How long the writers get to send what is queued when the program ends.
pub(crate) const EXIT_FLUSH: Duration = Duration::from_secs(1);

/// The exit status when a command from stdin failed (a dial included).
pub const EXIT_FAILED: i32 = 1;
/// The exit status when a message went undelivered (added to [`EXIT_FAILED`]: 5 is both).
pub const EXIT_UNDELIVERED: i32 = 4;

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
}

/// Runs the node until the person (or the `mode`, or SIGINT/SIGTERM) quits; returns
/// the exit code. Call it on a thread with a large stack: the node lives on it. No
/// listener: dial only.
pub fn run(
    config: Config,
    listener: Option<TcpListener>,
    render: Render,
    mode: Box<dyn Mode>,
    options: Options,
) -> i32 {
    // One write of what a turn printed, not one per event: flushed before the
    // driver sleeps, and on the way out.
    crate::render::buffer();
    let readers = match Readers::new() {
        Ok(readers) => readers,
        Err(e) => {
            diag!("cannot poll sockets: {e}");
            return 1;
        }
    };
    let (tx, rx) = channel();
    let tx = readers.to_driver(tx);
    let (done, done_rx) = channel();
    let listening = listener.as_ref().map(TcpListener::local_addr);
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
    let stall =
        time::Duration::from_millis(u64::try_from(options.stall.as_millis()).unwrap_or(u64::MAX));
    let limits = flow::Limits {
        stall: Some(stall),
        ..flow::Limits::default()
    };
    let mut driver = Driver {
        flow: HostFlow::new(limits, config.node_id),
        node: HostNode::new(Config {
            reconnect: options.reconnect,
            ..config
        }),
        origin: std::time::Instant::now(),
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
        actions: Vec::new(),
        quit: None,
        script: VecDeque::new(),
        lines_read: 0,
        credits,
        current_line: None,
        waiting_since: None,
        ending: false,
        end_by: None,
        finished: false,
        sent_line: HashMap::new(),
        dial_line: HashMap::new(),
        failed: false,
        undelivered: false,
        interactive: prompt.interactive(),
        said: None,
        grammar,
        known,
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
    let code = driver.exit(&done_rx);
    crate::render::flush();
    code
}

struct Driver {
    node: HostNode,
    /// What waits for each peer: when input pauses and who stalls.
    flow: HostFlow,
    /// The std time that is core time zero.
    origin: std::time::Instant,
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
    /// The subcommand's rules: it sees lines, events and its deadline first.
    mode: Box<dyn Mode>,
    /// What the mode asked for, carried out once the node is drained.
    actions: Vec<Action>,
    /// Set when the mode ends the program: the exit code.
    quit: Option<i32>,
    /// Stdin's lines (and its end) not yet done, in order: the first may wait for
    /// a link being set up or for the receipt window, and the others wait behind it.
    script: VecDeque<Script>,
    /// The number of the last line read from stdin.
    lines_read: u64,
    /// One credit per line done, to the prompt thread, which reads only so far ahead.
    credits: Sender<()>,
    /// The input line being carried out: its dials, sends and errors name it.
    current_line: Option<u64>,
    /// Since when the first line of `script` has waited (a wait has its bound).
    waiting_since: Option<std::time::Instant>,
    /// Input ended (or `exit` came): no more lines run; owed receipts are awaited.
    ending: bool,
    /// Owed receipts are awaited until then; the rest are undelivered.
    end_by: Option<Instant>,
    /// Everything is done: the program says goodbye and exits.
    finished: bool,
    /// The input line of each sent message whose receipt is owed.
    sent_line: HashMap<(PeerId, u32), u64>,
    /// The input line of each dial under way.
    dial_line: HashMap<PeerId, u64>,
    /// A command from stdin failed: the exit status says so.
    failed: bool,
    /// A message went undelivered: the exit status says so.
    undelivered: bool,
    /// A person types at a terminal: text errors carry no line numbers.
    interactive: bool,
    /// At a terminal, the message of the command being carried out, shown as `you -> ...`.
    said: Option<Said>,
    /// How input lines are read: commands only (scripts), or chat (a person at the prompt).
    grammar: Grammar,
    /// What the prompt completes with: peers' aliases and numbers, hosts seen.
    known: Shared,
}

/// What stdin gave the driver, waiting its turn.
enum Script {
    /// A line, with its number (the first is 1).
    Line(u64, String),
    /// The end of input.
    End,
}

/// What became of one input line.
enum Step {
    /// Done (carried out, or failed with its error).
    Done,
    /// It needs what is not there yet: it is tried again when something changes.
    Wait,
    /// `exit`: nothing after it runs.
    Exit,
}

impl Driver {
    /// Core time now: milliseconds since `origin`.
    fn now(&self) -> Instant {
        let ms = self.origin.elapsed().as_millis();
        Instant::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    /// How long to sleep at most: until the node's or the mode's timeout, the next
    /// stall check, re-dial or refilled bucket.
    fn next_wait(&self) -> Option<Duration> {
        let wake = [
            self.wake,
            self.mode.deadline(),
            self.stall_wake,
            self.end_by,
            self.limiter.as_ref().and_then(Limiter::next_at),
            self.backoff.next_at(),
        ]
        .into_iter()
        .flatten()
        .min();
        let node =
            wake.map(|at| Duration::from_millis(at.saturating_since(self.now()).as_millis()));
        let now = std::time::Instant::now();
        let limit = self.waiting_since.map(|since| since + self.wait_limit());
        limit
            .into_iter()
            .chain(self.readers.linger_until())
            .map(|at| at.saturating_duration_since(now))
            .chain(node)
            .min()
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
            if self.quit.is_some() || self.finished {
                return;
            }
            let busy = !self.ready.is_empty() || !self.feeder.turns().is_empty();
            let wait = if busy {
                Some(Duration::ZERO)
            } else {
                self.next_wait()
            };
            if wait != Some(Duration::ZERO) {
                crate::render::flush();
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
            Msg::Line(line) => {
                self.lines_read += 1;
                self.script.push_back(Script::Line(self.lines_read, line));
            }
            Msg::EndOfInput => self.script.push_back(Script::End),
            Msg::Signal(name) => {
                debug!("{name}: saying goodbye to every peer");
                return true;
            }
            Msg::Accepted(stream, addr) => self.accepted(stream, addr),
            Msg::Dialed(peer, result) => self.dialed(peer, result),
            Msg::Wrote(peer, n) => self.wrote(peer, n),
            Msg::Closed(peer, error) => self.closed(peer, error.as_deref()),
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

    /// Runs stdin's lines in order, each done before the next starts; stops at one
    /// that must wait. After the end of input, waits for owed receipts (up to the
    /// dead-after time), then finishes.
    fn run_script(&mut self) {
        while let Some(item) = self.script.pop_front() {
            let (no, text) = match item {
                Script::End => {
                    let now = self.now();
                    if self.mode.end_of_input(now, &mut self.actions) {
                        self.act();
                    } else {
                        self.ending = true;
                    }
                    continue;
                }
                Script::Line(no, text) => (no, text),
            };
            let step = match self.ending {
                // After `exit`: read, not run.
                true => Step::Done,
                false => self.line(no, &text),
            };
            match step {
                Step::Wait => {
                    self.waiting_since
                        .get_or_insert_with(std::time::Instant::now);
                    self.script.push_front(Script::Line(no, text));
                    return;
                }
                Step::Done => {}
                Step::Exit => self.ending = true,
            }
            self.waiting_since = None;
            // The prompt thread reads one line further (it is gone at the end).
            let _ = self.credits.send(());
            if self.quit.is_some() {
                return;
            }
        }
        if self.ending && !self.finished {
            let owed = self.node.peers().any(|p| p.unacked > 0);
            let now = self.now();
            let by = *self
                .end_by
                .get_or_insert_with(|| now + self.node.config().dead_after);
            self.finished = !owed || by <= now;
        }
    }

    /// How long one input line may wait for receipts or for queues to drain: as long
    /// as the node takes to give up on a silent peer; then it fails with its error.
    fn wait_limit(&self) -> Duration {
        let config = self.node.config();
        let ping = config.ping_after.unwrap_or(time::Duration::ZERO);
        Duration::from_millis((ping + config.dead_after).as_millis())
    }

    /// One input line, numbered `no`: done, or waiting for what it needs, which
    /// the node says is not there yet (a link still being set up, a full receipt
    /// window, queues over their high water), until the wait's bound is reached.
    fn line(&mut self, no: u64, line: &str) -> Step {
        let now = self.now();
        self.current_line = Some(no);
        let step = self.command(no, line, now);
        self.current_line = None;
        step
    }

    fn command(&mut self, no: u64, line: &str, now: Instant) -> Step {
        if self.mode.line(line, self.grammar, now, &mut self.actions) {
            self.act();
            return Step::Done;
        }
        let expired = self
            .waiting_since
            .is_some_and(|since| since.elapsed() >= self.wait_limit());
        match command::parse_in(line, self.grammar) {
            Ok(None) => {}
            Err(e) => self.fail(no, &e.to_string()),
            Ok(Some(Command::Exit)) => return Step::Exit,
            Ok(Some(Command::Help { topic })) => {
                self.render.help(command::help_text(topic).unwrap_or(HELP));
            }
            Ok(Some(Command::List)) => {
                let now = self.now();
                let backoff = &self.backoff;
                let redial_in = |peer: PeerId| {
                    let wait = backoff.redial_in(peer, now)?;
                    Some(Duration::from_millis(wait.as_millis()))
                };
                self.render.peers(self.node.peers(), redial_in);
            }
            Ok(Some(Command::Log { file })) => self.log_to(no, file),
            Ok(Some(cmd)) => {
                let single = self.node.config().single_peer;
                let says = matches!(cmd, Command::Say { .. } | Command::Me { .. });
                let sends = says || matches!(cmd, Command::Send { .. } | Command::Broadcast { .. });
                // A room message goes to every link: those being dialled too.
                let room = (matches!(cmd, Command::Broadcast { .. }) || (says && !single))
                    && self.dialing();
                // Leaving a peer gives up on its receipts: those owed come first.
                let owed = matches!(cmd, Command::Disconnect { .. })
                    && self.node.peers().any(|p| p.unacked > 0);
                if (((sends && self.flow.paused()) || owed) && !expired) || room {
                    return Step::Wait;
                }
                if let Command::Connect { host, .. } = cmd {
                    self.known_mut().saw_host(host);
                }
                self.said = self.said_of(&cmd);
                let nick = match cmd {
                    Command::Nick { name } => Some(name.to_string()),
                    _ => None,
                };
                let step = match self.node.handle_input(now, Input::Command(cmd)) {
                    Ok(_) => {
                        if let Some(name) = nick {
                            self.render.help(&format!("you are now known as {name}"));
                        }
                        Step::Done
                    }
                    Err(e) if self.waits(&e, expired) => Step::Wait,
                    Err(e) => {
                        self.fail(no, &e.to_string());
                        Step::Done
                    }
                };
                self.drain();
                self.said = None;
                return step;
            }
        }
        Step::Done
    }

    /// What the person says with `cmd`, kept to show (`you -> bob: ...`) and for the
    /// transcript: a line said at the prompt goes to the peer in a chat, else to the room.
    fn said_of(&self, cmd: &Command<'_>) -> Option<Said> {
        if !(self.interactive || transcript::on()) {
            return None;
        }
        let text = match *cmd {
            Command::Say { text } => text.to_string(),
            Command::Me { action } => Emote {
                name: &self.node.config().name,
                action,
            }
            .to_string(),
            _ => return Said::of(cmd),
        };
        Some(match self.node.config().single_peer {
            true => Said::To {
                target: None,
                all: text.clone(),
                text,
            },
            false => Said::Room(text),
        })
    }

    /// `/log FILE`: keeps the transcript there from now on; `/log`: stops it.
    fn log_to(&mut self, no: u64, file: Option<&str>) {
        match file {
            Some(file) => match transcript::open(std::path::Path::new(file)) {
                Ok(()) => self.render.help(&format!("transcript kept in {file}")),
                Err(e) => self.fail(no, &e.to_string()),
            },
            None => match transcript::close() {
                Some(path) => self
                    .render
                    .help(&format!("transcript in {} stopped", path.display())),
                None => self
                    .render
                    .help("no transcript is kept; /log FILE starts one"),
            },
        }
    }

    /// The prompt's completions, to update.
    fn known_mut(&self) -> std::sync::MutexGuard<'_, Known> {
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

    /// Whether a command refused with `e` may succeed once a link is set up or
    /// receipts come: the node says the peer is still connecting, or the peer named
    /// is not there (yet) while a dial is under way (the dial's outcome decides),
    /// or its receipt window is full (until the wait has `expired`).
    fn waits(&self, e: &NodeError<'_>, expired: bool) -> bool {
        match e {
            NodeError::NotReady(_) => true,
            NodeError::WindowFull(_) => !expired,
            NodeError::Lookup(_) | NodeError::NoPeers | NodeError::WhichPeer { .. } => {
                self.dialing()
            }
            _ => false,
        }
    }

    /// Whether a link we dialled is still being set up (the node's phase for it).
    fn dialing(&self) -> bool {
        self.node.peers().any(|p| {
            p.direction == Direction::Outbound
                && matches!(p.phase, Phase::Dialing | Phase::Greeting | Phase::Hello)
        })
    }

    /// Input line `no` failed with `message`: shown, and the exit status says so.
    fn fail(&mut self, no: u64, message: &str) {
        self.failed = true;
        self.render.error_at(no, !self.interactive, message);
    }

    /// Shows an error: one that answers the input line being carried out names it.
    fn error(&mut self, message: &str) {
        match self.current_line {
            Some(no) => self.fail(no, message),
            None => self.render.error(message),
        }
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
        let addr = canonical(addr);
        let now = self.now();
        match self.node.handle_input(now, Input::Accepted { addr }) {
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

    fn dialed(&mut self, peer: PeerId, result: io::Result<TcpStream>) {
        let connected = result.and_then(|stream| Ok((canonical(stream.peer_addr()?), stream)));
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
            self.mode.timeout(now, &mut self.actions);
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

    /// Says that `peer`, which the node keeps as reconnecting, will be dialled again,
    /// and when; the wait doubles for the next time (the kit's backoff).
    fn schedule(&mut self, peer: PeerId) {
        let Some(dial) = self.dials.get(&peer) else {
            return;
        };
        let Some(wait) = self.backoff.schedule(peer, self.now()) else {
            return;
        };
        let wait = Duration::from_millis(wait.as_millis());
        self.render.reconnecting(peer, &dial.host, dial.port, wait);
    }

    /// Dials again each reconnecting peer whose wait is over, under its id and alias; a
    /// peer disconnected meanwhile is gone from the node, and its dial forgotten.
    fn redial_due(&mut self) {
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
    fn reconnecting(&self, peer: PeerId) -> bool {
        self.node.phase(peer) == Some(Phase::Reconnecting)
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
                    if let Some(line) = self.current_line {
                        self.dial_line.insert(peer, line);
                    }
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

    /// Prints an event with its peer's alias as of that event. The node may already
    /// have dropped the peer (its bytes and its close came in one read), so the
    /// aliases are tracked from the events themselves.
    fn show(&mut self, event: &Event<String>) {
        match event {
            Event::Connected { peer, alias, .. } => {
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
        let line = self.line_of(event);
        let alias = event_peer(event).and_then(|peer| self.aliases.get(&peer));
        let now = self.now();
        if self.mode.event(event, now, &mut self.actions) && !self.show_said(event) {
            self.render.event_at(event, alias.map(String::as_str), line);
        }
        // A peer the node keeps as reconnecting is dialled again (said after its
        // drop); one that is gone (disconnected here, say) is dialled no more.
        if let Event::Disconnected { peer, .. } | Event::ConnectFailed { peer, .. } = event {
            if let Some(limiter) = &mut self.limiter {
                limiter.forget(*peer);
            }
            self.aliases.remove(peer);
            if self.reconnecting(*peer) {
                self.schedule(*peer);
            } else {
                self.dials.remove(peer);
                self.backoff.forget(*peer);
            }
        }
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
                let text = said.text_to(&info, self.node.config().single_peer);
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
                Said::To { .. } => false,
            },
            _ => false,
        }
    }

    /// The input line an event answers, if any; notes failed dials and lost messages.
    fn line_of(&mut self, event: &Event<String>) -> Option<u64> {
        match *event {
            Event::Sent {
                peer,
                id,
                receipt: true,
            } => {
                let line = self.current_line?;
                self.sent_line.insert((peer, id), line);
                Some(line)
            }
            Event::Delivered { peer, id } => self.sent_line.remove(&(peer, id)),
            Event::Undelivered { peer, id } => {
                self.undelivered = true;
                self.sent_line.remove(&(peer, id))
            }
            Event::ConnectFailed { peer, .. } => {
                let line = self.dial_line.remove(&peer);
                self.failed |= line.is_some();
                line
            }
            Event::Connected { peer, .. } | Event::Disconnected { peer, .. } => {
                self.dial_line.remove(&peer).or(self.current_line)
            }
            // What carrying out a line brings about answers that line.
            _ => self.current_line,
        }
    }

    /// 0 when every command from stdin succeeded and every message was delivered;
    /// else [`EXIT_FAILED`], plus [`EXIT_UNDELIVERED`] for lost messages.
    fn status(&self) -> i32 {
        let failed = if self.failed { EXIT_FAILED } else { 0 };
        let lost = if self.undelivered {
            EXIT_UNDELIVERED
        } else {
            0
        };
        failed + lost
    }

    /// Reports every receipt still owed as undelivered, says goodbye to every peer,
    /// lets the writer send it (bounded), returns the exit code.
    fn exit(&mut self, done_rx: &Receiver<()>) -> i32 {
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
        crate::render::flush();
        let _ = done_rx.recv_timeout(EXIT_FLUSH);
        self.quit.unwrap_or_else(|| self.status())
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
                    self.error(message);
                    continue;
                }
                Action::LogSent { peer, lines } => {
                    self.render.log_sent(*peer, *lines);
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
                self.error(&e.to_string());
                if !matches!(action, Action::Disconnect) {
                    self.mode.refused(now, &mut self.actions);
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
    /// room it keeps (a native room message is one copy per receiver).
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

/// `--rate-limit` messages a second as the kit counts them, in thousandths (a
/// rate the command line let through is at least one thousandth).
fn rate(per_sec: f64) -> Option<Rate> {
    let milli = (per_sec * 1000.0).round().clamp(1.0, f64::from(u32::MAX));
    Rate::new(milli as u32).ok()
}

/// Where an outbound peer was dialled, for `mesh --reconnect` to dial it again
/// (when is the kit's [`Backoff`]).
#[derive(Clone, Debug)]
struct Dial {
    host: String,
    port: u16,
}
