//! DPoP proofs (RFC 9449) for the benchmark agents: the token endpoint refuses an unbound
//! request from an agent that is not bearer-only, so the benchmarks pay for the proof
//! (signing here, verification on the server) as real agents do.

use countersign_jose::{Header, SigningKeyPair, b64url_encode, random_b64url, sha256};

/// A fresh proof by `key` for `method` `htu`, issued now.
pub fn proof(key: &SigningKeyPair, method: &str, htu: &str) -> anyhow::Result<String> {
    signed(key, serde_json::json!({"htm": method, "htu": htu}))
}

/// A fresh proof presenting `access_token` to a tool (`ath`, RFC 9449 §4.2).
pub fn presenting(
    key: &SigningKeyPair,
    access_token: &str,
    method: &str,
    htu: &str,
) -> anyhow::Result<String> {
    let ath = b64url_encode(sha256(access_token.as_bytes()));
    signed(
        key,
        serde_json::json!({"htm": method, "htu": htu, "ath": ath}),
    )
}

fn signed(key: &SigningKeyPair, mut claims: serde_json::Value) -> anyhow::Result<String> {
    let header = Header {
        typ: Some("dpop+jwt".into()),
        jwk: Some(key.public_jwk()),
        ..Header::default()
    };
    let iat = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    claims["jti"] = random_b64url(12).into();
    claims["iat"] = iat.into();
    Ok(key.sign_with_header(&header, &claims)?)
}
