//! Tokens as a test reads and forges them: OAuth error answers, JWT payloads read without
//! verifying, unsigned JWTs, and resource-server DPoP proofs.

use countersign_jose::{Header, SigningKeyPair, random_b64url};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Asserts an OAuth error response: the status, the `error` code, and a description.
#[track_caller]
pub fn assert_oauth_error(result: (StatusCode, Value), status: StatusCode, code: &str) {
    let (got_status, body) = result;
    assert_eq!(
        (got_status, body["error"].as_str()),
        (status, Some(code)),
        "{body}"
    );
    assert!(body["error_description"].is_string(), "{body}");
}

/// A resource-server DPoP proof (RFC 9449 §7) for a call with `credential`, by `key`.
pub fn resource_proof(
    key: &SigningKeyPair,
    method: &str,
    url: &str,
    credential: &str,
    iat: i64,
) -> String {
    use sha2::Digest as _;
    let header = Header {
        typ: Some("dpop+jwt".into()),
        jwk: Some(key.public_jwk()),
        ..Header::default()
    };
    let ath = countersign_jose::b64url_encode(sha2::Sha256::digest(credential.as_bytes()));
    key.sign_with_header(
        &header,
        &json!({"jti": random_b64url(12), "htm": method, "htu": url, "iat": iat, "ath": ath}),
    )
    .expect("sign proof")
}

/// Decodes a JWT payload without verifying (tests verify separately).
pub fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("JWT has a payload");
    serde_json::from_slice(&countersign_jose::b64url_decode(payload).expect("base64url"))
        .expect("JSON")
}

/// A compact JWS with the given header and claims and a junk signature, for testing
/// algorithm refusal (`none`, `HS256`).
pub fn unsigned_jwt(header: Value, claims: Value) -> String {
    use countersign_jose::b64url_encode;
    let sig = if header["alg"] == "none" {
        String::new()
    } else {
        b64url_encode(b"not-a-signature")
    };
    format!(
        "{}.{}.{sig}",
        b64url_encode(header.to_string()),
        b64url_encode(claims.to_string())
    )
}
