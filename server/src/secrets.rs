//! Generated secrets (client secrets, admin keys, user codes) and their stored hashes.
//!
//! Secrets Countersign generates carry 256 bits of entropy, so a single SHA-256 is a sound
//! verifier: a slow password hash would add milliseconds to every client authentication
//! and buy nothing against a secret that cannot be guessed (see docs/adr/0002). Comparison
//! is constant-time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

/// A secret value whose `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// 32 random bytes, base64url.
    pub fn generate() -> Self {
        Self(countersign_jose::random_b64url(32))
    }

    pub fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> String {
        hash_secret(&self.0)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

pub fn hash_secret(secret: &str) -> String {
    format!(
        "sha256:{}",
        countersign_jose::b64url_encode(Sha256::digest(secret.as_bytes()))
    )
}

pub fn verify_secret(secret: &str, stored_hash: &str) -> bool {
    hash_secret(secret)
        .as_bytes()
        .ct_eq(stored_hash.as_bytes())
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_the_same_secret_and_debug_hides_it() {
        let s = Secret::generate();
        assert_eq!(s.expose().len(), 43);
        assert!(verify_secret(s.expose(), &s.hash()));
        assert!(!verify_secret("guess", &s.hash()));
        assert_eq!(format!("{s:?}"), "Secret(***)");
    }
}
