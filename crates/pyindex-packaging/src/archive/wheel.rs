//! Wheel inspection (standards H7, H8, K1).

use std::collections::BTreeSet;
use std::io::{Read, Seek};

use super::zip_members::{Members, open_zip, read_member};
use super::{
    ArchiveError, ArchiveLimits, Inspected, expect_kind, parse_metadata, requires_license_files,
};
use crate::filename::{DistFilename, DistKind};
use crate::name::normalize;
use crate::text::quote;
use crate::version::parse_version;

const DIST_INFO_SUFFIX: &str = ".dist-info";
const WHEEL: Members = Members::Wheel;

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
    let (mut archive, names) = open_zip(reader, limits, WHEEL)?;

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
    let bytes = read_member(
        &mut archive,
        index,
        &member,
        limits.max_metadata_bytes,
        WHEEL,
    )?;
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

#[cfg(test)]
mod tests;
