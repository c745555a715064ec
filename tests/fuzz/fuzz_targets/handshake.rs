//! Fuzzes Noise sessions in both roles, fed the data as the peer's messages or
//! as damage to an honest pair's: see `meshtalk_core::fuzz::handshake`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| meshtalk_core::fuzz::handshake(data));
