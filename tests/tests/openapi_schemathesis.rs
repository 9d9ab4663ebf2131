#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! `schemathesis` (an independent OpenAPI fuzzer) generates requests from the served
//! `/openapi.json` and checks every response against it: no 5xx, only documented status
//! codes and content types, bodies matching their schemas, schema-violating input refused.
//!
//! `positive_data_acceptance` is excluded: some schema-valid inputs are rightly refused
//! for what no schema can express (an agent's `owner` must be a registered human).
//! The seed is fixed so CI is repeatable; change it locally to explore further.
//!
//! Needs `schemathesis` (`CS_SCHEMATHESIS`, else on PATH); `scripts/test.sh` installs it.

use countersign_tests::{Db, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_api_conforms_to_its_openapi_document() {
    let s = TestServer::start(Db::Sqlite).await;
    s.clock.follow_system_time();
    s.human("alice").await;
    let key = countersign_server::admin::create_key(&s.state().store, "schemathesis", 0)
        .await
        .unwrap();
    let program = std::env::var("CS_SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".into());
    let out = tokio::process::Command::new(&program)
        .args(["run", &s.url("/openapi.json")])
        .args([
            "-H",
            &format!("Authorization: Bearer {}", key.secret.expose()),
        ])
        .args([
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
        ])
        .args(["--max-examples", "40", "--seed", "20261122", "--no-color"])
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {program} (scripts/test.sh installs it): {e}"));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.contains("Tested: 12"),
        "every operation must be exercised:\n{report}"
    );
    s.stop().await;
}
