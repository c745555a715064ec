//! How peers are named: the alias rule (node names follow it too) and a
//! [`Target`], a peer as a person refers to it. Its own module so that the
//! parser, the wire and the peer table share it without depending on each other.

use core::fmt;

use heapless::String;

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

/// A machine's host name made an alias, for a node's default name: its first label
/// (`box.example.com` is `box`), each character outside the alias charset made `-`
/// (a `.` cannot remain: it ended the label), cut to [`MAX_NAME`]; `None` when
/// nothing is left.
pub fn alias_from_host_name(host: &str) -> Option<String<MAX_NAME>> {
    let first = host.trim().split('.').next().unwrap_or_default();
    let mut alias = String::new();
    for c in first.chars().take(MAX_NAME) {
        let c = match c.is_ascii_alphanumeric() || matches!(c, '_' | '-') {
            true => c,
            false => '-',
        };
        alias.push(c).ok()?;
    }
    validate_alias(&alias).is_ok().then_some(alias)
}

/// Whether `text` names `name` as a word of its own, in any case: `bob`, `Bob:` and
/// `@bob` do, `bobby` does not. Name characters are letters, digits, `_`, `.`, `-`;
/// a trailing `.` or `-` ends a sentence rather than the name. A shell highlights
/// a room message that mentions the person.
pub fn mentions(text: &str, name: &str) -> bool {
    if name.is_empty() {
        return false;
    }
    let is_name_char = |c: char| c.is_alphanumeric() || matches!(c, '_' | '.' | '-');
    text.split(|c: char| !is_name_char(c))
        .map(|word| word.trim_end_matches(['.', '-']))
        .any(|word| word.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_mentioned_as_a_word_of_its_own_in_any_case() {
        for text in [
            "alice",
            "hi Alice!",
            "@alice: look",
            "ALICE.",
            "(alice)",
            "ok alice-",
        ] {
            assert!(mentions(text, "alice"), "{text}");
        }
        for text in ["alicea", "malice", "al ice", ""] {
            assert!(!mentions(text, "alice"), "{text}");
        }
        assert!(mentions("ask bob.smith now", "bob.smith"));
        assert!(!mentions("ask bob now", "bob.smith"));
        assert!(!mentions("anything", ""));
    }

    #[test]
    fn a_host_name_becomes_its_first_label_with_other_characters_as_dashes() {
        let alias = |host| alias_from_host_name(host).map(|a| a.as_str().len());
        assert_eq!(
            alias_from_host_name("box.example.com").as_deref(),
            Some("box")
        );
        assert_eq!(alias_from_host_name(" my box\n").as_deref(), Some("my-box"));
        assert_eq!(alias_from_host_name("caf\u{e9}").as_deref(), Some("caf-"));
        assert_eq!(alias(&"x".repeat(40)), Some(MAX_NAME));
    }

    #[test]
    fn a_host_name_with_nothing_left_gives_no_alias() {
        for host in ["", "  ", ".local", "\n"] {
            assert_eq!(alias_from_host_name(host), None, "{host:?}");
        }
    }
}
