//! Fetching upstream files into the cache: one download per file however many clients ask at
//! once, streamed to every one of them while it is written to the spool, checked against the
//! upstream's SHA-256 before the last byte is released.
//!
//! A download runs in its own task, so a client that goes away does not stop it. It writes to a
//! spool file and publishes how many bytes are there ([`Progress`]); each client reads the file
//! through a shared descriptor at its own offset, always holding back the last byte written
//! until the download is verified. When the hash does not match, the readers end their bodies
//! with an error (the client sees a broken transfer, never a whole 2xx body) and nothing is
//! cached.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::stream::BoxStream;
use pyindex_storage::{BlobKey, BlobStore, Spool, SpoolWriter, SpooledFile};
use tokio::sync::watch;

/// The largest chunk a reader sends at once.
const READ_CHUNK: usize = 256 << 10;

/// How far a download has come.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Bytes in the spool file so far.
    pub written: u64,
    /// `None` while running; then whether the file was verified and stored.
    pub outcome: Option<Result<(), String>>,
}

/// One download in progress, shared by every client asking for it.
pub struct Download {
    progress: watch::Receiver<Progress>,
    file: Arc<std::fs::File>,
}

/// Fetch coalescing: at most one download per blob at a time. A trait so that replicas can
/// later share downloads (a lock in the shared store instead of this process's map).
pub trait Coalescer: Send + Sync {
    /// The download of `sha256` in progress, if any; else `None` and the caller must start it
    /// and [`Coalescer::register`] it.
    fn running(&self, sha256: &str) -> Option<Arc<Download>>;
    /// Registers a download just started; `false` if another caller registered one first.
    fn register(&self, sha256: &str, download: Arc<Download>) -> bool;
    /// Forgets a finished download.
    fn finished(&self, sha256: &str);
}

/// The in-process [`Coalescer`].
#[derive(Default)]
pub struct LocalCoalescer {
    running: Mutex<HashMap<String, Arc<Download>>>,
}

impl Coalescer for LocalCoalescer {
    fn running(&self, sha256: &str) -> Option<Arc<Download>> {
        self.running.lock().ok()?.get(sha256).cloned()
    }

    fn register(&self, sha256: &str, download: Arc<Download>) -> bool {
        let Ok(mut running) = self.running.lock() else {
            return false;
        };
        if running.contains_key(sha256) {
            return false;
        }
        running.insert(sha256.to_owned(), download);
        true
    }

    fn finished(&self, sha256: &str) {
        if let Ok(mut running) = self.running.lock() {
            running.remove(sha256);
        }
    }
}

/// Where a started download writes.
pub struct Sink {
    pub(crate) writer: SpoolWriter,
    pub(crate) progress: watch::Sender<Progress>,
}

impl Download {
    /// A download writing to `writer`; returns it and its sink.
    pub async fn start(spool: &Spool, limit: u64) -> std::io::Result<(Arc<Download>, Sink)> {
        let writer = spool.create(limit).await.map_err(std::io::Error::other)?;
        let path = writer.path().to_owned();
        let file = tokio::task::spawn_blocking(move || std::fs::File::open(path))
            .await
            .map_err(std::io::Error::other)??;
        let (progress, receiver) = watch::channel(Progress::default());
        let download = Arc::new(Download {
            progress: receiver,
            file: Arc::new(file),
        });
        Ok((download, Sink { writer, progress }))
    }

    /// The body for one client: the file's bytes as they arrive, the last one held back until
    /// the download is verified; an error at the end if it is not.
    pub fn body(self: &Arc<Self>) -> BoxStream<'static, std::io::Result<Bytes>> {
        let download = self.clone();
        Box::pin(futures::stream::try_unfold(
            (download, 0u64),
            |(download, offset)| async move {
                let mut progress = download.progress.clone();
                loop {
                    let now = progress.borrow_and_update().clone();
                    let releasable = match &now.outcome {
                        Some(Ok(())) => now.written,
                        Some(Err(error)) => {
                            return Err(std::io::Error::other(error.clone()));
                        }
                        None => now.written.saturating_sub(1),
                    };
                    if offset < releasable {
                        let len = usize::try_from(releasable - offset)
                            .unwrap_or(READ_CHUNK)
                            .min(READ_CHUNK);
                        let chunk = read_at(download.file.clone(), offset, len).await?;
                        let next = offset + chunk.len() as u64;
                        return Ok(Some((chunk, (download, next))));
                    }
                    if now.outcome.is_some() {
                        return Ok(None);
                    }
                    if progress.changed().await.is_err() {
                        return Err(std::io::Error::other(
                            "the upstream download stopped unexpectedly",
                        ));
                    }
                }
            },
        ))
    }

    /// Waits until the download is over; its outcome.
    pub async fn finished(&self) -> Result<(), String> {
        let mut progress = self.progress.clone();
        loop {
            if let Some(outcome) = progress.borrow_and_update().outcome.clone() {
                return outcome;
            }
            if progress.changed().await.is_err() {
                return Err("the upstream download stopped unexpectedly".into());
            }
        }
    }
}

async fn read_at(file: Arc<std::fs::File>, offset: u64, len: usize) -> std::io::Result<Bytes> {
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0; len];
        let n = file.read_at(&mut buf, offset)?;
        if n == 0 {
            return Err(std::io::Error::other("the cached file ended early"));
        }
        buf.truncate(n);
        Ok(Bytes::from(buf))
    })
    .await
    .map_err(std::io::Error::other)?
}

impl Sink {
    /// Appends a chunk and tells the readers.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), String> {
        self.writer.write(chunk).await.map_err(|e| e.to_string())?;
        self.writer.flush().await.map_err(|e| e.to_string())?;
        let written = self.writer.len();
        self.progress.send_modify(|p| p.written = written);
        Ok(())
    }

    /// Verifies the file against `sha256`, tells the readers, then stores it in `blobs`;
    /// returns its size. Readers get their last byte as soon as the hash matches, not after
    /// the store: they read the spool file they hold open, whose bytes storing never changes
    /// (it is renamed into place, or copied).
    pub async fn finish(self, sha256: &str, blobs: &dyn BlobStore) -> Result<u64, String> {
        let (key, spooled) = match verified(self.writer, sha256).await {
            Ok(verified) => verified,
            Err(error) => {
                self.progress
                    .send_modify(|p| p.outcome = Some(Err(error.clone())));
                return Err(error);
            }
        };
        self.progress.send_modify(|p| p.outcome = Some(Ok(())));
        let size = spooled.len();
        blobs
            .put_cached(&key, spooled)
            .await
            .map_err(|e| e.to_string())?;
        Ok(size)
    }

    /// Ends the download with `error`.
    pub fn fail(self, error: String) {
        self.progress.send_modify(|p| p.outcome = Some(Err(error)));
    }
}

/// The spooled file, if its bytes hash to `sha256`, with the key it is stored under.
async fn verified(writer: SpoolWriter, sha256: &str) -> Result<(BlobKey, SpooledFile), String> {
    // Cached bytes can be fetched again: no fsync (the cache checks size and hash before
    // serving what a crash may have left short).
    let spooled = writer.finish_unsynced().await.map_err(|e| e.to_string())?;
    let got = &spooled.digests().sha256;
    if !got.eq_ignore_ascii_case(sha256) {
        return Err(format!(
            "the upstream sent a file whose SHA-256 is {got}, not the {sha256} its index lists: \
             it was not delivered and not cached"
        ));
    }
    let key = BlobKey::parse(sha256).map_err(|e| e.to_string())?;
    Ok((key, spooled))
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use pyindex_storage::LocalBlobStore;
    use sha2::{Digest, Sha256};

    use super::*;

    async fn setup() -> (tempfile::TempDir, Spool, LocalBlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path().join("tmp")).unwrap();
        let blobs = LocalBlobStore::open(dir.path().join("files")).unwrap();
        (dir, spool, blobs)
    }

    #[tokio::test]
    async fn readers_get_all_but_the_last_byte_until_the_hash_matches() {
        let (_dir, spool, blobs) = setup().await;
        let (download, mut sink) = Download::start(&spool, 1 << 20).await.unwrap();
        let mut body = download.body();
        sink.write(b"hello ").await.unwrap();
        assert_eq!(&body.next().await.unwrap().unwrap()[..], b"hello");
        sink.write(b"world").await.unwrap();
        assert_eq!(&body.next().await.unwrap().unwrap()[..], b" worl");
        let sha = hex::encode(Sha256::digest(b"hello world"));
        let late = download.body();
        assert_eq!(sink.finish(&sha, &blobs).await.unwrap(), 11);
        assert_eq!(&body.next().await.unwrap().unwrap()[..], b"d");
        assert!(body.next().await.is_none());
        let all: Vec<u8> = late.map(|chunk| chunk.unwrap().to_vec()).concat().await;
        assert_eq!(all, b"hello world");
        let key = BlobKey::parse(&sha).unwrap();
        assert_eq!(blobs.size(&key).await.unwrap(), Some(11));
    }

    #[tokio::test]
    async fn a_mismatching_file_ends_every_body_with_an_error_and_is_not_stored() {
        let (_dir, spool, blobs) = setup().await;
        let (download, mut sink) = Download::start(&spool, 1 << 20).await.unwrap();
        let mut body = download.body();
        sink.write(b"tampered").await.unwrap();
        assert_eq!(&body.next().await.unwrap().unwrap()[..], b"tampere");
        let listed = "ab".repeat(32);
        let error = sink.finish(&listed, &blobs).await.unwrap_err();
        assert!(error.contains("not the"), "{error}");
        assert!(body.next().await.unwrap().is_err());
        let key = BlobKey::parse(&listed).unwrap();
        assert_eq!(blobs.size(&key).await.unwrap(), None);
        assert!(download.finished().await.is_err());
    }

    #[test]
    fn the_local_coalescer_registers_one_download_per_blob() {
        let coalescer = LocalCoalescer::default();
        assert!(coalescer.running("x").is_none());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (_dir, spool, _blobs) = runtime.block_on(setup());
        let (one, _sink1) = runtime.block_on(Download::start(&spool, 10)).unwrap();
        let (two, _sink2) = runtime.block_on(Download::start(&spool, 10)).unwrap();
        assert!(coalescer.register("x", one.clone()));
        assert!(!coalescer.register("x", two));
        assert!(Arc::ptr_eq(&coalescer.running("x").unwrap(), &one));
        coalescer.finished("x");
        assert!(coalescer.running("x").is_none());
    }
}
