//! Fuzzes the display-safety function, on arbitrary bytes: see `meshtalk_core::fuzz::display`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| meshtalk_core::fuzz::display(data));
