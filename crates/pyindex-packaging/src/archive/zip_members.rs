//! Reading zip archives safely, for wheels and for `.zip` source distributions: every entry is
//! checked (names, paths, methods, declared sizes) before any member is read, and members are read
//! through a size cap.

use std::collections::BTreeSet;
use std::io::{Read, Seek};

use zip::{CompressionMethod, ZipArchive};

use super::capped::read_capped;
use super::member_path::components;
use super::{ArchiveError, ArchiveLimits};
use crate::text::quote;

/// What the zip holds, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Members {
    /// A wheel.
    Wheel,
    /// A `.zip` source distribution.
    Sdist,
}

impl Members {
    fn noun(self) -> &'static str {
        match self {
            Members::Wheel => "wheel",
            Members::Sdist => "source distribution",
        }
    }
}

/// Opens the zip and checks every entry; returns the archive and its member names.
pub(super) fn open_zip<R: Read + Seek>(
    reader: R,
    limits: &ArchiveLimits,
    members: Members,
) -> Result<(ZipArchive<R>, BTreeSet<String>), ArchiveError> {
    let noun = members.noun();
    let mut archive = ZipArchive::new(reader).map_err(|e| {
        ArchiveError::invalid(format!(
            "not a valid zip archive ({e}); the upload may be truncated or not a {noun}"
        ))
    })?;
    let names = check_entries(&archive, limits, members)?;
    archive.validate_header_consistency().map_err(|e| {
        ArchiveError::invalid(format!(
            "the zip archive is inconsistent ({e}); rebuild the {noun} with a standard tool"
        ))
    })?;
    Ok((archive, names))
}

/// Checks every central directory entry and returns the set of names.
fn check_entries<R: Read + Seek>(
    archive: &ZipArchive<R>,
    limits: &ArchiveLimits,
    members: Members,
) -> Result<BTreeSet<String>, ArchiveError> {
    let noun = members.noun();
    if archive.has_duplicate_names() {
        return Err(ArchiveError::invalid(format!(
            "the zip archive lists the same file name more than once; rebuild the {noun}"
        )));
    }
    if u64::try_from(archive.len()).unwrap_or(u64::MAX) > limits.max_entries {
        return Err(ArchiveError::TooManyEntries {
            limit: limits.max_entries,
        });
    }
    let mut names = BTreeSet::new();
    let mut total: u64 = 0;
    for index in 0..archive.len() {
        let entry = archive.by_index_data(index).map_err(|e| {
            ArchiveError::invalid(format!("cannot read zip entry number {index} ({e})"))
        })?;
        let name = entry
            .name()
            .map_err(|e| {
                ArchiveError::invalid(format!(
                    "zip entry number {index} has an unreadable name ({e})"
                ))
            })?
            .into_owned();
        if let Err(reason) = components(&name) {
            return Err(ArchiveError::invalid(format!(
                "the {noun} member '{}' {reason}; member paths must stay inside the archive",
                quote(&name)
            )));
        }
        if entry.encrypted() {
            return Err(ArchiveError::invalid(format!(
                "the {noun} member '{}' is encrypted",
                quote(&name)
            )));
        }
        if members == Members::Sdist && entry.is_symlink() {
            return Err(ArchiveError::invalid(format!(
                "the {noun} member '{}' is a symbolic link, which .zip source distributions \
                 may not contain; build a .tar.gz with python -m build --sdist",
                quote(&name)
            )));
        }
        let method = entry.compression();
        if !matches!(
            method,
            CompressionMethod::Stored | CompressionMethod::Deflated
        ) {
            return Err(ArchiveError::invalid(format!(
                "the {noun} member '{}' uses the {method:?} compression method; only stored \
                 and deflate are supported",
                quote(&name)
            )));
        }
        total = total.saturating_add(entry.size());
        if total > limits.max_total_uncompressed {
            return Err(ArchiveError::TooLarge {
                limit: limits.max_total_uncompressed,
            });
        }
        names.insert(name);
    }
    Ok(names)
}

/// Reads one member through the metadata cap.
pub(super) fn read_member<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    index: usize,
    member: &str,
    limit: u64,
    members: Members,
) -> Result<Vec<u8>, ArchiveError> {
    let too_large = || ArchiveError::MetadataTooLarge {
        member: member.to_owned(),
        limit,
    };
    let file = archive.by_index(index).map_err(|e| {
        ArchiveError::invalid(format!("cannot open {member} in the zip archive ({e})"))
    })?;
    if file.size() > limit {
        return Err(too_large());
    }
    match read_capped(file, limit) {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(too_large()),
        Err(e) => Err(ArchiveError::invalid(format!(
            "cannot decompress {member} ({e}); the {} is corrupt",
            members.noun()
        ))),
    }
}
