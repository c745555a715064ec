//! SIGINT and SIGTERM become a message to the driver (or to `send --text`'s
//! loop), which then says goodbye to every peer and exits as at the end of input. signal-hook's iterator does the
//! signal-safe part on a thread of its own, so there is no handler code here.

use std::sync::mpsc::Sender;
use std::thread;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::log::{debug, diag};

/// Catches SIGINT and SIGTERM from now on and sends each, named and wrapped by
/// `wrap` (e.g. `Msg::Signal`), to `to_driver`. If they cannot be caught, they
/// keep their default (ending the process at once) and a diagnostic says so.
pub fn spawn<T: Send + 'static>(to_driver: Sender<T>, wrap: fn(&'static str) -> T) {
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(signals) => signals,
        Err(e) => {
            diag!("cannot catch SIGINT/SIGTERM ({e}): they end meshtalk without a goodbye");
            return;
        }
    };
    let spawned = thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                debug!("signal {signal}");
                if to_driver.send(wrap(name(signal))).is_err() {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        diag!("cannot start the signal thread ({e}): SIGINT/SIGTERM are ignored");
    }
}

/// The usual name of a signal we catch.
fn name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}
