//! The one SHA-256 entry point (JWK thumbprints, `at_hash`, DPoP `ath`).

/// SHA-256 of `bytes`: ring's implementation when a ring feature is on (it uses the CPU's
/// SHA extensions with hand-written assembly), else the pure-Rust `sha2` crate.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    #[cfg(any(feature = "ring-verifier", feature = "ring-signer"))]
    {
        let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        out
    }
    #[cfg(not(any(feature = "ring-verifier", feature = "ring-signer")))]
    {
        use sha2::Digest as _;
        sha2::Sha256::digest(bytes).into()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sha256_matches_the_fips_180_2_example() {
        assert_eq!(
            crate::b64url_encode(super::sha256(b"abc")),
            // ba7816bf 8f01cfea 414140de 5dae2223 b00361a3 96177a9c b410ff61 f20015ad
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
    }
}
