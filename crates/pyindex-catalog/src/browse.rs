//! What the web pages read: counts, recent releases, search, a project's releases with their
//! metadata, and browser sessions. Every method is a fixed number of queries, whatever the size
//! of the project (a page never costs a query per file or per release).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{CatalogError, ProjectStatus, User, Yank};

/// Metadata of a release shown on its pages, beyond what [`crate::ReleaseMetadata`] keeps for
/// the index. Stored as one JSON object: it is only ever read whole, with its release.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReleaseDetails {
    /// `License` (free text).
    pub license: Option<String>,
    /// `License-Expression` (SPDX).
    pub license_expression: Option<String>,
    /// `Author`.
    pub author: Option<String>,
    /// `Author-email`.
    pub author_email: Option<String>,
    /// `Maintainer`.
    pub maintainer: Option<String>,
    /// `Maintainer-email`.
    pub maintainer_email: Option<String>,
    /// `Home-page`.
    pub home_page: Option<String>,
    /// `Download-URL`.
    pub download_url: Option<String>,
    /// `Project-URL` entries as (label, URL), in metadata order.
    pub project_urls: Vec<(String, String)>,
    /// `Keywords`, as written.
    pub keywords: Option<String>,
    /// `Classifier` entries.
    pub classifiers: Vec<String>,
}

/// How many of each thing the index holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Projects.
    pub projects: u64,
    /// Releases.
    pub releases: u64,
    /// Files.
    pub files: u64,
}

/// A release in a listing (recent releases).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseSummary {
    /// Normalized project name.
    pub project: String,
    /// The project's display name.
    pub display_name: String,
    /// The release's version.
    pub version: String,
    /// Its summary.
    pub summary: Option<String>,
    /// When it was created.
    pub created: OffsetDateTime,
}

/// What to search for; see [`Browse::search`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// The query as a normalized project name (exact and prefix matches).
    pub name: String,
    /// The query as free text, lower case (matched inside names and summaries).
    pub text: String,
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    /// Normalized name.
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// The project's status.
    pub status: ProjectStatus,
    /// The summary of its newest release.
    pub summary: Option<String>,
}

/// A page of search results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPage {
    /// How many projects match in all.
    pub total: u64,
    /// The results on this page.
    pub hits: Vec<SearchHit>,
}

/// A release with everything its pages show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRecord {
    /// Normalized version.
    pub version: String,
    /// Canonical version (the release key).
    pub canonical_version: String,
    /// Summary.
    pub summary: Option<String>,
    /// The content type of its description (the description itself, and its rendering, are
    /// read for one release at a time: see [`Browse::readme`]).
    pub description_content_type: Option<String>,
    /// Requires-Python.
    pub requires_python: Option<String>,
    /// PEP 508 requirements.
    pub requires_dist: Vec<String>,
    /// Yank state.
    pub yank: Yank,
    /// When it was created.
    pub created: OffsetDateTime,
    /// URLs, license, author...; `None` until known (see [`Browse::releases_without_details`]).
    pub details: Option<ReleaseDetails>,
}

/// A release whose details are not known yet, and where to read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingDetails {
    /// The release's row id.
    pub release_id: i64,
    /// SHA-256 of a stored metadata file of one of its files, if any has one.
    pub metadata_sha256: Option<String>,
}

/// A release's README as stored, and what to render it from when it is not rendered yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReadme {
    /// The release's row id.
    pub release_id: i64,
    /// The sanitized HTML; `None` for a release stored before READMEs were rendered.
    pub html: Option<String>,
    /// The description, read only when `html` is `None`.
    pub description: Option<String>,
    /// Its content type.
    pub content_type: Option<String>,
}

/// A browser session about to be stored.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Hex SHA-256 of the session id.
    pub id_hash: String,
    /// The account.
    pub user_id: i64,
    /// The session's anti-forgery token.
    pub csrf: String,
    /// When it was created.
    pub created: OffsetDateTime,
    /// When it stops working.
    pub expires: OffsetDateTime,
}

/// A stored browser session and its account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The account.
    pub user: User,
    /// The session's anti-forgery token.
    pub csrf: String,
    /// When it stops working.
    pub expires: OffsetDateTime,
}

/// The reads behind the web pages, and browser sessions.
#[async_trait]
pub trait Browse: Send + Sync {
    /// How many projects, releases and files there are.
    async fn counts(&self) -> Result<Counts, CatalogError>;

    /// The `limit` newest releases, newest first.
    async fn recent_releases(&self, limit: u32) -> Result<Vec<ReleaseSummary>, CatalogError>;

    /// Projects matching `query`: the exact name first, then names starting with it, then
    /// names or newest summaries containing it; by name within each rank. Plain SQL (`=`,
    /// `LIKE` with escaped wildcards, `LOWER`), so it means the same on every engine.
    async fn search(
        &self,
        query: &SearchQuery,
        limit: u32,
        offset: u64,
    ) -> Result<SearchPage, CatalogError>;

    /// Every release of `project` (normalized name), oldest first, in one query.
    async fn releases(&self, project: &str) -> Result<Vec<ReleaseRecord>, CatalogError>;

    /// Up to `limit` releases whose details are not known yet.
    async fn releases_without_details(
        &self,
        limit: u32,
    ) -> Result<Vec<MissingDetails>, CatalogError>;

    /// Records the details of a release (empty ones when its metadata cannot be read).
    async fn set_release_details(
        &self,
        release_id: i64,
        details: &ReleaseDetails,
    ) -> Result<(), CatalogError>;

    /// The README of the release `canonical_version` of `project` (normalized name).
    async fn readme(
        &self,
        project: &str,
        canonical_version: &str,
    ) -> Result<Option<StoredReadme>, CatalogError>;

    /// Up to `limit` releases whose README is not rendered yet, with their descriptions.
    async fn releases_without_readme(&self, limit: u32) -> Result<Vec<StoredReadme>, CatalogError>;

    /// Stores the rendered README of a release that has none yet (a concurrent render of the
    /// same release is harmless: the first one stays).
    async fn set_release_readme(&self, release_id: i64, html: &str) -> Result<(), CatalogError>;

    /// Stores a new browser session (and drops expired ones).
    async fn create_session(&self, session: &NewSession) -> Result<(), CatalogError>;

    /// The unexpired session whose id hashes to `id_hash`.
    async fn session(&self, id_hash: &str) -> Result<Option<SessionRecord>, CatalogError>;

    /// Deletes a session; returns whether it existed.
    async fn delete_session(&self, id_hash: &str) -> Result<bool, CatalogError>;

    /// Deletes every session of the account `user`; returns how many there were.
    async fn delete_sessions_of(&self, user: &str) -> Result<u64, CatalogError>;
}
