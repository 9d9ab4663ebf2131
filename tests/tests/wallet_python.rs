#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! wallet-core through its generated Python bindings (uniffi library mode, generated in
//! this run from the built `cdylib`) against the real server, and the committed Kotlin
//! and Swift bindings checked against the code.

use countersign_tests::{Db, TestServer, jwt_claims};
use reqwest::StatusCode;
use serde_json::Value;

#[test]
fn committed_kotlin_and_swift_bindings_match_the_code() {
    let library = countersign_bindgen::built_library().unwrap();
    let drifted = countersign_bindgen::drift(&library).unwrap();
    assert!(
        drifted.is_empty(),
        "wallet-core/bindings/ is out of date (run `cargo build -p countersign-wallet-core && cargo run -p countersign-bindgen`):\n{}",
        drifted.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_wallet_enrolls_shows_approves_and_denies() {
    let library = countersign_bindgen::built_library().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bindings = dir.path().join("bindings");
    countersign_bindgen::generate(&library, countersign_bindgen::Language::Python, &bindings)
        .unwrap();
    std::fs::copy(
        &library,
        bindings.join(countersign_bindgen::library_file_name()),
    )
    .unwrap();

    let s = TestServer::start(Db::Sqlite).await;
    s.human("alice").await;
    let agent = s.agent("procurement", "alice", "client_secret_basic").await;
    let order = r#"[{"type":"purchase_order","vendor":"Acme","amount":1200,"currency":"USD"}]"#;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, body) = s
            .bc_authorize(
                &agent,
                &[
                    ("scope", "openid"),
                    ("login_hint", "alice"),
                    ("binding_message", "W4SCT"),
                    ("authorization_details", order),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        ids.push(body["auth_req_id"].as_str().unwrap().to_owned());
    }
    let uri = s.invitation("alice").await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/interop/wallet-python/wallet_flow.py"
    );
    let state = dir.path().join("wallet.json");
    let output = tokio::process::Command::new("python3")
        .arg(script)
        .arg(&state)
        .arg(&uri)
        .arg(&ids[0])
        .arg(&ids[1])
        .env("PYTHONPATH", &bindings)
        .output()
        .await
        .expect("python3 must be installed");
    assert!(
        output.status.success(),
        "python wallet failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["subject"], "alice");
    assert_eq!(seen["agent_id"], "procurement");
    assert_eq!(seen["agent_owner"], "alice");
    assert_eq!(seen["action"], "purchase_order");
    assert_eq!(seen["authorization_details"][0]["amount"], 1200);
    assert_eq!(seen["binding_message"], "W4SCT");
    assert_eq!(
        (seen["approved"].as_str(), seen["denied"].as_str()),
        (Some("approved"), Some("denied"))
    );
    assert!(
        seen["unshown"]
            .as_str()
            .unwrap()
            .contains("has not been shown"),
        "{seen}"
    );
    assert_eq!(seen["unknown_status"], 404);
    assert_eq!(seen["pending_after"], serde_json::json!([]));

    s.clock.advance_ms(1_000);
    let (status, tokens) = s.poll(&agent, &ids[0]).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let credential = jwt_claims(tokens["access_token"].as_str().unwrap());
    let approval = jwt_claims(credential["evidence"][0]["approval"].as_str().unwrap());
    assert_eq!(approval["transaction_hash"], seen["transaction_hash"]);
    let (_, denied) = s.poll(&agent, &ids[1]).await;
    assert_eq!(denied["error"], "access_denied");
    // The denial's reason travelled signed and is in the trail.
    let events = s
        .state()
        .store
        .recent_audit_events(Some(&ids[1]), 20)
        .await
        .unwrap();
    let denial = events
        .iter()
        .find(|e| e.kind == "request.denied")
        .expect("the denial is traced");
    let detail: Value = serde_json::from_str(&denial.detail).unwrap();
    assert_eq!(detail["reason"], "not an order I placed");
    s.stop().await;
}
