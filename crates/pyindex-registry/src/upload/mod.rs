//! Publishing a file through the legacy upload API, validated in the order of standards H1-H11
//! so that the first error a user sees is the most useful one.
//!
//! The content arrives already spooled to local disk (streamed and hashed by the transport).
//! Publishing is then: validate the form and the filename, verify the client's digests, check
//! immutability, inspect the archive, make the blobs durable, and only then record the file in
//! the catalog. A crash at any point before the catalog commit leaves at most an unreferenced
//! blob, never a listed file without its bytes.

mod form;
mod import;

pub use import::ImportRequest;

use pyindex_catalog::{AddOutcome, Change, NewFile, ReleaseMetadata, Uploader};
use pyindex_packaging::archive::{Inspected, inspect_path};
use pyindex_packaging::{
    CoreMetadata, DistFilename, DistKind, ProjectName, Version, canonical_version,
    expected_sdist_filename, parse_filename_for, parse_version,
};
use pyindex_storage::{BlobKey, Digests, SpooledFile};
use time::OffsetDateTime;

use crate::{Actor, Identity, Registry, RegistryError, Rejection};
use form::Form;

/// One upload: the form's text fields and the spooled `content` part, if there was one.
pub struct UploadRequest {
    /// Text fields in the order they arrived.
    pub fields: Vec<(String, String)>,
    /// The file.
    pub content: Option<UploadedContent>,
    /// The authenticated caller, if any.
    pub identity: Option<Identity>,
    /// The client's address, for the audit log.
    pub address: String,
}

/// The `content` part of an upload.
pub struct UploadedContent {
    /// The filename the client gave in `Content-Disposition`.
    pub filename: String,
    /// The bytes, spooled and hashed.
    pub file: SpooledFile,
}

/// The result of a successful upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// The file is now in the index.
    Added {
        /// Its filename.
        filename: String,
        /// Its normalized project name.
        project: String,
    },
    /// The identical file was already in the index; nothing changed.
    AlreadyPresent {
        /// Its filename.
        filename: String,
    },
}

/// Who publishes a file, how, and when (the parts of a publication besides its content).
struct Publication<'a> {
    actor: Actor<'a>,
    /// The audit log's action: `publish` for uploads, `import` for imports.
    action: &'static str,
    filename: &'a DistFilename,
    uploader: Option<Uploader>,
    uploaded: OffsetDateTime,
}

/// What the form claims, checked for syntax but not yet against the file.
struct Claim {
    name: ProjectName,
    version: Version,
    kind: DistKind,
}

fn check_action(form: &Form) -> Result<(), RegistryError> {
    match form.single(":action")? {
        Some("file_upload") => {}
        Some(action @ ("submit" | "submit_pkg_info" | "doc_upload")) => {
            return Err(RegistryError::rejected(
                Rejection::Gone,
                format!(
                    "The ':action' '{action}' is no longer supported; upload files with ':action=file_upload'."
                ),
            ));
        }
        Some(other) => {
            return Err(RegistryError::bad_request(format!(
                "Unknown ':action' '{}': this index accepts only 'file_upload'.",
                other.escape_default()
            )));
        }
        None => {
            return Err(RegistryError::bad_request(
                "The ':action' field is missing: this index accepts ':action=file_upload'.",
            ));
        }
    }
    match form.single("protocol_version")? {
        None | Some("1") => Ok(()),
        Some(_) => Err(RegistryError::bad_request("Unknown protocol version.")),
    }
}

fn check_claim(form: &Form) -> Result<Claim, RegistryError> {
    let name = ProjectName::new(form.required("name")?)
        .map_err(|e| RegistryError::bad_request(e.to_string()))?;
    let version = parse_version(form.required("version")?)
        .map_err(|e| RegistryError::bad_request(e.to_string()))?;
    let filetype = form.required("filetype")?;
    let kind = DistKind::from_filetype(filetype).ok_or_else(|| {
        RegistryError::bad_request(format!(
            "Unknown filetype '{}': use a known file type, 'bdist_wheel' or 'sdist'.",
            filetype.escape_default()
        ))
    })?;
    if kind == DistKind::Wheel && form.single("pyversion")?.is_none() {
        return Err(RegistryError::bad_request(
            "The field 'pyversion' is required for bdist_wheel uploads: send the wheel's Python tag, e.g. 'py3'.",
        ));
    }
    Ok(Claim {
        name,
        version,
        kind,
    })
}

/// Parses the filename against the project the form names (legacy sdist names can only be split
/// knowing the project) and checks it is of the kind the form says.
fn check_filename(filename: &str, claim: &Claim) -> Result<DistFilename, RegistryError> {
    let parsed = parse_filename_for(filename, &claim.name)
        .map_err(|e| RegistryError::bad_request(e.to_string()))?;
    if parsed.version != claim.version {
        let rest = filename
            .get(parsed.name_part.len() + 1 + parsed.version_part.len()..)
            .unwrap_or_default();
        return Err(RegistryError::bad_request(format!(
            "The version in the upload form ({}) does not match the version in the filename \
             '{}' ({}): for version {} the filename reads '{}-{}{rest}'.",
            claim.version,
            filename.escape_default(),
            parsed.version_part,
            claim.version,
            parsed.name_part,
            claim.version,
        )));
    }
    if parsed.kind() != claim.kind {
        return Err(RegistryError::bad_request(format!(
            "Invalid file extension for filetype '{}': '{}' is not a {}.",
            claim.kind.as_str(),
            filename.escape_default(),
            match claim.kind {
                DistKind::Wheel => "wheel (.whl)",
                DistKind::Sdist => "source distribution (.tar.gz)",
            }
        )));
    }
    Ok(parsed)
}

/// Compares every digest the client sent with the one computed while spooling.
fn check_digests(form: &Form, actual: &Digests) -> Result<(), RegistryError> {
    let supplied = [
        ("md5_digest", &actual.md5),
        ("sha256_digest", &actual.sha256),
        ("blake2_256_digest", &actual.blake2_256),
    ];
    let mut any = false;
    for (field, computed) in supplied {
        if let Some(value) = form.single(field)? {
            any = true;
            if value.len() != computed.len() || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(RegistryError::bad_request(format!(
                    "Invalid {field}: expected {} hexadecimal characters.",
                    computed.len()
                )));
            }
            if !value.eq_ignore_ascii_case(computed) {
                return Err(RegistryError::bad_request(
                    "The digest supplied does not match a digest calculated from the uploaded file.",
                ));
            }
        }
    }
    if any {
        Ok(())
    } else {
        Err(RegistryError::bad_request(
            "Include at least one message digest (sha256_digest, blake2_256_digest or md5_digest).",
        ))
    }
}

/// Filename, form and metadata must name the same project and version (standards H8-H10). The
/// filename's name part already normalizes to the form's name ([`check_filename`]); any spelling
/// the specifications allow is kept as uploaded.
fn check_agreement(
    filename: &DistFilename,
    claim: &Claim,
    metadata: &CoreMetadata,
) -> Result<(), RegistryError> {
    if claim.name != metadata.project_name() {
        return Err(RegistryError::bad_request(format!(
            "The name in the upload form ('{}') does not match the name in the file's metadata ('{}').",
            claim.name, metadata.name
        )));
    }
    if claim.version != metadata.version {
        return Err(RegistryError::bad_request(format!(
            "The version in the upload form ({}) does not match the version in the file's metadata ({}).",
            claim.version, metadata.version
        )));
    }
    if filename.version != metadata.version {
        let expected = match filename.kind() {
            DistKind::Wheel => format!("{}-{}-...whl", filename.name_part, metadata.version),
            DistKind::Sdist => expected_sdist_filename(&claim.name, &metadata.version),
        };
        return Err(RegistryError::bad_request(format!(
            "Version in filename should be '{}' not '{}': the file's metadata says version {}, \
             so the filename should read like '{expected}'.",
            metadata.version, filename.version_part, metadata.version
        )));
    }
    Ok(())
}

fn release_metadata(metadata: &CoreMetadata, readme_html: String) -> ReleaseMetadata {
    ReleaseMetadata {
        summary: metadata.summary.clone(),
        description: metadata.description.clone(),
        description_content_type: metadata.description_content_type.clone(),
        requires_python: metadata.requires_python.clone(),
        requires_dist: metadata.requires_dist.clone(),
        details: crate::browse::release_details(metadata),
        readme_html: Some(readme_html),
    }
}

fn conflict(uploaded: &DistFilename, existing: &str, existing_sha256: &str) -> RegistryError {
    let raw = &uploaded.raw;
    let same_name = if raw == existing {
        String::new()
    } else if uploaded.kind() == DistKind::Sdist {
        format!(
            " as '{existing}', the source distribution of the release of '{raw}' (a release \
             has one source distribution, whatever its archive format or version spelling)"
        )
    } else {
        format!(" as '{existing}', another spelling of the same distribution as '{raw}'")
    };
    RegistryError::rejected(
        Rejection::Conflict,
        format!(
            "File already exists ('{existing}', with sha256 {existing_sha256}){same_name}. \
             Published files are immutable: upload a new version instead."
        ),
    )
}

/// The answer for an upload of a distribution that is already published.
fn already_published(
    uploaded: &DistFilename,
    existing: &str,
    existing_sha256: &str,
    sha256: &str,
) -> Result<Published, RegistryError> {
    if existing_sha256 == sha256 {
        Ok(Published::AlreadyPresent {
            filename: existing.to_owned(),
        })
    } else {
        Err(conflict(uploaded, existing, existing_sha256))
    }
}

impl Registry {
    /// The checks an upload to `project` passes before its file is read: the caller may
    /// publish to it, and its status accepts new files. The transport calls this before
    /// spooling the file, [`Registry::upload`] again with the whole form. Returns the uploader
    /// to record (none in open mode).
    pub async fn may_start_upload(
        &self,
        identity: Option<&Identity>,
        project: &ProjectName,
    ) -> Result<Option<Uploader>, RegistryError> {
        let uploader = self.authorize_publish(identity, project).await?;
        self.check_project_accepts_uploads(project).await?;
        Ok(uploader)
    }

    /// Validates and publishes one uploaded file.
    pub async fn upload(&self, request: UploadRequest) -> Result<Published, RegistryError> {
        let form = Form::new(request.fields);
        check_action(&form)?;
        let content = request
            .content
            .ok_or_else(|| RegistryError::bad_request("Upload payload does not have a file."))?;
        let claim = check_claim(&form)?;
        let uploader = self
            .may_start_upload(request.identity.as_ref(), &claim.name)
            .await?;
        let filename = check_filename(&content.filename, &claim)?;
        check_digests(&form, content.file.digests())?;
        let sha256 = &content.file.digests().sha256;
        if let Some(existing) = self.catalog.distribution(&filename.identity()).await? {
            return already_published(&filename, &existing.filename, &existing.sha256, sha256);
        }

        let actor = match &request.identity {
            Some(identity) => Actor::User {
                identity,
                address: &request.address,
            },
            None => Actor::Anonymous {
                address: &request.address,
            },
        };
        let publication = Publication {
            actor,
            action: "publish",
            filename: &filename,
            uploader,
            uploaded: OffsetDateTime::now_utc(),
        };
        self.publish_file(publication, content.file, |metadata| {
            check_agreement(&filename, &claim, metadata).map(|()| filename.clone())
        })
        .await
    }

    /// The steps every publication shares once the filename, the caller and the digests are
    /// checked: archive inspection, the caller's agreement check on the metadata (which gives
    /// the filename to publish, split as the metadata's project requires), durable blobs, then
    /// the catalog commit with its audit record.
    async fn publish_file(
        &self,
        publication: Publication<'_>,
        file: SpooledFile,
        agree: impl FnOnce(&CoreMetadata) -> Result<DistFilename, RegistryError>,
    ) -> Result<Published, RegistryError> {
        let Publication {
            actor,
            action,
            filename,
            uploader,
            uploaded,
        } = publication;
        let inspected = self.inspect(&file, filename).await?;
        let filename = agree(&inspected.metadata)?;
        let record = self
            .store(file, &filename, &inspected, uploader, uploaded)
            .await?;
        self.commit_file(actor, action, record, &filename).await
    }

    /// Makes the file and its metadata file durable in the blob store, and describes the file
    /// for the catalog. Until the catalog commit, they are unreferenced blobs.
    async fn store(
        &self,
        file: SpooledFile,
        filename: &DistFilename,
        inspected: &Inspected,
        uploader: Option<Uploader>,
        uploaded: OffsetDateTime,
    ) -> Result<NewFile, RegistryError> {
        let metadata = &inspected.metadata;
        let serve_metadata = match filename.kind() {
            DistKind::Wheel => true,
            DistKind::Sdist => metadata.is_reliable_for_sdist(),
        };
        let metadata_sha256 = if serve_metadata {
            Some(self.put_bytes(&inspected.metadata_bytes).await?)
        } else {
            None
        };
        // Rendered once here, never per page view.
        let readme_html = crate::browse::render_readme(
            metadata.description.clone(),
            metadata.description_content_type.clone(),
        )
        .await?;
        let size = file.len();
        let digests = file.digests().clone();
        self.blobs
            .put_spooled(&blob_key(&digests.sha256)?, file)
            .await?;
        Ok(NewFile {
            project: metadata.project_name().as_str().to_owned(),
            display_name: metadata.name.clone(),
            version: metadata.version.to_string(),
            canonical_version: canonical_version(&metadata.version),
            filename: filename.raw.clone(),
            dist_key: filename.identity(),
            kind: filename.kind(),
            size,
            sha256: digests.sha256,
            md5: digests.md5,
            blake2_256: digests.blake2_256,
            requires_python: metadata.requires_python.clone(),
            metadata_sha256,
            release: release_metadata(metadata, readme_html),
            uploaded,
            uploader,
        })
    }

    /// Records the file in the catalog with its audit record, in one transaction.
    async fn commit_file(
        &self,
        actor: Actor<'_>,
        action: &str,
        record: NewFile,
        filename: &DistFilename,
    ) -> Result<Published, RegistryError> {
        let audit = self.audit_entry(
            actor,
            action,
            &record.filename,
            Some(format!("sha256 {}", record.sha256)),
        );
        match self.catalog.add_file(&record, &audit).await? {
            AddOutcome::Added { new_project } => {
                Self::log_audited(&audit);
                self.apply_change(&Change::Project(record.project.clone()));
                if new_project {
                    self.apply_change(&Change::ProjectList);
                }
                Ok(Published::Added {
                    filename: record.filename,
                    project: record.project,
                })
            }
            AddOutcome::Forbidden => {
                let user = match actor {
                    Actor::User { identity, .. } => identity.user.name.as_str(),
                    _ => "anonymous",
                };
                let project = ProjectName::new(&record.project)
                    .map_err(|e| RegistryError::Internal(e.to_string()))?;
                Err(self.refuse_publish(user, &project).await)
            }
            AddOutcome::StatusRefuses { status, reason } => Err(crate::status::upload_refused(
                &record.project,
                status,
                reason.as_deref(),
            )),
            AddOutcome::AlreadyPresent { filename: existing } => {
                already_published(filename, &existing, &record.sha256, &record.sha256)
            }
            AddOutcome::Conflict {
                filename: existing,
                existing_sha256,
            } => already_published(filename, &existing, &existing_sha256, &record.sha256),
        }
    }

    async fn inspect(
        &self,
        file: &SpooledFile,
        filename: &DistFilename,
    ) -> Result<Inspected, RegistryError> {
        let path = file.path().to_owned();
        let filename = filename.clone();
        let limits = self.archive_limits.clone();
        tokio::task::spawn_blocking(move || inspect_path(&path, &filename, &limits))
            .await
            .map_err(|e| RegistryError::Internal(format!("archive inspection failed: {e}")))?
            .map_err(|e| {
                if e.is_server_fault() {
                    RegistryError::Internal(e.to_string())
                } else {
                    RegistryError::bad_request(e.to_string())
                }
            })
    }

    /// Stores a small blob and returns its SHA-256.
    async fn put_bytes(&self, data: &[u8]) -> Result<String, RegistryError> {
        let spooled = self.spool.spool_bytes(data).await?;
        let sha256 = spooled.digests().sha256.clone();
        self.blobs.put_spooled(&blob_key(&sha256)?, spooled).await?;
        Ok(sha256)
    }
}

fn blob_key(sha256: &str) -> Result<BlobKey, RegistryError> {
    BlobKey::parse(sha256).map_err(|e| RegistryError::Internal(e.to_string()))
}
