//! Integrity: re-hash every blob the catalog references, and (repair) remove what nothing
//! references.
//!
//! A blob is stored before the catalog row that references it is committed, so a crash in
//! between leaves an orphan, and a blob stored a moment ago may not be referenced *yet*: repair
//! removes only orphans older than a grace period. Referenced blobs are never removed.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::{StreamExt, TryStreamExt};
use pyindex_catalog::{Catalog, CatalogError, StoredFile, UpstreamIndex};
use pyindex_storage::{BlobContent, BlobKey, BlobStore, StorageError, StoredBlob};
use sha2::{Digest, Sha256};

/// Errors that stop a check (a bad blob does not: it is a [`Problem`]).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The catalog could not be read.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The blob store could not be listed or changed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The spool directory could not be read or cleaned.
    #[error("could not clean the upload spool {path}: {source}")]
    Spool {
        /// The spool directory.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A checking task failed.
    #[error("a checking task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// One blob the catalog references: a file's content or its metadata file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    /// The filename for reports (`<filename>.metadata` for a metadata file).
    pub name: String,
    /// The SHA-256 the catalog records.
    pub sha256: String,
}

/// What is wrong with one referenced blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The store has no blob under the recorded SHA-256.
    Missing {
        /// The file it belongs to.
        name: String,
        /// The recorded SHA-256.
        sha256: String,
    },
    /// The blob's bytes hash to something else.
    Corrupt {
        /// The file it belongs to.
        name: String,
        /// The recorded SHA-256.
        expected: String,
        /// The SHA-256 of the stored bytes.
        found: String,
    },
    /// The blob could not be read (or the catalog's digest is malformed).
    Unreadable {
        /// The file it belongs to.
        name: String,
        /// Why.
        error: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing { name, sha256 } => write!(f, "missing: {name} (sha256 {sha256})"),
            Problem::Corrupt {
                name,
                expected,
                found,
            } => write!(
                f,
                "corrupt: {name} (expected sha256 {expected}, found {found})"
            ),
            Problem::Unreadable { name, error } => write!(f, "unreadable: {name} ({error})"),
        }
    }
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Files in the catalog.
    pub files: usize,
    /// Blobs checked (contents and metadata files).
    pub blobs: usize,
    /// Bytes hashed.
    pub bytes: u64,
    /// Problems found.
    pub problems: usize,
}

/// Every blob `files` reference, each with the name to report it by, in catalog order.
pub fn blob_refs(files: &[StoredFile]) -> Vec<BlobRef> {
    let mut refs = Vec::with_capacity(files.len() * 2);
    for file in files {
        refs.push(BlobRef {
            name: file.filename.clone(),
            sha256: file.sha256.clone(),
        });
        if let Some(metadata) = &file.metadata_sha256 {
            refs.push(BlobRef {
                name: format!("{}.metadata", file.filename),
                sha256: metadata.clone(),
            });
        }
    }
    refs
}

/// The SHA-256 and length of a stored blob, streamed (bounded memory), or `None` if missing.
pub async fn hash_blob(
    blobs: &dyn BlobStore,
    key: &BlobKey,
) -> Result<Option<(String, u64)>, StorageError> {
    let Some(body) = blobs.get(key, None).await? else {
        return Ok(None);
    };
    let mut hasher = Sha256::new();
    let mut len = 0u64;
    match body.content {
        BlobContent::Bytes(bytes) => {
            hasher.update(&bytes);
            len = bytes.len() as u64;
        }
        BlobContent::Stream(mut stream) => {
            while let Some(chunk) = stream.try_next().await? {
                hasher.update(&chunk);
                len += chunk.len() as u64;
            }
        }
    }
    Ok(Some((hex::encode(hasher.finalize()), len)))
}

/// Checks one blob: `Ok(bytes hashed)` or the problem.
async fn check(blobs: &dyn BlobStore, blob: &BlobRef) -> Result<u64, Problem> {
    let key = BlobKey::parse(&blob.sha256).map_err(|e| Problem::Unreadable {
        name: blob.name.clone(),
        error: format!("the catalog's digest: {e}"),
    })?;
    match hash_blob(blobs, &key).await {
        Ok(Some((found, len))) if found == key.as_str() => Ok(len),
        Ok(Some((found, _))) => Err(Problem::Corrupt {
            name: blob.name.clone(),
            expected: key.to_string(),
            found,
        }),
        Ok(None) => Err(Problem::Missing {
            name: blob.name.clone(),
            sha256: key.to_string(),
        }),
        Err(e) => Err(Problem::Unreadable {
            name: blob.name.clone(),
            error: e.to_string(),
        }),
    }
}

/// Re-hashes every blob the catalog references, `parallelism` at a time, and hands each
/// problem to `report` as it is found.
pub async fn verify(
    catalog: &dyn Catalog,
    blobs: Arc<dyn BlobStore>,
    parallelism: usize,
    mut report: impl FnMut(&Problem),
) -> Result<Summary, VerifyError> {
    let files = catalog.stored_files().await?;
    let refs = blob_refs(&files);
    let mut summary = Summary {
        files: files.len(),
        blobs: refs.len(),
        ..Summary::default()
    };
    drop(files);
    let mut results = futures::stream::iter(refs.into_iter().map(|blob| {
        let blobs = blobs.clone();
        // A task each, so that hashing runs on several cores.
        tokio::spawn(async move { check(&*blobs, &blob).await })
    }))
    .buffer_unordered(parallelism.max(1));
    while let Some(result) = results.next().await {
        match result? {
            Ok(bytes) => summary.bytes += bytes,
            Err(problem) => {
                summary.problems += 1;
                report(&problem);
            }
        }
    }
    Ok(summary)
}

/// Whether something last written at `modified` is at least `grace` old at `now` (a time in
/// the future, from a clock step, counts as new).
pub fn is_older_than(modified: SystemTime, now: SystemTime, grace: Duration) -> bool {
    now.duration_since(modified).is_ok_and(|age| age >= grace)
}

/// What [`remove_orphans`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    /// Blobs removed.
    pub blobs: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// The keys of every blob the catalog references now: published files, and cached upstream
/// files (which the proxy's cache index owns and evicts).
async fn referenced(
    catalog: &dyn Catalog,
    cached: &dyn UpstreamIndex,
) -> Result<HashSet<String>, CatalogError> {
    let files = catalog.stored_files().await?;
    let mut keys: HashSet<String> = blob_refs(&files)
        .into_iter()
        .map(|blob| blob.sha256.to_ascii_lowercase())
        .collect();
    keys.extend(
        cached
            .upstream_blobs()
            .await?
            .into_iter()
            .map(|blob| blob.sha256.to_ascii_lowercase()),
    );
    Ok(keys)
}

/// Deletes blobs that no catalog row references (neither a published file nor the upstream
/// cache index, `cached`) and that were stored at least `grace` ago,
/// handing each to `report` once removed. The catalog is read before the store is listed and
/// again before anything is deleted, so a blob an upload commits meanwhile is kept; a blob
/// being stored right now is younger than `grace`.
pub async fn remove_orphans(
    catalog: &dyn Catalog,
    cached: &dyn UpstreamIndex,
    blobs: &dyn BlobStore,
    grace: Duration,
    mut report: impl FnMut(&StoredBlob),
) -> Result<Removed, VerifyError> {
    let candidates = unreferenced(catalog, cached, blobs, grace).await?;
    let after = referenced(catalog, cached).await?;
    let mut removed = Removed::default();
    for (key, blob) in candidates {
        if after.contains(key.as_str()) {
            continue;
        }
        if blobs.delete(&key).await? {
            removed.blobs += 1;
            removed.bytes += blob.size;
            report(&blob);
        }
    }
    Ok(removed)
}

/// The blobs that no catalog row references (neither a published file nor the upstream cache
/// index, `cached`) and that were stored at least `grace` ago, by key: what
/// [`remove_orphans`] would remove, unless an upload records one meanwhile.
pub async fn unreferenced(
    catalog: &dyn Catalog,
    cached: &dyn UpstreamIndex,
    blobs: &dyn BlobStore,
    grace: Duration,
) -> Result<BTreeMap<BlobKey, StoredBlob>, VerifyError> {
    let referenced = referenced(catalog, cached).await?;
    let now = SystemTime::now();
    let mut found = BTreeMap::new();
    let mut listed = blobs.list();
    while let Some(blob) = listed.try_next().await? {
        if !referenced.contains(blob.key.as_str()) && is_older_than(blob.modified, now, grace) {
            found.insert(blob.key.clone(), blob);
        }
    }
    Ok(found)
}

/// Deletes files in the spool directory last written at least `older_than` ago (uploads a
/// crashed or killed server left behind) and returns their paths.
pub async fn remove_stale_spool_files(
    dir: &Path,
    older_than: Duration,
) -> Result<Vec<PathBuf>, VerifyError> {
    let dir = dir.to_owned();
    let spool_error = |dir: &Path| {
        let path = dir.to_owned();
        move |source| VerifyError::Spool { path, source }
    };
    tokio::task::spawn_blocking(move || {
        stale_spool_files(&dir, older_than).map_err(spool_error(&dir))
    })
    .await?
}

fn stale_spool_files(dir: &Path, older_than: Duration) -> std::io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let now = SystemTime::now();
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry?;
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            // Finished (published or dropped) since the directory was read.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if meta.is_file() && is_older_than(meta.modified()?, now, older_than) {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed.push(entry.path()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
pub(crate) mod tests;
