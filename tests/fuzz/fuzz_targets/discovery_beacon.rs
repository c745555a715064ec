//! Fuzzes LAN discovery with datagrams from anyone: beacons decoded, written
//! again byte for byte, and fed to a small table that must stay bounded; see
//! `meshtalk_core::fuzz::discovery_beacon`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| meshtalk_core::fuzz::discovery_beacon(data));
