//! `.zip` source distribution inspection (standards H7, H9, K2): the format older tools made,
//! still found on package indexes and in the trees pyindex imports.
//!
//! The rules are the `.tar.gz` ones: every member under one top-level directory, no link, and
//! `<top>/PKG-INFO` present, read through the metadata cap.

use std::collections::BTreeSet;
use std::io::{Read, Seek};

use super::member_path::components;
use super::zip_members::{Members, open_zip, read_member};
use super::{
    ArchiveError, ArchiveLimits, Inspected, expect_kind, parse_metadata, requires_license_files,
};
use crate::filename::{DistFilename, DistKind};
use crate::text::quote;

/// Checks a `.zip` source distribution and returns its `<top>/PKG-INFO`.
pub fn inspect_zip_sdist<R: Read + Seek>(
    reader: R,
    filename: &DistFilename,
    limits: &ArchiveLimits,
) -> Result<Inspected, ArchiveError> {
    expect_kind(filename, DistKind::Sdist)?;
    let (mut archive, names) = open_zip(reader, limits, Members::Sdist)?;
    let top = top_level_directory(&names)?;
    let member = format!("{top}/PKG-INFO");
    let Some(index) = archive.index_for_name(&member) else {
        return Err(ArchiveError::MissingPkgInfo {
            filename: filename.raw.clone(),
            expected: member,
        });
    };
    let bytes = read_member(
        &mut archive,
        index,
        &member,
        limits.max_metadata_bytes,
        Members::Sdist,
    )?;
    let inspected = parse_metadata(&member, bytes)?;
    if requires_license_files(&inspected.metadata) {
        for license_file in &inspected.metadata.license_files {
            let expected = format!("{top}/{license_file}");
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

/// The one directory every member lives in; a file beside it or a second directory is refused.
fn top_level_directory(names: &BTreeSet<String>) -> Result<String, ArchiveError> {
    let mut top: Option<&str> = None;
    for name in names {
        // Paths were checked when the entries were listed; an empty path has no top.
        let parts = components(name).unwrap_or_default();
        let Some(first) = parts.first().copied() else {
            continue;
        };
        if parts.len() == 1 && !name.ends_with('/') {
            return Err(ArchiveError::invalid(format!(
                "'{}' is a file at the top level; a source distribution holds everything in \
                 one top-level directory named {{name}}-{{version}}",
                quote(first)
            )));
        }
        match top {
            None => top = Some(first),
            Some(seen) if seen == first => {}
            Some(seen) => {
                return Err(ArchiveError::invalid(format!(
                    "the archive has more than one top-level directory ('{}' and '{}'); a \
                     source distribution holds everything in one directory named \
                     {{name}}-{{version}}",
                    quote(seen),
                    quote(first)
                )));
            }
        }
    }
    top.map(str::to_owned).ok_or_else(|| {
        ArchiveError::invalid(
            "the archive contains no files; build the sdist with python -m build --sdist",
        )
    })
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::super::test_support::{filename, metadata_text, refusal, zip_bytes};
    use super::*;

    fn inspect(bytes: Vec<u8>) -> Result<Inspected, ArchiveError> {
        inspect_zip_sdist(
            Cursor::new(bytes),
            &filename("Demo-1.0.zip"),
            &ArchiveLimits::default(),
        )
    }

    #[test]
    fn reads_pkg_info_from_the_top_level_directory() {
        let pkg_info = metadata_text("Demo", "1.0");
        let inspected = inspect(zip_bytes(&[
            ("Demo-1.0/", b""),
            ("Demo-1.0/PKG-INFO", pkg_info.as_bytes()),
            ("Demo-1.0/demo.py", b"x = 1\n"),
        ]))
        .unwrap();
        assert_eq!(inspected.metadata.name, "Demo");
        assert_eq!(inspected.metadata_bytes, pkg_info.as_bytes());
    }

    #[test]
    fn refuses_what_a_tar_gz_sdist_may_not_hold() {
        let pkg_info = metadata_text("Demo", "1.0");
        for (entries, needle) in [
            (
                vec![("Demo-1.0/demo.py", &b"x"[..])],
                "does not contain the required PKG-INFO file: Demo-1.0/PKG-INFO",
            ),
            (
                vec![
                    ("Demo-1.0/PKG-INFO", pkg_info.as_bytes()),
                    ("setup.py", b""),
                ],
                "is a file at the top level",
            ),
            (
                vec![
                    ("Demo-1.0/PKG-INFO", pkg_info.as_bytes()),
                    ("Other-1.0/x.py", b""),
                ],
                "more than one top-level directory",
            ),
            (
                vec![("../Demo-1.0/PKG-INFO", pkg_info.as_bytes())],
                "contains '..'",
            ),
            (vec![], "contains no files"),
        ] {
            let message = refusal(inspect(zip_bytes(&entries)));
            assert!(message.contains(needle), "{needle}: {message}");
        }
        let message = refusal(inspect(b"PK not really a zip".to_vec()));
        assert!(message.contains("not a valid zip archive"), "{message}");
    }

    #[test]
    fn refuses_symbolic_links() {
        use std::io::Write;
        use zip::ZipWriter;
        use zip::write::SimpleFileOptions;
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default();
        writer.start_file("Demo-1.0/PKG-INFO", options).unwrap();
        writer
            .write_all(metadata_text("Demo", "1.0").as_bytes())
            .unwrap();
        writer
            .add_symlink("Demo-1.0/passwd", "/etc/passwd", options)
            .unwrap();
        let bytes = writer.finish().unwrap().into_inner();
        let message = refusal(inspect(bytes));
        assert!(message.contains("is a symbolic link"), "{message}");
    }
}
