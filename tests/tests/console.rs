#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! The console's protections over real HTTP: single-use sign-in links, a strict CSP on
//! every page, cross-site and token-less form posts refused before anything changes, and
//! roles checked on the server (a viewer cannot suspend an agent, in the console or
//! through the admin API with the same session).

use countersign_server::admin::{Role, sign_in_links};
use countersign_tests::console::{browser, get, post, sign_in};
use countersign_tests::{Db, TestServer, both_backends};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, COOKIE, LOCATION, ORIGIN, SET_COOKIE};

both_backends!(
    times_are_shown_in_the_browsers_time_zone,
    the_approvers_page_lists_agent_routes_and_roles,
    a_sign_in_link_signs_in_once_with_a_strict_cookie,
    every_page_has_a_strict_csp_and_escapes_what_it_shows,
    cross_site_and_token_less_posts_change_nothing,
    a_viewer_cannot_suspend_an_agent,
    an_operator_suspends_and_resumes_with_a_reason,
    operators_revoke_only_admins_register,
    policies_save_and_roll_back_and_the_trail_exports,
    the_explainer_names_who_can_approve_and_why,
);

async fn enabled(s: &TestServer, client_id: &str) -> bool {
    s.state()
        .store
        .client(client_id)
        .await
        .unwrap()
        .unwrap()
        .enabled
}

async fn a_sign_in_link_signs_in_once_with_a_strict_cookie(db: Db) {
    let s = TestServer::start(db).await;
    let http = browser();
    // Without a session every page sends the browser to sign in.
    let resp = http.get(s.url("/console/agents")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()[LOCATION], "/console/sign-in");

    let link = sign_in_links::create(&s.state().store, Role::Admin, "cli", s.now_s() * 1000)
        .await
        .unwrap();
    // Opening the link only shows a button: a link preview does not spend it.
    let shown = http
        .get(s.url(&format!("/console/sign-in?token={}", link.token.expose())))
        .send()
        .await
        .unwrap();
    assert_eq!(shown.status(), StatusCode::OK);
    assert_eq!(shown.headers()["referrer-policy"], "same-origin");
    let redeem = || {
        http.post(s.url("/console/sign-in"))
            .form(&[("token", link.token.expose())])
            .send()
    };
    let first = redeem().await.unwrap();
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let cookie = first.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert_eq!(redeem().await.unwrap().status(), StatusCode::FORBIDDEN);
    // The sign-in is in the trail, naming the link.
    let signed_in = s
        .state()
        .store
        .recent_audit_events(None, 20)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "admin.signed_in")
        .count();
    assert_eq!(signed_in, 1);
    s.stop().await;
}

async fn every_page_has_a_strict_csp_and_escapes_what_it_shows(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    s.agent("procurement", "alice", "client_secret_basic").await;
    // A name an attacker chose, shown on several pages.
    s.execute_sql(
        "UPDATE clients SET name = '<script>alert(1)</script>' WHERE client_id = 'procurement'",
    )
    .await;
    let session = sign_in(&s, Role::Viewer).await;
    for path in [
        "/console/",
        "/console/agents",
        "/console/agents/procurement",
        "/console/humans",
        "/console/humans/alice",
        "/console/trace",
        "/console/trace?verify=1",
        "/console/trace?agent=procurement&outcome=deny&from=2020-01-01&to=2099-12-31",
        "/console/trace/1",
        "/console/trace/approvals?agent=procurement",
        "/console/integrations",
    ] {
        let resp = get(&s, &session, path).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let csp = resp.headers()[CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        let html = resp.text().await.unwrap();
        assert!(
            !html.contains("<script>"),
            "{path}: an inline script in the page"
        );
        assert!(
            !html.contains(" style=\""),
            "{path}: an inline style in the page"
        );
    }
    s.stop().await;
}

async fn cross_site_and_token_less_posts_change_nothing(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    s.agent("procurement", "alice", "client_secret_basic").await;
    let session = sign_in(&s, Role::Admin).await;
    let form = [
        ("reason", "test"),
        ("confirm", "yes"),
        ("csrf", session.csrf.as_str()),
    ];
    // Another site's page posting the form (the browser says where it comes from).
    for (header, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let resp = browser()
            .post(s.url("/console/agents/procurement/suspend"))
            .header(COOKIE, &session.cookie)
            .header(header, value)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{header}");
    }
    // Same origin, but without the token, or with another session's.
    let other = sign_in(&s, Role::Admin).await;
    for csrf in ["", other.csrf.as_str()] {
        let resp = browser()
            .post(s.url("/console/agents/procurement/suspend"))
            .header(COOKIE, &session.cookie)
            .header(ORIGIN, s.url(""))
            .form(&[("reason", "test"), ("confirm", "yes"), ("csrf", csrf)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    }
    assert!(enabled(&s, "procurement").await, "nothing changed");
    s.stop().await;
}

async fn a_viewer_cannot_suspend_an_agent(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    s.agent("procurement", "alice", "client_secret_basic").await;
    let viewer = sign_in(&s, Role::Viewer).await;
    let resp = post(
        &s,
        &viewer,
        "/console/agents/procurement/suspend",
        &[("reason", "x"), ("confirm", "yes")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp.text().await.unwrap().contains("operator"));
    // The page does not offer the form either.
    let page = get(&s, &viewer, "/console/agents/procurement")
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("/suspend"));
    assert!(enabled(&s, "procurement").await);

    // The admin API refuses a viewer's key just the same, and lets it read.
    let key = viewer.cookie.split_once('=').unwrap().1.to_owned();
    let refused = s
        .http
        .post(s.url("/admin/v1/agents/procurement/suspend"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"reason": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let read = s
        .http
        .get(s.url("/admin/v1/agents"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    assert!(enabled(&s, "procurement").await);
    s.stop().await;
}

async fn an_operator_suspends_and_resumes_with_a_reason(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    s.agent("procurement", "alice", "client_secret_basic").await;
    let operator = sign_in(&s, Role::Operator).await;
    // Without the confirmation nothing happens.
    let unconfirmed = post(
        &s,
        &operator,
        "/console/agents/procurement/suspend",
        &[("reason", "leak")],
    )
    .await;
    assert_eq!(unconfirmed.status(), StatusCode::BAD_REQUEST);
    assert!(enabled(&s, "procurement").await);
    let done = post(
        &s,
        &operator,
        "/console/agents/procurement/suspend",
        &[("reason", "leaked key"), ("confirm", "yes")],
    )
    .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert!(!enabled(&s, "procurement").await);
    let suspended = s
        .state()
        .store
        .recent_audit_events(Some("agent:procurement"), 5)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.kind == "agent.suspended")
        .expect("traced");
    assert!(
        suspended.actor.starts_with("admin-key:"),
        "{}",
        suspended.actor
    );
    assert!(suspended.detail.contains("leaked key"));
    let resumed = post(&s, &operator, "/console/agents/procurement/resume", &[]).await;
    assert_eq!(resumed.status(), StatusCode::SEE_OTHER);
    assert!(enabled(&s, "procurement").await);
    s.stop().await;
}

async fn operators_revoke_only_admins_register(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    let agent = s.agent("procurement", "alice", "client_secret_basic").await;
    let tokens = s
        .approved_tokens(
            &agent,
            "alice",
            &[(
                "authorization_details",
                r#"[{"type":"purchase_order","vendor":"Acme","amount":120,"currency":"USD"}]"#,
            )],
            None,
        )
        .await;
    let jti = countersign_tests::jwt_claims(tokens["access_token"].as_str().unwrap())["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    let operator = sign_in(&s, Role::Operator).await;
    // An operator may not register agents.
    let refused = post(
        &s,
        &operator,
        "/console/agents",
        &[
            ("client_id", "x"),
            ("owner", "alice"),
            ("auth_method", "client_secret_basic"),
        ],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(s.state().store.client("x").await.unwrap().is_none());
    // ...but may revoke, with a reason.
    let revoked = post(
        &s,
        &operator,
        &format!("/console/credentials/{jti}/revoke"),
        &[("reason", "order cancelled")],
    )
    .await;
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    let token = s.state().store.token(&jti).await.unwrap().unwrap();
    assert_eq!(token.revoked_reason.as_deref(), Some("order cancelled"));

    // An admin registers one; the secret is on that page and nowhere else.
    let admin = sign_in(&s, Role::Admin).await;
    let created = post(
        &s,
        &admin,
        "/console/agents",
        &[
            ("client_id", "new-agent"),
            ("owner", "alice"),
            ("auth_method", "client_secret_basic"),
        ],
    )
    .await;
    assert_eq!(created.status(), StatusCode::OK);
    let page = created.text().await.unwrap();
    let secret = page
        .split("id=\"secret\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the secret is shown once")
        .to_owned();
    let record = s.state().store.client("new-agent").await.unwrap().unwrap();
    assert_eq!(record.owner_subject, "alice");
    let detail = get(&s, &admin, "/console/agents/new-agent")
        .await
        .text()
        .await
        .unwrap();
    assert!(!detail.contains(&secret), "the secret is never shown again");
    // A bad registration is refused with the reason, and nothing is stored.
    let bad = post(
        &s,
        &admin,
        "/console/agents",
        &[
            ("client_id", "bad id"),
            ("owner", "alice"),
            ("auth_method", "client_secret_basic"),
        ],
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    s.stop().await;
}

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
