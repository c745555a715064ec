//! The driver thread's one clock: core time, milliseconds since the program started.
//! The driver and the sockets it polls (their lingering closes) read it, so every
//! deadline on that thread is on one scale, the one the core's timers use.
//! A leaf of the host: it imports nothing of the crate.

use meshtalk_core::time::Instant;

/// Core time, counted from when the clock was started; copies read the same time.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// The std time that is core time zero.
    origin: std::time::Instant,
}

impl Clock {
    /// A clock at core time zero now.
    pub fn start() -> Clock {
        Clock {
            origin: std::time::Instant::now(),
        }
    }

    /// Core time now: whole milliseconds since the start, saturating.
    pub fn now(&self) -> Instant {
        let ms = self.origin.elapsed().as_millis();
        Instant::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_starts_near_zero_and_counts_the_milliseconds_that_pass() {
        let clock = Clock::start();
        let start = clock.now();
        assert!(start.as_millis() < 1000, "{start:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
        let later = clock.now();
        assert!(
            later.saturating_since(start).as_millis() >= 20,
            "{start:?} {later:?}"
        );
    }
}
