//! Moving a registry to another catalog and blob store, e.g. from SQLite and a local directory
//! to PostgreSQL and an S3 bucket, or back (`pyindex migrate`).
//!
//! 1. The source catalog is exported ([`Transfer::export`]: one read transaction).
//! 2. The target catalog is read: empty, it will receive the copy; holding this very registry
//!    (an earlier run got that far), the copy is only checked; holding anything else, the move
//!    is refused before anything is written.
//! 3. Every blob the export references (files and their metadata files) is copied by
//!    streaming through the spool, hashed on the way, then read back from the target and hashed
//!    again; a blob the target holds already with the right SHA-256 is not copied again. This
//!    is what makes a rerun resume an interrupted move.
//! 4. The source is exported again: if anything changed meanwhile, something writes to it and
//!    the move stops before the catalog is copied (rerun once writes have stopped).
//! 5. The catalog is imported in one transaction ([`Transfer::import`]), after every blob it
//!    references is in place, so a target catalog never lists a file its store lacks.
//! 6. The target catalog is exported and compared with the source's export.
//!
//! The upstream proxy's cache (pages and cached files) is not copied: it fills again on demand.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::StreamExt;
use pyindex_catalog::{CatalogError, Dump, Transfer};
use pyindex_storage::{BlobKey, BlobStore, Spool, StorageError};

use crate::backup::copy_blob;
use crate::verify::{BlobRef, Problem, blob_refs, hash_blob};

/// Blobs copied at once.
const PARALLELISM: usize = 2;

/// Why a move stopped. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The target catalog holds another registry (or part of one).
    #[error(
        "the target database already holds a different registry (its {} differ from the \
         source's): migrate only into an empty database (create a new one, or empty this one if \
         it holds nothing you need). A target holding exactly this registry, from an earlier \
         run, is accepted and only checked",
        .0.join(", ")
    )]
    TargetHoldsOther(Vec<&'static str>),
    /// The source changed while blobs were being copied.
    #[error(
        "the source changed while it was being copied (its {} differ from the start of the \
         run): something writes to it. Stop every server using it (or migrate a copy: `pyindex \
         backup`, then `pyindex restore` it into a new directory and migrate that), then run the \
         same command again: it goes on where it stopped. Nothing was written to the target \
         catalog",
        .0.join(", ")
    )]
    SourceChanged(Vec<&'static str>),
    /// Some blobs could not be copied intact (each was reported as a [`Problem`]).
    #[error(
        "{0} file(s) could not be copied intact (listed above), so the catalog was not copied: \
         check the source with `pyindex verify` and repair or restore those files; a corrupt \
         object in the target storage must be deleted there. Then run the same command again"
    )]
    Damaged(usize),
    /// The copy read back from the target is not the source's.
    #[error(
        "the target's catalog, read back after the copy, differs from the source's in its {}: \
         do not serve it. Empty the target database and run again; if it happens again, \
         report it as a bug",
        .0.join(", ")
    )]
    Mismatch(Vec<&'static str>),
    /// A catalog failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A blob store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A copying task failed.
    #[error("a copying task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A catalog and its blob store.
pub struct Side<'a> {
    /// The catalog.
    pub catalog: &'a dyn Transfer,
    /// Its blobs.
    pub blobs: Arc<dyn BlobStore>,
}

/// What a move did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The records copied, by kind (see [`Dump::counts`]).
    pub counts: [(&'static str, usize); 9],
    /// Whether the catalog was copied now (`false`: an earlier run had copied it).
    pub catalog_copied: bool,
    /// Blobs copied now, and their bytes.
    pub copied: (usize, u64),
    /// Blobs the target held already with the right SHA-256, and their bytes.
    pub present: (usize, u64),
}

/// What happened to one blob.
enum Moved {
    Copied(u64),
    Present(u64),
}

/// What a move tells as it goes.
pub trait Progress {
    /// A blob that could not be copied intact (the move fails at the end of the copy).
    fn problem(&mut self, problem: &Problem);
    /// `done` of `total` blobs are in the target (copied or found there), every
    /// [`PROGRESS_EVERY`] blobs.
    fn blobs(&mut self, done: usize, total: usize) {
        let _ = (done, total);
    }
}

/// How often [`Progress::blobs`] is told.
pub const PROGRESS_EVERY: usize = 100;

/// Moves the registry of `source` into `target` (see the module documentation), spooling
/// blobs in `spool`, and tells `report` of each blob that cannot be copied intact and of the
/// progress.
pub async fn migrate(
    source: Side<'_>,
    target: Side<'_>,
    spool: Spool,
    mut report: impl Progress,
) -> Result<Report, MigrateError> {
    let dump = source.catalog.export().await?;
    let existing = target.catalog.export().await?;
    let copy_catalog = existing.is_empty();
    if !copy_catalog && existing != dump {
        return Err(MigrateError::TargetHoldsOther(dump.differences(&existing)));
    }
    drop(existing);
    let blobs = unique_blobs(&dump)?;
    let mut outcome = Report {
        counts: dump.counts(),
        catalog_copied: false,
        copied: (0, 0),
        present: (0, 0),
    };
    let problems = copy_blobs(blobs, &source, &target, spool, &mut outcome, &mut report).await?;
    if problems > 0 {
        return Err(MigrateError::Damaged(problems));
    }
    let now = source.catalog.export().await?;
    if now != dump {
        return Err(MigrateError::SourceChanged(dump.differences(&now)));
    }
    drop(now);
    if copy_catalog {
        if !target.catalog.import(&dump).await? {
            let existing = target.catalog.export().await?;
            return Err(MigrateError::TargetHoldsOther(dump.differences(&existing)));
        }
        outcome.catalog_copied = true;
    }
    let copy = target.catalog.export().await?;
    if copy != dump {
        return Err(MigrateError::Mismatch(dump.differences(&copy)));
    }
    Ok(outcome)
}

/// Every blob the dump's files reference, each once.
fn unique_blobs(dump: &Dump) -> Result<Vec<BlobRef>, CatalogError> {
    let mut seen = BTreeSet::new();
    Ok(blob_refs(&dump.stored_files()?)
        .into_iter()
        .filter(|blob| seen.insert(blob.sha256.to_ascii_lowercase()))
        .collect())
}

/// Copies `blobs`, [`PARALLELISM`] at a time, adding to `outcome`; returns how many failed.
async fn copy_blobs(
    blobs: Vec<BlobRef>,
    source: &Side<'_>,
    target: &Side<'_>,
    spool: Spool,
    outcome: &mut Report,
    report: &mut impl Progress,
) -> Result<usize, MigrateError> {
    let total = blobs.len();
    let mut results = futures::stream::iter(blobs.into_iter().map(|blob| {
        let (from, to, spool) = (source.blobs.clone(), target.blobs.clone(), spool.clone());
        tokio::spawn(async move { move_blob(&*from, &*to, &spool, &blob).await })
    }))
    .buffer_unordered(PARALLELISM);
    let mut problems = 0;
    let mut done = 0;
    while let Some(result) = results.next().await {
        done += 1;
        if done % PROGRESS_EVERY == 0 {
            report.blobs(done, total);
        }
        match result? {
            Ok(Moved::Copied(len)) => {
                outcome.copied.0 += 1;
                outcome.copied.1 += len;
            }
            Ok(Moved::Present(len)) => {
                outcome.present.0 += 1;
                outcome.present.1 += len;
            }
            Err(problem) => {
                problems += 1;
                report.problem(&problem);
            }
        }
    }
    Ok(problems)
}

/// Copies one blob unless the target holds it already, then checks the target's bytes.
async fn move_blob(
    from: &dyn BlobStore,
    to: &dyn BlobStore,
    spool: &Spool,
    blob: &BlobRef,
) -> Result<Moved, Problem> {
    let key = BlobKey::parse(&blob.sha256).map_err(|e| Problem::Unreadable {
        name: blob.name.clone(),
        error: format!("the catalog's digest: {e}"),
    })?;
    if let Some(len) = in_target(to, &key, blob).await? {
        return Ok(Moved::Present(len));
    }
    copy_blob(from, to, spool, blob).await?;
    match in_target(to, &key, blob).await? {
        Some(len) => Ok(Moved::Copied(len)),
        None => Err(Problem::Missing {
            name: format!("{} (in the target storage, after copying it)", blob.name),
            sha256: key.to_string(),
        }),
    }
}

/// The length of the target's blob `key` if it holds it with the right SHA-256; `None` if it
/// does not hold it; a problem if it holds other bytes under that key.
async fn in_target(
    to: &dyn BlobStore,
    key: &BlobKey,
    blob: &BlobRef,
) -> Result<Option<u64>, Problem> {
    let target_name = || format!("{} (in the target storage)", blob.name);
    match hash_blob(to, key).await {
        Ok(Some((found, len))) if found == key.as_str() => Ok(Some(len)),
        Ok(Some((found, _))) => Err(Problem::Corrupt {
            name: target_name(),
            expected: key.to_string(),
            found,
        }),
        Ok(None) => Ok(None),
        Err(e) => Err(Problem::Unreadable {
            name: target_name(),
            error: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests;
