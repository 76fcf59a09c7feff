//! The blob stores' behaviour, written once against [`BlobStore`] and run on every backend: the
//! local store always, an S3-compatible server when `PYINDEX_TEST_S3_ENDPOINT` is set (see
//! `scripts/s3`). A backend's test module calls [`blob_store_suite!`] with an expression giving
//! a future of `Option<(guard, store)>`; `None` skips the test (the opener says why).

use std::sync::Arc;

use futures::StreamExt;

use crate::{BlobBody, BlobKey, BlobStore, ByteRange, Spool, SpooledFile, StoredBlob};

/// Generates one `#[tokio::test]` per suite function.
macro_rules! blob_store_suite {
    ($open:expr) => {
        $crate::suite::blob_store_suite!(@tests $open;
            put_then_get_whole_and_ranges,
            large_files_round_trip_with_ranges,
            a_second_put_keeps_the_first_and_empties_the_spool,
            racing_puts_of_one_key_store_it_once,
            lists_sizes_and_deletes,
            missing_blobs_are_none,
            check_passes,
            leftover_removal_never_touches_a_blob,
        );
    };
    (@tests $open:expr; $($name:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some((_guard, store)) = $open.await else {
                    return;
                };
                $crate::suite::$name(std::sync::Arc::new(store)).await;
            }
        )*
    };
}
pub(crate) use blob_store_suite;

/// A spool of its own for one test.
struct Scratch {
    _dir: tempfile::TempDir,
    spool: Spool,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path().join("tmp")).unwrap();
        Scratch { _dir: dir, spool }
    }

    async fn spooled(&self, data: &[u8]) -> (BlobKey, SpooledFile) {
        let file = self.spool.spool_bytes(data).await.unwrap();
        (BlobKey::parse(&file.digests().sha256).unwrap(), file)
    }

    async fn put(&self, store: &dyn BlobStore, data: &[u8]) -> BlobKey {
        let (key, file) = self.spooled(data).await;
        store.put_spooled(&key, file).await.unwrap();
        key
    }

    fn spool_is_empty(&self) -> bool {
        std::fs::read_dir(self.spool.dir()).unwrap().count() == 0
    }
}

/// Bytes unlikely to be stored by another test (each test run writes new content).
fn unique(len: usize) -> Vec<u8> {
    let mut seed = [0u8; 16];
    getrandom::fill(&mut seed).unwrap();
    (0..len)
        .map(|i| seed[i % 16].wrapping_add((i / 16) as u8))
        .collect()
}

async fn read(store: &dyn BlobStore, key: &BlobKey, range: Option<ByteRange>) -> Vec<u8> {
    let body: BlobBody = store.get(key, range).await.unwrap().unwrap();
    let len = body.len;
    let data = crate::read_all_for_tests(body).await;
    assert_eq!(data.len() as u64, len, "a body's length is what it says");
    data
}

async fn listed(store: &dyn BlobStore) -> Vec<StoredBlob> {
    store.list().map(Result::unwrap).collect().await
}

pub(crate) async fn put_then_get_whole_and_ranges(store: Arc<dyn BlobStore>) {
    let scratch = Scratch::new();
    let mut data = b"hello world ".to_vec();
    data.extend(unique(16));
    let key = scratch.put(store.as_ref(), &data).await;
    assert_eq!(store.size(&key).await.unwrap(), Some(data.len() as u64));
    assert_eq!(read(store.as_ref(), &key, None).await, data);
    let world = read(store.as_ref(), &key, Some(ByteRange { start: 6, end: 11 })).await;
    assert_eq!(world, b"world");
    // Ranges are clamped to the blob.
    let tail = Some(ByteRange {
        start: 20,
        end: 10_000,
    });
    assert_eq!(read(store.as_ref(), &key, tail).await, &data[20..]);
    let past = Some(ByteRange {
        start: 10_000,
        end: 20_000,
    });
    assert!(read(store.as_ref(), &key, past).await.is_empty());
    assert!(scratch.spool_is_empty());
}

/// Larger than one S3 part (8 MiB), so stored by multipart upload and conditional copy there.
pub(crate) async fn large_files_round_trip_with_ranges(store: Arc<dyn BlobStore>) {
    let scratch = Scratch::new();
    let data = unique((17 << 20) + 5);
    let key = scratch.put(store.as_ref(), &data).await;
    assert_eq!(store.size(&key).await.unwrap(), Some(data.len() as u64));
    assert!(read(store.as_ref(), &key, None).await == data);
    let range = ByteRange {
        start: (8 << 20) - 3,
        end: (16 << 20) + 7,
    };
    let part = read(store.as_ref(), &key, Some(range)).await;
    assert!(part == data[range.start as usize..range.end as usize]);
    // Stored again: still one blob, same bytes.
    let again = scratch.put(store.as_ref(), &data).await;
    assert_eq!(again, key);
    assert!(read(store.as_ref(), &key, None).await == data);
    assert!(scratch.spool_is_empty());
}

pub(crate) async fn a_second_put_keeps_the_first_and_empties_the_spool(store: Arc<dyn BlobStore>) {
    let scratch = Scratch::new();
    let data = unique(100);
    let key = scratch.put(store.as_ref(), &data).await;
    let before = listed(store.as_ref()).await;
    let first = before.iter().find(|b| b.key == key).unwrap().modified;
    let again = scratch.put(store.as_ref(), &data).await;
    assert_eq!(again, key);
    assert_eq!(read(store.as_ref(), &key, None).await, data);
    assert!(scratch.spool_is_empty());
    // Storing it again counts as storing it now (repair's grace period starts over).
    let after = listed(store.as_ref()).await;
    let second = after.iter().find(|b| b.key == key).unwrap().modified;
    assert!(second >= first);
}

pub(crate) async fn racing_puts_of_one_key_store_it_once(store: Arc<dyn BlobStore>) {
    let scratch = Arc::new(Scratch::new());
    let data = Arc::new(unique(4096));
    let racers = (0..8).map(|_| {
        let (store, scratch, data) = (store.clone(), scratch.clone(), data.clone());
        tokio::spawn(async move { scratch.put(store.as_ref(), &data).await })
    });
    let keys: Vec<BlobKey> = futures::future::join_all(racers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(keys.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(read(store.as_ref(), &keys[0], None).await, *data);
    let copies = listed(store.as_ref())
        .await
        .iter()
        .filter(|b| b.key == keys[0])
        .count();
    assert_eq!(copies, 1);
    assert!(scratch.spool_is_empty());
}

pub(crate) async fn lists_sizes_and_deletes(store: Arc<dyn BlobStore>) {
    let scratch = Scratch::new();
    let small = scratch.put(store.as_ref(), &unique(7)).await;
    let other = scratch.put(store.as_ref(), &unique(300_000)).await;
    let blobs = listed(store.as_ref()).await;
    let size_of = |key: &BlobKey| blobs.iter().find(|b| &b.key == key).map(|b| b.size);
    assert_eq!(size_of(&small), Some(7));
    assert_eq!(size_of(&other), Some(300_000));
    assert!(store.delete(&small).await.unwrap());
    assert!(!store.delete(&small).await.unwrap());
    assert_eq!(store.size(&small).await.unwrap(), None);
    assert!(store.get(&small, None).await.unwrap().is_none());
    let blobs = listed(store.as_ref()).await;
    assert!(!blobs.iter().any(|b| b.key == small));
    assert!(blobs.iter().any(|b| b.key == other));
}

pub(crate) async fn missing_blobs_are_none(store: Arc<dyn BlobStore>) {
    let key = BlobKey::parse(&hex::encode(unique(32))).unwrap();
    assert!(store.get(&key, None).await.unwrap().is_none());
    let range = Some(ByteRange { start: 1, end: 2 });
    assert!(store.get(&key, range).await.unwrap().is_none());
    assert_eq!(store.size(&key).await.unwrap(), None);
}

pub(crate) async fn check_passes(store: Arc<dyn BlobStore>) {
    store.check().await.unwrap();
}

pub(crate) async fn leftover_removal_never_touches_a_blob(store: Arc<dyn BlobStore>) {
    let scratch = Scratch::new();
    let small = scratch.put(store.as_ref(), &unique(10)).await;
    let large = scratch.put(store.as_ref(), &unique(9 << 20)).await;
    // Stored again, so that a re-store marker exists where the backend keeps one.
    let data = read(store.as_ref(), &small, None).await;
    scratch.put(store.as_ref(), &data).await;
    store
        .remove_leftovers(std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(store.size(&small).await.unwrap(), Some(10));
    assert_eq!(store.size(&large).await.unwrap(), Some(9 << 20));
}
