//! Property tests and the deterministic simulator live in tests/ and src/sim.

pub mod sim;
