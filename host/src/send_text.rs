//! `meshtalk send --text`: the one-way client for older servers, with no node at
//! all. Each line of stdin is one bare write of raw text, spaced apart; then `quit`,
//! and what the server sends back until it closes is printed as the log.

use std::collections::VecDeque;
use std::io::{self, BufRead, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use meshtalk_core::limits;
use meshtalk_core::mode::QUIT;

use crate::cli::DEFAULT_STALL;
use crate::driver::EXIT_FLUSH;
use crate::log::debug;
use crate::net;
use crate::render::Render;

/// Time between two writes: [`limits::SEND_TEXT_GAP`].
const TEXT_GAP: Duration = Duration::from_millis(limits::SEND_TEXT_GAP.as_millis());
/// After `quit`, the log is what arrives until end of stream or this much silence.
const TEXT_SILENCE: Duration = Duration::from_millis(limits::SEND_TEXT_SILENCE.as_millis());
/// Lines `send --text` reads from stdin before they are sent, at most.
const READ_AHEAD: usize = 16;

/// What `send --text`'s loop hears: stdin's lines and end, and signals.
enum TextInput {
    Line(String),
    /// Stdin ended (or failed, which was reported).
    End,
    /// SIGINT or SIGTERM (named): stop sending, say `quit`, exit 0.
    Signal(&'static str),
}

/// Lines read from stdin (by a thread of their own) and signals, queued here in
/// the order they came, a signal taking its turn before every queued line.
struct TextFeed {
    rx: Receiver<TextInput>,
    /// One to the stdin thread for each line taken, so it reads at most
    /// [`READ_AHEAD`] lines ahead of the writes.
    credits: Sender<()>,
    lines: VecDeque<String>,
    ended: bool,
    signal: Option<&'static str>,
}

impl TextFeed {
    /// Catches SIGINT/SIGTERM and reads stdin from now on.
    fn start(render: Render) -> TextFeed {
        let (tx, rx) = channel();
        crate::signal::spawn(tx.clone(), TextInput::Signal);
        let (credits, credit_rx) = channel();
        for _ in 0..READ_AHEAD {
            let _ = credits.send(());
        }
        let spawned = std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || read_stdin(&tx, &credit_rx, render));
        let mut feed = TextFeed {
            rx,
            credits,
            lines: VecDeque::new(),
            ended: false,
            signal: None,
        };
        if let Err(e) = spawned {
            render.error(&format!("cannot start the stdin thread: {e}"));
            feed.ended = true;
        }
        feed
    }

    /// The next line, if one is queued.
    fn pop(&mut self) -> Option<String> {
        let line = self.lines.pop_front()?;
        let _ = self.credits.send(());
        Some(line)
    }

    /// Takes everything that has come, waiting first until `until` (`None`: until
    /// anything comes) when nothing has.
    fn wait(&mut self, until: Option<Instant>) {
        let first = match until {
            None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(at) => self
                .rx
                .recv_timeout(at.saturating_duration_since(Instant::now())),
        };
        let first = match first {
            Ok(first) => first,
            Err(RecvTimeoutError::Timeout) => return,
            Err(RecvTimeoutError::Disconnected) => {
                // Every sender is gone: no more input can come; still wait as asked.
                self.ended = true;
                if let Some(at) = until {
                    std::thread::sleep(at.saturating_duration_since(Instant::now()));
                }
                return;
            }
        };
        for input in std::iter::once(first).chain(self.rx.try_iter()) {
            match input {
                TextInput::Line(line) => self.lines.push_back(line),
                TextInput::End => self.ended = true,
                TextInput::Signal(name) => self.signal = Some(name),
            }
        }
    }
}

/// Sends each line of stdin to `tx`, one for each credit, then [`TextInput::End`].
fn read_stdin(tx: &Sender<TextInput>, credits: &Receiver<()>, render: Render) {
    let stdin = io::stdin();
    let mut line = String::new();
    loop {
        if credits.recv().is_err() {
            return;
        }
        line.clear();
        match stdin.lock().read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                render.error(&format!("reading stdin failed: {e}"));
                break;
            }
        }
        let message = line.trim_end_matches(['\n', '\r']).to_string();
        if tx.send(TextInput::Line(message)).is_err() {
            return;
        }
    }
    let _ = tx.send(TextInput::End);
}

/// `send --text`: raw text to an older server. Each line is one bare write (no newline),
/// [`TEXT_GAP`] apart; then the four bytes `quit` (always, even at end of input), and
/// what comes back is printed as the log. Returns the exit code.
///
/// SIGINT or SIGTERM stops it as they stop the other modes: no further line is
/// sent, `quit` is (the older protocol's goodbye), and the log is printed if the
/// server sends it and closes within [`EXIT_FLUSH`]; then it closes and exits 0.
pub fn run(host: &str, port: u16, render: Render) -> i32 {
    let mut feed = TextFeed::start(render);
    let mut stream = match net::connect(host, port) {
        Ok(stream) => stream,
        Err(e) => {
            render.error(&format!("cannot connect to {host} port {port}: {e}"));
            return 1;
        }
    };
    if let Ok(addr) = stream.peer_addr() {
        render.text_connected(addr);
    }
    // A server that takes nothing for this long is not reading: give up, as the
    // other modes do, rather than block (and miss a signal) for ever.
    if let Err(e) = stream.set_write_timeout(Some(DEFAULT_STALL)) {
        render.error(&format!("cannot set a write timeout: {e}"));
        return 1;
    }
    let mut pacer = Pacer { last: None };
    loop {
        feed.wait(Some(Instant::now()));
        if let Some(name) = feed.signal {
            debug!("{name}: saying quit to the server");
            break;
        }
        let Some(message) = feed.lines.front() else {
            if feed.ended {
                break;
            }
            feed.wait(None);
            continue;
        };
        // Wait out the gap here, where a signal is heard.
        if let Some(ready) = pacer.ready_at()
            && ready > Instant::now()
        {
            feed.wait(Some(ready));
            continue;
        }
        if message == QUIT {
            break;
        }
        let message = feed.pop().unwrap_or_default();
        if message.is_empty() {
            continue;
        }
        if let Err(e) = pacer.write(&mut stream, message.as_bytes()) {
            render.error(&match e.kind() {
                ErrorKind::WouldBlock | ErrorKind::TimedOut => format!(
                    "the server took nothing for {} s: it is not reading",
                    DEFAULT_STALL.as_secs()
                ),
                _ => format!("the server closed the connection: {e}"),
            });
            return 1;
        }
    }
    let signalled = feed.signal.is_some();
    if signalled {
        // The goodbye and what follows it take at most about EXIT_FLUSH.
        let _ = stream.set_write_timeout(Some(EXIT_FLUSH));
    }
    if let Err(e) = pacer.write(&mut stream, QUIT.as_bytes()) {
        render.error(&format!("could not send quit: {e}"));
        return if signalled { 0 } else { 1 };
    }
    let deadline = signalled.then(|| Instant::now() + EXIT_FLUSH);
    let (log, closed) = read_log(&mut stream, deadline);
    let _ = stream.shutdown(Shutdown::Both);
    if signalled && !closed {
        // Cut short: what came is not the whole log.
        return 0;
    }
    let text = String::from_utf8_lossy(&log);
    let lines = match text.is_empty() {
        true => Vec::new(),
        false => text.split('\n').map(String::from).collect(),
    };
    render.log(&lines);
    0
}

/// Spaces `send --text`'s writes [`TEXT_GAP`] apart.
struct Pacer {
    /// When the last write ended.
    last: Option<Instant>,
}

impl Pacer {
    /// When the next write may start; `None`: at once.
    fn ready_at(&self) -> Option<Instant> {
        self.last.map(|at| at + TEXT_GAP)
    }

    /// Writes `bytes` once the gap since the last write is over.
    fn write(&mut self, stream: &mut TcpStream, bytes: &[u8]) -> io::Result<()> {
        if let Some(at) = self.last {
            std::thread::sleep(TEXT_GAP.saturating_sub(at.elapsed()));
        }
        let result = stream.write_all(bytes);
        self.last = Some(Instant::now());
        result
    }
}

/// Everything the server sends until it closes (then true), stays silent for
/// [`TEXT_SILENCE`] or `deadline` passes.
fn read_log(stream: &mut TcpStream, deadline: Option<Instant>) -> (Vec<u8>, bool) {
    let mut log = Vec::new();
    let mut buf = [0; 4096];
    loop {
        let wait = match deadline {
            Some(at) => at
                .saturating_duration_since(Instant::now())
                .min(TEXT_SILENCE),
            None => TEXT_SILENCE,
        };
        if wait.is_zero() || stream.set_read_timeout(Some(wait)).is_err() {
            return (log, false);
        }
        match stream.read(&mut buf) {
            Ok(0) => return (log, true),
            Ok(n) => log.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // Silence (WouldBlock/TimedOut), or a reset after the log: what came is the log.
            Err(_) => return (log, false),
        }
    }
}
