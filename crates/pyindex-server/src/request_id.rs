//! Request ids: `x-request-id` on every request and response, for correlating log lines
//! (set and echoed by [`crate::envelope`]).
//!
//! tower-http's `MakeRequestUuid` draws a random UUID per request, a `getrandom` system call
//! each time, which showed in profiles of cached pages. An id only has to be unique (nothing
//! trusts it), so it is built by hand here from a random per-process prefix (drawn once) and a
//! counter: `<16 hex digits>-<16 hex digits>`, unique within the process and, through the
//! prefix, across restarts and replicas with overwhelming probability.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{HeaderName, HeaderValue, Request};

/// The header that carries a request's id (a constant: a name given as a string is parsed
/// again at each use).
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Makes `<prefix>-<counter>` request ids; clones share the counter.
#[derive(Clone)]
pub struct MakeCountedRequestId {
    prefix: u64,
    counter: Arc<AtomicU64>,
}

impl MakeCountedRequestId {
    /// A generator with a fresh random prefix (the clock's nanoseconds if the system offers
    /// no randomness, which still separates restarts).
    pub fn new() -> MakeCountedRequestId {
        let prefix = getrandom::u64().unwrap_or_else(|_| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
        MakeCountedRequestId {
            prefix,
            counter: Arc::new(AtomicU64::new(0)),
        }
    }

    fn next(&self) -> HeaderValue {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut buf = [b'-'; 33];
        hex_u64(self.prefix, &mut buf[..16]);
        hex_u64(n, &mut buf[17..]);
        // Hex digits and '-' are always valid header bytes.
        HeaderValue::from_bytes(&buf).unwrap_or_else(|_| HeaderValue::from_static("-"))
    }
}

impl Default for MakeCountedRequestId {
    fn default() -> Self {
        MakeCountedRequestId::new()
    }
}

fn hex_u64(value: u64, out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = DIGITS[((value >> (60 - 4 * i)) & 0xf) as usize];
    }
}

impl MakeCountedRequestId {
    /// The id of `request`: the `x-request-id` the client sent (kept as it is, as tower-http's
    /// request-id layer did), else a new one.
    ///
    /// A new id is not written into the request's headers (tower-http did): nothing reads it
    /// there, the request log's span takes it directly, and the copy cost a header insertion and
    /// a second allocation per request.
    pub fn id_of<B>(&self, request: &Request<B>) -> HeaderValue {
        match request.headers().get(&REQUEST_ID) {
            Some(id) => id.clone(),
            None => self.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_and_share_the_counter_across_clones() {
        let a = MakeCountedRequestId::new();
        let b = a.clone();
        let (x, y) = (a.next(), b.next());
        assert_ne!(x, y);
        let x = x.to_str().unwrap();
        assert_eq!(x.len(), 33);
        assert_eq!(&x[..17], &y.to_str().unwrap()[..17]);
        assert!(x.ends_with("-0000000000000000"));
    }

    #[test]
    fn keeps_the_clients_id_and_sets_a_new_one_otherwise() {
        let ids = MakeCountedRequestId::new();
        let sent = Request::builder()
            .header(REQUEST_ID, "mine-42")
            .body(())
            .unwrap();
        assert_eq!(ids.id_of(&sent), "mine-42");
        let bare = Request::builder().body(()).unwrap();
        let made = ids.id_of(&bare);
        assert_eq!(made.len(), 33);
        assert_ne!(ids.id_of(&bare), made);
    }

    #[test]
    fn hex_is_big_endian() {
        let mut buf = [0u8; 16];
        hex_u64(0x0123_4567_89ab_cdef, &mut buf);
        assert_eq!(&buf, b"0123456789abcdef");
    }
}
