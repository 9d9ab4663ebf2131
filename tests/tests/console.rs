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
    a_sign_in_link_signs_in_once_with_a_strict_cookie,
    every_page_has_a_strict_csp_and_escapes_what_it_shows,
    cross_site_and_token_less_posts_change_nothing,
    a_viewer_cannot_suspend_an_agent,
    an_operator_suspends_and_resumes_with_a_reason,
    operators_revoke_only_admins_register,
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
