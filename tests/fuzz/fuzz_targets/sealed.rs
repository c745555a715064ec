//! Fuzzes sealed messages: any bytes opened, and honest messages with a
//! flipped bit: see `meshtalk_core::fuzz::sealed`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| meshtalk_core::fuzz::sealed(data));
