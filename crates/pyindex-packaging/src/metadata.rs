//! Core metadata (`METADATA` / `PKG-INFO`), standards K3, K5 and H11.

mod headers;
pub(crate) mod requirement;

use std::str::FromStr;

use headers::{HeaderBlock, is_single_line, unfold, unfold_multiline};

use crate::name::ProjectName;
use crate::text::quote;
use crate::version::{Version, VersionSpecifiers, parse_version};

/// The fields of a core metadata file that the index validates, stores and serves.
///
/// Optional fields that are empty or `UNKNOWN` (what old setuptools wrote for "not given") are
/// absent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreMetadata {
    /// `Metadata-Version`, e.g. `2.4`.
    pub metadata_version: String,
    /// `Name` as written (the display name).
    pub name: String,
    /// `Version`, parsed.
    pub version: Version,
    /// `Version` as written.
    pub version_raw: String,
    /// `Summary`, one line.
    pub summary: Option<String>,
    /// The message body, or else the legacy `Description` field with its continuation
    /// prefixes removed.
    pub description: Option<String>,
    /// `Description-Content-Type`, e.g. `text/markdown; charset=UTF-8`.
    pub description_content_type: Option<String>,
    /// `Requires-Python` as written; it parses as a PEP 440 specifier set.
    pub requires_python: Option<String>,
    /// Every `Requires-Dist`; each parses as a PEP 508 requirement.
    pub requires_dist: Vec<String>,
    /// Every `Provides-Extra`.
    pub provides_extra: Vec<String>,
    /// Every `Dynamic` field name (never `Name`, `Version` or `Metadata-Version`).
    pub dynamic: Vec<String>,
    /// The legacy free-text `License`, line breaks kept.
    pub license: Option<String>,
    /// `License-Expression` (SPDX, metadata 2.4).
    pub license_expression: Option<String>,
    /// Every `Classifier`.
    pub classifiers: Vec<String>,
    /// Every `Project-URL`, as `Label, URL`.
    pub project_urls: Vec<String>,
    /// `Keywords`, a comma-separated string.
    pub keywords: Option<String>,
    /// `Author`.
    pub author: Option<String>,
    /// `Author-email`.
    pub author_email: Option<String>,
    /// `Home-page` (deprecated in favour of `Project-URL`).
    pub home_page: Option<String>,
    /// `Maintainer`.
    pub maintainer: Option<String>,
    /// `Maintainer-email`.
    pub maintainer_email: Option<String>,
    /// `Download-URL` (deprecated).
    pub download_url: Option<String>,
    /// Every `License-File` (metadata 2.4: paths inside the distribution).
    pub license_files: Vec<String>,
}

/// Core metadata that the index refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid core metadata: {reason}")]
pub struct MetadataError {
    field: Option<&'static str>,
    reason: String,
}

impl MetadataError {
    fn new(field: Option<&'static str>, reason: impl Into<String>) -> MetadataError {
        MetadataError {
            field,
            reason: reason.into(),
        }
    }

    /// The field at fault, if the problem is with one field.
    pub fn field(&self) -> Option<&'static str> {
        self.field
    }

    /// What is wrong, without the "Invalid core metadata" prefix.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// The fields that `Dynamic` may never name.
const NEVER_DYNAMIC: [&str; 3] = ["Name", "Version", "Metadata-Version"];

impl CoreMetadata {
    /// Parses and validates a `METADATA` / `PKG-INFO` file.
    ///
    /// Requires `Metadata-Version` (any 1.x or 2.x), a valid `Name` and a PEP 440 `Version`;
    /// checks that `Requires-Python` is a specifier set, every `Requires-Dist` a PEP 508
    /// requirement, `Summary` one line, and that `Dynamic` does not name the identity fields.
    pub fn parse(bytes: &[u8]) -> Result<CoreMetadata, MetadataError> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            MetadataError::new(
                None,
                format!(
                    "the file is not valid UTF-8 (invalid byte at offset {}); core metadata \
                     must be encoded as UTF-8",
                    e.valid_up_to()
                ),
            )
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let block = HeaderBlock::parse(text)?;

        let metadata_version = required(&block, "Metadata-Version")?;
        parse_metadata_version(&metadata_version)?;
        let name = required(&block, "Name")?;
        ProjectName::new(&name)
            .map_err(|e| MetadataError::new(Some("Name"), format!("Name {e}")))?;
        let version_raw = required(&block, "Version")?;
        let version = parse_version(&version_raw).map_err(|e| {
            MetadataError::new(
                Some("Version"),
                format!("Version {e}; use a version such as 1.0, 2.1.3 or 1.0rc1"),
            )
        })?;

        Ok(CoreMetadata {
            metadata_version,
            name,
            version,
            version_raw,
            summary: summary(&block)?,
            description: description(&block)?,
            description_content_type: optional(&block, "Description-Content-Type")?,
            requires_python: requires_python(&block)?,
            requires_dist: requires_dist(&block)?,
            provides_extra: repeated(&block, "Provides-Extra"),
            dynamic: dynamic(&block)?,
            license: block
                .single("License")?
                .map(unfold_multiline)
                .and_then(present),
            license_expression: optional(&block, "License-Expression")?,
            classifiers: repeated(&block, "Classifier"),
            project_urls: repeated(&block, "Project-URL"),
            keywords: optional(&block, "Keywords")?,
            author: optional(&block, "Author")?,
            author_email: optional(&block, "Author-email")?,
            home_page: optional(&block, "Home-page")?,
            maintainer: optional(&block, "Maintainer")?,
            maintainer_email: optional(&block, "Maintainer-email")?,
            download_url: optional(&block, "Download-URL")?,
            license_files: repeated(&block, "License-File"),
        })
    }

    /// The normalized project name. `parse` validated `name`; should the field have been
    /// changed since, the name is normalized without validation rather than failing.
    pub fn project_name(&self) -> ProjectName {
        ProjectName::new(&self.name).unwrap_or_else(|_| ProjectName::from_validated(&self.name))
    }

    /// `Metadata-Version` as `(major, minor)`, if it has that form.
    pub fn metadata_version_number(&self) -> Option<(u32, u32)> {
        split_metadata_version(&self.metadata_version)
    }

    /// Whether an sdist's PKG-INFO can be served as its PEP 658 metadata (standards E6):
    /// `Metadata-Version` at least 2.2 and no `Dynamic` fields at all.
    pub fn is_reliable_for_sdist(&self) -> bool {
        self.metadata_version_number()
            .is_some_and(|number| number >= (2, 2))
            && self.dynamic.is_empty()
    }
}

/// An optional value is absent when empty or `UNKNOWN`.
fn present(value: String) -> Option<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed == "UNKNOWN" {
        None
    } else if trimmed.len() == value.len() {
        Some(value)
    } else {
        Some(trimmed.to_owned())
    }
}

fn required(block: &HeaderBlock<'_>, name: &'static str) -> Result<String, MetadataError> {
    let value = block.single(name)?.map(unfold).unwrap_or_default();
    if value.is_empty() {
        Err(MetadataError::new(
            Some(name),
            format!("the required field '{name}' is missing or empty"),
        ))
    } else {
        Ok(value)
    }
}

fn optional(block: &HeaderBlock<'_>, name: &'static str) -> Result<Option<String>, MetadataError> {
    Ok(block.single(name)?.map(unfold).and_then(present))
}

fn repeated(block: &HeaderBlock<'_>, name: &'static str) -> Vec<String> {
    block.all(name).map(unfold).filter_map(present).collect()
}

fn split_metadata_version(raw: &str) -> Option<(u32, u32)> {
    let (major, minor) = raw.split_once('.')?;
    let is_number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !is_number(major) || !is_number(minor) {
        return None;
    }
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn parse_metadata_version(raw: &str) -> Result<(u32, u32), MetadataError> {
    match split_metadata_version(raw) {
        Some((major, minor)) if major == 1 || major == 2 => Ok((major, minor)),
        Some((major, _)) if major >= 3 => Err(MetadataError::new(
            Some("Metadata-Version"),
            format!(
                "Metadata-Version {} is not supported: this index accepts core metadata 1.x and \
                 2.x; build the distribution with a tool that writes Metadata-Version 2.x",
                quote(raw)
            ),
        )),
        _ => Err(MetadataError::new(
            Some("Metadata-Version"),
            format!(
                "'{}' is not a valid Metadata-Version; expected a version such as 2.1",
                quote(raw)
            ),
        )),
    }
}

fn summary(block: &HeaderBlock<'_>) -> Result<Option<String>, MetadataError> {
    let Some(raw) = block.single("Summary")? else {
        return Ok(None);
    };
    if !is_single_line(raw) {
        return Err(MetadataError::new(
            Some("Summary"),
            "Summary must be a single line; put longer text in the description",
        ));
    }
    Ok(present(unfold(raw)))
}

fn description(block: &HeaderBlock<'_>) -> Result<Option<String>, MetadataError> {
    let header = block.single("Description")?;
    if !block.body.trim().is_empty() {
        return Ok(Some(block.body.to_owned()));
    }
    Ok(header.map(unfold_multiline).and_then(present))
}

fn requires_python(block: &HeaderBlock<'_>) -> Result<Option<String>, MetadataError> {
    let Some(value) = optional(block, "Requires-Python")? else {
        return Ok(None);
    };
    match VersionSpecifiers::from_str(&value) {
        Ok(_) => Ok(Some(value)),
        Err(_) => Err(MetadataError::new(
            Some("Requires-Python"),
            format!(
                "Requires-Python '{}' is not a valid version specifier set; use for example \
                 '>=3.9' or '>=3.8,<4'",
                quote(&value)
            ),
        )),
    }
}

fn requires_dist(block: &HeaderBlock<'_>) -> Result<Vec<String>, MetadataError> {
    let values = repeated(block, "Requires-Dist");
    for value in &values {
        requirement::check_requirement(value).map_err(|detail| {
            MetadataError::new(
                Some("Requires-Dist"),
                format!(
                    "Requires-Dist '{}' is not a valid PEP 508 requirement: {}",
                    quote(value),
                    quote(&detail)
                ),
            )
        })?;
    }
    Ok(values)
}

fn dynamic(block: &HeaderBlock<'_>) -> Result<Vec<String>, MetadataError> {
    let values = repeated(block, "Dynamic");
    if let Some(field) = values
        .iter()
        .find(|value| NEVER_DYNAMIC.iter().any(|f| f.eq_ignore_ascii_case(value)))
    {
        return Err(MetadataError::new(
            Some("Dynamic"),
            format!(
                "Dynamic may not list '{}': Name, Version and Metadata-Version must always be \
                 given in the metadata itself",
                quote(field)
            ),
        ));
    }
    Ok(values)
}

#[cfg(test)]
mod tests;
