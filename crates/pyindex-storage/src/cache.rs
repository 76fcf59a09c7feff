//! An in-memory cache of small blobs in front of any [`BlobStore`].
//!
//! Blobs never change once written (their key is their hash), so a cached copy can never be
//! stale and needs no invalidation: only a bound on memory. Small files (most wheels and sdists
//! of a private index, and every metadata file) are then served without touching the disk or,
//! for object storage, the network. Eviction is first-in, first-out.
//!
//! A small blob is kept when it is read and also when it is written: the blob just stored is
//! the one most likely asked for next (an upstream file fetched for one build by the next
//! build, a file just published by the install that follows). Without it, the first install
//! after a cold one read each of its files from the store, every read a trip through the
//! blocking pool, with fifty at once: about a tenth slower than the installs after it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::TryStreamExt;
use futures::stream::BoxStream;

use crate::{
    BlobBody, BlobContent, BlobKey, BlobStore, ByteRange, SpooledFile, StorageError, StoredBlob,
};

/// A [`BlobStore`] that keeps recently read small blobs in memory.
pub struct CachedBlobStore {
    inner: Arc<dyn BlobStore>,
    max_item: u64,
    capacity: u64,
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    blobs: HashMap<BlobKey, Bytes>,
    order: VecDeque<BlobKey>,
    size: u64,
}

impl CacheState {
    fn insert(&mut self, key: BlobKey, data: Bytes, capacity: u64) {
        if self.blobs.contains_key(&key) {
            return;
        }
        self.size += data.len() as u64;
        self.blobs.insert(key.clone(), data);
        self.order.push_back(key);
        while self.size > capacity {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(evicted) = self.blobs.remove(&oldest) {
                self.size -= evicted.len() as u64;
            }
        }
    }
}

impl CacheState {
    fn remove(&mut self, key: &BlobKey) {
        if let Some(removed) = self.blobs.remove(key) {
            self.size -= removed.len() as u64;
            self.order.retain(|k| k != key);
        }
    }
}

impl CachedBlobStore {
    /// Caches blobs of at most `max_item` bytes, `capacity` bytes in all.
    pub fn new(inner: Arc<dyn BlobStore>, max_item: u64, capacity: u64) -> CachedBlobStore {
        CachedBlobStore {
            inner,
            max_item,
            capacity,
            state: Mutex::default(),
        }
    }

    fn cached(&self, key: &BlobKey) -> Option<Bytes> {
        self.state.lock().ok()?.blobs.get(key).cloned()
    }

    fn keep(&self, key: &BlobKey, data: Bytes) {
        if let Ok(mut state) = self.state.lock() {
            state.insert(key.clone(), data, self.capacity);
        }
    }

    /// The bytes of a spooled file small enough to keep, read before it is stored (a store
    /// may move the file). `None` when it is too large, or cannot be read: then it is simply
    /// not kept, and the store reports its own error.
    async fn small_contents(&self, file: &SpooledFile) -> Option<Bytes> {
        if file.len() > self.max_item {
            return None;
        }
        tokio::fs::read(file.path()).await.ok().map(Bytes::from)
    }
}

fn body_of(data: &Bytes, range: Option<ByteRange>) -> BlobBody {
    let len = data.len() as u64;
    let (start, end) = range.map_or((0, len), |r| {
        (r.start.min(len), r.end.min(len).max(r.start.min(len)))
    });
    // Offsets are bounded by `len`, which came from a `usize`.
    BlobBody::from_bytes(data.slice(start as usize..end as usize))
}

#[async_trait]
impl BlobStore for CachedBlobStore {
    async fn put_spooled(&self, key: &BlobKey, file: SpooledFile) -> Result<(), StorageError> {
        let contents = self.small_contents(&file).await;
        self.inner.put_spooled(key, file).await?;
        if let Some(data) = contents {
            self.keep(key, data);
        }
        Ok(())
    }

    async fn download_url(
        &self,
        key: &BlobKey,
        expires_in: std::time::Duration,
    ) -> Result<Option<String>, StorageError> {
        self.inner.download_url(key, expires_in).await
    }

    async fn put_cached(&self, key: &BlobKey, file: SpooledFile) -> Result<(), StorageError> {
        let contents = self.small_contents(&file).await;
        self.inner.put_cached(key, file).await?;
        if let Some(data) = contents {
            self.keep(key, data);
        }
        Ok(())
    }

    async fn size(&self, key: &BlobKey) -> Result<Option<u64>, StorageError> {
        match self.cached(key) {
            Some(data) => Ok(Some(data.len() as u64)),
            None => self.inner.size(key).await,
        }
    }

    async fn check(&self) -> Result<(), StorageError> {
        self.inner.check().await
    }

    async fn get(
        &self,
        key: &BlobKey,
        range: Option<ByteRange>,
    ) -> Result<Option<BlobBody>, StorageError> {
        if let Some(data) = self.cached(key) {
            return Ok(Some(body_of(&data, range)));
        }
        match self.inner.size(key).await? {
            None => return Ok(None),
            Some(size) if size > self.max_item => return self.inner.get(key, range).await,
            Some(_) => {}
        }
        let Some(whole) = self.inner.get(key, None).await? else {
            return Ok(None);
        };
        let data = match whole.content {
            BlobContent::Bytes(bytes) => bytes,
            BlobContent::Stream(mut stream) => {
                let mut buf = BytesMut::with_capacity(whole.len as usize);
                while let Some(chunk) = stream.try_next().await? {
                    buf.extend_from_slice(&chunk);
                }
                buf.freeze()
            }
        };
        self.keep(key, data.clone());
        Ok(Some(body_of(&data, range)))
    }

    fn list(&self) -> BoxStream<'static, Result<StoredBlob, StorageError>> {
        self.inner.list()
    }

    async fn delete(&self, key: &BlobKey) -> Result<bool, StorageError> {
        if let Ok(mut state) = self.state.lock() {
            state.remove(key);
        }
        self.inner.delete(key).await
    }

    async fn remove_leftovers(
        &self,
        older_than: std::time::Duration,
    ) -> Result<Vec<String>, StorageError> {
        self.inner.remove_leftovers(older_than).await
    }

    async fn leftovers(
        &self,
        older_than: std::time::Duration,
    ) -> Result<Vec<String>, StorageError> {
        self.inner.leftovers(older_than).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LocalBlobStore, Spool};
    use futures::StreamExt;

    async fn read_all(body: BlobBody) -> Vec<u8> {
        crate::read_all_for_tests(body).await
    }

    /// A spool, a local store and the cache in front of it, in `dir`.
    fn cached_store(
        dir: &std::path::Path,
        max_item: u64,
        capacity: u64,
    ) -> (Spool, Arc<LocalBlobStore>, CachedBlobStore) {
        let spool = Spool::open(dir.join("tmp")).unwrap();
        let local = Arc::new(LocalBlobStore::open(dir.join("files")).unwrap());
        let cache = CachedBlobStore::new(local.clone(), max_item, capacity);
        (spool, local, cache)
    }

    #[tokio::test]
    async fn serves_ranges_from_memory_and_evicts_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let (spool, local, cache) = cached_store(dir.path(), 8, 9);
        let mut keys = Vec::new();
        for data in [&b"hello"[..], b"world", b"this one is too big"] {
            let file = spool.spool_bytes(data).await.unwrap();
            let key = BlobKey::parse(&file.digests().sha256).unwrap();
            cache.put_spooled(&key, file).await.unwrap();
            keys.push(key);
        }
        assert_eq!(
            read_all(cache.get(&keys[0], None).await.unwrap().unwrap()).await,
            b"hello"
        );
        // Gone from disk, still served from memory.
        std::fs::remove_file(local.path_of(&keys[0])).unwrap();
        let part = cache
            .get(&keys[0], Some(ByteRange { start: 1, end: 3 }))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(part.len, 2);
        assert_eq!(read_all(part).await, b"el");
        // Too big to cache: passed through, ranges included.
        let big = cache
            .get(&keys[2], Some(ByteRange { start: 5, end: 8 }))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read_all(big).await, b"one");
        // Filling past capacity evicts the oldest entry.
        cache.get(&keys[1], None).await.unwrap().unwrap();
        assert!(cache.get(&keys[0], None).await.unwrap().is_none());
        assert_eq!(cache.size(&keys[1]).await.unwrap(), Some(5));
        // A deleted blob is gone from memory too.
        assert!(cache.delete(&keys[1]).await.unwrap());
        assert!(cache.get(&keys[1], None).await.unwrap().is_none());
        assert_eq!(cache.list().count().await, 1);
    }

    #[tokio::test]
    async fn keeps_small_blobs_as_they_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let (spool, local, cache) = cached_store(dir.path(), 8, 64);
        let mut keys = Vec::new();
        for (data, cached) in [
            (&b"published"[..], false),
            (b"fetched", true),
            (b"kept", false),
        ] {
            let file = spool.spool_bytes(data).await.unwrap();
            let key = BlobKey::parse(&file.digests().sha256).unwrap();
            if cached {
                cache.put_cached(&key, file).await.unwrap();
            } else {
                cache.put_spooled(&key, file).await.unwrap();
            }
            keys.push(key);
        }
        // Gone from the store behind it: the small ones are still answered from memory, the
        // one over the item limit (9 bytes) is not.
        for key in &keys {
            std::fs::remove_file(local.path_of(key)).unwrap();
        }
        assert!(cache.get(&keys[0], None).await.unwrap().is_none());
        for (key, data) in [(&keys[1], &b"fetched"[..]), (&keys[2], b"kept")] {
            let body = cache.get(key, None).await.unwrap().unwrap();
            assert_eq!(read_all(body).await, data);
        }
    }
}
