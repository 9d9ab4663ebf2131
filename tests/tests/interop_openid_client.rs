#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! Interoperability with software nobody at Countersign wrote: panva's `openid-client`
//! (Node) completes the CIBA poll flow with client_secret_basic and with private_key_jwt,
//! both with DPoP (required unless the agent is registered bearer-only, which is tried
//! too), and `jose` verifies the ID token and access token with the published JWKS.
//!
//! `@sd-jwt/jwt-status-list` decodes our published Token Status Lists.
//!
//! Needs `node` and the packages in tests/interop/openid-client (`npm ci` there; `.ci/run`
//! does it). Missing tools fail the test rather than skip it.

use countersign_jose::b64url_encode;
use countersign_tests::{Db, TestServer, both_backends};
use serde_json::Value;

both_backends!(
    openid_client_completes_poll_flow_with_basic_and_private_key_jwt_dpop,
    sd_jwt_status_list_decodes_published_lists_and_finds_revocations
);

async fn run_node(env: &[(&str, String)]) -> Value {
    run_script("ciba.mjs", env).await
}

async fn run_script(script: &str, env: &[(&str, String)]) -> Value {
    countersign_tests::node::run_json("openid-client", script, env).await
}

async fn openid_client_completes_poll_flow_with_basic_and_private_key_jwt_dpop(db: Db) {
    // The Node client runs on real time, so this server does too.
    let s = TestServer::start_with(db, |_| {}).await;
    s.clock.follow_system_time();
    s.human("alice").await;

    let basic = s.agent("node-basic", "alice", "client_secret_basic").await;
    let out = run_node(&[
        ("ISSUER", s.issuer()),
        ("CLIENT_ID", basic.client_id.clone()),
        ("CLIENT_SECRET", basic.secret.clone().unwrap()),
    ])
    .await;
    assert_eq!(
        out["token_type"], "dpop",
        "openid-client lower-cases token_type"
    );
    assert_eq!(out["claims"]["sub"], "alice");
    assert_eq!(out["id_token_verified"]["aud"], "node-basic");
    assert_eq!(out["id_token_verified"]["email"], "alice@example.com");
    assert_eq!(out["authorization_details"][0]["amount"], 1200);
    assert!(out["access_token_verified"]["cnf"]["jkt"].is_string());

    let bearer = s
        .agent_with(
            countersign_server::directory::NewAgent {
                bearer_only: true,
                ..countersign_tests::new_agent("node-bearer", "alice", "client_secret_basic")
            },
            false,
        )
        .await;
    let out = run_node(&[
        ("ISSUER", s.issuer()),
        ("CLIENT_ID", bearer.client_id.clone()),
        ("CLIENT_SECRET", bearer.secret.clone().unwrap()),
        ("BEARER", "1".into()),
    ])
    .await;
    assert_eq!(out["token_type"], "bearer");
    assert!(out["access_token_verified"].get("cnf").is_none());
    assert_eq!(
        out["access_token_verified"]["credentialSubject"]["binding"],
        "bearer"
    );

    let jwt = s.agent("node-jwt", "alice", "private_key_jwt").await;
    let key = jwt.key.as_ref().unwrap();
    let mut private = serde_json::to_value(key.public_jwk()).unwrap();
    private["d"] = Value::String(b64url_encode(key.scalar_bytes()));
    let out = run_node(&[
        ("ISSUER", s.issuer()),
        ("CLIENT_ID", jwt.client_id.clone()),
        ("PRIVATE_JWK", private.to_string()),
    ])
    .await;
    assert_eq!(out["token_type"], "dpop");
    assert_eq!(out["claims"]["sub"], "alice");
    assert!(
        out["access_token_verified"]["cnf"]["jkt"].is_string(),
        "{out}"
    );
    s.stop().await;
}

/// `@sd-jwt/jwt-status-list` (Node) reads each credential's status reference, fetches the
/// published list (verified with jose against our JWKS) and finds the revoked entry set
/// and the live one clear.
async fn sd_jwt_status_list_decodes_published_lists_and_finds_revocations(db: Db) {
    let s = TestServer::start_with(db, |_| {}).await;
    s.clock.follow_system_time();
    s.human("alice").await;
    let agent = s.agent("agent", "alice", "client_secret_basic").await;
    let mut credentials = Vec::new();
    for _ in 0..3 {
        let id = s.start_request(&agent, "alice").await;
        s.dev_decide(&id, true).await;
        let (_, tokens) = s.poll(&agent, &id).await;
        credentials.push(tokens["access_token"].as_str().unwrap().to_owned());
    }
    let (status, _) = s
        .post_as(&agent, "/revoke", &[("token", &credentials[1])])
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    let out = run_script(
        "status.mjs",
        &[
            ("ISSUER", s.issuer()),
            ("CREDENTIALS", serde_json::to_string(&credentials).unwrap()),
        ],
    )
    .await;
    let statuses: Vec<i64> = out
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, vec![0, 1, 0], "{out}");
    let indexes: Vec<u64> = out
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["idx"].as_u64().unwrap())
        .collect();
    assert!(indexes[0] != indexes[1] && indexes[1] != indexes[2] && indexes[0] != indexes[2]);
    s.stop().await;
}
