//! Wheel inspection (standards H7, H8, K1).

use std::collections::BTreeSet;
use std::io::{Read, Seek};

use zip::{CompressionMethod, ZipArchive};

use super::capped::read_capped;
use super::member_path::components;
use super::{
    ArchiveError, ArchiveLimits, Inspected, expect_kind, parse_metadata, requires_license_files,
};
use crate::filename::{DistFilename, DistKind};
use crate::name::normalize;
use crate::text::quote;
use crate::version::parse_version;

const DIST_INFO_SUFFIX: &str = ".dist-info";

/// Checks a wheel and returns its `{name}-{version}.dist-info/METADATA`.
///
/// The zip must open, list each name once, agree with its local headers, use only the stored
/// and deflate methods and stay within `limits`. It must have exactly one top-level `.dist-info`
/// directory, whose name and version normalize to the filename's, holding `WHEEL` and
/// `METADATA`. METADATA is read through a cap, so a zip bomb is refused after at most
/// `max_metadata_bytes + 1` bytes.
pub fn inspect_wheel<R: Read + Seek>(
    reader: R,
    filename: &DistFilename,
    limits: &ArchiveLimits,
) -> Result<Inspected, ArchiveError> {
    expect_kind(filename, DistKind::Wheel)?;
    let mut archive = ZipArchive::new(reader).map_err(|e| {
        ArchiveError::invalid(format!(
            "not a valid zip archive ({e}); the upload may be truncated or not a wheel"
        ))
    })?;
    let names = check_entries(&archive, limits)?;
    archive.validate_header_consistency().map_err(|e| {
        ArchiveError::invalid(format!(
            "the zip archive is inconsistent ({e}); rebuild the wheel with a standard tool"
        ))
    })?;

    let dist_info = find_dist_info(&names, filename)?;
    let wheel_file = format!("{dist_info}/WHEEL");
    if !names.contains(&wheel_file) {
        return Err(ArchiveError::MissingWheelFile {
            filename: filename.raw.clone(),
            expected: wheel_file,
        });
    }
    let member = format!("{dist_info}/METADATA");
    let Some(index) = archive.index_for_name(&member) else {
        return Err(ArchiveError::MissingWheelMetadata {
            filename: filename.raw.clone(),
            expected: member,
            found: None,
        });
    };
    let bytes = read_member(&mut archive, index, &member, limits.max_metadata_bytes)?;
    let inspected = parse_metadata(&member, bytes)?;
    if requires_license_files(&inspected.metadata) {
        for license_file in &inspected.metadata.license_files {
            let expected = format!("{dist_info}/licenses/{license_file}");
            if !names.contains(&expected) {
                return Err(ArchiveError::MissingLicenseFile {
                    license_file: license_file.clone(),
                    expected,
                });
            }
        }
    }
    Ok(inspected)
}

/// Checks every central directory entry and returns the set of names.
fn check_entries<R: Read + Seek>(
    archive: &ZipArchive<R>,
    limits: &ArchiveLimits,
) -> Result<BTreeSet<String>, ArchiveError> {
    if archive.has_duplicate_names() {
        return Err(ArchiveError::invalid(
            "the zip archive lists the same file name more than once; rebuild the wheel",
        ));
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
                "the wheel member '{}' {reason}; wheel paths must stay inside the wheel",
                quote(&name)
            )));
        }
        if entry.encrypted() {
            return Err(ArchiveError::invalid(format!(
                "the wheel member '{}' is encrypted",
                quote(&name)
            )));
        }
        let method = entry.compression();
        if !matches!(
            method,
            CompressionMethod::Stored | CompressionMethod::Deflated
        ) {
            return Err(ArchiveError::invalid(format!(
                "the wheel member '{}' uses the {method:?} compression method; wheels may only \
                 use stored or deflate",
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

/// Finds the one top-level `.dist-info` directory, which must match the filename (K1).
fn find_dist_info(
    names: &BTreeSet<String>,
    filename: &DistFilename,
) -> Result<String, ArchiveError> {
    let dirs: BTreeSet<&str> = names
        .iter()
        .filter_map(|name| {
            let (top, _) = name.split_once('/')?;
            top.ends_with(DIST_INFO_SUFFIX).then_some(top)
        })
        .collect();
    let matching: Vec<&str> = dirs
        .iter()
        .copied()
        .filter(|dir| dist_info_matches(dir, filename))
        .collect();
    match (matching.as_slice(), dirs.len()) {
        ([only], 1) => Ok((*only).to_owned()),
        ([], 0) => Err(missing_metadata(filename, None)),
        ([], _) => Err(missing_metadata(
            filename,
            dirs.iter().next().map(|dir| (*dir).to_owned()),
        )),
        _ => Err(ArchiveError::invalid(format!(
            "the wheel contains more than one top-level .dist-info directory ({}); a wheel \
             has exactly one, named {}-{}.dist-info",
            dirs.iter().map(|d| quote(d)).collect::<Vec<_>>().join(", "),
            quote(&filename.name_part),
            quote(&filename.version_part),
        ))),
    }
}

fn missing_metadata(filename: &DistFilename, found: Option<String>) -> ArchiveError {
    ArchiveError::MissingWheelMetadata {
        filename: filename.raw.clone(),
        expected: format!(
            "{}-{}{DIST_INFO_SUFFIX}/METADATA",
            filename.name_part, filename.version_part
        ),
        found,
    }
}

/// Whether `{name}-{version}.dist-info` names the filename's project and version, after
/// normalization (`Foo_Bar-1.0.0.dist-info` matches `foo_bar-1.0-….whl`).
fn dist_info_matches(dir: &str, filename: &DistFilename) -> bool {
    let Some(stem) = dir.strip_suffix(DIST_INFO_SUFFIX) else {
        return false;
    };
    let project = filename.project();
    stem.match_indices('-').any(|(index, _)| {
        let (Some(name), Some(version)) = (stem.get(..index), stem.get(index + 1..)) else {
            return false;
        };
        normalize(name) == project
            && parse_version(version).is_ok_and(|version| version == filename.version)
    })
}

/// Reads one member through the metadata cap.
fn read_member<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    index: usize,
    member: &str,
    limit: u64,
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
            "cannot decompress {member} ({e}); the wheel is corrupt"
        ))),
    }
}

#[cfg(test)]
mod tests;
