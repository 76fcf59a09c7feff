//! The catalog on PostgreSQL, for several replicas sharing one database.
//!
//! The same behaviour as the SQLite engine, by other means:
//! - Writes run in plain `READ COMMITTED` transactions, so they proceed in parallel. The unique
//!   constraints on `files.filename` and `files.dist_key` pick the one winner among concurrent
//!   publishers: the loser's insert waits for the winner's commit, fails with a unique
//!   violation, and `add_file` runs again, now seeing the winner's row and answering as for any
//!   existing file. Rows a publish depends on are locked: the project's row (see
//!   `check_status`: publishers of one project take turns), the uploader's account and role
//!   (`FOR SHARE`), so a concurrent status change or account removal waits for it.
//! - The change log takes its `seq` from a sequence (no counter row that every writer updates);
//!   readers handle seqs committed out of order (see `settle`).
//! - Migrations run under a PostgreSQL advisory lock, so replicas starting together against a
//!   new database apply them once; a database whose schema is newer than this build is refused.

mod accounts;
mod browse;
mod signal;
mod transfer;
mod upstream;
mod upstream_log;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{PgConnection, Row, SqlSafeStr};

use accounts::insert_audit;
use pyindex_packaging::{DistKey, DistKind};

use crate::sqlite::{change_from_row, from_micros, micros, size_from};
use crate::{
    AddOutcome, AuditEntry, Catalog, CatalogError, Change, Changes, FileRecord, NewFile,
    ProjectFiles, ProjectStatus, ProjectSummary, Role, StoredFile, Yank,
};

/// The schema migrations, in order. Version 6 is the whole schema of SQLite's version 6, so
/// that a version number means the same schema on both engines.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        6,
        "init",
        include_str!("../../migrations/postgres/0006_init.sql"),
    ),
    (
        7,
        "upstream cache",
        include_str!("../../migrations/postgres/0007_upstream_cache.sql"),
    ),
    (
        8,
        "rendered readme",
        include_str!("../../migrations/postgres/0008_rendered_readme.sql"),
    ),
    (
        9,
        "upstream blocks and fetch log",
        include_str!("../../migrations/postgres/0009_upstream_blocks_and_fetch_log.sql"),
    ),
    (
        10,
        "upstream file changes",
        include_str!("../../migrations/postgres/0010_upstream_file_changes.sql"),
    ),
];

/// The advisory lock key held while migrating: "pyindex" in ASCII. One key per database, so
/// replicas migrating one database (in any schema) take turns.
const MIGRATION_LOCK: i64 = 0x70_79_69_6e_64_65_78;

/// How many change-log rows are kept; a reader further behind drops all its caches.
const CHANGES_KEPT: i64 = 10_000;
/// The most changes returned at once; more than that is reported as [`Change::Everything`].
const CHANGES_PER_READ: i64 = 1_000;
/// Old change-log rows are pruned by the writer of every this-many-th seq (a prune per write
/// would make concurrent writers contend for the same old rows).
const PRUNE_EVERY: i64 = 64;
/// The advisory lock key writers of the change log hold shared until they commit ("pyindex"
/// + 1; see `settle`).
const CHANGE_WRITERS: i64 = MIGRATION_LOCK + 1;

fn migrator() -> Migrator {
    let mut migrator = Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    description.into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    );
    // `migrate` holds our own advisory lock around the whole check-and-apply.
    migrator.set_locking(false);
    migrator
}

/// The newest schema version this build knows.
pub(crate) fn known_version() -> i64 {
    MIGRATIONS.last().map_or(0, |&(version, _, _)| version)
}

/// How long a query waits for a database connection before failing with
/// [`CatalogError::Unavailable`], unless set otherwise ([`PgCatalog::connect_waiting`]).
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// A catalog in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgCatalog {
    pool: PgPool,
}

impl PgCatalog {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`) with
    /// a pool of at most `pool_size` connections, and brings its schema up to date.
    pub async fn connect(url: &str, pool_size: u32) -> Result<PgCatalog, CatalogError> {
        PgCatalog::connect_waiting(url, pool_size, DEFAULT_ACQUIRE_TIMEOUT).await
    }

    /// [`PgCatalog::connect`], where a query waits at most `acquire_timeout` for a connection
    /// (pooled or new) before failing with [`CatalogError::Unavailable`].
    pub async fn connect_waiting(
        url: &str,
        pool_size: u32,
        acquire_timeout: Duration,
    ) -> Result<PgCatalog, CatalogError> {
        let options = PgConnectOptions::from_str(url)?;
        PgCatalog::connect_with_timeout(options, pool_size, acquire_timeout).await
    }

    /// [`PgCatalog::connect`] with parsed options (e.g. with a `search_path` for a schema).
    pub async fn connect_with(
        options: PgConnectOptions,
        pool_size: u32,
    ) -> Result<PgCatalog, CatalogError> {
        PgCatalog::connect_with_timeout(options, pool_size, DEFAULT_ACQUIRE_TIMEOUT).await
    }

    async fn connect_with_timeout(
        options: PgConnectOptions,
        pool_size: u32,
        acquire_timeout: Duration,
    ) -> Result<PgCatalog, CatalogError> {
        // While the database is down, sqlx retries a refused connection until the acquire
        // timeout: that bounds how long a request waits before its 503.
        let pool = PgPoolOptions::new()
            .max_connections(pool_size.max(1))
            .acquire_timeout(acquire_timeout)
            .connect_with(options)
            .await?;
        let mut conn = pool.acquire().await?;
        migrate(&mut conn).await?;
        drop(conn);
        Ok(PgCatalog { pool })
    }

    /// Closes the connection pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Applies pending migrations under the advisory lock, after refusing a schema newer than this
/// build knows. The lock is a session lock, released on every path (and by the server if the
/// connection drops).
async fn migrate(conn: &mut PgConnection) -> Result<(), CatalogError> {
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await?;
    let result = migrate_locked(conn).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await;
    result?;
    unlocked?;
    Ok(())
}

async fn migrate_locked(conn: &mut PgConnection) -> Result<(), CatalogError> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables \
         WHERE schemaname = current_schema() AND tablename = '_sqlx_migrations')",
    )
    .fetch_one(&mut *conn)
    .await?;
    if exists {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&mut *conn)
                .await?;
        let known = known_version();
        if let Some(found) = found.filter(|&found| found > known) {
            return Err(CatalogError::SchemaTooNew { found, known });
        }
    }
    migrator().run_direct(None, conn, false).await?;
    Ok(())
}

const FILE_COLUMNS: &str = "p.name AS project, f.filename, r.version, f.kind, f.size, f.sha256, \
     f.requires_python, f.metadata_sha256, f.uploaded_us, r.yanked, r.yanked_reason, \
     p.status AS status, p.status_reason AS status_reason \
     FROM files f JOIN releases r ON r.id = f.release_id JOIN projects p ON p.id = r.project_id";

fn file_record(row: &PgRow) -> Result<FileRecord, CatalogError> {
    let yanked: bool = row.try_get("yanked")?;
    Ok(FileRecord {
        project: row.try_get("project")?,
        filename: row.try_get("filename")?,
        version: row.try_get("version")?,
        kind: {
            let kind: String = row.try_get("kind")?;
            DistKind::from_filetype(&kind)
                .ok_or_else(|| CatalogError::Corrupt(format!("unknown file kind '{kind}'")))?
        },
        size: size_from(row.try_get("size")?)?,
        sha256: row.try_get("sha256")?,
        requires_python: row.try_get("requires_python")?,
        metadata_sha256: row.try_get("metadata_sha256")?,
        uploaded: from_micros(row.try_get("uploaded_us")?)?,
        yank: if yanked {
            Yank::Yanked(row.try_get("yanked_reason")?)
        } else {
            Yank::NotYanked
        },
        project_status: project_status(row)?,
        project_status_reason: row.try_get("status_reason")?,
    })
}

const PROJECT_COLUMNS: &str = "name, display_name, status, status_reason";

/// The projects the index lists: those with a release, by name.
const WITH_RELEASES: &str =
    "EXISTS (SELECT 1 FROM releases r WHERE r.project_id = projects.id) ORDER BY name";

fn project_status(row: &PgRow) -> Result<ProjectStatus, CatalogError> {
    let status: String = row.try_get("status")?;
    ProjectStatus::parse(&status)
        .ok_or_else(|| CatalogError::Corrupt(format!("unknown project status '{status}'")))
}

fn project_summary(row: &PgRow) -> Result<ProjectSummary, CatalogError> {
    Ok(ProjectSummary {
        name: row.try_get("name")?,
        display_name: row.try_get("display_name")?,
        status: project_status(row)?,
        status_reason: row.try_get("status_reason")?,
    })
}

fn query_project(filter: &'static str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!(
        "SELECT {PROJECT_COLUMNS} FROM projects WHERE {filter}"
    ))
}

fn query_files(filter: &'static str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!("SELECT {FILE_COLUMNS} WHERE {filter}"))
}

/// The file that `file` would duplicate: the same distribution or the same filename.
async fn existing_outcome(
    tx: &mut PgConnection,
    file: &NewFile,
) -> Result<Option<AddOutcome>, CatalogError> {
    let existing: Option<(String, String)> = sqlx::query_as(
        "SELECT filename, sha256 FROM files WHERE dist_key = $1 OR filename = $2 LIMIT 1",
    )
    .bind(file.dist_key.as_str())
    .bind(&file.filename)
    .fetch_optional(tx)
    .await?;
    Ok(existing.map(|(filename, existing_sha256)| {
        if existing_sha256 == file.sha256 {
            AddOutcome::AlreadyPresent { filename }
        } else {
            AddOutcome::Conflict {
                filename,
                existing_sha256,
            }
        }
    }))
}

/// The id of `file`'s project, creating the project if it does not exist (then `true`).
async fn ensure_project(
    tx: &mut PgConnection,
    file: &NewFile,
) -> Result<(i64, bool), CatalogError> {
    let created = sqlx::query(
        "INSERT INTO projects (name, display_name, created_us) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(&file.project)
    .bind(&file.display_name)
    .bind(micros(file.uploaded))
    .execute(&mut *tx)
    .await?
    .rows_affected()
        > 0;
    let project_id = sqlx::query_scalar("SELECT id FROM projects WHERE name = $1")
        .bind(&file.project)
        .fetch_one(&mut *tx)
        .await?;
    Ok((project_id, created))
}

/// `Forbidden` unless the uploader (if accounts are in use) may publish to the project: the
/// uploader of a new project becomes its owner; an existing one takes its owners, maintainers
/// and admins. The account is re-read here: it may have been removed or demoted since the
/// request was authenticated.
async fn check_uploader(
    tx: &mut PgConnection,
    file: &NewFile,
    project_id: i64,
    created: bool,
) -> Result<Option<AddOutcome>, CatalogError> {
    let Some(uploader) = &file.uploader else {
        return Ok(None);
    };
    let is_admin: Option<bool> =
        sqlx::query_scalar("SELECT is_admin FROM users WHERE id = $1 FOR SHARE")
            .bind(uploader.user_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(is_admin) = is_admin else {
        return Ok(Some(AddOutcome::Forbidden));
    };
    if created {
        accounts::grant(tx, project_id, uploader.user_id, Role::Owner).await?;
    } else if !is_admin
        && accounts::role_of(tx, project_id, uploader.user_id)
            .await?
            .is_none()
    {
        return Ok(Some(AddOutcome::Forbidden));
    }
    Ok(None)
}

/// `StatusRefuses` if the project's status takes no new files. Read inside the write
/// transaction and locked (`FOR NO KEY UPDATE`), so a status change cannot slip in between, and
/// publishers of one project take turns: a new release updates the project's row (its summary),
/// and two publishers each holding a shared lock on it while waiting to update it would
/// deadlock. Publishers of different projects do not wait for each other.
/// Whether the project has a release: a reserved project gets its first with its first upload,
/// which puts it on the root page.
async fn has_release(tx: &mut PgConnection, project_id: i64) -> Result<bool, CatalogError> {
    let found: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM releases WHERE project_id = $1 LIMIT 1")
            .bind(project_id)
            .fetch_optional(&mut *tx)
            .await?;
    Ok(found.is_some())
}

async fn check_status(
    tx: &mut PgConnection,
    project_id: i64,
) -> Result<Option<AddOutcome>, CatalogError> {
    let row =
        sqlx::query("SELECT status, status_reason FROM projects WHERE id = $1 FOR NO KEY UPDATE")
            .bind(project_id)
            .fetch_one(&mut *tx)
            .await?;
    let status = project_status(&row)?;
    if status.accepts_uploads() {
        return Ok(None);
    }
    Ok(Some(AddOutcome::StatusRefuses {
        status,
        reason: row.try_get("status_reason")?,
    }))
}

/// The id of `file`'s release, creating it with the file's release metadata if it is the
/// release's first file.
async fn insert_release(
    tx: &mut PgConnection,
    file: &NewFile,
    project_id: i64,
) -> Result<i64, CatalogError> {
    let release = &file.release;
    let requires_dist = serde_json::to_string(&release.requires_dist)
        .map_err(|e| CatalogError::Corrupt(e.to_string()))?;
    let new_release = sqlx::query(
        "INSERT INTO releases (project_id, version, canonical_version, summary, description, \
         description_content_type, requires_python, requires_dist, created_us, details, \
         readme_html) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (project_id, canonical_version) DO NOTHING",
    )
    .bind(project_id)
    .bind(&file.version)
    .bind(&file.canonical_version)
    .bind(&release.summary)
    .bind(&release.description)
    .bind(&release.description_content_type)
    .bind(&release.requires_python)
    .bind(requires_dist)
    .bind(micros(file.uploaded))
    .bind(crate::sqlite::browse::details_json(&release.details)?)
    .bind(&release.readme_html)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        > 0;
    if new_release {
        browse::set_project_summary(tx, project_id, release.summary.as_deref()).await?;
    }
    Ok(sqlx::query_scalar(
        "SELECT id FROM releases WHERE project_id = $1 AND canonical_version = $2",
    )
    .bind(project_id)
    .bind(&file.canonical_version)
    .fetch_one(&mut *tx)
    .await?)
}

/// Inserts the file row itself.
async fn insert_file(
    tx: &mut PgConnection,
    file: &NewFile,
    release_id: i64,
) -> Result<(), CatalogError> {
    let size = i64::try_from(file.size)
        .map_err(|_| CatalogError::Corrupt(format!("file size {} too large", file.size)))?;
    sqlx::query(
        "INSERT INTO files (release_id, filename, dist_key, kind, size, sha256, md5, \
         blake2_256, requires_python, metadata_sha256, uploaded_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(release_id)
    .bind(&file.filename)
    .bind(file.dist_key.as_str())
    .bind(file.kind.as_str())
    .bind(size)
    .bind(&file.sha256)
    .bind(&file.md5)
    .bind(&file.blake2_256)
    .bind(&file.requires_python)
    .bind(&file.metadata_sha256)
    .bind(micros(file.uploaded))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

impl PgCatalog {
    /// One attempt at [`Catalog::add_file`]; a unique violation means a concurrent publisher
    /// won (see the module's documentation).
    async fn try_add_file(
        &self,
        file: &NewFile,
        audit: &AuditEntry,
    ) -> Result<AddOutcome, CatalogError> {
        let mut tx = self.pool.begin().await?;
        // Rights and status first: a caller who may not publish here learns nothing about the
        // files that exist. Returning without commit rolls back the project row, if created.
        let (project_id, created) = ensure_project(&mut tx, file).await?;
        if let Some(refusal) = check_uploader(&mut tx, file, project_id, created).await? {
            return Ok(refusal);
        }
        if !created && let Some(refusal) = check_status(&mut tx, project_id).await? {
            return Ok(refusal);
        }
        if let Some(outcome) = existing_outcome(&mut tx, file).await? {
            return Ok(outcome);
        }
        let newly_listed = created || !has_release(&mut tx, project_id).await?;
        let release_id = insert_release(&mut tx, file, project_id).await?;
        insert_file(&mut tx, file, release_id).await?;
        let mut changes = vec![Change::Project(file.project.clone())];
        if newly_listed {
            changes.push(Change::ProjectList);
        }
        record_changes(&mut tx, &changes).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(AddOutcome::Added {
            new_project: newly_listed,
        })
    }

    /// The file matching `filter`, whose one parameter is `value`.
    async fn one_file(
        &self,
        filter: &'static str,
        value: &str,
    ) -> Result<Option<FileRecord>, CatalogError> {
        sqlx::query(query_files(filter))
            .bind(value)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(file_record)
            .transpose()
    }
}

#[async_trait]
impl Catalog for PgCatalog {
    async fn add_file(
        &self,
        file: &NewFile,
        audit: &AuditEntry,
    ) -> Result<AddOutcome, CatalogError> {
        // A concurrent publisher of the same filename or distribution makes our insert fail
        // with a unique violation once it commits; the next attempt sees its row. One retry
        // per concurrent winner would do; a few more cover a project created concurrently.
        let mut attempts = 0;
        loop {
            match self.try_add_file(file, audit).await {
                Err(CatalogError::Database(sqlx::Error::Database(e)))
                    if e.is_unique_violation() && attempts < 3 =>
                {
                    attempts += 1;
                }
                other => return other,
            }
        }
    }

    async fn file(&self, filename: &str) -> Result<Option<FileRecord>, CatalogError> {
        self.one_file("f.filename = $1", filename).await
    }

    async fn distribution(&self, dist_key: &DistKey) -> Result<Option<FileRecord>, CatalogError> {
        self.one_file("f.dist_key = $1", dist_key.as_str()).await
    }

    async fn projects(&self) -> Result<Vec<ProjectSummary>, CatalogError> {
        let rows = sqlx::query(query_project(WITH_RELEASES))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(project_summary).collect()
    }

    async fn project_names(&self) -> Result<Vec<String>, CatalogError> {
        Ok(sqlx::query_scalar("SELECT name FROM projects")
            .fetch_all(&self.pool)
            .await?)
    }

    async fn project(&self, project: &str) -> Result<Option<ProjectSummary>, CatalogError> {
        sqlx::query(query_project("name = $1"))
            .bind(project)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(project_summary)
            .transpose()
    }

    async fn project_files(&self, project: &str) -> Result<Option<ProjectFiles>, CatalogError> {
        let mut conn = self.pool.acquire().await?;
        let Some(row) = sqlx::query(query_project("name = $1"))
            .bind(project)
            .fetch_optional(&mut *conn)
            .await?
        else {
            return Ok(None);
        };
        let summary = project_summary(&row)?;
        let files = sqlx::query(query_files("p.name = $1 ORDER BY f.filename"))
            .bind(project)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(file_record)
            .collect::<Result<_, _>>()?;
        Ok(Some(ProjectFiles {
            project: summary,
            files,
        }))
    }

    async fn set_yank(
        &self,
        project: &str,
        canonical_version: &str,
        yank: Yank,
        audit: &AuditEntry,
    ) -> Result<bool, CatalogError> {
        let (yanked, reason) = match yank {
            Yank::Yanked(reason) => (true, reason),
            Yank::NotYanked => (false, None),
        };
        let mut tx = self.pool.begin().await?;
        let changed = sqlx::query(
            "UPDATE releases SET yanked = $1, yanked_reason = $2 \
             WHERE canonical_version = $3 \
             AND project_id = (SELECT id FROM projects WHERE name = $4)",
        )
        .bind(yanked)
        .bind(reason)
        .bind(canonical_version)
        .bind(project)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed > 0 {
            record_changes(&mut tx, &[Change::Project(project.to_owned())]).await?;
            insert_audit(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(changed > 0)
    }

    async fn set_project_status(
        &self,
        project: &str,
        previous: ProjectStatus,
        status: ProjectStatus,
        reason: Option<&str>,
        audit: &AuditEntry,
    ) -> Result<bool, CatalogError> {
        let mut tx = self.pool.begin().await?;
        let changed = sqlx::query(
            "UPDATE projects SET status = $1, status_reason = $2 WHERE name = $3 AND status = $4",
        )
        .bind(status.as_str())
        .bind(reason)
        .bind(project)
        .bind(previous.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if !changed {
            return Ok(false);
        }
        insert_audit(&mut tx, audit).await?;
        record_changes(&mut tx, &[Change::Project(project.to_owned())]).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn signal_changes(&self, wake: &tokio::sync::Notify) {
        signal::listen(&self.pool, wake).await;
    }

    async fn generation(&self) -> Result<i64, CatalogError> {
        let mut conn = self.pool.acquire().await?;
        let newest: Vec<i64> =
            sqlx::query_scalar("SELECT seq FROM changes ORDER BY seq DESC LIMIT $1")
                .bind(CHANGES_PER_READ)
                .fetch_all(&mut *conn)
                .await?;
        // The oldest of the newest rows is taken as final: a writer would have to hold its seq
        // uncommitted while a thousand others commit for that to be wrong.
        let Some(&first) = newest.last() else {
            return Ok(0);
        };
        let seqs: Vec<i64> = newest.into_iter().rev().skip(1).collect();
        let cursor = consecutive(first, &seqs);
        if cursor == seqs.last().copied().unwrap_or(first) {
            return Ok(cursor);
        }
        Ok(match settle(&mut conn, first).await? {
            Some(rows) => rows.last().map_or(first, |row| row.0),
            None => cursor,
        })
    }

    async fn stored_files(&self) -> Result<Vec<StoredFile>, CatalogError> {
        let rows: Vec<(String, String, i64, Option<String>)> = sqlx::query_as(
            "SELECT filename, sha256, size, metadata_sha256 FROM files ORDER BY filename",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(filename, sha256, size, metadata_sha256)| {
                Ok(StoredFile {
                    filename,
                    sha256,
                    size: size_from(size)?,
                    metadata_sha256,
                })
            })
            .collect()
    }

    async fn changes_since(&self, seq: i64) -> Result<Changes, CatalogError> {
        let mut conn = self.pool.acquire().await?;
        let oldest: Option<i64> = sqlx::query_scalar("SELECT MIN(seq) FROM changes")
            .fetch_one(&mut *conn)
            .await?;
        if oldest.is_some_and(|oldest| oldest > seq + 1) {
            // Pruned past the reader: start again from the newest final point.
            drop(conn);
            return Ok(Changes {
                seq: self.generation().await?,
                changes: vec![Change::Everything],
            });
        }
        let mut rows = changes_after(&mut conn, seq).await?;
        let seqs: Vec<i64> = rows.iter().map(|row| row.0).collect();
        let mut cursor = consecutive(seq, &seqs);
        if cursor != seqs.last().copied().unwrap_or(seq)
            && let Some(final_rows) = settle(&mut conn, seq).await?
        {
            rows = final_rows;
            cursor = rows.last().map_or(seq, |row| row.0);
        }
        if rows.len() as i64 > CHANGES_PER_READ {
            let seqs: Vec<i64> = rows.iter().map(|row| row.0).collect();
            return Ok(Changes {
                seq: consecutive(seq, &seqs),
                changes: vec![Change::Everything],
            });
        }
        // Rows past a gap that may still fill are returned now and again next time (dropping a
        // cache twice is harmless); the cursor stays before the gap until it is final.
        let changes = rows
            .into_iter()
            .map(|(_, scope, subject)| change_from_row(&scope, subject))
            .collect::<Result<_, _>>()?;
        Ok(Changes {
            seq: cursor,
            changes,
        })
    }
}

/// A change-log row: seq, scope, subject.
type ChangeRow = (i64, String, Option<String>);

/// Up to one more than [`CHANGES_PER_READ`] rows after `seq`, in order.
async fn changes_after(conn: &mut PgConnection, seq: i64) -> Result<Vec<ChangeRow>, CatalogError> {
    Ok(sqlx::query_as(
        "SELECT seq, scope, subject FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(seq)
    .bind(CHANGES_PER_READ + 1)
    .fetch_all(conn)
    .await?)
}

/// How far a reader at `from` may move its cursor over `seqs` (ascending, all after `from`)
/// without passing a missing seq: seqs come from a sequence, so they are taken in one order and
/// committed in another, and a missing seq may belong to a writer still running, whose change
/// would be lost if the cursor moved past it.
fn consecutive(from: i64, seqs: &[i64]) -> i64 {
    let mut cursor = from;
    for &seq in seqs {
        if seq != cursor + 1 {
            break;
        }
        cursor = seq;
    }
    cursor
}

/// The rows after `seq`, read at a moment when no writer holds a seq it has not committed, so
/// that every seq missing among them never will appear (its writer rolled back); `None` if a
/// writer is busy right now (then a gap may still fill, and the caller keeps its cursor before
/// it; the next read tries again).
///
/// Writers hold [`CHANGE_WRITERS`] shared from before they take a seq until they commit (shared
/// locks do not make writers wait for each other); a reader that gets it exclusively, without
/// waiting, knows every one of them has finished.
async fn settle(conn: &mut PgConnection, seq: i64) -> Result<Option<Vec<ChangeRow>>, CatalogError> {
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(CHANGE_WRITERS)
        .fetch_one(&mut *conn)
        .await?;
    if !locked {
        return Ok(None);
    }
    let rows = changes_after(conn, seq).await;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(CHANGE_WRITERS)
        .execute(&mut *conn)
        .await?;
    Ok(Some(rows?))
}

/// Appends `changes` to the change log inside the caller's transaction, signals them to the
/// listening replicas on commit, and now and then prunes old rows.
pub(crate) async fn record_changes(
    tx: &mut PgConnection,
    changes: &[Change],
) -> Result<(), CatalogError> {
    // Held until the transaction ends, so a reader can tell when no seq is in flight (`settle`).
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
        .bind(CHANGE_WRITERS)
        .execute(&mut *tx)
        .await?;
    let mut newest = 0;
    for change in changes {
        let (scope, subject) = match change {
            Change::Project(name) => ("project", Some(name.as_str())),
            Change::ProjectList => ("project-list", None),
            Change::Account(name) => ("account", Some(name.as_str())),
            Change::UpstreamFile(sha256) => ("upstream-file", Some(sha256.as_str())),
            Change::Everything => ("everything", None),
        };
        newest = sqlx::query_scalar(
            "INSERT INTO changes (scope, subject) VALUES ($1, $2) RETURNING seq",
        )
        .bind(scope)
        .bind(subject)
        .fetch_one(&mut *tx)
        .await?;
    }
    if !changes.is_empty() {
        signal::notify(tx).await?;
    }
    if newest > 0 && newest % PRUNE_EVERY == 0 {
        // SKIP LOCKED: rows another writer is pruning are left to it, never waited for.
        sqlx::query(
            "DELETE FROM changes WHERE seq IN \
             (SELECT seq FROM changes WHERE seq <= $1 FOR UPDATE SKIP LOCKED)",
        )
        .bind(newest - CHANGES_KEPT)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};

    use sqlx::Connection;

    use super::*;

    /// The variable naming the test database; unset, the PostgreSQL tests are skipped.
    const URL_VARIABLE: &str = "PYINDEX_TEST_DATABASE_URL";

    /// A schema of its own for one test, dropped (with everything in it) when the test ends,
    /// so that tests running at the same time on one database share nothing.
    pub(crate) struct Schema {
        url: String,
        name: String,
    }

    impl Schema {
        /// Connection options whose `search_path` is this schema.
        pub(crate) fn options(&self) -> PgConnectOptions {
            PgConnectOptions::from_str(&self.url)
                .unwrap()
                .options([("search_path", self.name.as_str())])
        }
    }

    impl Drop for Schema {
        fn drop(&mut self) {
            // Drop runs inside the test's runtime, which cannot block on itself: use a thread
            // with a runtime of its own.
            let (url, name) = (self.url.clone(), self.name.clone());
            let dropped = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(async move {
                        let mut conn = sqlx::PgConnection::connect(&url).await?;
                        // A test that failed inside a transaction still holds its locks until
                        // its runtime, blocked here, rolls it back: give up rather than hang.
                        sqlx::query("SET lock_timeout = '5s'")
                            .execute(&mut conn)
                            .await?;
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP SCHEMA \"{name}\" CASCADE"
                        )))
                        .execute(&mut conn)
                        .await
                        .map(drop)
                    })
            })
            .join();
            if !matches!(dropped, Ok(Ok(()))) {
                eprintln!("could not drop the test schema {}: {dropped:?}", self.name);
            }
        }
    }

    /// A new, empty schema in the test database, or `None` (with a line on stderr that the
    /// test harness does not capture) when `PYINDEX_TEST_DATABASE_URL` is not set.
    pub(crate) async fn schema() -> Option<Schema> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let Ok(url) = std::env::var(URL_VARIABLE) else {
            // Written to the process's stderr directly, not through `eprintln!`, which the
            // harness captures for passing tests.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: PostgreSQL catalog test ({URL_VARIABLE} is not set; \
                 `eval \"$(scripts/postgres start)\"` starts a database)"
            );
            return None;
        };
        let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        let name = format!(
            "test_{}_{}_{}",
            std::process::id(),
            nanos,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = sqlx::PgConnection::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{URL_VARIABLE}={url}: cannot connect: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{name}\"")))
            .execute(&mut conn)
            .await
            .unwrap();
        Some(Schema { url, name })
    }

    /// A fresh catalog in a schema of its own, or `None` when there is no test database.
    pub(crate) async fn open() -> Option<(Schema, PgCatalog)> {
        let schema = schema().await?;
        let catalog = PgCatalog::connect_with(schema.options(), 4).await.unwrap();
        Some((schema, catalog))
    }

    crate::suite::catalog_suite!(optional open());

    #[test]
    fn a_reader_stops_before_a_missing_seq() {
        assert_eq!(consecutive(9, &[11, 12]), 9);
        assert_eq!(consecutive(10, &[11, 12]), 12);
        assert_eq!(consecutive(10, &[11, 13]), 11);
        assert_eq!(consecutive(7, &[]), 7);
    }

    #[tokio::test]
    async fn a_change_committed_out_of_order_is_not_skipped() {
        let Some((_schema, catalog)) = open().await else {
            return;
        };
        let start = catalog.generation().await.unwrap();
        // A writer takes its seq, then stays uncommitted while another one commits after it.
        let mut slow = catalog.pool.begin().await.unwrap();
        insert_audit(&mut slow, &crate::suite::audit("test", "slow"))
            .await
            .unwrap();
        record_changes(&mut slow, &[Change::Account("slow".into())])
            .await
            .unwrap();
        crate::suite::publish(&catalog, "fast-1.0-py3-none-any.whl", "aa").await;
        let seen = catalog.changes_since(start).await.unwrap();
        assert!(seen.changes.contains(&Change::Project("fast".into())));
        assert_eq!(seen.seq, start, "the cursor must wait for the slow writer");
        assert_eq!(catalog.generation().await.unwrap(), start);
        slow.commit().await.unwrap();
        let seen = catalog.changes_since(seen.seq).await.unwrap();
        assert!(seen.changes.contains(&Change::Account("slow".into())));
        assert!(seen.seq > start);
        assert_eq!(catalog.generation().await.unwrap(), seen.seq);
    }

    #[tokio::test]
    async fn a_rolled_back_seq_does_not_hold_readers_back() {
        let Some((_schema, catalog)) = open().await else {
            return;
        };
        let start = catalog.generation().await.unwrap();
        let mut failed = catalog.pool.begin().await.unwrap();
        insert_audit(&mut failed, &crate::suite::audit("test", "x"))
            .await
            .unwrap();
        record_changes(&mut failed, &[Change::Everything])
            .await
            .unwrap();
        failed.rollback().await.unwrap();
        crate::suite::publish(&catalog, "after-1.0-py3-none-any.whl", "aa").await;
        // The gap settles once every transaction of the cluster that was running when the
        // publish took its seq has finished: other tests' transactions may delay that a little.
        let mut seen = catalog.changes_since(start).await.unwrap();
        for _ in 0..200 {
            if seen.seq > start {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            seen = catalog.changes_since(start).await.unwrap();
        }
        assert_eq!(
            seen.changes,
            [Change::Project("after".into()), Change::ProjectList]
        );
        assert_eq!(seen.seq, catalog.generation().await.unwrap());
        assert!(seen.seq > start + 1, "the rolled-back seq is passed over");
    }

    /// Waits for `wake`, or gives up after `within` (a guard against hanging, not a speed test).
    async fn woken(wake: &tokio::sync::Notify, within: std::time::Duration) -> bool {
        tokio::time::timeout(within, wake.notified()).await.is_ok()
    }

    #[tokio::test]
    async fn a_commit_wakes_the_listeners_of_its_schema_only() {
        let Some((schema, writer)) = open().await else {
            return;
        };
        let Some((_other_schema, other)) = open().await else {
            return;
        };
        let reader = PgCatalog::connect_with(schema.options(), 2).await.unwrap();
        let wake = std::sync::Arc::new(tokio::sync::Notify::new());
        let listening = {
            let (reader, wake) = (reader.clone(), wake.clone());
            tokio::spawn(async move { reader.signal_changes(&wake).await })
        };
        let long = std::time::Duration::from_secs(30);
        assert!(woken(&wake, long).await, "listening starts with a wake");
        let start = reader.generation().await.unwrap();

        let audit = crate::suite::audit("file.upload", "elsewhere");
        let file = crate::suite::new_file("elsewhere-1.0.tar.gz", "e1");
        other.add_file(&file, &audit).await.unwrap();
        let mut rolled_back = writer.pool.begin().await.unwrap();
        record_changes(&mut rolled_back, &[Change::Everything])
            .await
            .unwrap();
        rolled_back.rollback().await.unwrap();
        assert!(
            !woken(&wake, std::time::Duration::from_millis(300)).await,
            "a commit in another schema, or a rollback, wakes nobody here"
        );

        let file = crate::suite::new_file("here-1.0.tar.gz", "h1");
        writer.add_file(&file, &audit).await.unwrap();
        assert!(woken(&wake, long).await, "a commit in this schema wakes");
        let seen = reader.changes_since(start).await.unwrap();
        assert!(seen.changes.contains(&Change::Project("here".into())));
        listening.abort();
    }

    #[tokio::test]
    async fn a_lost_listening_connection_is_replaced_and_the_log_read_again() {
        let Some((_schema, catalog)) = open().await else {
            return;
        };
        let wake = std::sync::Arc::new(tokio::sync::Notify::new());
        let listening = {
            let (catalog, wake) = (catalog.clone(), wake.clone());
            tokio::spawn(async move { catalog.signal_changes(&wake).await })
        };
        let long = std::time::Duration::from_secs(30);
        assert!(woken(&wake, long).await, "listening starts with a wake");
        // The server ends the listening session (as a restart or a network failure would);
        // only this catalog's: other tests listen on the same server at the same time.
        let schema = signal::schema_of(&catalog.pool).await.unwrap();
        let ended: i64 = sqlx::query_scalar(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = $1 AND pid <> pg_backend_pid()",
        )
        .bind(signal::application_name(&schema))
        .fetch_one(&catalog.pool)
        .await
        .unwrap();
        assert!(ended >= 1, "a listening session was found");
        // Writes made while it was gone are found by the read that follows the reconnection.
        assert!(
            woken(&wake, long).await,
            "listening again starts with a wake"
        );
        let file = crate::suite::new_file("later-1.0.tar.gz", "l1");
        let audit = crate::suite::audit("file.upload", "later");
        catalog.add_file(&file, &audit).await.unwrap();
        assert!(
            woken(&wake, long).await,
            "commits wake again after the reconnection"
        );
        listening.abort();
    }

    #[tokio::test]
    async fn replicas_starting_together_migrate_once() {
        let Some(schema) = schema().await else {
            return;
        };
        let starts: Vec<_> = (0..4)
            .map(|_| {
                let options = schema.options();
                tokio::spawn(async move { PgCatalog::connect_with(options, 2).await })
            })
            .collect();
        let mut catalogs = Vec::new();
        for start in starts {
            catalogs.push(start.await.unwrap().unwrap());
        }
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&catalogs[0].pool)
                .await
                .unwrap();
        let known: Vec<i64> = MIGRATIONS.iter().map(|m| m.0).collect();
        assert_eq!(applied, known);
        let everything: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM changes")
            .fetch_one(&catalogs[0].pool)
            .await
            .unwrap();
        assert_eq!(everything, 1, "the initial change-log row is written once");
    }

    #[tokio::test]
    async fn a_schema_newer_than_this_build_is_refused() {
        let Some((schema, catalog)) = open().await else {
            return;
        };
        let newer = known_version() + 1;
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
             execution_time) VALUES ($1, 'from the future', TRUE, '\\x00', 0)",
        )
        .bind(newer)
        .execute(&catalog.pool)
        .await
        .unwrap();
        catalog.close().await;
        let err = PgCatalog::connect_with(schema.options(), 1)
            .await
            .unwrap_err();
        assert!(
            matches!(err, CatalogError::SchemaTooNew { found, known }
                if found == newer && known == known_version()),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains(&format!("schema version {newer}")),
            "{message}"
        );
        assert!(message.contains("upgrade this pyindex"), "{message}");
    }

    #[tokio::test]
    async fn status_change_and_audit_entry_commit_together() {
        let Some((_schema, catalog)) = open().await else {
            return;
        };
        crate::suite::publish(&catalog, "shared_pkg-0.1.0-py3-none-any.whl", "aa").await;
        // Make the audit insert fail: the status change must roll back with it.
        sqlx::query("ALTER TABLE audit_log ADD CONSTRAINT refuse CHECK (actor <> 'cli') NOT VALID")
            .execute(&catalog.pool)
            .await
            .unwrap();
        let g = catalog.generation().await.unwrap();
        assert!(
            catalog
                .set_project_status(
                    "shared-pkg",
                    ProjectStatus::Active,
                    ProjectStatus::Archived,
                    None,
                    &crate::suite::audit("project.status", "shared-pkg"),
                )
                .await
                .is_err()
        );
        let project = catalog.project("shared-pkg").await.unwrap().unwrap();
        assert_eq!(project.status, ProjectStatus::Active);
        assert_eq!(catalog.generation().await.unwrap(), g);
    }
}
