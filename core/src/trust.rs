//! Trust on first use, as ssh does with `known_hosts`: a secure peer's key is
//! checked against the key pinned to its name. A name seen for the first time is
//! pinned to its key; the pinned key is accepted; another key is refused until
//! the person accepts it (`/trust`). With strict keys, an unpinned name is
//! refused too. The shell keeps the pins (a file, a flash page); this decides.

use core::fmt;

use crate::noise::{Fingerprint, KEY_LEN};

/// What the pins say of a name and the key it came with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The name is not pinned yet: first contact.
    First,
    /// The name is pinned to this very key.
    Known,
    /// The name is pinned to another key, `old`: refuse until `/trust`.
    Changed {
        /// The key pinned before.
        old: [u8; KEY_LEN],
    },
}

impl Verdict {
    /// The verdict on `key` when its name is pinned to `pinned` (or to nothing).
    pub fn of(pinned: Option<&[u8; KEY_LEN]>, key: &[u8; KEY_LEN]) -> Verdict {
        match pinned {
            None => Verdict::First,
            Some(pinned) if pinned == key => Verdict::Known,
            Some(pinned) => Verdict::Changed { old: *pinned },
        }
    }

    /// Whether the peer may be made ready, and how its key is shown if so:
    /// refused when its key changed, or when it is new and `strict` is on.
    pub fn decide(self, strict: bool) -> Result<Trust, Distrust> {
        match self {
            Verdict::Known => Ok(Trust::Known),
            Verdict::First if strict => Err(Distrust::NotPinned),
            Verdict::First => Ok(Trust::First),
            Verdict::Changed { old } => Err(Distrust::Changed {
                old: Fingerprint::of(&old),
            }),
        }
    }
}

/// A key accepted: how, shown with the peer's connected event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Its name was new here: the key is pinned now.
    First,
    /// The key pinned to its name.
    Known,
}

impl Trust {
    /// The word for it, in text and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Trust::First => "first seen",
            Trust::Known => "known",
        }
    }
}

/// A key refused, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distrust {
    /// Strict keys are on and the name is not pinned.
    NotPinned,
    /// The name is pinned to another key, whose fingerprint this is.
    Changed {
        /// The fingerprint of the key pinned before.
        old: Fingerprint,
    },
}

/// The refusal a person reads: which name, which key, why, and what to do.
#[derive(Clone, Copy, Debug)]
pub struct Refused<'a, P> {
    /// The name the peer came with.
    pub name: &'a str,
    /// The fingerprint of the key it came with.
    pub key: Fingerprint,
    /// Why it was refused.
    pub why: Distrust,
    /// Where the pins are kept, as the person would look for them (a path).
    pub pins: P,
}

impl<P: fmt::Display> fmt::Display for Refused<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Refused {
            name, key, pins, ..
        } = self;
        match self.why {
            Distrust::NotPinned => write!(
                f,
                "refused {name}: its key {key} is not in {pins} and --strict-keys is on; check \
                 the fingerprint with its owner, then /trust {name}"
            ),
            Distrust::Changed { old } => write!(
                f,
                "refused {name}: its key changed! known {old}, now {key}. Someone may be posing \
                 as {name}; if {name} really has a new key (check the fingerprint with its \
                 owner), type /trust {name} and connect again"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; KEY_LEN] = [1; KEY_LEN];
    const B: [u8; KEY_LEN] = [2; KEY_LEN];

    #[test]
    fn an_unpinned_name_is_a_first_contact() {
        assert_eq!(Verdict::of(None, &A), Verdict::First);
    }

    #[test]
    fn the_pinned_key_is_known_and_another_changed() {
        assert_eq!(Verdict::of(Some(&A), &A), Verdict::Known);
        assert_eq!(Verdict::of(Some(&A), &B), Verdict::Changed { old: A });
    }

    #[test]
    fn a_first_contact_is_pinned_unless_keys_are_strict() {
        assert_eq!(Verdict::First.decide(false), Ok(Trust::First));
        assert_eq!(Verdict::First.decide(true), Err(Distrust::NotPinned));
    }

    #[test]
    fn a_known_key_is_accepted_even_with_strict_keys() {
        assert_eq!(Verdict::Known.decide(false), Ok(Trust::Known));
        assert_eq!(Verdict::Known.decide(true), Ok(Trust::Known));
    }

    #[test]
    fn a_trusted_key_is_shown_as_first_seen_or_known() {
        assert_eq!(Trust::First.name(), "first seen");
        assert_eq!(Trust::Known.name(), "known");
    }

    type Text = heapless::String<400>;

    /// `args` written out.
    fn text(args: core::fmt::Arguments<'_>) -> Text {
        let mut text = Text::new();
        core::fmt::write(&mut text, args).expect("fits");
        text
    }

    /// The refusal of `why` for bob's key B, the pins in `known_peers`.
    fn refusal(why: Distrust) -> Text {
        let key = Fingerprint::of(&B);
        let pins = "known_peers";
        let refused = Refused {
            name: "bob",
            key,
            why,
            pins,
        };
        text(format_args!("{refused}"))
    }

    #[test]
    fn a_strict_refusal_names_the_key_the_pins_and_the_way_to_accept_it() {
        let key = Fingerprint::of(&B);
        let expected = text(format_args!(
            "refused bob: its key {key} is not in known_peers and --strict-keys is on; check \
             the fingerprint with its owner, then /trust bob"
        ));
        assert_eq!(refusal(Distrust::NotPinned), expected);
    }

    #[test]
    fn a_changed_key_refusal_names_both_keys_and_the_way_to_accept_it() {
        let (old, key) = (Fingerprint::of(&A), Fingerprint::of(&B));
        let refused = refusal(Distrust::Changed { old });
        let start = text(format_args!(
            "refused bob: its key changed! known {old}, now {key}."
        ));
        assert!(refused.starts_with(start.as_str()), "{refused}");
        assert!(
            refused.ends_with("type /trust bob and connect again"),
            "{refused}"
        );
    }

    #[test]
    fn a_changed_key_is_refused_naming_the_old_fingerprint() {
        let old = Fingerprint::of(&A);
        for strict in [false, true] {
            let refused = Verdict::Changed { old: A }.decide(strict);
            assert_eq!(refused, Err(Distrust::Changed { old }));
        }
    }
}
