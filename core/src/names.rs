//! The words for the core's states, as every shell shows them: `list_connections`,
//! the `connected` event and their JSON (`"direction": "out"`, `"state": "ready
//! native"`). Named here once, so a desktop and a microcontroller say the same.

use crate::event::{Kind, TextMode};
use crate::node::Phase;
use crate::peers::Direction;

impl Direction {
    /// `out` (we dialled) or `in` (the peer did).
    pub const fn name(self) -> &'static str {
        match self {
            Direction::Outbound => "out",
            Direction::Inbound => "in",
        }
    }
}

impl Kind {
    /// `native`, `text` (lines) or `text-bare` (bare writes).
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Native => "native",
            Kind::Text(TextMode::Lines) => "text",
            Kind::Text(TextMode::Bare) => "text-bare",
        }
    }
}

impl Phase {
    /// `dialing`, `greeting`, `hello`, `ready` and the peer's kind, or `reconnecting`.
    pub const fn name(self) -> &'static str {
        match self {
            Phase::Dialing => "dialing",
            Phase::Greeting => "greeting",
            Phase::Hello => "hello",
            Phase::Ready(Kind::Native) => "ready native",
            Phase::Ready(Kind::Text(TextMode::Lines)) => "ready text",
            Phase::Ready(Kind::Text(TextMode::Bare)) => "ready text-bare",
            Phase::Reconnecting => "reconnecting",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ready_peers_state_is_ready_and_the_name_of_its_kind() {
        for kind in [
            Kind::Native,
            Kind::Text(TextMode::Lines),
            Kind::Text(TextMode::Bare),
        ] {
            let state = Phase::Ready(kind).name();
            assert_eq!(state.strip_prefix("ready "), Some(kind.name()));
        }
    }

    #[test]
    fn directions_are_named_as_the_json_has_always_said_them() {
        assert_eq!(Direction::Outbound.name(), "out");
        assert_eq!(Direction::Inbound.name(), "in");
    }
}
