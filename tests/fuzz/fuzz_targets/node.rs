//! Fuzzes the node, fed a sequence of inputs read from the data: see `meshtalk_core::fuzz::node`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| meshtalk_core::fuzz::node(data));
