#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! Rotating the signing key never breaks a credential that is still valid: a retired key
//! stays in the published JWKS for as long as anything it signed can be valid — here a
//! credential whose policy gave it a day (`@validity("P1D")`), not just the default
//! fifteen-minute token lifetime.

use countersign_server::oidc::keys::KeyRing;
use countersign_tests::{Db, TestServer, both_backends, jwt_claims, resource_proof};
use countersign_verifier::status::{HttpKeySource, HttpStatusSource};
use countersign_verifier::{Presentation, Verifier};
use serde_json::json;

both_backends!(rotation_keeps_a_24_hour_credential_verifiable);

const TOOL: &str = "https://tools.example.com/orders";
const ORDER: &str = r#"[{"type":"purchase_order","vendor":"Acme","amount":1200,"currency":"USD"}]"#;

async fn rotation_keeps_a_24_hour_credential_verifiable(db: Db) {
    let mut s = TestServer::start(db).await;
    s.human("alice").await;
    s.install_policy(
        r#"@id("day-long") @step_up @validity("P1D") @max_uses("unlimited")
permit (principal, action, resource);"#,
    )
    .await;
    let agent = s.agent("procurement", "alice", "private_key_jwt").await;
    let tokens = s
        .approved_tokens(&agent, "alice", &[("authorization_details", ORDER)], None)
        .await;
    let credential = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(tokens["expires_in"], 86_400);
    let old_kid = countersign_jose::UnverifiedJws::parse(&credential)
        .unwrap()
        .header
        .kid
        .clone()
        .unwrap();
    let issued_jwks = s.jwks().await;

    // The key is rotated; 23 hours later the server restarts (and re-reads its keys).
    let keys_dir = s.state().config.keys_dir.clone();
    KeyRing::rotate(&keys_dir, s.now_s() * 1000).unwrap();
    s.clock.advance_ms(23 * 3600 * 1000);
    s.restart().await;
    let published = s.jwks().await;
    let kids: Vec<String> = published
        .keys
        .iter()
        .filter_map(|k| k.kid.clone())
        .collect();
    assert!(
        kids.contains(&old_kid),
        "the retired key is still published: {kids:?}"
    );
    assert_eq!(kids.len(), 2, "{kids:?}");
    // New credentials are signed by the new key.
    let fresh = s
        .approved_tokens(&agent, "alice", &[("authorization_details", ORDER)], None)
        .await;
    let new_kid = countersign_jose::UnverifiedJws::parse(fresh["access_token"].as_str().unwrap())
        .unwrap()
        .header
        .kid
        .clone()
        .unwrap();
    assert_ne!(new_kid, old_kid);

    // A tool that learnt the issuer's keys before the rotation, and one that fetches
    // them now, both accept the day-long credential 23 hours in.
    let now = s.now_s();
    let issuer = s.issuer();
    let dpop = countersign_jose::SigningKeyPair::from_scalar(
        agent.dpop.kid().to_owned(),
        &agent.dpop.scalar_bytes(),
    )
    .unwrap();
    let cred = credential.clone();
    let results = tokio::task::spawn_blocking(move || {
        let verify = |v: Verifier| {
            let proof = resource_proof(&dpop, "POST", TOOL, &cred, now);
            let args = json!({"vendor": "Acme", "amount": 1200, "currency": "USD"});
            v.verify_at(
                &Presentation {
                    token: &cred,
                    dpop_proof: Some(&proof),
                    method: "POST",
                    url: TOOL,
                    action: Some("purchase_order"),
                    arguments: Some(&args),
                },
                now,
            )
        };
        // It learns the key the status lists are now signed with from the issuer's
        // JWKS when it first meets one (a KeySource), as a deployed tool would.
        let before = Verifier::builder()
            .trust_issuer(issuer.clone(), &issued_jwks)
            .key_source(HttpKeySource::default())
            .status_source(HttpStatusSource::default())
            .build();
        let after = Verifier::builder()
            .trust_issuer(
                issuer.clone(),
                &countersign_verifier::KeySource::fetch(&HttpKeySource::default(), &issuer)
                    .unwrap(),
            )
            .status_source(HttpStatusSource::default())
            .build();
        (verify(before), verify(after))
    })
    .await
    .unwrap();
    assert!(results.0.is_ok(), "{:?}", results.0);
    assert!(results.1.is_ok(), "{:?}", results.1);
    assert!(jwt_claims(&credential)["exp"].as_i64().unwrap() > now);

    // Past the longest validity (policy.max_validity_secs) the retired key is withdrawn.
    s.clock.advance_ms(2 * 3600 * 1000);
    s.restart().await;
    let kids: Vec<String> = s
        .jwks()
        .await
        .keys
        .iter()
        .filter_map(|k| k.kid.clone())
        .collect();
    assert_eq!(kids, [new_kid]);
    s.stop().await;
}
