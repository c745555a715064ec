//! meshtalk-core: the protocol engine of meshtalk, with no I/O, no clock and no
//! allocation. The host feeds a [`node::Node`] inputs and drains its outputs.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod alias;
pub mod command;
pub mod complete;
pub mod discovery;
pub mod display;
pub mod event;
pub mod frame;
#[cfg(feature = "fuzz")]
pub mod fuzz;
pub mod limits;
pub mod mode;
mod names;
pub mod node;
pub mod noise;
pub mod offer;
mod outbox;
pub mod peers;
pub mod reach;
pub mod route;
pub mod shell;
pub mod time;
pub mod trust;
pub mod wire;
