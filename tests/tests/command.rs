//! The command language, as a specification: what each line a person types means.

use meshtalk_core::command::{
    AliasError, Command, Emote, Grammar, HELP, ParseError, Target, Verb, help_text, one_edit,
    parse, parse_in, usage, validate_alias,
};
use meshtalk_core::limits::MAX_NAME;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

/// The property tests' settings: the same inputs on every run, and no
/// regression files written into the tree.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(0x0063_6f6d_6d61_6e64),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn ok(line: &str) -> Command<'_> {
    match parse(line) {
        Ok(Some(command)) => command,
        other => panic!("{line:?} should parse to a command, got {other:?}"),
    }
}

fn err(line: &str) -> ParseError<'_> {
    match parse(line) {
        Err(error) => error,
        other => panic!("{line:?} should be an error, got {other:?}"),
    }
}

// --- The seed programs' command forms -------------------------------------------------------

#[test]
fn chat_connect_with_ip_and_port_parses() {
    assert_eq!(
        ok("connect 127.0.0.1 12345"),
        Command::Connect {
            host: "127.0.0.1",
            port: 12345,
            alias: None
        }
    );
}

#[test]
fn chat_send_with_a_message_gives_both_readings() {
    assert_eq!(
        ok("send hello there"),
        Command::Send {
            target: Some(Target::Name("hello")),
            text: "there",
            all: "hello there"
        }
    );
}

#[test]
fn chat_send_with_one_word_has_no_target_and_text_is_all() {
    assert_eq!(
        ok("send hello"),
        Command::Send {
            target: None,
            text: "hello",
            all: "hello"
        }
    );
}

#[test]
fn chat_disconnect_without_target_parses() {
    assert_eq!(ok("disconnect"), Command::Disconnect { target: None });
}

#[test]
fn help_without_topic_parses() {
    assert_eq!(ok("help"), Command::Help { topic: None });
}

#[test]
fn exit_parses() {
    assert_eq!(ok("exit"), Command::Exit);
}

#[test]
fn mesh_send_to_ip_parses_with_the_rest_as_text() {
    assert_eq!(
        ok("send 10.0.0.2 hi there"),
        Command::Send {
            target: Some(Target::Name("10.0.0.2")),
            text: "hi there",
            all: "10.0.0.2 hi there"
        }
    );
}

#[test]
fn mesh_disconnect_by_ip_or_alias_parses() {
    assert_eq!(
        ok("disconnect 10.0.0.2"),
        Command::Disconnect {
            target: Some(Target::Name("10.0.0.2"))
        }
    );
    assert_eq!(
        ok("disconnect bob"),
        Command::Disconnect {
            target: Some(Target::Name("bob"))
        }
    );
}

#[test]
fn mesh_set_alias_parses() {
    assert_eq!(
        ok("set_alias 10.0.0.2 bob"),
        Command::SetAlias {
            target: Target::Name("10.0.0.2"),
            alias: "bob"
        }
    );
}

#[test]
fn mesh_list_connections_parses() {
    assert_eq!(ok("list_connections"), Command::List);
}

// --- Additions to the seed forms ------------------------------------------------------------

#[test]
fn connect_takes_an_optional_alias() {
    assert_eq!(
        ok("connect example.org 15000 bob"),
        Command::Connect {
            host: "example.org",
            port: 15000,
            alias: Some("bob")
        }
    );
}

#[test]
fn connect_takes_host_colon_port_and_ipv6_in_brackets_with_or_without_the_port_attached() {
    let connect = |host, port, alias| Command::Connect { host, port, alias };
    assert_eq!(
        ok("connect 127.0.0.1:4000"),
        connect("127.0.0.1", 4000, None)
    );
    assert_eq!(
        ok("connect example.org:4000 bob"),
        connect("example.org", 4000, Some("bob"))
    );
    assert_eq!(ok("connect [::1]:4000"), connect("::1", 4000, None));
    assert_eq!(
        ok("connect [::1] 4000 bob"),
        connect("::1", 4000, Some("bob"))
    );
    assert_eq!(
        ok("connect [fe80::1%eth0]:4000"),
        connect("fe80::1%eth0", 4000, None)
    );
    // Something after the bracket other than `:port` is kept as typed, for the dial to refuse.
    assert_eq!(ok("connect [::1]x 4000"), connect("[::1]x", 4000, None));
    // A bare IPv6 address has its port as the next word, as before.
    assert_eq!(ok("connect ::1 4000"), connect("::1", 4000, None));
    assert_eq!(
        ok("connect 10.0.0.2 15000"),
        connect("10.0.0.2", 15000, None)
    );
}

#[test]
fn connect_with_a_bad_port_attached_is_an_error_naming_it() {
    assert_eq!(err("connect 127.0.0.1:x"), ParseError::PortNotNumber("x"));
    assert_eq!(
        err("connect [::1]:70000"),
        ParseError::PortOutOfRange("70000")
    );
    assert_eq!(
        err("connect [::1]"),
        ParseError::MissingArguments(Verb::Connect)
    );
    assert_eq!(
        err("connect 127.0.0.1:4000 bob extra"),
        ParseError::TooManyArguments {
            verb: Verb::Connect,
            extra: "extra"
        }
    );
}

#[test]
fn an_alias_with_a_letter_outside_ascii_is_refused_asking_for_ascii_letters() {
    let e = err("set_alias bob Zoë");
    assert_eq!(
        e,
        ParseError::BadAlias {
            alias: "Zoë",
            error: AliasError::BadChar('ë')
        }
    );
    assert!(e.to_string().contains("use ASCII letters"), "{e}");
}

#[test]
fn broadcast_parses_with_its_text() {
    assert_eq!(
        ok("broadcast hello room"),
        Command::Broadcast { text: "hello room" }
    );
}

#[test]
fn help_takes_a_command_word_or_synonym_as_topic() {
    assert_eq!(
        ok("help send"),
        Command::Help {
            topic: Some("send")
        }
    );
    assert_eq!(ok("help ls"), Command::Help { topic: Some("ls") });
}

#[test]
fn hash_and_a_number_is_a_peer_id() {
    assert_eq!(
        ok("disconnect #3"),
        Command::Disconnect {
            target: Some(Target::Id(3))
        }
    );
    assert_eq!(
        ok("send #12 hi"),
        Command::Send {
            target: Some(Target::Id(12)),
            text: "hi",
            all: "#12 hi"
        }
    );
    assert_eq!(
        ok("set_alias #1 bob"),
        Command::SetAlias {
            target: Target::Id(1),
            alias: "bob"
        }
    );
}

#[test]
fn peer_id_may_have_leading_zeros_and_reach_u32_max() {
    assert_eq!(Target::parse("#007"), Ok(Target::Id(7)));
    assert_eq!(Target::parse("#4294967295"), Ok(Target::Id(u32::MAX)));
}

#[test]
fn target_displays_as_typed() {
    assert_eq!(Target::Id(3).to_string(), "#3");
    assert_eq!(Target::Name("bob").to_string(), "bob");
}

#[test]
fn command_knows_its_verb() {
    assert_eq!(ok("ls").verb(), Verb::List);
    assert_eq!(ok("send x y").verb(), Verb::Send);
}

// --- Synonyms and case ----------------------------------------------------------------------

/// Arguments that make a valid line for each verb.
fn valid_args(verb: Verb) -> &'static str {
    match verb {
        Verb::Connect => " host 1234 bob",
        Verb::Send => " bob hello",
        Verb::Broadcast => " hello all",
        Verb::Disconnect => " #2",
        Verb::SetAlias => " #2 bob",
        Verb::List | Verb::Exit => "",
        Verb::Help => " send",
        Verb::Say => " hello all",
        Verb::Me => " waves",
        Verb::Nick => " carl",
        Verb::Log => " chat.log",
        Verb::Whoami | Verb::Nearby => "",
        Verb::Verify => " #2",
        Verb::Trust => " bob",
    }
}

#[test]
fn the_key_commands_parse_with_their_arguments() {
    assert_eq!(ok("/whoami"), Command::Whoami);
    assert_eq!(
        ok("/verify bob"),
        Command::Verify {
            target: Some(Target::Name("bob"))
        }
    );
    assert_eq!(ok("/verify"), Command::Verify { target: None });
    assert_eq!(ok("/trust bob"), Command::Trust { name: "bob" });
    assert!(matches!(
        parse("/trust"),
        Err(ParseError::MissingArguments(Verb::Trust))
    ));
    assert!(matches!(
        parse("/trust b@d"),
        Err(ParseError::BadAlias { .. })
    ));
    assert!(matches!(
        parse("/whoami now"),
        Err(ParseError::TooManyArguments { .. })
    ));
}

#[test]
fn every_synonym_parses_like_its_command_word() {
    for verb in Verb::ALL {
        let canonical = format!("{}{}", verb.name(), valid_args(verb));
        for synonym in verb.synonyms() {
            let line = format!("{synonym}{}", valid_args(verb));
            assert_eq!(parse(&line), parse(&canonical), "{synonym}");
        }
    }
}

#[test]
fn the_listed_synonyms_are_those_agreed() {
    let words = |verb: Verb| verb.synonyms().to_vec();
    assert_eq!(words(Verb::Connect), ["c", "open"]);
    assert_eq!(words(Verb::Send), ["s", "msg"]);
    assert_eq!(words(Verb::Broadcast), ["b", "all"]);
    assert_eq!(words(Verb::Disconnect), ["d", "close"]);
    assert_eq!(words(Verb::SetAlias), ["alias"]);
    assert_eq!(words(Verb::List), ["list", "ls", "peers", "who"]);
    assert_eq!(words(Verb::Help), ["h", "?"]);
    assert_eq!(words(Verb::Exit), ["quit", "q"]);
    for verb in [Verb::Say, Verb::Me, Verb::Nick, Verb::Log] {
        assert_eq!(words(verb), Vec::<&str>::new(), "{verb:?}");
    }
}

#[test]
fn no_word_names_two_commands() {
    let mut words: Vec<&str> = Verb::ALL
        .iter()
        .flat_map(|verb| std::iter::once(verb.name()).chain(verb.synonyms().iter().copied()))
        .collect();
    let count = words.len();
    words.sort_unstable();
    words.dedup();
    assert_eq!(words.len(), count);
}

#[test]
fn command_words_are_case_sensitive() {
    assert_eq!(
        err("Send bob hi"),
        ParseError::Misspelt {
            word: "Send",
            meant: "send",
            slash: false,
            as_text: false
        }
    );
    assert_eq!(err("EXIT"), ParseError::UnknownCommand("EXIT"));
}

// --- Whitespace and line endings ------------------------------------------------------------

#[test]
fn blank_line_is_no_command() {
    for line in ["", " ", "\t  ", "\n", "\r\n", "\r", "  \t\r\n", "\u{3000}"] {
        assert_eq!(parse(line), Ok(None), "{line:?}");
    }
}

#[test]
fn one_line_ending_is_stripped() {
    assert_eq!(ok("exit\n"), Command::Exit);
    assert_eq!(ok("exit\r\n"), Command::Exit);
    assert_eq!(ok("exit\r"), Command::Exit);
    assert_eq!(ok("broadcast hi\r\n"), Command::Broadcast { text: "hi" });
}

#[test]
fn only_one_line_ending_is_stripped_from_message_text() {
    assert_eq!(ok("broadcast hi\n\n"), Command::Broadcast { text: "hi\n" });
}

#[test]
fn whitespace_around_the_command_word_is_ignored() {
    assert_eq!(ok("  \t exit \t "), Command::Exit);
    assert_eq!(ok("   list_connections   \n"), Command::List);
}

#[test]
fn words_are_separated_by_any_run_of_whitespace() {
    assert_eq!(
        ok("connect \t 10.0.0.2  \t 12345"),
        Command::Connect {
            host: "10.0.0.2",
            port: 12345,
            alias: None
        }
    );
}

#[test]
fn unicode_whitespace_separates_words_like_python_split() {
    assert_eq!(
        ok("send\u{3000}bob\u{a0}hi"),
        Command::Send {
            target: Some(Target::Name("bob")),
            text: "hi",
            all: "bob\u{a0}hi"
        }
    );
}

// --- Message text is kept exactly -----------------------------------------------------------

#[test]
fn send_text_keeps_interior_and_trailing_whitespace() {
    assert_eq!(
        ok("send   bob  hello   world \t \r\n"),
        Command::Send {
            target: Some(Target::Name("bob")),
            text: "hello   world \t ",
            all: "bob  hello   world \t ",
        }
    );
}

#[test]
fn broadcast_text_keeps_interior_and_trailing_whitespace() {
    assert_eq!(
        ok("broadcast  a  b  \n"),
        Command::Broadcast { text: "a  b  " }
    );
}

#[test]
fn send_target_followed_only_by_whitespace_gives_empty_text() {
    assert_eq!(
        ok("send bob  "),
        Command::Send {
            target: Some(Target::Name("bob")),
            text: "",
            all: "bob  "
        }
    );
}

#[test]
fn send_one_word_starting_with_hash_is_text_without_target() {
    assert_eq!(
        ok("send #yolo"),
        Command::Send {
            target: None,
            text: "#yolo",
            all: "#yolo"
        }
    );
}

// --- Errors ---------------------------------------------------------------------------------

#[test]
fn unknown_command_names_the_word_and_points_to_help() {
    assert_eq!(err("foo bar"), ParseError::UnknownCommand("foo"));
    assert_eq!(
        err("foo bar").to_string(),
        "unknown command 'foo'; type 'help' for the list"
    );
}

#[test]
fn send_without_message_is_an_error_with_usage() {
    for line in ["send", "send   ", "send\r\n", "  s \t"] {
        assert_eq!(
            err(line),
            ParseError::MissingMessage(Verb::Send),
            "{line:?}"
        );
    }
    assert!(
        err("send")
            .to_string()
            .contains("usage: send <alias|ip|#id> <message>")
    );
}

#[test]
fn broadcast_without_message_is_an_error_with_usage() {
    assert_eq!(
        err("broadcast  "),
        ParseError::MissingMessage(Verb::Broadcast)
    );
    assert!(
        err("broadcast")
            .to_string()
            .contains("usage: broadcast <message>")
    );
}

#[test]
fn send_to_a_malformed_peer_number_is_an_error() {
    assert_eq!(err("send #x hi"), ParseError::BadPeerNumber("#x"));
}

#[test]
fn hash_without_a_number_from_one_is_not_a_peer_number() {
    for word in [
        "#",
        "#x",
        "#0",
        "#00",
        "#+1",
        "#-1",
        "#1a",
        "#1.5",
        "#4294967296",
        "#99999999999999999999",
    ] {
        assert_eq!(
            Target::parse(word),
            Err(ParseError::BadPeerNumber(word)),
            "{word}"
        );
    }
}

#[test]
fn bad_peer_number_message_says_what_to_type() {
    assert_eq!(
        err("disconnect #x").to_string(),
        "'#x' is not a peer number; use #1, #2, ... as list_connections shows"
    );
}

#[test]
fn connect_with_too_few_words_is_an_error_with_usage() {
    assert_eq!(err("connect"), ParseError::MissingArguments(Verb::Connect));
    assert_eq!(
        err("connect 10.0.0.2"),
        ParseError::MissingArguments(Verb::Connect)
    );
    assert!(
        err("connect 10.0.0.2")
            .to_string()
            .ends_with("usage: connect <host> <port> [alias]")
    );
}

#[test]
fn connect_with_too_many_words_is_an_error_naming_the_extra_word() {
    assert_eq!(
        err("connect h 1 bob extra more"),
        ParseError::TooManyArguments {
            verb: Verb::Connect,
            extra: "extra"
        }
    );
    assert!(
        err("connect h 1 bob extra")
            .to_string()
            .contains("usage: connect")
    );
}

#[test]
fn port_that_is_not_a_number_is_an_error() {
    for port in ["abc", "+1", "1.0", "0x10", "1e3", "１２", "--1", "-", "-x"] {
        let line = format!("connect h {port}");
        assert_eq!(parse(&line), Err(ParseError::PortNotNumber(port)), "{port}");
    }
    assert_eq!(
        err("connect h abc").to_string(),
        "port 'abc' is not a number"
    );
}

#[test]
fn port_outside_1_to_65535_is_an_error() {
    for port in [
        "0",
        "65536",
        "70000",
        "-1",
        "4294967296",
        "99999999999999999999",
        "-99999999999999999999",
    ] {
        let line = format!("connect h {port}");
        assert_eq!(
            parse(&line),
            Err(ParseError::PortOutOfRange(port)),
            "{port}"
        );
    }
    assert_eq!(
        err("connect h 70000").to_string(),
        "port 70000 is out of range 1-65535"
    );
}

#[test]
fn ports_1_and_65535_are_accepted() {
    assert!(matches!(
        ok("connect h 1"),
        Command::Connect { port: 1, .. }
    ));
    assert!(matches!(
        ok("connect h 65535"),
        Command::Connect { port: 65535, .. }
    ));
    assert!(matches!(
        ok("connect h 00080"),
        Command::Connect { port: 80, .. }
    ));
}

#[test]
fn connect_with_a_bad_alias_is_an_error() {
    assert_eq!(
        err("connect h 1 #bob"),
        ParseError::BadAlias {
            alias: "#bob",
            error: AliasError::BadChar('#')
        }
    );
}

#[test]
fn disconnect_with_two_targets_is_an_error() {
    assert_eq!(
        err("disconnect bob alice"),
        ParseError::TooManyArguments {
            verb: Verb::Disconnect,
            extra: "alice"
        }
    );
}

#[test]
fn set_alias_needs_a_target_and_an_alias() {
    assert_eq!(
        err("set_alias"),
        ParseError::MissingArguments(Verb::SetAlias)
    );
    assert_eq!(
        err("set_alias bob"),
        ParseError::MissingArguments(Verb::SetAlias)
    );
    assert!(
        err("set_alias bob")
            .to_string()
            .contains("usage: set_alias <alias|ip|#id> <alias>")
    );
}

#[test]
fn set_alias_takes_one_word_as_alias() {
    assert_eq!(
        err("set_alias 10.0.0.2 bob smith"),
        ParseError::TooManyArguments {
            verb: Verb::SetAlias,
            extra: "smith"
        }
    );
}

#[test]
fn set_alias_with_a_bad_alias_is_an_error() {
    let long = "a".repeat(33);
    let line = format!("set_alias #1 {long}");
    assert_eq!(
        parse(&line),
        Err(ParseError::BadAlias {
            alias: &long,
            error: AliasError::TooLong { chars: 33 }
        })
    );
}

#[test]
fn commands_without_arguments_refuse_extra_words() {
    assert_eq!(
        err("list_connections all"),
        ParseError::TooManyArguments {
            verb: Verb::List,
            extra: "all"
        }
    );
    assert_eq!(
        err("exit now"),
        ParseError::TooManyArguments {
            verb: Verb::Exit,
            extra: "now"
        }
    );
    assert_eq!(
        err("help send now"),
        ParseError::TooManyArguments {
            verb: Verb::Help,
            extra: "now"
        }
    );
}

#[test]
fn help_on_an_unknown_topic_is_an_error() {
    assert_eq!(err("help foo"), ParseError::UnknownHelpTopic("foo"));
    assert!(err("help foo").to_string().contains("'foo'"));
}

#[test]
fn error_messages_show_control_characters_safely() {
    let message = err("\x1b[2J\u{202e}x").to_string();
    assert_eq!(
        message,
        "unknown command '^[[2J\\u{202e}x'; type 'help' for the list"
    );
}

// --- Aliases --------------------------------------------------------------------------------

#[test]
fn alias_of_letters_digits_underscore_dot_and_dash_is_valid() {
    assert_eq!(validate_alias("Bob_2.home-pc"), Ok(()));
    assert_eq!(validate_alias("x"), Ok(()));
    assert_eq!(validate_alias(&"a".repeat(MAX_NAME)), Ok(()));
}

#[test]
fn empty_alias_is_invalid() {
    assert_eq!(validate_alias(""), Err(AliasError::Empty));
}

#[test]
fn alias_longer_than_32_chars_is_invalid_and_says_how_long() {
    let error = validate_alias(&"a".repeat(40)).unwrap_err();
    assert_eq!(error, AliasError::TooLong { chars: 40 });
    assert_eq!(error.to_string(), "too long (40 chars, max 32)");
}

#[test]
fn alias_with_another_character_is_invalid_and_names_it() {
    for (alias, c) in [
        ("#bob", '#'),
        ("bo b", ' '),
        ("café", 'é'),
        ("a/b", '/'),
        ("a\u{1b}", '\u{1b}'),
    ] {
        assert_eq!(
            validate_alias(alias),
            Err(AliasError::BadChar(c)),
            "{alias:?}"
        );
    }
    assert!(
        AliasError::BadChar('#')
            .to_string()
            .starts_with("bad character '#'")
    );
}

#[test]
fn alias_error_shows_a_control_character_safely() {
    assert!(
        AliasError::BadChar('\u{1b}')
            .to_string()
            .starts_with("bad character '^['")
    );
}

// --- Help and usage -------------------------------------------------------------------------

#[test]
fn help_lists_every_command_with_its_usage_and_synonyms() {
    for verb in Verb::ALL {
        assert!(HELP.contains(verb.usage()), "{verb:?}");
        for synonym in verb.synonyms() {
            assert!(HELP.contains(synonym), "{synonym}");
        }
    }
}

#[test]
fn help_text_without_topic_is_the_list() {
    assert_eq!(help_text(None), Some(HELP));
}

#[test]
fn help_text_on_a_command_starts_with_its_usage() {
    for verb in Verb::ALL {
        for word in std::iter::once(verb.name()).chain(verb.synonyms().iter().copied()) {
            let text = help_text(Some(word)).unwrap();
            assert!(text.starts_with(verb.usage()), "{word}");
        }
    }
}

#[test]
fn help_text_on_an_unknown_word_is_none() {
    assert_eq!(help_text(Some("foo")), None);
    assert_eq!(help_text(Some("Send")), None);
}

#[test]
fn usage_is_found_by_word_or_synonym() {
    assert_eq!(usage("connect"), Some("connect <host> <port> [alias]"));
    assert_eq!(usage("c"), Some("connect <host> <port> [alias]"));
    assert_eq!(usage("send"), Some("send <alias|ip|#id> <message>"));
    assert_eq!(usage("nope"), None);
}

// --- Properties -----------------------------------------------------------------------------

fn command_word() -> impl Strategy<Value = &'static str> {
    let words: Vec<&'static str> = Verb::ALL
        .iter()
        .flat_map(|verb| std::iter::once(verb.name()).chain(verb.synonyms().iter().copied()))
        .collect();
    proptest::sample::select(words)
}

fn argument() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,12}",
        ".{0,12}",
        "#[0-9]{0,12}",
        "#.{0,3}",
        "-?[0-9]{0,25}",
        "[A-Za-z0-9_.-]{0,40}",
        Just(String::new()),
    ]
}

fn separator() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(vec![
        " ", "  ", "\t", " \t ", "\u{3000}", "\u{a0}", "\r\n", "\n", "\r",
    ])
}

fn line_from_words() -> impl Strategy<Value = String> {
    (
        separator(),
        command_word(),
        prop::collection::vec((separator(), argument()), 0..5),
        proptest::option::of(separator()),
    )
        .prop_map(|(lead, word, args, tail)| {
            let mut line = format!("{lead}{word}");
            for (sep, arg) in args {
                line.push_str(sep);
                line.push_str(&arg);
            }
            line.push_str(tail.unwrap_or(""));
            line
        })
}

/// Numbers typed as a port: mostly near the valid range (its edges often),
/// some far beyond any integer type the parser might use.
fn port_numbers() -> impl Strategy<Value = u128> {
    prop_oneof![
        2 => proptest::sample::select(vec![0u128, 1, 65_535, 65_536]),
        6 => 0u128..=70_000,
        2 => any::<u128>(),
    ]
}

/// Parses and, for an error, formats the message: neither may panic.
fn parse_and_show(line: &str) {
    if let Err(error) = parse(line) {
        let _ = error.to_string();
    }
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn arbitrary_text_gives_a_command_or_an_error_and_never_panics(line in any::<String>()) {
        parse_and_show(&line);
    }

    #[test]
    fn arbitrary_unicode_with_whitespace_never_panics(line in "(\\PC|\\s){0,40}") {
        parse_and_show(&line);
    }

    #[test]
    fn command_words_with_random_arguments_never_panic(line in line_from_words()) {
        parse_and_show(&line);
    }

    #[test]
    fn send_to_bob_keeps_the_text_exactly(
        first in "[^\\s]",
        rest in "[^\\r\\n]{0,40}",
        ending in proptest::sample::select(vec!["", "\n", "\r\n", "\r"]),
    ) {
        let text = format!("{first}{rest}");
        let line = format!("send bob {text}{ending}");
        let all = format!("bob {text}");
        prop_assert_eq!(
            parse(&line),
            Ok(Some(Command::Send { target: Some(Target::Name("bob")), text: &text, all: &all }))
        );
    }

    #[test]
    fn broadcast_keeps_the_text_exactly(first in "[^\\s]", rest in "[^\\r\\n]{0,40}") {
        let text = format!("{first}{rest}");
        let line = format!("broadcast {text}");
        prop_assert_eq!(parse(&line), Ok(Some(Command::Broadcast { text: &text })));
    }

    #[test]
    fn send_text_is_a_suffix_of_all_and_equal_exactly_without_target(line in line_from_words()) {
        if let Ok(Some(Command::Send { target, text, all })) = parse(&line) {
            prop_assert!(all.ends_with(text));
            prop_assert_eq!(target.is_none(), text == all);
        }
    }

    #[test]
    fn alias_is_valid_exactly_when_it_matches_the_charset_and_length(
        alias in prop_oneof!["[A-Za-z0-9_.-]{0,40}", "\\PC{0,40}"],
    ) {
        let expected = !alias.is_empty()
            && alias.chars().count() <= MAX_NAME
            && alias.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        prop_assert_eq!(validate_alias(&alias).is_ok(), expected);
    }

    #[test]
    fn any_decimal_port_is_accepted_exactly_from_1_to_65535(n in port_numbers()) {
        let line = format!("connect h {n}");
        let port = n.to_string();
        let expected = match u16::try_from(n) {
            Ok(p) if p >= 1 => Ok(Some(Command::Connect { host: "h", port: p, alias: None })),
            _ => Err(ParseError::PortOutOfRange(&port)),
        };
        prop_assert_eq!(parse(&line), expected);
    }
}

// --- The chat prompt: plain text is a message, `/` forms for everything ----------------------

fn chat(line: &str) -> Result<Option<Command<'_>>, ParseError<'_>> {
    parse_in(line, Grammar::Chat)
}

fn said(line: &str) -> Command<'_> {
    match chat(line) {
        Ok(Some(command)) => command,
        other => panic!("{line:?} should parse at the chat prompt, got {other:?}"),
    }
}

#[test]
fn at_the_chat_prompt_a_line_that_is_no_command_is_said_as_typed() {
    assert_eq!(
        said("hello there  "),
        Command::Say {
            text: "hello there  "
        }
    );
    assert_eq!(said("  hi\r\n"), Command::Say { text: "hi" });
    assert_eq!(
        said("what? #3 is odd"),
        Command::Say {
            text: "what? #3 is odd"
        }
    );
    assert_eq!(chat("   "), Ok(None));
}

#[test]
fn at_the_chat_prompt_the_seed_words_keep_their_meaning() {
    for line in [
        "connect 127.0.0.1 4000",
        "send bob hi",
        "broadcast hi all",
        "disconnect bob",
        "set_alias #1 bob",
        "list_connections",
        "help send",
        "exit",
    ] {
        assert_eq!(chat(line), parse(line), "{line}");
        assert!(!matches!(said(line), Command::Say { .. }), "{line}");
    }
}

#[test]
fn at_the_chat_prompt_short_synonyms_are_ordinary_words_and_slash_forms_are_commands() {
    for line in [
        "all good here",
        "s o s",
        "q",
        "list of things",
        "b",
        "open the door",
        "close call",
        "peers are here",
        "msg me later",
        "alias grace is here",
        "h",
        "ls",
        "who knows",
    ] {
        assert_eq!(said(line), Command::Say { text: line }, "{line}");
    }
    assert_eq!(said("/all good"), Command::Broadcast { text: "good" });
    assert_eq!(said("/q"), Command::Exit);
    assert_eq!(said("/who"), Command::List);
    // In a script they are what they always were.
    assert_eq!(ok("all good"), Command::Broadcast { text: "good" });
    assert_eq!(ok("q"), Command::Exit);
}

#[test]
fn every_command_word_and_synonym_works_after_a_slash_in_both_grammars() {
    for verb in Verb::ALL {
        let canonical = format!("/{}{}", verb.name(), valid_args(verb));
        let expected = parse(&canonical);
        assert!(matches!(expected, Ok(Some(_))), "{canonical}: {expected:?}");
        for word in verb.words() {
            let line = format!("/{word}{}", valid_args(verb));
            assert_eq!(parse(&line), expected, "{line}");
            assert_eq!(chat(&line), expected, "{line} at the chat prompt");
        }
    }
}

#[test]
fn the_irc_forms_parse_to_their_commands() {
    assert_eq!(
        said("/msg bob hi there"),
        Command::Send {
            target: Some(Target::Name("bob")),
            text: "hi there",
            all: "bob hi there"
        }
    );
    assert_eq!(said("/me waves  "), Command::Me { action: "waves  " });
    assert_eq!(said("/nick carl"), Command::Nick { name: "carl" });
    assert_eq!(said("/who"), Command::List);
    assert_eq!(said("/list"), Command::List);
    assert_eq!(
        said("/connect 10.0.0.2 4000"),
        Command::Connect {
            host: "10.0.0.2",
            port: 4000,
            alias: None
        }
    );
    assert_eq!(
        said("/disconnect #2"),
        Command::Disconnect {
            target: Some(Target::Id(2))
        }
    );
    assert_eq!(
        said("/alias #2 bob"),
        Command::SetAlias {
            target: Target::Id(2),
            alias: "bob"
        }
    );
    assert_eq!(said("/quit"), Command::Exit);
    assert_eq!(said("/help"), Command::Help { topic: None });
    assert_eq!(
        said("/help /msg"),
        Command::Help {
            topic: Some("/msg")
        }
    );
    assert_eq!(
        said("/help nick"),
        Command::Help {
            topic: Some("nick")
        }
    );
}

#[test]
fn say_sends_a_line_that_begins_with_a_slash_or_a_command_word_as_it_is() {
    assert_eq!(
        said("/say /etc/hosts is a file"),
        Command::Say {
            text: "/etc/hosts is a file"
        }
    );
    assert_eq!(said("/say exit now"), Command::Say { text: "exit now" });
    assert_eq!(
        said("/say  sned bob hi"),
        Command::Say {
            text: "sned bob hi"
        }
    );
}

#[test]
fn say_and_me_need_something_to_say() {
    assert_eq!(chat("/say"), Err(ParseError::MissingMessage(Verb::Say)));
    assert_eq!(chat("/me  "), Err(ParseError::MissingMessage(Verb::Me)));
    assert_eq!(
        chat("/me").unwrap_err().to_string(),
        "no message to send; usage: /me <action>"
    );
}

#[test]
fn nick_takes_one_valid_name() {
    assert_eq!(chat("/nick"), Err(ParseError::MissingArguments(Verb::Nick)));
    assert_eq!(
        chat("/nick carl jr"),
        Err(ParseError::TooManyArguments {
            verb: Verb::Nick,
            extra: "jr"
        })
    );
    let bad = chat("/nick c@rl").unwrap_err();
    assert_eq!(
        bad,
        ParseError::BadName {
            name: "c@rl",
            error: AliasError::BadChar('@')
        }
    );
    assert!(
        bad.to_string().starts_with("name 'c@rl' is not allowed"),
        "{bad}"
    );
}

#[test]
fn log_takes_a_file_with_spaces_or_nothing_to_stop() {
    assert_eq!(
        said("/log my chat.log  "),
        Command::Log {
            file: Some("my chat.log")
        }
    );
    assert_eq!(said("/log"), Command::Log { file: None });
    assert_eq!(said("/log   "), Command::Log { file: None });
}

#[test]
fn in_a_script_the_new_commands_need_their_slash_and_the_error_says_so() {
    for (line, word) in [
        ("nick carl", "nick"),
        ("say hi", "say"),
        ("me waves", "me"),
        ("log f", "log"),
    ] {
        let e = err(line);
        assert_eq!(
            e,
            ParseError::Misspelt {
                word,
                meant: word,
                slash: true,
                as_text: false
            },
            "{line}"
        );
        assert_eq!(
            e.to_string(),
            format!("unknown command '{word}'; did you mean '/{word}'?")
        );
    }
}

#[test]
fn an_unknown_slash_command_says_what_was_meant_when_one_is_close() {
    let e = chat("/sned bob hi").unwrap_err();
    assert_eq!(
        e,
        ParseError::Misspelt {
            word: "/sned",
            meant: "send",
            slash: true,
            as_text: false
        }
    );
    assert_eq!(
        e.to_string(),
        "unknown command '/sned'; did you mean '/send'?"
    );
    assert_eq!(
        chat("/nik carl").unwrap_err().to_string(),
        "unknown command '/nik'; did you mean '/nick'?"
    );
    assert_eq!(
        parse("/conect h 1").unwrap_err().to_string(),
        "unknown command '/conect'; did you mean '/connect'?"
    );
    assert_eq!(
        chat("/frobnicate"),
        Err(ParseError::UnknownCommand("/frobnicate"))
    );
    assert_eq!(chat("/"), Err(ParseError::UnknownCommand("/")));
    // Too short to guess at: `/x` is one letter from `/c`, `/d`, `/h` and `/q`.
    assert_eq!(chat("/x"), Err(ParseError::UnknownCommand("/x")));
}

#[test]
fn a_plain_line_one_edit_from_a_command_word_is_not_sent_but_answered_with_the_word_meant() {
    let cases = [
        ("sned bob hi", "sned", "send"),
        ("conect 127.0.0.1 4000", "conect", "connect"),
        ("exti", "exti", "exit"),
        ("Exit", "Exit", "exit"),
        ("hlep", "hlep", "help"),
        ("disconect bob", "disconect", "disconnect"),
        ("broadcats hi all", "broadcats", "broadcast"),
    ];
    for (line, word, meant) in cases {
        let e = chat(line).unwrap_err();
        assert_eq!(
            e,
            ParseError::Misspelt {
                word,
                meant,
                slash: false,
                as_text: true
            },
            "{line}"
        );
        assert_eq!(
            e.to_string(),
            format!("unknown command '{word}'; did you mean '{meant}'? (/say sends it as text)")
        );
    }
}

#[test]
fn a_plain_line_near_a_command_word_but_not_shaped_like_that_command_is_a_message() {
    for line in [
        // `exit` takes no words, `help` takes a command, `connect` a port.
        "edit the doc please",
        "hell yes",
        "connects to everything",
        // Too short to be taken for `send`.
        "end of story",
        "sent",
    ] {
        assert_eq!(said(line), Command::Say { text: line }, "{line}");
    }
}

#[test]
fn an_emote_shows_as_irc_shows_an_action() {
    let emote = Emote {
        name: "alice",
        action: "waves at bob",
    };
    assert_eq!(emote.to_string(), "* alice waves at bob");
}

#[test]
fn one_edit_counts_an_added_dropped_changed_or_swapped_character() {
    assert!(one_edit("sned", "send"));
    assert!(one_edit("conect", "connect"));
    assert!(one_edit("connectt", "connect"));
    assert!(one_edit("semd", "send"));
    assert!(one_edit("é", "e"));
    assert!(!one_edit("send", "send"));
    assert!(!one_edit("sedn", "dens"));
    assert!(!one_edit("snde", "send"));
    assert!(!one_edit("", ""));
    assert!(one_edit("", "a"));
}

/// The optimal-string-alignment distance (edits and swaps of neighbours), by the
/// textbook table: the reference [`one_edit`] is checked against.
fn osa(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// A word and a word near it: the same with up to two random edits.
fn word_and_neighbour() -> impl Strategy<Value = (String, String)> {
    (
        "[a-eé]{0,6}",
        prop::collection::vec((0u8..4, any::<prop::sample::Index>(), "[a-eé]"), 0..3),
    )
        .prop_map(|(word, edits)| {
            let mut chars: Vec<char> = word.chars().collect();
            for (kind, at, c) in edits {
                let c = c.chars().next().unwrap_or('a');
                let len = chars.len();
                match kind {
                    0 => chars.insert(at.index(len + 1), c),
                    1 if len > 0 => {
                        chars.remove(at.index(len));
                    }
                    2 if len > 0 => chars[at.index(len)] = c,
                    3 if len > 1 => {
                        let i = at.index(len - 1);
                        chars.swap(i, i + 1);
                    }
                    _ => {}
                }
            }
            (word, chars.into_iter().collect())
        })
}

fn slash_line() -> impl Strategy<Value = (String, String)> {
    let words: Vec<&'static str> = Verb::ALL
        .iter()
        .filter(|verb| !verb.slash_only())
        .flat_map(|verb| verb.words().iter().copied())
        .collect();
    (
        proptest::sample::select(words),
        prop::collection::vec((separator(), argument()), 0..4),
    )
        .prop_map(|(word, args)| {
            let rest: String = args
                .into_iter()
                .map(|(sep, arg)| format!("{sep}{arg}"))
                .collect();
            (format!("{word}{rest}"), format!("/{word}{rest}"))
        })
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn one_edit_is_exactly_an_alignment_distance_of_one((a, b) in word_and_neighbour()) {
        prop_assert_eq!(one_edit(&a, &b), osa(&a, &b) == 1, "{:?} {:?}", a, b);
    }

    #[test]
    fn a_slash_form_reads_as_its_bare_word_in_a_script_and_at_the_chat_prompt(
        (bare, slashed) in slash_line(),
    ) {
        prop_assert_eq!(parse(&slashed), parse(&bare));
        prop_assert_eq!(chat(&slashed), parse(&bare));
    }

    #[test]
    fn at_the_chat_prompt_arbitrary_text_never_panics(line in "(\\PC|\\s){0,40}") {
        if let Err(error) = chat(&line) {
            let _ = error.to_string();
        }
    }

    #[test]
    fn at_the_chat_prompt_a_line_far_from_every_command_word_is_said_exactly(
        line in "[^/\\s][^\\r\\n]{0,30}",
    ) {
        let first = line.split_whitespace().next().unwrap_or("");
        let near = Verb::ALL
            .iter()
            .flat_map(|verb| verb.bare_words(Grammar::Chat))
            .any(|word| *word == first || one_edit(first, word));
        prop_assume!(!near);
        prop_assert_eq!(chat(&line), Ok(Some(Command::Say { text: &line })));
    }

    #[test]
    fn at_the_chat_prompt_a_misspelt_word_is_refused_only_when_the_rest_reads_as_the_command(
        line in line_from_words(),
    ) {
        // Misspell the command word by swapping its first two letters.
        let trimmed = line.trim_start();
        let mut chars: Vec<char> = trimmed.chars().collect();
        if chars.len() > 1 && chars[0] != chars[1] && !chars[1].is_whitespace() {
            chars.swap(0, 1);
        }
        let typo: String = chars.into_iter().collect();
        if let Err(ParseError::Misspelt { meant, as_text, .. }) = chat(&typo) {
            prop_assert!(as_text);
            let (_, rest) = typo.split_once(char::is_whitespace).unwrap_or((typo.as_str(), ""));
            let fixed = format!("{meant} {rest}");
            prop_assert!(matches!(chat(&fixed), Ok(Some(_))), "{:?} -> {:?}", typo, fixed);
        }
    }
}

// --- LAN discovery's words: `/nearby` and `connect <name>` -------------------------------------

#[test]
fn nearby_is_a_command_bare_only_in_scripts() {
    assert_eq!(said("/nearby"), Command::Nearby);
    assert_eq!(ok(" /nearby "), Command::Nearby);
    assert_eq!(ok("nearby"), Command::Nearby);
    assert_eq!(
        said("nearby"),
        Command::Say { text: "nearby" },
        "a word said to the room"
    );
    assert_eq!(
        err("/nearby bob"),
        ParseError::TooManyArguments {
            verb: Verb::Nearby,
            extra: "bob"
        }
    );
}

#[test]
fn connect_with_one_word_that_is_no_address_names_a_node_heard_nearby() {
    assert_eq!(ok("connect carol"), Command::ConnectName { name: "carol" });
    assert_eq!(said("/c box.lan"), Command::ConnectName { name: "box.lan" });
    assert_eq!(ok("connect carol").verb(), Verb::Connect);
}

#[test]
fn connect_with_one_word_that_is_an_address_still_needs_its_port() {
    for line in [
        "connect 10.0.0.2",
        "connect ::1",
        "connect [::1]",
        "connect fe80::1%eth0",
    ] {
        assert_eq!(
            err(line),
            ParseError::MissingArguments(Verb::Connect),
            "{line}"
        );
    }
}
