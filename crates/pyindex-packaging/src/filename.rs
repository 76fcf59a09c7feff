//! Distribution filenames: wheels (standards J3) and source distributions (J4), with the upload
//! safety rules of H4.
//!
//! Every form that the specifications tell consumers to accept is parsed: wheel names with capitals
//! and dots (`MarkupSafe-2.1.5-...whl`, `zope.interface-6.4-...whl`), legacy sdist names whose
//! name part contains `-` (`python-dateutil-2.9.0.tar.gz`) and `.zip` source distributions. A
//! legacy sdist name cannot be split into name and version on its own (`foo-1.0-1.tar.gz`), so
//! [`parse_filename_for`] splits it against the project name the upload declares.

use std::fmt;

use crate::name::{ProjectName, is_valid_name, normalize};
use crate::text::quote;
use crate::version::{Version, canonical_version, parse_version};

/// The two kinds of distribution the index accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DistKind {
    /// A `.whl` built distribution.
    Wheel,
    /// A source distribution (`.tar.gz`, or `.zip` from older tools).
    Sdist,
}

/// The archive format of a source distribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SdistFormat {
    /// `.tar.gz`, the standard format (PEP 625).
    TarGz,
    /// `.zip`, made by older tools and still installable.
    Zip,
}

impl SdistFormat {
    /// The filename suffix, with its dot.
    pub fn suffix(self) -> &'static str {
        match self {
            SdistFormat::TarGz => SDIST_SUFFIX,
            SdistFormat::Zip => ZIP_SDIST_SUFFIX,
        }
    }
}

/// What a filename says about the file beyond name and version.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DistForm {
    /// A wheel and its compatibility tags.
    Wheel(WheelTags),
    /// A source distribution in one of its archive formats.
    Sdist(SdistFormat),
}

impl DistKind {
    /// The upload form's `filetype` value: `bdist_wheel` or `sdist`.
    pub fn as_str(self) -> &'static str {
        match self {
            DistKind::Wheel => "bdist_wheel",
            DistKind::Sdist => "sdist",
        }
    }

    /// The kind named by an upload form's `filetype` value, if it is one the index accepts.
    pub fn from_filetype(filetype: &str) -> Option<DistKind> {
        match filetype {
            "bdist_wheel" => Some(DistKind::Wheel),
            "sdist" => Some(DistKind::Sdist),
            _ => None,
        }
    }
}

impl fmt::Display for DistKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The compatibility tags of a wheel filename.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WheelTags {
    /// The optional build tag; always starts with a digit.
    pub build: Option<String>,
    /// The python tag, e.g. `py3` or the compressed set `py2.py3`.
    pub python: String,
    /// The ABI tag, e.g. `none` or `cp312`.
    pub abi: String,
    /// The platform tag, e.g. `any` or `manylinux_2_17_x86_64`.
    pub platform: String,
}

/// A parsed distribution filename.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistFilename {
    /// The filename exactly as given.
    pub raw: String,
    /// The name part as spelled in the filename (e.g. `Foo_Bar`).
    pub name_part: String,
    /// The version part as spelled in the filename (e.g. `1.0.0`).
    pub version_part: String,
    /// The parsed version part.
    pub version: Version,
    /// Wheel (with its tags) or source distribution (with its format).
    pub form: DistForm,
}

impl DistFilename {
    /// The normalized project name of the name part.
    pub fn project(&self) -> String {
        normalize(&self.name_part)
    }

    /// Wheel or source distribution.
    pub fn kind(&self) -> DistKind {
        match self.form {
            DistForm::Wheel(_) => DistKind::Wheel,
            DistForm::Sdist(_) => DistKind::Sdist,
        }
    }

    /// The compatibility tags, for a wheel.
    pub fn wheel_tags(&self) -> Option<&WheelTags> {
        match &self.form {
            DistForm::Wheel(tags) => Some(tags),
            DistForm::Sdist(_) => None,
        }
    }

    /// The distribution this filename denotes, independent of spelling: two files with one
    /// identity cannot both be published.
    ///
    /// For a wheel it is the normalized name, the canonical version (the release key: `1.0` and
    /// `1.0.0` are one version), the build tag normalized as the wheel specification compares it
    /// (`01` and `1` are one build) and each compressed tag set lower-cased, sorted and deduplicated
    /// (`py2.py3` and `py3.py2` are one set). For a source distribution it is the normalized name
    /// and the canonical version only: a release has at most one sdist, whatever its archive
    /// format (`.tar.gz` or `.zip`).
    pub fn identity(&self) -> DistKey {
        let project = self.project();
        let version = canonical_version(&self.version);
        DistKey(match &self.form {
            DistForm::Wheel(tags) => format!(
                "{project}-{version}-{}-{}-{}-{}{WHEEL_SUFFIX}",
                tags.build
                    .as_deref()
                    .map(normal_build_tag)
                    .unwrap_or_default(),
                normal_tag_set(&tags.python),
                normal_tag_set(&tags.abi),
                normal_tag_set(&tags.platform),
            ),
            DistForm::Sdist(_) => format!("{project}-{version}.sdist"),
        })
    }
}

/// The distribution a filename denotes, whatever its spelling (see [`DistFilename::identity`]).
/// Only a parsed filename makes one, so a key always names a real distribution.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DistKey(String);

impl DistKey {
    /// The key as text, as the catalog stores it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DistKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A build tag as the wheel specification compares it: its leading digits as a number (`01` is
/// `1`), then the rest of the tag as it is. The digits are trimmed, not parsed, so no length
/// can overflow.
fn normal_build_tag(build: &str) -> String {
    let digits_end = build
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(build.len());
    let (digits, rest) = build.split_at(digits_end);
    let number = digits.trim_start_matches('0');
    let number = if number.is_empty() { "0" } else { number };
    format!("{number}{rest}")
}

/// A compressed tag set (`py2.py3`) as a set: lower-cased, sorted, without duplicates.
fn normal_tag_set(tags: &str) -> String {
    let mut set: Vec<String> = tags.split('.').map(str::to_ascii_lowercase).collect();
    set.sort_unstable();
    set.dedup();
    set.join(".")
}

/// A filename that cannot be accepted as a distribution.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct FilenameError {
    filename: String,
    problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Problem {
    Extension,
    Other(String),
}

impl FilenameError {
    fn new(filename: &str, reason: impl Into<String>) -> FilenameError {
        FilenameError {
            filename: filename.to_owned(),
            problem: Problem::Other(reason.into()),
        }
    }

    fn extension(filename: &str) -> FilenameError {
        FilenameError {
            filename: filename.to_owned(),
            problem: Problem::Extension,
        }
    }

    /// The same error, with `hint` appended to its reason.
    fn with_hint(mut self, hint: String) -> FilenameError {
        if let Problem::Other(reason) = &mut self.problem {
            reason.push_str("; ");
            reason.push_str(&hint);
        }
        self
    }

    /// The rejected filename, as given.
    pub fn filename(&self) -> &str {
        &self.filename
    }

    fn render(&self) -> String {
        match &self.problem {
            Problem::Extension => "Invalid file extension: use .whl for wheels or .tar.gz for \
                                   source distributions (PEP 625; .zip is accepted from older tools)"
                .to_owned(),
            Problem::Other(reason) => format!(
                "Invalid distribution filename '{}': {reason}",
                quote(&self.filename)
            ),
        }
    }
}

const WHEEL_SUFFIX: &str = ".whl";
const SDIST_SUFFIX: &str = ".tar.gz";
const ZIP_SDIST_SUFFIX: &str = ".zip";
const WHEEL_FORM: &str = "wheel filenames have the form \
                          {name}-{version}(-{build})?-{python}-{abi}-{platform}.whl";
const SDIST_FORM: &str = "source distribution filenames have the form {name}-{version}.tar.gz";

/// Parses and checks a distribution filename: `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`
/// or `{name}-{version}.tar.gz` (or `.zip`), without knowing the project.
///
/// For source distributions the name and version are split at the last `-` whose remainder is a
/// valid version, so the legacy `foo-bar-1.0.tar.gz` has the name part `foo-bar`. When the project
/// is known, [`parse_filename_for`] splits exactly.
pub fn parse_filename(filename: &str) -> Result<DistFilename, FilenameError> {
    match split_extension(filename)? {
        (stem, None) => parse_wheel(filename, stem),
        (stem, Some(format)) => parse_sdist(filename, stem, format),
    }
}

/// Parses a distribution filename that must belong to `project`.
///
/// A wheel's name part must normalize to the project (`MarkupSafe` for `markupsafe`). A source
/// distribution's name part is the shortest prefix before a `-` that normalizes to the project
/// (the sdist specification's rule for legacy names), and everything after that `-` must be the
/// version: `python-dateutil-2.9.0.tar.gz` is `python-dateutil` 2.9.0, and `foo-1.0-1.tar.gz` is
/// `foo` 1.0-1 (1.0.post1). Anything else is refused with the expected form in the message.
pub fn parse_filename_for(
    filename: &str,
    project: &ProjectName,
) -> Result<DistFilename, FilenameError> {
    match split_extension(filename)? {
        (stem, None) => {
            let parsed = parse_wheel(filename, stem).map_err(|e| {
                e.with_hint(format!(
                    "for the project '{project}' it starts with '{}-{{version}}-'",
                    project.as_dist_name()
                ))
            })?;
            if parsed.project() == project.as_str() {
                Ok(parsed)
            } else {
                Err(FilenameError::new(
                    filename,
                    format!(
                        "the name part '{}' is not the project '{project}'; {WHEEL_FORM}, e.g. \
                         '{}-{}-py3-none-any.whl'",
                        quote(&parsed.name_part),
                        project.as_dist_name(),
                        parsed.version_part,
                    ),
                ))
            }
        }
        (stem, Some(format)) => parse_sdist_for(filename, stem, format, project),
    }
}

/// Checks the parts every form shares and splits off the extension: `None` for a wheel.
fn split_extension(filename: &str) -> Result<(&str, Option<SdistFormat>), FilenameError> {
    check_safe(filename)?;
    let split = if let Some(stem) = filename.strip_suffix(WHEEL_SUFFIX) {
        (stem, None)
    } else if let Some(stem) = filename.strip_suffix(SDIST_SUFFIX) {
        (stem, Some(SdistFormat::TarGz))
    } else if let Some(stem) = filename.strip_suffix(ZIP_SDIST_SUFFIX) {
        (stem, Some(SdistFormat::Zip))
    } else {
        return Err(FilenameError::extension(filename));
    };
    check_charset(filename)?;
    Ok(split)
}

/// The PEP 625 filename of a release's source distribution:
/// `{name with '_'}-{normalized version}.tar.gz`.
pub fn expected_sdist_filename(name: &ProjectName, version: &Version) -> String {
    format!("{}-{version}{SDIST_SUFFIX}", name.as_dist_name())
}

/// The checks that do not depend on the kind: nothing that could be a path or hide in a log.
fn check_safe(filename: &str) -> Result<(), FilenameError> {
    if filename.is_empty() {
        return Err(FilenameError::new(filename, "the filename is empty"));
    }
    if filename.chars().any(|c| c.is_ascii_control()) {
        return Err(FilenameError::new(
            filename,
            "filenames may not contain control characters",
        ));
    }
    if filename.contains(['/', '\\']) {
        return Err(FilenameError::new(
            filename,
            "filenames may not contain '/' or '\\'; upload the file under its own name",
        ));
    }
    if filename.starts_with('.') {
        return Err(FilenameError::new(
            filename,
            "filenames may not start with '.'",
        ));
    }
    Ok(())
}

/// Distribution filenames are built from names, versions and tags, which are all plain ASCII.
fn check_charset(filename: &str) -> Result<(), FilenameError> {
    match filename
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '!')))
    {
        None => Ok(()),
        Some(c) => Err(FilenameError::new(
            filename,
            format!(
                "the character '{}' is not allowed; distribution filenames use ASCII letters, \
                 digits and '.', '_', '-', '+', '!'",
                c.escape_default()
            ),
        )),
    }
}

fn parse_wheel(filename: &str, stem: &str) -> Result<DistFilename, FilenameError> {
    let parts: Vec<&str> = stem.split('-').collect();
    let (name, version, build, python, abi, platform) = match parts.as_slice() {
        [name, version, python, abi, platform] => (*name, *version, None, *python, *abi, *platform),
        [name, version, build, python, abi, platform] => {
            (*name, *version, Some(*build), *python, *abi, *platform)
        }
        _ => {
            return Err(FilenameError::new(
                filename,
                format!(
                    "{WHEEL_FORM} (4 or 5 '-' separators, found {})",
                    parts.len().saturating_sub(1)
                ),
            ));
        }
    };
    for (label, value) in [
        ("name", Some(name)),
        ("version", Some(version)),
        ("build tag", build),
        ("python tag", Some(python)),
        ("ABI tag", Some(abi)),
        ("platform tag", Some(platform)),
    ] {
        if value == Some("") {
            return Err(FilenameError::new(
                filename,
                format!("the {label} is empty; {WHEEL_FORM}"),
            ));
        }
    }
    check_name_part(filename, name)?;
    let parsed_version = parse_version_part(filename, version)?;
    if let Some(build) = build {
        if !build.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(FilenameError::new(
                filename,
                format!("the build tag '{build}' must start with a digit; {WHEEL_FORM}"),
            ));
        }
        check_tag(filename, "build tag", build)?;
    }
    check_tag(filename, "python tag", python)?;
    check_tag(filename, "ABI tag", abi)?;
    check_tag(filename, "platform tag", platform)?;
    Ok(DistFilename {
        raw: filename.to_owned(),
        name_part: name.to_owned(),
        version_part: version.to_owned(),
        version: parsed_version,
        form: DistForm::Wheel(WheelTags {
            build: build.map(str::to_owned),
            python: python.to_owned(),
            abi: abi.to_owned(),
            platform: platform.to_owned(),
        }),
    })
}

fn parse_sdist(
    filename: &str,
    stem: &str,
    format: SdistFormat,
) -> Result<DistFilename, FilenameError> {
    let mut last_remainder = None;
    for (index, _) in stem.rmatch_indices('-') {
        let (Some(name), Some(version)) = (stem.get(..index), stem.get(index + 1..)) else {
            continue;
        };
        last_remainder.get_or_insert(version);
        let Ok(parsed_version) = parse_version(version) else {
            continue;
        };
        if name.is_empty() {
            return Err(FilenameError::new(
                filename,
                format!("the name is empty; {SDIST_FORM}"),
            ));
        }
        check_name_part(filename, name)?;
        return Ok(sdist(filename, name, version, parsed_version, format));
    }
    let reason = match last_remainder {
        None => format!("there is no '-' between name and version; {SDIST_FORM}"),
        Some(remainder) => format!(
            "'{}' after the last '-' is not a valid PEP 440 version; {SDIST_FORM}",
            quote(remainder)
        ),
    };
    Err(FilenameError::new(filename, reason))
}

fn parse_sdist_for(
    filename: &str,
    stem: &str,
    format: SdistFormat,
    project: &ProjectName,
) -> Result<DistFilename, FilenameError> {
    let expected = format!("{}-{{version}}{}", project.as_dist_name(), format.suffix());
    let split = stem.match_indices('-').find_map(|(index, _)| {
        let name = stem.get(..index)?;
        (is_valid_name(name) && normalize(name) == project.as_str())
            .then(|| (name, stem.get(index + 1..).unwrap_or_default()))
    });
    let Some((name, version)) = split else {
        return Err(FilenameError::new(
            filename,
            format!(
                "it does not start with the project name '{project}' and a '-'; source \
                 distribution filenames have the form '{expected}'"
            ),
        ));
    };
    let parsed_version = parse_version(version).map_err(|_| {
        FilenameError::new(
            filename,
            format!(
                "'{}' after '{}-' is not a valid PEP 440 version; source distribution filenames \
                 have the form '{expected}'",
                quote(version),
                quote(name)
            ),
        )
    })?;
    Ok(sdist(filename, name, version, parsed_version, format))
}

fn sdist(
    filename: &str,
    name: &str,
    version: &str,
    parsed_version: Version,
    format: SdistFormat,
) -> DistFilename {
    DistFilename {
        raw: filename.to_owned(),
        name_part: name.to_owned(),
        version_part: version.to_owned(),
        version: parsed_version,
        form: DistForm::Sdist(format),
    }
}

fn check_name_part(filename: &str, name: &str) -> Result<(), FilenameError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(FilenameError::new(
            filename,
            format!(
                "the name part '{}' is not a valid project name (ASCII letters, digits, '.', '_' \
                 and '-', starting and ending with a letter or digit)",
                quote(name)
            ),
        ))
    }
}

fn parse_version_part(filename: &str, version: &str) -> Result<Version, FilenameError> {
    parse_version(version).map_err(|_| {
        FilenameError::new(
            filename,
            format!(
                "the version part '{}' is not a valid PEP 440 version",
                quote(version)
            ),
        )
    })
}

fn check_tag(filename: &str, label: &str, tag: &str) -> Result<(), FilenameError> {
    if tag
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.'))
    {
        Ok(())
    } else {
        Err(FilenameError::new(
            filename,
            format!(
                "the {label} '{}' may only contain ASCII letters, digits, '_' and '.'",
                quote(tag)
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(filename: &str) -> DistFilename {
        parse_filename(filename).unwrap_or_else(|e| panic!("{filename}: {e}"))
    }

    fn err(filename: &str) -> FilenameError {
        match parse_filename(filename) {
            Ok(parsed) => panic!("{filename:?} was accepted: {parsed:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn plain_wheel() {
        let f = ok("shared-0.1.0-py3-none-any.whl");
        assert_eq!(f.kind(), DistKind::Wheel);
        assert_eq!(f.name_part, "shared");
        assert_eq!(f.version_part, "0.1.0");
        assert_eq!(f.version, parse_version("0.1").unwrap());
        assert_eq!(f.project(), "shared");
        assert_eq!(
            f.wheel_tags(),
            Some(&WheelTags {
                build: None,
                python: "py3".into(),
                abi: "none".into(),
                platform: "any".into(),
            })
        );
    }

    #[test]
    fn wheel_with_build_tag() {
        let f = ok("shared-0.1.0-1abc-py2.py3-none-manylinux_2_17_x86_64.whl");
        let tags = f.wheel_tags().unwrap();
        assert_eq!(tags.build.as_deref(), Some("1abc"));
        assert_eq!(tags.python, "py2.py3");
        assert_eq!(tags.platform, "manylinux_2_17_x86_64");
    }

    #[test]
    fn wheel_with_local_version_and_underscore_name() {
        let f = ok("other_pkg-1.0+cu1-py3-none-any.whl");
        assert_eq!(f.name_part, "other_pkg");
        assert_eq!(f.project(), "other-pkg");
        assert_eq!(f.version.to_string(), "1.0+cu1");
    }

    #[test]
    fn legacy_wheel_names_are_accepted() {
        let f = ok("Foo.Bar-1.0-cp312-cp312-win_amd64.whl");
        assert_eq!(f.project(), "foo-bar");
    }

    #[test]
    fn pep625_sdist() {
        let f = ok("shared_pkg-1.0.tar.gz");
        assert_eq!(f.kind(), DistKind::Sdist);
        assert_eq!(f.form, DistForm::Sdist(SdistFormat::TarGz));
        assert_eq!(f.name_part, "shared_pkg");
        assert_eq!(f.version_part, "1.0");
        assert_eq!(f.wheel_tags(), None);
    }

    #[test]
    fn legacy_sdist_splits_at_the_last_version_dash() {
        let f = ok("foo-bar-1.0.tar.gz");
        assert_eq!(f.name_part, "foo-bar");
        assert_eq!(f.project(), "foo-bar");
        assert_eq!(f.version_part, "1.0");
        let f = ok("zope.interface-5.0.tar.gz");
        assert_eq!(f.project(), "zope-interface");
    }

    #[test]
    fn unsafe_names_are_refused() {
        for name in [
            "../x.whl",
            "a/b.whl",
            "a\\b.whl",
            "\u{1}x-1.0.tar.gz",
            ".x-1.0.tar.gz",
        ] {
            let e = err(name);
            assert!(e.problem != Problem::Extension, "{name}");
            assert_eq!(e.filename(), name);
        }
        assert!(
            err("x\u{7f}-1.0.tar.gz")
                .to_string()
                .contains("control characters")
        );
        assert!(err("\u{1}").to_string().contains("control characters"));
        assert!(err("").to_string().contains("empty"));
        assert!(err("a/b.whl").to_string().contains("'/'"));
    }

    #[test]
    fn other_extensions_are_refused() {
        for name in [
            "foo-1.0.egg",
            "foo-1.0.tar.bz2",
            "foo-1.0.tgz",
            "foo-1.0.exe",
            "foo-1.0.WHL",
            "foo",
        ] {
            let e = err(name);
            assert!(e.problem == Problem::Extension, "{name}");
            assert_eq!(
                e.to_string(),
                "Invalid file extension: use .whl for wheels or .tar.gz for source \
                 distributions (PEP 625; .zip is accepted from older tools)"
            );
        }
    }

    #[test]
    fn malformed_wheels_are_refused() {
        for (name, needle) in [
            ("foo-1.0-py3-none.whl", "found 3"),
            ("foo-1.0-1-2-py3-none-any.whl", "found 6"),
            ("foo--py3-none-any.whl", "version is empty"),
            ("-1.0-py3-none-any.whl", "name is empty"),
            ("foo-1.0--none-any.whl", "python tag is empty"),
            ("foo-1.0-x1-py3-none-any.whl", "must start with a digit"),
            ("foo-abc-py3-none-any.whl", "not a valid PEP 440 version"),
            ("foo_-1.0-py3-none-any.whl", "not a valid project name"),
            ("foo-1.0-py3+x-none-any.whl", "python tag"),
            ("foo bar-1.0-py3-none-any.whl", "' ' is not allowed"),
        ] {
            let message = err(name).to_string();
            assert!(message.contains(needle), "{name}: {message}");
            assert!(
                message.starts_with("Invalid distribution filename '"),
                "{message}"
            );
        }
    }

    #[test]
    fn malformed_sdists_are_refused() {
        for (name, needle) in [
            ("foo.tar.gz", "no '-'"),
            ("foo-bar.tar.gz", "'bar' after the last '-'"),
            ("-1.0.tar.gz", "name is empty"),
            ("foo_-1.0.tar.gz", "not a valid project name"),
            ("foo-.tar.gz", "after the last '-'"),
            (".tar.gz", "start with '.'"),
        ] {
            let message = err(name).to_string();
            assert!(message.contains(needle), "{name}: {message}");
        }
    }

    fn for_project(filename: &str, project: &str) -> Result<DistFilename, FilenameError> {
        parse_filename_for(filename, &ProjectName::new(project).unwrap())
    }

    #[test]
    fn real_world_wheel_names_belong_to_their_project() {
        for (filename, project) in [
            (
                "MarkupSafe-2.1.5-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                "markupsafe",
            ),
            (
                "zope.interface-6.4.post2-cp311-cp311-win_amd64.whl",
                "zope-interface",
            ),
            ("jaraco.classes-3.4.0-py3-none-any.whl", "jaraco.classes"),
            (
                "PyYAML-6.0.1-cp311-cp311-manylinux_2_17_x86_64.whl",
                "pyyaml",
            ),
        ] {
            let f = for_project(filename, project).unwrap_or_else(|e| panic!("{filename}: {e}"));
            assert_eq!(f.raw, filename, "kept exactly as given");
        }
        let message = for_project("PyYAMLX-6.0.1-py3-none-any.whl", "pyyaml")
            .unwrap_err()
            .to_string();
        assert!(message.contains("is not the project 'pyyaml'"), "{message}");
        let dashed = for_project("zope-interface-6.4-py3-none-any.whl", "zope.interface")
            .unwrap_err()
            .to_string();
        assert!(
            dashed.contains("it starts with 'zope_interface-{version}-'"),
            "{dashed}"
        );
        assert!(
            message.contains("pyyaml-6.0.1-py3-none-any.whl"),
            "names the expected form: {message}"
        );
    }

    #[test]
    fn legacy_sdists_split_at_the_shortest_prefix_naming_the_project() {
        for (filename, project, name_part, version) in [
            ("PyYAML-6.0.1.tar.gz", "pyyaml", "PyYAML", "6.0.1"),
            (
                "zope.interface-6.4.tar.gz",
                "zope-interface",
                "zope.interface",
                "6.4",
            ),
            (
                "python-dateutil-2.9.0.tar.gz",
                "python-dateutil",
                "python-dateutil",
                "2.9.0",
            ),
            ("foo-1.0-1.tar.gz", "foo", "foo", "1.0-1"),
            ("Foo_Bar-2.0.zip", "foo-bar", "Foo_Bar", "2.0"),
        ] {
            let f = for_project(filename, project).unwrap_or_else(|e| panic!("{filename}: {e}"));
            assert_eq!(f.name_part, name_part, "{filename}");
            assert_eq!(f.version_part, version, "{filename}");
            assert_eq!(f.kind(), DistKind::Sdist);
        }
        assert_eq!(
            for_project("Foo_Bar-2.0.zip", "foo-bar").unwrap().form,
            DistForm::Sdist(SdistFormat::Zip)
        );
        let wrong_project = for_project("python-dateutil-2.9.0.tar.gz", "python")
            .unwrap_err()
            .to_string();
        assert!(
            wrong_project.contains("'dateutil-2.9.0' after 'python-'"),
            "{wrong_project}"
        );
        let other = for_project("requests-2.0.tar.gz", "flask")
            .unwrap_err()
            .to_string();
        assert!(other.contains("'flask-{version}.tar.gz'"), "{other}");
    }

    fn identity(name: &str) -> DistKey {
        parse_filename(name).unwrap().identity()
    }

    #[test]
    fn spellings_of_one_distribution_share_an_identity() {
        for (one, other) in [
            (
                "MarkupSafe-2.1.5-cp311-cp311-manylinux_2_17_x86_64.whl",
                "markupsafe-2.1.5-cp311-cp311-manylinux_2_17_x86_64.whl",
            ),
            (
                "zope.interface-6.4-py3-none-any.whl",
                "zope_interface-6.4-py3-none-any.whl",
            ),
            ("PyYAML-6.0.1.tar.gz", "pyyaml-6.0.1.tar.gz"),
        ] {
            assert_eq!(identity(one), identity(other), "{one} and {other}");
        }
        assert_ne!(
            identity("demo-1.0-py3-none-any.whl"),
            identity("demo-1.0-1-py3-none-any.whl"),
            "a build tag makes another distribution"
        );
        assert_ne!(
            identity("demo-1.0-py3-none-any.whl"),
            identity("demo-1.0-py2-none-any.whl")
        );
        assert_ne!(
            identity("demo-1.0-py3-none-any.whl"),
            identity("demo-1.0.tar.gz")
        );
    }

    #[test]
    fn equal_versions_are_one_distribution() {
        for (one, other) in [
            ("demo-1.0-py3-none-any.whl", "demo-1.0.0-py3-none-any.whl"),
            ("demo-1-py3-none-any.whl", "demo-01.0.0-py3-none-any.whl"),
            (
                "demo-1.0a1-py3-none-any.whl",
                "demo-1.0.0alpha1-py3-none-any.whl",
            ),
            ("demo-1.0.tar.gz", "demo-1.0.0.tar.gz"),
            ("demo-2.0.post1.tar.gz", "demo-2.post1.zip"),
        ] {
            assert_eq!(identity(one), identity(other), "{one} and {other}");
        }
        assert_eq!(
            identity("demo-1.0.0-py3-none-any.whl").as_str(),
            "demo-1--py3-none-any.whl"
        );
        assert_ne!(
            identity("demo-1.0-py3-none-any.whl"),
            identity("demo-1.0.1-py3-none-any.whl")
        );
    }

    #[test]
    fn compressed_tag_sets_are_sets() {
        for (one, other) in [
            (
                "demo-1.0-py2.py3-none-any.whl",
                "demo-1.0-py3.py2-none-any.whl",
            ),
            (
                "demo-1.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                "demo-1.0-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
            ),
            ("demo-1.0-py3.py3-none-any.whl", "demo-1.0-PY3-none-any.whl"),
            (
                "demo-1.0-cp311-abi3.cp311-any.whl",
                "demo-1.0-cp311-cp311.abi3-any.whl",
            ),
        ] {
            assert_eq!(identity(one), identity(other), "{one} and {other}");
        }
        assert_eq!(
            identity("demo-1.0-py3.py2-none-any.whl").as_str(),
            "demo-1--py2.py3-none-any.whl"
        );
        assert_ne!(
            identity("demo-1.0-py2.py3-none-any.whl"),
            identity("demo-1.0-py3-none-any.whl")
        );
    }

    #[test]
    fn build_tags_compare_by_their_number_then_the_rest() {
        for (one, other) in [
            (
                "demo-1.0-1-py3-none-any.whl",
                "demo-1.0-01-py3-none-any.whl",
            ),
            (
                "demo-1.0-2abc-py3-none-any.whl",
                "demo-1.0-002abc-py3-none-any.whl",
            ),
            (
                "demo-1.0-0-py3-none-any.whl",
                "demo-1.0-000-py3-none-any.whl",
            ),
        ] {
            assert_eq!(identity(one), identity(other), "{one} and {other}");
        }
        assert_ne!(
            identity("demo-1.0-1-py3-none-any.whl"),
            identity("demo-1.0-10-py3-none-any.whl")
        );
        assert_ne!(
            identity("demo-1.0-1a-py3-none-any.whl"),
            identity("demo-1.0-1b-py3-none-any.whl")
        );
        assert_eq!(
            normal_build_tag("0000000000000000000000000000000000000012x"),
            "12x",
            "any length, no overflow"
        );
    }

    #[test]
    fn a_release_has_one_source_distribution_whatever_its_format() {
        assert_eq!(
            identity("pyyaml-6.0.1.tar.gz"),
            identity("PyYAML-6.0.1.zip")
        );
        assert_eq!(identity("pyyaml-6.0.1.zip").as_str(), "pyyaml-6.0.1.sdist");
        assert_ne!(identity("pyyaml-6.0.1.zip"), identity("pyyaml-6.0.2.zip"));
    }

    #[test]
    fn expected_sdist_name_is_pep625() {
        let name = ProjectName::new("Shared.Pkg").unwrap();
        let version = parse_version("1.0-Alpha").unwrap();
        assert_eq!(
            expected_sdist_filename(&name, &version),
            "shared_pkg-1.0a0.tar.gz"
        );
    }

    #[test]
    fn kinds_map_to_filetypes() {
        assert_eq!(DistKind::Wheel.as_str(), "bdist_wheel");
        assert_eq!(DistKind::Sdist.as_str(), "sdist");
        assert_eq!(DistKind::from_filetype("sdist"), Some(DistKind::Sdist));
        assert_eq!(
            DistKind::from_filetype("bdist_wheel"),
            Some(DistKind::Wheel)
        );
        assert_eq!(DistKind::from_filetype("bdist_egg"), None);
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics(raw in any::<String>()) {
                let _ = parse_filename(&raw);
            }

            #[test]
            fn never_panics_on_filename_shaped_input(raw in "[a-zA-Z0-9._+!-]{0,40}(\\.whl|\\.tar\\.gz)") {
                if let Ok(parsed) = parse_filename(&raw) {
                    prop_assert_eq!(parsed.raw, raw);
                }
            }

            #[test]
            fn parsing_for_a_project_never_panics_and_agrees_with_it(
                raw in "[a-zA-Z0-9._+!-]{0,40}(\\.whl|\\.tar\\.gz|\\.zip)",
                project in "[a-z0-9]([a-z0-9._-]{0,10}[a-z0-9])?",
            ) {
                let project = ProjectName::new(&project).unwrap();
                if let Ok(parsed) = parse_filename_for(&raw, &project) {
                    prop_assert_eq!(parsed.project(), project.as_str());
                    prop_assert_eq!(parsed.raw, raw);
                }
            }

            #[test]
            fn expected_sdist_filenames_round_trip(
                name in "[A-Za-z0-9]([A-Za-z0-9._-]{0,20}[A-Za-z0-9])?",
                version in "[0-9]{1,3}(\\.[0-9]{1,3}){0,3}((a|b|rc)[0-9])?(\\.post[0-9])?(\\+[a-z0-9]{1,4})?",
            ) {
                let name = ProjectName::new(&name).unwrap();
                let version = parse_version(&version).unwrap();
                let filename = expected_sdist_filename(&name, &version);
                let parsed = parse_filename(&filename).unwrap();
                prop_assert_eq!(parsed.project(), name.as_str());
                prop_assert_eq!(parsed.version_part, version.to_string());
                prop_assert_eq!(parsed.version, version);
            }

            #[test]
            fn wheel_filenames_round_trip(
                name in "[a-z0-9]{1,8}(_[a-z0-9]{1,8}){0,2}",
                version in "[0-9]{1,3}(\\.[0-9]{1,3}){0,3}",
                build in proptest::option::of("[0-9][a-z0-9_]{0,4}"),
                python in "(py3|cp312|py2\\.py3)",
                platform in "(any|linux_x86_64|manylinux_2_17_aarch64)",
            ) {
                let build_part = build.as_ref().map(|b| format!("-{b}")).unwrap_or_default();
                let filename = format!("{name}-{version}{build_part}-{python}-none-{platform}.whl");
                let parsed = parse_filename(&filename).unwrap();
                prop_assert_eq!(&parsed.name_part, &name);
                prop_assert_eq!(&parsed.version_part, &version);
                let tags = parsed.wheel_tags().unwrap().clone();
                prop_assert_eq!(tags.build, build);
                prop_assert_eq!(tags.python, python);
                prop_assert_eq!(tags.platform, platform);
            }
        }
    }
}
