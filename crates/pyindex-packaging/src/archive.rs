//! Inspecting uploaded distributions (standards H7, H8, H9, K1, K2): check the archive is safe
//! to read and return its core metadata, byte for byte.
//!
//! Everything here is synchronous; callers run it on a blocking thread. Memory stays bounded
//! whatever the input: every member is read through a size cap and nothing is extracted.

mod capped;
mod member_path;
mod sdist;
mod wheel;
mod zip_members;
mod zip_sdist;

#[cfg(test)]
mod test_support;

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

pub use sdist::inspect_sdist;
pub use wheel::inspect_wheel;
pub use zip_sdist::inspect_zip_sdist;

use crate::filename::{DistFilename, DistForm, DistKind, SdistFormat};
use crate::metadata::{CoreMetadata, MetadataError};
use crate::text::quote;

/// Size and count limits applied while inspecting an archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// The largest METADATA / PKG-INFO accepted, in bytes.
    pub max_metadata_bytes: u64,
    /// The largest total decompressed size accepted, in bytes (wheels: the sum of the declared
    /// member sizes; sdists: the decompressed tar stream).
    pub max_total_uncompressed: u64,
    /// The largest number of archive members accepted.
    pub max_entries: u64,
}

impl Default for ArchiveLimits {
    /// 8 MiB of metadata, 8 GiB decompressed, 100 000 members.
    fn default() -> Self {
        ArchiveLimits {
            max_metadata_bytes: 8 * 1024 * 1024,
            max_total_uncompressed: 8 * 1024 * 1024 * 1024,
            max_entries: 100_000,
        }
    }
}

/// The result of inspecting a distribution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspected {
    /// The exact bytes of `*.dist-info/METADATA` or `<top>/PKG-INFO`: the PEP 658 metadata file.
    pub metadata_bytes: Vec<u8>,
    /// The parsed and validated metadata.
    pub metadata: CoreMetadata,
}

/// Why a distribution was refused.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The server could not open or read the file; not the uploader's fault.
    #[error("Could not read the distribution file: {0}")]
    Io(#[source] std::io::Error),
    /// The archive is malformed or unsafe.
    #[error("Invalid distribution file: {0}")]
    Invalid(String),
    /// The wheel has no `{name}-{version}.dist-info/METADATA` matching its filename.
    #[error(
        "Wheel '{}' does not contain the required METADATA file: {expected}{}",
        quote(.filename),
        found_suffix(.found)
    )]
    MissingWheelMetadata {
        /// The wheel's filename.
        filename: String,
        /// The path that was looked for.
        expected: String,
        /// A `.dist-info` directory that exists but does not match the filename.
        found: Option<String>,
    },
    /// The wheel's `.dist-info` directory has no `WHEEL` file.
    #[error("Wheel '{}' does not contain the required WHEEL file: {expected}", quote(.filename))]
    MissingWheelFile {
        /// The wheel's filename.
        filename: String,
        /// The path that was looked for.
        expected: String,
    },
    /// The sdist has no `<top>/PKG-INFO`.
    #[error(
        "Source distribution '{}' does not contain the required PKG-INFO file: {expected}; \
         build it with a current build backend (python -m build --sdist)",
        quote(.filename)
    )]
    MissingPkgInfo {
        /// The sdist's filename.
        filename: String,
        /// The path that was looked for.
        expected: String,
    },
    /// METADATA / PKG-INFO is over [`ArchiveLimits::max_metadata_bytes`].
    #[error("Invalid distribution file: {member} is larger than the limit of {limit} bytes")]
    MetadataTooLarge {
        /// The member's path.
        member: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// More members than [`ArchiveLimits::max_entries`].
    #[error("Invalid distribution file: the archive has more than the limit of {limit} entries")]
    TooManyEntries {
        /// The limit.
        limit: u64,
    },
    /// Decompresses to more than [`ArchiveLimits::max_total_uncompressed`].
    #[error(
        "Invalid distribution file: the archive decompresses to more than the limit of {limit} bytes"
    )]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// METADATA / PKG-INFO was found but is not valid core metadata.
    #[error("Invalid core metadata in {member}: {}", .source.reason())]
    Metadata {
        /// The member's path.
        member: String,
        /// What is wrong with it.
        #[source]
        source: MetadataError,
    },
    /// Metadata 2.4+ lists a `License-File` that is not in the archive.
    #[error(
        "Invalid distribution file: License-File '{}' is listed in the metadata but {expected} \
         is not in the archive",
        quote(.license_file)
    )]
    MissingLicenseFile {
        /// The `License-File` value.
        license_file: String,
        /// The archive path where it should be.
        expected: String,
    },
}

impl ArchiveError {
    /// Whether the error is the server's fault (answer 5xx) rather than the upload's (4xx).
    pub fn is_server_fault(&self) -> bool {
        matches!(self, ArchiveError::Io(_))
    }

    fn invalid(reason: impl Into<String>) -> ArchiveError {
        ArchiveError::Invalid(reason.into())
    }
}

fn found_suffix(found: &Option<String>) -> String {
    match found {
        Some(dir) => format!(
            " (found '{}' instead, which does not match the filename)",
            quote(dir)
        ),
        None => String::new(),
    }
}

/// Opens the file at `path` and inspects it as a wheel or sdist, as `filename.form` says.
pub fn inspect_path(
    path: &Path,
    filename: &DistFilename,
    limits: &ArchiveLimits,
) -> Result<Inspected, ArchiveError> {
    let file = File::open(path).map_err(ArchiveError::Io)?;
    let reader = BufReader::new(file);
    match filename.form {
        DistForm::Wheel(_) => inspect_wheel(reader, filename, limits),
        DistForm::Sdist(SdistFormat::TarGz) => inspect_sdist(reader, filename, limits),
        DistForm::Sdist(SdistFormat::Zip) => inspect_zip_sdist(reader, filename, limits),
    }
}

/// Refuses a filename of the other kind (a caller bug, reported rather than trusted).
fn expect_kind(filename: &DistFilename, kind: DistKind) -> Result<(), ArchiveError> {
    if filename.kind() == kind {
        Ok(())
    } else {
        Err(ArchiveError::invalid(format!(
            "'{}' is not a {} file",
            quote(&filename.raw),
            kind.as_str()
        )))
    }
}

/// Parses the metadata bytes read from `member`.
fn parse_metadata(member: &str, bytes: Vec<u8>) -> Result<Inspected, ArchiveError> {
    match CoreMetadata::parse(&bytes) {
        Ok(metadata) => Ok(Inspected {
            metadata_bytes: bytes,
            metadata,
        }),
        Err(source) => Err(ArchiveError::Metadata {
            member: member.to_owned(),
            source,
        }),
    }
}

/// Whether `License-File` entries must be present in the archive (metadata 2.4 and later).
fn requires_license_files(metadata: &CoreMetadata) -> bool {
    metadata
        .metadata_version_number()
        .is_some_and(|number| number >= (2, 4))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::test_support::*;
    use super::*;

    #[test]
    fn default_limits() {
        let limits = ArchiveLimits::default();
        assert_eq!(limits.max_metadata_bytes, 8 << 20);
        assert_eq!(limits.max_total_uncompressed, 8 << 30);
        assert_eq!(limits.max_entries, 100_000);
    }

    #[test]
    fn inspect_path_dispatches_on_kind() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let wheel_path = dir.join("demo-1.0-py3-none-any.whl");
        std::fs::File::create(&wheel_path)
            .unwrap()
            .write_all(&good_wheel("demo", "1.0"))
            .unwrap();
        let sdist_path = dir.join("demo-1.0.tar.gz");
        std::fs::File::create(&sdist_path)
            .unwrap()
            .write_all(&good_sdist("demo", "1.0"))
            .unwrap();
        let limits = ArchiveLimits::default();

        let wheel =
            inspect_path(&wheel_path, &filename("demo-1.0-py3-none-any.whl"), &limits).unwrap();
        assert_eq!(wheel.metadata.name, "demo");
        let sdist = inspect_path(&sdist_path, &filename("demo-1.0.tar.gz"), &limits).unwrap();
        assert_eq!(sdist.metadata.name, "demo");

        let missing = inspect_path(
            &dir.join("missing.whl"),
            &filename("demo-1.0-py3-none-any.whl"),
            &limits,
        )
        .unwrap_err();
        assert!(missing.is_server_fault());
    }

    #[test]
    fn wrong_kind_is_refused() {
        let err = inspect_wheel(
            std::io::Cursor::new(good_wheel("demo", "1.0")),
            &filename("demo-1.0.tar.gz"),
            &ArchiveLimits::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("is not a bdist_wheel file"),
            "{err}"
        );
        assert!(!err.is_server_fault());
    }

    #[test]
    fn messages() {
        let err = ArchiveError::MissingWheelMetadata {
            filename: "a-1-py3-none-any.whl".into(),
            expected: "a-1.dist-info/METADATA".into(),
            found: None,
        };
        assert_eq!(
            err.to_string(),
            "Wheel 'a-1-py3-none-any.whl' does not contain the required METADATA file: \
             a-1.dist-info/METADATA"
        );
        let err = ArchiveError::MetadataTooLarge {
            member: "a-1.dist-info/METADATA".into(),
            limit: 10,
        };
        assert_eq!(
            err.to_string(),
            "Invalid distribution file: a-1.dist-info/METADATA is larger than the limit of 10 bytes"
        );
    }
}
