#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! Interoperability with software nobody at Countersign wrote: panva's `openid-client`
//! (Node) completes the CIBA poll flow with client_secret_basic and with private_key_jwt +
//! DPoP, and `jose` verifies the ID token and access token with the published JWKS.
//!
//! Needs `node` and the packages in tests/interop/openid-client (`npm ci` there; `.ci/run`
//! does it). Missing tools fail the test rather than skip it.

use std::path::PathBuf;
use std::process::Stdio;

use countersign_jose::b64url_encode;
use countersign_tests::{Db, TestServer, both_backends};
use serde_json::Value;

both_backends!(openid_client_completes_poll_flow_with_basic_and_private_key_jwt_dpop);

fn script_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop/openid-client")
}

async fn run_node(env: &[(&str, String)]) -> Value {
    let dir = script_dir();
    assert!(
        dir.join("node_modules/openid-client").exists(),
        "run `npm ci` in {} first (.ci/run does)",
        dir.display()
    );
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg("ciba.mjs")
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), cmd.output())
        .await
        .expect("node finished in time")
        .expect("node runs");
    assert!(
        out.status.success(),
        "openid-client flow failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("script prints JSON")
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
        out["token_type"], "bearer",
        "openid-client lower-cases token_type"
    );
    assert_eq!(out["claims"]["sub"], "alice");
    assert_eq!(out["id_token_verified"]["aud"], "node-basic");
    assert_eq!(out["id_token_verified"]["email"], "alice@example.com");
    assert_eq!(out["authorization_details"][0]["amount"], 1200);
    assert!(out["access_token_verified"].get("cnf").is_none());

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
