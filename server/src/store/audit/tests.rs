//! Tests of the audit chain's hashing.

use super::event_hash;
use sha2::Digest as _;

/// The chain's definition: SHA-256 of the compact JSON array. Streaming must not
/// change a single byte of it (existing trails would stop verifying).
#[test]
fn hash_is_sha256_of_the_compact_json_array() {
    let detail = r#"{"amount":"1200","note":"quote \" and \\ backslash, é"}"#;
    let preimage = serde_json::json!([
        7,
        1_700_000_000_000_i64,
        "agent:a",
        "decision.made",
        "req-1",
        detail,
        "genesis"
    ]);
    let expected: String = sha2::Sha256::digest(preimage.to_string().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let got = event_hash(
        7,
        1_700_000_000_000,
        "agent:a",
        "decision.made",
        "req-1",
        detail,
        "genesis",
    );
    assert_eq!(got, expected);
    assert_ne!(
        got,
        event_hash(
            8,
            1_700_000_000_000,
            "agent:a",
            "decision.made",
            "req-1",
            detail,
            "genesis"
        )
    );
}
