//! Recording completed fetches in the cache index, with the fetches that complete together
//! written in one transaction (group commit).
//!
//! A cold install completes a hundred fetches within a few milliseconds. One transaction each
//! queued them on the cache index's single writer, each a commit and a round trip to the
//! database's thread. Here each fetch adds its record to the pending ones and waits for the
//! writing turn; whoever gets the turn writes every pending record at once and tells each
//! waiter how it went. A fetch still returns only once its own record is committed, so the fetch
//! log misses nothing that was served and recorded as fetched.
//!
//! No task of its own: the fetches take turns. A fetch dropped while it waits (at shutdown)
//! leaves its record pending for the next turn, if there is one: at shutdown it is lost with the
//! fetch, as it was before. The pending records are at most one per fetch in progress.

use std::sync::Mutex;

use pyindex_catalog::{FetchedFile, UpstreamIndex};
use tokio::sync::oneshot;

/// How a write went, told to each fetch whose record it held.
type Outcome = Result<(), String>;

/// The group commit of completed fetches.
#[derive(Default)]
pub(crate) struct FetchRecords {
    pending: Mutex<Vec<(FetchedFile, oneshot::Sender<Outcome>)>>,
    /// Held while records are written: one write at a time.
    writing: tokio::sync::Mutex<()>,
}

impl FetchRecords {
    /// Records `file` (with the records pending beside it), returning once it is committed.
    pub(crate) async fn record(&self, index: &dyn UpstreamIndex, file: FetchedFile) -> Outcome {
        let (told, mut outcome) = oneshot::channel();
        self.pending
            .lock()
            .map_err(|_| "the pending fetch records were poisoned".to_owned())?
            .push((file, told));
        let _turn = self.writing.lock().await;
        // Written by the turn before this one?
        match outcome.try_recv() {
            Ok(written) => return written,
            Err(oneshot::error::TryRecvError::Closed) => {
                return Err("the write of this record was interrupted".to_owned());
            }
            Err(oneshot::error::TryRecvError::Empty) => {}
        }
        // Still pending (turns take every record added before them): this turn writes it.
        let batch = match self.pending.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending),
            Err(_) => return Err("the pending fetch records were poisoned".to_owned()),
        };
        let (files, waiters): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        tracing::debug!(
            fetches = files.len(),
            "recording completed upstream fetches"
        );
        for (waiter, written) in waiters.into_iter().zip(write(index, &files).await) {
            // A waiter gone (dropped at shutdown) needs no answer.
            let _ = waiter.send(written);
        }
        // This fetch's own waiter was in the batch, and told.
        outcome
            .try_recv()
            .unwrap_or_else(|_| Err("this record's outcome was lost".to_owned()))
    }
}

/// Writes `files` in one transaction; when that fails, each on its own, so that one record the
/// database refuses does not take the others with it. One outcome per file.
async fn write(index: &dyn UpstreamIndex, files: &[FetchedFile]) -> Vec<Outcome> {
    match index.record_upstream_fetched(files).await {
        Ok(()) => vec![Ok(()); files.len()],
        Err(error) if files.len() == 1 => vec![Err(error.to_string())],
        Err(_) => {
            let mut outcomes = Vec::with_capacity(files.len());
            for file in files {
                let written = index
                    .record_upstream_fetched(std::slice::from_ref(file))
                    .await;
                outcomes.push(written.map_err(|e| e.to_string()));
            }
            outcomes
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use pyindex_catalog::{CachedBlob, SqliteCatalog};
    use time::OffsetDateTime;

    use super::*;

    fn fetched(i: u8) -> FetchedFile {
        FetchedFile {
            blob: CachedBlob {
                sha256: format!("{i:02x}").repeat(32),
                size: u64::from(i),
                last_used: OffsetDateTime::now_utc(),
            },
            fetch: None,
        }
    }

    #[tokio::test]
    async fn fetches_completed_while_another_is_written_are_all_committed_and_answered() {
        let dir = tempfile::tempdir().unwrap();
        let catalog: Arc<dyn UpstreamIndex> = Arc::new(
            SqliteCatalog::open(&dir.path().join("catalog.sqlite3"))
                .await
                .unwrap(),
        );
        let records = Arc::new(FetchRecords::default());
        // The first turn is taken before the others arrive: they queue behind it.
        let first_turn = records.writing.lock().await;
        let fetches: Vec<_> = (1..=20)
            .map(|i| {
                let (records, catalog) = (records.clone(), catalog.clone());
                tokio::spawn(async move { records.record(catalog.as_ref(), fetched(i)).await })
            })
            .collect();
        while records.pending.lock().unwrap().len() < 20 {
            tokio::task::yield_now().await;
        }
        drop(first_turn);
        for fetch in fetches {
            assert_eq!(fetch.await.unwrap(), Ok(()));
        }
        assert!(records.pending.lock().unwrap().is_empty());
        for i in 1..=20 {
            let sha256 = fetched(i).blob.sha256;
            assert_eq!(
                catalog.upstream_blob_size(&sha256).await.unwrap(),
                Some(u64::from(i)),
            );
        }
    }
}
