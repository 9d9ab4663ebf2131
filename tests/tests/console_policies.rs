#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! The console's policy pages over real HTTP: a version's page shows what it changed
//! against the one before, and declarative test cases run in place against the draft.

use countersign_server::admin::Role;
use countersign_tests::console::{get, post, sign_in};
use countersign_tests::{Db, TestServer, both_backends};
use reqwest::StatusCode;

both_backends!(
    a_versions_page_shows_what_it_changed,
    test_cases_run_against_the_draft_in_place,
);

const FIRST: &str = r#"@id("orders") @step_up @reason("orders need their owner")
permit (principal, action == Action::"purchase_order", resource);"#;

const SECOND: &str = r#"@id("orders") @step_up @reason("orders need their owner")
permit (principal, action == Action::"purchase_order", resource)
when { context.totals.amount >= 400 };
@id("small") permit (principal, action == Action::"purchase_order", resource)
when { context.totals.amount < 400 };"#;

/// The text of the lines of `page`'s diff marked `class` (`added`, `removed`, `kept`).
fn diff_lines(page: &str, class: &str) -> Vec<String> {
    page.split(&format!("<span class=\"{class}\">"))
        .skip(1)
        .filter_map(|rest| rest.split("</span>").next())
        .map(|line| line.trim_end().to_owned())
        .collect()
}

async fn a_versions_page_shows_what_it_changed(db: Db) {
    let s = TestServer::start(db).await;
    let first = s.install_policy(FIRST).await;
    let second = s.install_policy(SECOND).await;
    let viewer = sign_in(&s, Role::Viewer).await;

    let list = get(&s, &viewer, "/console/policies")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        list.contains(&format!("href=\"/console/policies/{second}\"")),
        "{list}"
    );

    let page = get(&s, &viewer, &format!("/console/policies/{second}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("Changes since version {first}")),
        "{page}"
    );
    assert!(page.contains("4 lines added, 1 removed."), "{page}");
    let removed = diff_lines(&page, "removed");
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert!(removed[0].starts_with("- permit") && removed[0].ends_with("resource);"));
    let added = diff_lines(&page, "added");
    assert_eq!(added.len(), 4, "{added:?}");
    assert!(
        added
            .iter()
            .any(|l| l.contains("@id(&#34;small&#34;)") || l.contains("@id(&quot;small&quot;)")),
        "{added:?}"
    );
    // The unchanged first line is shown as kept.
    assert_eq!(diff_lines(&page, "kept").len(), 1);
    // A viewer sees no activation form; the first version is compared with nothing.
    assert!(!page.contains("/activate"), "{page}");
    let page = get(&s, &viewer, &format!("/console/policies/{first}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("The first version"), "{page}");
    assert_eq!(
        get(&s, &viewer, "/console/policies/999").await.status(),
        StatusCode::NOT_FOUND
    );
    s.stop().await;
}

const CASES: &str = r#"
[humans.alice]
[agents.procurement]
owner = "alice"

[[cases]]
name = "a small order passes"
agent = "procurement"
details = { type = "purchase_order", vendor = "Acme", amount = 120, currency = "USD" }
expect = "allow"

[[cases]]
name = "a large order is wrongly expected to pass"
agent = "procurement"
details = { type = "purchase_order", vendor = "Acme", amount = 1200, currency = "USD" }
expect = "allow"
"#;

async fn test_cases_run_against_the_draft_in_place(db: Db) {
    let s = TestServer::start(db).await;
    // Running cases changes nothing: a viewer may, and no version is saved.
    let viewer = sign_in(&s, Role::Viewer).await;
    let run = |source: &'static str, cases: &'static str| {
        let (s, viewer) = (&s, &viewer);
        async move {
            let resp = post(
                s,
                viewer,
                "/console/policies",
                &[("source", source), ("cases", cases), ("action", "test")],
            )
            .await;
            assert_eq!(resp.status(), StatusCode::OK);
            resp.text().await.unwrap()
        }
    };
    let page = run(SECOND, CASES).await;
    assert!(page.contains("1 of 2 case(s) passed."), "{page}");
    let results = page
        .split("id=\"tested\"")
        .nth(1)
        .expect("a results section");
    let failed_row = results
        .split("<tr>")
        .find(|row| row.contains("wrongly expected"))
        .expect("the failing case is listed");
    assert!(
        failed_row.contains("failed") && failed_row.contains("step_up"),
        "{failed_row}"
    );
    // The same cases against the first draft: both orders step up, both cases fail.
    let page = run(FIRST, CASES).await;
    assert!(page.contains("0 of 2 case(s) passed."), "{page}");
    // Broken cases, a broken draft and no cases at all get a sentence, not a 500.
    assert!(
        run(SECOND, "[[cases]]\nname = 3")
            .await
            .contains("the test cases are not valid")
    );
    assert!(
        run("permit (", CASES)
            .await
            .contains("the draft has errors")
    );
    assert!(run(SECOND, "  ").await.contains("write test cases first"));
    assert!(
        s.state()
            .store
            .list_policy_versions()
            .await
            .unwrap()
            .is_empty()
    );
    s.stop().await;
}
