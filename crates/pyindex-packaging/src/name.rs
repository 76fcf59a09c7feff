//! Project names: validation (standards J1) and normalization (J2, PEP 503, the
//! name-normalization specification).

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use crate::text::quote;

/// A validated project name, always held in its normalized form (`Friendly_Bar` → `friendly-bar`).
///
/// Two names that normalize alike are the same project, so equality, hashing and ordering all
/// work on the normalized form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectName(String);

impl ProjectName {
    /// Validates `raw` as a project name (ASCII letters, digits, `.`, `_`, `-`, starting and
    /// ending with a letter or digit) and normalizes it.
    pub fn new(raw: &str) -> Result<ProjectName, InvalidName> {
        if is_valid_name(raw) {
            Ok(ProjectName(normalize(raw)))
        } else {
            Err(InvalidName {
                raw: raw.to_owned(),
            })
        }
    }

    /// Normalizes `raw` without validating it; only for names that were validated before.
    pub(crate) fn from_validated(raw: &str) -> ProjectName {
        ProjectName(normalize(raw))
    }

    /// The normalized name, e.g. `friendly-bar`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The spelling used in wheel and PEP 625 sdist filenames: `-` replaced by `_`
    /// (`friendly-bar` → `friendly_bar`).
    pub fn as_dist_name(&self) -> String {
        self.0.replace('-', "_")
    }
}

impl fmt::Display for ProjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ProjectName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for ProjectName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl FromStr for ProjectName {
    type Err = InvalidName;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        ProjectName::new(raw)
    }
}

/// A string that is not a valid project name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{}' is not a valid project name: names use ASCII letters, digits, '.', '_' and '-', \
     and start and end with a letter or digit",
    quote(.raw)
)]
pub struct InvalidName {
    raw: String,
}

impl InvalidName {
    /// The rejected input, as given.
    pub fn raw(&self) -> &str {
        &self.raw
    }
}

/// Whether `raw` is a valid project name:
/// `^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$`, case-insensitive.
pub fn is_valid_name(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        }
        _ => false,
    }
}

/// Normalizes a name without validating it: lower-case, and every run of `-`, `_` and `.`
/// replaced by a single `-`.
pub fn normalize(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_separator_run = false;
    for c in raw.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_separator_run {
                out.push('-');
                in_separator_run = true;
            }
        } else {
            in_separator_run = false;
            // ASCII first: names are nearly always ASCII, and this runs for every index request.
            if c.is_ascii() {
                out.push(c.to_ascii_lowercase());
            } else {
                out.extend(c.to_lowercase());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_table_from_the_spec() {
        for raw in [
            "friendly-bar",
            "Friendly-Bar",
            "FRIENDLY-BAR",
            "friendly.bar",
            "friendly_bar",
            "FrIeNdLy-._.-bAr",
        ] {
            assert_eq!(normalize(raw), "friendly-bar", "{raw}");
            assert_eq!(ProjectName::new(raw).unwrap().as_str(), "friendly-bar");
        }
    }

    #[test]
    fn dist_name_uses_underscores() {
        let name = ProjectName::new("Shared.Pkg--x").unwrap();
        assert_eq!(name.as_str(), "shared-pkg-x");
        assert_eq!(name.as_dist_name(), "shared_pkg_x");
        assert_eq!(name.to_string(), "shared-pkg-x");
    }

    #[test]
    fn valid_names() {
        for raw in ["a", "A1", "0", "a.b", "a_b-c", "zope.interface", "Django"] {
            assert!(is_valid_name(raw), "{raw}");
        }
    }

    #[test]
    fn invalid_names() {
        for raw in [
            "", "-a", "a-", ".a", "a.", "_a", "a_", "a b", "café", "a/b", "a+b", "a\n", "-",
        ] {
            assert!(ProjectName::new(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn error_message_names_the_rules() {
        let err = ProjectName::new("foo bar!").unwrap_err();
        assert_eq!(err.raw(), "foo bar!");
        assert_eq!(
            err.to_string(),
            "'foo bar!' is not a valid project name: names use ASCII letters, digits, '.', '_' \
             and '-', and start and end with a letter or digit"
        );
    }

    #[test]
    fn equality_is_on_the_normalized_form() {
        assert_eq!(
            ProjectName::new("Foo_Bar").unwrap(),
            "foo.bar".parse::<ProjectName>().unwrap()
        );
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        /// The grammar of a normalized valid name.
        fn is_normalized_grammar(s: &str) -> bool {
            !s.is_empty()
                && s.split('-').all(|part| {
                    !part.is_empty()
                        && part
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                })
        }

        proptest! {
            #[test]
            fn normalize_is_idempotent(raw in any::<String>()) {
                let once = normalize(&raw);
                prop_assert_eq!(normalize(&once), once);
            }

            #[test]
            fn valid_names_normalize_to_the_grammar(raw in "[A-Za-z0-9]([A-Za-z0-9._-]{0,30}[A-Za-z0-9])?") {
                let name = ProjectName::new(&raw).unwrap();
                prop_assert!(is_normalized_grammar(name.as_str()), "{}", name);
                prop_assert_eq!(ProjectName::new(name.as_str()).unwrap(), name.clone());
                prop_assert_eq!(normalize(&name.as_dist_name()), name.as_str());
            }

            #[test]
            fn validation_never_panics(raw in any::<String>()) {
                let _ = ProjectName::new(&raw);
            }
        }
    }
}
