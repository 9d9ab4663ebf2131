//! The checked-credential cache: a credential seen before skips its signature check, but
//! every call still gets the per-call checks, and a withdrawn issuer key stops counting.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::sync::Mutex;

use countersign_jose::{Header, JwkSet, SigningKeyPair, b64url_encode, random_b64url, thumbprint};
use countersign_verifier::{KeySource, Presentation, Rejection, StatusSource, Verifier};
use serde_json::{Value, json};

const ISSUER: &str = "https://auth.example.com";
const STATUS_URI: &str = "https://auth.example.com/status-lists/1";
const TOOL: &str = "https://tools.example.com/orders";
const NOW: i64 = 2_000_000_000;

fn credential(issuer: &SigningKeyPair, agent: &SigningKeyPair, exp: i64) -> String {
    let jkt = thumbprint(&agent.public_jwk()).unwrap();
    issuer
        .sign(
            "vc+jwt",
            &json!({
                // Several calls per credential here: counting uses is tested in usage.rs.
                "max_uses": "unlimited",
                "id": format!("{ISSUER}/credentials/{}", random_b64url(8)),
                "jti": random_b64url(8),
                "iss": ISSUER, "iat": NOW - 10, "nbf": NOW - 10, "exp": exp,
                "client_id": "procurement", "cnf": {"jkt": jkt},
                "credentialSubject": {"authorization_details": [
                    {"type": "purchase_order", "vendor": "Acme", "amount": 1200, "currency": "USD"}]},
                "evidence": [{"approver": {"subject": "alice"}, "method": "dev"}],
                "status": {"status_list": {"idx": 7, "uri": STATUS_URI}},
            }),
        )
        .unwrap()
}

fn proof(agent: &SigningKeyPair, token: &str) -> String {
    let header = Header {
        typ: Some("dpop+jwt".into()),
        jwk: Some(agent.public_jwk()),
        ..Header::default()
    };
    let ath = b64url_encode(countersign_jose::sha256(token.as_bytes()));
    agent
        .sign_with_header(
            &header,
            &json!({"jti": random_b64url(12), "htm": "POST", "htu": TOOL, "iat": NOW, "ath": ath}),
        )
        .unwrap()
}

/// A status list whose revoked entries can change between fetches.
struct Lists {
    issuer: SigningKeyPair,
    revoked: Mutex<Vec<usize>>,
}

impl StatusSource for &'static Lists {
    fn fetch(&self, _uri: &str) -> Result<String, String> {
        let mut bits = vec![0u8; 16];
        for &i in self.revoked.lock().unwrap().iter() {
            bits[i / 8] |= 1 << (i % 8);
        }
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut z, &bits).unwrap();
        let lst = b64url_encode(z.finish().unwrap());
        Ok(self
            .issuer
            .sign(
                "statuslist+jwt",
                &json!({"sub": STATUS_URI, "iat": NOW, "ttl": 0, "status_list": {"bits": 1, "lst": lst}}),
            )
            .unwrap())
    }
}

fn call<'a>(token: &'a str, proof: &'a str, arguments: &'a Value) -> Presentation<'a> {
    Presentation {
        token,
        dpop_proof: Some(proof),
        method: "POST",
        url: TOOL,
        action: Some("purchase_order"),
        arguments: Some(arguments),
    }
}

fn jwks(keys: &[&SigningKeyPair]) -> JwkSet {
    JwkSet {
        keys: keys.iter().map(|k| k.public_jwk()).collect(),
    }
}

#[test]
fn a_cached_credential_still_gets_every_per_call_check() {
    let lists: &'static Lists = Box::leak(Box::new(Lists {
        issuer: SigningKeyPair::generate(),
        revoked: Mutex::new(vec![]),
    }));
    let agent = SigningKeyPair::generate();
    let verifier = Verifier::builder()
        .trust_issuer(ISSUER, &jwks(&[&lists.issuer]))
        .status_source(lists)
        .status_ttl(std::time::Duration::ZERO)
        .build();
    let token = credential(&lists.issuer, &agent, NOW + 600);
    let fits = json!({"vendor": "Acme", "amount": 1000, "currency": "USD"});

    let first = verifier.verify_at(&call(&token, &proof(&agent, &token), &fits), NOW);
    let again = verifier.verify_at(&call(&token, &proof(&agent, &token), &fits), NOW);
    assert_eq!(
        first.unwrap(),
        again.unwrap(),
        "same verdict from the cache"
    );

    let too_much = json!({"vendor": "Acme", "amount": 1500, "currency": "USD"});
    assert!(matches!(
        verifier.verify_at(&call(&token, &proof(&agent, &token), &too_much), NOW),
        Err(Rejection::ArgumentOutsideApproval { .. })
    ));
    let used = proof(&agent, &token);
    verifier
        .verify_at(&call(&token, &used, &fits), NOW)
        .unwrap();
    assert_eq!(
        verifier.verify_at(&call(&token, &used, &fits), NOW),
        Err(Rejection::DpopReplayed)
    );
    let stranger = SigningKeyPair::generate();
    assert_eq!(
        verifier.verify_at(&call(&token, &proof(&stranger, &token), &fits), NOW),
        Err(Rejection::DpopKeyMismatch)
    );
    assert!(matches!(
        verifier.verify_at(&call(&token, &proof(&agent, &token), &fits), NOW + 1000),
        Err(Rejection::Expired { .. })
    ));
    lists.revoked.lock().unwrap().push(7);
    assert_eq!(
        verifier.verify_at(&call(&token, &proof(&agent, &token), &fits), NOW),
        Err(Rejection::Revoked)
    );

    // A forged signature on a known payload is a different token: checked from scratch.
    let (signed, _) = token.rsplit_once('.').unwrap();
    let forged = format!("{signed}.{}", b64url_encode([7u8; 64]));
    assert_eq!(
        verifier.verify_at(&call(&forged, &proof(&agent, &forged), &fits), NOW),
        Err(Rejection::BadSignature)
    );
}

/// The issuer's JWKS, as a key source that can rotate.
struct Jwks(Mutex<JwkSet>);

impl KeySource for &'static Jwks {
    fn fetch(&self, _issuer: &str) -> Result<JwkSet, String> {
        Ok(self.0.lock().unwrap().clone())
    }
}

#[test]
fn a_withdrawn_issuer_key_stops_counting_for_cached_credentials() {
    let old = SigningKeyPair::generate();
    let new = SigningKeyPair::generate();
    let published: &'static Jwks = Box::leak(Box::new(Jwks(Mutex::new(jwks(&[&old])))));
    let agent = SigningKeyPair::generate();
    let verifier = Verifier::builder()
        .trust_issuer(ISSUER, &jwks(&[&old]))
        .key_source(published)
        .fail_open_when_status_unavailable()
        .build();
    let fits = json!({"vendor": "Acme", "amount": 1000, "currency": "USD"});
    let by_old = credential(&old, &agent, NOW + 600);
    verifier
        .verify_at(&call(&by_old, &proof(&agent, &by_old), &fits), NOW)
        .unwrap();

    // The issuer withdraws the old key; a credential by the new one makes the verifier
    // refetch the JWKS.
    *published.0.lock().unwrap() = jwks(&[&new]);
    let by_new = credential(&new, &agent, NOW + 600);
    verifier
        .verify_at(&call(&by_new, &proof(&agent, &by_new), &fits), NOW)
        .unwrap();
    assert!(matches!(
        verifier.verify_at(&call(&by_old, &proof(&agent, &by_old), &fits), NOW),
        Err(Rejection::UnknownKey(_))
    ));
}
