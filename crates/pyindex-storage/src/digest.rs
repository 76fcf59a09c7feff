//! The digests an index records for each file: SHA-256 (the blob key), MD5 and BLAKE2b-256
//! (the ones upload clients send to be checked).

use blake2::Blake2b;
use blake2::digest::consts::U32;
use md5::Md5;
use sha2::{Digest, Sha256};

/// Lower-case hex digests of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    /// SHA-256.
    pub sha256: String,
    /// MD5.
    pub md5: String,
    /// BLAKE2b with a 256-bit output.
    pub blake2_256: String,
}

/// Computes [`Digests`] incrementally.
#[derive(Clone, Default)]
pub struct Hasher {
    sha256: Sha256,
    md5: Md5,
    blake2_256: Blake2b<U32>,
}

impl Hasher {
    /// Feeds more bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.sha256.update(data);
        self.md5.update(data);
        self.blake2_256.update(data);
    }

    /// The digests of everything fed so far.
    pub fn finish(self) -> Digests {
        Digests {
            sha256: hex::encode(self.sha256.finalize()),
            md5: hex::encode(self.md5.finalize()),
            blake2_256: hex::encode(self.blake2_256.finalize()),
        }
    }

    /// The digests of `data`.
    pub fn digest(data: &[u8]) -> Digests {
        let mut hasher = Hasher::default();
        hasher.update(data);
        hasher.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors_for_abc() {
        let d = Hasher::digest(b"abc");
        assert_eq!(
            d.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(d.md5, "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            d.blake2_256,
            "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319"
        );
    }

    #[test]
    fn incremental_equals_one_shot() {
        let mut h = Hasher::default();
        h.update(b"ab");
        h.update(b"c");
        assert_eq!(h.finish(), Hasher::digest(b"abc"));
    }
}
