//! Failed-login throttling per client address: after too many failures within a window, further
//! attempts from that address are refused without checking credentials until the window ends.
//!
//! A success does not reset the count: otherwise anyone holding one valid credential could
//! interleave it with unlimited guesses at others. Password checks run a few at a time (see
//! `AuthState`) and check the lockout again once their turn comes, so a burst of parallel
//! guesses cannot all slip past the limit while the slow hash runs.
//!
//! Failures count twice: per address (an IPv4 address, or the /64 an IPv6 address belongs to,
//! as the server names it) and per network (the IPv4 /24 or IPv6 /48 around it), with a
//! higher limit. One host usually holds a whole /64 but a single site a /48, so spreading
//! guesses over many addresses of one network only reaches the network's limit.
//!
//! The memory is bounded: each level tracks at most [`CAPACITY`] keys, and a failure from a new
//! key beyond that forgets the key that failed least recently. Each check and failure is
//! constant work. Forgetting resets a count, so an attacker can win more guesses only by
//! failing from more than [`CAPACITY`] networks within a window (an IPv6 /32, or 16 million
//! IPv4 addresses); below that, every network is held to [`MAX_NETWORK_FAILURES`] per window.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lru::LruCache;

/// Failures allowed per address (IPv6: per /64) per window before it is locked out.
pub const MAX_FAILURES: u32 = 10;
/// Failures allowed per network (IPv4 /24, IPv6 /48) per window before all of it is locked out.
pub const MAX_NETWORK_FAILURES: u32 = 100;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(300);
/// The most addresses, and the most networks, tracked at once.
pub const CAPACITY: usize = 65_536;

/// The network around an address: what its failures also count against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Network {
    /// The first three octets of an IPv4 /24.
    V4([u8; 3]),
    /// The first three segments of an IPv6 /48.
    V6([u16; 3]),
}

impl Network {
    /// The network of `address`: an IPv4 address, an IPv6 address, or an IPv6 network as
    /// the server names clients (`2001:db8:1:2::/64`); `None` for anything else (no IP).
    fn of(address: &str) -> Option<Network> {
        if let Ok(v4) = address.parse::<Ipv4Addr>() {
            let [a, b, c, _] = v4.octets();
            return Some(Network::V4([a, b, c]));
        }
        let ip = address.strip_suffix("/64").unwrap_or(address);
        let v6 = ip.parse::<Ipv6Addr>().ok()?;
        let s = v6.segments();
        Some(Network::V6([s[0], s[1], s[2]]))
    }
}

/// Failure counts with the time the count started, for the keys that failed most recently.
struct Counts<K: std::hash::Hash + Eq> {
    by_key: LruCache<K, (u32, Instant)>,
    limit: u32,
}

impl<K: std::hash::Hash + Eq> Counts<K> {
    fn new(capacity: usize, limit: u32) -> Counts<K> {
        Counts {
            by_key: LruCache::new(NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN)),
            limit,
        }
    }

    /// How long `key` stays locked out, if it is.
    fn locked_for<Q>(&self, key: &Q) -> Option<Duration>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        match self.by_key.peek(key) {
            Some(&(count, since)) if count >= self.limit && since.elapsed() < WINDOW => {
                Some(WINDOW.saturating_sub(since.elapsed()))
            }
            _ => None,
        }
    }

    fn count<Q>(&mut self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        match self.by_key.get_mut(key) {
            Some(entry) if entry.1.elapsed() < WINDOW => entry.0 += 1,
            Some(entry) => *entry = (1, Instant::now()),
            None => {
                self.by_key.put(key.to_owned(), (1, Instant::now()));
            }
        }
    }
}

/// Failure counts per address and per network, each for the [`CAPACITY`] keys that failed
/// most recently.
pub struct Throttle {
    counts: Mutex<(Counts<String>, Counts<Network>)>,
}

impl Default for Throttle {
    fn default() -> Throttle {
        Throttle::with_capacity(CAPACITY)
    }
}

impl Throttle {
    /// A throttle tracking at most `capacity` addresses and as many networks (at least one).
    pub fn with_capacity(capacity: usize) -> Throttle {
        Throttle {
            counts: Mutex::new((
                Counts::new(capacity, MAX_FAILURES),
                Counts::new(capacity, MAX_NETWORK_FAILURES),
            )),
        }
    }

    /// `Err(wait)` if `address`, or its network, is locked out for `wait` more time.
    pub fn check(&self, address: &str) -> Result<(), Duration> {
        let Ok(counts) = self.counts.lock() else {
            return Ok(());
        };
        let (addresses, networks) = &*counts;
        let network = Network::of(address).and_then(|n| networks.locked_for(&n));
        match addresses.locked_for(address).max(network) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Records a failed attempt against `address` and its network.
    pub fn failed(&self, address: &str) {
        let Ok(mut counts) = self.counts.lock() else {
            return;
        };
        let (addresses, networks) = &mut *counts;
        addresses.count(address);
        if let Some(network) = Network::of(address) {
            networks.count(&network);
        }
    }

    /// How many addresses are tracked.
    pub fn tracked(&self) -> usize {
        self.counts.lock().map_or(0, |counts| counts.0.by_key.len())
    }

    /// How many networks are tracked.
    pub fn tracked_networks(&self) -> usize {
        self.counts.lock().map_or(0, |counts| counts.1.by_key.len())
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

    /// Guesses that get past `check` from `addresses`, each tried until refused or once.
    fn guesses_let_through(t: &Throttle, addresses: impl Iterator<Item = String>) -> u32 {
        let mut through = 0;
        for address in addresses {
            if t.check(&address).is_ok() {
                through += 1;
                t.failed(&address);
            }
        }
        through
    }

    #[test]
    fn networks_are_ipv4_slash_24_and_ipv6_slash_48() {
        assert_eq!(Network::of("10.1.2.3"), Some(Network::V4([10, 1, 2])));
        assert_eq!(
            Network::of("2001:db8:1:2::/64"),
            Some(Network::V6([0x2001, 0xdb8, 1]))
        );
        assert_eq!(
            Network::of("2001:db8:1:2:3:4:5:6"),
            Some(Network::V6([0x2001, 0xdb8, 1]))
        );
        assert_eq!(Network::of("unknown"), None);
        assert_eq!(Network::of("10.1.2.3/64"), None);
    }

    #[test]
    fn spreading_over_a_network_reaches_its_limit() {
        let t = Throttle::default();
        let spread = (0..200).map(|i| format!("10.0.0.{i}"));
        assert_eq!(guesses_let_through(&t, spread), MAX_NETWORK_FAILURES);
        assert!(
            t.check("10.0.0.250").is_err(),
            "a fresh address of the network"
        );
        assert!(t.check("10.0.1.1").is_ok(), "the next /24 is not affected");
    }

    #[test]
    fn cycling_through_more_slash_64s_than_the_capacity_stays_limited() {
        // An attacker holding a /47 (two /48s, 131,072 /64s) with a small throttle: each /64
        // is forgotten long before it is locked out, but the two /48s are not.
        let t = Throttle::with_capacity(1_000);
        let slash_47 = (0..131_072u32).map(|i| {
            let (third, fourth) = (0x10 + (i >> 16), i & 0xffff);
            format!("2001:db8:{third:x}:{fourth:x}::/64")
        });
        assert_eq!(guesses_let_through(&t, slash_47), 2 * MAX_NETWORK_FAILURES);
        assert!(t.tracked() <= 1_000 && t.tracked_networks() <= 1_000);
    }

    #[test]
    fn a_flood_of_networks_stays_within_capacity() {
        let t = Throttle::with_capacity(1_000);
        for i in 0..100_000u32 {
            let [_, a, b, c] = i.to_be_bytes();
            t.failed(&format!("{a}.{b}.{c}.1"));
            assert!(t.tracked_networks() <= 1_000);
        }
        assert_eq!(t.tracked_networks(), 1_000);
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
