//! How peers are named: the alias rule (node names follow it too) and a
//! [`Target`], a peer as a person refers to it. Its own module so that the
//! parser, the wire and the peer table share it without depending on each other.

use core::fmt;

use crate::display::SafeStr;
use crate::limits::MAX_NAME;

/// Who a command is aimed at, as typed: `#3` (a peer's number) or a word (an alias or an IP address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// `#` and a decimal number from 1, as `list_connections` shows it.
    Id(u32),
    /// Any other word: an alias or an IP address; the node tells which.
    Name(&'a str),
}

/// Shows the target as typed (`#3` or the name), made safe for a terminal.
impl fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Id(id) => write!(f, "#{id}"),
            Target::Name(name) => SafeStr(name).fmt(f),
        }
    }
}

/// What is wrong with an alias; [`validate_alias`] reports the first problem it finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AliasError {
    /// No characters at all.
    Empty,
    /// A character other than an ASCII letter, digit, `_`, `.` or `-`.
    BadChar(char),
    /// More than [`MAX_NAME`] characters; `chars` is how many.
    TooLong {
        /// How many characters the alias has.
        chars: usize,
    },
}

impl fmt::Display for AliasError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AliasError::Empty => f.write_str("an alias needs at least one character"),
            AliasError::BadChar(c) => write!(
                f,
                "bad character '{}'; use ASCII letters, digits, '_', '.' and '-'",
                SafeStr(c.encode_utf8(&mut [0; 4]))
            ),
            AliasError::TooLong { chars } => {
                write!(f, "too long ({chars} chars, max {MAX_NAME})")
            }
        }
    }
}

impl core::error::Error for AliasError {}

/// Checks an alias: 1 to [`MAX_NAME`] characters, each an ASCII letter, digit, `_`, `.` or `-`.
/// The charset keeps aliases one word, printable, and apart from `#` peer numbers.
/// Problems are checked in this order: empty, a bad character (the first), too long.
pub fn validate_alias(s: &str) -> Result<(), AliasError> {
    if s.is_empty() {
        return Err(AliasError::Empty);
    }
    if let Some(c) = s
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(AliasError::BadChar(c));
    }
    // Every character is ASCII here, so bytes are characters.
    if s.len() > MAX_NAME {
        return Err(AliasError::TooLong { chars: s.len() });
    }
    Ok(())
}
