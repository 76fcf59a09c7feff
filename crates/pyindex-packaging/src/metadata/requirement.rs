//! PEP 508 validation of `Requires-Dist` values.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use pep508_rs::{Pep508Url, Requirement};

/// A direct-reference URL (`name @ https://…`) kept exactly as written. Only its shape is
/// checked: unlike `pep508_rs::VerbatimUrl` it never expands environment variables or resolves
/// paths, so validating an upload cannot depend on the server's environment.
#[derive(Debug)]
struct WrittenUrl(String);

impl fmt::Display for WrittenUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A direct reference without a URL scheme.
#[derive(Debug, thiserror::Error)]
#[error("'{0}' is not a URL (expected a scheme such as https:// or file://)")]
struct NotAUrl(String);

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
    match Requirement::<WrittenUrl>::from_str(value) {
        Ok(_) => Ok(()),
        // Only the message: the error's own Display underlines the input over several lines.
        Err(err) => Err(err
            .message
            .to_string()
            .lines()
            .next()
            .unwrap_or("invalid dependency specifier")
            .to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
