#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! The console's protections over real HTTP: single-use sign-in links, a strict CSP on
//! every page, cross-site and token-less form posts refused before anything changes, and
//! roles checked on the server (a viewer cannot suspend an agent, in the console or
//! through the admin API with the same session).

use countersign_server::admin::{self, Role, Scope, sign_in_links};
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
    policies_save_and_roll_back_and_the_trail_exports,
    the_explainer_names_who_can_approve_and_why,
    the_trace_filters_by_outcome,
    an_events_detail_shows_its_policy_version_approver_and_credential,
    who_approved_finds_the_approval,
    reassigning_an_owner_changes_it_and_a_viewer_may_not,
    a_humans_detail_lists_their_device_and_the_credentials_they_approved,
    csv_export_neutralises_formulas,
    integrations_list_keys_without_secrets_and_push_failures_by_reason,
    only_admins_revoke_a_scim_token_and_it_is_audited,
    the_overview_counts_the_decisions_made_and_flags_the_agent,
);

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A signed-in console session: the cookie header to send and the page's CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

async fn sign_in(s: &TestServer, role: Role) -> Session {
    let link = sign_in_links::create(&s.state().store, role, "test", s.now_s() * 1000)
        .await
        .unwrap();
    let http = browser();
    let resp = http
        .post(s.url("/console/sign-in"))
        .header(ORIGIN, s.url(""))
        .form(&[("token", link.token.expose())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let set = resp.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let cookie = set.split(';').next().unwrap().to_owned();
    let page = http
        .get(s.url("/console/"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page carries a CSRF token")
        .to_owned();
    Session { cookie, csrf }
}

async fn post(
    s: &TestServer,
    session: &Session,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut fields = vec![("csrf", session.csrf.as_str())];
    fields.extend_from_slice(form);
    browser()
        .post(s.url(path))
        .header(COOKIE, &session.cookie)
        .header(ORIGIN, s.url(""))
        .form(&fields)
        .send()
        .await
        .unwrap()
}

/// A page as the signed-in browser fetches it.
async fn get(s: &TestServer, session: &Session, path: &str) -> reqwest::Response {
    browser()
        .get(s.url(path))
        .header(COOKIE, &session.cookie)
        .send()
        .await
        .unwrap()
}

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
    use countersign_server::audit::{self, NewEvent};
    let s = TestServer::start(db).await;
    let store = &s.state().store;
    let mut tx = store.begin().await.unwrap();
    let event = NewEvent {
        actor: "@attacker",
        kind: "test.formula",
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
        .find(|l| l.contains("test.formula"))
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

/// The body rows of the table with `id` on `html`, each as its cells' text (tags removed,
/// spaces collapsed).
fn table_rows(html: &str, id: &str) -> Vec<Vec<String>> {
    let table = html
        .split(&format!("id=\"{id}\""))
        .nth(1)
        .and_then(|rest| rest.split("</table>").next())
        .and_then(|table| table.split("<tbody>").nth(1))
        .unwrap_or_else(|| panic!("no table {id} with a body on the page"));
    let text = |fragment: &str| {
        let mut out = String::new();
        let mut in_tag = false;
        for c in fragment.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        out.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    table
        .split("<tr")
        .skip(1)
        .map(|row| {
            let row = row.split("</tr>").next().unwrap_or(row);
            // Each cell starts at `<td` or `<th` and ends at its closing tag.
            let mut cells = Vec::new();
            let mut rest = row;
            while let Some(at) = [rest.find("<td"), rest.find("<th")]
                .into_iter()
                .flatten()
                .min()
            {
                let cell = &rest[at..];
                let open_end = cell.find('>').map_or(cell.len(), |i| i + 1);
                let body = &cell[open_end..];
                let close = [body.find("</td>"), body.find("</th>")]
                    .into_iter()
                    .flatten()
                    .min()
                    .unwrap_or(body.len());
                cells.push(text(&body[..close]));
                rest = &body[close..];
            }
            cells
        })
        .collect()
}

/// A push given up at `at_ms` on `channel` with `error`, as the push worker leaves it.
async fn failed_push(s: &TestServer, id: &str, channel: &str, error: &str, at_ms: i64) {
    s.execute_sql(&format!(
        "INSERT INTO push_outbox (id, auth_req_id, device_id, channel, created_at, attempts, \
         next_attempt_at, expires_at, failed_at, last_error) \
         VALUES ('{id}', 'req-{id}', 'dev-{id}', '{channel}', {at_ms}, 1, {at_ms}, {}, {at_ms}, '{error}')",
        at_ms + 600_000
    ))
    .await;
}

async fn integrations_list_keys_without_secrets_and_push_failures_by_reason(db: Db) {
    let s = TestServer::start(db).await;
    let store = &s.state().store;
    let now = s.state().now_ms();
    let scim = admin::create_key(store, "okta-provisioning", Scope::Scim, None, now, "test")
        .await
        .unwrap();
    let key = admin::create_key(store, "ci-pipeline", Scope::Admin, None, now, "test")
        .await
        .unwrap();
    failed_push(
        &s,
        "p1",
        "apns",
        "unregistered: BadDeviceToken",
        now - 60_000,
    )
    .await;
    failed_push(
        &s,
        "p2",
        "apns",
        "unregistered: BadDeviceToken",
        now - 30_000,
    )
    .await;
    failed_push(&s, "p3", "fcm", "rejected: INVALID_ARGUMENT", now - 10_000).await;
    // Two days old: not in the last 24 hours.
    failed_push(&s, "p4", "fcm", "rejected: old", now - 2 * 86_400_000).await;

    let viewer = sign_in(&s, Role::Viewer).await;
    let resp = get(&s, &viewer, "/console/integrations").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("href=\"/console/integrations\""),
        "a nav link"
    );

    let tokens = table_rows(&html, "scim-tokens");
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_eq!(tokens[0][0], scim.id);
    assert_eq!(tokens[0][1], "okta-provisioning");
    assert_eq!(tokens[0][4], "live");
    let keys = table_rows(&html, "admin-keys");
    let ci = keys
        .iter()
        .find(|k| k[0] == key.id)
        .unwrap_or_else(|| panic!("the admin key is listed: {keys:?}"));
    assert_eq!((ci[1].as_str(), ci[2].as_str()), ("ci-pipeline", "admin"));
    for secret in [scim.secret.expose(), key.secret.expose()] {
        assert!(!html.contains(secret), "a secret is on the page");
    }
    // A viewer sees no revoke button.
    assert!(!html.contains("/revoke\""), "a viewer is offered an action");

    let failures = table_rows(&html, "push-failures");
    assert_eq!(
        failures
            .iter()
            .map(|f| (f[0].as_str(), f[1].as_str(), f[2].as_str()))
            .collect::<Vec<_>>(),
        [
            ("apns", "unregistered: BadDeviceToken", "2"),
            ("fcm", "rejected: INVALID_ARGUMENT", "1"),
        ]
    );
    // The key that signs is listed as active, by its kid.
    let kid = s.state().keys.active().kid().to_owned();
    let signing = table_rows(&html, "signing-keys");
    assert_eq!(signing.len(), 1, "{signing:?}");
    assert_eq!(signing[0][0], kid);
    assert_eq!(signing[0][1], "ES256");
    assert!(signing[0][3].starts_with("active"), "{signing:?}");
    // Nothing configured: the empty state says what to do.
    assert!(html.contains("[[signals.transmitters]]"));
    s.stop().await;
}

async fn only_admins_revoke_a_scim_token_and_it_is_audited(db: Db) {
    let s = TestServer::start(db).await;
    let store = &s.state().store;
    let now = s.state().now_ms();
    let scim = admin::create_key(store, "okta", Scope::Scim, None, now, "test")
        .await
        .unwrap();
    let live = || async {
        admin::verify_key(store, scim.secret.expose(), Scope::Scim, s.state().now_ms())
            .await
            .unwrap()
            .is_some()
    };
    let path = format!("/console/integrations/scim-tokens/{}/revoke", scim.id);

    for role in [Role::Viewer, Role::Operator] {
        let session = sign_in(&s, role).await;
        let refused = post(&s, &session, &path, &[("confirm", "yes")]).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{role}");
        assert!(live().await, "a {role} revoked a SCIM token");
    }
    let admin_session = sign_in(&s, Role::Admin).await;
    let page = get(&s, &admin_session, "/console/integrations")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(&path), "an admin is offered the action");
    // Without the confirmation nothing happens.
    let unconfirmed = post(&s, &admin_session, &path, &[]).await;
    assert_eq!(unconfirmed.status(), StatusCode::BAD_REQUEST);
    assert!(live().await);
    let done = post(&s, &admin_session, &path, &[("confirm", "yes")]).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert!(!live().await, "the token still works");
    let again = post(&s, &admin_session, &path, &[("confirm", "yes")]).await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    let revoked: Vec<_> = store
        .recent_audit_events(Some(&format!("scim-token:{}", scim.id)), 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "scim_token.revoked")
        .collect();
    assert_eq!(revoked.len(), 1);
    assert!(
        revoked[0].actor.starts_with("admin-key:"),
        "{}",
        revoked[0].actor
    );
    let tokens = table_rows(
        &get(&s, &admin_session, "/console/integrations")
            .await
            .text()
            .await
            .unwrap(),
        "scim-tokens",
    );
    assert!(tokens[0][4].starts_with("revoked"), "{tokens:?}");
    s.stop().await;
}

async fn the_overview_counts_the_decisions_made_and_flags_the_agent(db: Db) {
    let s = TestServer::start_with(db, |c| {
        c.authorization_details_types.insert(
            "delete_environment".into(),
            serde_json::json!({"type": "object", "required": ["type", "target"],
                   "properties": {"type": {"const": "delete_environment"}, "target": {"type": "string"}}}),
        );
        c.policy
            .actions
            .insert("delete_environment".into(), "destructive".into());
    })
    .await;
    s.human("bob").await;
    s.human_with_manager("alice", "bob").await;
    let agent = s.agent("procurement", "alice", "client_secret_basic").await;
    s.install_policy(include_str!("../../docs/policy/examples/procurement.cedar"))
        .await;
    let ask = |details: String| {
        let agent = &agent;
        let s = &s;
        async move {
            s.bc_authorize(
                agent,
                &[
                    ("scope", "openid"),
                    ("login_hint", "alice"),
                    ("authorization_details", &details),
                ],
            )
            .await
        }
    };
    let order = |amount: u32| {
        serde_json::json!([{"type": "purchase_order", "vendor": "Acme", "amount": amount, "currency": "USD"}])
            .to_string()
    };
    let destroy =
        serde_json::json!([{"type": "delete_environment", "target": "production"}]).to_string();

    let viewer = sign_in(&s, Role::Viewer).await;
    let before = get(&s, &viewer, "/console/").await.text().await.unwrap();
    assert!(before.contains("No decisions in the last hour"));
    assert!(before.contains("No agent stands out"));

    // Two allowed, one stepped up (approved 90 s later), five denied.
    for amount in [100, 200] {
        assert_eq!(ask(order(amount)).await.0, StatusCode::OK);
    }
    let (status, body) = ask(order(1200)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let waiting = body["auth_req_id"].as_str().unwrap().to_owned();
    for _ in 0..5 {
        assert_eq!(ask(destroy.clone()).await.0, StatusCode::FORBIDDEN);
    }
    // The queue's refresh (htmx) fetches the queue alone.
    let queue = get(&s, &viewer, "/console/queue").await;
    assert_eq!(queue.status(), StatusCode::OK);
    let queue = queue.text().await.unwrap();
    assert!(queue.contains("purchase_order: Acme, 1200 USD"), "{queue}");
    assert!(!queue.contains("<svg"), "the refresh computes no figures");
    s.clock.advance_ms(90_000);
    assert_eq!(s.dev_decide(&waiting, true).await, StatusCode::NO_CONTENT);

    let html = get(&s, &viewer, "/console/").await.text().await.unwrap();
    let totals = table_rows(&html, "decision-totals");
    assert_eq!(
        totals.iter().map(|r| r[1].as_str()).collect::<Vec<_>>(),
        ["2", "1", "5"],
        "allowed, stepped up, denied: {totals:?}"
    );
    assert!(
        html.contains("2 allowed, 1 stepped up, 5 denied"),
        "the chart's summary"
    );
    assert!(html.contains("<svg") && html.contains("class=\"bar-deny\""));
    // The one human decision took 90 s, so both percentiles are 90 s.
    assert!(
        html.contains("<dt>Human decisions</dt><dd>1</dd>"),
        "{html}"
    );
    assert!(html.contains("<dt>Approval time, median</dt><dd>1 min 30 s</dd>"));
    assert!(html.contains("<dt>Approval time, 95th percentile</dt><dd>1 min 30 s</dd>"));
    // Five denials against no history: the agent is flagged, with the reason.
    let flagged = table_rows(&html, "flagged");
    assert_eq!(flagged.len(), 1, "{flagged:?}");
    assert_eq!(flagged[0][0], "procurement");
    assert!(
        flagged[0][1].starts_with("6 denials and step-ups in the last hour"),
        "{flagged:?}"
    );
    s.stop().await;
}
