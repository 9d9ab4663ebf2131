//! Counts what one verification costs in CPU instructions, which (unlike wall time on a
//! shared machine) is repeatable. Run under callgrind, collecting only inside `measured`:
//!
//! ```sh
//! cargo build --release -p countersign-verifier --example verify_cost [--features ring]
//! valgrind --tool=callgrind --toggle-collect='*measured*' \
//!     target/release/examples/verify_cost first|repeat|ecdsa 1000
//! ```
//!
//! `first`: full verifications of a credential not seen before (cache off); `repeat`: of
//! one seen before (a fresh DPoP proof each time); `ecdsa`: bare P-256 signature checks.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement's setup may fail loudly

#[path = "../benches/support/fixture.rs"]
mod fixture;

use countersign_jose::{SigningKeyPair, UnverifiedJws, VerifyKey};
use countersign_verifier::Verifier;
use serde_json::{Value, json};

const NOW: i64 = 2_000_000_000;

#[inline(never)]
fn measured(
    verifier: &Verifier,
    token: &str,
    proofs: &[String],
    arguments: &Value,
    ecdsa: Option<(&UnverifiedJws, &VerifyKey)>,
) {
    for p in proofs {
        match ecdsa {
            Some((jws, key)) => key.verify(jws.signing_input(), jws.signature()).unwrap(),
            None => {
                verifier
                    .verify_at(&fixture::present(token, p, arguments), NOW)
                    .unwrap();
            }
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "first".into());
    let n: usize = args.next().map_or(1000, |a| a.parse().unwrap());
    let issuer = SigningKeyPair::generate();
    let agent = SigningKeyPair::generate();
    let token = fixture::credential(&issuer, &agent);
    let arguments = json!({"vendor": "Acme", "amount": 1000, "currency": "USD"});
    let cache = if mode == "first" { 0 } else { 10_000 };
    let verifier = fixture::verifier(&issuer, cache);
    // Warm the status list cache (and, for `repeat`, the credential cache).
    verifier
        .verify_at(
            &fixture::present(&token, &fixture::proof(&agent, &token, NOW), &arguments),
            NOW,
        )
        .unwrap();
    let proofs: Vec<String> = (0..n)
        .map(|_| fixture::proof(&agent, &token, NOW))
        .collect();
    let jws = UnverifiedJws::parse(&token).unwrap();
    let key = VerifyKey::from_jwk(&issuer.public_jwk()).unwrap();
    let ecdsa = (mode == "ecdsa").then_some((&jws, &key));
    measured(&verifier, &token, &proofs, &arguments, ecdsa);
    println!("{mode}: {n} calls ({})", fixture::BACKEND);
}
