//! Moving a whole registry from one catalog to another, whatever their engines.
//!
//! [`Transfer::export`] reads everything a registry holds into a [`Dump`] of typed records, in
//! one read transaction (a consistent snapshot); [`Transfer::import`] writes a dump into an
//! empty catalog in one transaction, so a copy is all there or not there at all. Records name
//! what they refer to by natural keys (a project's normalized name, a user's name, a release's
//! canonical version), never by row ids, which each engine hands out itself: a dump read back
//! from the target equals the one written into it, which is how a copy is checked.
//!
//! Not copied: the change log (the target starts its own), browser sign-in sessions (short
//! lived: users sign in again) and the upstream proxy's cache (pages and cached files: a
//! cache, filled again on demand). The upstream blocks and the upstream fetch log are copied.
//!
//! Column values are copied as stored (times in microseconds since the Unix epoch, JSON
//! columns as their text), not through the domain types, so nothing is lost or re-normalized.

use async_trait::async_trait;

use crate::{Catalog, CatalogError, StoredFile};

/// A project (`projects`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRow {
    /// Normalized name (the key).
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// Creation time, microseconds.
    pub created_us: i64,
    /// PEP 792 status, as stored.
    pub status: String,
    /// The status's reason.
    pub status_reason: Option<String>,
    /// The newest release's summary.
    pub summary: Option<String>,
    /// The same, folded for searching.
    pub summary_folded: Option<String>,
}

/// A release (`releases`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRow {
    /// Its project's normalized name.
    pub project: String,
    /// Normalized version of its first upload.
    pub version: String,
    /// Canonical version (with `project`, the key).
    pub canonical_version: String,
    /// Summary.
    pub summary: Option<String>,
    /// Long description.
    pub description: Option<String>,
    /// Its content type.
    pub description_content_type: Option<String>,
    /// Requires-Python.
    pub requires_python: Option<String>,
    /// Requirements, a JSON array as stored.
    pub requires_dist: String,
    /// Whether it is yanked.
    pub yanked: bool,
    /// Why.
    pub yanked_reason: Option<String>,
    /// Creation time, microseconds.
    pub created_us: i64,
    /// URLs, license, author... a JSON object as stored.
    pub details: Option<String>,
    /// The rendered README (HTML), if rendered yet.
    pub readme_html: Option<String>,
}

/// A published file (`files`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    /// Its project's normalized name.
    pub project: String,
    /// Its release's canonical version.
    pub canonical_version: String,
    /// The filename (the key).
    pub filename: String,
    /// The distribution key.
    pub dist_key: String,
    /// `bdist_wheel` or `sdist`.
    pub kind: String,
    /// Size in bytes.
    pub size: i64,
    /// Hex SHA-256 (the blob key).
    pub sha256: String,
    /// Hex MD5.
    pub md5: String,
    /// Hex BLAKE2b-256.
    pub blake2_256: String,
    /// Requires-Python.
    pub requires_python: Option<String>,
    /// SHA-256 of the metadata file (its blob key), if served.
    pub metadata_sha256: Option<String>,
    /// Upload time, microseconds.
    pub uploaded_us: i64,
}

/// An account (`users`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// User name (the key).
    pub name: String,
    /// The password hash, as stored.
    pub password_hash: String,
    /// Admin flag.
    pub is_admin: bool,
    /// Creation time, microseconds.
    pub created_us: i64,
}

/// An API token (`tokens`): its hash, never a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// Public id (the key).
    pub public_id: String,
    /// SHA-256 of the whole token.
    pub secret_hash: String,
    /// Its account's name.
    pub user: String,
    /// Project scope, a JSON array as stored; `None`: every project.
    pub projects: Option<String>,
    /// Read-only flag.
    pub read_only: bool,
    /// Description.
    pub description: Option<String>,
    /// Creation time, microseconds.
    pub created_us: i64,
    /// Expiry, microseconds.
    pub expires_us: Option<i64>,
    /// Revocation time, microseconds.
    pub revoked_us: Option<i64>,
}

/// A project role (`project_roles`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRow {
    /// Project's normalized name.
    pub project: String,
    /// User name.
    pub user: String,
    /// `owner` or `maintainer`.
    pub role: String,
}

/// An audit log entry (`audit_log`), in log order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// When, microseconds.
    pub at_us: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// On what.
    pub subject: String,
    /// From where.
    pub address: Option<String>,
    /// Details.
    pub detail: Option<String>,
}

/// An upstream block (`upstream_blocks`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRow {
    /// Normalized name.
    pub project: String,
    /// Canonical version, `''` for the whole project.
    pub version_key: String,
    /// The version as blocked.
    pub version: Option<String>,
    /// Why.
    pub reason: String,
    /// When, microseconds.
    pub created_us: i64,
    /// By whom.
    pub created_by: String,
}

/// An entry of the upstream fetch log (`upstream_fetches`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRow {
    /// Normalized name.
    pub project: String,
    /// Filename.
    pub filename: String,
    /// SHA-256.
    pub sha256: String,
    /// Version, if the filename parses.
    pub version: Option<String>,
    /// The upstream's upload time, microseconds.
    pub upload_time_us: Option<i64>,
    /// First fetch, microseconds.
    pub first_fetched_us: i64,
    /// Last fetch, microseconds.
    pub last_fetched_us: i64,
    /// Number of upstream downloads.
    pub fetches: i64,
    /// Last served, microseconds.
    pub last_served_us: i64,
}

/// Everything a registry's catalog holds that a move copies (see the module documentation),
/// each list in a fixed order (see [`Dump::sort`]) so that two dumps of one registry are equal.
/// It is held in memory: the catalog's metadata only, never a file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dump {
    /// Projects (reservations are projects without files).
    pub projects: Vec<ProjectRow>,
    /// Releases.
    pub releases: Vec<ReleaseRow>,
    /// Files.
    pub files: Vec<FileRow>,
    /// Accounts.
    pub users: Vec<UserRow>,
    /// API tokens.
    pub tokens: Vec<TokenRow>,
    /// Project roles.
    pub roles: Vec<RoleRow>,
    /// The audit log, oldest first.
    pub audit: Vec<AuditRow>,
    /// Upstream blocks.
    pub upstream_blocks: Vec<BlockRow>,
    /// The upstream fetch log.
    pub upstream_fetches: Vec<FetchRow>,
}

impl Dump {
    /// Puts the lists without a creation order (roles, upstream blocks, the fetch log) in byte
    /// order of their keys, the same on every engine whatever its collations. The others stay
    /// in creation order (the order of their row ids), which an import keeps, since pages list
    /// releases, tokens and the audit log in that order.
    pub fn sort(&mut self) {
        self.roles
            .sort_by(|a, b| (&a.project, &a.user).cmp(&(&b.project, &b.user)));
        self.upstream_blocks
            .sort_by(|a, b| (&a.project, &a.version_key).cmp(&(&b.project, &b.version_key)));
        self.upstream_fetches.sort_by(|a, b| {
            (&a.project, &a.filename, &a.sha256).cmp(&(&b.project, &b.filename, &b.sha256))
        });
    }

    /// Whether it holds nothing at all.
    pub fn is_empty(&self) -> bool {
        self.counts().iter().all(|&(_, n)| n == 0)
    }

    /// How many records of each kind, named for reports.
    pub fn counts(&self) -> [(&'static str, usize); 9] {
        [
            ("projects", self.projects.len()),
            ("releases", self.releases.len()),
            ("files", self.files.len()),
            ("accounts", self.users.len()),
            ("tokens", self.tokens.len()),
            ("project roles", self.roles.len()),
            ("audit log entries", self.audit.len()),
            ("upstream blocks", self.upstream_blocks.len()),
            ("upstream fetch log entries", self.upstream_fetches.len()),
        ]
    }

    /// The kinds of record in which `other` differs from this dump (empty if equal).
    pub fn differences(&self, other: &Dump) -> Vec<&'static str> {
        let same = [
            self.projects == other.projects,
            self.releases == other.releases,
            self.files == other.files,
            self.users == other.users,
            self.tokens == other.tokens,
            self.roles == other.roles,
            self.audit == other.audit,
            self.upstream_blocks == other.upstream_blocks,
            self.upstream_fetches == other.upstream_fetches,
        ];
        self.counts()
            .iter()
            .zip(same)
            .filter(|(_, same)| !same)
            .map(|((name, _), _)| *name)
            .collect()
    }

    /// The blobs its files reference, as [`Catalog::stored_files`] lists them (sorted by
    /// filename).
    pub fn stored_files(&self) -> Result<Vec<StoredFile>, CatalogError> {
        let mut files: Vec<&FileRow> = self.files.iter().collect();
        files.sort_by(|a, b| a.filename.cmp(&b.filename));
        files
            .into_iter()
            .map(|file| {
                Ok(StoredFile {
                    filename: file.filename.clone(),
                    sha256: file.sha256.clone(),
                    size: crate::sqlite::size_from(file.size)?,
                    metadata_sha256: file.metadata_sha256.clone(),
                })
            })
            .collect()
    }
}

/// Export and import of a whole registry (see the module documentation).
#[async_trait]
pub trait Transfer: Catalog {
    /// Everything this catalog holds, read in one transaction, in the order [`Dump::sort`]
    /// describes.
    async fn export(&self) -> Result<Dump, CatalogError>;

    /// Writes `dump` into this catalog in one transaction, if the catalog holds nothing yet
    /// (no project, account, audit entry, upstream block or fetch log entry): returns `false`,
    /// writing nothing, if it holds something. Records a change that drops every cache of a
    /// process serving this catalog.
    async fn import(&self, dump: &Dump) -> Result<bool, CatalogError>;
}

// The rows as both engines read them (column order of each engine's export query), and their
// records.

pub(crate) type ProjectTuple = (
    String,
    String,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);
pub(crate) type ReleaseTuple = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    bool,
    Option<String>,
    i64,
    Option<String>,
    Option<String>,
);
pub(crate) type FileTuple = (
    String,
    String,
    String,
    String,
    String,
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
);
pub(crate) type UserTuple = (String, String, bool, i64);
pub(crate) type TokenTuple = (
    String,
    String,
    String,
    Option<String>,
    bool,
    Option<String>,
    i64,
    Option<i64>,
    Option<i64>,
);
pub(crate) type RoleTuple = (String, String, String);
pub(crate) type AuditTuple = (i64, String, String, String, Option<String>, Option<String>);
pub(crate) type BlockTuple = (String, String, Option<String>, String, i64, String);
pub(crate) type FetchTuple = (
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
    i64,
    i64,
    i64,
    i64,
);

impl From<ProjectTuple> for ProjectRow {
    fn from(t: ProjectTuple) -> ProjectRow {
        let (name, display_name, created_us, status, status_reason, summary, summary_folded) = t;
        ProjectRow {
            name,
            display_name,
            created_us,
            status,
            status_reason,
            summary,
            summary_folded,
        }
    }
}

impl From<ReleaseTuple> for ReleaseRow {
    fn from(t: ReleaseTuple) -> ReleaseRow {
        ReleaseRow {
            project: t.0,
            version: t.1,
            canonical_version: t.2,
            summary: t.3,
            description: t.4,
            description_content_type: t.5,
            requires_python: t.6,
            requires_dist: t.7,
            yanked: t.8,
            yanked_reason: t.9,
            created_us: t.10,
            details: t.11,
            readme_html: t.12,
        }
    }
}

impl From<FileTuple> for FileRow {
    fn from(t: FileTuple) -> FileRow {
        FileRow {
            project: t.0,
            canonical_version: t.1,
            filename: t.2,
            dist_key: t.3,
            kind: t.4,
            size: t.5,
            sha256: t.6,
            md5: t.7,
            blake2_256: t.8,
            requires_python: t.9,
            metadata_sha256: t.10,
            uploaded_us: t.11,
        }
    }
}

impl From<UserTuple> for UserRow {
    fn from((name, password_hash, is_admin, created_us): UserTuple) -> UserRow {
        UserRow {
            name,
            password_hash,
            is_admin,
            created_us,
        }
    }
}

impl From<TokenTuple> for TokenRow {
    fn from(t: TokenTuple) -> TokenRow {
        TokenRow {
            public_id: t.0,
            secret_hash: t.1,
            user: t.2,
            projects: t.3,
            read_only: t.4,
            description: t.5,
            created_us: t.6,
            expires_us: t.7,
            revoked_us: t.8,
        }
    }
}

impl From<RoleTuple> for RoleRow {
    fn from((project, user, role): RoleTuple) -> RoleRow {
        RoleRow {
            project,
            user,
            role,
        }
    }
}

impl From<AuditTuple> for AuditRow {
    fn from((at_us, actor, action, subject, address, detail): AuditTuple) -> AuditRow {
        AuditRow {
            at_us,
            actor,
            action,
            subject,
            address,
            detail,
        }
    }
}

impl From<BlockTuple> for BlockRow {
    fn from(
        (project, version_key, version, reason, created_us, created_by): BlockTuple,
    ) -> BlockRow {
        BlockRow {
            project,
            version_key,
            version,
            reason,
            created_us,
            created_by,
        }
    }
}

impl From<FetchTuple> for FetchRow {
    fn from(t: FetchTuple) -> FetchRow {
        FetchRow {
            project: t.0,
            filename: t.1,
            sha256: t.2,
            version: t.3,
            upload_time_us: t.4,
            first_fetched_us: t.5,
            last_fetched_us: t.6,
            fetches: t.7,
            last_served_us: t.8,
        }
    }
}

/// Looks up the id a record refers to by its natural key, or says which reference is dangling.
pub(crate) fn id_of<K: std::hash::Hash + Eq + std::fmt::Debug>(
    ids: &std::collections::HashMap<K, i64>,
    key: K,
    what: &str,
) -> Result<i64, CatalogError> {
    ids.get(&key)
        .copied()
        .ok_or_else(|| CatalogError::Corrupt(format!("the dump's {what} {key:?} does not exist")))
}

/// The export queries, the same on both engines: standard SQL over the same schema. Each
/// engine runs them in its own read transaction.
pub(crate) mod queries {
    /// Projects in creation order.
    pub const PROJECTS: &str = "SELECT name, display_name, created_us, status, status_reason, \
         summary, summary_folded FROM projects ORDER BY id";
    /// Releases in creation order.
    pub const RELEASES: &str = "SELECT p.name, r.version, r.canonical_version, r.summary, \
         r.description, r.description_content_type, r.requires_python, r.requires_dist, \
         r.yanked, r.yanked_reason, r.created_us, r.details, r.readme_html \
         FROM releases r JOIN projects p ON p.id = r.project_id ORDER BY r.id";
    /// Files in upload order.
    pub const FILES: &str = "SELECT p.name, r.canonical_version, f.filename, f.dist_key, \
         f.kind, f.size, f.sha256, f.md5, f.blake2_256, f.requires_python, f.metadata_sha256, \
         f.uploaded_us FROM files f JOIN releases r ON r.id = f.release_id \
         JOIN projects p ON p.id = r.project_id ORDER BY f.id";
    /// Accounts in creation order.
    pub const USERS: &str =
        "SELECT name, password_hash, is_admin, created_us FROM users ORDER BY id";
    /// Tokens in creation order.
    pub const TOKENS: &str = "SELECT t.public_id, t.secret_hash, u.name, t.projects, \
         t.read_only, t.description, t.created_us, t.expires_us, t.revoked_us \
         FROM tokens t JOIN users u ON u.id = t.user_id ORDER BY t.id";
    /// Roles (sorted again by [`crate::Dump::sort`]).
    pub const ROLES: &str = "SELECT p.name, u.name, pr.role FROM project_roles pr \
         JOIN projects p ON p.id = pr.project_id JOIN users u ON u.id = pr.user_id";
    /// The audit log, oldest first.
    pub const AUDIT: &str =
        "SELECT at_us, actor, action, subject, address, detail FROM audit_log ORDER BY id";
    /// Upstream blocks (sorted by [`crate::Dump::sort`]).
    pub const BLOCKS: &str = "SELECT project, version_key, version, reason, created_us, \
         created_by FROM upstream_blocks";
    /// The fetch log (sorted by [`crate::Dump::sort`]).
    pub const FETCHES: &str = "SELECT project, filename, sha256, version, upload_time_us, \
         first_fetched_us, last_fetched_us, fetches, last_served_us FROM upstream_fetches";
    /// Whether the catalog holds anything a move copies (or that would mix with a copy).
    pub const HOLDS_ANYTHING: &str = "SELECT EXISTS (SELECT 1 FROM projects) \
         OR EXISTS (SELECT 1 FROM users) OR EXISTS (SELECT 1 FROM audit_log) \
         OR EXISTS (SELECT 1 FROM upstream_blocks) OR EXISTS (SELECT 1 FROM upstream_fetches)";
}

/// Reads a whole [`Dump`] through `$conn` (a connection in a read transaction of either
/// engine): the export queries are standard SQL over the same schema, so one body serves both.
macro_rules! export_dump {
    ($conn:expr) => {{
        use $crate::transfer::{queries, *};
        let conn = $conn;
        let mut dump = Dump {
            projects: rows::<ProjectTuple, ProjectRow>(
                sqlx::query_as(queries::PROJECTS)
                    .fetch_all(&mut *conn)
                    .await?,
            ),
            releases: rows::<ReleaseTuple, ReleaseRow>(
                sqlx::query_as(queries::RELEASES)
                    .fetch_all(&mut *conn)
                    .await?,
            ),
            files: rows::<FileTuple, FileRow>(
                sqlx::query_as(queries::FILES).fetch_all(&mut *conn).await?,
            ),
            users: rows::<UserTuple, UserRow>(
                sqlx::query_as(queries::USERS).fetch_all(&mut *conn).await?,
            ),
            tokens: rows::<TokenTuple, TokenRow>(
                sqlx::query_as(queries::TOKENS)
                    .fetch_all(&mut *conn)
                    .await?,
            ),
            roles: rows::<RoleTuple, RoleRow>(
                sqlx::query_as(queries::ROLES).fetch_all(&mut *conn).await?,
            ),
            audit: rows::<AuditTuple, AuditRow>(
                sqlx::query_as(queries::AUDIT).fetch_all(&mut *conn).await?,
            ),
            upstream_blocks: rows::<BlockTuple, BlockRow>(
                sqlx::query_as(queries::BLOCKS)
                    .fetch_all(&mut *conn)
                    .await?,
            ),
            upstream_fetches: rows::<FetchTuple, FetchRow>(
                sqlx::query_as(queries::FETCHES)
                    .fetch_all(&mut *conn)
                    .await?,
            ),
        };
        dump.sort();
        dump
    }};
}
pub(crate) use export_dump;

/// Converts fetched tuples into records.
pub(crate) fn rows<T, R: From<T>>(tuples: Vec<T>) -> Vec<R> {
    tuples.into_iter().map(R::from).collect()
}

/// Writes `$dump` through `$tx` (a write transaction of either engine, on an empty catalog),
/// in creation order, mapping natural keys to the ids this catalog hands out.
macro_rules! import_dump {
    ($tx:expr, $dump:expr) => {{
        use std::collections::HashMap;
        use $crate::transfer::id_of;
        let tx = $tx;
        let dump: &$crate::transfer::Dump = $dump;
        let mut projects: HashMap<&str, i64> = HashMap::new();
        for p in &dump.projects {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO projects (name, display_name, created_us, status, status_reason, \
                 summary, summary_folded) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(&p.name)
            .bind(&p.display_name)
            .bind(p.created_us)
            .bind(&p.status)
            .bind(&p.status_reason)
            .bind(&p.summary)
            .bind(&p.summary_folded)
            .fetch_one(&mut *tx)
            .await?;
            projects.insert(&p.name, id);
        }
        let mut releases: HashMap<(&str, &str), i64> = HashMap::new();
        for r in &dump.releases {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO releases (project_id, version, canonical_version, summary, \
                 description, description_content_type, requires_python, requires_dist, yanked, \
                 yanked_reason, created_us, details, readme_html) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
            )
            .bind(id_of(&projects, r.project.as_str(), "project")?)
            .bind(&r.version)
            .bind(&r.canonical_version)
            .bind(&r.summary)
            .bind(&r.description)
            .bind(&r.description_content_type)
            .bind(&r.requires_python)
            .bind(&r.requires_dist)
            .bind(r.yanked)
            .bind(&r.yanked_reason)
            .bind(r.created_us)
            .bind(&r.details)
            .bind(&r.readme_html)
            .fetch_one(&mut *tx)
            .await?;
            releases.insert((&r.project, &r.canonical_version), id);
        }
        for f in &dump.files {
            let release = (f.project.as_str(), f.canonical_version.as_str());
            sqlx::query(
                "INSERT INTO files (release_id, filename, dist_key, kind, size, sha256, md5, \
                 blake2_256, requires_python, metadata_sha256, uploaded_us) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(id_of(&releases, release, "release")?)
            .bind(&f.filename)
            .bind(&f.dist_key)
            .bind(&f.kind)
            .bind(f.size)
            .bind(&f.sha256)
            .bind(&f.md5)
            .bind(&f.blake2_256)
            .bind(&f.requires_python)
            .bind(&f.metadata_sha256)
            .bind(f.uploaded_us)
            .execute(&mut *tx)
            .await?;
        }
        let mut users: HashMap<&str, i64> = HashMap::new();
        for u in &dump.users {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO users (name, password_hash, is_admin, created_us) \
                 VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(&u.name)
            .bind(&u.password_hash)
            .bind(u.is_admin)
            .bind(u.created_us)
            .fetch_one(&mut *tx)
            .await?;
            users.insert(&u.name, id);
        }
        for t in &dump.tokens {
            sqlx::query(
                "INSERT INTO tokens (public_id, secret_hash, user_id, projects, read_only, \
                 description, created_us, expires_us, revoked_us) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&t.public_id)
            .bind(&t.secret_hash)
            .bind(id_of(&users, t.user.as_str(), "account")?)
            .bind(&t.projects)
            .bind(t.read_only)
            .bind(&t.description)
            .bind(t.created_us)
            .bind(t.expires_us)
            .bind(t.revoked_us)
            .execute(&mut *tx)
            .await?;
        }
        for r in &dump.roles {
            sqlx::query(
                "INSERT INTO project_roles (project_id, user_id, role) VALUES ($1, $2, $3)",
            )
            .bind(id_of(&projects, r.project.as_str(), "project")?)
            .bind(id_of(&users, r.user.as_str(), "account")?)
            .bind(&r.role)
            .execute(&mut *tx)
            .await?;
        }
        for a in &dump.audit {
            sqlx::query(
                "INSERT INTO audit_log (at_us, actor, action, subject, address, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(a.at_us)
            .bind(&a.actor)
            .bind(&a.action)
            .bind(&a.subject)
            .bind(&a.address)
            .bind(&a.detail)
            .execute(&mut *tx)
            .await?;
        }
        for b in &dump.upstream_blocks {
            sqlx::query(
                "INSERT INTO upstream_blocks (project, version_key, version, reason, created_us, \
                 created_by) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&b.project)
            .bind(&b.version_key)
            .bind(&b.version)
            .bind(&b.reason)
            .bind(b.created_us)
            .bind(&b.created_by)
            .execute(&mut *tx)
            .await?;
        }
        for f in &dump.upstream_fetches {
            sqlx::query(
                "INSERT INTO upstream_fetches (project, filename, sha256, version, upload_time_us, \
                 first_fetched_us, last_fetched_us, fetches, last_served_us) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&f.project)
            .bind(&f.filename)
            .bind(&f.sha256)
            .bind(&f.version)
            .bind(f.upload_time_us)
            .bind(f.first_fetched_us)
            .bind(f.last_fetched_us)
            .bind(f.fetches)
            .bind(f.last_served_us)
            .execute(&mut *tx)
            .await?;
        }
    }};
}
pub(crate) use import_dump;

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::suite::{audit, new_file};
    use crate::{
        Accounts, AddOutcome, Browse, NewToken, ProjectStatus, ReleaseDetails, Role, UpstreamBlock,
        UpstreamFetch, UpstreamIndex, Yank,
    };

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(seconds).unwrap()
    }

    /// Writes one of everything a move copies, through the engine's own traits.
    async fn populate<C: Transfer + Accounts + UpstreamIndex + Browse>(c: &C) {
        let mut file = new_file("Shared_Pkg-0.1.0-py3-none-any.whl", "aa");
        file.release.description = Some("# Title\nbody".into());
        file.release.description_content_type = Some("text/markdown".into());
        file.release.readme_html = Some("<h1>Title</h1><p>body</p>".into());
        file.release.details = ReleaseDetails {
            license: Some("MIT".into()),
            project_urls: vec![("Source".into(), "https://example.invalid/src".into())],
            classifiers: vec!["Programming Language :: Python".into()],
            ..ReleaseDetails::default()
        };
        assert!(
            c.add_user("alice", "$argon2id$hash", true, &audit("user.add", "alice"))
                .await
                .unwrap()
        );
        assert!(
            c.add_user("bob", "{SHA}x", false, &audit("user.add", "bob"))
                .await
                .unwrap()
        );
        let alice = c.user("alice").await.unwrap().unwrap().id;
        file.uploader = Some(crate::Uploader { user_id: alice });
        let outcome = c
            .add_file(&file, &audit("publish", &file.filename))
            .await
            .unwrap();
        assert!(matches!(outcome, AddOutcome::Added { .. }), "{outcome:?}");
        crate::suite::publish(c, "shared_pkg-0.2.tar.gz", "bb").await;
        crate::suite::publish(c, "other-1.0-py3-none-any.whl", "cc").await;
        c.set_yank(
            "shared-pkg",
            "0.2",
            Yank::Yanked(Some("broken".into())),
            &audit("yank", "x"),
        )
        .await
        .unwrap();
        let status = ProjectStatus::Archived;
        let reason = Some("moved");
        assert!(
            c.set_project_status(
                "other",
                ProjectStatus::Active,
                status,
                reason,
                &audit("status", "other")
            )
            .await
            .unwrap()
        );
        assert!(
            c.reserve_project(
                "private-one",
                "Private_One",
                &audit("reserve", "private-one")
            )
            .await
            .unwrap()
        );
        assert!(
            c.set_role(
                "shared-pkg",
                "bob",
                Some(Role::Maintainer),
                &audit("role", "bob")
            )
            .await
            .unwrap()
        );
        for (public_id, expires) in [("tok1", None), ("tok2", Some(at(1_900_000_000)))] {
            let token = NewToken {
                public_id: public_id.into(),
                secret_hash: format!("hash-of-{public_id}"),
                user_id: alice,
                projects: Some(vec!["shared-pkg".into()]),
                read_only: expires.is_some(),
                description: Some("CI".into()),
                created: at(1_700_000_100),
                expires,
            };
            let id = c
                .add_token(&token, &audit("token.create", public_id))
                .await
                .unwrap();
            if expires.is_some() {
                assert!(
                    c.revoke_token(id, None, &audit("token.revoke", public_id))
                        .await
                        .unwrap()
                );
            }
        }
        let block = UpstreamBlock {
            project: "evil".into(),
            version: Some("1.0".into()),
            version_key: "1".into(),
            reason: "compromised".into(),
            created: at(1_700_000_200),
            created_by: "cli".into(),
        };
        c.add_upstream_block(&block, &audit("upstream.block", "evil"))
            .await
            .unwrap();
        let fetch = UpstreamFetch {
            project: "requests".into(),
            version: Some("2.0".into()),
            filename: "requests-2.0-py3-none-any.whl".into(),
            sha256: "dd".into(),
            upload_time: Some(at(1_600_000_000)),
            first_fetched: at(1_700_000_300),
            last_fetched: at(1_700_000_300),
            fetches: 1,
            last_served: at(1_700_000_300),
        };
        c.record_upstream_fetch(&fetch).await.unwrap();
    }

    /// Copies `source` into the empty `target` and checks that everything arrived, read both
    /// as a dump and through the catalog's own reads.
    async fn copies<S, T>(source: &S, target: &T)
    where
        S: Transfer + Accounts + UpstreamIndex + Browse,
        T: Transfer + Accounts + UpstreamIndex + Browse,
    {
        let dump = source.export().await.unwrap();
        assert_eq!(dump.projects.len(), 3);
        assert_eq!(dump.files.len(), 3);
        assert!(!dump.is_empty());
        assert!(target.export().await.unwrap().is_empty());
        let before = target.generation().await.unwrap();
        assert!(target.import(&dump).await.unwrap());
        assert!(
            target.generation().await.unwrap() > before,
            "the import records a change"
        );
        let copy = target.export().await.unwrap();
        assert_eq!(copy, dump);
        assert!(dump.differences(&copy).is_empty());
        // The target serves what the source did.
        for project in ["shared-pkg", "other", "private-one"] {
            assert_eq!(
                target.project_files(project).await.unwrap(),
                source.project_files(project).await.unwrap(),
            );
        }
        assert_eq!(
            target.stored_files().await.unwrap(),
            source.stored_files().await.unwrap()
        );
        assert_eq!(
            dump.stored_files().unwrap(),
            source.stored_files().await.unwrap()
        );
        let user = target.user("alice").await.unwrap().unwrap();
        assert_eq!(user.password_hash, "$argon2id$hash");
        assert!(user.is_admin);
        let token = target.token("tok1").await.unwrap().unwrap();
        assert_eq!(token.user_name, "alice");
        assert!(
            target
                .token("tok2")
                .await
                .unwrap()
                .unwrap()
                .revoked
                .is_some()
        );
        assert_eq!(
            target.roles("shared-pkg").await.unwrap(),
            source.roles("shared-pkg").await.unwrap()
        );
        assert_eq!(
            target.audit(100).await.unwrap(),
            source.audit(100).await.unwrap()
        );
        assert_eq!(
            target
                .readme("shared-pkg", "0.1")
                .await
                .unwrap()
                .map(|r| r.html),
            Some(Some("<h1>Title</h1><p>body</p>".to_owned())),
        );
        assert_eq!(
            target.upstream_blocks(None).await.unwrap(),
            source.upstream_blocks(None).await.unwrap()
        );
        assert_eq!(
            target.upstream_fetches("requests").await.unwrap(),
            source.upstream_fetches("requests").await.unwrap()
        );
        // A second import finds the catalog in use and writes nothing.
        assert!(!target.import(&dump).await.unwrap());
        assert_eq!(target.export().await.unwrap(), dump);
    }

    #[tokio::test]
    async fn sqlite_to_sqlite_copies_everything_once() {
        let (_a, source) = crate::sqlite::tests::open().await;
        let (_b, target) = crate::sqlite::tests::open().await;
        populate(&source).await;
        copies(&source, &target).await;
    }

    #[tokio::test]
    async fn a_catalog_holding_anything_refuses_an_import() {
        let (_a, source) = crate::sqlite::tests::open().await;
        populate(&source).await;
        let dump = source.export().await.unwrap();
        let (_b, target) = crate::sqlite::tests::open().await;
        target
            .reserve_project("x", "x", &audit("reserve", "x"))
            .await
            .unwrap();
        assert!(!target.import(&dump).await.unwrap());
        let (_c, accounts_only) = crate::sqlite::tests::open().await;
        accounts_only
            .add_user("u", "h", false, &audit("user.add", "u"))
            .await
            .unwrap();
        assert!(!accounts_only.import(&dump).await.unwrap());
        assert_eq!(accounts_only.export().await.unwrap().projects, []);
    }

    #[tokio::test]
    async fn sqlite_to_postgres_and_back() {
        let Some((_schema, pg)) = crate::postgres::tests::open().await else {
            return;
        };
        let (_a, source) = crate::sqlite::tests::open().await;
        populate(&source).await;
        copies(&source, &pg).await;
        let (_b, back) = crate::sqlite::tests::open().await;
        copies(&pg, &back).await;
        assert_eq!(back.export().await.unwrap(), source.export().await.unwrap());
    }

    #[tokio::test]
    async fn postgres_to_postgres() {
        let Some((_s1, source)) = crate::postgres::tests::open().await else {
            return;
        };
        let Some((_s2, target)) = crate::postgres::tests::open().await else {
            return;
        };
        populate(&source).await;
        copies(&source, &target).await;
    }
}
