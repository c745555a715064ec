//! Property tests and the deterministic simulator live in tests/ and src/sim.

pub mod harness;
pub mod sim;
