//! Source distribution inspection (standards H7, H9, K2).

use std::cell::Cell;
use std::collections::HashSet;
use std::io::{self, Cursor, Read};
use std::rc::Rc;

use flate2::read::GzDecoder;
use tar::{Archive, Entry, EntryType, PaxExtensions};

use super::capped::{CappedReader, read_capped};
use super::member_path::{components, resolve_symlink};
use super::{
    ArchiveError, ArchiveLimits, Inspected, expect_kind, parse_metadata, requires_license_files,
};
use crate::filename::{DistFilename, DistKind};
use crate::text::quote;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const NOT_GZIP: &str = "not a gzip-compressed tar archive; source distributions must be .tar.gz \
                        files (python -m build --sdist makes one)";
/// The largest GNU long-name or PAX extension record read, in bytes.
const MAX_EXTENSION_BYTES: u64 = 1024 * 1024;
/// Member paths longer than this are refused (Linux's PATH_MAX).
const MAX_PATH_BYTES: usize = 4096;
/// The most bytes of member paths remembered (for the License-File check), so that an archive
/// of many long names cannot make the server hold gigabytes.
const MAX_REMEMBERED_PATH_BYTES: usize = 16 * 1024 * 1024;

/// Checks a `.tar.gz` source distribution and returns its `<top>/PKG-INFO`.
///
/// The stream must be gzip and tar. Every member must have a relative path without `..` under
/// one top-level directory; devices, FIFOs and sparse files are refused, and so are links whose
/// target leaves that directory. Members are counted and the whole decompressed stream is
/// measured against `limits`, with PKG-INFO read through the metadata cap.
pub fn inspect_sdist<R: Read>(
    reader: R,
    filename: &DistFilename,
    limits: &ArchiveLimits,
) -> Result<Inspected, ArchiveError> {
    expect_kind(filename, DistKind::Sdist)?;
    let mut reader = reader;
    let mut magic = [0_u8; 2];
    match reader.read_exact(&mut magic) {
        Ok(()) if magic == GZIP_MAGIC => {}
        Ok(()) => return Err(ArchiveError::invalid(NOT_GZIP)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            return Err(ArchiveError::invalid(NOT_GZIP));
        }
        Err(e) => return Err(ArchiveError::Io(e)),
    }
    let decoder = GzDecoder::new(Cursor::new(magic).chain(reader));
    let (capped, exceeded) = CappedReader::new(decoder, limits.max_total_uncompressed);
    let mut archive = Archive::new(capped);
    let mut scan = Scan::new(filename, limits, exceeded);
    {
        let entries = archive.entries().map_err(|e| scan.stream_error(&e))?;
        for entry in entries.raw(true) {
            let entry = entry.map_err(|e| scan.stream_error(&e))?;
            scan.visit(entry)?;
        }
    }
    // Read to the end so that truncation and a bad gzip checksum are noticed, and the whole
    // stream counts against the size limit.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(|e| scan.stream_error(&e))?;
    scan.finish()
}

/// Extension records that apply to the next member.
#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax_path: Option<Vec<u8>>,
    pax_link: Option<Vec<u8>>,
    pax_size: Option<u64>,
}

/// State gathered while walking the members.
struct Scan<'f> {
    filename: &'f DistFilename,
    limits: ArchiveLimits,
    exceeded: Rc<Cell<bool>>,
    pending: Pending,
    members: u64,
    top: Option<String>,
    /// Paths of non-directory members, relative to the top-level directory.
    files: HashSet<String>,
    /// Total length of the paths in `files`.
    files_bytes: usize,
    pkg_info: Option<Vec<u8>>,
}

impl<'f> Scan<'f> {
    fn new(filename: &'f DistFilename, limits: &ArchiveLimits, exceeded: Rc<Cell<bool>>) -> Self {
        Scan {
            filename,
            limits: limits.clone(),
            exceeded,
            pending: Pending::default(),
            members: 0,
            top: None,
            files: HashSet::new(),
            files_bytes: 0,
            pkg_info: None,
        }
    }

    /// Maps a read error of the decompressed stream to the reason the upload is refused.
    fn stream_error(&self, e: &io::Error) -> ArchiveError {
        if self.exceeded.get() {
            ArchiveError::TooLarge {
                limit: self.limits.max_total_uncompressed,
            }
        } else {
            ArchiveError::invalid(format!("the .tar.gz archive is corrupt or truncated ({e})"))
        }
    }

    fn visit<R: Read>(&mut self, mut entry: Entry<'_, R>) -> Result<(), ArchiveError> {
        let kind = entry.header().entry_type();
        if kind.is_gnu_longname() {
            self.pending.long_name = Some(trim_nuls(self.read_extension(&mut entry)?));
            return Ok(());
        }
        if kind.is_gnu_longlink() {
            self.pending.long_link = Some(trim_nuls(self.read_extension(&mut entry)?));
            return Ok(());
        }
        if kind.is_pax_local_extensions() {
            let data = self.read_extension(&mut entry)?;
            return self.apply_pax(&data);
        }
        if kind.is_pax_global_extensions() {
            // Archive-wide comments such as git's commit id; nothing in them matters here.
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        self.visit_member(entry, pending)
    }

    fn visit_member<R: Read>(
        &mut self,
        entry: Entry<'_, R>,
        pending: Pending,
    ) -> Result<(), ArchiveError> {
        self.members = self.members.saturating_add(1);
        if self.members > self.limits.max_entries {
            return Err(ArchiveError::TooManyEntries {
                limit: self.limits.max_entries,
            });
        }
        let header = entry.header();
        let path_bytes = pending
            .pax_path
            .or(pending.long_name)
            .unwrap_or_else(|| header.path_bytes().into_owned());
        let path = String::from_utf8_lossy(&path_bytes).into_owned();
        if let Some(pax_size) = pending.pax_size
            && pax_size != entry.size()
        {
            return Err(ArchiveError::invalid(format!(
                "the member '{}' gives its size in a PAX record, which is not supported",
                quote(&path)
            )));
        }
        let parts = components(&path).map_err(|reason| {
            ArchiveError::invalid(format!(
                "the member '{}' {reason}; every path must be relative and inside the \
                 top-level directory",
                quote(&path)
            ))
        })?;
        let kind = header.entry_type();
        // Old (v7) archives mark directories only by a trailing slash.
        let is_dir = kind.is_dir() || (kind == EntryType::Regular && path.ends_with('/'));
        let Some((first, rest)) = parts.split_first() else {
            if is_dir {
                return Ok(());
            }
            return Err(ArchiveError::invalid(format!(
                "the member '{}' has an empty path",
                quote(&path)
            )));
        };
        self.check_top(first, rest.is_empty() && !is_dir)?;
        if is_dir {
            return Ok(());
        }
        let relative = rest.join("/");

        match kind {
            EntryType::Regular | EntryType::Continuous => {}
            EntryType::Symlink | EntryType::Link => {
                let target_bytes = pending
                    .pax_link
                    .or(pending.long_link)
                    .or_else(|| header.link_name_bytes().map(|b| b.into_owned()))
                    .unwrap_or_default();
                let target = String::from_utf8_lossy(&target_bytes).into_owned();
                self.check_link(&path, &parts, &target, kind == EntryType::Symlink)?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                return Err(ArchiveError::invalid(format!(
                    "the member '{}' is a device or FIFO; source distributions may only contain \
                     files, directories and links",
                    quote(&path)
                )));
            }
            EntryType::GNUSparse => {
                return Err(ArchiveError::invalid(format!(
                    "the member '{}' is a sparse file, which is not supported",
                    quote(&path)
                )));
            }
            other => {
                return Err(ArchiveError::invalid(format!(
                    "the member '{}' has the unsupported tar entry type '{}'",
                    quote(&path),
                    char::from(other.as_byte()).escape_default()
                )));
            }
        }

        if rest == ["PKG-INFO"] {
            if kind != EntryType::Regular && kind != EntryType::Continuous {
                return Err(ArchiveError::invalid(format!(
                    "{first}/PKG-INFO must be a regular file, not a link"
                )));
            }
            if self.pkg_info.is_some() {
                return Err(ArchiveError::invalid(format!(
                    "the archive contains {first}/PKG-INFO more than once"
                )));
            }
            let member = format!("{first}/PKG-INFO");
            self.pkg_info = Some(self.read_pkg_info(entry, &member)?);
        }
        self.remember(relative)
    }

    /// Remembers a member path, within [`MAX_PATH_BYTES`] and [`MAX_REMEMBERED_PATH_BYTES`].
    fn remember(&mut self, relative: String) -> Result<(), ArchiveError> {
        if relative.len() > MAX_PATH_BYTES {
            return Err(ArchiveError::invalid(format!(
                "a member path is longer than {MAX_PATH_BYTES} bytes"
            )));
        }
        self.files_bytes += relative.len();
        if self.files_bytes > MAX_REMEMBERED_PATH_BYTES {
            return Err(ArchiveError::invalid(format!(
                "the member paths add up to more than {MAX_REMEMBERED_PATH_BYTES} bytes"
            )));
        }
        self.files.insert(relative);
        Ok(())
    }

    /// Records the top-level directory, refusing a second one or a file beside it.
    fn check_top(&mut self, first: &str, is_top_level_file: bool) -> Result<(), ArchiveError> {
        if is_top_level_file {
            return Err(ArchiveError::invalid(format!(
                "'{}' is a file at the top level; a source distribution holds everything in \
                 one top-level directory named {{name}}-{{version}}",
                quote(first)
            )));
        }
        match &self.top {
            None => {
                self.top = Some(first.to_owned());
                Ok(())
            }
            Some(top) if top == first => Ok(()),
            Some(top) => Err(ArchiveError::invalid(format!(
                "the archive has more than one top-level directory ('{}' and '{}'); a source \
                 distribution holds everything in one directory named {{name}}-{{version}}",
                quote(top),
                quote(first)
            ))),
        }
    }

    /// Refuses links whose target is absolute or leaves the top-level directory.
    fn check_link(
        &self,
        path: &str,
        parts: &[&str],
        target: &str,
        symbolic: bool,
    ) -> Result<(), ArchiveError> {
        let resolved = if symbolic {
            resolve_symlink(parts, target)
        } else {
            components(target).ok()
        };
        let inside = match (resolved, &self.top) {
            (Some(resolved), Some(top)) => resolved.first().is_some_and(|first| first == top),
            _ => false,
        };
        if inside {
            Ok(())
        } else {
            Err(ArchiveError::invalid(format!(
                "the link '{}' points to '{}', outside the archive's top-level directory",
                quote(path),
                quote(target)
            )))
        }
    }

    fn read_pkg_info<R: Read>(
        &self,
        entry: Entry<'_, R>,
        member: &str,
    ) -> Result<Vec<u8>, ArchiveError> {
        let limit = self.limits.max_metadata_bytes;
        let too_large = || ArchiveError::MetadataTooLarge {
            member: member.to_owned(),
            limit,
        };
        if entry.size() > limit {
            return Err(too_large());
        }
        match read_capped(entry, limit) {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => Err(too_large()),
            Err(e) => Err(self.stream_error(&e)),
        }
    }

    fn read_extension<R: Read>(&self, entry: &mut Entry<'_, R>) -> Result<Vec<u8>, ArchiveError> {
        match read_capped(entry, MAX_EXTENSION_BYTES) {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => Err(ArchiveError::invalid(format!(
                "a tar extension header is larger than {MAX_EXTENSION_BYTES} bytes"
            ))),
            Err(e) => Err(self.stream_error(&e)),
        }
    }

    fn apply_pax(&mut self, data: &[u8]) -> Result<(), ArchiveError> {
        for record in PaxExtensions::new(data) {
            let record = record.map_err(|e| {
                ArchiveError::invalid(format!("a PAX extension header is malformed ({e})"))
            })?;
            match record.key_bytes() {
                b"path" => self.pending.pax_path = Some(record.value_bytes().to_vec()),
                b"linkpath" => self.pending.pax_link = Some(record.value_bytes().to_vec()),
                b"size" => {
                    let size = record
                        .value()
                        .ok()
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .ok_or_else(|| {
                            ArchiveError::invalid("a PAX size record is not a number")
                        })?;
                    self.pending.pax_size = Some(size);
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Inspected, ArchiveError> {
        let Some(top) = self.top else {
            return Err(ArchiveError::invalid(
                "the archive contains no files; build the sdist with python -m build --sdist",
            ));
        };
        let member = format!("{top}/PKG-INFO");
        let Some(bytes) = self.pkg_info else {
            return Err(ArchiveError::MissingPkgInfo {
                filename: self.filename.raw.clone(),
                expected: member,
            });
        };
        let inspected = parse_metadata(&member, bytes)?;
        if requires_license_files(&inspected.metadata) {
            for license_file in &inspected.metadata.license_files {
                let relative = components(license_file)
                    .map(|parts| parts.join("/"))
                    .unwrap_or_default();
                if !self.files.contains(&relative) {
                    return Err(ArchiveError::MissingLicenseFile {
                        license_file: license_file.clone(),
                        expected: format!("{top}/{license_file}"),
                    });
                }
            }
        }
        Ok(inspected)
    }
}

fn trim_nuls(mut bytes: Vec<u8>) -> Vec<u8> {
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    bytes
}

#[cfg(test)]
mod tests;
