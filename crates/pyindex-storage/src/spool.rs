//! Spooling: stream incoming bytes to a temporary file on local disk, hashing them on the way.
//!
//! The spool directory lives inside the data directory, so that publishing a spooled file into
//! the local blob store is a hard link on the same filesystem. Anything left in it by a crash is
//! garbage by definition and is removed by [`Spool::open`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tempfile::TempPath;
use tokio::io::AsyncWriteExt;

use crate::{Digests, Hasher, StorageError};

/// A directory of temporary files for uploads in progress.
#[derive(Debug, Clone)]
pub struct Spool {
    /// Shared, not owned: the registry (and with it the spool) is cloned for every request.
    dir: Arc<Path>,
}

impl Spool {
    /// Opens (creating it if needed) the spool directory and removes leftovers of earlier runs.
    ///
    /// Only the server process should clean the spool: call [`Spool::open_without_cleaning`]
    /// from commands that may run beside a serving process.
    pub fn open(dir: impl Into<PathBuf>) -> std::io::Result<Spool> {
        let spool = Spool::open_without_cleaning(dir)?;
        for entry in std::fs::read_dir(&spool.dir)? {
            let path = entry?.path();
            if path.is_file() {
                std::fs::remove_file(&path)?;
                tracing::info!(path = %path.display(), "removed an unfinished upload left by an earlier run");
            }
        }
        Ok(spool)
    }

    /// Opens (creating it if needed) the spool directory without touching its content.
    pub fn open_without_cleaning(dir: impl Into<PathBuf>) -> std::io::Result<Spool> {
        let dir: PathBuf = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(Spool { dir: dir.into() })
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts a new spooled file that refuses to grow beyond `limit` bytes.
    pub async fn create(&self, limit: u64) -> Result<SpoolWriter, StorageError> {
        let dir = self.dir.clone();
        let named = tokio::task::spawn_blocking(move || {
            tempfile::Builder::new().prefix("upload-").tempfile_in(dir)
        })
        .await
        .map_err(std::io::Error::other)??;
        let (file, path) = named.into_parts();
        Ok(SpoolWriter {
            file: tokio::fs::File::from_std(file),
            path,
            hasher: Hasher::default(),
            len: 0,
            limit,
        })
    }

    /// Spools an in-memory buffer (used for small blobs such as metadata files).
    pub async fn spool_bytes(&self, data: &[u8]) -> Result<SpooledFile, StorageError> {
        let mut writer = self.create(data.len() as u64).await?;
        writer.write(data).await?;
        writer.finish().await
    }
}

/// A spooled file being written.
pub struct SpoolWriter {
    file: tokio::fs::File,
    path: TempPath,
    hasher: Hasher,
    len: u64,
    limit: u64,
}

impl SpoolWriter {
    /// Appends a chunk. Fails with [`StorageError::TooLarge`] once the limit is passed.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), StorageError> {
        self.len += chunk.len() as u64;
        if self.len > self.limit {
            return Err(StorageError::TooLarge { limit: self.limit });
        }
        self.hasher.update(chunk);
        self.file.write_all(chunk).await?;
        Ok(())
    }

    /// Where the file is on local disk (for reading what was written so far).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Hands what was written to the file, so that another descriptor reads it.
    pub async fn flush(&mut self) -> Result<(), StorageError> {
        Ok(self.file.flush().await?)
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Flushes and fsyncs the file and returns it with its digests.
    pub async fn finish(mut self) -> Result<SpooledFile, StorageError> {
        self.file.flush().await?;
        self.file.sync_all().await?;
        Ok(self.into_spooled())
    }

    /// Flushes the file without waiting for the disk and returns it with its digests: for
    /// bytes that can be fetched again (the upstream cache, [`crate::BlobStore::put_cached`]),
    /// which a crash may leave short and which must be checked before they are served.
    pub async fn finish_unsynced(mut self) -> Result<SpooledFile, StorageError> {
        self.file.flush().await?;
        Ok(self.into_spooled())
    }

    fn into_spooled(self) -> SpooledFile {
        SpooledFile {
            path: self.path,
            len: self.len,
            digests: self.hasher.finish(),
        }
    }
}

/// A complete spooled file (fsynced, unless made by [`SpoolWriter::finish_unsynced`]). It is
/// deleted when dropped unless a store consumed it.
pub struct SpooledFile {
    path: TempPath,
    len: u64,
    digests: Digests,
}

impl SpooledFile {
    /// Where the file is on local disk (for reading it, e.g. to inspect an archive).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its digests.
    pub fn digests(&self) -> &Digests {
        &self.digests
    }

    /// Renames the file to `target`, replacing what is there (same filesystem only).
    pub(crate) fn persist(self, target: &Path) -> Result<(), tempfile::PathPersistError> {
        self.path.persist(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spools_hashes_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path().join("tmp")).unwrap();
        let file = spool.spool_bytes(b"abc").await.unwrap();
        assert_eq!(file.len(), 3);
        assert_eq!(file.digests().sha256, Hasher::digest(b"abc").sha256);
        assert_eq!(std::fs::read(file.path()).unwrap(), b"abc");
        let path = file.path().to_owned();
        drop(file);
        assert!(!path.exists(), "a dropped spool file is deleted");
    }

    #[tokio::test]
    async fn refuses_to_grow_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let mut writer = spool.create(4).await.unwrap();
        writer.write(b"abcd").await.unwrap();
        assert!(matches!(
            writer.write(b"e").await,
            Err(StorageError::TooLarge { limit: 4 })
        ));
    }

    #[tokio::test]
    async fn open_removes_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("upload-left"), b"partial").unwrap();
        Spool::open(dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
