//! The upstream proxy's cache index: the last good page of each proxied project and the
//! cached upstream blobs with their last use, for least-recently-used eviction. Kept apart from
//! published files. Behind a trait so that replicas can later share one index.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::{AuditEntry, CatalogError};

/// A stored upstream page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPage {
    /// The normalized project name.
    pub project: String,
    /// The index URL it came from (without credentials).
    pub upstream: String,
    /// The parsed page, as JSON.
    pub page: String,
    /// The upstream's ETag, for a conditional request.
    pub etag: Option<String>,
    /// The upstream's Last-Modified, for a conditional request.
    pub last_modified: Option<String>,
    /// When it was last fetched or revalidated.
    pub fetched: OffsetDateTime,
}

/// A cached upstream blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedBlob {
    /// Its SHA-256, its key in the blob store.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last served.
    pub last_used: OffsetDateTime,
}

/// The upstream cache index.
#[async_trait]
pub trait UpstreamIndex: Send + Sync {
    /// The stored page of `project`, if any.
    async fn upstream_page(&self, project: &str) -> Result<Option<StoredPage>, CatalogError>;

    /// Stores (or replaces) a page.
    async fn put_upstream_page(&self, page: &StoredPage) -> Result<(), CatalogError>;

    /// Records that the stored page of `project` was revalidated at `at`.
    async fn touch_upstream_page(
        &self,
        project: &str,
        at: OffsetDateTime,
    ) -> Result<(), CatalogError>;

    /// Whether the blob `sha256` is cached; if so, records its use at `at`.
    async fn use_upstream_blob(
        &self,
        sha256: &str,
        at: OffsetDateTime,
    ) -> Result<bool, CatalogError>;

    /// Whether the blob `sha256` is cached (a read only: no use is recorded).
    async fn has_upstream_blob(&self, sha256: &str) -> Result<bool, CatalogError>;

    /// Records a newly cached blob.
    async fn add_upstream_blob(&self, blob: &CachedBlob) -> Result<(), CatalogError>;

    /// Every cached blob, least recently used first.
    async fn upstream_blobs(&self) -> Result<Vec<CachedBlob>, CatalogError>;

    /// Forgets a cached blob. Returns whether the blob store may delete its bytes: `false` when
    /// a published file (or its metadata file) has the same content.
    async fn remove_upstream_blob(&self, sha256: &str) -> Result<bool, CatalogError>;

    /// The number of stored pages.
    async fn upstream_page_count(&self) -> Result<u64, CatalogError>;

    /// Creates the project `name` (normalized) with no files, so that it is private before
    /// its first upload, with `audit` in the same transaction. Returns `false`, and changes
    /// nothing, if the project exists.
    async fn reserve_project(
        &self,
        name: &str,
        display_name: &str,
        audit: &AuditEntry,
    ) -> Result<bool, CatalogError>;
}
