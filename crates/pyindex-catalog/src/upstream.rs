//! The upstream proxy's cache index: the last good page of each proxied project and the
//! cached upstream blobs with their last use, for least-recently-used eviction; the operator's
//! blocks on upstream projects and releases; the log of upstream files fetched. Kept apart from
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

/// A completed upstream fetch, as recorded: the blob now cached and, for a distribution (not a
/// metadata file), its entry in the fetch log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedFile {
    pub blob: CachedBlob,
    pub fetch: Option<UpstreamFetch>,
}

/// An upstream project or release blocked by an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamBlock {
    /// The normalized project name.
    pub project: String,
    /// The blocked release's version in normal form; `None` blocks the whole project.
    pub version: Option<String>,
    /// The canonical version (PEP 440-equal versions share it), the block's key beside the
    /// project; `""` for the whole project.
    pub version_key: String,
    /// Why, shown in every refusal.
    pub reason: String,
    /// When it was blocked (last, if blocked again with a new reason).
    pub created: OffsetDateTime,
    /// Who blocked it (an account name, or `cli`).
    pub created_by: String,
}

/// An upstream distribution fetched: one per project, filename and content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamFetch {
    /// The normalized project name.
    pub project: String,
    /// The version, from the filename, when it parses.
    pub version: Option<String>,
    /// The filename.
    pub filename: String,
    /// The SHA-256 of the bytes fetched (checked against the upstream's).
    pub sha256: String,
    /// The upstream's upload time, when it gives one.
    pub upload_time: Option<OffsetDateTime>,
    /// When it was first fetched.
    pub first_fetched: OffsetDateTime,
    /// When it was last fetched from the upstream (again after an eviction).
    pub last_fetched: OffsetDateTime,
    /// How many times it was downloaded from the upstream (downloads from the cache are not
    /// fetches).
    pub fetches: u64,
    /// When it was last served, from the upstream or the cache (recorded at most once a minute).
    pub last_served: OffsetDateTime,
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

    /// Whether the blob `sha256` is cached; if so, records its use at `at` (also as the last
    /// time the fetch log's files of that content were served).
    async fn use_upstream_blob(
        &self,
        sha256: &str,
        at: OffsetDateTime,
    ) -> Result<bool, CatalogError>;

    /// Whether the blob `sha256` is cached (a read only: no use is recorded).
    async fn has_upstream_blob(&self, sha256: &str) -> Result<bool, CatalogError>;

    /// The recorded size of the cached blob `sha256`, or `None` if it is not cached (a read
    /// only: no use is recorded).
    async fn upstream_blob_size(&self, sha256: &str) -> Result<Option<u64>, CatalogError>;

    /// Records the last use of several cached blobs at once (uses batched in memory by the
    /// proxy), as [`UpstreamIndex::use_upstream_blob`] does for one; unknown blobs are
    /// skipped. One transaction where the engine allows.
    async fn use_upstream_blobs(
        &self,
        uses: &[(String, OffsetDateTime)],
    ) -> Result<(), CatalogError> {
        for (sha256, at) in uses {
            self.use_upstream_blob(sha256, *at).await?;
        }
        Ok(())
    }

    /// Records a newly cached blob.
    async fn add_upstream_blob(&self, blob: &CachedBlob) -> Result<(), CatalogError>;

    /// Records completed upstream fetches: each newly cached blob and, for a distribution, its
    /// entry in the fetch log ([`UpstreamIndex::record_upstream_fetch`]). One transaction for
    /// them all where the engine allows: the proxy records the fetches that complete together
    /// at once (a cold install completes a hundred within a few milliseconds).
    async fn record_upstream_fetched(&self, fetched: &[FetchedFile]) -> Result<(), CatalogError> {
        for file in fetched {
            self.add_upstream_blob(&file.blob).await?;
            if let Some(fetch) = &file.fetch {
                self.record_upstream_fetch(fetch).await?;
            }
        }
        Ok(())
    }

    /// Every cached blob, least recently used first.
    async fn upstream_blobs(&self) -> Result<Vec<CachedBlob>, CatalogError>;

    /// Forgets a cached blob (with [`Change::UpstreamFile`](crate::Change::UpstreamFile) in the
    /// change log, in the same transaction, when it was recorded). Returns whether the blob store
    /// may delete its bytes: `false` when a published file (or its metadata file) has the same
    /// content.
    async fn remove_upstream_blob(&self, sha256: &str) -> Result<bool, CatalogError>;

    /// The total size of the cached blobs.
    async fn upstream_cache_bytes(&self) -> Result<u64, CatalogError>;

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

    /// Blocks an upstream project or release (replacing the reason of an existing block of
    /// the same key), with `audit` and a change of the project in the same transaction.
    /// Returns whether the block is new.
    async fn add_upstream_block(
        &self,
        block: &UpstreamBlock,
        audit: &AuditEntry,
    ) -> Result<bool, CatalogError>;

    /// Lifts the block of `project` with `version_key` (`""`: the whole-project block), with
    /// `audit` and a change of the project in the same transaction. Returns `false`, and
    /// changes nothing, when there is no such block.
    async fn remove_upstream_block(
        &self,
        project: &str,
        version_key: &str,
        audit: &AuditEntry,
    ) -> Result<bool, CatalogError>;

    /// The blocks on `project`, or on every project when `None`; sorted by project, the
    /// whole-project block first, then by version key.
    async fn upstream_blocks(
        &self,
        project: Option<&str>,
    ) -> Result<Vec<UpstreamBlock>, CatalogError>;

    /// Records that an upstream distribution was fetched at `fetch.last_fetched`: a new entry,
    /// or one more fetch of a known one (its first fetch and upload time kept).
    async fn record_upstream_fetch(&self, fetch: &UpstreamFetch) -> Result<(), CatalogError>;

    /// The fetch log of `project`, oldest first fetch first.
    async fn upstream_fetches(&self, project: &str) -> Result<Vec<UpstreamFetch>, CatalogError>;
}
