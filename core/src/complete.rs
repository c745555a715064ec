//! What Tab completes at a prompt: which kind of word the cursor is in, decided by
//! the command language (a command word first, a host after `connect`, else a
//! peer), so any console completes as the parser reads. The candidates for hosts
//! and peers are the shell's to supply: it knows what was seen.

use crate::command::{Grammar, Verb};

/// The kind of word being completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// The first word: a command word, typed with `/` or bare.
    Command {
        /// Typed with a leading `/`, so the candidates keep it.
        slash: bool,
    },
    /// The first argument of `connect` (any form): a host.
    Host,
    /// Any other argument: a peer's alias or `#id`.
    Peer,
}

/// The word that ends the text before the cursor, and what it may become.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion<'a> {
    /// Where the word starts (a byte offset into the text before the cursor).
    pub start: usize,
    /// The word as typed so far: candidates begin with it.
    pub typed: &'a str,
    /// What kind of word it is, so the shell knows which candidates to offer.
    pub slot: Slot,
}

impl<'a> Completion<'a> {
    /// Reads `before` (the line up to the cursor) with `grammar`: a command word is
    /// bare only where `grammar` reads it so, and at the chat prompt only the full
    /// `connect` (or `/c`, `/open`) dials.
    pub fn of(before: &'a str, grammar: Grammar) -> Completion<'a> {
        let start = before
            .char_indices()
            .rev()
            .find(|&(_, c)| c.is_whitespace())
            .map_or(0, |(i, c)| i + c.len_utf8());
        let (earlier, typed) = before.split_at(start);
        let mut words = earlier.split_whitespace();
        let slot = match words.next() {
            None => Slot::Command {
                slash: typed.starts_with('/'),
            },
            Some(first) => {
                let dialing = Verb::from_word(first) == Some(Verb::Connect)
                    && (grammar == Grammar::Commands
                        || first.starts_with('/')
                        || first == Verb::Connect.name());
                match dialing && words.next().is_none() {
                    true => Slot::Host,
                    false => Slot::Peer,
                }
            }
        };
        Completion { start, typed, slot }
    }
}

/// The command words a first word may become, in `help`'s order, each without its
/// `/`: with `slash`, every command's words; else those bare in `grammar`.
pub fn command_words(slash: bool, grammar: Grammar) -> impl Iterator<Item = &'static str> {
    Verb::ALL
        .into_iter()
        .flat_map(move |verb| match slash {
            true => verb.words(),
            false => verb.bare_words(grammar),
        })
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(before: &str) -> Slot {
        Completion::of(before, Grammar::Chat).slot
    }

    #[test]
    fn the_first_word_is_a_command_word_with_or_without_its_slash() {
        assert_eq!(slot("/ni"), Slot::Command { slash: true });
        assert_eq!(slot("con"), Slot::Command { slash: false });
        assert_eq!(slot(""), Slot::Command { slash: false });
    }

    #[test]
    fn after_connect_the_first_argument_is_a_host_and_later_ones_are_peers() {
        assert_eq!(slot("connect b"), Slot::Host);
        assert_eq!(slot("/c 1"), Slot::Host);
        assert_eq!(slot("connect box.lan 4000 b"), Slot::Peer);
        // `c` is no command at the chat prompt: its words are a message's.
        assert_eq!(slot("c b"), Slot::Peer);
        assert_eq!(
            Completion::of("c b", Grammar::Commands).slot,
            Slot::Host,
            "in scripts `c` dials"
        );
    }

    #[test]
    fn the_word_starts_after_the_last_whitespace() {
        let c = Completion::of("/msg\u{3000}bo", Grammar::Chat);
        assert_eq!((c.start, c.typed, c.slot), (7, "bo", Slot::Peer));
    }

    #[test]
    fn bare_words_at_the_chat_prompt_are_the_seed_words_only() {
        assert!(command_words(false, Grammar::Chat).all(|w| w != "q" && w != "say"));
        assert!(command_words(false, Grammar::Commands).any(|w| w == "q"));
        assert!(command_words(true, Grammar::Chat).any(|w| w == "say"));
    }
}
