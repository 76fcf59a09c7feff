//! Publishing a file the operator imports from an existing index tree on local disk
//! (`pyindex import`): the upload's rules without an HTTP form.
//!
//! The file is hashed first, so that a file already published with the same bytes is answered
//! without copying it (a re-run of an import changes nothing and costs one read per file). Only
//! a new file is spooled (hashed again on the way, so a file that changes while it is read is
//! refused), inspected, checked against its project and published with the audit action
//! `import`, each file in its own transaction.

use std::io::Read;
use std::path::PathBuf;

use pyindex_packaging::{
    CoreMetadata, DistFilename, ProjectName, parse_filename, parse_filename_for,
};
use pyindex_storage::{Digests, Hasher, SpooledFile};
use time::OffsetDateTime;
use tokio::io::AsyncReadExt;

use super::{Publication, Published, already_published};
use crate::{Actor, Registry, RegistryError};

/// Read buffer for hashing and spooling an imported file.
const CHUNK: usize = 256 * 1024;

/// One file to import.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// Where the file is.
    pub source: PathBuf,
    /// Its filename (as the old index listed it).
    pub filename: String,
    /// The project the old index listed it under; `None` when the source says nothing about
    /// projects (a flat directory), in which case the file's metadata names the project.
    pub project: Option<ProjectName>,
    /// The SHA-256 the old index's link gave (`#sha256=...`), if any.
    pub expected_sha256: Option<String>,
    /// The upload time to record (the old tree's best record of it is the file's mtime).
    pub uploaded: OffsetDateTime,
}

impl Registry {
    /// Checks and publishes one file from an existing index tree, with the rules of
    /// [`Registry::upload`]: the filename must parse (for the project, when it is known), the
    /// bytes must match `expected_sha256`, the archive and its metadata must be readable, the
    /// metadata must name the project and the filename's version, and a published distribution
    /// is immutable. The same bytes already published give [`Published::AlreadyPresent`].
    pub async fn import_file(&self, request: ImportRequest) -> Result<Published, RegistryError> {
        let parsed = match &request.project {
            Some(project) => parse_filename_for(&request.filename, project),
            None => parse_filename(&request.filename),
        }
        .map_err(|e| RegistryError::bad_request(e.to_string()))?;
        let digests = hash_file(request.source.clone()).await?;
        check_expected_sha256(request.expected_sha256.as_deref(), &digests.sha256)?;
        if let Some(existing) = self.catalog.distribution(&parsed.identity()).await? {
            return already_published(
                &parsed,
                &existing.filename,
                &existing.sha256,
                &digests.sha256,
            );
        }
        if let Some(existing) = self.catalog.file(&request.filename).await? {
            return already_published(
                &parsed,
                &existing.filename,
                &existing.sha256,
                &digests.sha256,
            );
        }
        if let Some(project) = &request.project {
            // Without a project the catalog's commit refuses a project closed to uploads.
            self.check_project_accepts_uploads(project).await?;
        }
        let file = self.spool_file(&request, &digests).await?;
        let publication = Publication {
            actor: Actor::Cli,
            action: "import",
            filename: &parsed,
            uploader: None,
            uploaded: request.uploaded,
        };
        self.publish_file(publication, file, |metadata| {
            agreed_filename(&request, parsed.clone(), metadata)
        })
        .await
    }

    /// Copies the file into the spool, hashing it again: it must still be what was hashed.
    async fn spool_file(
        &self,
        request: &ImportRequest,
        digests: &Digests,
    ) -> Result<SpooledFile, RegistryError> {
        let mut source = tokio::fs::File::open(&request.source)
            .await
            .map_err(|e| unreadable(&request.filename, &e))?;
        let len = source
            .metadata()
            .await
            .map_err(|e| unreadable(&request.filename, &e))?
            .len();
        let mut writer = self.spool.create(len).await?;
        let mut buf = vec![0; CHUNK];
        loop {
            let n = source
                .read(&mut buf)
                .await
                .map_err(|e| unreadable(&request.filename, &e))?;
            if n == 0 {
                break;
            }
            writer
                .write(&buf[..n])
                .await
                .map_err(|_| changed(&request.filename))?;
        }
        let spooled = writer.finish().await?;
        if spooled.digests().sha256 != digests.sha256 {
            return Err(changed(&request.filename));
        }
        Ok(spooled)
    }
}

/// The filename, parsed for the project the metadata names, after checking that the metadata
/// agrees with the project the source listed the file under and with the filename's version.
fn agreed_filename(
    request: &ImportRequest,
    parsed: DistFilename,
    metadata: &CoreMetadata,
) -> Result<DistFilename, RegistryError> {
    let named = metadata.project_name();
    let filename = match &request.project {
        Some(project) if *project != named => {
            return Err(RegistryError::bad_request(format!(
                "The file's metadata names the project '{}', not '{project}' (the folder it is \
                 listed in): move it to the folder of '{named}'.",
                metadata.name
            )));
        }
        Some(_) => parsed,
        None => parse_filename_for(&request.filename, &named).map_err(|e| {
            RegistryError::bad_request(format!(
                "{e} (the file's metadata names the project '{}')",
                metadata.name
            ))
        })?,
    };
    if filename.version != metadata.version {
        return Err(RegistryError::bad_request(format!(
            "The version in the filename ({}) does not match the version in the file's metadata ({}).",
            filename.version_part, metadata.version
        )));
    }
    Ok(filename)
}

fn check_expected_sha256(expected: Option<&str>, actual: &str) -> Result<(), RegistryError> {
    match expected {
        Some(expected) if !expected.eq_ignore_ascii_case(actual) => {
            Err(RegistryError::bad_request(format!(
                "sha256 mismatch: the link says {}, the file's content is {actual} (damaged or \
                 replaced since the link was written).",
                expected.escape_default()
            )))
        }
        _ => Ok(()),
    }
}

/// Hashes a file on a blocking thread.
async fn hash_file(path: PathBuf) -> Result<Digests, RegistryError> {
    let shown = path.display().to_string();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&path)?;
        let mut hasher = Hasher::default();
        let mut buf = vec![0; CHUNK];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                return Ok(hasher.finish());
            }
            hasher.update(&buf[..n]);
        }
    })
    .await
    .map_err(|e| RegistryError::Internal(format!("hashing failed: {e}")))?
    .map_err(|e: std::io::Error| unreadable(&shown, &e))
}

fn unreadable(what: &str, error: &std::io::Error) -> RegistryError {
    RegistryError::bad_request(format!("Cannot read '{what}': {error}."))
}

fn changed(filename: &str) -> RegistryError {
    RegistryError::bad_request(format!(
        "'{filename}' changed while it was read: import it again once nothing writes to it."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_links_hash_is_compared_without_regard_to_case() {
        let actual = "ab".repeat(32);
        assert!(check_expected_sha256(None, &actual).is_ok());
        assert!(check_expected_sha256(Some(&"AB".repeat(32)), &actual).is_ok());
        let err = check_expected_sha256(Some(&"cd".repeat(32)), &actual).unwrap_err();
        assert!(err.to_string().starts_with("sha256 mismatch"), "{err}");
    }
}
