//! Failed-login throttling per client address: after too many failures within a window, further
//! attempts from that address are refused without checking credentials until the window ends.
//!
//! A success does not reset the count: otherwise anyone holding one valid credential could
//! interleave it with unlimited guesses at others. Password checks run a few at a time (see
//! `AuthState`) and check the lockout again once their turn comes, so a burst of parallel
//! guesses cannot all slip past the limit while the slow hash runs.
//!
//! The memory is bounded: at most [`CAPACITY`] addresses are tracked, and a failure from a new
//! address beyond that forgets the address that failed least recently. Each check and failure is
//! constant work. An attacker with more addresses than that can push an address out early, which
//! resets its count; at 10 guesses per address per window that still limits guessing to the rate
//! at which the attacker can bring fresh addresses (IPv6 addresses count per /64).

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lru::LruCache;

/// Failures allowed per window before an address is locked out.
pub const MAX_FAILURES: u32 = 10;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(300);
/// The most addresses tracked at once.
pub const CAPACITY: usize = 65_536;

/// Per-address failure counts, for the [`CAPACITY`] addresses that failed most recently.
pub struct Throttle {
    failures: Mutex<LruCache<String, (u32, Instant)>>,
}

impl Default for Throttle {
    fn default() -> Throttle {
        Throttle::with_capacity(CAPACITY)
    }
}

impl Throttle {
    /// A throttle tracking at most `capacity` addresses (at least one).
    pub fn with_capacity(capacity: usize) -> Throttle {
        Throttle {
            failures: Mutex::new(LruCache::new(
                NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    /// `Err(wait)` if `address` is locked out for `wait` more time.
    pub fn check(&self, address: &str) -> Result<(), Duration> {
        let Ok(failures) = self.failures.lock() else {
            return Ok(());
        };
        match failures.peek(address) {
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
        match failures.get_mut(address) {
            Some(entry) if entry.1.elapsed() < WINDOW => entry.0 += 1,
            Some(entry) => *entry = (1, Instant::now()),
            None => {
                failures.put(address.to_owned(), (1, Instant::now()));
            }
        }
    }

    /// How many addresses are tracked.
    pub fn tracked(&self) -> usize {
        self.failures.lock().map_or(0, |failures| failures.len())
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

    #[test]
    fn a_flood_of_addresses_stays_within_capacity() {
        let t = Throttle::with_capacity(1_000);
        for _ in 0..MAX_FAILURES {
            t.failed("victim-of-guessing");
        }
        for i in 0..100_000 {
            t.failed(&format!("flood-{i}"));
            assert!(t.tracked() <= 1_000);
        }
        assert_eq!(t.tracked(), 1_000);
        // The oldest address was forgotten to make room; the newest are tracked.
        assert!(t.check("victim-of-guessing").is_ok());
        for _ in 1..MAX_FAILURES {
            t.failed("flood-99999");
        }
        assert!(t.check("flood-99999").is_err());
    }

    #[test]
    fn a_recent_offender_is_kept_while_others_flood() {
        let t = Throttle::with_capacity(100);
        for i in 0..10_000 {
            // The offender keeps failing, so it stays among the most recent.
            t.failed("offender");
            t.failed(&format!("flood-{i}"));
        }
        assert!(t.check("offender").is_err());
    }
}
