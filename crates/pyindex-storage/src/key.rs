//! Blob keys: lower-case hex SHA-256 digests.

use std::fmt;

/// The address of a blob: the lower-case hex SHA-256 of its content.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobKey(String);

/// A string that is not a 64-character lower-case hex digest.
#[derive(Debug, thiserror::Error)]
#[error("'{0}' is not a SHA-256 hex digest")]
pub struct InvalidBlobKey(pub String);

impl BlobKey {
    /// Parses a 64-character hex SHA-256 digest (upper-case is folded to lower-case).
    pub fn parse(hex: &str) -> Result<BlobKey, InvalidBlobKey> {
        if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(BlobKey(hex.to_ascii_lowercase()))
        } else {
            Err(InvalidBlobKey(hex.to_owned()))
        }
    }

    /// The hex digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_hex_and_folds_case() {
        let key = BlobKey::parse(&"AB".repeat(32)).unwrap();
        assert_eq!(key.as_str(), "ab".repeat(32));
    }

    #[test]
    fn refuses_wrong_length_and_non_hex() {
        assert!(BlobKey::parse("abc").is_err());
        assert!(BlobKey::parse(&"g".repeat(64)).is_err());
        assert!(BlobKey::parse(&format!("../{}", "a".repeat(61))).is_err());
    }
}
