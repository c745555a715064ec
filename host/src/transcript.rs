//! `--log FILE` (and `/log FILE` at run time): a transcript of what was said and by
//! whom, appended to a file only its owner may read (mode 0600), each line stamped with
//! the full local date and time. Peers' text is made safe as on screen: a transcript
//! is read on a terminal too.

use std::fmt::{self, Display};
use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use meshtalk_core::display::{SafeMessage, SafeStr};

use crate::log::diag;
use crate::screen::indent;

/// The transcript file, when `--log` or `/log` named one; `None` when none is kept
/// (never named, stopped with `/log`, or writing failed).
static FILE: Mutex<Option<Transcript>> = Mutex::new(None);

struct Transcript {
    path: PathBuf,
    file: File,
}

/// Why the transcript cannot be kept: the file named cannot be opened for appending.
#[derive(Debug)]
pub struct OpenError {
    path: PathBuf,
    error: io::Error,
}

impl Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot keep the transcript in {}: {}; name a file you may write (--log FILE)",
            self.path.display(),
            self.error
        )
    }
}

/// Opens `path` for appending (made with mode 0600, and set to it if it was wider);
/// from now on what is said is written there (instead of any file before).
pub fn open(path: &Path) -> Result<(), OpenError> {
    let fail = |error| OpenError {
        path: path.to_path_buf(),
        error,
    };
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    file.set_permissions(Permissions::from_mode(0o600))
        .map_err(fail)?;
    let transcript = Transcript {
        path: path.to_path_buf(),
        file,
    };
    *file_lock() = Some(transcript);
    Ok(())
}

/// Stops keeping the transcript (`/log` alone); returns the file it went to, if any.
pub fn close() -> Option<PathBuf> {
    file_lock().take().map(|t| t.path)
}

/// Whether a transcript is being kept.
pub fn on() -> bool {
    file_lock().is_some()
}

fn file_lock() -> MutexGuard<'static, Option<Transcript>> {
    FILE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Who said it and to whom, as a transcript line begins.
pub enum Line<'a> {
    /// A peer's direct message to us: `bob -> you: `.
    From(&'a str),
    /// A room message from `from`, relayed by `via` when that is not `from` itself.
    Room { from: &'a str, via: Option<&'a str> },
    /// Our message to one peer: `you -> bob: `.
    To(&'a str),
    /// Our message to the room: `you (room): `.
    ToRoom,
}

impl Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Line::From(from) => write!(f, "{} -> you", SafeStr(from)),
            Line::Room { from, via: None } => write!(f, "{} (room)", SafeStr(from)),
            Line::Room {
                from,
                via: Some(via),
            } => write!(f, "{} (room, via {})", SafeStr(from), SafeStr(via)),
            Line::To(to) => write!(f, "you -> {}", SafeStr(to)),
            Line::ToRoom => f.write_str("you (room)"),
        }
    }
}

/// Appends one message to the transcript, if one is kept: the date and time, who,
/// and the text made safe. A failed write is told once, and the transcript stops.
pub fn write(who: Line<'_>, text: &str) {
    let mut file = file_lock();
    let Some(transcript) = file.as_mut() else {
        return;
    };
    let stamp = chrono::Local::now()
        .format("%Y-%m-%d %H:%M:%S %:z")
        .to_string();
    let said = indent(&format!("{who}: {}", SafeMessage(text)), stamp.len() + 1);
    let line = format!("{stamp} {said}\n");
    if let Err(e) = transcript.file.write_all(line.as_bytes()) {
        diag!(
            "transcript stopped: cannot write to {}: {e}",
            transcript.path.display()
        );
        *file = None;
    }
}
