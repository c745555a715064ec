//! Did-you-mean: a misspelt command word is answered with the word meant.

use super::{ParseError, Verb};

/// A typed word this short (in characters, without its `/`) is never taken for a
/// misspelt command word: too many short words are one edit from another.
pub(super) const NEAR_MIN: usize = 3;
/// At the chat prompt a plain first word must be this long to be taken for a misspelt
/// command word (so `end of story` is a message, not a misspelt `send`).
pub(super) const NEAR_MIN_PLAIN: usize = 4;

/// The error for an unknown command `word` (`typed` is the word without its `/`):
/// [`ParseError::Misspelt`] when one of the `words` of a verb is one edit away, else
/// [`ParseError::UnknownCommand`].
pub(super) fn unknown<'a>(
    word: &'a str,
    typed: &str,
    slash: bool,
    words: impl Fn(Verb) -> &'static [&'static str],
) -> ParseError<'a> {
    match nearest(typed, NEAR_MIN, words) {
        Some((_, meant)) => ParseError::Misspelt {
            word,
            meant,
            slash,
            as_text: false,
        },
        None => ParseError::UnknownCommand(word),
    }
}

/// The first command word (of the `words` of each verb, in [`Verb::ALL`] order) one edit
/// from `typed`; words shorter than `min` characters, typed or known, are never near.
pub(super) fn nearest(
    typed: &str,
    min: usize,
    words: impl Fn(Verb) -> &'static [&'static str],
) -> Option<(Verb, &'static str)> {
    if typed.chars().count() < min {
        return None;
    }
    Verb::ALL.into_iter().find_map(|verb| {
        words(verb)
            .iter()
            .find(|known| known.chars().count() >= min && one_edit(typed, known))
            .map(|known| (verb, *known))
    })
}

/// True when `a` becomes `b` by exactly one edit: a character added, dropped or
/// changed, or two neighbours swapped (`sned` for `send`).
pub fn one_edit(a: &str, b: &str) -> bool {
    let (mut x, mut y) = (a.chars(), b.chars());
    loop {
        let (from_x, from_y) = (x.as_str(), y.as_str());
        match (x.next(), y.next()) {
            (Some(p), Some(q)) if p == q => {}
            (None, None) => return false,
            (p, q) => {
                let (after_x, after_y) = (x.as_str(), y.as_str());
                let changed = p.is_some() && q.is_some() && after_x == after_y;
                let dropped = p.is_some() && after_x == from_y;
                let added = q.is_some() && from_x == after_y;
                let swapped = match (p, q) {
                    (Some(p), Some(q)) => {
                        let (mut xs, mut ys) = (x.clone(), y.clone());
                        xs.next() == Some(q) && ys.next() == Some(p) && xs.as_str() == ys.as_str()
                    }
                    _ => false,
                };
                return changed || dropped || added || swapped;
            }
        }
    }
}
