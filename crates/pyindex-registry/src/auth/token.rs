//! API tokens: `pyindex_<public id>_<secret>`.
//!
//! The public id (16 hex characters) finds the stored row and is safe to show in listings; the
//! whole token is stored only as its SHA-256, compared in constant time. Tokens carry 256 bits
//! of randomness, so a fast hash is enough: there is nothing to brute-force.

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::auth::random_bytes;

/// The recognisable prefix of every token (secret scanners can match on it).
pub const PREFIX: &str = "pyindex_";

/// A freshly generated token.
pub struct GeneratedToken {
    /// The whole token, shown to the user once.
    pub secret: String,
    /// Its public id.
    pub public_id: String,
    /// Hex SHA-256 of the whole token.
    pub hash: String,
}

/// Generates a new token.
pub fn generate() -> GeneratedToken {
    let public_id = hex::encode(random_bytes::<8>());
    let secret_part = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>());
    let secret = format!("{PREFIX}{public_id}_{secret_part}");
    let hash = digest(&secret);
    GeneratedToken {
        secret,
        public_id,
        hash,
    }
}

/// The public id inside a token, if it has the token shape.
pub fn public_id(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()) && !secret.is_empty())
        .then_some(id)
}

/// Hex SHA-256 of a token.
pub fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether `token` hashes to `stored`, compared in constant time.
pub fn matches(token: &str, stored: &str) -> bool {
    digest(token).as_bytes().ct_eq(stored.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_match() {
        let t = generate();
        assert!(t.secret.starts_with(PREFIX));
        assert_eq!(public_id(&t.secret), Some(t.public_id.as_str()));
        assert!(matches(&t.secret, &t.hash));
        assert!(!matches(&format!("{}x", t.secret), &t.hash));
        assert_ne!(generate().secret, t.secret);
    }

    #[test]
    fn malformed_tokens_have_no_id() {
        for bad in [
            "",
            "pyindex_",
            "pyindex_abc_def",
            "other_0123456789abcdef_x",
            "pyindex_0123456789abcdef_",
        ] {
            assert_eq!(public_id(bad), None, "{bad}");
        }
    }
}
