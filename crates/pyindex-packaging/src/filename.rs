//! Distribution filenames: wheels (standards J3) and PEP 625 source distributions (J4), with the
//! upload safety rules of H4.

use std::fmt;

use crate::name::{ProjectName, is_valid_name, normalize};
use crate::text::quote;
use crate::version::{Version, parse_version};

/// The two kinds of distribution the index accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DistKind {
    /// A `.whl` built distribution.
    Wheel,
    /// A `.tar.gz` source distribution.
    Sdist,
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
    /// Wheel or source distribution.
    pub kind: DistKind,
    /// The compatibility tags; present exactly for wheels.
    pub wheel: Option<WheelTags>,
}

impl DistFilename {
    /// The normalized project name of the name part.
    pub fn project(&self) -> String {
        normalize(&self.name_part)
    }
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

    /// The rejected filename, as given.
    pub fn filename(&self) -> &str {
        &self.filename
    }

    fn render(&self) -> String {
        match &self.problem {
            Problem::Extension => "Invalid file extension: use .whl for wheels or .tar.gz for \
                                   source distributions (PEP 625)"
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
const WHEEL_FORM: &str = "wheel filenames have the form \
                          {name}-{version}(-{build})?-{python}-{abi}-{platform}.whl";
const SDIST_FORM: &str = "source distribution filenames have the form {name}-{version}.tar.gz";

/// Parses and checks a distribution filename: `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`
/// or `{name}-{version}.tar.gz`.
///
/// For source distributions the name and version are split at the last `-` whose remainder is a
/// valid version, so the legacy `foo-bar-1.0.tar.gz` has the name part `foo-bar`.
pub fn parse_filename(filename: &str) -> Result<DistFilename, FilenameError> {
    check_safe(filename)?;
    if let Some(stem) = filename.strip_suffix(WHEEL_SUFFIX) {
        check_charset(filename)?;
        parse_wheel(filename, stem)
    } else if let Some(stem) = filename.strip_suffix(SDIST_SUFFIX) {
        check_charset(filename)?;
        parse_sdist(filename, stem)
    } else {
        Err(FilenameError::extension(filename))
    }
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
        kind: DistKind::Wheel,
        wheel: Some(WheelTags {
            build: build.map(str::to_owned),
            python: python.to_owned(),
            abi: abi.to_owned(),
            platform: platform.to_owned(),
        }),
    })
}

fn parse_sdist(filename: &str, stem: &str) -> Result<DistFilename, FilenameError> {
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
        return Ok(DistFilename {
            raw: filename.to_owned(),
            name_part: name.to_owned(),
            version_part: version.to_owned(),
            version: parsed_version,
            kind: DistKind::Sdist,
            wheel: None,
        });
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
        assert_eq!(f.kind, DistKind::Wheel);
        assert_eq!(f.name_part, "shared");
        assert_eq!(f.version_part, "0.1.0");
        assert_eq!(f.version, parse_version("0.1").unwrap());
        assert_eq!(f.project(), "shared");
        assert_eq!(
            f.wheel,
            Some(WheelTags {
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
        let tags = f.wheel.unwrap();
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
        assert_eq!(f.kind, DistKind::Sdist);
        assert_eq!(f.name_part, "shared_pkg");
        assert_eq!(f.version_part, "1.0");
        assert_eq!(f.wheel, None);
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
            "foo-1.0.zip",
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
                 distributions (PEP 625)"
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
                let tags = parsed.wheel.unwrap();
                prop_assert_eq!(tags.build, build);
                prop_assert_eq!(tags.python, python);
                prop_assert_eq!(tags.platform, platform);
            }
        }
    }
}
