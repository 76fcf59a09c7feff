//! PEP 508 validation of `Requires-Dist` values.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use pep508_rs::{Pep508Url, Requirement};

/// A direct-reference URL (`name @ https://…`) kept exactly as written. Only its shape is
/// checked: unlike `pep508_rs::VerbatimUrl` it never expands environment variables or resolves
/// paths, so validating an upload cannot depend on the server's environment.
#[derive(Debug)]
pub(crate) struct WrittenUrl(String);

impl fmt::Display for WrittenUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A direct reference without a URL scheme.
#[derive(Debug, thiserror::Error)]
#[error("'{0}' is not a URL (expected a scheme such as https:// or file://)")]
pub(crate) struct NotAUrl(String);

impl Pep508Url for WrittenUrl {
    type Err = NotAUrl;

    fn parse_url(url: &str, _working_dir: Option<&Path>) -> Result<Self, Self::Err> {
        if has_scheme(url) {
            Ok(WrittenUrl(url.to_owned()))
        } else {
            Err(NotAUrl(crate::text::quote(url)))
        }
    }
}

/// Whether `url` starts with an RFC 3986 scheme followed by `:` and something more.
fn has_scheme(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once(':') else {
        return false;
    };
    scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
}

/// Checks that `value` is a PEP 508 dependency specifier; the error is a one-line explanation.
pub(super) fn check_requirement(value: &str) -> Result<(), String> {
    parse_requirement(value).map(drop)
}

/// Parses a PEP 508 dependency specifier; the error is a one-line explanation.
pub(crate) fn parse_requirement(value: &str) -> Result<Requirement<WrittenUrl>, String> {
    check_names(value)?;
    // Only the message: the error's own Display underlines the input over several lines.
    Requirement::<WrittenUrl>::from_str(value).map_err(|err| {
        err.message
            .to_string()
            .lines()
            .next()
            .unwrap_or("invalid dependency specifier")
            .to_owned()
    })
}

/// Checks the name and extras before `pep508_rs` sees them: version 0.9.2 panics
/// (`expect("... validation should match PEP 508 parsing")`) on a name or extra that ends in
/// `.`, `-` or `_` and is followed by more text, e.g. `a. ; python_version < '3'`.
fn check_names(value: &str) -> Result<(), String> {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    let value = value.trim_start();
    let end = value.find(|c| !is_name_char(c)).unwrap_or(value.len());
    let (name, rest) = value.split_at(end);
    if !name.is_empty() && !crate::is_valid_name(name) {
        return Err(format!(
            "'{}' is not a valid project name (it must start and end with a letter or digit)",
            crate::text::quote(name)
        ));
    }
    let Some(extras) = rest.trim_start().strip_prefix('[') else {
        return Ok(());
    };
    let extras = extras.split(']').next().unwrap_or_default();
    for extra in extras.split(',').map(str::trim) {
        if extra.chars().all(is_name_char) && !extra.is_empty() && !crate::is_valid_name(extra) {
            return Err(format!(
                "'{}' is not a valid extra name (it must start and end with a letter or digit)",
                crate::text::quote(extra)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_pep508_rs_would_panic_on_are_errors() {
        for value in [
            "a. ; python_version < '3'",
            "a- >=1",
            "a_ [x]",
            "a[b. ]",
            "a [x,y-]; os_name == 'nt'",
        ] {
            assert!(check_requirement(value).is_err(), "{value}");
        }
    }

    #[test]
    fn valid_requirements() {
        for value in [
            "requests",
            "requests[security,tests] >=2.8.1, ==2.8.*",
            "pywin32 >1.0 ; sys_platform == 'win32'",
            "tomli>=1.1.0; python_version < \"3.11\"",
            "foo @ https://example.com/foo-1.0.tar.gz",
            "foo @ file:///tmp/foo",
            "torch==2.0.0+cu118",
        ] {
            assert_eq!(check_requirement(value), Ok(()), "{value}");
        }
    }

    #[test]
    fn invalid_requirements() {
        for value in [
            "",
            "foo >>> 1",
            "foo ; python_version >",
            "foo @ not-a-url",
            "-foo",
            "foo[bar",
        ] {
            let err = check_requirement(value).unwrap_err();
            assert!(!err.is_empty() && !err.contains('\n'), "{value}: {err}");
        }
    }

    #[test]
    fn environment_variables_are_not_expanded() {
        assert!(check_requirement("foo @ ${HOME}/x").is_err());
    }
}
