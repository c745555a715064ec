//! Diagnostics on stderr, at one process-wide level: `-q` silences them, `-v` (or
//! `RUST_LOG=debug`) adds debug lines. Events for the person never go here. While a
//! prompt is on screen they go through its printer, above the line being typed.

use std::sync::atomic::{AtomicU8, Ordering};

/// No diagnostics at all.
pub const QUIET: u8 = 0;
/// Problems worth knowing about that do not stop the program (the default).
pub const INFO: u8 = 1;
/// Also what the threads are doing: connections, dials, the prompt.
pub const DEBUG: u8 = 2;

static LEVEL: AtomicU8 = AtomicU8::new(INFO);

/// Sets the level from the flags, else from `RUST_LOG` (`debug`/`trace` = `-v`, `off` = `-q`).
pub fn init(verbose: bool, quiet: bool, rust_log: Option<&str>) {
    let level = if quiet {
        QUIET
    } else if verbose {
        DEBUG
    } else {
        // `debug`, `meshtalk=debug,info`...: the most verbose directive wins.
        let levels = rust_log.unwrap_or_default().split(',').map(|directive| {
            let level = directive.rsplit('=').next().unwrap_or_default();
            match level.trim().to_ascii_lowercase().as_str() {
                "debug" | "trace" => DEBUG,
                "off" => QUIET,
                _ => INFO,
            }
        });
        levels.max().unwrap_or(INFO)
    };
    LEVEL.store(level, Ordering::Relaxed);
}

/// Whether diagnostics of `level` are printed.
pub fn enabled(level: u8) -> bool {
    level != QUIET && LEVEL.load(Ordering::Relaxed) >= level
}

/// Writes one diagnostic line: above the prompt when one is on screen (written over
/// it, the line being typed would be garbled), else on stderr.
pub fn write(line: std::fmt::Arguments<'_>) {
    let line = format!("meshtalk: {line}");
    if !crate::screen::print_diagnostic(&line) {
        eprintln!("{line}");
    }
}

/// A diagnostic line, `meshtalk: ...`, unless `-q`.
macro_rules! diag {
    ($($arg:tt)*) => {
        if $crate::log::enabled($crate::log::INFO) {
            $crate::log::write(format_args!($($arg)*));
        }
    };
}

/// A debug line, `meshtalk: debug: ...`, with `-v` or `RUST_LOG=debug`.
macro_rules! debug {
    ($($arg:tt)*) => {
        if $crate::log::enabled($crate::log::DEBUG) {
            $crate::log::write(format_args!("debug: {}", format_args!($($arg)*)));
        }
    };
}

pub(crate) use {debug, diag};
