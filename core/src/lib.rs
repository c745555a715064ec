//! meshtalk-core: the protocol engine of meshtalk, with no I/O, no clock and no
//! allocation. The host feeds a [`node::Node`] inputs and drains its outputs.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod alias;
pub mod command;
pub mod display;
pub mod event;
// Another change moves `flow` out of this crate; until then its one undocumented
// item (`Flow::limits`) is not this lint's business.
#[allow(missing_docs)]
pub mod flow;
pub mod frame;
#[cfg(feature = "fuzz")]
pub mod fuzz;
pub mod limits;
pub mod node;
mod outbox;
pub mod peers;
pub mod route;
pub mod time;
pub mod wire;
