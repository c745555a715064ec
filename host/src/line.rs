//! The prompt's line editor helper. It does one thing: makes rustyline draw the
//! whole line again after any key on a line with non-ASCII text, so that wide CJK
//! and emoji joined into one grapheme (👨‍👩‍👧) are measured as the terminal draws
//! them. rustyline's shortcut for a typed character adds that character's own
//! width, which is wrong for a character that joins the grapheme before it; its
//! full redraw measures whole graphemes (in the mode it guesses for the terminal).

use std::borrow::Cow;

use rustyline::completion::Completer;
use rustyline::config::Configurer;
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{ColorMode, Config, Editor, Helper};

/// The editor the prompt uses.
pub type LineEditor = Editor<LineHelper, rustyline::history::DefaultHistory>;

/// See the module's doc: redraws lines that are not plain ASCII.
pub struct LineHelper;

/// A line editor with `config` and the [`LineHelper`].
pub fn editor(config: Config) -> rustyline::Result<LineEditor> {
    let mut editor = LineEditor::with_config(config)?;
    editor.set_helper(Some(LineHelper));
    // rustyline asks no highlighter with colour off (`NO_COLOR`); this one adds no
    // colour, only the redraw, so it is always asked.
    editor.set_color_mode(ColorMode::Forced);
    Ok(editor)
}

impl Highlighter for LineHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        Cow::Borrowed(line)
    }

    /// True (draw the whole line) for any line with a character beyond ASCII.
    fn highlight_char(&self, line: &str, _pos: usize, _kind: CmdKind) -> bool {
        !line.is_ascii()
    }
}

impl Completer for LineHelper {
    type Candidate = String;
}

impl Hinter for LineHelper {
    type Hint = String;
}

impl Validator for LineHelper {}

impl Helper for LineHelper {}
