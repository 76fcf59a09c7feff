//! Failed-login throttling per client address: after too many failures within a window, further
//! attempts from that address are refused without checking credentials until the window ends.
//!
//! A success does not reset the count: otherwise anyone holding one valid credential could
//! interleave it with unlimited guesses at others. Password checks run a few at a time (see
//! `AuthState`) and check the lockout again once their turn comes, so a burst of parallel
//! guesses cannot all slip past the limit while the slow hash runs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed per window before an address is locked out.
pub const MAX_FAILURES: u32 = 10;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(300);
/// Above this many tracked addresses, those whose window has passed are forgotten.
const PRUNE_ABOVE: usize = 100_000;

/// Per-address failure counts.
#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Throttle {
    /// `Err(wait)` if `address` is locked out for `wait` more time.
    pub fn check(&self, address: &str) -> Result<(), Duration> {
        let Ok(failures) = self.failures.lock() else {
            return Ok(());
        };
        match failures.get(address) {
            Some(&(count, since)) if count >= MAX_FAILURES && since.elapsed() < WINDOW => {
                Err(WINDOW.saturating_sub(since.elapsed()))
            }
            _ => Ok(()),
        }
    }

    /// Records a failed attempt.
    pub fn failed(&self, address: &str) {
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        if failures.len() > PRUNE_ABOVE {
            failures.retain(|_, (_, since)| since.elapsed() < WINDOW);
        }
        let entry = failures
            .entry(address.to_owned())
            .or_insert((0, Instant::now()));
        if entry.1.elapsed() >= WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_out_after_max_failures_per_address() {
        let t = Throttle::default();
        for _ in 0..MAX_FAILURES {
            assert!(t.check("10.0.0.1").is_ok());
            t.failed("10.0.0.1");
        }
        assert!(t.check("10.0.0.1").is_err());
        assert!(
            t.check("10.0.0.2").is_ok(),
            "other addresses are not affected"
        );
    }
}
