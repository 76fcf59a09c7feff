//! The catalog: projects, releases and files, with their yank state.
//!
//! The catalog is the source of truth for what the index lists. It stores no file content (that
//! is the blob store's job), only facts about files, and it enforces the one rule that needs a
//! transaction: a filename is published at most once, with one content.
//!
//! [`Catalog`] (files) and [`Accounts`] (users, tokens, roles, audit log) are the interfaces the
//! registry uses; [`SqliteCatalog`] implements both and is the embedded default,
//! [`PgCatalog`] implements them on PostgreSQL for several replicas sharing one database.

mod accounts;
mod browse;
mod model;
mod postgres;
mod sqlite;
#[cfg(any(test, feature = "test-suite"))]
pub mod suite;
mod transfer;
mod upstream;
mod upstream_log;

pub use accounts::{Accounts, AuditEntry, NewToken, Role, TokenRecord, User};
pub use browse::{
    Browse, Counts, MissingDetails, NewSession, ReleaseDetails, ReleaseRecord, ReleaseSummary,
    SearchHit, SearchPage, SearchQuery, SessionRecord, StoredReadme,
};
pub use model::{
    AddOutcome, Change, Changes, FileRecord, NewFile, ProjectFiles, ProjectStatus, ProjectSummary,
    ReleaseMetadata, StoredFile, Uploader, Yank,
};
pub use postgres::{DEFAULT_ACQUIRE_TIMEOUT, PgCatalog};
pub use sqlite::SqliteCatalog;
pub use transfer::{
    AuditRow, BlockRow, Dump, FetchRow, FileRow, ProjectRow, ReleaseRow, RoleRow, TokenRow,
    Transfer, UserRow,
};
pub use upstream::{
    CachedBlob, FetchedFile, StoredPage, UpstreamBlock, UpstreamFetch, UpstreamIndex,
};

use async_trait::async_trait;
use pyindex_packaging::DistKey;

/// Errors raised by the catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The database failed or refused a query.
    #[error("catalog database error: {0}")]
    Database(sqlx::Error),
    /// The database cannot be reached now (connection refused or lost, no pooled connection
    /// within the acquire timeout, the server shutting down): the same request may succeed
    /// once it is back.
    #[error("the catalog database is unreachable: {0}")]
    Unavailable(sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("catalog migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be decoded.
    #[error("corrupt catalog row: {0}")]
    Corrupt(String),
    /// The database was migrated by a newer pyindex.
    #[error(
        "the catalog database has schema version {found}, newer than this pyindex knows \
         (up to {known}): a newer pyindex has migrated it; upgrade this pyindex to that version \
         (every replica must run a version that knows the database's schema)"
    )]
    SchemaTooNew {
        /// The version found in the database.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
}

impl From<sqlx::Error> for CatalogError {
    fn from(e: sqlx::Error) -> CatalogError {
        if is_unreachable(&e) {
            CatalogError::Unavailable(e)
        } else {
            CatalogError::Database(e)
        }
    }
}

/// Whether `e` says the database cannot be reached now, rather than that it refused the query:
/// no connection could be had (refused, timed out, TLS failed, the pool closed) or the server
/// dropped or is refusing connections (SQLSTATE class 08 "connection exception", 57P01-57P03
/// "shutting down / cannot connect now", 53300 "too many connections").
fn is_unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

/// The catalog operations the registry needs.
#[async_trait]
pub trait Catalog: Send + Sync {
    /// Records a published file (creating its project and release as needed) and its audit
    /// record in one transaction, unless the same distribution (`dist_key`) or filename exists
    /// already, in which case nothing changes and the outcome says whether the existing file has
    /// the same content.
    async fn add_file(
        &self,
        file: &NewFile,
        audit: &AuditEntry,
    ) -> Result<AddOutcome, CatalogError>;

    /// The file called `filename`, if any.
    async fn file(&self, filename: &str) -> Result<Option<FileRecord>, CatalogError>;

    /// The file of the distribution `dist_key`, whatever its filename's spelling, if any.
    async fn distribution(&self, dist_key: &DistKey) -> Result<Option<FileRecord>, CatalogError>;

    /// Every project with a release, sorted by normalized name (a name reserved before its first
    /// upload is not one yet).
    async fn projects(&self) -> Result<Vec<ProjectSummary>, CatalogError>;

    /// The normalized name of every project, with files or without (reserved), whatever its
    /// status: the names that are never looked up upstream.
    async fn project_names(&self) -> Result<Vec<String>, CatalogError>;

    /// The project with this normalized name.
    async fn project(&self, project: &str) -> Result<Option<ProjectSummary>, CatalogError>;

    /// A project and its files (sorted by filename), or `None` if the project does not exist.
    async fn project_files(&self, project: &str) -> Result<Option<ProjectFiles>, CatalogError>;

    /// Sets the yank state of the release of `project` whose canonical version is
    /// `canonical_version`, with its audit record in the same transaction. Returns `false` (and
    /// records nothing) if there is no such release.
    async fn set_yank(
        &self,
        project: &str,
        canonical_version: &str,
        yank: Yank,
        audit: &AuditEntry,
    ) -> Result<bool, CatalogError>;

    /// Sets the PEP 792 status of `project` (normalized name) and its reason (`None` clears
    /// it), and appends `audit` to the audit log in the same transaction, provided the
    /// project's status is still `previous` (what the caller read and checked its rights
    /// against). Returns `false`, and changes nothing, if there is no such project or its
    /// status is no longer `previous`.
    async fn set_project_status(
        &self,
        project: &str,
        previous: ProjectStatus,
        status: ProjectStatus,
        reason: Option<&str>,
        audit: &AuditEntry,
    ) -> Result<bool, CatalogError>;

    /// The newest point of the change log: a number that grows with every change.
    async fn generation(&self) -> Result<i64, CatalogError>;

    /// What changed after the point `seq` of the change log (see [`Change`]).
    async fn changes_since(&self, seq: i64) -> Result<Changes, CatalogError>;

    /// Wakes a reader of the change log as soon as it may have grown: calls `wake.notify_one()`
    /// whenever a write (by any process) commits, and after (re)connecting, since writes made
    /// meanwhile went unsignalled. Runs until cancelled. An engine without such a signal returns
    /// at once (SQLite: readers rely on polling alone). A signal says only "read the log now":
    /// it carries nothing, and a lost or extra one costs at most a poll interval or one read.
    async fn signal_changes(&self, wake: &tokio::sync::Notify);

    /// Every file of every project, whatever its project's status or its yank, with the blobs
    /// it references, sorted by filename: what integrity checks, repair and backups must find
    /// in the blob store.
    async fn stored_files(&self) -> Result<Vec<StoredFile>, CatalogError>;
}

#[cfg(test)]
mod tests {
    use super::CatalogError;

    #[test]
    fn connection_failures_are_unavailable_and_query_failures_are_not() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        for unreachable in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::Io(refused),
        ] {
            let e = CatalogError::from(unreachable);
            assert!(matches!(e, CatalogError::Unavailable(_)), "{e:?}");
            assert!(e.to_string().contains("unreachable"), "{e}");
        }
        let e = CatalogError::from(sqlx::Error::RowNotFound);
        assert!(matches!(e, CatalogError::Database(_)), "{e:?}");
    }
}
