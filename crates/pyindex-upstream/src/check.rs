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
    /// Blobs hashed since the process started, or stored by it (hashed while fetched), with
    /// their size: a blob recorded with that size is not hashed again.
    verified: Arc<Mutex<LruCache<String, u64>>>,
}

impl Checks {
    pub(crate) fn new(index: Arc<dyn UpstreamIndex>, blobs: Arc<dyn BlobStore>) -> Checks {
        Checks {
            index,
            blobs,
            verified: Arc::new(Mutex::new(LruCache::new(
                NonZeroUsize::new(VERIFIED).unwrap_or(NonZeroUsize::MIN),
            ))),
        }
    }

    /// The size of the blob, if this process hashed (or stored) it.
    pub(crate) fn verified_size(&self, sha256: &str) -> Option<u64> {
        self.verified.lock().ok()?.get(sha256).copied()
    }

    /// Remembers that the blob's `size` bytes match its hash.
    pub(crate) fn mark_verified(&self, sha256: &str, size: u64) {
        if let Ok(mut verified) = self.verified.lock() {
            verified.put(sha256.to_owned(), size);
        }
    }

    /// Forgets a blob evicted from the cache.
    pub(crate) fn forget(&self, sha256: &str) {
        if let Ok(mut verified) = self.verified.lock() {
            verified.pop(sha256);
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
            state.checks.mark_verified(&state.sha256, state.len);
            Ok(state.held.take().map(|last| (last, state)))
        })
        .boxed()
    }
}

struct Verifying {
    stream: BoxStream<'static, std::io::Result<Bytes>>,
    hasher: Sha256,
    len: u64,
    held: Option<Bytes>,
    done: bool,
    sha256: String,
    checks: Checks,
}
