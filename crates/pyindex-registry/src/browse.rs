//! What the web pages read: the home page's counts and recent releases, search, and a project's
//! releases with their files, and its READMEs. Access (the `all` mode) is checked by the caller,
//! as for every read; these functions only gather data, each in a fixed number of catalog
//! queries.
//!
//! A README is rendered (Markdown to sanitized HTML, see [`pyindex_packaging::readme`]) once,
//! when its release is published, and stored with the release; releases stored before that get
//! theirs once, in the background at start-up or at the first view of their page.

use std::collections::HashMap;

use futures::StreamExt;
use pyindex_catalog::{
    Counts, FileRecord, ProjectSummary, ReleaseDetails, ReleaseRecord, ReleaseSummary, SearchPage,
    SearchQuery, StoredReadme,
};
use pyindex_packaging::metadata::CoreMetadata;
use pyindex_packaging::readme::render_description;
use pyindex_packaging::{normalize, parse_version};
use pyindex_storage::{BlobContent, BlobKey};

use crate::{Registry, RegistryError};

/// Search results per page.
pub const SEARCH_PAGE_SIZE: u32 = 20;
/// The deepest search page served (deeper pages are refused rather than scanned).
pub const MAX_SEARCH_PAGE: u32 = 500;
/// The longest search query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// Largest metadata file read when filling in release details.
const MAX_METADATA_BYTES: u64 = 16 * 1024 * 1024;
/// Releases whose details are filled per catalog query.
const FILL_BATCH: u32 = 200;
/// Releases whose READMEs are rendered per catalog query (each query holds their descriptions,
/// which may be large, in memory).
const README_BATCH: u32 = 16;

/// The home page's data.
#[derive(Debug, Clone)]
pub struct Overview {
    /// How many projects, releases and files.
    pub counts: Counts,
    /// The newest releases, newest first.
    pub recent: Vec<ReleaseSummary>,
}

/// A release with its files.
#[derive(Debug, Clone)]
pub struct ReleaseFiles {
    /// The release.
    pub release: ReleaseRecord,
    /// Its files, sorted by filename (none for a quarantined project).
    pub files: Vec<FileRecord>,
}

/// Everything a project's pages show.
#[derive(Debug, Clone)]
pub struct ProjectView {
    /// The project.
    pub project: ProjectSummary,
    /// Its releases, newest version first.
    pub releases: Vec<ReleaseFiles>,
    /// The index in `releases` of the release shown by default (see [`latest_index`]).
    pub latest: Option<usize>,
}

impl ProjectView {
    /// The release shown by default.
    pub fn latest(&self) -> Option<&ReleaseFiles> {
        self.latest.map(|i| &self.releases[i])
    }

    /// The release whose version is `version` (any spelling of it).
    pub fn release(&self, version: &str) -> Option<&ReleaseFiles> {
        let wanted = parse_version(version).ok()?;
        self.releases
            .iter()
            .find(|r| parse_version(&r.release.version).is_ok_and(|v| v == wanted))
    }
}

impl Registry {
    /// Counts and the `recent` newest releases.
    pub async fn overview(&self, recent: u32) -> Result<Overview, RegistryError> {
        Ok(Overview {
            counts: self.browse.counts().await?,
            recent: self.browse.recent_releases(recent).await?,
        })
    }

    /// Page `page` (from 1) of the projects matching `query` (see
    /// [`pyindex_catalog::Browse::search`]); an empty query lists every project.
    pub async fn search(&self, query: &str, page: u32) -> Result<SearchPage, RegistryError> {
        let query = query.trim();
        if query.chars().count() > MAX_QUERY_CHARS {
            return Err(RegistryError::bad_request(format!(
                "The search is too long: use at most {MAX_QUERY_CHARS} characters."
            )));
        }
        if !(1..=MAX_SEARCH_PAGE).contains(&page) {
            return Err(RegistryError::bad_request(format!(
                "There is no result page {page}: pages run from 1 to {MAX_SEARCH_PAGE}."
            )));
        }
        let search = SearchQuery {
            name: normalize(query),
            text: query.to_lowercase(),
        };
        let offset = u64::from(page - 1) * u64::from(SEARCH_PAGE_SIZE);
        Ok(self
            .browse
            .search(&search, SEARCH_PAGE_SIZE, offset)
            .await?)
    }

    /// The project `name` (any spelling) with its releases and files, or `None`: three catalog
    /// queries whatever its number of releases and files.
    pub async fn project_view(&self, name: &str) -> Result<Option<ProjectView>, RegistryError> {
        let name = normalize(name);
        let Some(listing) = self.catalog.project_files(&name).await? else {
            return Ok(None);
        };
        let serves_files = listing.project.status.serves_files();
        let mut by_version: HashMap<String, Vec<FileRecord>> = HashMap::new();
        if serves_files {
            for file in listing.files {
                by_version
                    .entry(file.version.clone())
                    .or_default()
                    .push(file);
            }
        }
        let mut releases: Vec<ReleaseFiles> = self
            .browse
            .releases(&name)
            .await?
            .into_iter()
            .map(|release| ReleaseFiles {
                files: by_version.remove(&release.version).unwrap_or_default(),
                release,
            })
            .collect();
        // Newest version first; a version that does not parse (never accepted at upload) last.
        releases.sort_by_cached_key(|r| std::cmp::Reverse(parse_version(&r.release.version).ok()));
        let latest = latest_index(&releases);
        Ok(Some(ProjectView {
            project: listing.project,
            releases,
            latest,
        }))
    }

    /// The README of `release` (one of `view`'s) as sanitized HTML, empty when it has none or
    /// when the project's status withholds its files (quarantine). Read as stored at
    /// publication; a release stored before READMEs were rendered is rendered now, and stored.
    pub async fn readme(
        &self,
        view: &ProjectView,
        release: &ReleaseRecord,
    ) -> Result<String, RegistryError> {
        if !view.project.status.serves_files() {
            return Ok(String::new());
        }
        let stored = self
            .browse
            .readme(&view.project.name, &release.canonical_version)
            .await?;
        match stored {
            Some(StoredReadme {
                html: Some(html), ..
            }) => Ok(html),
            Some(unrendered) => self.render_and_store(unrendered).await,
            None => Ok(String::new()),
        }
    }

    /// Renders and stores the READMEs of releases stored before READMEs were rendered at
    /// publication; returns how many. Run in the background when the server starts (a page
    /// viewed before it gets there renders its own).
    pub async fn render_missing_readmes(&self) -> Result<usize, RegistryError> {
        let mut rendered = 0;
        loop {
            let missing = self.browse.releases_without_readme(README_BATCH).await?;
            if missing.is_empty() {
                return Ok(rendered);
            }
            for release in missing {
                self.render_and_store(release).await?;
                rendered += 1;
            }
        }
    }

    async fn render_and_store(&self, stored: StoredReadme) -> Result<String, RegistryError> {
        let html = render_readme(stored.description, stored.content_type).await?;
        self.browse
            .set_release_readme(stored.release_id, &html)
            .await?;
        Ok(html)
    }

    /// Gives releases published before release details were kept their details, read once from
    /// their stored metadata files. Run when the server starts; a release whose metadata cannot
    /// be read gets empty details (and a warning) so that it is not read again.
    pub async fn fill_release_details(&self) -> Result<usize, RegistryError> {
        let mut filled = 0;
        loop {
            let missing = self.browse.releases_without_details(FILL_BATCH).await?;
            if missing.is_empty() {
                return Ok(filled);
            }
            for release in missing {
                let details = match &release.metadata_sha256 {
                    Some(sha256) => self.stored_details(sha256).await.unwrap_or_else(|e| {
                        tracing::warn!(error = %e, metadata = %sha256,
                            "could not read a release's stored metadata; its page shows less");
                        ReleaseDetails::default()
                    }),
                    None => ReleaseDetails::default(),
                };
                self.browse
                    .set_release_details(release.release_id, &details)
                    .await?;
                filled += 1;
            }
        }
    }

    async fn stored_details(&self, sha256: &str) -> Result<ReleaseDetails, String> {
        let key = BlobKey::parse(sha256).map_err(|e| e.to_string())?;
        let body = self
            .blobs
            .get(&key, None)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the metadata file is missing from the store")?;
        if body.len > MAX_METADATA_BYTES {
            return Err(format!("the metadata file is {} bytes", body.len));
        }
        let bytes = match body.content {
            BlobContent::Bytes(bytes) => bytes.to_vec(),
            BlobContent::Stream(mut stream) => {
                let mut all = Vec::new();
                while let Some(chunk) = stream.next().await {
                    all.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
                    if all.len() as u64 > MAX_METADATA_BYTES {
                        return Err("the metadata file is too large".to_owned());
                    }
                }
                all
            }
        };
        let metadata = CoreMetadata::parse(&bytes).map_err(|e| e.to_string())?;
        Ok(release_details(&metadata))
    }
}

/// `description` rendered by `content_type` (see [`render_description`]), off the async runtime:
/// a large README takes a while.
pub(crate) async fn render_readme(
    description: Option<String>,
    content_type: Option<String>,
) -> Result<String, RegistryError> {
    tokio::task::spawn_blocking(move || {
        render_description(description.as_deref(), content_type.as_deref())
    })
    .await
    .map_err(|e| RegistryError::Internal(format!("README rendering failed: {e}")))
}

/// The release shown by default: the newest that is neither yanked nor a pre-release, else the
/// newest not yanked, else the newest.
pub fn latest_index(releases: &[ReleaseFiles]) -> Option<usize> {
    let yanked = |r: &ReleaseFiles| matches!(r.release.yank, pyindex_catalog::Yank::Yanked(_));
    let pre =
        |r: &ReleaseFiles| parse_version(&r.release.version).map_or(true, |v| v.any_prerelease());
    releases
        .iter()
        .position(|r| !yanked(r) && !pre(r))
        .or_else(|| releases.iter().position(|r| !yanked(r)))
        .or(if releases.is_empty() { None } else { Some(0) })
}

/// The page details in a file's core metadata.
pub fn release_details(metadata: &CoreMetadata) -> ReleaseDetails {
    ReleaseDetails {
        license: metadata.license.clone(),
        license_expression: metadata.license_expression.clone(),
        author: metadata.author.clone(),
        author_email: metadata.author_email.clone(),
        maintainer: metadata.maintainer.clone(),
        maintainer_email: metadata.maintainer_email.clone(),
        home_page: metadata.home_page.clone(),
        download_url: metadata.download_url.clone(),
        project_urls: metadata
            .project_urls
            .iter()
            .map(|entry| match entry.split_once(',') {
                Some((label, url)) => (label.trim().to_owned(), url.trim().to_owned()),
                None => (String::new(), entry.trim().to_owned()),
            })
            .collect(),
        keywords: metadata.keywords.clone(),
        classifiers: metadata.classifiers.clone(),
    }
}

#[cfg(test)]
mod tests {
    use pyindex_catalog::{Catalog, NewFile, ReleaseMetadata};
    use sha2::{Digest, Sha256};
    use time::OffsetDateTime;

    use super::*;
    use crate::test_support::{Harness, audit};

    const METADATA: &str = "Metadata-Version: 2.1\nName: old-lib\nVersion: 1.0\n\
        License: MIT\nAuthor: Ada\nHome-page: https://example.invalid/\n\
        Project-URL: Source, https://example.invalid/src\nKeywords: a,b\n\
        Classifier: Topic :: Utilities\n";

    /// Records `old-lib` `version`; its metadata file is stored when `metadata` is given.
    async fn old_release(h: &Harness, version: &str, metadata: Option<&[u8]>) {
        let mut metadata_sha256 = None;
        if let Some(bytes) = metadata {
            let sha = hex::encode(Sha256::digest(bytes));
            let spooled = h.registry.spool().spool_bytes(bytes).await.unwrap();
            h.registry
                .blobs()
                .put_spooled(&BlobKey::parse(&sha).unwrap(), spooled)
                .await
                .unwrap();
            metadata_sha256 = Some(sha);
        }
        let filename = format!("old_lib-{version}-py3-none-any.whl");
        let parsed = pyindex_packaging::parse_filename(&filename).unwrap();
        let file = NewFile {
            project: parsed.project(),
            display_name: "old-lib".into(),
            version: parsed.version.to_string(),
            canonical_version: pyindex_packaging::canonical_version(&parsed.version),
            dist_key: parsed.identity(),
            kind: parsed.kind(),
            filename,
            size: 1,
            sha256: format!("{:064}", version.len()),
            md5: "m".into(),
            blake2_256: "b".into(),
            requires_python: None,
            metadata_sha256,
            release: ReleaseMetadata::default(),
            uploaded: OffsetDateTime::now_utc(),
            uploader: None,
        };
        h.database
            .add_file(&file, &audit("publish", &file.filename))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn releases_from_before_details_get_them_from_stored_metadata_once() {
        let h = Harness::new().await;
        old_release(&h, "1.0", Some(METADATA.as_bytes())).await;
        old_release(&h, "2.0", None).await;
        old_release(&h, "3.0", Some(b"not metadata")).await;
        // As a database from before schema version 6 has them.
        let pool = sqlx::SqlitePool::connect(&format!(
            "sqlite://{}",
            h.dir().join("catalog.sqlite3").display()
        ))
        .await
        .unwrap();
        sqlx::query("UPDATE releases SET details = NULL")
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(h.registry.fill_release_details().await.unwrap(), 3);
        assert_eq!(h.registry.fill_release_details().await.unwrap(), 0, "once");
        let view = h.registry.project_view("Old_Lib").await.unwrap().unwrap();
        let details = |v: &str| view.release(v).unwrap().release.details.clone().unwrap();
        let filled = details("1.0");
        assert_eq!(filled.license.as_deref(), Some("MIT"));
        assert_eq!(filled.author.as_deref(), Some("Ada"));
        assert_eq!(
            filled.project_urls,
            [(
                "Source".to_owned(),
                "https://example.invalid/src".to_owned()
            )]
        );
        assert_eq!(filled.classifiers, ["Topic :: Utilities"]);
        assert_eq!(details("2.0"), ReleaseDetails::default());
        assert_eq!(details("3.0"), ReleaseDetails::default());
    }

    #[tokio::test]
    async fn project_view_orders_versions_and_picks_the_latest() {
        let h = Harness::new().await;
        for v in ["1.0", "10.0rc1", "2.0"] {
            old_release(&h, v, None).await;
        }
        let view = h.registry.project_view("old-lib").await.unwrap().unwrap();
        let versions: Vec<_> = view
            .releases
            .iter()
            .map(|r| r.release.version.as_str())
            .collect();
        assert_eq!(versions, ["10.0rc1", "2.0", "1.0"]);
        assert_eq!(view.latest().unwrap().release.version, "2.0");
        assert_eq!(view.releases[1].files.len(), 1);
        assert!(h.registry.project_view("nope").await.unwrap().is_none());
        assert!(h.registry.search("x", 0).await.is_err());
        assert!(
            h.registry
                .search(&"x".repeat(MAX_QUERY_CHARS + 1), 1)
                .await
                .is_err()
        );
        assert_eq!(h.registry.search("old", 1).await.unwrap().total, 1);
    }
}
