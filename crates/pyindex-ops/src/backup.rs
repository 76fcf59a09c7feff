//! Backup and restore of a data directory, while the server runs.
//!
//! A backup is a directory:
//!
//! ```text
//! DEST/catalog.sqlite3                  a consistent snapshot of the catalog (VACUUM INTO)
//! DEST/files/sha256/ab/cd/<sha256>      every blob that snapshot references
//! DEST/backup.json                      the manifest, written last: a backup without it is
//!                                       incomplete and restore refuses it
//! ```
//!
//! The snapshot is taken first; the blobs copied are the ones *it* references, and they are
//! immutable and already durable when their rows commit, so every upload acknowledged before the
//! backup began is in it, and one acknowledged later is simply not. Every copy is hashed on its
//! way and published under its final name only once complete and fsynced, so nothing in a
//! backup is ever half-written.
//!
//! Blobs are copied rather than hard-linked, even on one filesystem: a link shares the bytes,
//! so a damaged disk block would damage the "backup" too.

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use pyindex_catalog::{Catalog, CatalogError, SqliteCatalog};
use pyindex_storage::{BlobKey, BlobStore, LocalBlobStore, Spool, StorageError};
use serde::{Deserialize, Serialize};

use crate::verify::{BlobRef, Problem, blob_refs};

/// The catalog snapshot's name in a backup (and the catalog's in a data directory).
pub const CATALOG_FILE: &str = "catalog.sqlite3";
/// The manifest's name in a backup.
pub const MANIFEST_FILE: &str = "backup.json";
/// The blob directory's name in a backup (and in a data directory).
pub const FILES_DIR: &str = "files";
/// The manifest format this version writes and reads.
const FORMAT: u32 = 1;

/// Errors of backup and restore, each saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The target directory holds something already.
    #[error(
        "'{0}' is not empty: back up or restore only into a new or empty directory (remove it or choose another)"
    )]
    NotEmpty(PathBuf),
    /// The source of a restore is no complete backup.
    #[error(
        "'{0}' is not a complete pyindex backup (no readable {MANIFEST_FILE}): {1}. Restore from a directory written by `pyindex backup`; one without its manifest was interrupted"
    )]
    NotABackup(PathBuf, String),
    /// Some blobs could not be copied whole (each was reported as a [`Problem`]).
    #[error("{count} file(s) could not be copied intact (listed above); {advice}")]
    Damaged {
        /// How many.
        count: usize,
        /// What to do.
        advice: &'static str,
    },
    /// The catalog failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The blob store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A file or directory could not be written or read.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A copying task failed.
    #[error("a copying task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

fn io_error(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BackupError {
    let path = path.to_owned();
    move |source| BackupError::Io { what, path, source }
}

/// What a backup holds: `DEST/backup.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The manifest format (1).
    pub format: u32,
    /// When the catalog snapshot was taken (RFC 3339, UTC).
    pub created: String,
    /// The pyindex version that wrote it.
    pub pyindex_version: String,
    /// Files in the catalog.
    pub files: usize,
    /// Blobs copied (contents and metadata files).
    pub blobs: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// What copying blobs achieved.
#[derive(Debug, Default)]
struct Copied {
    blobs: usize,
    bytes: u64,
    problems: usize,
}

/// Makes `dir` if missing; refuses it if it holds anything.
pub fn ensure_empty_dir(dir: &Path) -> Result<(), BackupError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(BackupError::NotEmpty(dir.to_owned()));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(io_error("could not create", dir))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            Err(BackupError::NotEmpty(dir.to_owned()))
        }
        Err(e) => Err(io_error("could not read", dir)(e)),
    }
}

fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("could not sync", dir))
}

/// Creates an empty file readable by its owner only (the catalog holds password hashes).
fn create_private(path: &Path) -> Result<std::fs::File, BackupError> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error("could not create", path))
}

/// Fsyncs `tmp`, renames it to `dest` and fsyncs the directory: `dest` appears complete or not
/// at all.
fn publish_file(tmp: &Path, dest: &Path) -> Result<(), BackupError> {
    std::fs::File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(io_error("could not sync", tmp))?;
    std::fs::rename(tmp, dest).map_err(io_error("could not rename to", dest))?;
    sync_dir(dest.parent().unwrap_or(Path::new(".")))
}

/// Copies one blob through `spool` into `to`, hashing it on the way.
pub(crate) async fn copy_blob(
    from: &dyn BlobStore,
    to: &dyn BlobStore,
    spool: &Spool,
    blob: &BlobRef,
) -> Result<u64, Problem> {
    let unreadable = |error: String| Problem::Unreadable {
        name: blob.name.clone(),
        error,
    };
    let key = BlobKey::parse(&blob.sha256).map_err(|e| unreadable(e.to_string()))?;
    let Some(body) = from
        .get(&key, None)
        .await
        .map_err(|e| unreadable(e.to_string()))?
    else {
        return Err(Problem::Missing {
            name: blob.name.clone(),
            sha256: key.to_string(),
        });
    };
    let write = async {
        let mut writer = spool.create(body.len).await?;
        match body.content {
            pyindex_storage::BlobContent::Bytes(bytes) => writer.write(&bytes).await?,
            pyindex_storage::BlobContent::Stream(mut stream) => {
                while let Some(chunk) = stream.try_next().await? {
                    writer.write(&chunk).await?;
                }
            }
        }
        writer.finish().await
    };
    let spooled = write.await.map_err(|e| unreadable(e.to_string()))?;
    if spooled.digests().sha256 != key.as_str() {
        return Err(Problem::Corrupt {
            name: blob.name.clone(),
            expected: key.to_string(),
            found: spooled.digests().sha256.clone(),
        });
    }
    let len = spooled.len();
    to.put_spooled(&key, spooled)
        .await
        .map_err(|e| unreadable(e.to_string()))?;
    Ok(len)
}

/// Copies every blob `files` reference (each once), two at a time, reporting each problem.
async fn copy_blobs(
    files: &[pyindex_catalog::StoredFile],
    from: Arc<dyn BlobStore>,
    to: Arc<dyn BlobStore>,
    spool: Spool,
    report: &mut impl FnMut(&Problem),
) -> Result<Copied, BackupError> {
    let mut seen = BTreeSet::new();
    let refs: Vec<BlobRef> = blob_refs(files)
        .into_iter()
        .filter(|blob| seen.insert(blob.sha256.to_ascii_lowercase()))
        .collect();
    let mut results = futures::stream::iter(refs.into_iter().map(|blob| {
        let (from, to, spool) = (from.clone(), to.clone(), spool.clone());
        tokio::spawn(async move { copy_blob(&*from, &*to, &spool, &blob).await })
    }))
    .buffer_unordered(2);
    let mut copied = Copied::default();
    while let Some(result) = results.next().await {
        match result? {
            Ok(len) => {
                copied.blobs += 1;
                copied.bytes += len;
            }
            Err(problem) => {
                copied.problems += 1;
                report(&problem);
            }
        }
    }
    Ok(copied)
}

/// Every file the catalog at `path` lists, read without changing it.
async fn files_of_snapshot(path: &Path) -> Result<Vec<pyindex_catalog::StoredFile>, BackupError> {
    let snapshot = SqliteCatalog::open_read_only(path).await?;
    let files = snapshot.stored_files().await;
    snapshot.close().await;
    Ok(files?)
}

/// Writes the manifest last, atomically.
fn write_manifest(dest: &Path, manifest: &Manifest) -> Result<(), BackupError> {
    let tmp = dest.join(format!("{MANIFEST_FILE}.tmp"));
    let mut json = serde_json::to_vec_pretty(manifest).map_err(|e| BackupError::Io {
        what: "could not encode the manifest for",
        path: dest.to_owned(),
        source: e.into(),
    })?;
    json.push(b'\n');
    create_private(&tmp)?
        .write_all(&json)
        .map_err(io_error("could not write", &tmp))?;
    publish_file(&tmp, &dest.join(MANIFEST_FILE))
}

/// Reads and checks a backup's manifest.
pub fn read_manifest(src: &Path) -> Result<Manifest, BackupError> {
    let not_a_backup = |why: String| BackupError::NotABackup(src.to_owned(), why);
    let text = std::fs::read(src.join(MANIFEST_FILE)).map_err(|e| not_a_backup(e.to_string()))?;
    let manifest: Manifest =
        serde_json::from_slice(&text).map_err(|e| not_a_backup(e.to_string()))?;
    if manifest.format != FORMAT {
        return Err(not_a_backup(format!(
            "manifest format {} (this pyindex reads format {FORMAT})",
            manifest.format
        )));
    }
    Ok(manifest)
}

/// Removes a spool directory used for copying (empty by now).
fn remove_spool(dir: &Path) -> Result<(), BackupError> {
    std::fs::remove_dir_all(dir).map_err(io_error("could not remove", dir))
}

/// Backs up the live catalog and `blobs` into `dest` (new or empty), reporting each file that
/// could not be copied intact. Runs beside a serving process.
pub async fn backup(
    live: &SqliteCatalog,
    blobs: Arc<dyn BlobStore>,
    dest: &Path,
    mut report: impl FnMut(&Problem),
) -> Result<Manifest, BackupError> {
    ensure_empty_dir(dest)?;
    let created = time::OffsetDateTime::now_utc();
    let catalog_tmp = dest.join(format!("{CATALOG_FILE}.tmp"));
    drop(create_private(&catalog_tmp)?);
    live.snapshot_to(&catalog_tmp).await?;
    let catalog = dest.join(CATALOG_FILE);
    publish_file(&catalog_tmp, &catalog)?;
    let files = files_of_snapshot(&catalog).await?;
    let spool_dir = dest.join("tmp");
    let spool = Spool::open(&spool_dir).map_err(io_error("could not create", &spool_dir))?;
    let store = LocalBlobStore::open(dest.join(FILES_DIR))
        .map_err(io_error("could not create", &dest.join(FILES_DIR)))?;
    let copied = copy_blobs(&files, blobs, Arc::new(store), spool, &mut report).await?;
    remove_spool(&spool_dir)?;
    if copied.problems > 0 {
        return Err(BackupError::Damaged {
            count: copied.problems,
            advice: "the backup is incomplete (it has no manifest). Run `pyindex verify` on the data directory and repair or remove those files first",
        });
    }
    let manifest = Manifest {
        format: FORMAT,
        created: created
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        pyindex_version: env!("CARGO_PKG_VERSION").to_owned(),
        files: files.len(),
        blobs: copied.blobs,
        bytes: copied.bytes,
    };
    write_manifest(dest, &manifest)?;
    Ok(manifest)
}

/// Restores the backup in `src` into the data directory `target` (new or empty): blobs first,
/// each hashed, then the catalog, so a restore cut short leaves no catalog a server would serve.
pub async fn restore(
    src: &Path,
    target: &Path,
    mut report: impl FnMut(&Problem),
) -> Result<Manifest, BackupError> {
    let manifest = read_manifest(src)?;
    ensure_empty_dir(target)?;
    let files = files_of_snapshot(&src.join(CATALOG_FILE)).await?;
    if files.len() != manifest.files {
        return Err(BackupError::NotABackup(
            src.to_owned(),
            format!(
                "its catalog lists {} files, its manifest {}",
                files.len(),
                manifest.files
            ),
        ));
    }
    let from = LocalBlobStore::open(src.join(FILES_DIR))
        .map_err(io_error("could not open", &src.join(FILES_DIR)))?;
    let spool_dir = target.join("tmp");
    let spool = Spool::open(&spool_dir).map_err(io_error("could not create", &spool_dir))?;
    let to = LocalBlobStore::open(target.join(FILES_DIR))
        .map_err(io_error("could not create", &target.join(FILES_DIR)))?;
    let copied = copy_blobs(&files, Arc::new(from), Arc::new(to), spool, &mut report).await?;
    remove_spool(&spool_dir)?;
    if copied.problems > 0 {
        return Err(BackupError::Damaged {
            count: copied.problems,
            advice: "the backup is damaged and nothing was restored as a catalog. Restore an older backup (empty the target first)",
        });
    }
    let tmp = target.join(format!("{CATALOG_FILE}.tmp"));
    let mut out = create_private(&tmp)?;
    let from_catalog = src.join(CATALOG_FILE);
    let mut input =
        std::fs::File::open(&from_catalog).map_err(io_error("could not open", &from_catalog))?;
    std::io::copy(&mut input, &mut out).map_err(io_error("could not copy", &from_catalog))?;
    drop(out);
    publish_file(&tmp, &target.join(CATALOG_FILE))?;
    Ok(manifest)
}

#[cfg(test)]
mod tests;
