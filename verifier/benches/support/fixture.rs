//! The credential, status list and proofs the verifier benchmark and the instruction-count
//! example share: shaped like the server's (see tests/tests/snapshots).

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)] // benchmark setup fails loudly

use std::io::Write as _;

use countersign_jose::{Header, JwkSet, SigningKeyPair, b64url_encode, random_b64url, thumbprint};
use countersign_verifier::{Presentation, StatusSource, Verifier};
use serde_json::json;

pub const ISSUER: &str = "https://auth.example.com";
pub const STATUS_URI: &str = "https://auth.example.com/status-lists/1";
pub const TOOL: &str = "https://tools.example.com/orders";
pub const BACKEND: &str = if cfg!(feature = "ring") {
    "ring"
} else {
    "p256"
};

pub struct StaticList(String);

impl StatusSource for StaticList {
    fn fetch(&self, _uri: &str) -> Result<String, String> {
        Ok(self.0.clone())
    }
}

pub fn status_list(issuer: &SigningKeyPair) -> String {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&vec![0u8; (1 << 17) / 8]).unwrap();
    let lst = b64url_encode(z.finish().unwrap());
    issuer
        .sign("statuslist+jwt", &json!({"sub": STATUS_URI, "iat": 0, "ttl": 1_000_000_000, "status_list": {"bits": 1, "lst": lst}}))
        .unwrap()
}

/// A credential shaped like the server's (see tests/tests/snapshots/credentials__credential.snap).
pub fn credential(issuer: &SigningKeyPair, agent_key: &SigningKeyPair) -> String {
    let jkt = thumbprint(&agent_key.public_jwk()).unwrap();
    let details =
        json!([{"type": "purchase_order", "vendor": "Acme", "amount": 1200, "currency": "USD"}]);
    issuer
        .sign(
            "vc+jwt",
            &json!({
                "@context": ["https://www.w3.org/ns/credentials/v2"],
                "id": format!("{ISSUER}/credentials/abc"),
                "type": ["VerifiableCredential", "AgentActionApproval"],
                "issuer": ISSUER, "validFrom": "2026-01-01T00:00:00Z", "validUntil": "2099-01-01T00:00:00Z",
                "credentialSubject": {"id": format!("{ISSUER}/agents/procurement"), "client_id": "procurement",
                    "key_thumbprint": jkt, "action": "purchase_order", "authorization_details": details,
                    "scope": "openid", "binding_message": "W4SCT",
                    "context": {"environment": null, "target_resource": null, "risk_signals": []}},
                "evidence": [{"type": ["HumanApproval"], "approver": {"subject": "alice", "name": "Alice"},
                    "approvedAt": "2026-01-01T00:00:00Z", "method": "passkey+device_key", "acr": "x", "amr": ["hwk", "user"],
                    "deviceKeyThumbprint": null, "approval": null, "policy": null}],
                "iss": ISSUER, "sub": "procurement", "iat": 1, "nbf": 1, "exp": 4_000_000_000i64, "jti": "abc",
                // Presented again and again by the benchmark: not counted (max_uses).
                "max_uses": "unlimited",
                "client_id": "procurement", "cnf": {"jkt": jkt},
                "status": {"status_list": {"idx": 4242, "uri": STATUS_URI}},
            }),
        )
        .unwrap()
}

pub fn proof(key: &SigningKeyPair, token: &str, now: i64) -> String {
    let header = Header {
        typ: Some("dpop+jwt".into()),
        jwk: Some(key.public_jwk()),
        ..Header::default()
    };
    let ath = b64url_encode(countersign_jose::sha256(token.as_bytes()));
    key.sign_with_header(
        &header,
        &json!({"jti": random_b64url(12), "htm": "POST", "htu": TOOL, "iat": now, "ath": ath}),
    )
    .unwrap()
}

pub fn present<'a>(
    token: &'a str,
    proof: &'a str,
    arguments: &'a serde_json::Value,
) -> Presentation<'a> {
    Presentation {
        token,
        dpop_proof: Some(proof),
        method: "POST",
        url: TOOL,
        action: Some("purchase_order"),
        arguments: Some(arguments),
    }
}

pub fn verifier(issuer: &SigningKeyPair, cache: usize) -> Verifier {
    Verifier::builder()
        .trust_issuer(
            ISSUER,
            &JwkSet {
                keys: vec![issuer.public_jwk()],
            },
        )
        .status_source(StaticList(status_list(issuer)))
        .credential_cache_capacity(cache)
        .build()
}
