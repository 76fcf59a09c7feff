//! Upstream simple indexes for the proxy: the HTTP client ([`client`]), PEP 691 JSON and
//! PEP 503 HTML page parsing ([`parse`]) into one typed page model ([`page`]), and the cache
//! ([`Upstream`]): pages stored in parsed form and revalidated after a TTL, served stale while
//! the upstream is down; files fetched on first request, coalesced ([`fetch`]), checked against
//! the upstream's SHA-256, kept in the blob store under a size limit with LRU eviction.
//!
//! Which names are proxied at all is the registry's decision, not this crate's.

mod check;
pub mod client;
pub mod fetch;
mod held;
pub mod page;
pub mod parse;
mod record;

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use lru::LruCache;
use pyindex_catalog::{
    CachedBlob, CatalogError, FetchedFile, StoredPage, UpstreamFetch, UpstreamIndex,
};
use pyindex_storage::{BlobContent, BlobKey, BlobStore, Spool};
use time::OffsetDateTime;

pub use client::{Client, IndexUrl};
pub use fetch::{Coalescer, LocalCoalescer};
pub use page::{UpstreamFile, UpstreamPage};

use check::Checks;
use client::{PageAnswer, Validators};
use fetch::Download;
use held::{HeldPage, HeldPages, PageWrites};
use record::FetchRecords;

/// Errors of the upstream proxy.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// The upstream could not be reached, answered an error, or sent something unusable.
    #[error("upstream unavailable: {0}")]
    Unavailable(String),
    /// The HTTP client could not be set up or a URL was invalid.
    #[error("upstream client error: {0}")]
    Client(String),
    /// The cache index or the blob store failed.
    #[error("upstream cache error: {0}")]
    Cache(String),
}

impl From<CatalogError> for UpstreamError {
    fn from(e: CatalogError) -> UpstreamError {
        UpstreamError::Cache(e.to_string())
    }
}

/// The proxy's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The upstream indexes, in priority order.
    pub indexes: Vec<IndexUrl>,
    /// Connect timeout, whole-page timeout and per-read timeout for files.
    pub timeout: Duration,
    /// How long a fetched page is served before it is revalidated.
    pub ttl: Duration,
    /// The most bytes of upstream files kept in the cache.
    pub cache_size: u64,
    /// The largest upstream file fetched.
    pub max_file_size: u64,
}

/// A proxied project's page as the cache holds it.
#[derive(Debug, Clone)]
pub struct ProxiedPage {
    /// The page.
    pub page: Arc<UpstreamPage>,
    /// The index it came from.
    pub upstream: String,
    /// Whether it is served past its TTL because the upstream could not be asked.
    pub stale: bool,
    /// How much longer it may be served without asking the upstream again.
    pub fresh_for: Duration,
}

/// A file's body from the cache or from the upstream.
pub struct FileBody {
    /// Its length, when known before it is read.
    pub len: Option<u64>,
    /// The bytes: all of them, when they are in memory (sent with the answer's head in one
    /// write); else a stream that ends with an error when the upstream's bytes did not match
    /// its hash.
    pub body: BlobContent,
    /// Whether it came from the cache.
    pub cached: bool,
}

/// An upstream file to fetch.
#[derive(Debug, Clone)]
pub struct FetchTarget {
    /// The normalized name of its project.
    pub project: String,
    /// The version, from the distribution's filename, when it parses.
    pub version: Option<String>,
    /// The upstream's upload time of the distribution, when it gives one.
    pub upload_time: Option<OffsetDateTime>,
    /// The filename served (the distribution's, or its `.metadata`).
    pub filename: String,
    /// Whether it is a distribution's PEP 658 metadata file (not logged as a fetch: it holds
    /// no code).
    pub is_metadata: bool,
    /// Where the upstream serves it.
    pub url: String,
    /// The SHA-256 the upstream lists for it.
    pub sha256: String,
    /// Its size, if listed.
    pub size: Option<u64>,
}

impl FetchTarget {
    /// The distribution `file` of `project` (a normalized name).
    pub fn distribution(project: &str, file: &UpstreamFile) -> FetchTarget {
        FetchTarget {
            project: project.to_owned(),
            version: file.version.clone(),
            upload_time: file.upload_time,
            filename: file.filename.clone(),
            is_metadata: false,
            url: file.url.clone(),
            sha256: file.sha256.clone(),
            size: file.size,
        }
    }

    /// The PEP 658 metadata file of the distribution `file` of `project`, if it has one.
    pub fn metadata(project: &str, file: &UpstreamFile) -> Option<FetchTarget> {
        Some(FetchTarget {
            project: project.to_owned(),
            version: file.version.clone(),
            upload_time: file.upload_time,
            filename: format!("{}{METADATA_SUFFIX}", file.filename),
            is_metadata: true,
            url: file.metadata_url()?,
            sha256: file.core_metadata_sha256.clone()?,
            size: None,
        })
    }
}

/// The file URL suffix of a PEP 658 metadata file.
pub const METADATA_SUFFIX: &str = ".metadata";

/// What the cache holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Stored project pages.
    pub pages: u64,
    /// Cached files.
    pub files: u64,
    /// Their total size.
    pub bytes: u64,
    /// The size limit.
    pub limit: u64,
}

/// The upstream proxy's cache.
pub struct Upstream {
    client: Client,
    settings: Settings,
    index: Arc<dyn UpstreamIndex>,
    blobs: Arc<dyn BlobStore>,
    spool: Spool,
    coalescer: Arc<dyn Coalescer>,
    checks: Checks,
    /// The last use of cached files served since the last flush, written to the cache index
    /// in one transaction every [`USE_FLUSH_INTERVAL`] (and at shutdown), never on the request
    /// path. Bounded by [`PENDING_USES`]: when full, it is flushed at once.
    pending_uses: Mutex<HashMap<String, OffsetDateTime>>,
    /// Names no upstream knew, with when that was learned: answered 404 without asking again
    /// for [`Upstream::not_found_ttl`]. Bounded (least recently asked names forgotten first).
    not_found: Mutex<LruCache<String, Instant>>,
    /// Pages held in memory, parsed.
    held: HeldPages,
    /// Pages waiting to be stored in the cache index.
    page_writes: Arc<PageWrites>,
    /// Completed fetches being recorded in the cache index, together.
    fetch_records: Arc<FetchRecords>,
    /// Projects whose page is being revalidated now: other requests meanwhile get the held page.
    revalidating: Mutex<HashSet<String>>,
    /// The cache's size, as far as this process knows it.
    cache_bytes: Arc<CacheBytes>,
}

/// The total size of the cached files as last read from the cache index, plus what this
/// process cached since. Pruning lists the whole cache index, so it runs only when this passes
/// the limit; the figure is read again after a prune and every [`USE_FLUSH_INTERVAL`] (which
/// counts what other replicas cached).
#[derive(Default)]
struct CacheBytes(Mutex<Option<u64>>);

impl CacheBytes {
    /// The total after `added` more bytes were cached (read from `index` when not known).
    async fn after(&self, added: u64, index: &dyn UpstreamIndex) -> Result<u64, UpstreamError> {
        let known = self.0.lock().ok().and_then(|mut total| {
            total.as_mut().map(|total| {
                *total += added;
                *total
            })
        });
        if let Some(total) = known {
            return Ok(total);
        }
        // The index counts the file just recorded already.
        let total = index.upstream_cache_bytes().await?;
        if let Ok(mut known) = self.0.lock() {
            *known = Some(total);
        }
        Ok(total)
    }

    /// Forgets the figure: the next fetch reads it again.
    fn forget(&self) {
        if let Ok(mut total) = self.0.lock() {
            *total = None;
        }
    }
}

/// How long a name that no upstream knows is answered 404 without asking again, at most (and
/// never longer than `--upstream-ttl`).
pub const NOT_FOUND_TTL: Duration = Duration::from_secs(60);
/// How many unknown names are remembered.
const NOT_FOUND_NAMES: usize = 10_000;

/// How often the uses of cached files (for least-recently-used eviction) are written.
pub const USE_FLUSH_INTERVAL: Duration = Duration::from_secs(30);
/// How many files' uses are held in memory between two flushes, at most.
const PENDING_USES: usize = 10_000;

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn elapsed(since: OffsetDateTime) -> Duration {
    (OffsetDateTime::now_utc() - since)
        .try_into()
        .unwrap_or(Duration::ZERO)
}

impl Upstream {
    /// The proxy over `index` (pages and blob index), `blobs` and `spool`.
    pub fn new(
        settings: Settings,
        index: Arc<dyn UpstreamIndex>,
        blobs: Arc<dyn BlobStore>,
        spool: Spool,
    ) -> Result<Upstream, UpstreamError> {
        Ok(Upstream {
            client: Client::new(settings.indexes.clone(), settings.timeout)?,
            settings,
            checks: Checks::new(index.clone(), blobs.clone()),
            index,
            blobs,
            spool,
            coalescer: Arc::new(LocalCoalescer::default()),
            pending_uses: Mutex::default(),
            not_found: Mutex::new(LruCache::new(
                NonZeroUsize::new(NOT_FOUND_NAMES).unwrap_or(NonZeroUsize::MIN),
            )),
            held: HeldPages::default(),
            page_writes: Arc::default(),
            fetch_records: Arc::default(),
            revalidating: Mutex::default(),
            cache_bytes: Arc::default(),
        })
    }

    /// Starts the proxy's background work until it is dropped: storing fetched pages as they
    /// come, and writing the uses of cached files every [`USE_FLUSH_INTERVAL`] (call
    /// [`Upstream::flush`] at shutdown for the last ones). Without it, pages are stored by the
    /// request that fetched them.
    pub fn spawn_background(self: &Arc<Self>) {
        let upstream = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(USE_FLUSH_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(upstream) = upstream.upgrade() else {
                    return;
                };
                write_uses(upstream.index.as_ref(), &upstream.take_uses()).await;
                upstream.cache_bytes.forget();
            }
        });
        let (upstream, writes) = (Arc::downgrade(self), self.page_writes.clone());
        writes.start_writer();
        tokio::spawn(async move {
            loop {
                // Woken by each queued page; the timeout only notices that the proxy is gone.
                writes.wait(Duration::from_secs(1)).await;
                let Some(upstream) = upstream.upgrade() else {
                    return;
                };
                writes.flush(upstream.index.as_ref()).await;
            }
        });
    }

    /// Writes what is held in memory for the cache index: pages not stored yet, and the uses of
    /// cached files (in one transaction). A failure is logged: pages are fetched again after a
    /// restart, and uses only order eviction.
    pub async fn flush(&self) {
        self.page_writes.flush(self.index.as_ref()).await;
        write_uses(self.index.as_ref(), &self.take_uses()).await;
    }

    fn take_uses(&self) -> Vec<(String, OffsetDateTime)> {
        self.pending_uses
            .lock()
            .map(|mut pending| pending.drain().collect())
            .unwrap_or_default()
    }

    /// Notes that a cached file was served now; flushes in the background when the map is full.
    fn note_use(&self, sha256: &str) {
        let full = self.pending_uses.lock().is_ok_and(|mut pending| {
            pending.insert(sha256.to_owned(), OffsetDateTime::now_utc());
            pending.len() >= PENDING_USES
        });
        if full {
            let uses = self.take_uses();
            let index = self.index.clone();
            tokio::spawn(async move { write_uses(index.as_ref(), &uses).await });
        }
    }

    /// The same proxy with another [`Coalescer`] (a shared one, for replicas).
    pub fn with_coalescer(mut self, coalescer: Arc<dyn Coalescer>) -> Upstream {
        self.coalescer = coalescer;
        self
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn proxied(&self, held: &HeldPage, stale: bool) -> ProxiedPage {
        let fresh_for = if stale {
            // Ask again soon, not at every request.
            self.settings.timeout.min(self.settings.ttl)
        } else {
            self.settings.ttl.saturating_sub(elapsed(held.fetched))
        };
        ProxiedPage {
            page: held.page.clone(),
            upstream: held.upstream.clone(),
            stale,
            fresh_for,
        }
    }

    /// The page of `project` as last fetched (by this process, another one before a restart,
    /// or another replica), whatever its age.
    async fn stored_page(&self, project: &str) -> Result<Option<Arc<HeldPage>>, UpstreamError> {
        if let Some(held) = self.held.get(project) {
            return Ok(Some(held));
        }
        let Some(stored) = self.index.upstream_page(project).await? else {
            return Ok(None);
        };
        let held = Arc::new(HeldPage::parse(&stored)?);
        self.held.put(project, held.clone());
        Ok(Some(held))
    }

    /// The page of `project` (a normalized name) from the first upstream that knows it: the
    /// stored one while fresh, else asked again (conditionally). When an upstream cannot be
    /// asked, the stored page is served, marked stale; with none stored, the error. `None`
    /// when no upstream knows the name.
    pub async fn project_page(&self, project: &str) -> Result<Option<ProxiedPage>, UpstreamError> {
        let stored = self.stored_page(project).await?;
        if let Some(stored) = &stored
            && elapsed(stored.fetched) < self.settings.ttl
        {
            return Ok(Some(self.proxied(stored, false)));
        }
        if stored.is_none() && self.known_unknown(project) {
            return Ok(None);
        }
        let Some(_revalidation) = Revalidation::start(&self.revalidating, project) else {
            // Another request asks the upstream right now: the held page meanwhile.
            if let Some(stored) = &stored {
                return Ok(Some(self.proxied(stored, false)));
            }
            return self.ask_upstreams(project, None).await;
        };
        self.ask_upstreams(project, stored).await
    }

    /// Asks the upstreams for the page of `project` in turn (conditionally for the one that
    /// served `stored`), and holds and stores what they answer.
    async fn ask_upstreams(
        &self,
        project: &str,
        stored: Option<Arc<HeldPage>>,
    ) -> Result<Option<ProxiedPage>, UpstreamError> {
        for upstream in self.client.indexes() {
            let mine = stored.as_ref().filter(|s| s.upstream == upstream.as_str());
            let validators = Validators {
                etag: mine.and_then(|s| s.etag.as_deref()),
                last_modified: mine.and_then(|s| s.last_modified.as_deref()),
            };
            match self.client.page(upstream, project, validators).await {
                Ok(PageAnswer::Page {
                    page,
                    etag,
                    last_modified,
                }) => {
                    return self
                        .store_page(upstream, page, etag, last_modified)
                        .await
                        .map(Some);
                }
                Ok(PageAnswer::NotModified) => {
                    if let Some(mine) = mine {
                        let now = OffsetDateTime::now_utc();
                        let fresh = Arc::new(mine.revalidated(now));
                        self.held.put(project, fresh.clone());
                        self.page_writes
                            .touch(self.index.as_ref(), project, now)
                            .await;
                        return Ok(Some(self.proxied(&fresh, false)));
                    }
                }
                Ok(PageAnswer::NotFound) => continue,
                Err(error) => {
                    let Some(stored) = &stored else {
                        return Err(error);
                    };
                    tracing::warn!(%project, %error, "upstream unavailable: serving the last good page");
                    return Ok(Some(self.proxied(stored, true)));
                }
            }
        }
        if let Ok(mut not_found) = self.not_found.lock() {
            not_found.put(project.to_owned(), Instant::now());
        }
        Ok(None)
    }

    /// How long a name no upstream knows is answered 404 without asking again.
    pub fn not_found_ttl(&self) -> Duration {
        NOT_FOUND_TTL.min(self.settings.ttl)
    }

    /// Whether no upstream knew `project` when last asked, less than
    /// [`Upstream::not_found_ttl`] ago.
    fn known_unknown(&self, project: &str) -> bool {
        let ttl = self.not_found_ttl();
        self.not_found
            .lock()
            .is_ok_and(|mut names| names.get(project).is_some_and(|at| at.elapsed() < ttl))
    }

    async fn store_page(
        &self,
        upstream: &IndexUrl,
        page: UpstreamPage,
        etag: Option<String>,
        last_modified: Option<String>,
    ) -> Result<ProxiedPage, UpstreamError> {
        let stored = StoredPage {
            project: page.name.clone(),
            upstream: upstream.as_str().to_owned(),
            page: serde_json::to_string(&page).map_err(|e| UpstreamError::Cache(e.to_string()))?,
            etag,
            last_modified,
            fetched: OffsetDateTime::now_utc(),
        };
        let held = Arc::new(HeldPage::fetched(page, &stored));
        self.held.put(&stored.project, held.clone());
        self.page_writes.put(self.index.as_ref(), stored).await;
        Ok(self.proxied(&held, false))
    }

    /// Forgets that the file `sha256` is cached: this process or another one evicted it
    /// ([`pyindex_catalog::Change::UpstreamFile`]). Until a process learns it, a file evicted by
    /// another one may still be served from the blob store's memory (its bytes are right) or,
    /// when its blob is gone, is fetched again.
    pub fn forget_cached_file(&self, sha256: &str) {
        self.checks.forget(sha256);
    }

    /// Forgets which files are cached (after a change this process may have missed).
    pub fn forget_cached_files(&self) {
        self.checks.forget_all();
    }

    /// The bytes of an upstream file: from the cache, or fetched (one download however many
    /// ask at once), streamed while it is cached and checked.
    pub async fn open_file(&self, target: &FetchTarget) -> Result<FileBody, UpstreamError> {
        let key =
            BlobKey::parse(&target.sha256).map_err(|e| UpstreamError::Cache(e.to_string()))?;
        if let Some(cached) = self.cached(&key).await? {
            return Ok(cached);
        }
        let download = match self.coalescer.running(&target.sha256) {
            Some(download) => download,
            None => self.start(target).await?,
        };
        Ok(FileBody {
            len: target.size,
            body: BlobContent::Stream(download.body()),
            cached: false,
        })
    }

    /// The cached file, if the cache index records it (or this process knows it does, see
    /// [`Upstream::forget_cached_files`]) and its blob passes the checks of [`check`]; its use
    /// is noted. `None` when it must be fetched.
    async fn cached(&self, key: &BlobKey) -> Result<Option<FileBody>, UpstreamError> {
        let sha256 = key.to_string();
        let epoch = self.checks.epoch();
        let known = self.checks.verified_size(&sha256);
        let size = match known {
            Some(size) => size,
            None => match self.index.upstream_blob_size(&sha256).await? {
                Some(size) => size,
                None => return Ok(None),
            },
        };
        let blob = self
            .blobs
            .get(key, None)
            .await
            .map_err(|e| UpstreamError::Cache(e.to_string()))?;
        let blob = match blob {
            Some(blob) if blob.len == size => blob,
            Some(_) => {
                self.checks
                    .drop_cached(&sha256, "its size is not the recorded one")
                    .await;
                return Ok(None);
            }
            None => {
                self.checks
                    .drop_cached(&sha256, "its bytes are missing")
                    .await;
                return Ok(None);
            }
        };
        let verified = known.is_some();
        let body = match blob.content {
            BlobContent::Bytes(bytes) if verified || Checks::matches(&bytes, &sha256) => {
                self.checks.mark_verified(&sha256, size, epoch);
                BlobContent::Bytes(bytes)
            }
            BlobContent::Bytes(_) => {
                self.checks
                    .drop_cached(&sha256, "its bytes do not match its SHA-256")
                    .await;
                return Ok(None);
            }
            BlobContent::Stream(stream) if verified => BlobContent::Stream(stream),
            BlobContent::Stream(stream) => {
                BlobContent::Stream(self.checks.verifying(stream, sha256.clone()))
            }
        };
        self.note_use(&sha256);
        Ok(Some(FileBody {
            len: Some(blob.len),
            body,
            cached: true,
        }))
    }

    /// Starts the download of `target` (or joins one another caller started first).
    async fn start(&self, target: &FetchTarget) -> Result<Arc<Download>, UpstreamError> {
        let (download, sink) = Download::start(&self.spool, self.settings.max_file_size)
            .await
            .map_err(|e| UpstreamError::Cache(e.to_string()))?;
        if !self.coalescer.register(&target.sha256, download.clone()) {
            return self
                .coalescer
                .running(&target.sha256)
                .ok_or_else(|| UpstreamError::Cache("a concurrent download vanished".into()));
        }
        let response = match self.client.file(&target.url).await {
            Ok(response) => response,
            Err(error) => {
                sink.fail(error.to_string());
                self.coalescer.finished(&target.sha256);
                return Err(error);
            }
        };
        let job = FetchJob {
            target: target.clone(),
            checks: self.checks.clone(),
            index: self.index.clone(),
            records: self.fetch_records.clone(),
            blobs: self.blobs.clone(),
            coalescer: self.coalescer.clone(),
            cache_size: self.settings.cache_size,
            cache_bytes: self.cache_bytes.clone(),
        };
        tokio::spawn(job.run(response, sink));
        Ok(download)
    }

    /// What the cache holds.
    pub async fn stats(&self) -> Result<CacheStats, UpstreamError> {
        stats(self.index.as_ref(), self.settings.cache_size).await
    }
}

/// What the cache in `index` holds, against `limit`.
pub async fn stats(index: &dyn UpstreamIndex, limit: u64) -> Result<CacheStats, UpstreamError> {
    let blobs = index.upstream_blobs().await?;
    Ok(CacheStats {
        pages: index.upstream_page_count().await?,
        files: blobs.len() as u64,
        bytes: blobs.iter().map(|b| b.size).sum(),
        limit,
    })
}

/// Evicts least recently used files until the cache fits `limit`; the files removed. A blob
/// that a published file shares is forgotten by the cache but kept in the store.
pub async fn prune(
    index: &dyn UpstreamIndex,
    blobs: &dyn BlobStore,
    limit: u64,
) -> Result<Vec<CachedBlob>, UpstreamError> {
    let cached = index.upstream_blobs().await?;
    let mut total: u64 = cached.iter().map(|b| b.size).sum();
    let mut removed = Vec::new();
    for blob in cached {
        if total <= limit {
            break;
        }
        if index.remove_upstream_blob(&blob.sha256).await?
            && let Ok(key) = BlobKey::parse(&blob.sha256)
        {
            blobs
                .delete(&key)
                .await
                .map_err(|e| UpstreamError::Cache(e.to_string()))?;
        }
        total = total.saturating_sub(blob.size);
        removed.push(blob);
    }
    Ok(removed)
}

/// The revalidation of one project's page, in progress: at most one per project at a time.
struct Revalidation<'a> {
    running: &'a Mutex<HashSet<String>>,
    project: String,
}

impl<'a> Revalidation<'a> {
    /// The revalidation of `project`, unless one is in progress (`None`).
    fn start(running: &'a Mutex<HashSet<String>>, project: &str) -> Option<Revalidation<'a>> {
        let mut projects = running.lock().ok()?;
        projects.insert(project.to_owned()).then(|| Revalidation {
            running,
            project: project.to_owned(),
        })
    }
}

impl Drop for Revalidation<'_> {
    fn drop(&mut self) {
        if let Ok(mut projects) = self.running.lock() {
            projects.remove(&self.project);
        }
    }
}

/// A download running in its own task.
struct FetchJob {
    target: FetchTarget,
    checks: Checks,
    index: Arc<dyn UpstreamIndex>,
    records: Arc<FetchRecords>,
    blobs: Arc<dyn BlobStore>,
    coalescer: Arc<dyn Coalescer>,
    cache_size: u64,
    cache_bytes: Arc<CacheBytes>,
}

impl FetchJob {
    async fn run(self, response: reqwest::Response, mut sink: fetch::Sink) {
        let mut stream = response.bytes_stream();
        let mut failure = None;
        while let Some(chunk) = stream.next().await {
            let written = match chunk {
                Ok(chunk) => sink.write(&chunk).await,
                Err(e) => Err(format!(
                    "the upstream download of {} broke off: {e}",
                    self.target.filename
                )),
            };
            if let Err(e) = written {
                failure = Some(e);
                break;
            }
        }
        let outcome = match failure {
            Some(error) => {
                sink.fail(error.clone());
                Err(error)
            }
            None => sink.finish(&self.target.sha256, self.blobs.as_ref()).await,
        };
        match outcome {
            Ok(size) => self.fetched(size).await,
            Err(error) => {
                tracing::warn!(file = %self.target.filename, %error, "upstream file not cached");
            }
        }
        self.coalescer.finished(&self.target.sha256);
    }

    /// An upstream file was fetched, verified and stored: the one place where a completed
    /// fetch is recorded (the cache index, and the fetch log for distributions, in one
    /// transaction with the fetches that completed beside it), then the cache is brought back
    /// under its size limit.
    async fn fetched(&self, size: u64) {
        let epoch = self.checks.epoch();
        let now = OffsetDateTime::now_utc();
        let file = FetchedFile {
            blob: CachedBlob {
                sha256: self.target.sha256.clone(),
                size,
                last_used: now,
            },
            fetch: (!self.target.is_metadata).then(|| self.log_entry(now)),
        };
        if let Err(error) = self.records.record(self.index.as_ref(), file).await {
            tracing::warn!(file = %self.target.filename, %error, "could not record a cached upstream file");
            return;
        }
        // Hashed while it was fetched.
        self.checks.mark_verified(&self.target.sha256, size, epoch);
        tracing::info!(
            project = %self.target.project,
            file = %self.target.filename,
            size,
            sha256 = %self.target.sha256,
            "upstream file fetched and cached"
        );
        self.keep_under_limit(size).await;
    }

    /// Evicts least recently used files when the cache, with the `added` bytes just cached,
    /// is over its size limit.
    async fn keep_under_limit(&self, added: u64) {
        match self.cache_bytes.after(added, self.index.as_ref()).await {
            Ok(total) if total <= self.cache_size => return,
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "could not read the upstream cache's size");
                return;
            }
        }
        match prune(self.index.as_ref(), self.blobs.as_ref(), self.cache_size).await {
            Ok(removed) => {
                for blob in &removed {
                    self.checks.forget(&blob.sha256);
                }
                tracing::info!(
                    files = removed.len(),
                    "upstream cache over its size limit: least recently used files evicted"
                );
            }
            Err(error) => tracing::warn!(%error, "could not prune the upstream cache"),
        }
        self.cache_bytes.forget();
    }

    /// The fetch log's entry for this fetch of a distribution.
    fn log_entry(&self, at: OffsetDateTime) -> UpstreamFetch {
        let t = &self.target;
        UpstreamFetch {
            project: t.project.clone(),
            version: t.version.clone(),
            filename: t.filename.clone(),
            sha256: t.sha256.clone(),
            upload_time: t.upload_time,
            first_fetched: at,
            last_fetched: at,
            fetches: 1,
            last_served: at,
        }
    }
}

/// Writes `uses` of cached files (see [`Upstream::flush_uses`]).
async fn write_uses(index: &dyn UpstreamIndex, uses: &[(String, OffsetDateTime)]) {
    if uses.is_empty() {
        return;
    }
    if let Err(error) = index.use_upstream_blobs(uses).await {
        tracing::warn!(files = uses.len(), %error, "could not record the last use of cached upstream files");
    }
}
