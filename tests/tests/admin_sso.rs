#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! Admin single sign-on against an OpenID Provider nobody here wrote: panva's certified
//! `oidc-provider`, started locally. The browser is a cookie-keeping HTTP client that
//! follows each redirect by hand, so every hop is the real one.

use countersign_tests::idp::{CLIENT_ID, TestIdp, free_port};
use countersign_tests::{Db, TestServer, both_backends};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

both_backends!(
    an_admin_signs_in_with_the_idp_and_the_session_works_until_sign_out,
    sign_ins_that_must_not_open_a_session,
    an_idp_group_signs_a_browser_in_to_the_console_with_its_role
);

const ADMIN: &str = "ada@example.com";

struct Setup {
    server: TestServer,
    _idp: TestIdp,
}

async fn setup(db: Db) -> Setup {
    let port = free_port();
    let callback = format!("http://127.0.0.1:{port}/admin/sso/callback");
    let idp = TestIdp::start(
        &callback,
        json!({
            "u-ada": { "email": ADMIN, "email_verified": true },
            "u-eve": { "email": "eve@example.com", "email_verified": true, "groups": ["staff"] },
            "u-gus": { "email": "gus@example.com", "email_verified": true,
                       "groups": ["staff", "countersign-admins"] },
            "u-olga": { "email": "olga@example.com", "email_verified": true, "groups": ["soc"] },
            "u-mal": { "email": "ADA@example.com", "email_verified": false },
            // Says nothing about verification: not a yes.
            "u-nov": { "email": "ada@example.com" },
        }),
    )
    .await;
    let (issuer, secret) = (idp.issuer.clone(), idp.client_secret.clone());
    let server = TestServer::start_with(db, move |c| {
        c.listen = format!("127.0.0.1:{port}").parse().unwrap();
        c.admin_sso.issuer = Some(issuer);
        c.admin_sso.client_id = CLIENT_ID.into();
        c.admin_sso.client_secret = Some(secret);
        c.admin_sso.admins = vec!["Ada@Example.com".into()];
        c.admin_sso.admin_groups = vec!["countersign-admins".into()];
        c.admin_sso.operator_groups = vec!["soc".into()];
        c.admin_sso.scopes = vec!["email".into(), "groups".into()];
    })
    .await;
    server.clock.follow_system_time();
    Setup { server, _idp: idp }
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Follows redirects from `url` until the IdP sends the browser back to Countersign's
/// callback; returns that callback URL (not yet requested).
async fn to_callback(browser: &reqwest::Client, s: &TestServer, url: String) -> String {
    let callback = s.url("/admin/sso/callback");
    let mut url = url;
    for _ in 0..10 {
        if url.starts_with(&callback) {
            return url;
        }
        let resp = browser.get(&url).send().await.unwrap();
        assert!(
            resp.status().is_redirection(),
            "{url}: {} {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
        let location = resp.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .to_owned();
        url = reqwest::Url::parse(&url)
            .unwrap()
            .join(&location)
            .unwrap()
            .to_string();
    }
    panic!("too many redirects, last {url}");
}

/// Starts a sign-in at Countersign as `who`; the IdP's authorize URL it redirects to.
async fn start(browser: &reqwest::Client, s: &TestServer, who: &str) -> String {
    let resp = browser
        .get(s.url("/admin/sso/login"))
        .query(&[("login_hint", who)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let location = resp.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        location.contains("code_challenge_method=S256"),
        "{location}"
    );
    assert!(location.contains("nonce="), "{location}");
    location
}

async fn sign_in(browser: &reqwest::Client, s: &TestServer, who: &str) -> (StatusCode, Value) {
    let authorize = start(browser, s, who).await;
    let callback = to_callback(browser, s, authorize).await;
    let resp = browser.get(callback).send().await.unwrap();
    (resp.status(), resp.json().await.unwrap_or(Value::Null))
}

async fn list_humans(browser: &reqwest::Client, s: &TestServer) -> StatusCode {
    browser
        .get(s.url("/admin/v1/humans"))
        .send()
        .await
        .unwrap()
        .status()
}

async fn an_admin_signs_in_with_the_idp_and_the_session_works_until_sign_out(db: Db) {
    let Setup { server: s, _idp } = setup(db).await;
    let browser = browser();
    assert_eq!(list_humans(&browser, &s).await, StatusCode::UNAUTHORIZED);

    let (status, signed_in) = sign_in(&browser, &s, ADMIN).await;
    assert_eq!(status, StatusCode::OK, "{signed_in}");
    assert_eq!(signed_in["email"], ADMIN);
    assert_eq!(signed_in["subject"], "u-ada");
    assert!(signed_in["expires_at"].as_i64().unwrap() > s.now_s() * 1000);

    // The session cookie works on the admin API, reading and changing.
    assert_eq!(list_humans(&browser, &s).await, StatusCode::OK);
    let created = browser
        .post(s.url("/admin/v1/humans"))
        .json(&json!({ "subject": "alice", "email": "alice@example.com", "name": "Alice" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    // ... but not from another origin.
    let forged = browser
        .post(s.url("/admin/v1/humans"))
        .header(header::ORIGIN, "https://evil.example")
        .json(&json!({ "subject": "mallory", "email": "m@example.com", "name": "M" }))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    // The sign-in is in the audit trail, with the IdP's subject.
    let admin = s.admin_api().await;
    let (_, events) = admin
        .call(Method::GET, "/admin/v1/audit?limit=100", None)
        .await;
    let signed = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "admin.signed_in")
        .expect("admin.signed_in recorded");
    assert_eq!(signed["detail"]["email"], ADMIN);
    assert_eq!(signed["detail"]["idp_subject"], "u-ada");
    assert_eq!(signed["actor"], format!("admin:{ADMIN}"));

    // A member of the admin group is an admin too (the groups claim, released for the
    // `groups` scope); the trail records the groups.
    let gus = crate::browser();
    let (status, signed_in) = sign_in(&gus, &s, "gus@example.com").await;
    assert_eq!(status, StatusCode::OK, "{signed_in}");
    assert_eq!(list_humans(&gus, &s).await, StatusCode::OK);
    let (_, events) = admin
        .call(Method::GET, "/admin/v1/audit?limit=100", None)
        .await;
    let gus_event = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "admin.signed_in" && e["detail"]["email"] == "gus@example.com")
        .expect("gus's sign-in recorded");
    assert_eq!(
        gus_event["detail"]["groups"],
        json!(["staff", "countersign-admins"])
    );

    // Signing out ends the session for good.
    let out = browser
        .post(s.url("/admin/sso/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert_eq!(list_humans(&browser, &s).await, StatusCode::UNAUTHORIZED);
    // The sign-out is traced too: the session's key, revoked by the session itself.
    let session = signed["subject"].as_str().unwrap();
    assert!(session.starts_with("admin-key:"), "{signed}");
    let (_, events) = admin
        .call(
            Method::GET,
            &format!("/admin/v1/audit?subject={session}"),
            None,
        )
        .await;
    let kinds: Vec<(&str, &str)> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("admin.signed_out", session),
            ("admin.signed_in", format!("admin:{ADMIN}").as_str())
        ]
    );
    s.stop().await;
}

async fn sign_ins_that_must_not_open_a_session(db: Db) {
    let Setup { server: s, _idp } = setup(db).await;

    // Someone the IdP knows but who is not a configured admin.
    let browser_eve = browser();
    let (status, problem) = sign_in(&browser_eve, &s, "eve@example.com").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("eve@example.com")
    );
    assert_eq!(
        list_humans(&browser_eve, &s).await,
        StatusCode::UNAUTHORIZED
    );

    // An admin's address the IdP has not verified.
    let browser_mal = browser();
    let (status, _) = sign_in(&browser_mal, &s, "u-mal").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        list_humans(&browser_mal, &s).await,
        StatusCode::UNAUTHORIZED
    );
    // ...nor one it says nothing about.
    let browser_nov = browser();
    let (status, problem) = sign_in(&browser_nov, &s, "u-nov").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(
        list_humans(&browser_nov, &s).await,
        StatusCode::UNAUTHORIZED
    );

    // The IdP refuses (unknown account): its error reaches the browser, no session.
    let browser_nobody = browser();
    let (status, problem) = sign_in(&browser_nobody, &s, "nobody@example.com").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("access_denied")
    );

    // A callback in a browser that never started the sign-in (login CSRF): the code is
    // the admin's, but the state is not this browser's.
    let victim = browser();
    let authorize = start(&victim, &s, ADMIN).await;
    let callback = to_callback(&victim, &s, authorize).await;
    let attacker = browser();
    let resp = attacker.get(&callback).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(list_humans(&attacker, &s).await, StatusCode::UNAUTHORIZED);

    // The same browser with a state that is not its own.
    let tampered = callback.replace("state=", "state=x");
    let resp = victim.get(&tampered).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // The genuine callback still works, once: the sign-in cookie is spent with it.
    let resp = victim.get(&callback).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = victim.get(&callback).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    // Missing parameters.
    let resp = browser()
        .get(s.url("/admin/sso/callback"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    s.stop().await;
}

async fn an_idp_group_signs_a_browser_in_to_the_console_with_its_role(db: Db) {
    let Setup { server: s, _idp } = setup(db).await;
    let browser = browser();
    let authorize = start(&browser, &s, "olga@example.com").await;
    let callback = to_callback(&browser, &s, authorize).await;
    // A person's browser asks for a page: it gets one that continues to the console (a
    // same-site navigation, so the SameSite=Strict console cookie is sent).
    let resp = browser
        .get(callback)
        .header(header::ACCEPT, "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cookies: Vec<String> = resp
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("countersign_console=") && c.contains("Path=/console")),
        "{cookies:?}"
    );
    let page = resp.text().await.unwrap();
    assert!(page.contains("url=/console/"), "{page}");
    assert!(page.contains("<strong>operator</strong>"), "{page}");
    // The console session is an operator's: the members of `operator_groups` are.
    let overview = browser
        .get(s.url("/console/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        overview.contains("Signed in as <strong>operator</strong>"),
        "{overview}"
    );
    // An operator cannot change policies through the admin API with the same session.
    let resp = browser
        .post(s.url("/admin/v1/policies"))
        .header(header::ORIGIN, s.url(""))
        .json(&json!({ "source": "permit (principal, action, resource);" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let event = s
        .state()
        .store
        .recent_audit_events(None, 20)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.kind == "admin.signed_in")
        .expect("the sign-in is audited");
    assert!(
        event.detail.contains("\"role\":\"operator\""),
        "{}",
        event.detail
    );
    s.stop().await;
}
