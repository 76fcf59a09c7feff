//! The embedded SQLite catalog.
//!
//! The database runs in WAL mode so readers never block the writer, and every write transaction
//! starts with `BEGIN IMMEDIATE`, so that the server and CLI commands can write to one database
//! at the same time: a deferred transaction that upgrades from read to write fails at once with
//! "database is locked", an immediate one waits for the busy timeout instead.

mod accounts;
pub(crate) mod browse;
mod transfer;
mod upstream;
mod upstream_log;

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, SqlSafeStr};
use time::OffsetDateTime;

use accounts::insert_audit;
use pyindex_packaging::{DistKey, DistKind, parse_filename};
use sqlx::SqliteConnection;

use crate::{
    AddOutcome, AuditEntry, Catalog, CatalogError, Change, Changes, FileRecord, NewFile,
    ProjectFiles, ProjectStatus, ProjectSummary, Role, StoredFile, Yank,
};

/// The schema migrations, in order. Applied ones are recorded in `_sqlx_migrations`.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "accounts",
        include_str!("../../migrations/sqlite/0002_accounts.sql"),
    ),
    (
        3,
        "project status",
        include_str!("../../migrations/sqlite/0003_project_status.sql"),
    ),
    (
        4,
        "distributions and changes",
        include_str!("../../migrations/sqlite/0004_distributions_and_changes.sql"),
    ),
    (
        5,
        "distribution keys v2",
        include_str!("../../migrations/sqlite/0005_distribution_keys_v2.sql"),
    ),
    (
        6,
        "release details and sessions",
        include_str!("../../migrations/sqlite/0006_release_details_and_sessions.sql"),
    ),
    (
        7,
        "upstream cache",
        include_str!("../../migrations/sqlite/0007_upstream_cache.sql"),
    ),
    (
        8,
        "rendered readme",
        include_str!("../../migrations/sqlite/0008_rendered_readme.sql"),
    ),
    (
        9,
        "upstream blocks and fetch log",
        include_str!("../../migrations/sqlite/0009_upstream_blocks_and_fetch_log.sql"),
    ),
    (
        10,
        "upstream file changes",
        include_str!("../../migrations/sqlite/0010_upstream_file_changes.sql"),
    ),
];

/// How many change-log rows are kept; a reader further behind drops all its caches.
const CHANGES_KEPT: i64 = 10_000;
/// The most changes returned at once; more than that is reported as [`Change::Everything`].
const CHANGES_PER_READ: i64 = 1_000;

fn migrator() -> Migrator {
    Migrator::with_migrations(
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
    )
}

/// A catalog in a SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteCatalog {
    pool: SqlitePool,
    /// Connections for the upstream cache's own records (pages, cached blobs, their last use,
    /// the fetch log), which commit without waiting for the disk (`synchronous = NORMAL`; the
    /// database stays consistent, WAL mode). Whatever a power cut takes from them is fetched
    /// again: a cold proxied install writes one such record per page and file, and an fsync
    /// each made it 1.5 to 2.6 times slower than installing from the upstream directly.
    /// Published files, accounts, blocks and every audited write keep using `pool` (`FULL`).
    cache_pool: SqlitePool,
}

impl SqliteCatalog {
    /// Opens (creating it if missing) the database at `path` and applies pending migrations.
    pub async fn open(path: &Path) -> Result<SqliteCatalog, CatalogError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.clone())
            .await?;
        migrator().run(&pool).await?;
        // One connection: the cache's writers then queue in the pool, woken as soon as it is
        // free, instead of meeting SQLite's lock and sleeping in its busy handler (1 to 100 ms
        // steps), which made a cold install's requests wait 8 to 20 ms each.
        let cache_pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.synchronous(SqliteSynchronous::Normal))
            .await?;
        let catalog = SqliteCatalog { pool, cache_pool };
        catalog.fill_dist_keys().await?;
        Ok(catalog)
    }

    /// Gives their distribution key to files that have none: files recorded before schema
    /// version 4, and every file after migration 5 forgot the keys of the older form. Files are
    /// keyed in upload order; a file whose key is taken already (a second spelling of one
    /// distribution, published while the older rule let it in: `1.0` and `1.0.0`, or a `.zip`
    /// beside a `.tar.gz`) keys on its filename instead (`file:` and the name), so every
    /// published file stays listed and no new spelling of it can be added.
    ///
    /// It takes the write lock only when some file has no key, so that opening the catalog
    /// (for a read-only command beside the server) does not queue behind or block writers.
    async fn fill_dist_keys(&self) -> Result<(), CatalogError> {
        let missing: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM files WHERE dist_key IS NULL)")
                .fetch_one(&self.pool)
                .await?;
        if !missing {
            return Ok(());
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, filename FROM files WHERE dist_key IS NULL ORDER BY id")
                .fetch_all(&mut *tx)
                .await?;
        for (id, filename) in rows {
            let key = parse_filename(&filename)
                .map(|parsed| parsed.identity().to_string())
                .unwrap_or_else(|_| format!("file:{filename}"));
            let taken: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM files WHERE dist_key = $1)")
                    .bind(&key)
                    .fetch_one(&mut *tx)
                    .await?;
            let key = if taken {
                format!("file:{filename}")
            } else {
                key
            };
            sqlx::query("UPDATE files SET dist_key = $1 WHERE id = $2")
                .bind(key)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Opens the database at `path` for reading only, as it is: no migration, no change to the
    /// file (for a backup's catalog, which must stay as it was written).
    pub async fn open_read_only(path: &Path) -> Result<SqliteCatalog, CatalogError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .immutable(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await?;
        Ok(SqliteCatalog {
            cache_pool: pool.clone(),
            pool,
        })
    }

    /// Writes a consistent copy of the whole database to `dest` (which must not exist) with
    /// `VACUUM INTO`: one read transaction, so the copy holds every write committed before it
    /// began and none after, while the server keeps writing (WAL readers never block it).
    ///
    /// This is the SQLite engine's own snapshot and deliberately not a [`Catalog`] method: a
    /// server-side engine such as PostgreSQL takes its snapshots with its own tools (`pg_dump`
    /// or point-in-time recovery), which write no single file a trait method could promise.
    pub async fn snapshot_to(&self, dest: &Path) -> Result<(), CatalogError> {
        let dest = dest.to_str().ok_or_else(|| {
            CatalogError::Corrupt(format!("{} is not a UTF-8 path", dest.display()))
        })?;
        sqlx::query("VACUUM INTO $1")
            .bind(dest)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Closes the connection pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

pub(crate) fn micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000) as i64
}

pub(crate) fn from_micros(us: i64) -> Result<OffsetDateTime, CatalogError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000)
        .map_err(|e| CatalogError::Corrupt(format!("timestamp {us}: {e}")))
}

pub(crate) fn size_from(n: i64) -> Result<u64, CatalogError> {
    u64::try_from(n).map_err(|_| CatalogError::Corrupt(format!("negative file size {n}")))
}

const FILE_COLUMNS: &str = "p.name AS project, f.filename, r.version, f.kind, f.size, f.sha256, \
     f.requires_python, f.metadata_sha256, f.uploaded_us, r.yanked, r.yanked_reason, \
     p.status AS status, p.status_reason AS status_reason \
     FROM files f JOIN releases r ON r.id = f.release_id JOIN projects p ON p.id = r.project_id";

fn file_record(row: &SqliteRow) -> Result<FileRecord, CatalogError> {
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

fn project_status(row: &SqliteRow) -> Result<ProjectStatus, CatalogError> {
    let status: String = row.try_get("status")?;
    ProjectStatus::parse(&status)
        .ok_or_else(|| CatalogError::Corrupt(format!("unknown project status '{status}'")))
}

fn project_summary(row: &SqliteRow) -> Result<ProjectSummary, CatalogError> {
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
    tx: &mut SqliteConnection,
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
    tx: &mut SqliteConnection,
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
    tx: &mut SqliteConnection,
    file: &NewFile,
    project_id: i64,
    created: bool,
) -> Result<Option<AddOutcome>, CatalogError> {
    let Some(uploader) = &file.uploader else {
        return Ok(None);
    };
    let is_admin: Option<bool> = sqlx::query_scalar("SELECT is_admin FROM users WHERE id = $1")
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
/// transaction, so a status change cannot slip in between.
/// Whether the project has a release: a reserved project gets its first with its first upload,
/// which puts it on the root page.
async fn has_release(tx: &mut SqliteConnection, project_id: i64) -> Result<bool, CatalogError> {
    let found: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM releases WHERE project_id = $1 LIMIT 1")
            .bind(project_id)
            .fetch_optional(&mut *tx)
            .await?;
    Ok(found.is_some())
}

async fn check_status(
    tx: &mut SqliteConnection,
    project_id: i64,
) -> Result<Option<AddOutcome>, CatalogError> {
    let row = sqlx::query("SELECT status, status_reason FROM projects WHERE id = $1")
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
    tx: &mut SqliteConnection,
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
    .bind(browse::details_json(&release.details)?)
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
    tx: &mut SqliteConnection,
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

impl SqliteCatalog {
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
impl Catalog for SqliteCatalog {
    async fn add_file(
        &self,
        file: &NewFile,
        audit: &AuditEntry,
    ) -> Result<AddOutcome, CatalogError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
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
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
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
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
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

    async fn signal_changes(&self, _wake: &tokio::sync::Notify) {
        // SQLite has no cross-process notification: other processes' writes are found by
        // polling the change log.
    }

    async fn generation(&self) -> Result<i64, CatalogError> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM changes")
                .fetch_one(&self.pool)
                .await?,
        )
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
        // One read transaction, so one snapshot: a prune committed between reading the oldest
        // row and reading the rows cannot hide lost changes.
        let mut tx = self.pool.begin().await?;
        let oldest: Option<i64> = sqlx::query_scalar("SELECT MIN(seq) FROM changes")
            .fetch_one(&mut *tx)
            .await?;
        let rows: Vec<(i64, String, Option<String>)> = sqlx::query_as(
            "SELECT seq, scope, subject FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(seq)
        .bind(CHANGES_PER_READ + 1)
        .fetch_all(&mut *tx)
        .await?;
        let pruned_past_reader = oldest.is_some_and(|oldest| oldest > seq + 1);
        if pruned_past_reader || rows.len() as i64 > CHANGES_PER_READ {
            let newest: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM changes")
                .fetch_one(&mut *tx)
                .await?;
            return Ok(Changes {
                seq: newest,
                changes: vec![Change::Everything],
            });
        }
        tx.commit().await?;
        let newest = rows.last().map_or(seq, |(newest, _, _)| *newest);
        let changes = rows
            .into_iter()
            .map(|(_, scope, subject)| change_from_row(&scope, subject))
            .collect::<Result<_, _>>()?;
        Ok(Changes {
            seq: newest,
            changes,
        })
    }
}

pub(crate) fn change_from_row(
    scope: &str,
    subject: Option<String>,
) -> Result<Change, CatalogError> {
    match (scope, subject) {
        ("project", Some(name)) => Ok(Change::Project(name)),
        ("project-list", _) => Ok(Change::ProjectList),
        ("account", Some(name)) => Ok(Change::Account(name)),
        ("upstream-file", Some(sha256)) => Ok(Change::UpstreamFile(sha256)),
        ("everything", _) => Ok(Change::Everything),
        (scope, subject) => Err(CatalogError::Corrupt(format!(
            "change log row with scope '{scope}' and subject {subject:?}"
        ))),
    }
}

/// Appends `changes` to the change log inside the caller's transaction, and prunes old rows.
pub(crate) async fn record_changes(
    tx: &mut SqliteConnection,
    changes: &[Change],
) -> Result<(), CatalogError> {
    for change in changes {
        let (scope, subject) = match change {
            Change::Project(name) => ("project", Some(name.as_str())),
            Change::ProjectList => ("project-list", None),
            Change::Account(name) => ("account", Some(name.as_str())),
            Change::UpstreamFile(sha256) => ("upstream-file", Some(sha256.as_str())),
            Change::Everything => ("everything", None),
        };
        sqlx::query("INSERT INTO changes (scope, subject) VALUES ($1, $2)")
            .bind(scope)
            .bind(subject)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("DELETE FROM changes WHERE seq <= last_insert_rowid() - $1")
        .bind(CHANGES_KEPT)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh catalog in a temporary directory that lives as long as the returned guard.
    pub(crate) async fn open() -> (tempfile::TempDir, SqliteCatalog) {
        let dir = tempfile::tempdir().unwrap();
        let catalog = SqliteCatalog::open(&dir.path().join("catalog.sqlite3"))
            .await
            .unwrap();
        (dir, catalog)
    }

    crate::suite::catalog_suite!(open());

    #[tokio::test]
    async fn there_is_no_change_signal_so_readers_poll() {
        let (_dir, catalog) = open().await;
        let wake = tokio::sync::Notify::new();
        let returned = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            catalog.signal_changes(&wake),
        )
        .await;
        assert!(returned.is_ok(), "returns at once, leaving readers to poll");
    }

    async fn catalog() -> (tempfile::TempDir, SqliteCatalog) {
        open().await
    }

    fn status_audit(detail: &str) -> AuditEntry {
        AuditEntry {
            at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            actor: "cli".into(),
            action: "project.status".into(),
            subject: "shared-pkg".into(),
            address: None,
            detail: Some(detail.into()),
        }
    }

    #[tokio::test]
    async fn project_status_is_stored_with_its_audit_entry() {
        let (_dir, catalog) = catalog().await;
        let file = crate::suite::new_file("shared_pkg-0.1.0-py3-none-any.whl", "aa");
        catalog
            .add_file(&file, &crate::suite::audit("publish", "x"))
            .await
            .unwrap();
        let fresh = catalog.project("shared-pkg").await.unwrap().unwrap();
        assert_eq!(
            (fresh.status, fresh.status_reason),
            (ProjectStatus::Active, None)
        );
        let g = catalog.generation().await.unwrap();
        let audit = status_audit("archived: moved to courier");
        assert!(
            catalog
                .set_project_status(
                    "shared-pkg",
                    ProjectStatus::Active,
                    ProjectStatus::Archived,
                    Some("moved to courier"),
                    &audit
                )
                .await
                .unwrap()
        );
        assert!(catalog.generation().await.unwrap() > g);
        let listed = catalog.project_files("shared-pkg").await.unwrap().unwrap();
        assert_eq!(listed.project.status, ProjectStatus::Archived);
        assert_eq!(
            listed.project.status_reason.as_deref(),
            Some("moved to courier")
        );
        assert_eq!(catalog.projects().await.unwrap()[0], listed.project);
        assert_eq!(listed.files[0].project_status, ProjectStatus::Archived);
        let file = catalog.file(&file.filename).await.unwrap().unwrap();
        assert_eq!(
            (file.project_status, file.project_status_reason.as_deref()),
            (ProjectStatus::Archived, Some("moved to courier"))
        );
        assert_eq!(
            crate::Accounts::audit(&catalog, 10).await.unwrap().last(),
            Some(&audit)
        );

        catalog
            .set_project_status(
                "shared-pkg",
                ProjectStatus::Archived,
                ProjectStatus::Active,
                None,
                &status_audit("active"),
            )
            .await
            .unwrap();
        let back = catalog.project("shared-pkg").await.unwrap().unwrap();
        assert_eq!(
            (back.status, back.status_reason),
            (ProjectStatus::Active, None)
        );
    }

    #[tokio::test]
    async fn archived_and_quarantined_projects_take_no_new_files() {
        let (_dir, catalog) = catalog().await;
        crate::suite::publish(&catalog, "shared_pkg-0.1.0-py3-none-any.whl", "aa").await;
        let next = crate::suite::new_file("shared_pkg-0.2.0-py3-none-any.whl", "bb");
        let mut previous = ProjectStatus::Active;
        for status in [ProjectStatus::Archived, ProjectStatus::Quarantined] {
            assert!(
                catalog
                    .set_project_status(
                        "shared-pkg",
                        previous,
                        status,
                        Some("why"),
                        &status_audit("s")
                    )
                    .await
                    .unwrap()
            );
            previous = status;
            let g = catalog.generation().await.unwrap();
            assert_eq!(
                catalog
                    .add_file(&next, &crate::suite::audit("publish", "x"))
                    .await
                    .unwrap(),
                AddOutcome::StatusRefuses {
                    status,
                    reason: Some("why".into())
                }
            );
            assert_eq!(catalog.generation().await.unwrap(), g);
        }
        catalog
            .set_project_status(
                "shared-pkg",
                ProjectStatus::Quarantined,
                ProjectStatus::Deprecated,
                None,
                &status_audit("d"),
            )
            .await
            .unwrap();
        assert_eq!(
            catalog
                .add_file(&next, &crate::suite::audit("publish", "x"))
                .await
                .unwrap(),
            AddOutcome::Added { new_project: false }
        );
    }

    #[tokio::test]
    async fn unknown_project_status_change_writes_nothing() {
        let (_dir, catalog) = catalog().await;
        let g = catalog.generation().await.unwrap();
        assert!(
            !catalog
                .set_project_status(
                    "nope",
                    ProjectStatus::Active,
                    ProjectStatus::Quarantined,
                    None,
                    &status_audit("x")
                )
                .await
                .unwrap()
        );
        assert_eq!(catalog.generation().await.unwrap(), g);
        assert!(
            crate::Accounts::audit(&catalog, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn status_change_from_a_stale_status_writes_nothing() {
        let (_dir, catalog) = catalog().await;
        crate::suite::publish(&catalog, "shared_pkg-0.1.0-py3-none-any.whl", "aa").await;
        assert!(
            catalog
                .set_project_status(
                    "shared-pkg",
                    ProjectStatus::Active,
                    ProjectStatus::Quarantined,
                    Some("malware"),
                    &status_audit("q")
                )
                .await
                .unwrap()
        );
        let g = catalog.generation().await.unwrap();
        let audits = crate::Accounts::audit(&catalog, 10).await.unwrap().len();
        // A caller that read `active` before the quarantine must not lift it.
        assert!(
            !catalog
                .set_project_status(
                    "shared-pkg",
                    ProjectStatus::Active,
                    ProjectStatus::Active,
                    None,
                    &status_audit("a")
                )
                .await
                .unwrap()
        );
        let project = catalog.project("shared-pkg").await.unwrap().unwrap();
        assert_eq!(
            (project.status, project.status_reason.as_deref()),
            (ProjectStatus::Quarantined, Some("malware"))
        );
        assert_eq!(catalog.generation().await.unwrap(), g);
        assert_eq!(
            crate::Accounts::audit(&catalog, 10).await.unwrap().len(),
            audits
        );
    }

    #[tokio::test]
    async fn status_change_and_audit_entry_commit_together() {
        let (_dir, catalog) = catalog().await;
        crate::suite::publish(&catalog, "shared_pkg-0.1.0-py3-none-any.whl", "aa").await;
        // Make the audit insert fail: the status change must roll back with it.
        sqlx::query(
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log \
             BEGIN SELECT RAISE(ABORT, 'audit refused'); END",
        )
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
                    &status_audit("a")
                )
                .await
                .is_err()
        );
        let project = catalog.project("shared-pkg").await.unwrap().unwrap();
        assert_eq!(project.status, ProjectStatus::Active);
        assert_eq!(catalog.generation().await.unwrap(), g);
    }

    #[test]
    fn project_status_spellings_round_trip() {
        for status in ProjectStatus::ALL {
            assert_eq!(ProjectStatus::parse(status.as_str()), Some(status));
            assert_eq!(status.as_str().parse::<ProjectStatus>(), Ok(status));
        }
        assert_eq!(ProjectStatus::parse("Archived"), None);
        assert!(
            "gone"
                .parse::<ProjectStatus>()
                .unwrap_err()
                .contains("archived")
        );
        assert!(ProjectStatus::Deprecated.accepts_uploads());
        assert!(!ProjectStatus::Archived.accepts_uploads());
        assert!(ProjectStatus::Archived.serves_files());
        assert!(!ProjectStatus::Quarantined.serves_files());
    }

    #[tokio::test]
    async fn a_snapshot_reads_back_read_only_and_keeps_later_writes_out() {
        let (dir, catalog) = catalog().await;
        crate::suite::publish(&catalog, "Shared_Pkg-0.1.0-py3-none-any.whl", "aa").await;
        let copy = dir.path().join("copy.sqlite3");
        catalog.snapshot_to(&copy).await.unwrap();
        crate::suite::publish(&catalog, "Shared_Pkg-0.2.0-py3-none-any.whl", "bb").await;
        let snapshot = SqliteCatalog::open_read_only(&copy).await.unwrap();
        let names: Vec<String> = snapshot
            .stored_files()
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.filename)
            .collect();
        assert_eq!(names, ["Shared_Pkg-0.1.0-py3-none-any.whl"]);
        assert!(snapshot.generation().await.is_ok());
        snapshot.close().await;
        // Read-only: nothing beside the copy was created.
        assert!(!dir.path().join("copy.sqlite3-wal").exists());
        assert!(
            catalog.snapshot_to(&copy).await.is_err(),
            "never overwrites"
        );
    }

    #[tokio::test]
    async fn reopening_keeps_data_and_does_not_rerun_migrations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite3");
        let catalog = SqliteCatalog::open(&path).await.unwrap();
        crate::suite::publish(&catalog, "shared_pkg-0.1.0-py3-none-any.whl", "aa").await;
        catalog.close().await;
        let again = SqliteCatalog::open(&path).await.unwrap();
        assert_eq!(again.projects().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn files_from_before_distribution_keys_get_one_at_open() {
        let (_dir, catalog) = open().await;
        crate::suite::publish(&catalog, "shared_pkg-0.1.0-py3-none-any.whl", "aa").await;
        crate::suite::publish(&catalog, "shared_pkg-0.1.1-py3-none-any.whl", "bb").await;
        sqlx::query("UPDATE files SET dist_key = NULL")
            .execute(&catalog.pool)
            .await
            .unwrap();
        catalog.fill_dist_keys().await.unwrap();
        let keys: Vec<String> = sqlx::query_scalar("SELECT dist_key FROM files ORDER BY id")
            .fetch_all(&catalog.pool)
            .await
            .unwrap();
        assert_eq!(
            keys,
            [
                "shared-pkg-0.1--py3-none-any.whl",
                "shared-pkg-0.1.1--py3-none-any.whl"
            ]
        );
    }

    /// Writes a file row under a key of the form before migration 5, as an older pyindex did.
    async fn insert_with_old_key(catalog: &SqliteCatalog, filename: &str, old_key: &str) {
        crate::suite::publish(catalog, filename, filename).await;
        sqlx::query("UPDATE files SET dist_key = $1 WHERE filename = $2")
            .bind(old_key)
            .bind(filename)
            .execute(&catalog.pool)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn migration_5_rekeys_and_keeps_old_duplicates_listed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite3");
        let catalog = SqliteCatalog::open(&path).await.unwrap();
        // Two spellings of one distribution each, let in by the keys of schema version 4.
        let old = [
            ("demo-1.0-py3-none-any.whl", "demo-1.0--py3-none-any.whl"),
            (
                "demo-1.0.0-py3-none-any.whl",
                "demo-1.0.0--py3-none-any.whl",
            ),
            ("demo-2.0.tar.gz", "demo-2.0.tar.gz"),
            ("demo-2.0.zip", "demo-2.0.zip"),
        ];
        for (filename, old_key) in old {
            insert_with_old_key(&catalog, filename, old_key).await;
        }
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 5")
            .execute(&catalog.pool)
            .await
            .unwrap();
        catalog.close().await;

        let catalog = SqliteCatalog::open(&path).await.unwrap();
        let keys: Vec<String> = sqlx::query_scalar("SELECT dist_key FROM files ORDER BY id")
            .fetch_all(&catalog.pool)
            .await
            .unwrap();
        assert_eq!(
            keys,
            [
                "demo-1--py3-none-any.whl",
                "file:demo-1.0.0-py3-none-any.whl",
                "demo-2.sdist",
                "file:demo-2.0.zip",
            ]
        );
        let files = catalog.project_files("demo").await.unwrap().unwrap().files;
        assert_eq!(files.len(), 4, "every published file stays listed");
        let third = crate::suite::new_file("demo-1.0.0.0-py3-none-any.whl", "new");
        assert_eq!(
            catalog
                .add_file(&third, &crate::suite::audit("publish", "x"))
                .await
                .unwrap(),
            AddOutcome::Conflict {
                filename: "demo-1.0-py3-none-any.whl".into(),
                existing_sha256: "demo-1.0-py3-none-any.whl".into()
            }
        );
    }

    #[tokio::test]
    async fn opening_a_keyed_catalog_takes_no_write_lock() {
        let (_dir, catalog) = open().await;
        crate::suite::publish(&catalog, "shared_pkg-0.1.0-py3-none-any.whl", "aa").await;
        // Another writer holds the lock: when every file has its key, filling keys must not
        // ask for it (which would fail with "database is locked" after the busy timeout).
        let mut writer = catalog.pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("INSERT INTO changes (scope) VALUES ('everything')")
            .execute(&mut *writer)
            .await
            .unwrap();
        let filled = catalog.fill_dist_keys().await;
        assert!(filled.is_ok(), "{filled:?}");
        writer.rollback().await.unwrap();
    }
}
