//! Checks of cached upstream files before they are served.
//!
//! Cached files are stored without an fsync ([`BlobStore::put_cached`]): after a crash, a blob
//! may be missing, short, or (on some filesystems) hold the wrong bytes, while its record in the
//! cache index survived. So every serve compares the blob's size with the recorded one, and the
//! first serve of a blob since the process started hashes it (in memory for a small blob; while
//! streaming for a large one, holding back its last chunk until the hash is known). A blob that
//! fails either check is dropped (record and bytes) and fetched again; a stream that fails ends
//! with an error, never as a whole 2xx body.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use lru::LruCache;
use pyindex_catalog::UpstreamIndex;
use pyindex_storage::{BlobKey, BlobStore};
use sha2::{Digest, Sha256};

/// How many checked blobs are remembered; one forgotten is hashed again on its next serve.
const VERIFIED: usize = 100_000;

/// The cache's checks, shared by the proxy and the streams it serves.
#[derive(Clone)]
pub(crate) struct Checks {
    index: Arc<dyn UpstreamIndex>,
    blobs: Arc<dyn BlobStore>,
    /// The blobs known to be in the cache, with their size.
    verified: Arc<Mutex<Verified>>,
}

/// The blobs this process knows to be recorded in the cache index with this size and to hold
/// the right bytes (hashed since the process started, or stored by it): served without asking
/// the cache index or hashing them again. A blob is forgotten when it is evicted (here or, as
/// the change log tells, in another process); what was learned before an eviction but is put
/// in after it is not kept (the epoch), so an eviction cannot be undone by a request that
/// looked the blob up just before it.
struct Verified {
    epoch: u64,
    blobs: LruCache<String, u64>,
}

impl Checks {
    pub(crate) fn new(index: Arc<dyn UpstreamIndex>, blobs: Arc<dyn BlobStore>) -> Checks {
        Checks {
            index,
            blobs,
            verified: Arc::new(Mutex::new(Verified {
                epoch: 0,
                blobs: LruCache::new(NonZeroUsize::new(VERIFIED).unwrap_or(NonZeroUsize::MIN)),
            })),
        }
    }

    /// The current epoch: pass it to [`Checks::mark_verified`] for what is learned from now on.
    pub(crate) fn epoch(&self) -> u64 {
        self.verified.lock().map_or(0, |verified| verified.epoch)
    }

    /// The size of the blob, if it is known to be cached and right.
    pub(crate) fn verified_size(&self, sha256: &str) -> Option<u64> {
        self.verified.lock().ok()?.blobs.get(sha256).copied()
    }

    /// Remembers that the blob is recorded with `size` bytes that match its hash, as learned
    /// since `epoch`.
    pub(crate) fn mark_verified(&self, sha256: &str, size: u64, epoch: u64) {
        if let Ok(mut verified) = self.verified.lock()
            && verified.epoch == epoch
        {
            verified.blobs.put(sha256.to_owned(), size);
        }
    }

    /// Forgets a blob evicted from the cache.
    pub(crate) fn forget(&self, sha256: &str) {
        if let Ok(mut verified) = self.verified.lock() {
            verified.epoch += 1;
            verified.blobs.pop(sha256);
        }
    }

    /// Forgets every blob: the cache lost some (each is looked up, and hashed, again).
    pub(crate) fn forget_all(&self) {
        if let Ok(mut verified) = self.verified.lock() {
            verified.epoch += 1;
            verified.blobs.clear();
        }
    }

    /// Forgets a cached blob that failed a check: its record, and its bytes unless a published
    /// file shares them (those were stored durably).
    pub(crate) async fn drop_cached(&self, sha256: &str, why: &str) {
        tracing::warn!(
            sha256,
            why,
            "a cached upstream file failed its check (left by a crash?): dropped, it is fetched again on its next request"
        );
        self.forget(sha256);
        let removed = match self.index.remove_upstream_blob(sha256).await {
            Ok(removed) => removed,
            Err(error) => {
                tracing::warn!(sha256, %error, "could not drop a cached upstream file's record");
                return;
            }
        };
        if removed
            && let Ok(key) = BlobKey::parse(sha256)
            && let Err(error) = self.blobs.delete(&key).await
        {
            tracing::warn!(sha256, %error, "could not delete a cached upstream file");
        }
    }

    /// Whether `bytes` hash to `sha256`.
    pub(crate) fn matches(bytes: &[u8], sha256: &str) -> bool {
        hex::encode(Sha256::digest(bytes)).eq_ignore_ascii_case(sha256)
    }

    /// `stream` as served: hashed on the way, its last chunk held back until the hash is
    /// known; an error instead of it (and the blob dropped) when the hash does not match.
    pub(crate) fn verifying(
        &self,
        stream: BoxStream<'static, std::io::Result<Bytes>>,
        sha256: String,
    ) -> BoxStream<'static, std::io::Result<Bytes>> {
        let state = Verifying {
            epoch: self.epoch(),
            stream,
            hasher: Sha256::new(),
            len: 0,
            held: None,
            done: false,
            sha256,
            checks: self.clone(),
        };
        futures::stream::try_unfold(state, |mut state| async move {
            if state.done {
                return Ok(None);
            }
            while let Some(chunk) = state.stream.try_next().await? {
                state.hasher.update(&chunk);
                state.len += chunk.len() as u64;
                if let Some(previous) = state.held.replace(chunk) {
                    return Ok(Some((previous, state)));
                }
            }
            state.done = true;
            let got = hex::encode(std::mem::take(&mut state.hasher).finalize());
            if !got.eq_ignore_ascii_case(&state.sha256) {
                state
                    .checks
                    .drop_cached(&state.sha256, "its bytes do not match its SHA-256")
                    .await;
                return Err(std::io::Error::other(
                    "the cached upstream file is damaged (its SHA-256 does not match): it was \
                     dropped from the cache; request it again to fetch it anew",
                ));
            }
            state
                .checks
                .mark_verified(&state.sha256, state.len, state.epoch);
            Ok(state.held.take().map(|last| (last, state)))
        })
        .boxed()
    }
}

struct Verifying {
    epoch: u64,
    stream: BoxStream<'static, std::io::Result<Bytes>>,
    hasher: Sha256,
    len: u64,
    held: Option<Bytes>,
    done: bool,
    sha256: String,
    checks: Checks,
}

#[cfg(test)]
mod tests {
    use pyindex_catalog::SqliteCatalog;
    use pyindex_storage::LocalBlobStore;

    use super::*;

    #[tokio::test]
    async fn an_eviction_is_not_undone_by_a_lookup_from_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let index = SqliteCatalog::open(&dir.path().join("db")).await.unwrap();
        let blobs = LocalBlobStore::open(dir.path().join("files")).unwrap();
        let checks = Checks::new(Arc::new(index), Arc::new(blobs));
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        checks.mark_verified(&a, 1, checks.epoch());
        let looked_up = checks.epoch();
        checks.mark_verified(&b, 2, looked_up);
        // Evicted while a request that had looked `a` up was on its way.
        checks.forget(&a);
        checks.mark_verified(&a, 1, looked_up);
        assert_eq!(checks.verified_size(&a), None);
        assert_eq!(checks.verified_size(&b), Some(2));
        checks.forget_all();
        assert_eq!(checks.verified_size(&b), None);
        checks.mark_verified(&b, 2, checks.epoch());
        assert_eq!(checks.verified_size(&b), Some(2));
    }
}
