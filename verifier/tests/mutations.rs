//! Thousands of corrupted inputs through every parsing entry point: each must be refused
//! with an error, never a panic. (The `verifier/fuzz` targets explore further with
//! coverage guidance; this runs in every test run.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use countersign_jose::{Header, JwkSet, SigningKeyPair, b64url_encode};
use countersign_verifier::{Presentation, Verifier, fuzzing};
use serde_json::json;

/// xorshift64*: deterministic, dependency-free randomness for reproducible mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const ALPHABET: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.={}\"\\:,[] \x00\xff";

fn mutate(rng: &mut Rng, input: &str) -> String {
    let mut bytes = input.as_bytes().to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(5) {
            0 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] = ALPHABET[rng.below(ALPHABET.len())];
            }
            1 if !bytes.is_empty() => {
                let cut = rng.below(bytes.len());
                bytes.truncate(cut);
            }
            2 => {
                let i = rng.below(bytes.len() + 1);
                bytes.insert(i, ALPHABET[rng.below(ALPHABET.len())]);
            }
            3 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes.remove(i);
            }
            _ => {
                let i = rng.below(bytes.len() + 1);
                bytes.insert(i, b'.');
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Mutates inside a segment's decoded JSON too, so the parsers behind base64 are reached.
fn mutate_json_segment(rng: &mut Rng, token: &str) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let i = rng.below(parts.len().min(2));
    let decoded = countersign_jose::b64url_decode(&parts[i]).unwrap_or_default();
    let text = mutate(rng, &String::from_utf8_lossy(&decoded));
    parts[i] = b64url_encode(text);
    parts.join(".")
}

#[test]
fn corrupted_inputs_are_refused_without_panicking() {
    let issuer = SigningKeyPair::generate();
    let agent = SigningKeyPair::generate();
    let jkt = countersign_jose::thumbprint(&agent.public_jwk()).unwrap();
    let token = issuer
        .sign(
            "vc+jwt",
            &json!({"iss": "https://as.example", "id": "c1", "jti": "c1", "max_uses": "unlimited", "client_id": "agent", "exp": 4_000_000_000i64, "nbf": 1,
                "credentialSubject": {"authorization_details": [{"type": "purchase_order", "vendor": "Acme", "amount": 5, "currency": "USD"}]},
                "evidence": [{"approver": {"subject": "alice"}}], "cnf": {"jkt": jkt},
                "status": {"status_list": {"idx": 3, "uri": "https://as.example/status-lists/1"}}}),
        )
        .unwrap();
    let header = Header {
        typ: Some("dpop+jwt".into()),
        jwk: Some(agent.public_jwk()),
        ..Header::default()
    };
    let proof = agent
        .sign_with_header(
            &header,
            &json!({"jti": "j", "htm": "POST", "htu": "https://t.example/", "iat": 0}),
        )
        .unwrap();
    let list = issuer
        .sign("statuslist+jwt", &json!({"sub": "https://t.example/1", "ttl": 1, "status_list": {"bits": 1, "lst": "eJwDAAAAAAE"}}))
        .unwrap();
    let verifier = Verifier::builder()
        .trust_issuer(
            "https://as.example",
            &JwkSet {
                keys: vec![issuer.public_jwk()],
            },
        )
        .fail_open_when_status_unavailable()
        .build();
    let args = json!({"vendor": "Acme", "amount": 1, "currency": "USD"});

    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut refused = 0;
    for round in 0..3_000 {
        let bad_token = if round % 2 == 0 {
            mutate(&mut rng, &token)
        } else {
            mutate_json_segment(&mut rng, &token)
        };
        let bad_proof = if round % 2 == 0 {
            mutate(&mut rng, &proof)
        } else {
            mutate_json_segment(&mut rng, &proof)
        };
        let p = Presentation {
            token: &bad_token,
            dpop_proof: Some(&bad_proof),
            method: "POST",
            url: "https://t.example/",
            action: Some("purchase_order"),
            arguments: Some(&args),
        };
        if verifier.verify_at(&p, 100).is_err() {
            refused += 1;
        }
        fuzzing::dpop_proof(&bad_proof);
        fuzzing::status_list(&mutate_json_segment(&mut rng, &list));
        let lst: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
        fuzzing::status_bits((rng.next() % 9) as u8, &lst, rng.next() % 1024);
    }
    assert!(
        refused > 2_900,
        "almost every corruption must be refused, got {refused}"
    );
}
