//! The prompt thread: the person's commands, one per line, to the driver.
//!
//! On a terminal (stdin and stdout both, and not `--json`) rustyline edits the
//! line and keeps history (saved across runs in the platform's state directory,
//! unless `--no-history`), and the renderer prints events above the line being
//! typed through rustyline's external printer. Anywhere else stdin is read as
//! plain lines, so meshtalk can be scripted.

use std::io::{self, BufRead, ErrorKind, IsTerminal, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use meshtalk_core::command::{self, Command, Grammar};
use nix::sys::termios::{SetArg, Termios, tcgetattr, tcsetattr};
use rustyline::error::ReadlineError;
use rustyline::{
    Cmd, CompletionType, ConditionalEventHandler, Config, Event, EventContext, EventHandler,
    KeyCode, KeyEvent, Modifiers, Movement, RepeatCount,
};

use crate::channel::Msg;
use crate::line;
use crate::log::{debug, diag};
use crate::screen;

/// What the person sees at the start of the line being typed.
pub const PROMPT: &str = "meshtalk> ";
/// Lines kept in the history (in memory and in its file).
const HISTORY: usize = 1000;
/// Piped lines read ahead of the driver at most: the driver hands back one credit
/// per line done, so a script that must wait (for a link, or for receipts) is
/// not read further, and the pipe holds its writer.
const READ_AHEAD: usize = 16;
/// Turns the terminal's bracketed paste off again (rustyline turns it on while reading).
const BRACKETED_PASTE_OFF: &str = "\x1b[?2004l";

/// Where the typed lines' history is kept across runs; `None` (`--no-history`, or no
/// home directory) keeps it in memory only. Set once, before the prompt starts.
static HISTORY_FILE: OnceLock<Option<PathBuf>> = OnceLock::new();

/// The history file meshtalk uses unless told not to: `history` in the platform's
/// state directory (`$XDG_STATE_HOME/meshtalk/history` on Linux), else its local
/// data directory where the platform has no state directory.
pub fn default_history_file() -> Option<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "meshtalk")?;
    let dir = dirs.state_dir().unwrap_or(dirs.data_local_dir());
    Some(dir.join("history"))
}

/// Sets where the prompt keeps its history (`None`: in memory only); call before [`spawn`].
pub fn keep_history_in(file: Option<PathBuf>) {
    let _ = HISTORY_FILE.set(file);
}

/// The history file, its directory made (owner only) if need be; `None` after saying
/// why it cannot be used.
fn history_file() -> Option<&'static Path> {
    let file = HISTORY_FILE.get()?.as_deref()?;
    if let Some(dir) = file.parent() {
        let made = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir);
        if let Err(e) = made {
            diag!(
                "history not saved: cannot make {}: {e} (--no-history stops trying)",
                dir.display()
            );
            return None;
        }
    }
    Some(file)
}

/// A second Ctrl-C on an empty line within this long leaves.
const LEAVE_WINDOW: Duration = Duration::from_secs(2);

/// Ctrl-C at the prompt: clears a typed line, as in a shell; on an empty line it is
/// rustyline's interrupt, which the prompt counts towards leaving.
struct ClearLine;

impl ConditionalEventHandler for ClearLine {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, ctx: &EventContext) -> Option<Cmd> {
        (!ctx.line().is_empty()).then_some(Cmd::Kill(Movement::WholeLine))
    }
}

/// The word that leaves, as the command language knows it: `/quit` where it is a
/// command, else the seed word `exit`.
fn exit_word() -> &'static str {
    match command::parse("/quit") {
        Ok(Some(Command::Exit)) => "/quit",
        _ => "exit",
    }
}

/// Hands the terminal back as it was when dropped: the process ends while the
/// prompt thread may still be inside `readline`, with the terminal in raw mode.
pub struct Prompt {
    /// The terminal's settings before the prompt started; `None` for plain lines.
    saved: Option<Termios>,
    /// True while the prompt thread waits in `readline` (its prompt is on screen).
    reading: Arc<AtomicBool>,
}

impl Prompt {
    /// Whether a person types at a terminal (else stdin is a script).
    pub fn interactive(&self) -> bool {
        self.saved.is_some()
    }
}

impl Drop for Prompt {
    fn drop(&mut self) {
        let Some(saved) = self.saved.take() else {
            return;
        };
        screen::stop_printing_above_prompt();
        if let Err(e) = tcsetattr(io::stdin(), SetArg::TCSADRAIN, &saved) {
            diag!("cannot restore the terminal: {e}");
        }
        let mut out = io::stdout().lock();
        let _ = out.write_all(BRACKETED_PASTE_OFF.as_bytes());
        if self.reading.load(Ordering::SeqCst) {
            // Erase the prompt and the half-typed line.
            let _ = out.write_all(b"\r\x1b[K");
        }
        let _ = out.flush();
    }
}

/// Starts the prompt thread; keep the returned guard until the driver is done.
/// Piped lines are read at most [`READ_AHEAD`] ahead of the `credits` the driver
/// sends back, one per line done. At a terminal, lines are read with `grammar`, and
/// Tab completes from what the driver puts in `known`.
pub fn spawn(
    to_driver: Sender<Msg>,
    json: bool,
    credits: Receiver<()>,
    grammar: Grammar,
    known: line::Shared,
) -> Prompt {
    let reading = Arc::new(AtomicBool::new(false));
    let terminal = !json && io::stdin().is_terminal() && io::stdout().is_terminal();
    let saved = if terminal {
        tcgetattr(io::stdin())
            .inspect_err(|e| diag!("cannot read the terminal's settings: {e}"))
            .ok()
    } else {
        None
    };
    let interactive = saved.is_some();
    let flag = reading.clone();
    let spawned = thread::Builder::new().name("prompt".into()).spawn(move || {
        if interactive {
            debug!("prompt thread started (terminal)");
            edit_lines(&to_driver, &flag, &credits, grammar, known);
        } else {
            debug!("prompt thread started (plain lines)");
            plain_lines(&to_driver, &credits);
        }
        debug!("prompt thread: end of input");
        let _ = to_driver.send(Msg::EndOfInput);
    });
    if let Err(e) = spawned {
        diag!("cannot start the prompt thread: {e}");
    }
    Prompt { saved, reading }
}

/// Reads commands from stdin, one per line, until end of input, at most
/// [`READ_AHEAD`] lines ahead of the driver's `credits`.
fn plain_lines(to_driver: &Sender<Msg>, credits: &Receiver<()>) {
    let stdin = io::stdin();
    let mut stdin = stdin.lock();
    let mut line = Vec::new();
    let mut ahead = 0;
    loop {
        while credits.try_recv().is_ok() {
            ahead -= 1;
        }
        if ahead >= READ_AHEAD {
            // The driver is gone when the channel is: nothing more to read for.
            if credits.recv().is_err() {
                return;
            }
            ahead -= 1;
        }
        line.clear();
        match stdin.read_until(b'\n', &mut line) {
            Ok(0) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches(['\n', '\r']).to_string();
                if to_driver.send(Msg::Line(text)).is_err() {
                    return;
                }
                ahead += 1;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                diag!("reading stdin failed: {e}");
                return;
            }
        }
    }
}

/// The terminal prompt: line editing, Tab completion and history, events printed above the line.
/// Ctrl-D ends input, as end of a piped stdin does; Ctrl-C clears the typed line,
/// and on an empty line ends input only when pressed twice within [`LEAVE_WINDOW`].
/// Typed lines need no credits (a person is never far ahead); the plain fallback does.
fn edit_lines(
    to_driver: &Sender<Msg>,
    reading: &AtomicBool,
    credits: &Receiver<()>,
    grammar: Grammar,
    known: line::Shared,
) {
    // Tab completes one match at once and lists several at once, as a shell does.
    let config = Config::builder().max_history_size(HISTORY).map(|b| {
        b.completion_type(CompletionType::List)
            .completion_show_all_if_ambiguous(true)
            .build()
    });
    let editor = config.and_then(|config| line::editor(config, known, grammar));
    let mut editor = match editor {
        Ok(editor) => editor,
        Err(e) => {
            diag!("no line editing ({e}); reading plain lines");
            return plain_lines(to_driver, credits);
        }
    };
    let saved_history = history_file();
    if let Some(file) = saved_history {
        match editor.load_history(file) {
            Ok(()) => debug!("history read from {}", file.display()),
            Err(ReadlineError::Io(e)) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => diag!("cannot read the history in {}: {e}", file.display()),
        }
    }
    match editor.create_external_printer() {
        Ok(printer) => screen::print_above_prompt(Box::new(printer)),
        Err(e) => diag!("events may overwrite the line being typed: {e}"),
    }
    let ctrl_c = KeyEvent(KeyCode::Char('C'), Modifiers::CTRL);
    editor.bind_sequence(ctrl_c, EventHandler::Conditional(Box::new(ClearLine)));
    // When Ctrl-C was last pressed on an empty line.
    let mut interrupted: Option<Instant> = None;
    loop {
        reading.store(true, Ordering::SeqCst);
        let read = editor.readline(PROMPT);
        reading.store(false, Ordering::SeqCst);
        match read {
            Ok(line) => {
                if !line.trim().is_empty()
                    && matches!(editor.add_history_entry(line.as_str()), Ok(true))
                {
                    // Saved line by line: the process may end without a goodbye to the prompt.
                    if let Some(file) = saved_history
                        && let Err(e) = editor.append_history(file)
                    {
                        diag!("cannot save the history in {}: {e}", file.display());
                    }
                }
                // Reading no further after `exit` keeps the terminal out of raw
                // mode while the driver says goodbye and the process ends.
                let exit = matches!(command::parse_in(&line, grammar), Ok(Some(Command::Exit)));
                if to_driver.send(Msg::Line(line)).is_err() || exit {
                    return;
                }
            }
            Err(ReadlineError::Eof) => return,
            // Ctrl-C on an empty line ([`ClearLine`] clears any other).
            Err(ReadlineError::Interrupted) => {
                if interrupted.is_some_and(|at| at.elapsed() <= LEAVE_WINDOW) {
                    return;
                }
                interrupted = Some(Instant::now());
                let exit = exit_word();
                println!("press Ctrl-C again or type {exit} to leave");
            }
            Err(ReadlineError::Signal(_)) => {}
            Err(e) => {
                diag!("reading the terminal failed: {e}");
                return;
            }
        }
    }
}
