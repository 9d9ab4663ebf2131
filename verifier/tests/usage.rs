//! How often a credential may be used: `max_uses` is counted by the usage store, a call
//! past it is refused with `use_limit_reached`, and only accepted calls count.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::sync::Mutex;

use countersign_jose::{Header, JwkSet, SigningKeyPair, b64url_encode, random_b64url, thumbprint};
use countersign_verifier::{
    CredentialUse, Presentation, Rejection, UsageStore, UseCount, Verifier,
};
use serde_json::{Value, json};

const ISSUER: &str = "https://auth.example.com";
const TOOL: &str = "https://tools.example.com/orders";
const NOW: i64 = 2_000_000_000;

fn credential(issuer: &SigningKeyPair, agent: Option<&SigningKeyPair>, max_uses: Value) -> String {
    let mut claims = json!({
        "id": format!("{ISSUER}/credentials/c"), "jti": random_b64url(8),
        "iss": ISSUER, "iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 600,
        "client_id": "procurement",
        "credentialSubject": {"authorization_details": [
            {"type": "purchase_order", "vendor": "Acme", "amount": 1200, "currency": "USD"}]},
        "evidence": [{"approver": {"subject": "alice"}, "method": "dev"}],
    });
    if !max_uses.is_null() {
        claims["max_uses"] = max_uses;
    }
    if let Some(agent) = agent {
        claims["cnf"] = json!({"jkt": thumbprint(&agent.public_jwk()).unwrap()});
    }
    issuer.sign("vc+jwt", &claims).unwrap()
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

fn verifier(issuer: &SigningKeyPair) -> countersign_verifier::VerifierBuilder {
    Verifier::builder()
        .trust_issuer(
            ISSUER,
            &JwkSet {
                keys: vec![issuer.public_jwk()],
            },
        )
        .fail_open_when_status_unavailable()
}

fn present<'a>(token: &'a str, proof: Option<&'a str>, args: &'a Value) -> Presentation<'a> {
    Presentation {
        token,
        dpop_proof: proof,
        method: "POST",
        url: TOOL,
        action: Some("purchase_order"),
        arguments: Some(args),
    }
}

const FITS: fn() -> Value = || json!({"vendor": "Acme", "amount": 1200, "currency": "USD"});

#[test]
fn a_single_use_credential_is_refused_the_second_time() {
    let issuer = SigningKeyPair::generate();
    let agent = SigningKeyPair::generate();
    let v = verifier(&issuer).build();
    let args = FITS();
    for max_uses in [json!(1), Value::Null] {
        // Stated as 1, or not stated at all (the strictest reading): once.
        let token = credential(&issuer, Some(&agent), max_uses);
        let first = v
            .verify_at(&present(&token, Some(&proof(&agent, &token)), &args), NOW)
            .unwrap();
        assert_eq!((first.max_uses, first.use_number), (Some(1), Some(1)));
        let second = v.verify_at(&present(&token, Some(&proof(&agent, &token)), &args), NOW);
        assert_eq!(second, Err(Rejection::UseLimitReached { max_uses: 1 }));
        assert_eq!(second.unwrap_err().code(), "use_limit_reached");
    }
}

#[test]
fn refused_calls_do_not_spend_a_use_and_limits_above_one_count_up() {
    let issuer = SigningKeyPair::generate();
    let agent = SigningKeyPair::generate();
    let v = verifier(&issuer).build();
    let token = credential(&issuer, Some(&agent), json!(2));
    let too_much = json!({"vendor": "Acme", "amount": 5000, "currency": "USD"});
    for _ in 0..3 {
        assert!(matches!(
            v.verify_at(
                &present(&token, Some(&proof(&agent, &token)), &too_much),
                NOW
            ),
            Err(Rejection::ArgumentOutsideApproval { .. })
        ));
    }
    let args = FITS();
    for n in 1..=2 {
        let verdict = v
            .verify_at(&present(&token, Some(&proof(&agent, &token)), &args), NOW)
            .unwrap();
        assert_eq!(verdict.use_number, Some(n));
    }
    assert_eq!(
        v.verify_at(&present(&token, Some(&proof(&agent, &token)), &args), NOW),
        Err(Rejection::UseLimitReached { max_uses: 2 })
    );
    // "unlimited": never counted.
    let open = credential(&issuer, Some(&agent), json!("unlimited"));
    for _ in 0..5 {
        let verdict = v
            .verify_at(&present(&open, Some(&proof(&agent, &open)), &args), NOW)
            .unwrap();
        assert_eq!((verdict.max_uses, verdict.use_number), (None, None));
    }
    for bad in [json!(0), json!(-1), json!("twice"), json!(1.5)] {
        let token = credential(&issuer, Some(&agent), bad.clone());
        assert!(
            matches!(
                v.verify_at(&present(&token, Some(&proof(&agent, &token)), &args), NOW),
                Err(Rejection::Malformed(_))
            ),
            "{bad}"
        );
    }
}

/// A store that fails: the call is refused, never let through uncounted.
struct Down;

impl UsageStore for Down {
    fn record_use(&self, _: &CredentialUse<'_>) -> Result<UseCount, String> {
        Err("unreachable".into())
    }
}

/// A store shared by two verifiers, as the issuer is shared by two hosts of a tool.
struct Shared(Mutex<Vec<String>>);

impl UsageStore for &'static Shared {
    fn record_use(&self, used: &CredentialUse<'_>) -> Result<UseCount, String> {
        let mut seen = self.0.lock().unwrap();
        let n = seen.iter().filter(|j| *j == used.jti).count() as u64;
        if n >= used.max_uses {
            return Ok(UseCount::LimitReached);
        }
        seen.push(used.jti.to_owned());
        Ok(UseCount::Counted(n + 1))
    }
}

#[test]
fn the_usage_store_decides_and_fails_closed() {
    let issuer = SigningKeyPair::generate();
    let agent = SigningKeyPair::generate();
    let args = FITS();
    let token = credential(&issuer, Some(&agent), json!(1));
    let down = verifier(&issuer).usage_store(Down).build();
    assert!(matches!(
        down.verify_at(&present(&token, Some(&proof(&agent, &token)), &args), NOW),
        Err(Rejection::UsageUnavailable(_))
    ));

    let shared: &'static Shared = Box::leak(Box::new(Shared(Mutex::new(Vec::new()))));
    let host_a = verifier(&issuer).usage_store(shared).build();
    let host_b = verifier(&issuer).usage_store(shared).build();
    assert!(
        host_a
            .verify_at(&present(&token, Some(&proof(&agent, &token)), &args), NOW)
            .is_ok()
    );
    assert_eq!(
        host_b.verify_at(&present(&token, Some(&proof(&agent, &token)), &args), NOW),
        Err(Rejection::UseLimitReached { max_uses: 1 })
    );
}

#[test]
fn bearer_credentials_are_refused_unless_allowed() {
    let issuer = SigningKeyPair::generate();
    let args = FITS();
    let bearer = credential(&issuer, None, json!(1));
    let strict = verifier(&issuer).build();
    let refused = strict.verify_at(&present(&bearer, None, &args), NOW);
    assert_eq!(refused, Err(Rejection::NotKeyBound));
    assert_eq!(refused.unwrap_err().code(), "not_key_bound");
    let lenient = verifier(&issuer).require_proof_of_possession(false).build();
    assert!(
        lenient
            .verify_at(&present(&bearer, None, &args), NOW)
            .is_ok()
    );
}
