#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! The verifier a tool embeds, against credentials from a real CIBA flow with DPoP: it
//! accepts the matching call and refuses each tamper case with its own reason, and refuses
//! a revoked credential within one status list TTL. Status lists are fetched over HTTP
//! from the running server.

use countersign_jose::{JwkSet, SigningKeyPair, b64url_decode, b64url_encode};
use countersign_tests::{Agent, Db, TestServer, unsigned_jwt};
use countersign_verifier::status::HttpStatusSource;
use countersign_verifier::{Presentation, Rejection, StatusSource, Verdict, Verifier};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOOL_URL: &str = "https://tools.example.com/orders";

struct Fixture {
    s: TestServer,
    agent: Agent,
    dpop: SigningKeyPair,
    credential: String,
    id_token: String,
    jwks: JwkSet,
}

async fn issued() -> Fixture {
    let s = TestServer::start(Db::Sqlite).await;
    s.clock.follow_system_time();
    s.human("alice").await;
    // These tests present one credential many times; spending it once is tested in
    // spend_once.rs.
    s.install_policy(countersign_tests::ghost::STANDING_POLICY)
        .await;
    let agent = s.agent("procurement", "alice", "private_key_jwt").await;
    let details = r#"[{"type":"purchase_order","vendor":"Acme","amount":1200,"currency":"USD"}]"#;
    let dpop = SigningKeyPair::generate();
    let tokens = s
        .approved_tokens(
            &agent,
            "alice",
            &[("authorization_details", details)],
            Some(&dpop),
        )
        .await;
    let jwks = s.jwks().await;
    Fixture {
        credential: tokens["access_token"].as_str().unwrap().to_owned(),
        id_token: tokens["id_token"].as_str().unwrap().to_owned(),
        s,
        agent,
        dpop,
        jwks,
    }
}

fn proof(key: &SigningKeyPair, method: &str, url: &str, credential: &str, iat: i64) -> String {
    countersign_tests::resource_proof(key, method, url, credential, iat)
}

fn verifier(f: &Fixture) -> Verifier {
    Verifier::builder()
        .trust_issuer(f.s.issuer(), &f.jwks)
        .status_source(HttpStatusSource::default())
        .build()
}

/// Runs the (blocking) verifier off the async runtime that serves the status list.
async fn verify(
    v: std::sync::Arc<Verifier>,
    token: String,
    dpop: Option<String>,
    method: &str,
    url: &str,
    arguments: Value,
    now: i64,
) -> Result<Verdict, Rejection> {
    let (method, url) = (method.to_owned(), url.to_owned());
    tokio::task::spawn_blocking(move || {
        v.verify_at(
            &Presentation {
                token: &token,
                dpop_proof: dpop.as_deref(),
                method: &method,
                url: &url,
                action: Some("purchase_order"),
                arguments: Some(&arguments),
            },
            now,
        )
    })
    .await
    .unwrap()
}

fn order(amount: f64, vendor: &str) -> Value {
    json!({"vendor": vendor, "amount": amount, "currency": "USD"})
}

impl Fixture {
    /// Verifies a POST to the tool with a fresh, correct proof.
    async fn call(
        &self,
        v: &std::sync::Arc<Verifier>,
        token: &str,
        arguments: Value,
    ) -> Result<Verdict, Rejection> {
        let now = self.s.now_s();
        let p = proof(&self.dpop, "POST", TOOL_URL, token, now);
        verify(
            v.clone(),
            token.to_owned(),
            Some(p),
            "POST",
            TOOL_URL,
            arguments,
            now,
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepts_the_approved_call_and_says_who_approved() {
    let f = issued().await;
    let v = std::sync::Arc::new(verifier(&f));
    let verdict = f
        .call(&v, &f.credential, order(1200.0, "Acme"))
        .await
        .unwrap();
    assert_eq!(
        (
            verdict.agent.as_str(),
            verdict.approver.as_deref().unwrap_or_default()
        ),
        ("procurement", "alice")
    );
    assert_eq!(verdict.approver_name.as_deref(), Some("ALICE"));
    assert_eq!(verdict.approval_method.as_deref(), Some("dev"));
    assert_eq!(verdict.authorization_details[0]["vendor"], "Acme");
    assert_eq!(
        verdict.agent_key,
        Some(countersign_jose::thumbprint(&f.dpop.public_jwk()).unwrap())
    );
    assert!(
        f.call(&v, &f.credential, order(99.0, "Acme")).await.is_ok(),
        "less than approved is fine"
    );
    f.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_calls_outside_the_approval() {
    let f = issued().await;
    let v = std::sync::Arc::new(verifier(&f));
    let over = f
        .call(&v, &f.credential, order(1500.0, "Acme"))
        .await
        .unwrap_err();
    assert!(
        matches!(&over, Rejection::ArgumentOutsideApproval { field, .. } if field == "amount"),
        "{over}"
    );
    let elsewhere = f
        .call(&v, &f.credential, order(10.0, "Evil Corp"))
        .await
        .unwrap_err();
    assert!(
        matches!(&elsewhere, Rejection::ArgumentOutsideApproval { field, .. } if field == "vendor"),
        "{elsewhere}"
    );
    let now = f.s.now_s();
    let p = proof(&f.dpop, "POST", TOOL_URL, &f.credential, now);
    let other_action = tokio::task::spawn_blocking({
        let (v, token) = (v.clone(), f.credential.clone());
        move || {
            v.verify_at(
                &Presentation {
                    token: &token,
                    dpop_proof: Some(&p),
                    method: "POST",
                    url: TOOL_URL,
                    action: Some("wire_transfer"),
                    arguments: None,
                },
                now,
            )
        }
    })
    .await
    .unwrap();
    assert!(
        matches!(other_action, Err(Rejection::ActionMismatch { .. })),
        "{other_action:?}"
    );
    f.s.stop().await;
}

fn tamper_payload(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&b64url_decode(parts[1]).unwrap()).unwrap();
    edit(&mut claims);
    format!(
        "{}.{}.{}",
        parts[0],
        b64url_encode(claims.to_string()),
        parts[2]
    )
}

fn tamper_header(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut header: Value = serde_json::from_slice(&b64url_decode(parts[0]).unwrap()).unwrap();
    edit(&mut header);
    format!(
        "{}.{}.{}",
        b64url_encode(header.to_string()),
        parts[1],
        parts[2]
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_forged_or_foreign_credentials() {
    let f = issued().await;
    let v = std::sync::Arc::new(verifier(&f));
    let raised = tamper_payload(&f.credential, |c| {
        c["credentialSubject"]["authorization_details"][0]["amount"] = json!(1_000_000)
    });
    assert_eq!(
        f.call(&v, &raised, order(900_000.0, "Acme"))
            .await
            .unwrap_err(),
        Rejection::BadSignature
    );
    let unknown_kid = tamper_header(&f.credential, |h| h["kid"] = json!("not-a-key"));
    assert_eq!(
        f.call(&v, &unknown_kid, order(1.0, "Acme"))
            .await
            .unwrap_err(),
        Rejection::UnknownKey(Some("not-a-key".into()))
    );
    let claims = countersign_tests::jwt_claims(&f.credential);
    for alg in ["none", "HS256"] {
        let forged = unsigned_jwt(json!({"alg": alg, "typ": "vc+jwt"}), claims.clone());
        assert_eq!(
            f.call(&v, &forged, order(1.0, "Acme")).await.unwrap_err(),
            Rejection::AlgorithmNotAllowed(alg.into())
        );
    }
    let mistyped = f
        .call(&v, &f.id_token, order(1.0, "Acme"))
        .await
        .unwrap_err();
    assert_eq!(mistyped, Rejection::WrongType(Some("JWT".into())));
    // A verifier that trusts another issuer only.
    let elsewhere = std::sync::Arc::new(
        Verifier::builder()
            .trust_issuer("https://other.example", &f.jwks)
            .build(),
    );
    let foreign = f
        .call(&elsewhere, &f.credential, order(1.0, "Acme"))
        .await
        .unwrap_err();
    assert_eq!(foreign, Rejection::UntrustedIssuer(Some(f.s.issuer())));
    f.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_outside_the_validity_window() {
    let f = issued().await;
    let v = std::sync::Arc::new(verifier(&f));
    let claims = countersign_tests::jwt_claims(&f.credential);
    let (nbf, exp) = (
        claims["nbf"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    let at = |now: i64| {
        let p = proof(&f.dpop, "POST", TOOL_URL, &f.credential, now);
        verify(
            v.clone(),
            f.credential.clone(),
            Some(p),
            "POST",
            TOOL_URL,
            order(1.0, "Acme"),
            now,
        )
    };
    assert_eq!(
        at(exp + 30).await.unwrap_err(),
        Rejection::Expired { exp, now: exp + 30 }
    );
    assert_eq!(
        at(nbf - 31).await.unwrap_err(),
        Rejection::NotYetValid { nbf, now: nbf - 31 }
    );
    f.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_bad_dpop_proofs_each_for_its_reason() {
    let f = issued().await;
    let v = std::sync::Arc::new(verifier(&f));
    let now = f.s.now_s();
    let run = |proof: Option<String>, method: &'static str| {
        verify(
            v.clone(),
            f.credential.clone(),
            proof,
            method,
            TOOL_URL,
            order(1.0, "Acme"),
            now,
        )
    };

    assert_eq!(run(None, "POST").await.unwrap_err(), Rejection::DpopMissing);
    let good = proof(&f.dpop, "POST", TOOL_URL, &f.credential, now);
    assert!(run(Some(good.clone()), "POST").await.is_ok());
    assert_eq!(
        run(Some(good), "POST").await.unwrap_err(),
        Rejection::DpopReplayed
    );
    let get = proof(&f.dpop, "GET", TOOL_URL, &f.credential, now);
    assert!(matches!(
        run(Some(get), "POST").await,
        Err(Rejection::DpopWrongMethod { .. })
    ));
    let other_url = proof(
        &f.dpop,
        "POST",
        "https://tools.example.com/refunds",
        &f.credential,
        now,
    );
    assert!(matches!(
        run(Some(other_url), "POST").await,
        Err(Rejection::DpopWrongUrl { .. })
    ));
    let for_other_token = proof(&f.dpop, "POST", TOOL_URL, &f.id_token, now);
    assert_eq!(
        run(Some(for_other_token), "POST").await.unwrap_err(),
        Rejection::DpopWrongAth
    );
    let thief = proof(
        &SigningKeyPair::generate(),
        "POST",
        TOOL_URL,
        &f.credential,
        now,
    );
    assert_eq!(
        run(Some(thief), "POST").await.unwrap_err(),
        Rejection::DpopKeyMismatch
    );
    let stale = proof(&f.dpop, "POST", TOOL_URL, &f.credential, now - 600);
    assert!(matches!(
        run(Some(stale), "POST").await,
        Err(Rejection::DpopInvalid(_))
    ));
    let forged = tamper_payload(&proof(&f.dpop, "POST", TOOL_URL, &f.credential, now), |c| {
        c["jti"] = json!("changed")
    });
    assert!(matches!(
        run(Some(forged), "POST").await,
        Err(Rejection::DpopInvalid(_))
    ));
    f.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_revoked_credential_within_one_status_ttl() {
    let f = issued().await;
    let v = std::sync::Arc::new(verifier(&f));
    assert!(
        f.call(&v, &f.credential, order(1.0, "Acme")).await.is_ok(),
        "valid, and the list is now cached"
    );
    let (status, _) =
        f.s.post_as(&f.agent, "/revoke", &[("token", &f.credential)])
            .await;
    assert_eq!(status, StatusCode::OK);
    // Within the list's ttl (10 s) the cached list may still say valid; after it, never.
    let ttl = 10;
    let later = f.s.now_s() + ttl + 1;
    let p = proof(&f.dpop, "POST", TOOL_URL, &f.credential, later);
    let after = verify(
        v.clone(),
        f.credential.clone(),
        Some(p),
        "POST",
        TOOL_URL,
        order(1.0, "Acme"),
        later,
    )
    .await;
    assert_eq!(after.unwrap_err(), Rejection::Revoked);
    // A fresh verifier sees the revocation at once.
    let fresh = std::sync::Arc::new(verifier(&f));
    assert_eq!(
        f.call(&fresh, &f.credential, order(1.0, "Acme"))
            .await
            .unwrap_err(),
        Rejection::Revoked
    );
    f.s.stop().await;
}

struct Unreachable;

impl StatusSource for Unreachable {
    fn fetch(&self, _uri: &str) -> Result<String, String> {
        Err("connection refused".into())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_closed_when_status_is_unavailable_unless_configured_open() {
    let f = issued().await;
    let closed = std::sync::Arc::new(
        Verifier::builder()
            .trust_issuer(f.s.issuer(), &f.jwks)
            .status_source(Unreachable)
            .build(),
    );
    assert!(matches!(
        f.call(&closed, &f.credential, order(1.0, "Acme")).await,
        Err(Rejection::StatusUnavailable(_))
    ));
    let open = std::sync::Arc::new(
        Verifier::builder()
            .trust_issuer(f.s.issuer(), &f.jwks)
            .status_source(Unreachable)
            .fail_open_when_status_unavailable()
            .build(),
    );
    assert!(
        f.call(&open, &f.credential, order(1.0, "Acme"))
            .await
            .is_ok()
    );
    f.s.stop().await;
}

/// Counts fetches made through the real HTTP key source.
struct CountingKeys(
    countersign_verifier::status::HttpKeySource,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
);

impl countersign_verifier::KeySource for CountingKeys {
    fn fetch(&self, issuer: &str) -> Result<JwkSet, String> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.fetch(issuer)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn picks_up_new_issuer_keys_from_the_key_source_at_most_once_a_minute() {
    let f = issued().await;
    // Built before it knew the issuer's current key (as after a rotation).
    let stale = JwkSet {
        keys: vec![SigningKeyPair::generate().public_jwk()],
    };
    let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let v = std::sync::Arc::new(
        Verifier::builder()
            .trust_issuer(f.s.issuer(), &stale)
            .key_source(CountingKeys(Default::default(), fetches.clone()))
            .status_source(HttpStatusSource::default())
            .build(),
    );
    assert!(f.call(&v, &f.credential, order(1.0, "Acme")).await.is_ok());
    assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1);
    let made_up = tamper_header(&f.credential, |h| h["kid"] = json!("made-up"));
    for _ in 0..3 {
        assert_eq!(
            f.call(&v, &made_up, order(1.0, "Acme")).await.unwrap_err(),
            Rejection::UnknownKey(Some("made-up".into()))
        );
    }
    assert_eq!(
        fetches.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "no refetch within a minute"
    );
    // Without a key source, an unknown kid is simply refused.
    let fixed = std::sync::Arc::new(
        Verifier::builder()
            .trust_issuer(f.s.issuer(), &stale)
            .build(),
    );
    assert!(matches!(
        f.call(&fixed, &f.credential, order(1.0, "Acme")).await,
        Err(Rejection::UnknownKey(_))
    ));
    f.s.stop().await;
}
