//! `meshtalk completions SHELL` and `meshtalk man`: the shell completion script and
//! the manual page, both made from the command line's own definition, so they never
//! fall behind the options.

use std::io::{self, Write};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// Prints the completion script for `shell` on stdout; the exit code.
pub fn completions(shell: Shell) -> i32 {
    let mut command = Cli::command();
    let mut out = io::stdout().lock();
    clap_complete::generate(shell, &mut command, "meshtalk", &mut out);
    finish(out.flush())
}

/// Prints the manual page (roff) on stdout: the program's page, then one section per
/// mode with its options; the exit code.
pub fn man() -> i32 {
    let mut page = Vec::new();
    match write_man(&mut page) {
        Ok(()) => finish(io::stdout().lock().write_all(&page)),
        Err(e) => {
            eprintln!("meshtalk: cannot make the manual page: {e}");
            1
        }
    }
}

/// The manual page: `meshtalk(1)` with each subcommand's options as a section of its own.
fn write_man(out: &mut Vec<u8>) -> io::Result<()> {
    let command = Cli::command();
    let man = clap_mangen::Man::new(command.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = sub.get_name();
        writeln!(out, ".SH \"MESHTALK {}\"", name.to_uppercase())?;
        let sub_man = clap_mangen::Man::new(sub.clone().bin_name(format!("meshtalk {name}")));
        // The subcommand's own synopsis, description and options, under its heading.
        let mut section = Vec::new();
        sub_man.render_synopsis_section(&mut section)?;
        sub_man.render_description_section(&mut section)?;
        sub_man.render_options_section(&mut section)?;
        out.extend(demote(&section));
    }
    man.render_version_section(out)?;
    Ok(())
}

/// `.SH` headings made `.SS` ones, so a subcommand's sections nest under its own heading.
fn demote(roff: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(roff);
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        match line.strip_prefix(".SH ") {
            Some(title) => out.push_str(&format!(".SS {title}")),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out.into_bytes()
}

/// The exit code after writing: 0, or 1 when stdout would not take it (but a closed
/// pipe, as with `| head`, is no failure).
fn finish(written: io::Result<()>) -> i32 {
    match written {
        Ok(()) => 0,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("meshtalk: cannot write to stdout: {e}");
            1
        }
    }
}
