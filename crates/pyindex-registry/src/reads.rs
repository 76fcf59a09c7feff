//! The read side: what the index pages list and what the file URLs serve. The PEP 792
//! quarantine applies here, once: a quarantined project's page lists no file (its versions
//! stay, as in PEP 792's example) and its files are withheld.

use pyindex_catalog::{FileRecord, ProjectFiles, ProjectSummary};
use pyindex_packaging::{Version, parse_version};

use crate::{Registry, RegistryError};

/// The file URL suffix of a distribution's PEP 658 metadata file.
const METADATA_SUFFIX: &str = ".metadata";

/// A project's page: the project, its versions and the files it lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectPage {
    /// The project, with its status.
    pub project: ProjectSummary,
    /// The version of every release, in PEP 440 order (versions that do not parse, from
    /// imported legacy files, last, by text), whether or not its files are listed.
    pub versions: Vec<String>,
    /// The files listed, sorted by filename: none while the project is quarantined.
    pub files: Vec<FileRecord>,
}

/// Which file a download URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilePart {
    /// The distribution itself.
    Distribution,
    /// Its PEP 658 metadata file.
    Metadata,
}

/// What a download URL's filename names, and whether it is served.
#[derive(Debug)]
pub struct FileDownload {
    /// The distribution (for its metadata file too).
    pub file: FileRecord,
    /// Which of the two is asked for.
    pub part: FilePart,
    /// The refusal to send instead of the file when it is not served (its project is
    /// quarantined); `None` when it is served.
    pub withheld: Option<RegistryError>,
}

impl FileDownload {
    /// The SHA-256 of the blob to send: the distribution's or its metadata file's.
    pub fn blob_sha256(&self) -> Option<&str> {
        match self.part {
            FilePart::Distribution => Some(&self.file.sha256),
            FilePart::Metadata => self.file.metadata_sha256.as_deref(),
        }
    }
}

/// The distinct versions of `files`, in PEP 440 order; unparsable ones last, by text.
fn release_versions(files: &[FileRecord]) -> Vec<String> {
    let mut versions: Vec<(Option<Version>, &str)> = Vec::new();
    for file in files {
        if !versions.iter().any(|(_, v)| *v == file.version) {
            versions.push((parse_version(&file.version).ok(), &file.version));
        }
    }
    versions.sort_by(|a, b| match (&a.0, &b.0) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.1.cmp(b.1),
    });
    versions.into_iter().map(|(_, v)| v.to_owned()).collect()
}

/// Why a file of a project whose status serves no files is withheld, if it is.
fn withheld(file: &FileRecord) -> Option<RegistryError> {
    if file.project_status.serves_files() {
        return None;
    }
    Some(crate::status::files_withheld(
        &file.project,
        file.project_status,
        file.project_status_reason.as_deref(),
    ))
}

impl ProjectPage {
    /// The page of a project and its files: every release listed, the files only when the
    /// project's status serves them.
    pub(crate) fn of(found: ProjectFiles) -> ProjectPage {
        let versions = release_versions(&found.files);
        let files = if found.project.status.serves_files() {
            found.files
        } else {
            Vec::new()
        };
        ProjectPage {
            project: found.project,
            versions,
            files,
        }
    }
}

impl Registry {
    /// Every project the index lists (those with a release), sorted by normalized name.
    pub async fn projects(&self) -> Result<Vec<ProjectSummary>, RegistryError> {
        Ok(self.catalog.projects().await?)
    }

    /// The project with this normalized name, if there is one.
    pub async fn project(&self, project: &str) -> Result<Option<ProjectSummary>, RegistryError> {
        Ok(self.catalog.project(project).await?)
    }

    /// The page of the project with this normalized name, if there is one.
    pub async fn project_page(&self, project: &str) -> Result<Option<ProjectPage>, RegistryError> {
        Ok(self
            .catalog
            .project_files(project)
            .await?
            .map(ProjectPage::of))
    }

    /// What the file URL's `filename` names (a distribution, or the metadata file of one that
    /// has it) and whether it is served, in one catalog query when it is a distribution.
    pub async fn download(&self, filename: &str) -> Result<Option<FileDownload>, RegistryError> {
        let found = match self.catalog.file(filename).await? {
            Some(file) => Some((file, FilePart::Distribution)),
            None => match filename.strip_suffix(METADATA_SUFFIX) {
                Some(dist) => self
                    .catalog
                    .file(dist)
                    .await?
                    .filter(|file| file.metadata_sha256.is_some())
                    .map(|file| (file, FilePart::Metadata)),
                None => None,
            },
        };
        Ok(found.map(|(file, part)| FileDownload {
            withheld: withheld(&file),
            file,
            part,
        }))
    }

    /// The catalog's generation (the newest point of its change log); also the probe that
    /// the catalog answers queries, for `/health` and `/ready`.
    pub async fn catalog_generation(&self) -> Result<i64, RegistryError> {
        Ok(self.catalog.generation().await?)
    }
}

#[cfg(test)]
mod tests;
