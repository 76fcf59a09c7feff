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

    /// The metadata files a resolver is likely to ask for next: those of the newest final
    /// release whose files are not yanked and have metadata, one per distinct content (the
    /// wheels of a release usually share one), at most `limit`.
    pub fn newest_metadata(&self, limit: usize) -> Vec<&UpstreamFile> {
        let newest = self
            .files
            .iter()
            .filter(|f| f.yanked.is_none() && f.core_metadata_sha256.is_some())
            .filter_map(|f| Some((parse_version(f.version.as_deref()?).ok()?, f)))
            .filter(|(v, _)| !v.any_prerelease())
            .map(|(v, _)| v)
            .max();
        let Some(newest) = newest else {
            return Vec::new();
        };
        let mut chosen: Vec<&UpstreamFile> = Vec::new();
        for file in &self.files {
            let of_newest = file.yanked.is_none()
                && file
                    .version
                    .as_deref()
                    .and_then(|v| parse_version(v).ok())
                    .is_some_and(|v| v == newest);
            if of_newest
                && chosen.len() < limit
                && !chosen
                    .iter()
                    .any(|c| c.core_metadata_sha256 == file.core_metadata_sha256)
                && file.core_metadata_sha256.is_some()
            {
                chosen.push(file);
            }
        }
        chosen
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

#[cfg(test)]
mod tests {
    use super::*;

    fn file(filename: &str, metadata: Option<&str>, yanked: bool) -> UpstreamFile {
        UpstreamFile {
            filename: filename.to_owned(),
            url: format!("http://127.0.0.1:1/files/{filename}"),
            sha256: "a".repeat(64),
            size: None,
            requires_python: None,
            yanked: yanked.then(String::new),
            core_metadata_sha256: metadata.map(|m| m.repeat(64)),
            upload_time: None,
            version: filename_version(filename),
        }
    }

    fn names(files: Vec<&UpstreamFile>) -> Vec<&str> {
        files.iter().map(|f| f.filename.as_str()).collect()
    }

    #[test]
    fn the_newest_final_release_gives_its_distinct_metadata() {
        let page = UpstreamPage::new(
            "demo",
            vec![
                file("demo-1.0-py3-none-any.whl", Some("1"), false),
                file(
                    "demo-2.0-cp312-cp312-manylinux_2_17_x86_64.whl",
                    Some("2"),
                    false,
                ),
                file("demo-2.0-cp312-cp312-win_amd64.whl", Some("2"), false),
                file("demo-2.0-cp313-cp313-win_amd64.whl", Some("3"), false),
                file("demo-2.0-py3-none-any.whl", Some("4"), false),
                file("demo-2.0.tar.gz", None, false),
                file("demo-3.0rc1-py3-none-any.whl", Some("5"), false),
                file("demo-4.0-py3-none-any.whl", Some("6"), true),
            ],
            Vec::new(),
        );
        assert_eq!(
            names(page.newest_metadata(10)),
            [
                "demo-2.0-cp312-cp312-manylinux_2_17_x86_64.whl",
                "demo-2.0-cp313-cp313-win_amd64.whl",
                "demo-2.0-py3-none-any.whl",
            ]
        );
        assert_eq!(page.newest_metadata(1).len(), 1);
    }

    #[test]
    fn a_page_without_metadata_or_final_releases_gives_none() {
        let page = UpstreamPage::new(
            "demo",
            vec![
                file("demo-1.0.tar.gz", None, false),
                file("demo-2.0b1-py3-none-any.whl", Some("1"), false),
            ],
            Vec::new(),
        );
        assert!(page.newest_metadata(3).is_empty());
    }
}
