//! Where log lines go: standard error, written by a thread of their own in batches.
//!
//! The server logs one line per request, so at full request rate the way lines reach stderr is
//! part of every request's cost. Writing each line with its own system call under the stderr lock
//! cost a tenth of a cached page's time, and `tracing-appender`'s non-blocking writer (a channel
//! to a writer thread) wakes that thread for nearly every line, which costs about as much in
//! futex calls. Here a line is appended to a shared buffer under a short lock; only the line that
//! finds the buffer empty wakes the writer thread, which lets lines gather for [`GATHER`] and then
//! writes them all with one system call. Under load that is a few hundred wake-ups and writes a
//! second instead of one per request, and a line still leaves within a few milliseconds; a
//! request never waits on the terminal, pipe or journal behind stderr. The buffer is bounded
//! ([`BUFFER_LIMIT`]): when stderr does not keep up, lines are dropped and counted, and the count
//! is reported on stderr once it takes lines again.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long the writer lets lines gather after the first one of a batch arrived.
const GATHER: Duration = Duration::from_millis(2);
/// Waiting bytes beyond which lines are dropped (the writer holds at most as much again).
const BUFFER_LIMIT: usize = 4 << 20;

/// The state the request threads and the writer thread share.
#[derive(Default)]
struct Shared {
    waiting: Mutex<Vec<u8>>,
    wake: Condvar,
    dropped: AtomicU64,
    closing: AtomicBool,
}

impl Shared {
    fn waiting(&self) -> MutexGuard<'_, Vec<u8>> {
        // A panic while appending bytes cannot leave the buffer unusable: go on with it.
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The `MakeWriter` that logging is set up with; cheap to clone.
#[derive(Clone)]
pub struct BatchedWriter {
    shared: Arc<Shared>,
}

/// Writes what is still waiting and stops the writer thread when dropped (at exit).
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the writer thread over `out` (standard error in the server).
pub fn batched(out: impl Write + Send + 'static) -> (BatchedWriter, FlushGuard) {
    let shared = Arc::new(Shared::default());
    let writer_shared = shared.clone();
    let thread = std::thread::Builder::new()
        .name("pyindex-log".into())
        .spawn(move || write_batches(&writer_shared, out))
        .ok();
    if thread.is_none() {
        // Without the thread nothing would ever be written: say so where it can still be read.
        eprintln!("pyindex: could not start the log writer thread; log lines will be lost");
    }
    (
        BatchedWriter {
            shared: shared.clone(),
        },
        FlushGuard { shared, thread },
    )
}

/// The writer thread: waits for a first line, lets others gather, and writes them in one piece,
/// until closed.
fn write_batches(shared: &Shared, mut out: impl Write) {
    let mut batch = Vec::new();
    loop {
        {
            let mut waiting = shared.waiting();
            while waiting.is_empty() && !shared.closing.load(Ordering::Acquire) {
                waiting = shared
                    .wake
                    .wait(waiting)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
        if !shared.closing.load(Ordering::Acquire) {
            std::thread::sleep(GATHER);
        }
        let closing = {
            let mut waiting = shared.waiting();
            std::mem::swap(&mut *waiting, &mut batch);
            shared.closing.load(Ordering::Acquire)
        };
        let dropped = shared.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let _ = writeln!(
                batch,
                "pyindex: {dropped} log lines were dropped because standard error did not keep up"
            );
        }
        if !batch.is_empty() {
            // Nowhere to report a failing stderr; the next batch tries again.
            let _ = out.write_all(&batch).and_then(|()| out.flush());
            batch.clear();
        }
        if closing && shared.waiting().is_empty() {
            return;
        }
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        {
            // Under the lock, so that the writer cannot miss the wake-up between its check and
            // its wait.
            let _waiting = self.shared.waiting();
            self.shared.closing.store(true, Ordering::Release);
        }
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One log line's writer: appends to the shared buffer.
pub struct LineWriter<'a> {
    shared: &'a Shared,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let mut waiting = self.shared.waiting();
        if waiting.len() + line.len() > BUFFER_LIMIT {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(line.len());
        }
        let first_of_batch = waiting.is_empty();
        waiting.extend_from_slice(line);
        drop(waiting);
        if first_of_batch {
            self.shared.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedWriter {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter {
            shared: &self.shared,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Write` whose bytes the test can read, optionally stuck until released.
    #[derive(Clone, Default)]
    struct Sink {
        bytes: Arc<Mutex<Vec<u8>>>,
        stuck: Arc<Mutex<()>>,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _wait_while_stuck = self.stuck.lock().unwrap();
            self.bytes.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn log(writer: &BatchedWriter, line: &str) {
        writer.make_writer().write_all(line.as_bytes()).unwrap();
    }

    #[test]
    fn every_line_is_written_in_order_by_exit() {
        let sink = Sink::default();
        let (writer, guard) = batched(sink.clone());
        let expected: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
        for i in 0..10_000 {
            log(&writer, &format!("line {i}\n"));
        }
        drop(guard);
        assert_eq!(
            String::from_utf8(sink.bytes.lock().unwrap().clone()).unwrap(),
            expected
        );
    }

    #[test]
    fn a_line_is_written_without_exit_while_idle() {
        let sink = Sink::default();
        let (writer, _guard) = batched(sink.clone());
        log(&writer, "alone\n");
        // Bounded wait: the writer is woken by the line.
        for _ in 0..200 {
            if !sink.bytes.lock().unwrap().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(sink.bytes.lock().unwrap().as_slice(), b"alone\n");
    }

    #[test]
    fn a_stuck_stderr_drops_lines_beyond_the_limit_and_says_how_many() {
        let sink = Sink::default();
        let stuck = sink.stuck.lock().unwrap();
        let (writer, guard) = batched(sink.clone());
        let line = "x".repeat(1023) + "\n";
        // Let the writer take a first batch and block on the stuck sink.
        log(&writer, &line);
        std::thread::sleep(Duration::from_millis(200));
        let lines = 3 * BUFFER_LIMIT / line.len();
        for _ in 0..lines {
            log(&writer, &line);
        }
        assert!(writer.shared.waiting().len() <= BUFFER_LIMIT);
        let dropped = writer.shared.dropped.load(Ordering::Relaxed);
        assert!(dropped > 0, "nothing dropped");
        drop(stuck);
        drop(guard);
        let written = String::from_utf8(sink.bytes.lock().unwrap().clone()).unwrap();
        assert!(
            written.contains(&format!("{dropped} log lines were dropped")),
            "no drop report in the output"
        );
        let kept = written.lines().filter(|l| l.starts_with('x')).count() as u64;
        assert_eq!(kept + dropped, lines as u64 + 1);
    }
}
