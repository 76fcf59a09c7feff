//! The local filesystem blob store.
//!
//! Layout under the root: `sha256/<2 hex>/<2 hex>/<64 hex>`. A blob is published by hard-linking
//! the fsynced spool file to its final name (which fails rather than overwrites if the name
//! exists) and then fsyncing the directories, so a blob name, once visible, always holds the
//! complete content, even across a crash. Cached upstream blobs ([`BlobStore::put_cached`])
//! skip those fsyncs (their reader checks them); a durable write of the same key replaces such
//! a blob with its own fsynced bytes.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::{
    BlobBody, BlobContent, BlobKey, BlobStore, ByteRange, SpooledFile, StorageError, StoredBlob,
};

/// Blobs no larger than this are read in one go instead of streamed.
const SMALL_BLOB: u64 = 256 * 1024;
/// Read buffer for streamed blobs.
const STREAM_CHUNK: u64 = 1024 * 1024;
/// Listed blobs buffered between the directory walk and its reader.
const LIST_BUFFER: usize = 256;

/// Blob storage in a local directory.
#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
}

impl LocalBlobStore {
    /// Removes or lists the interrupted copies last written at least `older_than` ago.
    async fn incoming(
        &self,
        older_than: std::time::Duration,
        remove: bool,
    ) -> Result<Vec<String>, StorageError> {
        let cutoff = std::time::SystemTime::now()
            .checked_sub(older_than)
            .unwrap_or(std::time::SystemTime::UNIX_EPOCH);
        let root = self.root.clone();
        let found = tokio::task::spawn_blocking(move || remove_incoming(&root, cutoff, remove))
            .await
            .map_err(std::io::Error::other)??;
        Ok(found)
    }

    /// A store rooted at `root` (created if missing).
    pub fn open(root: impl Into<PathBuf>) -> std::io::Result<LocalBlobStore> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        Ok(LocalBlobStore { root })
    }

    /// Where the blob for `key` lives.
    pub fn path_of(&self, key: &BlobKey) -> PathBuf {
        let hex = key.as_str();
        self.root
            .join("sha256")
            .join(&hex[0..2])
            .join(&hex[2..4])
            .join(hex)
    }

    async fn publish(
        &self,
        key: &BlobKey,
        file: SpooledFile,
        durability: Durability,
    ) -> Result<(), StorageError> {
        let target = self.path_of(key);
        let root = self.root.clone();
        let key = key.clone();
        tokio::task::spawn_blocking(move || publish(file, &key, &target, &root, durability))
            .await
            .map_err(std::io::Error::other)??;
        Ok(())
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// How a blob is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// Durable before the call returns: the spool file was fsynced, the names on the way to it
    /// are fsynced, and an existing blob under the key is replaced by the spooled bytes (it may
    /// be a cached blob that a crash left short).
    Durable,
    /// Bytes that can be fetched again: no fsync, and an existing blob is kept as it is.
    Cached,
}

/// Links the spooled file to `target` (under `root`) and, when `durability` asks for it, makes
/// the name durable.
fn publish(
    spooled: SpooledFile,
    key: &BlobKey,
    target: &Path,
    root: &Path,
    durability: Durability,
) -> std::io::Result<()> {
    let parent = target
        .parent()
        .ok_or_else(|| std::io::Error::other("blob path has no parent directory"))?;
    std::fs::create_dir_all(parent)?;
    match link_or_copy(spooled.path(), target, root, durability) {
        Ok(()) => {}
        // Same key, same bytes, but the existing blob may have been stored without an fsync
        // (the upstream cache) and be short after a crash: a durable store replaces it with
        // the spooled bytes, which are complete and on disk.
        Err(e)
            if e.kind() == std::io::ErrorKind::AlreadyExists
                && durability == Durability::Durable =>
        {
            replace(spooled, key, target, root)?;
        }
        // An earlier or concurrent writer already published them. Mark the blob as stored
        // now, so that repair's grace period protects it until the caller has recorded it,
        // even if it was an orphan left long ago.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // The owner may set the time through a read-only handle, so a blob made
            // read-only stays so.
            std::fs::File::open(target)?.set_modified(std::time::SystemTime::now())?;
        }
        Err(e) => return Err(e),
    }
    if durability == Durability::Cached {
        return Ok(());
    }
    // Whether this call or a concurrent one made them, the names on the way to the blob must
    // be durable before the caller records the file: fsync its directory and every ancestor up
    // to the store's root.
    let mut dir = parent;
    loop {
        sync_dir(dir)?;
        match dir.parent() {
            Some(up) if dir != root => dir = up,
            _ => break,
        }
    }
    Ok(())
    // `spooled` drops here (if not renamed) and unlinks the spool name; the blob name keeps
    // the data.
}

/// Replaces the blob at `target` with the fsynced spooled file, atomically (a rename; readers
/// of the old file keep reading it). Refuses bytes whose hash is not `key`.
fn replace(spooled: SpooledFile, key: &BlobKey, target: &Path, root: &Path) -> std::io::Result<()> {
    if !spooled.digests().sha256.eq_ignore_ascii_case(key.as_str()) {
        return Err(std::io::Error::other(format!(
            "refusing to replace blob {key} with bytes whose SHA-256 is {}",
            spooled.digests().sha256
        )));
    }
    match spooled.persist(target) {
        Ok(()) => Ok(()),
        Err(e) if e.error.kind() == std::io::ErrorKind::CrossesDevices => {
            let copy = tempfile::Builder::new()
                .prefix(INCOMING)
                .tempfile_in(root)?;
            std::fs::copy(&e.path, copy.path())?;
            copy.as_file().sync_all()?;
            copy.persist(target).map(drop).map_err(|e| e.error)
        }
        Err(e) => Err(e.error),
    }
}

/// Prefix of the temporary copies made when the spool is on another filesystem.
const INCOMING: &str = ".incoming-";

/// Hard-links `spooled` to `target`, which fails if `target` exists. When the store is on
/// another filesystem than the spool (`--storage file://...`), copies the file to a temporary
/// name beside the blobs first (made durable unless `durability` says otherwise), then links
/// that.
fn link_or_copy(
    spooled: &Path,
    target: &Path,
    root: &Path,
    durability: Durability,
) -> std::io::Result<()> {
    match std::fs::hard_link(spooled, target) {
        Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
            let copy = tempfile::Builder::new()
                .prefix(INCOMING)
                .tempfile_in(root)?;
            std::fs::copy(spooled, copy.path())?;
            if durability == Durability::Durable {
                copy.as_file().sync_all()?;
            }
            std::fs::hard_link(copy.path(), target)
        }
        other => other,
    }
}

/// Removes the temporary copies in `root` last written before `cutoff` (left by a crash).
/// Removes (or, with `remove` false, only describes) the interrupted copies in `root` last
/// written before `cutoff`.
fn remove_incoming(
    root: &Path,
    cutoff: std::time::SystemTime,
    remove: bool,
) -> std::io::Result<Vec<String>> {
    let mut removed = Vec::new();
    for entry in entries(root)? {
        let named = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(INCOMING));
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if named && meta.is_file() && meta.modified()? < cutoff {
            if !remove {
                removed.push(format!(
                    "the interrupted copy {} ({} bytes)",
                    entry.path().display(),
                    meta.len()
                ));
                continue;
            }
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed.push(format!(
                    "removed the interrupted copy {} ({} bytes)",
                    entry.path().display(),
                    meta.len()
                )),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

/// Streams the next `len` bytes of `file` in chunks, each read by one blocking call straight
/// into the buffer that is sent (no intermediate copy).
fn chunks(file: std::fs::File, len: u64) -> BoxStream<'static, std::io::Result<Bytes>> {
    futures::stream::try_unfold((file, len), |(mut file, remaining)| async move {
        if remaining == 0 {
            return Ok(None);
        }
        let want = remaining.min(STREAM_CHUNK);
        let (file, chunk) = tokio::task::spawn_blocking(move || {
            // `want` is at most STREAM_CHUNK, so it fits in a usize.
            let mut buf = vec![0u8; want as usize];
            file.read_exact(&mut buf)?;
            Ok::<_, std::io::Error>((file, Bytes::from(buf)))
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(Some((chunk, (file, remaining - want))))
    })
    .boxed()
}

fn read_range(
    path: &Path,
    range: Option<ByteRange>,
) -> std::io::Result<Option<(std::fs::File, u64, u64)>> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let size = file.metadata()?.len();
    let (start, end) = match range {
        Some(r) => (r.start.min(size), r.end.min(size)),
        None => (0, size),
    };
    file.seek(SeekFrom::Start(start))?;
    Ok(Some((file, start, end.max(start))))
}

/// The entries of `dir` (none if it does not exist).
fn entries(dir: &Path) -> std::io::Result<Vec<std::fs::DirEntry>> {
    match std::fs::read_dir(dir) {
        Ok(read) => read.collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Walks `sha256/ab/cd/` and sends every blob found at the place its name says; anything else
/// (stray names, misplaced copies) is skipped, so that a listed key always names the listed
/// file. Stops early when the receiver is gone.
fn walk(
    store: &LocalBlobStore,
    tx: &tokio::sync::mpsc::Sender<Result<StoredBlob, StorageError>>,
) -> std::io::Result<()> {
    for first in entries(&store.root.join("sha256"))? {
        for second in entries(&first.path())? {
            for blob in entries(&second.path())? {
                let Some(key) = blob
                    .file_name()
                    .to_str()
                    .and_then(|n| BlobKey::parse(n).ok())
                else {
                    continue;
                };
                if store.path_of(&key) != blob.path() {
                    continue;
                }
                let meta = match blob.metadata() {
                    Ok(meta) if meta.is_file() => meta,
                    Ok(_) => continue,
                    // Deleted since the directory was read.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                let listed = StoredBlob {
                    key,
                    size: meta.len(),
                    modified: meta.modified()?,
                };
                if tx.blocking_send(Ok(listed)).is_err() {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put_spooled(&self, key: &BlobKey, file: SpooledFile) -> Result<(), StorageError> {
        self.publish(key, file, Durability::Durable).await
    }

    /// No fsync of the file nor of the directories: a crash may lose the blob or leave it
    /// short, which the upstream cache checks before serving it.
    async fn put_cached(&self, key: &BlobKey, file: SpooledFile) -> Result<(), StorageError> {
        self.publish(key, file, Durability::Cached).await
    }

    async fn size(&self, key: &BlobKey) -> Result<Option<u64>, StorageError> {
        match tokio::fs::metadata(self.path_of(key)).await {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The root is a directory in which a file can be created (an unnamed temporary file,
    /// gone when closed, so a probe leaves nothing behind even if the process dies).
    async fn check(&self) -> Result<(), StorageError> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            if !std::fs::metadata(&root)?.is_dir() {
                return Err(std::io::Error::other(format!(
                    "{} is not a directory",
                    root.display()
                )));
            }
            tempfile::tempfile_in(&root).map(drop)
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(())
    }

    async fn get(
        &self,
        key: &BlobKey,
        range: Option<ByteRange>,
    ) -> Result<Option<BlobBody>, StorageError> {
        let path = self.path_of(key);
        let opened = tokio::task::spawn_blocking(move || {
            let Some((file, start, end)) = read_range(&path, range)? else {
                return Ok(None);
            };
            let len = end - start;
            if len <= SMALL_BLOB {
                let mut buf = Vec::with_capacity(len as usize);
                file.take(len).read_to_end(&mut buf)?;
                Ok::<_, std::io::Error>(Some((len, Ok(Bytes::from(buf)))))
            } else {
                Ok(Some((len, Err(file))))
            }
        })
        .await
        .map_err(std::io::Error::other)??;
        let Some((len, content)) = opened else {
            return Ok(None);
        };
        let content = match content {
            Ok(bytes) => BlobContent::Bytes(bytes),
            Err(file) => BlobContent::Stream(chunks(file, len)),
        };
        Ok(Some(BlobBody { len, content }))
    }

    fn list(&self) -> BoxStream<'static, Result<StoredBlob, StorageError>> {
        let (tx, rx) = tokio::sync::mpsc::channel(LIST_BUFFER);
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = walk(&store, &tx) {
                // The receiver may be gone already; then nobody needs the error.
                let _ = tx.blocking_send(Err(e.into()));
            }
        });
        futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
        .boxed()
    }

    async fn delete(&self, key: &BlobKey) -> Result<bool, StorageError> {
        match tokio::fs::remove_file(self.path_of(key)).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
    async fn remove_leftovers(
        &self,
        older_than: std::time::Duration,
    ) -> Result<Vec<String>, StorageError> {
        self.incoming(older_than, true).await
    }

    async fn leftovers(
        &self,
        older_than: std::time::Duration,
    ) -> Result<Vec<String>, StorageError> {
        self.incoming(older_than, false).await
    }
}

#[cfg(test)]
mod suite {
    async fn open() -> Option<(tempfile::TempDir, super::LocalBlobStore)> {
        let dir = tempfile::tempdir().unwrap();
        let store = super::LocalBlobStore::open(dir.path().join("files")).unwrap();
        Some((dir, store))
    }

    crate::suite::blob_store_suite!(open());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Spool;

    async fn read_all(body: BlobBody) -> Vec<u8> {
        crate::read_all_for_tests(body).await
    }

    async fn store_with(data: &[u8]) -> (tempfile::TempDir, LocalBlobStore, BlobKey) {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path().join("tmp")).unwrap();
        let store = LocalBlobStore::open(dir.path().join("files")).unwrap();
        let file = spool.spool_bytes(data).await.unwrap();
        let key = BlobKey::parse(&file.digests().sha256).unwrap();
        store.put_spooled(&key, file).await.unwrap();
        (dir, store, key)
    }

    #[tokio::test]
    async fn check_passes_on_a_directory_and_fails_on_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path().join("files")).unwrap();
        store.check().await.unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("files")).unwrap().count(),
            0
        );
        std::fs::remove_dir(dir.path().join("files")).unwrap();
        std::fs::write(dir.path().join("files"), b"not a directory").unwrap();
        assert!(store.check().await.is_err());
    }

    #[tokio::test]
    async fn put_then_get_whole_and_ranges() {
        let (_dir, store, key) = store_with(b"hello world").await;
        assert_eq!(store.size(&key).await.unwrap(), Some(11));
        let whole = store.get(&key, None).await.unwrap().unwrap();
        assert_eq!(read_all(whole).await, b"hello world");
        let part = store
            .get(&key, Some(ByteRange { start: 6, end: 11 }))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(part.len, 5);
        assert_eq!(read_all(part).await, b"world");
    }

    #[tokio::test]
    async fn streams_large_blobs() {
        let data: Vec<u8> = (0..(3 * SMALL_BLOB)).map(|i| (i % 251) as u8).collect();
        let (_dir, store, key) = store_with(&data).await;
        let body = store
            .get(
                &key,
                Some(ByteRange {
                    start: 1,
                    end: data.len() as u64,
                }),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read_all(body).await, &data[1..]);
    }

    #[tokio::test]
    async fn second_put_of_same_key_is_a_no_op_and_spool_is_emptied() {
        let (dir, store, key) = store_with(b"same").await;
        let spool = Spool::open(dir.path().join("tmp")).unwrap();
        let again = spool.spool_bytes(b"same").await.unwrap();
        store.put_spooled(&key, again).await.unwrap();
        assert_eq!(
            read_all(store.get(&key, None).await.unwrap().unwrap()).await,
            b"same"
        );
        assert_eq!(std::fs::read_dir(spool.dir()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn lists_blobs_where_their_names_say_and_deletes() {
        let (dir, store, key) = store_with(b"listed").await;
        // A stray name and a misplaced copy are not blobs of this store.
        let leaf = store.path_of(&key).parent().unwrap().to_owned();
        std::fs::write(leaf.join("not-a-key"), b"x").unwrap();
        let other = BlobKey::parse(&"1".repeat(64)).unwrap();
        std::fs::write(leaf.join(other.as_str()), b"x").unwrap();
        let listed: Vec<StoredBlob> = store.list().map(Result::unwrap).collect().await;
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].key.clone(), listed[0].size), (key.clone(), 6));
        assert!(store.delete(&key).await.unwrap());
        assert!(!store.delete(&key).await.unwrap());
        assert_eq!(store.size(&key).await.unwrap(), None);
        drop(dir);
    }

    #[tokio::test]
    async fn republishing_an_existing_blob_marks_it_as_stored_now() {
        let (dir, store, key) = store_with(b"again").await;
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000);
        std::fs::File::options()
            .write(true)
            .open(store.path_of(&key))
            .unwrap()
            .set_modified(old)
            .unwrap();
        let spool = Spool::open(dir.path().join("tmp")).unwrap();
        let file = spool.spool_bytes(b"again").await.unwrap();
        store.put_spooled(&key, file).await.unwrap();
        let listed: Vec<StoredBlob> = store.list().map(Result::unwrap).collect().await;
        assert!(listed[0].modified > old + std::time::Duration::from_secs(3600));
    }

    #[tokio::test]
    async fn leftover_copies_from_another_filesystem_are_removed_when_old() {
        let (dir, store, key) = store_with(b"kept").await;
        let root = dir.path().join("files");
        std::fs::write(root.join(".incoming-abc"), b"partial").unwrap();
        std::fs::write(root.join("unrelated"), b"x").unwrap();
        let young = store
            .remove_leftovers(std::time::Duration::from_secs(3600))
            .await
            .unwrap();
        assert!(young.is_empty(), "{young:?}");
        let removed = store
            .remove_leftovers(std::time::Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(removed.len(), 1, "{removed:?}");
        assert!(!root.join(".incoming-abc").exists());
        assert!(root.join("unrelated").exists());
        assert_eq!(store.size(&key).await.unwrap(), Some(4));
    }

    #[tokio::test]
    async fn a_durable_put_replaces_a_cached_blob_a_crash_left_short() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path().join("tmp")).unwrap();
        let store = LocalBlobStore::open(dir.path().join("files")).unwrap();
        let file = spool.spool_bytes(b"complete").await.unwrap();
        let key = BlobKey::parse(&file.digests().sha256).unwrap();
        store.put_cached(&key, file).await.unwrap();
        // A crash took the unsynced tail: a cached put keeps what is there...
        std::fs::write(store.path_of(&key), b"comp").unwrap();
        let again = spool.spool_bytes(b"complete").await.unwrap();
        store.put_cached(&key, again).await.unwrap();
        assert_eq!(store.size(&key).await.unwrap(), Some(4));
        // ...a durable one (a private upload of the same bytes) replaces it.
        let durable = spool.spool_bytes(b"complete").await.unwrap();
        store.put_spooled(&key, durable).await.unwrap();
        assert_eq!(std::fs::read(store.path_of(&key)).unwrap(), b"complete");
        assert_eq!(std::fs::read_dir(spool.dir()).unwrap().count(), 0);
        // Bytes of another hash never replace a blob.
        let wrong = spool.spool_bytes(b"other").await.unwrap();
        assert!(store.put_spooled(&key, wrong).await.is_err());
        assert_eq!(std::fs::read(store.path_of(&key)).unwrap(), b"complete");
    }

    #[tokio::test]
    async fn missing_blob_is_none() {
        let (_dir, store, _) = store_with(b"x").await;
        let other = BlobKey::parse(&"0".repeat(64)).unwrap();
        assert!(store.get(&other, None).await.unwrap().is_none());
        assert_eq!(store.size(&other).await.unwrap(), None);
    }
}
