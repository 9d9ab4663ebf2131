//! Parsing entry points, exposed for fuzzing (`verifier/fuzz`): each must return an error
//! for any input, never panic, and never allocate without bound.

use countersign_jose::{SigningKeyPair, VerifyKey};

/// Parses and checks a DPoP proof as for a bound credential.
pub fn dpop_proof(proof: &str) -> bool {
    let ctx = crate::dpop::ProofContext {
        ath: "x",
        bound_jkt: "x",
        method: "POST",
        url: "https://t.example/",
        now: 0,
        max_age: 60,
        leeway: 5,
    };
    crate::dpop::check(proof, &ctx).is_ok()
}

/// Verifies and decodes a status list token.
pub fn status_list(token: &str) -> bool {
    static KEY: std::sync::OnceLock<VerifyKey> = std::sync::OnceLock::new();
    let key = KEY
        .get_or_init(|| VerifyKey::from_verifying_key(*SigningKeyPair::generate().verifying_key()));
    crate::status::decode(token, "https://t.example/1", &[(None, key.clone())], 0).is_ok()
}

/// Decodes a status list from its raw `lst` bytes (skipping the signature, so the
/// fuzzer reaches the decompressor).
pub fn status_bits(bits: u8, lst: &[u8], idx: u64) -> Option<u8> {
    crate::status::inflate(bits, lst).ok()?.get(idx)
}
