//! Any bytes presented as a credential (with any proof) must be refused or accepted, never
//! crash the verifier.
#![no_main]

use std::sync::OnceLock;

use countersign_jose::{JwkSet, SigningKeyPair};
use countersign_verifier::{Presentation, Verifier};
use libfuzzer_sys::fuzz_target;

fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| {
        let key = SigningKeyPair::generate();
        Verifier::builder().trust_issuer("https://as.example", &JwkSet { keys: vec![key.public_jwk()] }).build()
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (token, proof) = text.split_once('\n').unwrap_or((&text, ""));
    let args = serde_json::json!({"vendor": "Acme", "amount": 1, "currency": "USD"});
    let _ = verifier().verify_at(
        &Presentation { token, dpop_proof: Some(proof), method: "POST", url: "https://t.example/", action: Some("purchase_order"), arguments: Some(&args) },
        1_000,
    );
});
