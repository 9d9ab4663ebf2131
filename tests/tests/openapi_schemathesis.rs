#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! `schemathesis` (an independent OpenAPI fuzzer) generates requests from the served
//! `/openapi.json` and checks every response against it: no 5xx, only documented status
//! codes and content types, bodies matching their schemas, schema-violating input refused.
//! It runs twice: the protocol endpoints as a registered client (Basic credentials), and
//! the admin, developer and operations APIs with an admin key.
//!
//! `positive_data_acceptance` is excluded: some schema-valid inputs are rightly refused
//! for what no schema can express (an agent's `owner` must be a registered human).
//! The seed is fixed so CI is repeatable; set `CS_SCHEMATHESIS_SEED` to explore further.
//!
//! Needs `schemathesis` (`CS_SCHEMATHESIS`, else on PATH); `scripts/test.sh` installs it.

use countersign_tests::{Db, TestServer};

/// Schemathesis cannot generate `application/secevent+jwt` bodies, so the SET receiver
/// is left out; tests/tests/signals.rs covers its bad input.
const SIGNALS: &str = "/ssf/events";
/// SCIM has its own compliance checker (scim2-tester, tests/tests/scim.rs), which knows
/// the resource schemas that the OpenAPI document only names.
const SCIM_TAG: &str = "scim";

/// The fixed seed, or `CS_SCHEMATHESIS_SEED` to explore.
fn seed() -> String {
    std::env::var("CS_SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261122".into())
}

async fn schemathesis(s: &TestServer, auth: &[&str], filter: &[&str]) -> String {
    let program = std::env::var("CS_SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".into());
    let out = tokio::process::Command::new(&program)
        .args(["run", &s.url("/openapi.json")])
        .args(auth)
        .args(filter)
        .args([
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
        ])
        .args(["--max-examples", "40", "--seed", &seed(), "--no-color"])
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {program} (scripts/test.sh installs it): {e}"));
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "schemathesis {filter:?} found problems:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_api_conforms_to_its_openapi_document() {
    // With the MCP gateway enabled (its upstream a stdio child), so /mcp is served.
    let s = TestServer::start_with(Db::Sqlite, countersign_tests::mcp::configure_stdio).await;
    s.clock.follow_system_time();
    s.human("alice").await;
    let agent = s.agent("fuzzer", "alice", "client_secret_basic").await;
    let basic = format!("fuzzer:{}", agent.secret.clone().unwrap());
    // How many operations each run must exercise, from the document itself.
    let doc: serde_json::Value = s.get_json("/openapi.json").await;
    let (mut oauth, mut other) = (0, 0);
    for (path, item) in doc["paths"].as_object().unwrap() {
        if path == SIGNALS {
            continue;
        }
        for op in item.as_object().unwrap().values() {
            if op["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == SCIM_TAG))
            {
                continue;
            }
            if op["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "oauth" || t == "authzen"))
            {
                oauth += 1;
            } else {
                other += 1;
            }
        }
    }
    // The protocol endpoints and the AuthZEN API, as a client authenticates to them.
    let report = schemathesis(
        &s,
        &["-a", &basic],
        &["--include-tag", "oauth", "--include-tag", "authzen"],
    )
    .await;
    assert!(
        report.contains(&format!("Tested: {oauth}")),
        "every protocol operation must be exercised:\n{report}"
    );

    let key = countersign_server::admin::create_key(
        &s.state().store,
        "schemathesis",
        countersign_server::admin::Scope::Admin,
        None,
        0,
        "test",
    )
    .await
    .unwrap();
    let bearer = format!("Authorization: Bearer {}", key.secret.expose());
    let report = schemathesis(
        &s,
        &["-H", &bearer],
        &[
            "--exclude-tag",
            "oauth",
            "--exclude-tag",
            "authzen",
            "--exclude-tag",
            SCIM_TAG,
            "--exclude-path",
            SIGNALS,
        ],
    )
    .await;
    assert!(
        report.contains(&format!("Tested: {other}")),
        "every other operation must be exercised:\n{report}"
    );
    s.stop().await;
}
