//! Display safety: peer-supplied text printed on a terminal must not drive it.
//!
//! A peer could otherwise send escape sequences (move the cursor, rewrite the screen, set the
//! window title), carriage returns that overwrite a line, or bidi controls that reorder what
//! follows. [`Safe`] and [`SafeStr`] show such characters as visible escapes, without allocating:
//!
//! - C0 controls except tab, in caret notation: `\x1b` is `^[`, `\0` is `^@`, `\n` is `^J`;
//!   and DEL is `^?`;
//! - C1 controls (U+0080 to U+009F) and bidi controls (U+061C, U+200E, U+200F, U+202A to
//!   U+202E, U+2066 to U+2069) as `\u{9b}`, `\u{202e}`;
//! - invalid UTF-8 as U+FFFD, one per maximal invalid sequence, as `String::from_utf8_lossy`.
//!
//! Everything else passes through, `^` and `\` included: the output is safe, not reversible.
//! Formatter flags (width, fill) are ignored.

use core::fmt::{self, Write};

/// Shows peer-supplied bytes safely on a terminal: `format!("{}", Safe(bytes))`.
#[derive(Clone, Copy, Debug)]
pub struct Safe<'a>(pub &'a [u8]);

/// Shows text known to be UTF-8 safely on a terminal, as [`Safe`] does.
#[derive(Clone, Copy, Debug)]
pub struct SafeStr<'a>(pub &'a str);

impl fmt::Display for Safe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            SafeStr(chunk.valid()).fmt(f)?;
            if !chunk.invalid().is_empty() {
                f.write_char(char::REPLACEMENT_CHARACTER)?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for SafeStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        // Start of the run of safe characters not yet written.
        let mut run = 0;
        for (i, c) in s.char_indices() {
            if !needs_escape(c) {
                continue;
            }
            // `run` and `i` come from `char_indices` (or are 0), so both are char boundaries
            // with run <= i: this slice cannot panic.
            f.write_str(&s[run..i])?;
            escape(c, f)?;
            run = i + c.len_utf8();
        }
        // `run` is 0 or just past a character, so it is a char boundary <= s.len().
        f.write_str(&s[run..])
    }
}

/// Shows text as [`SafeStr`] does but keeps its line feeds: for text of several lines
/// meant as lines, such as `serve`'s log written back to a plain-text client.
#[derive(Clone, Copy, Debug)]
pub struct SafeLines<'a>(pub &'a str);

impl fmt::Display for SafeLines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, line) in self.0.split('\n').enumerate() {
            if i > 0 {
                f.write_char('\n')?;
            }
            SafeStr(line).fmt(f)?;
        }
        Ok(())
    }
}

/// A message's text made safe line by line, for a person to read: a multi-line
/// message keeps its lines (joined by `\n`, which a screen may indent under the
/// author) where a lone control character would show as `^J`. A line's `\r\n`
/// ending counts as `\n`; a final line ending is dropped.
#[derive(Clone, Copy, Debug)]
pub struct SafeMessage<'a>(pub &'a str);

impl fmt::Display for SafeMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.strip_suffix('\n').unwrap_or(self.0);
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                f.write_char('\n')?;
            }
            SafeStr(line.strip_suffix('\r').unwrap_or(line)).fmt(f)?;
        }
        Ok(())
    }
}

/// True when [`SafeStr`] shows `s` unchanged: it has nothing that needs escaping.
pub fn is_safe(s: &str) -> bool {
    !s.chars().any(needs_escape)
}

/// True for the characters [`SafeStr`] shows escaped: C0 controls but tab, DEL, C1
/// controls and bidi controls. Other writers (JSON) use it to escape the same set.
pub fn needs_escape(c: char) -> bool {
    matches!(c,
        '\0'..='\x08' | '\x0a'..='\x1f' // C0 but tab
        | '\x7f'..='\u{9f}' // DEL and C1
        | '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' // bidi
    )
}

/// Writes the visible form of a character that [`needs_escape`].
fn escape(c: char, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match c {
        '\x7f' => f.write_str("^?"),
        // Caret notation flips bit 6: 0x1b becomes '[' (0x5b), 0x00 becomes '@'.
        '\0'..='\x1f' => write!(f, "^{}", char::from(c as u8 ^ 0x40)),
        _ => write!(f, "\\u{{{:x}}}", u32::from(c)),
    }
}
