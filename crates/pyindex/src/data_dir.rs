//! The data directory: the one place pyindex keeps state.
//!
//! ```text
//! <data>/catalog.sqlite3   the catalog (SQLite, WAL mode: also -wal and -shm files)
//! <data>/files/sha256/ab/cd/<sha256>   every distribution and metadata file, by content hash
//!                          (unless --storage puts them elsewhere: another directory or a bucket)
//! <data>/tmp/              uploads in progress (emptied when the server starts)
//! <data>/server.lock       held by the serving process: one server per data directory
//! <data>/admin-password    the first admin's generated password (0600), until deleted
//! ```

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use pyindex_catalog::{PgCatalog, SqliteCatalog, Transfer, UpstreamIndex};
use pyindex_packaging::archive::ArchiveLimits;
use pyindex_registry::Registry;
use pyindex_storage::{BlobStore, CachedBlobStore, LocalBlobStore, S3Config, S3Store, Spool};

/// Where the catalog lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite database file; `None`: `catalog.sqlite3` inside the data directory.
    Sqlite(Option<PathBuf>),
    /// A PostgreSQL database, by URL.
    Postgres(String),
}

impl Database {
    /// Parses `sqlite://PATH` or `postgres://...` (also `postgresql://...`).
    pub fn parse(text: &str) -> Result<Database, String> {
        if let Some(path) = text.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(
                    "sqlite:// needs a path, e.g. sqlite:///srv/pyindex/catalog.sqlite3".into(),
                );
            }
            return Ok(Database::Sqlite(Some(PathBuf::from(path))));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Database::Postgres(text.to_owned()));
        }
        Err(format!(
            "unknown database '{}': use sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE",
            text.split("://").next().unwrap_or(text)
        ))
    }

    /// The engine's name, for messages (never the URL: it may hold a password).
    pub fn engine(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "SQLite",
            Database::Postgres(_) => "PostgreSQL",
        }
    }
}

/// Where files are stored, as given with `--storage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    /// A local directory.
    File(PathBuf),
    /// An S3-compatible bucket and a key prefix in it (may be empty).
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix, without leading or trailing `/`.
        prefix: String,
    },
}

impl StorageUrl {
    /// Parses `file://PATH` or `s3://BUCKET/PREFIX` (the prefix is optional).
    pub fn parse(text: &str) -> Result<StorageUrl, String> {
        if let Some(path) = text.strip_prefix("file://") {
            if path.is_empty() {
                return Err("file:// needs a path, e.g. file:///srv/pyindex/files".into());
            }
            return Ok(StorageUrl::File(PathBuf::from(path)));
        }
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let valid_bucket = (3..=63).contains(&bucket.len())
                && bucket.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                });
            if !valid_bucket {
                return Err(format!(
                    "'{bucket}' is not an S3 bucket name (3 to 63 lower-case letters, digits,                      '-' and '.'): use s3://BUCKET/PREFIX"
                ));
            }
            let prefix = prefix.trim_matches('/');
            if prefix.split('/').any(|part| matches!(part, "." | "..")) || prefix.contains("//") {
                return Err(format!("'{prefix}' is not a usable key prefix"));
            }
            return Ok(StorageUrl::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
            });
        }
        Err(format!(
            "unknown storage '{}': use file://PATH or s3://BUCKET/PREFIX",
            text.split("://").next().unwrap_or(text)
        ))
    }
}

/// Where files are stored, with everything needed to reach them.
#[derive(Debug, Clone)]
pub enum Storage {
    /// A local directory (by default the data directory's `files/`).
    Files(PathBuf),
    /// An S3-compatible bucket.
    S3(S3Config),
}

impl Storage {
    /// Where the files are, for messages (never a credential).
    pub fn shown(&self) -> String {
        match self {
            Storage::Files(dir) => shown(dir).display().to_string(),
            Storage::S3(config) => format!("s3://{}/{}", config.bucket, config.prefix),
        }
    }
}

/// The data directory, the catalog database and the file storage a command works on.
#[derive(Debug, Clone)]
pub struct Place {
    /// The data directory (spool, locks; files and the SQLite catalog by default).
    pub data: PathBuf,
    /// The catalog database.
    pub database: Database,
    /// Most connections to a PostgreSQL catalog.
    pub pool_size: u32,
    /// How long a query waits for a PostgreSQL connection before failing (then a request gets
    /// `503`).
    pub acquire_timeout: std::time::Duration,
    /// Where distribution and metadata files are stored.
    pub storage: Storage,
}

/// The default file store inside the data directory `data`.
pub fn default_files(data: &Path) -> PathBuf {
    data.join("files")
}

/// Default size of a PostgreSQL connection pool.
pub const DEFAULT_POOL_SIZE: u32 = 10;

impl Place {
    /// The SQLite catalog file, if the catalog is on SQLite.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        match &self.database {
            Database::Sqlite(Some(path)) => Some(path.clone()),
            Database::Sqlite(None) => Some(self.data.join(CATALOG_FILE)),
            Database::Postgres(_) => None,
        }
    }

    /// Refuses a command that works on the SQLite catalog file only (`what`, e.g. "backup"),
    /// saying what to use instead.
    pub fn require_sqlite(&self, what: &str) -> anyhow::Result<PathBuf> {
        self.sqlite_path().ok_or_else(|| {
            anyhow::anyhow!(
                "`pyindex {what}` works on a SQLite catalog, and this index's catalog is on \
                 PostgreSQL (--database / PYINDEX_DATABASE): back up the database with pg_dump \
                 (or your provider's backups) and the data directory's files/ with any file \
                 copy; restore with pg_restore and the files"
            )
        })
    }

    /// The local file store's directory; refuses a command (`what`) that works on local files
    /// only when the files are in a bucket.
    pub fn require_local_files(&self, what: &str) -> anyhow::Result<PathBuf> {
        match &self.storage {
            Storage::Files(dir) => Ok(dir.clone()),
            Storage::S3(_) => anyhow::bail!(
                "`pyindex {what}` works on local files, and this index's files are in an S3 \
                 bucket (--storage / PYINDEX_STORAGE): back the bucket up with the storage's own \
                 tools (versioning, replication, or a copy of the bucket) beside the catalog"
            ),
        }
    }
}

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
pub fn require_catalog(place: &Place, example: &str) -> anyhow::Result<()> {
    if has_catalog(place) {
        return Ok(());
    }
    anyhow::bail!("{}", missing_catalog(&place.data, example))
}

/// Whether the place holds a catalog, i.e. is an index already in use. A PostgreSQL catalog
/// is taken to exist: connecting to it says clearly if it does not.
pub fn has_catalog(place: &Place) -> bool {
    match place.sqlite_path() {
        Some(path) => path.is_file(),
        None => true,
    }
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
pub async fn open_sqlite(
    place: &Place,
    what: &str,
) -> anyhow::Result<(SqliteCatalog, Arc<dyn BlobStore>)> {
    let catalog_path = place.require_sqlite(what)?;
    let files = place.require_local_files(what)?;
    let catalog = SqliteCatalog::open(&catalog_path)
        .await
        .with_context(|| format!("could not open the catalog {}", catalog_path.display()))?;
    let blobs = LocalBlobStore::open(&files)
        .with_context(|| format!("could not open the file store {}", files.display()))?;
    Ok((catalog, Arc::new(blobs)))
}

/// The upstream proxy's cache index (in the configured catalog) and the file store of an
/// existing data directory, for the `cache` commands.
pub async fn open_upstream_index(
    place: &Place,
) -> anyhow::Result<(Box<dyn UpstreamIndex>, Arc<dyn BlobStore>)> {
    let blobs = open_storage(&place.storage).await?;
    let index: Box<dyn UpstreamIndex> = match (&place.database, place.sqlite_path()) {
        (Database::Postgres(url), _) => Box::new(open_postgres(url, place).await?),
        (Database::Sqlite(_), Some(path)) => Box::new(open_sqlite_file(&path).await?),
        (Database::Sqlite(_), None) => unreachable!("a SQLite catalog has a path"),
    };
    Ok((index, blobs))
}

/// Opens the configured file storage.
pub async fn open_storage(storage: &Storage) -> anyhow::Result<Arc<dyn BlobStore>> {
    Ok(match storage {
        Storage::Files(dir) => Arc::new(
            LocalBlobStore::open(dir)
                .with_context(|| format!("could not open the file store {}", dir.display()))?,
        ),
        Storage::S3(config) => Arc::new(S3Store::connect(config).await.with_context(|| {
            format!(
                "could not open the file storage {} (--storage / PYINDEX_STORAGE): check that \
                 the bucket exists and that --s3-endpoint, --s3-region, --s3-path-style and \
                 the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) are right",
                storage.shown()
            )
        })?),
    })
}

/// A catalog opened on its own, below the registry (for `migrate`).
pub enum OpenCatalog {
    /// On SQLite.
    Sqlite(SqliteCatalog),
    /// On PostgreSQL.
    Postgres(PgCatalog),
}

impl OpenCatalog {
    /// Opens (creating and migrating it if needed) the catalog `database`, given with
    /// `option` (for messages); a SQLite one without a path is `catalog.sqlite3` in `data`.
    pub async fn open(
        database: &Database,
        option: &str,
        data: &Path,
        pool_size: u32,
    ) -> anyhow::Result<Self> {
        Ok(match database {
            Database::Postgres(url) => OpenCatalog::Postgres(
                PgCatalog::connect(url, pool_size).await.with_context(|| {
                    format!(
                        "could not open the PostgreSQL catalog ({option}): check that the \
                         server is reachable and the URL's user, password and database"
                    )
                })?,
            ),
            Database::Sqlite(path) => {
                let path = path.clone().unwrap_or_else(|| data.join(CATALOG_FILE));
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).with_context(|| {
                        format!("could not create the directory {}", parent.display())
                    })?;
                }
                OpenCatalog::Sqlite(open_sqlite_file(&path).await?)
            }
        })
    }

    /// Its export and import.
    pub fn transfer(&self) -> &dyn Transfer {
        match self {
            OpenCatalog::Sqlite(catalog) => catalog,
            OpenCatalog::Postgres(catalog) => catalog,
        }
    }

    /// Closes its connections.
    pub async fn close(&self) {
        match self {
            OpenCatalog::Sqlite(catalog) => catalog.close().await,
            OpenCatalog::Postgres(catalog) => catalog.close().await,
        }
    }
}

/// Connects to the PostgreSQL catalog at `url`.
async fn open_postgres(url: &str, place: &Place) -> anyhow::Result<PgCatalog> {
    PgCatalog::connect_waiting(url, place.pool_size, place.acquire_timeout)
        .await
        .context(
            "could not open the PostgreSQL catalog (--database / PYINDEX_DATABASE): check that the \
         server is reachable and the URL's user, password and database",
        )
}

/// Opens (creating it if needed) the data directory and the registry over it. Commands that
/// must not start a new index call [`require_catalog`] first.
pub async fn open(place: &Place, opener: Opener) -> anyhow::Result<Registry> {
    let dir = place.data.as_path();
    std::fs::create_dir_all(dir)
        .with_context(|| format!("could not create the data directory {}", dir.display()))?;
    let (spool, blobs) = open_files(place, opener).await?;
    let limits = ArchiveLimits::default();
    Ok(match (&place.database, place.sqlite_path()) {
        (Database::Postgres(url), _) => {
            let catalog = open_postgres(url, place).await?;
            Registry::new(Arc::new(catalog), blobs, spool, limits)
        }
        (Database::Sqlite(_), Some(path)) => Registry::new(
            Arc::new(open_sqlite_file(&path).await?),
            blobs,
            spool,
            limits,
        ),
        (Database::Sqlite(_), None) => unreachable!("a SQLite catalog has a path"),
    })
}

/// Opens (creating it 0600 if needed) the SQLite catalog at `catalog_path`.
async fn open_sqlite_file(catalog_path: &Path) -> anyhow::Result<SqliteCatalog> {
    // The catalog holds password and token hashes: readable by the server's user only. SQLite
    // gives new -wal and -shm files the database file's mode, so create it 0600 first, and
    // tighten files left by older versions.
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(catalog_path)
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
    SqliteCatalog::open(catalog_path)
        .await
        .with_context(|| format!("could not open the catalog {}", catalog_path.display()))
}

/// The file store and the upload spool of `place`.
async fn open_files(place: &Place, opener: Opener) -> anyhow::Result<(Spool, Arc<dyn BlobStore>)> {
    let store = open_storage(&place.storage).await?;
    let spool_dir: PathBuf = spool_dir(&place.data);
    let (spool, blobs) = match opener {
        Opener::Server { file_cache } => {
            let blobs: Arc<dyn BlobStore> = if file_cache > 0 {
                Arc::new(CachedBlobStore::new(
                    store,
                    CACHED_FILE_MAX.min(file_cache),
                    file_cache,
                ))
            } else {
                store
            };
            (Spool::open(&spool_dir), blobs)
        }
        Opener::Command => (Spool::open_without_cleaning(&spool_dir), store),
    };
    let spool = spool
        .with_context(|| format!("could not open the upload spool {}", spool_dir.display()))?;
    Ok((spool, blobs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_without_catalog_is_refused_and_not_created() {
        let dir = std::env::temp_dir().join(format!("pyindex-no-catalog-{}", std::process::id()));
        let place = Place {
            data: dir.clone(),
            database: Database::Sqlite(None),
            pool_size: DEFAULT_POOL_SIZE,
            acquire_timeout: pyindex_catalog::DEFAULT_ACQUIRE_TIMEOUT,
            storage: Storage::Files(default_files(&dir)),
        };
        let err = require_catalog(&place, "yank shared 0.1.1")
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
