//! What a tool pays per call: a full verification (credential signature, claims, approved
//! action, DPoP proof with its signature and replay check, cached status list) next to the
//! two bare ECDSA P-256 verifications it cannot avoid, with the same backend.
//!
//! `cargo bench -p countersign-verifier` (p256) and `... --features ring` (ring).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark's setup may fail loudly

use std::io::Write as _;

use countersign_jose::{
    Header, JwkSet, SigningKeyPair, UnverifiedJws, VerifyKey, b64url_encode, random_b64url,
    thumbprint,
};
use countersign_verifier::{Presentation, StatusSource, Verifier};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use sha2::{Digest, Sha256};

const ISSUER: &str = "https://auth.example.com";
const STATUS_URI: &str = "https://auth.example.com/status-lists/1";
const TOOL: &str = "https://tools.example.com/orders";
const BACKEND: &str = if cfg!(feature = "ring") {
    "ring"
} else {
    "p256"
};

struct StaticList(String);

impl StatusSource for StaticList {
    fn fetch(&self, _uri: &str) -> Result<String, String> {
        Ok(self.0.clone())
    }
}

fn status_list(issuer: &SigningKeyPair) -> String {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&vec![0u8; (1 << 17) / 8]).unwrap();
    let lst = b64url_encode(z.finish().unwrap());
    issuer
        .sign("statuslist+jwt", &json!({"sub": STATUS_URI, "iat": 0, "ttl": 1_000_000_000, "status_list": {"bits": 1, "lst": lst}}))
        .unwrap()
}

/// A credential shaped like the server's (see tests/tests/snapshots/credentials__credential.snap).
fn credential(issuer: &SigningKeyPair, agent_key: &SigningKeyPair) -> String {
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
                "client_id": "procurement", "cnf": {"jkt": jkt},
                "status": {"status_list": {"idx": 4242, "uri": STATUS_URI}},
            }),
        )
        .unwrap()
}

fn proof(key: &SigningKeyPair, token: &str, now: i64) -> String {
    let header = Header {
        typ: Some("dpop+jwt".into()),
        jwk: Some(key.public_jwk()),
        ..Header::default()
    };
    let ath = b64url_encode(Sha256::digest(token.as_bytes()));
    key.sign_with_header(
        &header,
        &json!({"jti": random_b64url(12), "htm": "POST", "htu": TOOL, "iat": now, "ath": ath}),
    )
    .unwrap()
}

fn present<'a>(
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

fn bench(c: &mut Criterion) {
    let issuer = SigningKeyPair::generate();
    let agent = SigningKeyPair::generate();
    let token = credential(&issuer, &agent);
    let verifier = Verifier::builder()
        .trust_issuer(
            ISSUER,
            &JwkSet {
                keys: vec![issuer.public_jwk()],
            },
        )
        .status_source(StaticList(status_list(&issuer)))
        .build();
    let now = 2_000_000_000;
    let arguments = json!({"vendor": "Acme", "amount": 1000, "currency": "USD"});
    // Warm the status cache: the benchmark measures the cached path tools live on.
    verifier
        .verify_at(
            &present(&token, &proof(&agent, &token, now), &arguments),
            now,
        )
        .unwrap();

    let mut group = c.benchmark_group(format!("verify/{BACKEND}"));
    // Proofs are single-use (the replay cache refuses repeats), so each measured batch
    // gets fresh ones, signed before the clock starts: only verification is timed. Time
    // advances one second per 1,000 calls, so with the default 120 s proof window about
    // 120,000 proofs are live against the 100,000-entry replay cache, which therefore
    // evicts and raises its floor as it would for a busy tool.
    let calls = std::cell::Cell::new(0i64);
    group.bench_function(
        "full verification (credential + DPoP + cached status)",
        |b| {
            b.iter_custom(|iters| {
                let batch: Vec<(i64, String)> = (0..iters)
                    .map(|_| {
                        calls.set(calls.get() + 1);
                        let at = now + calls.get() / 1_000;
                        (at, proof(&agent, &token, at))
                    })
                    .collect();
                let start = std::time::Instant::now();
                for (at, p) in &batch {
                    verifier
                        .verify_at(&present(&token, p, &arguments), *at)
                        .unwrap();
                }
                start.elapsed()
            })
        },
    );
    let jws = UnverifiedJws::parse(&token).unwrap();
    let key = VerifyKey::from_jwk(&issuer.public_jwk()).unwrap();
    group.bench_function("one ECDSA P-256 verification", |b| {
        b.iter(|| key.verify(jws.signing_input(), jws.signature()).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
