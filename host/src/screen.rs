//! The person's screen: stdout, written once per driver turn, and the prompt's
//! printer, through which every line goes while a prompt is on screen, so that it
//! appears above the line being typed. The bottom of the host's output: events
//! ([`crate::render`]), diagnostics ([`crate::log`]) and the transcript's layout use
//! it, and it uses none of them.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::sync::{Mutex, PoisonError};

use rustyline::ExternalPrinter;

/// A buffer that holds this much is written out at once, whatever the turn.
const BUFFER_MAX: usize = 64 << 10;

thread_local! {
    /// Whether this thread's output waits in [`BUFFER`] for [`flush`].
    static BUFFERING: Cell<bool> = const { Cell::new(false) };
    /// This thread's output not yet written to stdout.
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// From now on this thread's lines wait in a buffer until [`flush`] (one write
/// per turn, not one per event); the driver calls it, and flushes before it sleeps.
pub fn buffer() {
    BUFFERING.set(true);
}

/// Writes out what this thread's buffer holds, in one write.
pub fn flush() {
    BUFFER.with_borrow_mut(|buf| {
        if buf.is_empty() {
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(buf);
        let _ = out.flush();
        buf.clear();
        if buf.capacity() > BUFFER_MAX {
            *buf = Vec::new();
        }
    });
}

/// Writes through `write` into this thread's buffer when it buffers (written out
/// once it is large), else straight to stdout, flushed.
pub fn write_out(write: impl FnOnce(&mut dyn Write)) {
    if BUFFERING.get() {
        let full = BUFFER.with_borrow_mut(|buf| {
            write(buf);
            buf.len() >= BUFFER_MAX
        });
        if full {
            flush();
        }
    } else {
        let mut out = std::io::stdout().lock();
        write(&mut out);
        let _ = out.flush();
    }
}

/// The prompt's printer while a prompt is on screen: human lines go through it so
/// they appear above the line being typed. Only the driver thread renders events;
/// diagnostics of any thread go through it too ([`print_diagnostic`]).
static PRINTER: Mutex<Option<Box<dyn ExternalPrinter + Send>>> = Mutex::new(None);

/// From now on, human lines are printed above the prompt through `printer`.
pub fn print_above_prompt(printer: Box<dyn ExternalPrinter + Send>) {
    *PRINTER.lock().unwrap_or_else(PoisonError::into_inner) = Some(printer);
}

/// Human lines go straight to stdout again (the prompt is gone).
pub fn stop_printing_above_prompt() {
    PRINTER
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
}

/// A diagnostic line above the prompt, if one is on screen; false (nothing printed) when
/// there is none, and the line belongs on stderr. Any thread may call it.
pub fn print_diagnostic(line: &str) -> bool {
    let mut printer = PRINTER.lock().unwrap_or_else(PoisonError::into_inner);
    match printer.as_mut() {
        Some(p) => p.print(format!("{line}\n")).is_ok(),
        None => false,
    }
}

/// One line (no newline) to the person: above the prompt if there is one, else stdout.
pub fn print_line(line: String) {
    let mut printer = PRINTER.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(p) = printer.as_mut() {
        // Lines buffered before the prompt came go first.
        flush();
        match p.print(format!("{line}\n")) {
            Ok(()) => return,
            // The prompt thread has ended: print as if there never was one.
            Err(_) => *printer = None,
        }
    }
    drop(printer);
    write_out(|out| {
        let _ = writeln!(out, "{line}");
    });
}

/// `line` with every line after the first indented by `width` columns and two more:
/// continuation lines of a message sit under its author.
pub fn indent(line: &str, width: usize) -> String {
    if !line.contains('\n') {
        return line.to_string();
    }
    let indent = format!("\n{:width$}", "", width = width + 2);
    line.replace('\n', &indent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_messages_later_lines_sit_under_its_first_past_the_author() {
        assert_eq!(
            indent("bob: one\ntwo\nthree", 3),
            "bob: one\n     two\n     three"
        );
        assert_eq!(indent("one line", 3), "one line");
    }
}
