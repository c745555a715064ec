//! Shared pieces of meshtalk's benchmarks and load tool.

pub mod load;
