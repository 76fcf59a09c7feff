//! The data directory: the one place pyindex keeps state.
//!
//! ```text
//! <data>/catalog.sqlite3   the catalog (SQLite, WAL mode: also -wal and -shm files)
//! <data>/files/sha256/ab/cd/<sha256>   every distribution and metadata file, by content hash
//! <data>/tmp/              uploads in progress (emptied when the server starts)
//! <data>/server.lock       held by the serving process: one server per data directory
//! <data>/admin-password    the first admin's generated password (0600), until deleted
//! ```

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use pyindex_catalog::SqliteCatalog;
use pyindex_packaging::archive::ArchiveLimits;
use pyindex_registry::Registry;
use pyindex_storage::{BlobStore, CachedBlobStore, LocalBlobStore, Spool};

/// Who is opening the data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opener {
    /// The server: it owns the spool and removes what a crash left there, and keeps up to
    /// `file_cache` bytes of small files in memory.
    Server {
        /// Memory for cached files, in bytes (0: no cache).
        file_cache: u64,
    },
    /// A CLI command that may run beside a server.
    Command,
}

/// Files up to this size are cached in memory by the server.
const CACHED_FILE_MAX: u64 = 1 << 20;

/// The catalog's file name inside the data directory.
const CATALOG_FILE: &str = "catalog.sqlite3";

/// Refuses a data directory that holds no catalog, without creating anything: a command run
/// from the wrong working directory must not answer from a new, empty index as if it were the
/// server's. `example` is the command line after `pyindex`, shown with `--data` in the message.
pub fn require_catalog(dir: &Path, example: &str) -> anyhow::Result<()> {
    if has_catalog(dir) {
        return Ok(());
    }
    anyhow::bail!("{}", missing_catalog(dir, example))
}

/// Whether `dir` holds a catalog, i.e. is a data directory already in use.
pub fn has_catalog(dir: &Path) -> bool {
    dir.join(CATALOG_FILE).is_file()
}

/// `dir` as an absolute path, for messages (a relative one depends on where the command ran).
pub fn shown(dir: &Path) -> PathBuf {
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// The message for a data directory without a catalog.
fn missing_catalog(dir: &Path, example: &str) -> String {
    format!(
        "No pyindex catalog in '{}' (the data directory). Point --data (or PYINDEX_DATA) at the \
         directory your server uses, e.g. `pyindex --data /srv/pyindex {example}`.",
        shown(dir).display()
    )
}

/// Takes the data directory's server lock, held until the returned file is dropped. One server
/// per data directory: a server empties the upload spool when it starts, which would destroy
/// another server's uploads in progress.
pub fn lock_for_server(dir: &Path) -> anyhow::Result<std::fs::File> {
    try_lock_idle(dir)?.ok_or_else(|| {
        anyhow::anyhow!(
            "another pyindex server is already serving {}: run one server per data directory",
            dir.display()
        )
    })
}

/// Takes the server lock if no server holds it (`None` if one does). Besides the server, a
/// command that must not run beside one takes it for a moment (removing every spool file).
pub fn try_lock_idle(dir: &Path) -> anyhow::Result<Option<std::fs::File>> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("could not create the data directory {}", dir.display()))?;
    let path = dir.join("server.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("could not open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("could not lock {}", path.display()))
        }
    }
}

/// The upload spool directory.
pub fn spool_dir(dir: &Path) -> PathBuf {
    dir.join("tmp")
}

/// The SQLite catalog and the file store of an existing data directory, for commands that work
/// below the registry on this engine (backup).
pub async fn open_sqlite(dir: &Path) -> anyhow::Result<(SqliteCatalog, Arc<dyn BlobStore>)> {
    let catalog_path = dir.join(CATALOG_FILE);
    let catalog = SqliteCatalog::open(&catalog_path)
        .await
        .with_context(|| format!("could not open the catalog {}", catalog_path.display()))?;
    let blobs = LocalBlobStore::open(dir.join("files"))
        .with_context(|| format!("could not open the file store in {}", dir.display()))?;
    Ok((catalog, Arc::new(blobs)))
}

/// Opens (creating it if needed) the data directory and the registry over it. Commands that
/// must not start a new index call [`require_catalog`] first.
pub async fn open(dir: &Path, opener: Opener) -> anyhow::Result<Registry> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("could not create the data directory {}", dir.display()))?;
    let catalog_path = dir.join(CATALOG_FILE);
    // The catalog holds password and token hashes: readable by the server's user only. SQLite
    // gives new -wal and -shm files the database file's mode, so create it 0600 first, and
    // tighten files left by older versions.
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&catalog_path)
        .with_context(|| format!("could not create the catalog {}", catalog_path.display()))?;
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", catalog_path.display()));
        match std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("could not restrict the permissions of {}", path.display())
                });
            }
        }
    }
    let catalog = SqliteCatalog::open(&catalog_path)
        .await
        .with_context(|| format!("could not open the catalog {}", catalog_path.display()))?;
    let local: Arc<dyn BlobStore> = Arc::new(
        LocalBlobStore::open(dir.join("files"))
            .with_context(|| format!("could not open the file store in {}", dir.display()))?,
    );
    let spool_dir: PathBuf = spool_dir(dir);
    let (spool, blobs) = match opener {
        Opener::Server { file_cache } => {
            let blobs: Arc<dyn BlobStore> = if file_cache > 0 {
                Arc::new(CachedBlobStore::new(
                    local,
                    CACHED_FILE_MAX.min(file_cache),
                    file_cache,
                ))
            } else {
                local
            };
            (Spool::open(&spool_dir), blobs)
        }
        Opener::Command => (Spool::open_without_cleaning(&spool_dir), local),
    };
    let spool = spool
        .with_context(|| format!("could not open the upload spool {}", spool_dir.display()))?;
    Ok(Registry::new(
        Arc::new(catalog),
        blobs,
        spool,
        ArchiveLimits::default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_without_catalog_is_refused_and_not_created() {
        let dir = std::env::temp_dir().join(format!("pyindex-no-catalog-{}", std::process::id()));
        let err = require_catalog(&dir, "yank shared 0.1.1")
            .unwrap_err()
            .to_string();
        assert!(!dir.exists());
        assert!(err.starts_with("No pyindex catalog in '/"), "{err}");
        assert!(
            err.contains(&format!("{}' (the data directory)", dir.display())),
            "{err}"
        );
        assert!(err.contains("--data (or PYINDEX_DATA)"), "{err}");
        assert!(
            err.contains("`pyindex --data /srv/pyindex yank shared 0.1.1`"),
            "{err}"
        );
    }

    #[test]
    fn a_relative_directory_is_shown_absolute() {
        let message = missing_catalog(Path::new("pyindex-data"), "audit");
        let cwd = std::env::current_dir().unwrap();
        assert!(message.contains(&format!("'{}'", cwd.join("pyindex-data").display())));
    }
}
