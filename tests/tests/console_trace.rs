#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! The console's decision trace, agents and humans over real HTTP: filters applied in the
//! database, an event's detail, "who approved", owner reassignment, a human's devices and
//! approvals, and CSV exports that a spreadsheet cannot run.

use countersign_server::admin::Role;
use countersign_tests::console::{get, post, sign_in};
use countersign_tests::{Db, TestServer, both_backends};
use reqwest::StatusCode;

both_backends!(
    the_trace_filters_by_outcome,
    an_events_detail_shows_its_policy_version_approver_and_credential,
    who_approved_finds_the_approval,
    reassigning_an_owner_changes_it_and_a_viewer_may_not,
    a_humans_detail_lists_their_device_and_the_credentials_they_approved,
    csv_export_neutralises_formulas,
);

/// What [`decisions`] leaves in the trail.
struct Decided {
    /// The step-up policy's version.
    version: i64,
    /// The credential issued after the approval.
    jti: String,
}

/// Alice's agent `procurement` under two policies: a purchase order steps up (approved in
/// developer mode, then a credential issued) and a huge one is denied.
async fn decisions(s: &TestServer) -> Decided {
    s.human("alice").await;
    let agent = s.agent("procurement", "alice", "client_secret_basic").await;
    let version = s
        .install_policy(
            r#"@id("orders") @step_up @reason("orders need their owner")
               permit (principal, action == Action::"purchase_order", resource);
               @id("no_huge") forbid (principal, action == Action::"purchase_order", resource)
               when { context.totals.amount >= 100000 };"#,
        )
        .await;
    let tokens = s
        .approved_tokens(
            &agent,
            "alice",
            &[(
                "authorization_details",
                r#"[{"type":"purchase_order","vendor":"Acme","amount":1200,"currency":"USD"}]"#,
            )],
            None,
        )
        .await;
    let jti = countersign_tests::jwt_claims(tokens["access_token"].as_str().unwrap())["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = s
        .bc_authorize(
            &agent,
            &[
                ("scope", "openid"),
                ("login_hint", "alice"),
                (
                    "authorization_details",
                    r#"[{"type":"purchase_order","vendor":"Acme","amount":500000,"currency":"USD"}]"#,
                ),
            ],
        )
        .await;
    assert_ne!(status, StatusCode::OK, "{body}");
    Decided { version, jti }
}

/// The sequence numbers of the events a trace page lists.
fn listed_events(page: &str) -> Vec<i64> {
    page.split("<a href=\"/console/trace/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next()?.parse().ok())
        .collect()
}

async fn kind_and_outcome(s: &TestServer, seq: i64) -> (String, String) {
    let e = s.state().store.audit_event(seq).await.unwrap().unwrap();
    let detail: serde_json::Value = serde_json::from_str(&e.detail).unwrap();
    let outcome = detail["outcome"].as_str().unwrap_or_default().to_owned();
    (e.kind, outcome)
}

async fn the_trace_filters_by_outcome(db: Db) {
    let s = TestServer::start(db).await;
    decisions(&s).await;
    let viewer = sign_in(&s, Role::Viewer).await;
    let page = |q: &'static str| {
        let (s, viewer) = (&s, &viewer);
        async move {
            let resp = get(s, viewer, &format!("/console/trace?{q}")).await;
            assert_eq!(resp.status(), StatusCode::OK, "{q}");
            listed_events(&resp.text().await.unwrap())
        }
    };
    let denied = page("outcome=deny").await;
    assert_eq!(denied.len(), 1, "one denial: {denied:?}");
    assert_eq!(
        kind_and_outcome(&s, denied[0]).await,
        ("decision.made".to_owned(), "deny".to_owned())
    );
    let stepped_up = page("outcome=step_up&agent=procurement").await;
    assert_eq!(stepped_up.len(), 1, "{stepped_up:?}");
    assert_eq!(kind_and_outcome(&s, stepped_up[0]).await.1, "step_up");
    let approved = page("outcome=approved&human=alice").await;
    assert_eq!(approved.len(), 1, "{approved:?}");
    assert_eq!(
        kind_and_outcome(&s, approved[0]).await.0,
        "request.approved"
    );
    // Other agents, other people and other days have none of them.
    assert!(page("outcome=deny&agent=someone-else").await.is_empty());
    assert!(page("outcome=deny&human=bob").await.is_empty());
    assert!(page("outcome=deny&to=2000-01-01").await.is_empty());
    assert!(page("outcome=deny&policy=orders").await.is_empty());
    assert_eq!(page("policy=no_huge").await, denied);
    // Not an outcome, not a date: refused, not ignored.
    for bad in ["outcome=maybe", "from=yesterday", "version=two"] {
        let resp = get(&s, &viewer, &format!("/console/trace?{bad}")).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    s.stop().await;
}

async fn an_events_detail_shows_its_policy_version_approver_and_credential(db: Db) {
    let s = TestServer::start(db).await;
    let decided = decisions(&s).await;
    let viewer = sign_in(&s, Role::Viewer).await;
    let filter = countersign_server::store::audit::trace::TraceFilter {
        outcome: "approved".into(),
        ..Default::default()
    };
    let approval = s
        .state()
        .store
        .page_trace(&filter, i64::MAX, 1)
        .await
        .unwrap()[0]
        .seq;
    let resp = get(&s, &viewer, &format!("/console/trace/{approval}")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let page = resp.text().await.unwrap();
    assert!(
        page.contains(&format!("orders v{}", decided.version)),
        "the policy and its version: {page}"
    );
    assert!(page.contains("developer-mode"), "the approver: {page}");
    assert!(
        page.contains(&format!("/console/credentials/{}", decided.jti)),
        "the credential issued: {page}"
    );
    assert!(
        page.contains("matches its content"),
        "its chain hash: {page}"
    );
    // The decision itself shows the facts it saw.
    let filter = countersign_server::store::audit::trace::TraceFilter {
        outcome: "step_up".into(),
        ..Default::default()
    };
    let decision = s
        .state()
        .store
        .page_trace(&filter, i64::MAX, 1)
        .await
        .unwrap()[0]
        .seq;
    let page = get(&s, &viewer, &format!("/console/trace/{decision}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("The facts the decision saw"), "{page}");
    assert!(
        page.contains("orders need their owner"),
        "its reason: {page}"
    );
    assert_eq!(
        get(&s, &viewer, "/console/trace/999999").await.status(),
        StatusCode::NOT_FOUND
    );
    s.stop().await;
}

async fn who_approved_finds_the_approval(db: Db) {
    let s = TestServer::start(db).await;
    let decided = decisions(&s).await;
    let viewer = sign_in(&s, Role::Viewer).await;
    let filter = countersign_server::store::audit::trace::TraceFilter {
        outcome: "step_up".into(),
        ..Default::default()
    };
    let decision = s
        .state()
        .store
        .page_trace(&filter, i64::MAX, 1)
        .await
        .unwrap()[0]
        .clone();
    let detail: serde_json::Value = serde_json::from_str(&decision.detail).unwrap();
    let resource = detail["resource"].as_str().unwrap();
    let url = format!(
        "/console/trace/approvals?agent=procurement&resource={}",
        form_urlencoded::byte_serialize(resource.as_bytes()).collect::<String>()
    );
    let page = get(&s, &viewer, &url).await.text().await.unwrap();
    assert!(page.contains("developer-mode"), "who: {page}");
    assert!(
        page.contains(&format!("orders v{}", decided.version)),
        "under which policy: {page}"
    );
    assert!(page.contains(&decided.jti), "the credential: {page}");
    assert!(
        page.contains(&format!("/console/trace/{}", decision.seq)),
        "the decision's event: {page}"
    );
    // The admin API answers the same question the same way.
    let none = get(
        &s,
        &viewer,
        "/console/trace/approvals?agent=procurement&resource=elsewhere",
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(!none.contains(&decided.jti), "{none}");
    s.stop().await;
}

async fn reassigning_an_owner_changes_it_and_a_viewer_may_not(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    s.human("bob").await;
    s.agent("procurement", "alice", "client_secret_basic").await;
    let owner = || async {
        s.state()
            .store
            .client("procurement")
            .await
            .unwrap()
            .unwrap()
            .owner_subject
    };
    let form = [("owner", "bob"), ("reason", "alice moved teams")];
    let viewer = sign_in(&s, Role::Viewer).await;
    let refused = post(&s, &viewer, "/console/agents/procurement/reassign", &form).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(owner().await, "alice");
    // The form is offered only to those allowed to use it.
    let page = get(&s, &viewer, "/console/agents/procurement")
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("/reassign"), "{page}");

    let admin = sign_in(&s, Role::Admin).await;
    // Not a registered human: refused, nothing changes.
    let bad = post(
        &s,
        &admin,
        "/console/agents/procurement/reassign",
        &[("owner", "mallory"), ("reason", "x")],
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(owner().await, "alice");
    let done = post(&s, &admin, "/console/agents/procurement/reassign", &form).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(owner().await, "bob");
    let event = s
        .state()
        .store
        .recent_audit_events(Some("agent:procurement"), 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(event.kind, "agent.reassigned");
    assert!(event.actor.starts_with("admin-key:"), "{}", event.actor);
    assert!(
        event.detail.contains("alice moved teams"),
        "{}",
        event.detail
    );
    s.stop().await;
}

async fn a_humans_detail_lists_their_device_and_the_credentials_they_approved(db: Db) {
    use countersign_server::store::devices::DeviceRecord;
    let s = TestServer::start(db).await;
    let decided = decisions(&s).await;
    let store = &s.state().store;
    let device = DeviceRecord {
        id: "dev-1".into(),
        subject: "alice".into(),
        key_jkt: "jkt-1".into(),
        key_jwk: "{}".into(),
        platform: "ios".into(),
        name: Some("Alice's iPhone".into()),
        push_channel: "apns".into(),
        push_token: None,
        push_token_invalid_at: None,
        attestation: None,
        passkey_id: "pk-1".into(),
        passkey_user: "u".into(),
        passkey_static: "{}".into(),
        passkey_dynamic: "{}".into(),
        passkey_transports: 0,
        created_at: s.now_s() * 1000,
        last_used_at: None,
        disabled_at: None,
        disabled_reason: None,
    };
    let mut tx = store.begin().await.unwrap();
    store.insert_device(&mut tx, &device).await.unwrap();
    tx.commit().await.unwrap();
    let viewer = sign_in(&s, Role::Viewer).await;
    let resp = get(&s, &viewer, "/console/humans/alice").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("Alice&#x27;s iPhone") || page.contains("Alice&#39;s iPhone"),
        "{page}"
    );
    assert!(page.contains("ios"), "{page}");
    assert!(
        page.contains(&format!("/console/credentials/{}", decided.jti)),
        "the credential she approved: {page}"
    );
    s.stop().await;
}

async fn csv_export_neutralises_formulas(db: Db) {
    use countersign_server::audit::{self, EventKind, NewEvent};
    let s = TestServer::start(db).await;
    let store = &s.state().store;
    let mut tx = store.begin().await.unwrap();
    let event = NewEvent {
        actor: "@attacker",
        kind: EventKind::SignalReceived,
        subject: "=HYPERLINK(\"https://evil.example\",\"click\")",
        detail: serde_json::json!({ "note": "=1+1" }),
    };
    audit::record(store, &mut tx, s.now_s() * 1000, event)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let viewer = sign_in(&s, Role::Viewer).await;
    let csv = get(&s, &viewer, "/console/trace/export?format=csv")
        .await
        .text()
        .await
        .unwrap();
    let line = csv
        .lines()
        .find(|l| l.contains("@attacker"))
        .expect("the event is exported");
    assert!(line.contains(",'@attacker,"), "{line}");
    assert!(
        line.contains(",\"'=HYPERLINK(\"\"https://evil.example\"\",\"\"click\"\")\","),
        "{line}"
    );
    // No cell of the export starts a formula.
    for cell in line.split(',') {
        assert!(
            !cell
                .trim_start_matches('"')
                .starts_with(['=', '+', '-', '@']),
            "{cell} in {line}"
        );
    }
    s.stop().await;
}
