//! The typed model of an upstream project page, whichever format it came in.

use pyindex_packaging::{Version, parse_filename, parse_version};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One file an upstream lists for a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamFile {
    /// The distribution's filename.
    pub filename: String,
    /// Where the upstream serves it: an absolute URL, without fragment.
    pub url: String,
    /// Its SHA-256 as the upstream lists it (lowercase hex). Files listed without one are
    /// dropped by the parsers: pyindex cannot check them.
    pub sha256: String,
    /// Its size, when the upstream gives it (PEP 700).
    pub size: Option<u64>,
    /// Its Requires-Python.
    pub requires_python: Option<String>,
    /// `None` when not yanked; `Some(reason)` (possibly empty) when yanked.
    pub yanked: Option<String>,
    /// The SHA-256 of its PEP 658 metadata file, when the upstream serves one.
    pub core_metadata_sha256: Option<String>,
    /// The upstream's own upload time (PEP 700), when it gives one.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub upload_time: Option<OffsetDateTime>,
    /// The version from the filename, when it parses.
    pub version: Option<String>,
}

impl UpstreamFile {
    /// The URL of its PEP 658 metadata file, when it has one.
    pub fn metadata_url(&self) -> Option<String> {
        self.core_metadata_sha256
            .as_ref()
            .map(|_| format!("{}.metadata", self.url))
    }
}

/// An upstream project page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamPage {
    /// The normalized project name asked for.
    pub name: String,
    /// The versions (PEP 700 `versions`, or those of the files), in PEP 440 order.
    pub versions: Vec<String>,
    /// The files, sorted by filename.
    pub files: Vec<UpstreamFile>,
}

impl UpstreamPage {
    /// A page of `files`, with `versions` as the upstream listed them (or, if it listed none,
    /// those of the files), sorted.
    pub fn new(name: &str, mut files: Vec<UpstreamFile>, versions: Vec<String>) -> UpstreamPage {
        files.sort_by(|a, b| a.filename.cmp(&b.filename));
        files.dedup_by(|a, b| a.filename == b.filename);
        let versions = if versions.is_empty() {
            files.iter().filter_map(|f| f.version.clone()).collect()
        } else {
            versions
        };
        UpstreamPage {
            name: name.to_owned(),
            versions: sorted_versions(versions),
            files,
        }
    }

    /// The file called `filename`, if listed.
    pub fn file(&self, filename: &str) -> Option<&UpstreamFile> {
        self.files
            .binary_search_by(|f| f.filename.as_str().cmp(filename))
            .ok()
            .map(|i| &self.files[i])
    }
}

/// The version part of a distribution filename, when the filename parses.
pub fn filename_version(filename: &str) -> Option<String> {
    parse_filename(filename).ok().map(|f| f.version_part)
}

/// Distinct versions in PEP 440 order; unparsable ones last, by text.
pub fn sorted_versions(versions: Vec<String>) -> Vec<String> {
    let mut keyed: Vec<(Option<Version>, String)> = Vec::new();
    for v in versions {
        if !keyed.iter().any(|(_, seen)| *seen == v) {
            keyed.push((parse_version(&v).ok(), v));
        }
    }
    keyed.sort_by(|a, b| match (&a.0, &b.0) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.1.cmp(&b.1),
    });
    keyed.into_iter().map(|(_, v)| v).collect()
}
