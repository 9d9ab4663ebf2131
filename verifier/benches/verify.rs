//! What a tool pays per call: a full verification (credential signature, claims, approved
//! action, DPoP proof with its signature and replay check, cached status list) next to the
//! two bare ECDSA P-256 verifications it cannot avoid, with the same backend.
//!
//! `cargo bench -p countersign-verifier` (p256) and `... --features ring` (ring).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark's setup may fail loudly

#[path = "support/fixture.rs"]
mod fixture;

use countersign_jose::{SigningKeyPair, UnverifiedJws, VerifyKey};
use criterion::{Criterion, criterion_group, criterion_main};
use fixture::{BACKEND, credential, present, proof, verifier};
use serde_json::json;

fn bench(c: &mut Criterion) {
    let issuer = SigningKeyPair::generate();
    let agent = SigningKeyPair::generate();
    let token = credential(&issuer, &agent);
    let now = 2_000_000_000;
    let arguments = json!({"vendor": "Acme", "amount": 1000, "currency": "USD"});
    // "First presentation": the checked-credential cache is off, so every call parses the
    // credential and verifies both signatures. "Repeat presentation": the tool has seen
    // this credential before (the agent's next call with a fresh proof).
    let cases = [
        (
            "full verification, first presentation (credential + DPoP + cached status)",
            0,
        ),
        (
            "full verification, repeat presentation (DPoP + cached status)",
            10_000,
        ),
    ];
    let mut group = c.benchmark_group(format!("verify/{BACKEND}"));
    for (name, cache) in cases {
        let verifier = verifier(&issuer, cache);
        // Warm the status cache: the benchmark measures the cached path tools live on.
        verifier
            .verify_at(
                &present(&token, &proof(&agent, &token, now), &arguments),
                now,
            )
            .unwrap();
        // Proofs are single-use (the replay cache refuses repeats), so each measured batch
        // gets fresh ones, signed before the clock starts: only verification is timed.
        // Time advances one second per 1,000 calls, so with the default 120 s proof window
        // about 120,000 proofs are live against the 100,000-entry replay cache, which
        // therefore evicts and raises its floor as it would for a busy tool.
        let calls = std::cell::Cell::new(0i64);
        group.bench_function(name, |b| {
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
        });
    }
    let jws = UnverifiedJws::parse(&token).unwrap();
    let key = VerifyKey::from_jwk(&issuer.public_jwk()).unwrap();
    group.bench_function("one ECDSA P-256 verification", |b| {
        b.iter(|| key.verify(jws.signing_input(), jws.signature()).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
