//! Fuzzes the frame decoder, fed a stream in chunks: see `meshtalk_core::fuzz::frame_decoder`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| meshtalk_core::fuzz::frame_decoder(data));
