//! The shell kit: the scheduling rules of the shell around a [`crate::node::Node`],
//! written once and run by every shell (the host's driver over sockets, the
//! simulator over in-memory pipes), so what the simulator tests is what ships.
//!
//! A shell moves bytes; these rules decide *when*: whose bytes the node is fed
//! next and how many ([`feed`]), when input pauses because output waits and who is
//! dropped for not reading ([`flow`]), how fast one peer may speak ([`rate`]), and
//! when a dropped link is dialled again ([`backoff`]), and how input run as a
//! script goes: which line runs, which waits and until when, which line an event
//! answers, and the exit status ([`script`]). Like the node they are
//! pure: no clock (`now` comes in), no allocation (fixed capacity `P`, one slot per
//! peer-table slot), no panic on any input.
//!
//! The run loop of a shell, with the kit's calls:
//!
//! ```text
//!   sleep until: a socket is readable | a message | min(node timeout,
//!                flow.next_stall(), limiter.next_at(), backoff.next_at())
//!        |
//!        v
//!   read a chunk of each readable peer with nothing pending
//!        |            feeder.turn(peer), then loop:
//!        |   +-> feeder.next(turn, pending, flow.feeds(peer)) --Paused--> waiting ring
//!        |   |        | Offer(n)                             --Cut-----> turns ring
//!        |   |        v                                      --Done----> read on
//!        |   |   limiter.admit(peer) ? line_piece(..) : throttled (until next_refilled)
//!        |   |        v
//!        |   |   node.handle_input(Received) -> Consumed(k)
//!        |   +-- feeder.took(turn, n, k): consume k (or drop a stuck piece); drain
//!        v
//!   writes progress -> flow.taken; then feeder.resume() / next_resumed: the paused
//!   peers the flow lets go on are fed first, in the order they paused
//!        v
//!   the turns of feeder.next_turn() (a round's writes go out once, at its end);
//!   flow.next_stalled(now) drops non-readers; backoff.next_due(now) dials again;
//!   script.next_line(): the next input line runs, waits or is done
//! ```
//!
//! A module of the core rather than a crate of its own: the rules speak the core's
//! types (`PeerId`, `Instant`, the limits), the core's `no_std` check and
//! mutation runs cover them for free, and a firmware that runs the node gets its
//! shell rules from the same dependency.

pub mod backoff;
pub mod feed;
pub mod flow;
pub mod rate;
pub mod script;
