//! The Python packaging domain for pyindex: project names, versions, distribution filenames,
//! core metadata, archive inspection, and READMEs rendered to safe HTML.
//!
//! Everything here is pure and synchronous; the only I/O is reading an archive the caller hands
//! over (see [`archive`]). Every error message is written to be shown verbatim to people running
//! `twine upload` or `uv publish`: it says what is wrong and, where possible, how to fix it.

#![warn(missing_docs)]

pub mod archive;
pub mod filename;
pub mod lockfile;
pub mod metadata;
pub mod name;
pub mod readme;
pub mod version;

mod text;

pub use archive::{
    ArchiveError, ArchiveLimits, Inspected, inspect_path, inspect_sdist, inspect_wheel,
    inspect_zip_sdist,
};
pub use filename::{
    DistFilename, DistForm, DistKey, DistKind, FilenameError, SdistFormat, WheelTags,
    expected_sdist_filename, parse_filename, parse_filename_for,
};
pub use metadata::{CoreMetadata, MetadataError};
pub use name::{InvalidName, ProjectName, is_valid_name, normalize};
pub use version::{InvalidVersion, Version, VersionSpecifiers, canonical_version, parse_version};
