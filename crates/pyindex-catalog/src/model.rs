//! Plain data exchanged with the catalog.

use pyindex_packaging::{DistKey, DistKind};
use time::OffsetDateTime;

/// Release-level metadata, taken from the first file uploaded for a release.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseMetadata {
    /// One-line summary.
    pub summary: Option<String>,
    /// Long description.
    pub description: Option<String>,
    /// Its content type (`text/markdown`, `text/x-rst`, ...).
    pub description_content_type: Option<String>,
    /// The release's Requires-Python.
    pub requires_python: Option<String>,
    /// PEP 508 requirement strings.
    pub requires_dist: Vec<String>,
    /// What the web pages show besides (URLs, license, author...).
    pub details: crate::ReleaseDetails,
    /// The description as the release's page shows it: sanitized HTML, rendered by the
    /// registry at publication (`Some("")` without a description); `None` leaves it to be
    /// rendered later (see [`crate::Browse::releases_without_readme`]).
    pub readme_html: Option<String>,
}

/// A file about to be recorded.
#[derive(Debug, Clone)]
pub struct NewFile {
    /// Normalized project name.
    pub project: String,
    /// The project's name as its metadata spells it.
    pub display_name: String,
    /// Normalized PEP 440 version.
    pub version: String,
    /// Canonical version (the release key).
    pub canonical_version: String,
    /// The filename, exactly as uploaded.
    pub filename: String,
    /// The distribution the filename denotes, whatever its spelling (see
    /// `DistFilename::identity`): at most one file per distribution.
    pub dist_key: DistKey,
    /// Wheel or source distribution.
    pub kind: DistKind,
    /// Size in bytes.
    pub size: u64,
    /// Hex SHA-256.
    pub sha256: String,
    /// Hex MD5.
    pub md5: String,
    /// Hex BLAKE2b-256.
    pub blake2_256: String,
    /// The file's Requires-Python.
    pub requires_python: Option<String>,
    /// SHA-256 of the PEP 658 metadata file, when one is served.
    pub metadata_sha256: Option<String>,
    /// Release metadata, used if this file creates the release.
    pub release: ReleaseMetadata,
    /// Upload time.
    pub uploaded: OffsetDateTime,
    /// Who uploads it; `None` when the index runs without accounts. The uploader of a new
    /// project becomes its owner; an existing project accepts only its owners, maintainers
    /// and admins.
    pub uploader: Option<Uploader>,
}

/// The account publishing a file. Whether it is an admin is read inside the publishing
/// transaction, not taken from the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uploader {
    /// The account's id.
    pub user_id: i64,
}

/// What [`crate::Catalog::add_file`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    /// The file was recorded.
    Added {
        /// Whether it put its project on the root page: it created the project, or gave a
        /// reserved one its first release.
        new_project: bool,
    },
    /// The same distribution exists with the same SHA-256; nothing changed.
    AlreadyPresent {
        /// The existing file's name (another spelling of the same distribution, perhaps).
        filename: String,
    },
    /// The same distribution exists with other content; nothing changed.
    Conflict {
        /// The existing file's name.
        filename: String,
        /// SHA-256 of the existing file.
        existing_sha256: String,
    },
    /// The project exists and the uploader has no role in it; nothing changed.
    Forbidden,
    /// The project's status accepts no new files (archived, quarantined); nothing changed.
    StatusRefuses {
        /// The project's status.
        status: ProjectStatus,
        /// Its reason, if any.
        reason: Option<String>,
    },
}

/// A change to a release's yank state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Yank {
    /// Yank, with an optional reason.
    Yanked(Option<String>),
    /// Undo a yank.
    NotYanked,
}

/// A project's status marker (PEP 792). Exactly one applies at a time; `Active` is the default.
///
/// It lives here, beside [`Yank`], rather than in the packaging crate: like a yank it is state
/// the index keeps about a project, not a property of any distribution file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ProjectStatus {
    /// Accepts uploads; files are listed and served.
    #[default]
    Active,
    /// Accepts no uploads; existing files stay listed and served.
    Archived,
    /// Accepts no uploads; no file is listed or served (e.g. malware).
    Quarantined,
    /// Like `Active`; installers may warn that the project is obsolete.
    Deprecated,
}

impl ProjectStatus {
    /// Every status, in the order they are documented.
    pub const ALL: [ProjectStatus; 4] = [
        ProjectStatus::Active,
        ProjectStatus::Archived,
        ProjectStatus::Quarantined,
        ProjectStatus::Deprecated,
    ];

    /// The marker as PEP 792 spells it (also the stored spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectStatus::Active => "active",
            ProjectStatus::Archived => "archived",
            ProjectStatus::Quarantined => "quarantined",
            ProjectStatus::Deprecated => "deprecated",
        }
    }

    /// Parses the PEP 792 spelling (exactly, lower case).
    pub fn parse(text: &str) -> Option<ProjectStatus> {
        ProjectStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the project accepts new files.
    pub fn accepts_uploads(self) -> bool {
        matches!(self, ProjectStatus::Active | ProjectStatus::Deprecated)
    }

    /// Whether the project's files are listed and served.
    pub fn serves_files(self) -> bool {
        self != ProjectStatus::Quarantined
    }
}

impl std::fmt::Display for ProjectStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ProjectStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<ProjectStatus, String> {
        ProjectStatus::parse(text).ok_or_else(|| {
            format!(
                "Unknown project status '{}': use active, archived, quarantined or deprecated.",
                text.escape_default()
            )
        })
    }
}

/// A project in the index listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectSummary {
    /// Normalized name.
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// Its PEP 792 status.
    pub status: ProjectStatus,
    /// Free text explaining the status, if any was given.
    pub status_reason: Option<String>,
}

/// A published file as the index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// Normalized project name.
    pub project: String,
    /// The filename.
    pub filename: String,
    /// Normalized version of the release.
    pub version: String,
    /// Wheel or source distribution.
    pub kind: DistKind,
    /// Size in bytes.
    pub size: u64,
    /// Hex SHA-256.
    pub sha256: String,
    /// The file's Requires-Python.
    pub requires_python: Option<String>,
    /// SHA-256 of the PEP 658 metadata file, when one is served.
    pub metadata_sha256: Option<String>,
    /// Upload time.
    pub uploaded: OffsetDateTime,
    /// Yank state of the release.
    pub yank: Yank,
    /// The status of its project, read with the file, so that whether the file is served
    /// needs no second query.
    pub project_status: ProjectStatus,
    /// The reason given for that status, if any.
    pub project_status_reason: Option<String>,
}

/// A project with its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectFiles {
    /// The project.
    pub project: ProjectSummary,
    /// Its files, sorted by filename.
    pub files: Vec<FileRecord>,
}

/// Something a write changed, as far as caches care.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Change {
    /// A project's files, releases or settings (by normalized name).
    Project(String),
    /// The set of projects (one was created).
    ProjectList,
    /// An account's password, admin flag or existence (by name).
    Account(String),
    /// A cached upstream file (by SHA-256) was evicted (`pyindex cache prune`, the cache's size
    /// limit, a file that failed its check).
    UpstreamFile(String),
    /// Anything: drop every cache.
    Everything,
}

/// The changes made after a point of the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    /// The newest point of the change log included; pass it to the next call.
    pub seq: i64,
    /// What changed, oldest first; `[Change::Everything]` when the reader fell too far behind.
    pub changes: Vec<Change>,
}

/// A file as far as storage is concerned: the blobs the catalog references for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// Its filename, for reports.
    pub filename: String,
    /// The SHA-256 of its content (the key of its blob).
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// The SHA-256 of its extracted metadata file, if it has one.
    pub metadata_sha256: Option<String>,
}
