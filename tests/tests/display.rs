//! Display safety, as a specification: what a peer's text looks like on our terminal.

use std::fmt::{self, Write};

use meshtalk_core::display::{Safe, SafeLines, SafeMessage, SafeStr, is_safe};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

/// The property tests' settings: the same inputs on every run, and no
/// regression files written into the tree.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(0x0064_6973_706c_6179),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn show(bytes: &[u8]) -> String {
    Safe(bytes).to_string()
}

fn show_str(s: &str) -> String {
    SafeStr(s).to_string()
}

/// The characters that must never reach the terminal: C0 but tab, DEL, C1, bidi controls.
fn is_dangerous(c: char) -> bool {
    (c.is_ascii_control() && c != '\t')
        || ('\u{80}'..='\u{9f}').contains(&c)
        || matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// A character-by-character statement of the rules, to compare against.
fn reference(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\x7f' => out.push_str("^?"),
            '\t' => out.push('\t'),
            c if c.is_ascii_control() => {
                out.push('^');
                out.push(char::from(c as u8 + 0x40));
            }
            c if is_dangerous(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

// --- The rules, one by one ------------------------------------------------------------------

#[test]
fn c0_controls_are_shown_in_caret_notation() {
    assert_eq!(show(b"\x1b"), "^[");
    assert_eq!(show(b"\x00"), "^@");
    assert_eq!(show(b"\r"), "^M");
    assert_eq!(show(b"\n"), "^J");
    assert_eq!(show(b"\x08"), "^H");
    assert_eq!(show(b"\x07"), "^G");
    assert_eq!(show(b"\x1f"), "^_");
}

#[test]
fn every_c0_control_but_tab_becomes_caret_and_the_char_64_above() {
    for b in (0u8..0x20).filter(|&b| b != b'\t') {
        let expected = format!("^{}", char::from(b + 0x40));
        assert_eq!(show(&[b]), expected, "{b:#x}");
    }
}

#[test]
fn tab_passes_through() {
    assert_eq!(show(b"a\tb"), "a\tb");
}

#[test]
fn del_is_shown_as_caret_question_mark() {
    assert_eq!(show(b"\x7f"), "^?");
}

#[test]
fn c1_controls_are_shown_as_unicode_escapes() {
    assert_eq!(show_str("\u{9b}"), "\\u{9b}");
    assert_eq!(show_str("\u{80}"), "\\u{80}");
    assert_eq!(show_str("\u{9f}"), "\\u{9f}");
    assert_eq!(show("\u{85}".as_bytes()), "\\u{85}");
}

#[test]
fn characters_just_past_c1_pass_through() {
    assert_eq!(show_str("\u{a0}\u{a9}"), "\u{a0}\u{a9}");
}

#[test]
fn bidi_controls_are_shown_as_unicode_escapes() {
    for (c, expected) in [
        ('\u{202a}', "\\u{202a}"),
        ('\u{202b}', "\\u{202b}"),
        ('\u{202c}', "\\u{202c}"),
        ('\u{202d}', "\\u{202d}"),
        ('\u{202e}', "\\u{202e}"),
        ('\u{2066}', "\\u{2066}"),
        ('\u{2067}', "\\u{2067}"),
        ('\u{2068}', "\\u{2068}"),
        ('\u{2069}', "\\u{2069}"),
        ('\u{061c}', "\\u{61c}"),
        ('\u{200e}', "\\u{200e}"),
        ('\u{200f}', "\\u{200f}"),
    ] {
        assert_eq!(show_str(c.encode_utf8(&mut [0; 4])), expected, "{c:?}");
    }
}

#[test]
fn a_right_to_left_override_cannot_reorder_what_follows() {
    assert_eq!(
        show_str("invoice\u{202e}fdp.exe"),
        "invoice\\u{202e}fdp.exe"
    );
}

#[test]
fn invalid_utf8_becomes_one_replacement_character_per_maximal_invalid_sequence() {
    assert_eq!(show(b"a\xffb"), "a\u{fffd}b");
    assert_eq!(show(b"\xff\xfe"), "\u{fffd}\u{fffd}");
    // A truncated three-byte character is one maximal invalid sequence.
    assert_eq!(show(b"x\xe2\x82y"), "x\u{fffd}y");
    assert_eq!(show(b"\xe2\x82"), "\u{fffd}");
    // Surrogates and overlong forms are invalid byte by byte.
    assert_eq!(show(b"\xed\xa0\x80"), "\u{fffd}\u{fffd}\u{fffd}");
    assert_eq!(show(b"\xc0\xaf"), "\u{fffd}\u{fffd}");
}

#[test]
fn invalid_utf8_is_replaced_as_from_utf8_lossy_does() {
    for bytes in [
        &b"\xf0\x9f\x8e"[..],
        b"\xf4\x90\x80\x80",
        b"ab\xe0\x80cd",
        b"\x80\x80\xc2",
    ] {
        assert_eq!(show(bytes), String::from_utf8_lossy(bytes), "{bytes:x?}");
    }
}

#[test]
fn a_lone_c1_byte_is_invalid_utf8_not_a_control() {
    // 0x9b alone is CSI to an 8-bit terminal; as UTF-8 it is invalid.
    assert_eq!(show(b"\x9b2J"), "\u{fffd}2J");
}

#[test]
fn everything_else_passes_through() {
    let text = "héllo, 世界 🎉 ^[ \\u{1b} ~ \u{a0}\u{2028}";
    assert_eq!(show(text.as_bytes()), text);
    assert_eq!(show_str(text), text);
}

#[test]
fn an_escape_sequence_is_shown_not_obeyed() {
    assert_eq!(
        show(b"\x1b]0;pwned\x07\x1b[2Jhi\r\n"),
        "^[]0;pwned^G^[[2Jhi^M^J"
    );
}

#[test]
fn a_multi_line_message_keeps_its_lines_each_made_safe() {
    let shown = SafeMessage("one\r\ntwo \x1b[2J\nthree\n").to_string();
    assert_eq!(shown, "one\ntwo ^[[2J\nthree");
}

#[test]
fn a_lone_carriage_return_in_a_message_is_shown_not_obeyed() {
    assert_eq!(SafeMessage("over\rwrite\n\n").to_string(), "over^Mwrite\n");
}

#[test]
fn empty_input_shows_nothing() {
    assert_eq!(show(b""), "");
    assert_eq!(show_str(""), "");
}

#[test]
fn is_safe_is_true_for_printable_text_and_tab() {
    assert!(is_safe(""));
    assert!(is_safe("hello\tworld 世界 🎉"));
}

#[test]
fn is_safe_is_false_for_any_control() {
    for s in [
        "\x1b",
        "a\nb",
        "\x7f",
        "\u{85}",
        "x\u{202e}",
        "\u{2069}",
        "\0",
    ] {
        assert!(!is_safe(s), "{s:?}");
    }
}

/// Records every non-empty `write_str` the formatter makes.
#[derive(Default)]
struct Writes(Vec<String>);

impl Write for Writes {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if !s.is_empty() {
            self.0.push(s.to_owned());
        }
        Ok(())
    }
}

#[test]
fn runs_of_safe_text_are_written_whole() {
    let mut writes = Writes::default();
    write!(
        writes,
        "{}",
        SafeStr("hello world\x1bsecond run\u{202e}third")
    )
    .unwrap();
    assert!(
        writes.0.contains(&"hello world".to_owned()),
        "{:?}",
        writes.0
    );
    assert!(
        writes.0.contains(&"second run".to_owned()),
        "{:?}",
        writes.0
    );
    assert!(writes.0.contains(&"third".to_owned()), "{:?}", writes.0);
}

#[test]
fn safe_text_is_written_in_one_call() {
    let mut writes = Writes::default();
    write!(writes, "{}", Safe("all of it, 世界".as_bytes())).unwrap();
    assert_eq!(writes.0, ["all of it, 世界"]);
}

// --- Properties -----------------------------------------------------------------------------

/// Bytes rich in the interesting cases: controls, C1 and bidi encodings, broken sequences.
fn tricky_bytes() -> impl Strategy<Value = Vec<u8>> {
    let pieces: Vec<&'static [u8]> = vec![
        b"a",
        b"hello ",
        b"\t",
        b"\x1b",
        b"\x00",
        b"\r\n",
        b"\x7f",
        "\u{85}".as_bytes(),
        "\u{9b}".as_bytes(),
        "\u{202e}".as_bytes(),
        "\u{2066}".as_bytes(),
        "\u{61c}".as_bytes(),
        "\u{200f}".as_bytes(),
        "世".as_bytes(),
        "🎉".as_bytes(),
        b"\xe2",
        b"\xe2\x80",
        b"\xf0\x9f\x8e",
        b"\xc2",
        b"\x9b",
        b"\xff",
        b"\xed\xa0\x80",
    ];
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec(proptest::sample::select(pieces), 0..16).prop_map(|p| p.concat()),
    ]
}

/// Text rich in the interesting cases, or any text at all.
fn tricky_str() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        tricky_bytes().prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

proptest! {
    #![proptest_config(config(2000))]

    /// Text meant as lines (serve's log to a text peer) keeps its line feeds and shows
    /// everything else as [`SafeStr`] does, line by line.
    #[test]
    fn safe_lines_is_safe_str_line_by_line_with_the_line_feeds_kept(s in tricky_str(), t in tricky_str()) {
        for text in [s.as_str(), &format!("{s}\n{t}\n")] {
            let expected: Vec<String> = text.split('\n').map(show_str).collect();
            prop_assert_eq!(SafeLines(text).to_string(), expected.join("\n"));
        }
    }

    #[test]
    fn output_never_contains_a_dangerous_character(bytes in tricky_bytes()) {
        let out = show(&bytes);
        prop_assert!(!out.chars().any(is_dangerous), "{:?}", out);
    }

    #[test]
    fn output_of_str_never_contains_a_dangerous_character(s in tricky_str()) {
        prop_assert!(!show_str(&s).chars().any(is_dangerous));
    }

    #[test]
    fn safe_input_is_shown_unchanged(s in tricky_str()) {
        let safe: String = s.chars().filter(|&c| !is_dangerous(c)).collect();
        prop_assert!(is_safe(&safe));
        prop_assert_eq!(show_str(&safe), safe.clone());
        prop_assert_eq!(show(safe.as_bytes()), safe);
    }

    #[test]
    fn is_safe_says_whether_the_output_equals_the_input(s in tricky_str()) {
        prop_assert_eq!(is_safe(&s), show_str(&s) == s);
    }

    #[test]
    fn text_is_shown_as_the_rules_say_char_by_char(s in tricky_str()) {
        prop_assert_eq!(show_str(&s), reference(&s));
    }

    #[test]
    fn bytes_are_shown_as_their_lossy_decoding_made_safe(bytes in tricky_bytes()) {
        prop_assert_eq!(show(&bytes), show_str(&String::from_utf8_lossy(&bytes)));
    }
}
