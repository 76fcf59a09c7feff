//! Password hashing: argon2id for every password set here, and verification of the hashes
//! that htpasswd files carry (bcrypt, Apache's MD5 `$apr1$`, `{SHA}`), so that a team that put
//! basic auth in front of nginx moves over without resetting passwords.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, PasswordHash};
use base64::Engine;
use md5::{Digest, Md5};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use crate::auth::random_bytes;

/// Hashes a password with argon2id (a PHC string). Slow by design: call off the async runtime.
pub fn hash(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &random_bytes::<16>())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// A new random password: 24 characters of URL-safe base64 (144 bits).
pub fn generate() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<18>())
}

/// Whether `password` matches `stored`. Unknown hash formats never match. Slow by design.
pub fn verify(password: &str, stored: &str) -> bool {
    if stored.starts_with("$argon2") {
        PasswordHash::new(stored).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    } else if stored.starts_with("$2") {
        bcrypt::verify(password, stored).unwrap_or(false)
    } else if let Some(rest) = stored.strip_prefix("$apr1$") {
        let salt = rest.split('$').next().unwrap_or_default();
        apr1(password, salt)
            .as_bytes()
            .ct_eq(stored.as_bytes())
            .into()
    } else if let Some(expected) = stored.strip_prefix("{SHA}") {
        let actual =
            base64::engine::general_purpose::STANDARD.encode(Sha1::digest(password.as_bytes()));
        actual.as_bytes().ct_eq(expected.as_bytes()).into()
    } else {
        false
    }
}

/// Whether a stored hash should be replaced by an argon2id one after a successful login.
pub fn needs_upgrade(stored: &str) -> bool {
    !stored.starts_with("$argon2id$")
}

/// Whether `stored` is a hash format this module can verify.
pub fn is_supported(stored: &str) -> bool {
    stored.starts_with("$argon2")
        || stored.starts_with("$2a$")
        || stored.starts_with("$2b$")
        || stored.starts_with("$2y$")
        || stored.starts_with("$apr1$")
        || stored.starts_with("{SHA}")
}

const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn to64(out: &mut String, mut value: u32, chars: usize) {
    for _ in 0..chars {
        out.push(char::from(ITOA64[(value & 0x3f) as usize]));
        value >>= 6;
    }
}

/// Apache's MD5-crypt variant (`htpasswd -m`): `$apr1$<salt>$<22 chars>`.
fn apr1(password: &str, salt: &str) -> String {
    const MAGIC: &str = "$apr1$";
    let pw = password.as_bytes();
    let salt: String = salt.chars().take(8).collect();
    let salt_bytes = salt.as_bytes();

    let mut alternate = Md5::new();
    alternate.update(pw);
    alternate.update(salt_bytes);
    alternate.update(pw);
    let alternate = alternate.finalize();

    let mut ctx = Md5::new();
    ctx.update(pw);
    ctx.update(MAGIC.as_bytes());
    ctx.update(salt_bytes);
    for chunk in pw.chunks(16) {
        ctx.update(&alternate[..chunk.len()]);
    }
    let mut n = pw.len();
    while n > 0 {
        if n & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&pw[..1]);
        }
        n >>= 1;
    }
    let mut digest = ctx.finalize();

    for round in 0..1000 {
        let mut ctx = Md5::new();
        if round & 1 == 1 {
            ctx.update(pw);
        } else {
            ctx.update(digest);
        }
        if round % 3 != 0 {
            ctx.update(salt_bytes);
        }
        if round % 7 != 0 {
            ctx.update(pw);
        }
        if round & 1 == 1 {
            ctx.update(digest);
        } else {
            ctx.update(pw);
        }
        digest = ctx.finalize();
    }

    let d = |i: usize| u32::from(digest[i]);
    let mut out = format!("{MAGIC}{salt}$");
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        to64(&mut out, (d(a) << 16) | (d(b) << 8) | d(c), 4);
    }
    to64(&mut out, d(11), 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_round_trip() {
        let stored = hash("correct horse").unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify("correct horse", &stored));
        assert!(!verify("wrong", &stored));
        assert!(!needs_upgrade(&stored));
    }

    #[test]
    fn htpasswd_formats() {
        // Produced by `openssl passwd -apr1 -salt abcdefgh secret`, bcrypt at cost 4 and `htpasswd -nbs`.
        assert!(verify("secret", "$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/"));
        assert!(!verify("Secret", "$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/"));
        let bcrypt_hash = bcrypt::hash("secret", 4).unwrap();
        assert!(verify("secret", &bcrypt_hash));
        assert!(verify("secret", "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ="));
        assert!(!verify("secret", "plain-text"));
        assert!(needs_upgrade("{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ="));
    }
}
