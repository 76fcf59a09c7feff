//! Builders for small in-memory wheels and sdists used by the archive tests.

use std::io::{Cursor, Write};

use flate2::Compression;
use flate2::write::GzEncoder;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::{ArchiveError, Inspected};
use crate::filename::{DistFilename, parse_filename};

/// Parses a filename that the test knows to be valid.
pub(crate) fn filename(raw: &str) -> DistFilename {
    parse_filename(raw).unwrap()
}

/// Minimal valid core metadata.
pub(crate) fn metadata_text(name: &str, version: &str) -> String {
    format!(
        "Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: Test package\n\
         Requires-Dist: requests>=2\n\nA description.\n"
    )
}

/// A zip holding `entries` (name, content), deflated.
pub(crate) fn zip_bytes(entries: &[(&str, &[u8])]) -> Vec<u8> {
    zip_with(entries, CompressionMethod::Deflated)
}

/// A zip holding `entries` (name, content) with the given method.
pub(crate) fn zip_with(entries: &[(&str, &[u8])], method: CompressionMethod) -> Vec<u8> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(method);
    for (name, content) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(content).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// The members of a plausible wheel for `name` (dist spelling) and `version`.
pub(crate) fn wheel_entries(name: &str, version: &str) -> Vec<(String, Vec<u8>)> {
    let dist_info = format!("{name}-{version}.dist-info");
    vec![
        (format!("{name}/__init__.py"), b"print('hi')\n".to_vec()),
        (
            format!("{dist_info}/METADATA"),
            metadata_text(name, version).into_bytes(),
        ),
        (
            format!("{dist_info}/WHEEL"),
            b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
                .to_vec(),
        ),
        (format!("{dist_info}/RECORD"), b"".to_vec()),
    ]
}

/// A zip from owned entries.
pub(crate) fn zip_owned(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let borrowed: Vec<(&str, &[u8])> = entries
        .iter()
        .map(|(name, content)| (name.as_str(), content.as_slice()))
        .collect();
    zip_bytes(&borrowed)
}

/// A valid wheel.
pub(crate) fn good_wheel(name: &str, version: &str) -> Vec<u8> {
    zip_owned(&wheel_entries(name, version))
}

/// Overwrites, in the local and central headers of the entry called `name`, the 4-byte field at
/// `local_offset` / `central_offset` from each header's signature.
pub(crate) fn patch_zip_field(
    zip: &mut [u8],
    name: &str,
    local_offset: usize,
    central_offset: usize,
    value: &[u8],
) {
    let name = name.as_bytes();
    let mut patched = 0;
    for pos in 0..zip.len() {
        let signature = zip.get(pos..pos + 4);
        let (offset, name_at) = match signature {
            Some(b"PK\x03\x04") => (local_offset, pos + 30),
            Some(b"PK\x01\x02") => (central_offset, pos + 46),
            _ => continue,
        };
        if zip.get(name_at..name_at + name.len()) == Some(name) {
            zip[pos + offset..pos + offset + value.len()].copy_from_slice(value);
            patched += 1;
        }
    }
    assert_eq!(patched, 2, "expected one local and one central header");
}

/// One member of a test tarball.
pub(crate) enum Member<'a> {
    /// A regular file.
    File(&'a str, &'a [u8]),
    /// A directory.
    Dir(&'a str),
    /// A symbolic link and its target.
    Symlink(&'a str, &'a str),
    /// A hard link and its target.
    HardLink(&'a str, &'a str),
    /// A named pipe.
    Fifo(&'a str),
    /// A character device.
    CharDevice(&'a str),
    /// A pax global header, as `git archive` writes.
    GlobalHeader(&'a [u8]),
    /// A regular file whose path is given in a PAX record (the header holds `header_path`).
    PaxPath(&'a str, &'a str, &'a [u8]),
}

/// An uncompressed tarball. Paths are written verbatim (even `..` or absolute ones), and long
/// paths through GNU long-name records, as `tar::Builder` does.
pub(crate) fn tar_bytes(members: &[Member<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for member in members {
        match member {
            Member::File(path, content) => {
                append(&mut builder, path, tar::EntryType::Regular, None, content)
            }
            Member::Dir(path) => append(&mut builder, path, tar::EntryType::Directory, None, b""),
            Member::Symlink(path, target) => {
                append(
                    &mut builder,
                    path,
                    tar::EntryType::Symlink,
                    Some(target),
                    b"",
                );
            }
            Member::HardLink(path, target) => {
                append(&mut builder, path, tar::EntryType::Link, Some(target), b"");
            }
            Member::Fifo(path) => append(&mut builder, path, tar::EntryType::Fifo, None, b""),
            Member::CharDevice(path) => append(&mut builder, path, tar::EntryType::Char, None, b""),
            Member::GlobalHeader(data) => {
                append(
                    &mut builder,
                    "pax_global_header",
                    tar::EntryType::XGlobalHeader,
                    None,
                    data,
                );
            }
            Member::PaxPath(real_path, header_path, content) => {
                builder
                    .append_pax_extensions([("path", real_path.as_bytes())])
                    .unwrap();
                append(
                    &mut builder,
                    header_path,
                    tar::EntryType::Regular,
                    None,
                    content,
                );
            }
        }
    }
    builder.into_inner().unwrap()
}

fn append(
    builder: &mut tar::Builder<Vec<u8>>,
    path: &str,
    kind: tar::EntryType,
    link: Option<&str>,
    content: &[u8],
) {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_size(content.len() as u64);
    if let Some(link) = link {
        header.set_link_name_literal(link).unwrap();
    }
    if path.len() <= 100 {
        let gnu = header.as_gnu_mut().unwrap();
        gnu.name = [0; 100];
        gnu.name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_cksum();
        builder.append(&header, content).unwrap();
    } else {
        builder.append_data(&mut header, path, content).unwrap();
    }
}

/// Gzip-compresses `data`.
pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// A `.tar.gz` of `members`.
pub(crate) fn tar_gz(members: &[Member<'_>]) -> Vec<u8> {
    gzip(&tar_bytes(members))
}

/// A valid sdist for `name` (dist spelling) and `version`.
pub(crate) fn good_sdist(name: &str, version: &str) -> Vec<u8> {
    let top = format!("{name}-{version}");
    let pkg_info = metadata_text(name, version);
    let pyproject = format!("{top}/pyproject.toml");
    let pkg_info_path = format!("{top}/PKG-INFO");
    let module = format!("{top}/src/{name}/__init__.py");
    tar_gz(&[
        Member::Dir(&top),
        Member::File(&pkg_info_path, pkg_info.as_bytes()),
        Member::File(&pyproject, b"[project]\n"),
        Member::File(&module, b""),
    ])
}

/// The message of an archive the inspector refused, failing the test if it was accepted or
/// refused as a server fault.
pub fn refusal(result: Result<Inspected, ArchiveError>) -> String {
    match result {
        Ok(inspected) => panic!("accepted: {:?}", inspected.metadata),
        Err(e) => {
            assert!(!e.is_server_fault(), "{e}");
            e.to_string()
        }
    }
}
