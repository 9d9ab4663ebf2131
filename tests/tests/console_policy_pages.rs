#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! The console's policy pages (save, roll back, the explainer), the decision trace (its
//! export, times in the browser's zone) and the approvers page, over HTTP with a signed-in
//! admin or viewer.

use countersign_server::admin::Role;
use countersign_tests::console::{browser, get, post, sign_in};
use countersign_tests::{Db, TestServer, both_backends};
use reqwest::StatusCode;
use reqwest::header::COOKIE;

both_backends!(
    policies_save_and_roll_back_and_the_trail_exports,
    the_explainer_names_who_can_approve_and_why,
    times_are_shown_in_the_browsers_time_zone,
    the_approvers_page_lists_agent_routes_and_roles,
);

async fn policies_save_and_roll_back_and_the_trail_exports(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    s.agent("procurement", "alice", "client_secret_basic").await;
    let admin = sign_in(&s, Role::Admin).await;
    let policy = |limit: u32| {
        format!(
            "@id(\"small\") permit (principal, action == Action::\"purchase_order\", resource) \
             when {{ context.totals.amount < {limit} }};"
        )
    };
    // A broken draft is answered with its line and column and saves nothing.
    let broken = post(
        &s,
        &admin,
        "/console/policies",
        &[
            (
                "source",
                "permit (principal, action, resource) when { context. };",
            ),
            ("action", "save"),
        ],
    )
    .await;
    assert_eq!(broken.status(), StatusCode::OK);
    assert!(broken.text().await.unwrap().contains("Line 1, column"));
    assert!(
        s.state()
            .store
            .active_policy_version()
            .await
            .unwrap()
            .is_none()
    );
    for limit in [400, 500] {
        let saved = post(
            &s,
            &admin,
            "/console/policies",
            &[("source", policy(limit).as_str()), ("action", "save")],
        )
        .await;
        assert_eq!(saved.status(), StatusCode::OK);
        assert!(saved.text().await.unwrap().contains("saved and active"));
    }
    let active = || async { s.state().store.active_policy_version().await.unwrap() };
    let second = active().await;
    // A viewer may validate but not roll back; an admin rolls back to the first.
    let viewer = sign_in(&s, Role::Viewer).await;
    assert_eq!(
        post(&s, &viewer, "/console/policies/rollback", &[])
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(active().await, second);
    assert_eq!(
        post(&s, &admin, "/console/policies/rollback", &[])
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert_ne!(active().await, second);

    // The export about an agent holds its events and nothing else, as CSV or JSON lines.
    post(
        &s,
        &admin,
        "/console/agents/procurement/suspend",
        &[("reason", "x"), ("confirm", "yes")],
    )
    .await;
    let csv = get(
        &s,
        &viewer,
        "/console/trace/export?format=csv&agent=procurement",
    )
    .await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("countersign-trail.csv")
    );
    let text = csv.text().await.unwrap();
    assert!(text.starts_with("seq,at,actor,kind,subject,detail,prev_hash,hash\n"));
    assert!(
        text.lines().skip(1).all(|l| l.contains("procurement")),
        "{text}"
    );
    assert!(text.contains("agent.suspended"));
    let bad = get(&s, &viewer, "/console/trace/export?format=xml").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    s.stop().await;
}

async fn the_explainer_names_who_can_approve_and_why(db: Db) {
    use countersign_server::directory::{self, NewGroup};
    let s = TestServer::start(db).await;
    s.human("alice").await;
    s.human("bob").await;
    s.agent("procurement", "alice", "client_secret_basic").await;
    let store = &s.state().store;
    let now = s.now_s() * 1000;
    let group = NewGroup {
        name: "treasury".into(),
        display_name: Some("Treasury".into()),
    };
    directory::add_group(store, group, now, "test")
        .await
        .unwrap();
    directory::set_group_member(store, "treasury", "bob", true, now, "test")
        .await
        .unwrap();
    s.install_policy(
        r#"@id("small") permit (principal, action == Action::"purchase_order", resource)
           when { context.totals.amount < 400 };
           @id("large") @step_up @approver("group:treasury") @reason("large orders need treasury")
           permit (principal, action == Action::"purchase_order", resource)
           when { context.totals.amount >= 400 };"#,
    )
    .await;
    let viewer = sign_in(&s, Role::Viewer).await;
    let before = store.recent_audit_events(None, 1).await.unwrap()[0].seq;
    let ask = |amount: u32| {
        let arguments = format!(r#"{{"vendor":"Acme","amount":{amount},"currency":"USD"}}"#);
        let url = s.url(&format!(
            "/console/approvers?agent=procurement&action=purchase_order&arguments={}",
            form_urlencoded::byte_serialize(arguments.as_bytes()).collect::<String>()
        ));
        let cookie = viewer.cookie.clone();
        async move {
            let resp = browser()
                .get(url)
                .header(COOKIE, cookie)
                .send()
                .await
                .unwrap();
            (resp.status(), resp.text().await.unwrap())
        }
    };
    let (status, large) = ask(1200).await;
    assert_eq!(status, StatusCode::OK);
    assert!(large.contains("<strong>step_up</strong>"), "{large}");
    assert!(large.contains("<code>large</code>"));
    assert!(large.contains("large orders need treasury"));
    assert!(large.contains("group:treasury"));
    assert!(
        large.contains("/console/humans/bob"),
        "bob, the treasury's member, can approve"
    );
    let (_, small) = ask(120).await;
    assert!(small.contains("<strong>allow</strong>"), "{small}");
    // An action no configuration knows is explained as such, not a server error.
    let unknown = get(
        &s,
        &viewer,
        "/console/approvers?agent=procurement&action=launch_missiles",
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    // The group and its member are listed; and explaining recorded nothing.
    let page = get(&s, &viewer, "/console/approvers")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("<code>treasury</code>") && page.contains("/console/humans/bob"));
    assert_eq!(
        store.recent_audit_events(None, 1).await.unwrap()[0].seq,
        before
    );
    s.stop().await;
}

async fn times_are_shown_in_the_browsers_time_zone(db: Db) {
    let s = TestServer::start(db).await;
    let admin = sign_in(&s, Role::Admin).await;
    // The trail holds the sign-in; the trace lists it with its time.
    let trace = |zone: &'static str| {
        let (s, cookie) = (&s, admin.cookie.clone());
        async move {
            browser()
                .get(s.url("/console/trace"))
                .header(COOKIE, format!("{cookie}; countersign_tz={zone}"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let tokyo = trace("Asia/Tokyo").await;
    assert!(tokyo.contains("times in Asia/Tokyo"), "{tokyo}");
    assert!(tokyo.contains("+09:00\""), "{tokyo}");
    // A zone the server does not know, or anything else in the cookie, is UTC.
    for zone in ["Mars/Olympus", "%3Cscript%3E", "../../etc/passwd"] {
        let page = trace(zone).await;
        assert!(page.contains("times in UTC"), "{zone}: {page}");
        assert!(
            page.contains("+00:00\"") && !page.contains("+09:00"),
            "{zone}"
        );
    }
    s.stop().await;
}

async fn the_approvers_page_lists_agent_routes_and_roles(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    s.human("bob").await;
    s.agent("procurement", "alice", "client_secret_basic").await;
    s.agent("watcher", "alice", "client_secret_basic").await;
    let viewer = sign_in(&s, Role::Viewer).await;
    let page = get(&s, &viewer, "/console/approvers")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("No agent has its own route"), "{page}");
    assert!(page.contains("Nobody has a role"), "{page}");
    s.execute_sql("UPDATE clients SET approver = 'group:finance' WHERE client_id = 'procurement'")
        .await;
    s.execute_sql("UPDATE humans SET role = 'cfo' WHERE subject IN ('alice', 'bob')")
        .await;
    let page = get(&s, &viewer, "/console/approvers")
        .await
        .text()
        .await
        .unwrap();
    let routes = page.split("id=\"routes\"").nth(1).unwrap();
    assert!(routes.contains("procurement") && routes.contains("group:finance"));
    assert!(
        !routes
            .split("id=\"roles\"")
            .next()
            .unwrap()
            .contains("watcher")
    );
    let roles = page.split("id=\"roles\"").nth(1).unwrap();
    assert!(roles.contains("role:cfo</code></td><td>2<"), "{roles}");
    s.stop().await;
}
