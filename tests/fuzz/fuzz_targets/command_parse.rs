//! Fuzzes the command parser, on one typed line: see `meshtalk_core::fuzz::command_parse`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| meshtalk_core::fuzz::command_parse(data));
