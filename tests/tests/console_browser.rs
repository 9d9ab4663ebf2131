#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! The console in a real browser (headless Chromium through Playwright,
//! tests/browser/console.py) against a real server, on SQLite and PostgreSQL: sign-in
//! with a one-time link, axe-core on every page, the CSP, a step-up appearing live, the
//! kill switch and offboarding. The SQLite run saves the screenshots in docs/console/.

use std::process::Command;

use countersign_server::admin::{Role, sign_in_links};
use countersign_tests::ghost::{tool_call, tool_verifier};
use countersign_tests::{Db, TestServer, both_backends};
use countersign_verifier::Rejection;

both_backends!(an_admin_runs_the_console_in_a_browser);

const ORDER: &str = r#"[{"type":"purchase_order","vendor":"Acme","amount":120,"currency":"USD"}]"#;

async fn an_admin_runs_the_console_in_a_browser(db: Db) {
    // On `localhost`, not an IP address: the passkey sign-in needs a domain for WebAuthn.
    let s = TestServer::start_on_localhost(db).await;
    s.human("alice").await;
    s.human("bob").await;
    let procurement = s.agent("procurement", "alice", "client_secret_basic").await;
    let buyer = s.agent("buyer", "bob", "client_secret_basic").await;
    let watcher = s.agent("watcher", "alice", "client_secret_basic").await;
    let held = s
        .approved_tokens(
            &procurement,
            "alice",
            &[("authorization_details", ORDER)],
            None,
        )
        .await;
    let bobs = s
        .approved_tokens(&buyer, "bob", &[("authorization_details", ORDER)], None)
        .await;
    let jti = |tokens: &serde_json::Value| {
        countersign_tests::jwt_claims(tokens["access_token"].as_str().unwrap())["jti"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let link = sign_in_links::create(&s.state().store, Role::Admin, "cli", s.now_s() * 1000)
        .await
        .unwrap();
    let base = s.issuer();
    let url = format!("{base}/console/sign-in?token={}", link.token.expose());
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut cmd = Command::new(countersign_tests::tools::python());
    cmd.arg(format!("{root}/tests/browser/console.py"));
    if matches!(db, Db::Sqlite) {
        cmd.args(["--shots", &format!("{root}/docs/console")]);
    }
    // A generated secret may begin with '-', which argparse would take for an option
    // (seen once in a full suite): everything after "--" is positional.
    cmd.arg("--")
        .args([&base, &url, &watcher.client_id])
        .arg(watcher.secret.as_deref().unwrap());
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} (scripts/test.sh installs Playwright): {e}",
                countersign_tests::tools::python()
            )
        });
    assert!(
        out.status.success(),
        "the browser run failed against {base}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // What the browser did happened: the tool's verifier now refuses the suspended agent's
    // credential as revoked (once its status list cache is older than its TTL), the
    // offboarded human's agent's credential is revoked too.
    let verifier = tool_verifier(&s).await;
    let refused = tool_call(
        &verifier,
        held["access_token"].as_str().unwrap(),
        &procurement.dpop,
        s.now_s() + 2,
    )
    .await;
    assert_eq!(refused.unwrap_err(), Rejection::Revoked);
    let store = &s.state().store;
    for id in [jti(&held), jti(&bobs)] {
        let token = store.token(&id).await.unwrap().unwrap();
        assert!(token.revoked_at.is_some(), "{id} is still live");
    }
    assert!(!store.client("procurement").await.unwrap().unwrap().enabled);
    assert!(!store.human("bob").await.unwrap().unwrap().active);
    s.stop().await;
}
