#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! The poll-mode flow end to end over a real listener, on SQLite and PostgreSQL: request,
//! pending, developer approval, tokens (Bearer and DPoP-bound), ID token validation against
//! the published JWKS, introspection and revocation, exactly-once issuance, restart.

use countersign_jose::{JwkSet, SigningKeyPair, UnverifiedJws, sha256_half_b64url, thumbprint};
use countersign_tests::{Db, TestServer, both_backends, jwt_claims};
use reqwest::StatusCode;
use serde_json::Value;

both_backends!(
    poll_flow_issues_verifiable_tokens,
    dpop_binds_the_token,
    exactly_once_under_50_concurrent_polls,
    restart_between_request_and_approval_loses_nothing
);

async fn poll_flow_issues_verifiable_tokens(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    // Registered bearer-only: its token requests need no DPoP proof, and its credentials
    // say they are unbound (DPoP-bound credentials: tests/verifier.rs).
    let agent = s
        .agent_with(
            countersign_server::directory::NewAgent {
                bearer_only: true,
                ..countersign_tests::new_agent("procurement", "alice", "client_secret_basic")
            },
            false,
        )
        .await;
    let details = r#"[{"type":"purchase_order","vendor":"Acme","amount":1200,"currency":"USD"}]"#;
    let (status, body) = s
        .bc_authorize(
            &agent,
            &[
                ("scope", "openid profile email"),
                ("login_hint", "alice@example.com"),
                ("binding_message", "Order W4SCT"),
                ("authorization_details", details),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["auth_req_id"].as_str().unwrap();
    assert!(
        countersign_jose::b64url_decode(id).unwrap().len() >= 16,
        "auth_req_id must carry >= 128 bits"
    );
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["interval"], 1);

    let (status, body) = s.poll(&agent, id).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("authorization_pending"))
    );
    assert_eq!(s.dev_decide(id, true).await, StatusCode::NO_CONTENT);
    assert_eq!(
        s.dev_decide(id, true).await,
        StatusCode::CONFLICT,
        "a decision is final"
    );
    s.clock.advance_ms(1_000);

    let resp = s
        .http
        .post(s.url("/token"))
        .basic_auth(&agent.client_id, agent.secret.as_deref())
        .form(&[
            ("grant_type", countersign_tests::CIBA_GRANT),
            ("auth_req_id", id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let tokens: Value = resp.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["authorization_details"][0]["vendor"], "Acme");

    // The ID token verifies against the published JWKS and names the human.
    let jwks: JwkSet = s.jwks().await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let claims: Value = UnverifiedJws::parse(id_token)
        .unwrap()
        .verify_with_set(&jwks)
        .unwrap();
    assert_eq!(claims["iss"], s.issuer());
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], "procurement");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["name"], "ALICE");
    assert_eq!(
        claims["amr"],
        serde_json::json!(["dev"]),
        "developer approvals must say so"
    );
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(claims["at_hash"], sha256_half_b64url(access));
    let at: Value = UnverifiedJws::parse(access)
        .unwrap()
        .verify_with_set(&jwks)
        .unwrap();
    assert_eq!(
        at["credentialSubject"]["authorization_details"][0]["amount"],
        1200
    );

    // A tool verifies the same token offline with the verifier crate. A Bearer
    // credential needs no proof, but only a verifier configured to accept unbound
    // credentials takes it; revocation checks are covered in tests/verifier.rs, so status
    // is not consulted here.
    let strict = countersign_verifier::Verifier::builder()
        .trust_issuer(s.issuer(), &jwks)
        .fail_open_when_status_unavailable()
        .build();
    let verifier = countersign_verifier::Verifier::builder()
        .trust_issuer(s.issuer(), &jwks)
        .fail_open_when_status_unavailable()
        .require_proof_of_possession(false)
        .build();
    let call = |verifier: &countersign_verifier::Verifier, now| {
        verifier.verify_at(
            &countersign_verifier::Presentation {
                token: access,
                dpop_proof: None,
                method: "POST",
                url: "https://tools.example.com/orders",
                action: Some("purchase_order"),
                arguments: Some(
                    &serde_json::json!({"vendor": "Acme", "amount": 1200, "currency": "USD"}),
                ),
            },
            now,
        )
    };
    assert_eq!(
        call(&strict, s.now_s()),
        Err(countersign_verifier::Rejection::NotKeyBound)
    );
    let verdict = call(&verifier, s.now_s()).unwrap();
    assert_eq!(
        (
            verdict.approver.as_deref().unwrap_or_default(),
            verdict.agent.as_str()
        ),
        ("alice", "procurement")
    );
    assert_eq!(verdict.agent_key, None);
    assert!(matches!(
        call(&verifier, s.now_s() + 900 + 31),
        Err(countersign_verifier::Rejection::Expired { .. })
    ));

    // Exactly once: the next poll is refused.
    let (status, body) = s.poll(&agent, id).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    // Introspection by the owning client, then revocation.
    let (status, intro) = s.post_as(&agent, "/introspect", &[("token", access)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(intro["active"], true);
    assert_eq!(intro["sub"], "alice");
    assert_eq!(intro["authorization_details"][0]["vendor"], "Acme");
    let other = s.agent("other", "alice", "client_secret_post").await;
    let (_, intro) = s.post_as(&other, "/introspect", &[("token", access)]).await;
    assert_eq!(
        intro,
        serde_json::json!({"active": false}),
        "other clients learn nothing"
    );
    let (status, _) = s.post_as(&other, "/revoke", &[("token", access)]).await;
    assert_eq!(status, StatusCode::OK);
    let (_, intro) = s.post_as(&agent, "/introspect", &[("token", access)]).await;
    assert_eq!(intro["active"], true, "another client cannot revoke it");
    let (status, _) = s.post_as(&agent, "/revoke", &[("token", access)]).await;
    assert_eq!(status, StatusCode::OK);
    let (_, intro) = s.post_as(&agent, "/introspect", &[("token", access)]).await;
    assert_eq!(intro, serde_json::json!({"active": false}));
    let (status, _) = s
        .post_as(&agent, "/revoke", &[("token", "not-a-token")])
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "RFC 7009: unknown tokens are not an error"
    );

    // The ID token works as id_token_hint for the next request.
    let (status, body) = s
        .bc_authorize(&agent, &[("scope", "openid"), ("id_token_hint", id_token)])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    s.stop().await;
}

async fn dpop_binds_the_token(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    let agent = s.agent("a", "alice", "private_key_jwt").await;
    let id = s.start_request(&agent, "alice").await;
    s.dev_decide(&id, true).await;
    let dpop_key = SigningKeyPair::generate();
    let token_url = s.url("/token");
    let params = [
        ("grant_type", countersign_tests::CIBA_GRANT),
        ("auth_req_id", id.as_str()),
    ];

    // Bad proofs first: each refused with invalid_dpop_proof, none consumes the grant.
    let wrong_htu = s.dpop_proof(&dpop_key, "http://elsewhere.example/token", "j0");
    let (status, body) = s
        .post_as_with(&agent, "/token", &params, Some(wrong_htu))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_dpop_proof")),
        "{body}"
    );
    let none = countersign_tests::unsigned_jwt(
        serde_json::json!({"alg": "none", "typ": "dpop+jwt", "jwk": dpop_key.public_jwk()}),
        serde_json::json!({"jti": "j1", "htm": "POST", "htu": token_url, "iat": s.now_s()}),
    );
    let (_, body) = s.post_as_with(&agent, "/token", &params, Some(none)).await;
    assert_eq!(body["error"], "invalid_dpop_proof");

    let proof = s.dpop_proof(&dpop_key, &token_url, "j2");
    let (status, tokens) = s
        .post_as_with(&agent, "/token", &params, Some(proof.clone()))
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "DPoP");
    let at = jwt_claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(
        at["cnf"]["jkt"],
        thumbprint(&dpop_key.public_jwk()).unwrap()
    );
    // Replaying the same proof is refused even for another request.
    let id2 = s.start_request(&agent, "alice").await;
    s.dev_decide(&id2, true).await;
    let params2 = [
        ("grant_type", countersign_tests::CIBA_GRANT),
        ("auth_req_id", id2.as_str()),
    ];
    let (_, body) = s
        .post_as_with(&agent, "/token", &params2, Some(proof))
        .await;
    assert_eq!(body["error"], "invalid_dpop_proof");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("replay"),
        "{body}"
    );
    s.stop().await;
}

async fn exactly_once_under_50_concurrent_polls(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    let agent = s.agent("a", "alice", "client_secret_basic").await;
    let id = s.start_request(&agent, "alice").await;
    s.dev_decide(&id, true).await;
    let polls = (0..50).map(|_| s.poll(&agent, &id));
    let results = futures_util::future::join_all(polls).await;
    let ok: Vec<_> = results
        .iter()
        .filter(|(st, _)| *st == StatusCode::OK)
        .collect();
    assert_eq!(ok.len(), 1, "exactly one poll gets tokens: {results:?}");
    for (status, body) in results.iter().filter(|(st, _)| *st != StatusCode::OK) {
        assert_eq!(*status, StatusCode::BAD_REQUEST);
        let code = body["error"].as_str().unwrap();
        assert!(code == "slow_down" || code == "invalid_grant", "{body}");
    }
    s.clock.advance_ms(3_600_000);
    let (_, body) = s.poll(&agent, &id).await;
    assert_eq!(body["error"], "invalid_grant");
    s.stop().await;
}

async fn restart_between_request_and_approval_loses_nothing(db: Db) {
    let mut s = TestServer::start(db).await;
    s.human("alice").await;
    let agent = s.agent("a", "alice", "client_secret_basic").await;
    let id = s.start_request(&agent, "alice").await;
    let kid_before = s.state().keys.active().kid().to_owned();
    s.restart().await;
    assert_eq!(
        s.state().keys.active().kid(),
        kid_before,
        "keys survive a restart"
    );
    let (_, body) = s.poll(&agent, &id).await;
    assert_eq!(body["error"], "authorization_pending");
    assert_eq!(s.dev_decide(&id, true).await, StatusCode::NO_CONTENT);
    s.restart().await;
    s.clock.advance_ms(1_000);
    let (status, body) = s.poll(&agent, &id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    s.stop().await;
}
