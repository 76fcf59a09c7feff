//! Durable, content-addressed blob storage for distribution and metadata files.
//!
//! Every blob is addressed by the SHA-256 of its bytes ([`BlobKey`]), so a key always names the
//! same content and two writers racing on one key can only ever write identical bytes. Incoming
//! data is first streamed into a [`Spool`] (a temporary file on local disk, hashed and fsynced as
//! it is written), then published into a [`BlobStore`] with put-if-absent semantics. The local
//! filesystem backend lives in [`local`], the S3-compatible one in [`s3`].

pub mod cache;
mod digest;
mod key;
pub mod local;
pub mod s3;
mod spool;
#[cfg(test)]
mod suite;

pub use cache::CachedBlobStore;
pub use digest::{Digests, Hasher};
pub use key::{BlobKey, InvalidBlobKey};
pub use local::LocalBlobStore;
pub use s3::{S3Config, S3Store};
pub use spool::{Spool, SpoolWriter, SpooledFile};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

/// Errors raised by blob storage.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The underlying storage failed.
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A write would exceed the configured size limit.
    #[error("the file is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The object storage service failed or refused a request.
    #[error("object storage error: {0}")]
    Remote(String),
}

/// A byte range `start..end` (end exclusive) of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte offset.
    pub start: u64,
    /// One past the last byte offset.
    pub end: u64,
}

/// The readable content of a blob, or of a range of it.
pub struct BlobBody {
    /// The number of bytes.
    pub len: u64,
    /// The bytes.
    pub content: BlobContent,
}

/// Blob bytes: in memory when small, else a stream.
pub enum BlobContent {
    /// All of it, in memory.
    Bytes(Bytes),
    /// Chunks read on demand.
    Stream(BoxStream<'static, std::io::Result<Bytes>>),
}

impl BlobBody {
    /// A body held in memory.
    pub fn from_bytes(bytes: Bytes) -> BlobBody {
        BlobBody {
            len: bytes.len() as u64,
            content: BlobContent::Bytes(bytes),
        }
    }
}

/// A blob as listed by [`BlobStore::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    /// Its key.
    pub key: BlobKey,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last stored (a put of an existing key counts as storing it again).
    pub modified: std::time::SystemTime,
}

/// Storage for immutable blobs addressed by their SHA-256.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Makes the spooled file durable under `key`. Writing a key that already exists is a no-op,
    /// since equal keys mean equal bytes; the spooled file is consumed either way.
    async fn put_spooled(&self, key: &BlobKey, file: SpooledFile) -> Result<(), StorageError>;

    /// Stores bytes that can be fetched again (the upstream proxy's cache) under `key`, where
    /// the store may trade durability for speed: a crash may lose the blob or leave it short,
    /// so its reader checks size and hash before serving it. Never weakens a blob stored by
    /// [`BlobStore::put_spooled`] (an existing key is kept as it is). By default the same as
    /// `put_spooled`; the local store skips its fsyncs.
    async fn put_cached(&self, key: &BlobKey, file: SpooledFile) -> Result<(), StorageError> {
        self.put_spooled(key, file).await
    }

    /// The size of the blob, or `None` if it does not exist.
    async fn size(&self, key: &BlobKey) -> Result<Option<u64>, StorageError>;

    /// A cheap probe that the store answers and accepts writes (for readiness checks).
    async fn check(&self) -> Result<(), StorageError>;

    /// Reads the whole blob, or `range` of it, or `None` if it does not exist.
    async fn get(
        &self,
        key: &BlobKey,
        range: Option<ByteRange>,
    ) -> Result<Option<BlobBody>, StorageError>;

    /// A URL from which anyone holding it may `GET` the blob (also by `Range`) directly from the
    /// store for `expires_in`, with no other credentials (an S3 presigned URL); `None` when the
    /// store has no such URL (local disk). Made without a request to the store: it does not
    /// say that the blob exists.
    async fn download_url(
        &self,
        key: &BlobKey,
        expires_in: std::time::Duration,
    ) -> Result<Option<String>, StorageError> {
        let _ = (key, expires_in);
        Ok(None)
    }

    /// Every stored blob, in no particular order, streamed with bounded memory (for integrity
    /// checks and repair; not for serving).
    fn list(&self) -> BoxStream<'static, Result<StoredBlob, StorageError>>;

    /// Deletes the blob. Returns whether it existed. Only repair calls this, for blobs that no
    /// catalog row references: the store itself never knows whether a blob is in use.
    async fn delete(&self, key: &BlobKey) -> Result<bool, StorageError>;

    /// Removes what interrupted writes left in the store itself, if last written at least
    /// `older_than` ago (incomplete multipart uploads and staging objects on S3; nothing on
    /// local disk, where the spool holds unfinished files), and says what it removed. Never
    /// touches a blob.
    async fn remove_leftovers(
        &self,
        older_than: std::time::Duration,
    ) -> Result<Vec<String>, StorageError> {
        let _ = older_than;
        Ok(Vec::new())
    }

    /// What [`BlobStore::remove_leftovers`] would remove now, described, without removing
    /// anything (for `verify` without `--repair`).
    async fn leftovers(
        &self,
        older_than: std::time::Duration,
    ) -> Result<Vec<String>, StorageError> {
        let _ = older_than;
        Ok(Vec::new())
    }
}

/// Collects a body into one buffer (unit tests of the stores).
#[cfg(test)]
pub(crate) async fn read_all_for_tests(body: BlobBody) -> Vec<u8> {
    use futures::TryStreamExt;
    match body.content {
        BlobContent::Bytes(bytes) => bytes.to_vec(),
        BlobContent::Stream(stream) => {
            let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
            chunks.concat()
        }
    }
}
