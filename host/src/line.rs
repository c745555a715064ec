//! The prompt's line editor helper. It does two things. It completes with Tab:
//! command words (bare and `/` forms), peers' aliases and `#id`s (as the node has
//! them, published by the driver in [`Known`]), and after `connect` the hosts seen
//! in this session and the names LAN discovery heard. And it makes rustyline draw the whole line again after any key
//! on a line with non-ASCII text, so that wide CJK and emoji joined into one
//! grapheme (👨‍👩‍👧) are measured as the terminal draws them. rustyline's shortcut
//! for a typed character adds that character's own width, which is wrong for a
//! character that joins the grapheme before it; its full redraw measures whole
//! graphemes (in the mode it guesses for the terminal).

use std::borrow::Cow;
use std::sync::{Arc, Mutex, PoisonError};

use meshtalk_core::command::Grammar;
use meshtalk_core::complete::{Completion, Slot, command_words};
use rustyline::completion::{Completer, Pair};
use rustyline::config::Configurer;
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{ColorMode, Config, Editor, Helper};

/// The editor the prompt uses.
pub type LineEditor = Editor<LineHelper, rustyline::history::DefaultHistory>;

/// See the module's doc: completes words, and redraws lines that are not plain ASCII.
pub struct LineHelper {
    /// What the node knows, for completing arguments.
    known: Shared,
    /// How the prompt reads a line: which command words are bare.
    grammar: Grammar,
}

/// What the driver tells the prompt for completion, updated as peers come and go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Known {
    /// Each peer's alias and number, as `list_connections` shows them.
    pub peers: Vec<(String, u32)>,
    /// Hosts dialled or connected in this session, first seen first.
    pub hosts: Vec<String>,
    /// The names of the nodes LAN discovery hears now (`connect <name>` dials one).
    pub nearby: Vec<String>,
}

/// [`Known`], shared between the driver (which writes) and the prompt (which reads).
pub type Shared = Arc<Mutex<Known>>;

impl Known {
    /// Notes a host seen in this session (once).
    pub fn saw_host(&mut self, host: &str) {
        if !host.is_empty() && !self.hosts.iter().any(|h| h == host) {
            self.hosts.push(host.to_string());
        }
    }
}

/// A line editor with `config` and the [`LineHelper`].
pub fn editor(config: Config, known: Shared, grammar: Grammar) -> rustyline::Result<LineEditor> {
    let mut editor = LineEditor::with_config(config)?;
    editor.set_helper(Some(LineHelper { known, grammar }));
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
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        let (start, words) = complete(&line[..pos], &known, self.grammar);
        let pairs = words
            .into_iter()
            .map(|word| Pair {
                replacement: format!("{word} "),
                display: word,
            })
            .collect();
        Ok((start, pairs))
    }
}

/// The completions of the word that ends `before` (the line up to the cursor): where
/// that word starts, and the words it may become, in order, each once. The core
/// says which kind of word it is ([`Completion`]); the candidates for a host are the
/// hosts seen, for a peer its alias or `#id`.
pub fn complete(before: &str, known: &Known, grammar: Grammar) -> (usize, Vec<String>) {
    let Completion { start, typed, slot } = Completion::of(before, grammar);
    let mut words: Vec<String> = match slot {
        Slot::Command { slash: true } => command_words(true, grammar)
            .map(|word| format!("/{word}"))
            .collect(),
        Slot::Command { slash: false } => {
            command_words(false, grammar).map(str::to_string).collect()
        }
        Slot::Host => known.hosts.iter().chain(&known.nearby).cloned().collect(),
        Slot::Peer => {
            let aliases = known.peers.iter().map(|(alias, _)| alias.clone());
            let ids = known.peers.iter().map(|(_, id)| format!("#{id}"));
            aliases.chain(ids).collect()
        }
    };
    words.retain(|word| word.starts_with(typed));
    let mut seen = std::collections::HashSet::new();
    words.retain(|word| seen.insert(word.clone()));
    (start, words)
}

impl Hinter for LineHelper {
    type Hint = String;
}

impl Validator for LineHelper {}

impl Helper for LineHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Known {
        Known {
            peers: vec![("bob".into(), 1), ("bobby".into(), 2), ("carol".into(), 3)],
            hosts: vec!["127.0.0.1".into(), "box.lan".into()],
            nearby: vec!["bruno".into(), "carol".into()],
        }
    }

    fn words(before: &str) -> Vec<String> {
        complete(before, &known(), Grammar::Chat).1
    }

    #[test]
    fn a_slash_completes_every_command_word_with_its_slash() {
        assert_eq!(words("/ni"), ["/nick"]);
        assert_eq!(words("/m"), ["/msg", "/me"]);
        assert!(words("/").contains(&"/who".to_string()));
    }

    #[test]
    fn a_bare_first_word_completes_only_the_words_bare_at_the_chat_prompt() {
        assert_eq!(words("con"), ["connect"]);
        assert_eq!(words("q"), Vec::<String>::new());
        assert_eq!(
            complete("q", &known(), Grammar::Commands).1,
            ["quit", "q"],
            "bare in scripts"
        );
    }

    #[test]
    fn an_argument_completes_aliases_and_peer_numbers_from_where_the_word_starts() {
        assert_eq!(
            complete("/msg bo", &known(), Grammar::Chat),
            (5, vec!["bob".into(), "bobby".into()])
        );
        assert_eq!(words("send #"), ["#1", "#2", "#3"]);
        assert_eq!(words("disconnect ca"), ["carol"]);
        // After `connect`, the hosts seen instead, then the names heard nearby.
        assert_eq!(words("connect b"), ["box.lan", "bruno"]);
    }

    #[test]
    fn slash_nearby_completes_like_a_command_word() {
        assert_eq!(words("/ne"), ["/nearby"]);
    }

    #[test]
    fn a_host_is_noted_once() {
        let mut known = Known::default();
        known.saw_host("a");
        known.saw_host("a");
        known.saw_host("");
        assert_eq!(known.hosts, ["a"]);
    }
}
