//! Fuzzes the wire decoder, on one frame body: see `meshtalk_core::fuzz::wire_decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| meshtalk_core::fuzz::wire_decode(data));
