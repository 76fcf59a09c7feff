//! PEP 440 versions (standards J5, J6), backed by `pep440_rs`.

pub use pep440_rs::{Version, VersionSpecifiers};

use crate::text::quote;

/// A string that is not a valid PEP 440 version.
#[derive(Debug, thiserror::Error)]
#[error("'{}' is not a valid PEP 440 version", quote(.raw))]
pub struct InvalidVersion {
    raw: String,
    #[source]
    source: pep440_rs::VersionParseError,
}

impl InvalidVersion {
    /// The rejected input, as given.
    pub fn raw(&self) -> &str {
        &self.raw
    }
}

/// Parses a PEP 440 version, ignoring surrounding whitespace. The result displays in normal
/// form (`1.0-Alpha` → `1.0a0`).
pub fn parse_version(raw: &str) -> Result<Version, InvalidVersion> {
    raw.trim()
        .parse::<Version>()
        .map_err(|source| InvalidVersion {
            raw: raw.to_owned(),
            source,
        })
}

/// The release key of a version: its normal form with trailing zeros of the release segment
/// removed (`1.0.0` → `1`, `1.0+local` → `1+local`, `2.0rc1` → `2rc1`). Two versions that are
/// equal under PEP 440 have the same key.
pub fn canonical_version(v: &Version) -> String {
    let release = v.release();
    if release.is_empty() {
        return v.to_string();
    }
    let keep = release
        .iter()
        .rposition(|&n| n != 0)
        .map_or(1, |last_nonzero| last_nonzero + 1);
    if keep == release.len() {
        return v.to_string();
    }
    v.clone()
        .with_release(release.iter().take(keep).copied())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_form() {
        for (raw, normal) in [
            ("1.0-Alpha", "1.0a0"),
            ("  v1.0  ", "1.0"),
            ("1.0.0", "1.0.0"),
            ("01.02", "1.2"),
            ("1.0-1", "1.0.post1"),
            ("1.0rev2", "1.0.post2"),
            ("1.0-preview", "1.0rc0"),
            ("1.0.DEV", "1.0.dev0"),
            ("1.0+Local_Build-7", "1.0+local.build.7"),
            ("1!2.0", "1!2.0"),
        ] {
            assert_eq!(parse_version(raw).unwrap().to_string(), normal, "{raw}");
        }
    }

    #[test]
    fn invalid_versions_are_refused_with_the_input_in_the_message() {
        for raw in ["", "abc", "1.0.*", "1..0", "1.0 beta gamma", "1.0+", "="] {
            let err = parse_version(raw).unwrap_err();
            assert_eq!(err.raw(), raw);
            assert_eq!(
                err.to_string(),
                format!("'{raw}' is not a valid PEP 440 version")
            );
        }
    }

    #[test]
    fn canonical_strips_trailing_release_zeros() {
        for (raw, key) in [
            ("1.0.0", "1"),
            ("1.0", "1"),
            ("1", "1"),
            ("0", "0"),
            ("0.0.0", "0"),
            ("1.2.0", "1.2"),
            ("1.0.1", "1.0.1"),
            ("1.0+local", "1+local"),
            ("2.0.0rc1", "2rc1"),
            ("1!1.0.post1.dev2", "1!1.post1.dev2"),
        ] {
            let v = parse_version(raw).unwrap();
            assert_eq!(canonical_version(&v), key, "{raw}");
        }
    }

    #[test]
    fn equal_versions_share_a_key() {
        let a = parse_version("1.0").unwrap();
        let b = parse_version("1.0.0").unwrap();
        assert_eq!(a, b);
        assert_eq!(canonical_version(&a), canonical_version(&b));
        let local = parse_version("1.0+cu1").unwrap();
        assert_ne!(canonical_version(&a), canonical_version(&local));
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn parsing_never_panics(raw in any::<String>()) {
                let _ = parse_version(&raw);
            }

            #[test]
            fn normal_form_round_trips(raw in r"(v)?[0-9]{1,4}(\.[0-9]{1,4}){0,4}((a|b|rc|alpha|c)[0-9]{0,2})?(\.post[0-9]{1,2})?(\.dev[0-9]{1,2})?(\+[a-z0-9]{1,5}(\.[a-z0-9]{1,5})?)?") {
                let v = parse_version(&raw).unwrap();
                let normal = v.to_string();
                let again = parse_version(&normal).unwrap();
                prop_assert_eq!(again.to_string(), normal);
                prop_assert_eq!(&again, &v);
                let key = canonical_version(&v);
                prop_assert_eq!(&parse_version(&key).unwrap(), &v);
                prop_assert_eq!(canonical_version(&parse_version(&key).unwrap()), key);
            }
        }
    }
}
