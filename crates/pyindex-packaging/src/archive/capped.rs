//! Reading through size caps, so that no input can make inspection use unbounded memory.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

/// Reads all of `reader` unless it holds more than `limit` bytes; then returns `None` having
/// read at most `limit + 1` bytes.
pub(super) fn read_capped(reader: impl Read, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
        Ok(None)
    } else {
        Ok(Some(bytes))
    }
}

/// A reader that fails once more than `limit` bytes have come through it, and remembers that
/// it did (the error itself may be wrapped beyond recognition by the reader's consumer).
pub(super) struct CappedReader<R> {
    inner: R,
    remaining: u64,
    exceeded: Rc<Cell<bool>>,
}

impl<R: Read> CappedReader<R> {
    /// Wraps `inner`; the returned flag turns true when the cap is hit.
    pub(super) fn new(inner: R, limit: u64) -> (CappedReader<R>, Rc<Cell<bool>>) {
        let exceeded = Rc::new(Cell::new(false));
        let reader = CappedReader {
            inner,
            remaining: limit,
            exceeded: Rc::clone(&exceeded),
        };
        (reader, exceeded)
    }
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.remaining == 0 {
            // At the cap: the stream is fine if it ends here, over the limit if it does not.
            let mut probe = [0_u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => {
                    self.exceeded.set(true);
                    Err(io::Error::other("decompressed size limit exceeded"))
                }
            };
        }
        let allowed = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        let window_len = buf.len().min(allowed);
        let Some(window) = buf.get_mut(..window_len) else {
            return Ok(0);
        };
        let read = self.inner.read(window)?;
        self.remaining = self
            .remaining
            .saturating_sub(u64::try_from(read).unwrap_or(u64::MAX));
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_capped_returns_small_input() {
        assert_eq!(read_capped(&b"abc"[..], 3).unwrap(), Some(b"abc".to_vec()));
        assert_eq!(read_capped(&b""[..], 0).unwrap(), Some(Vec::new()));
    }

    #[test]
    fn read_capped_refuses_large_input_without_reading_it_all() {
        let endless = io::repeat(0);
        assert_eq!(read_capped(endless, 1024).unwrap(), None);
    }

    #[test]
    fn capped_reader_allows_exactly_the_limit() {
        let (mut reader, exceeded) = CappedReader::new(&b"12345"[..], 5);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"12345");
        assert!(!exceeded.get());
    }

    #[test]
    fn capped_reader_fails_past_the_limit() {
        let (mut reader, exceeded) = CappedReader::new(io::repeat(1), 10);
        let mut out = Vec::new();
        assert!(reader.read_to_end(&mut out).is_err());
        assert_eq!(out.len(), 10);
        assert!(exceeded.get());
    }
}
