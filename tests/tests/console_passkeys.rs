#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! Console passkeys over real HTTP, with a software authenticator (wallet-core's, on
//! 1Password's passkey crates) standing in for the browser: register from a signed-in
//! session, sign in with it at the session's role, and the ways it must fail (replayed
//! or foreign ceremonies, another origin, a revoked passkey, a cross-site post, an IP
//! address for an origin).

use std::sync::Arc;

use countersign_server::admin::{Role, sign_in_links};
use countersign_tests::{Db, TestServer, both_backends};
use countersign_wallet_core::PasskeyAuthenticator;
use countersign_wallet_core::software::{AuthenticatorFaults, MemoryStorage, SoftwarePasskeys};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, ORIGIN, SET_COOKIE};
use serde_json::Value;

both_backends!(
    a_passkey_registered_in_a_session_signs_in_with_its_role,
    passkey_ceremonies_refuse_replays_strangers_and_revoked_keys,
    passkeys_are_unavailable_on_an_ip_address,
);

/// A server on `http://localhost:PORT` and that origin.
async fn on_localhost(db: Db) -> (TestServer, String) {
    let s = TestServer::start_on_localhost(db).await;
    let origin = s.issuer();
    (s, origin)
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

struct Session {
    cookie: String,
    csrf: String,
}

fn cookie_of(resp: &reqwest::Response) -> String {
    resp.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// The CSRF token on a console page.
async fn csrf_on(s: &TestServer, cookie: &str) -> String {
    let page = browser()
        .get(s.url("/console/passkeys"))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at = page
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no csrf field: {page}"))
        + 19;
    page[at..at + page[at..].find('"').unwrap()].to_owned()
}

async fn link_session(s: &TestServer, origin: &str, role: Role) -> Session {
    let link = sign_in_links::create(&s.state().store, role, "test", s.now_s() * 1000)
        .await
        .unwrap();
    let resp = browser()
        .post(s.url("/console/sign-in"))
        .header(ORIGIN, origin)
        .form(&[("token", link.token.expose())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let cookie = cookie_of(&resp);
    let csrf = csrf_on(s, &cookie).await;
    Session { cookie, csrf }
}

async fn post(
    s: &TestServer,
    origin: &str,
    path: &str,
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = browser()
        .post(s.url(path))
        .header(ORIGIN, origin)
        .form(form);
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    request.send().await.unwrap()
}

/// Runs the (blocking) software authenticator off the async runtime.
async fn authenticator<T: Send + 'static>(
    passkeys: &Arc<SoftwarePasskeys>,
    run: impl FnOnce(&SoftwarePasskeys) -> T + Send + 'static,
) -> T {
    let passkeys = passkeys.clone();
    tokio::task::spawn_blocking(move || run(&passkeys))
        .await
        .unwrap()
}

fn software(storage: &Arc<MemoryStorage>, origin: &str) -> Arc<SoftwarePasskeys> {
    Arc::new(
        SoftwarePasskeys::new(storage.clone()).with_faults(AuthenticatorFaults {
            origin: Some(origin.to_owned()),
            ..AuthenticatorFaults::default()
        }),
    )
}

/// Registers a passkey named `label` in `session`; returns the authenticator holding it
/// and its storage.
async fn register(
    s: &TestServer,
    origin: &str,
    session: &Session,
    label: &str,
) -> (Arc<SoftwarePasskeys>, Arc<MemoryStorage>) {
    let storage = Arc::new(MemoryStorage::default());
    let passkeys = software(&storage, origin);
    let fields = [("csrf", session.csrf.as_str()), ("label", label)];
    let resp = post(
        s,
        origin,
        "/console/passkeys/options",
        Some(&session.cookie),
        &fields,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let options = resp.text().await.unwrap();
    let created = authenticator(&passkeys, move |p| p.create(&options))
        .await
        .expect("the authenticator creates a passkey");
    let resp = post(
        s,
        origin,
        "/console/passkeys",
        Some(&session.cookie),
        &[
            ("csrf", session.csrf.as_str()),
            ("label", label),
            ("credential", &created),
        ],
    )
    .await;
    let status = resp.status();
    assert_eq!(status, StatusCode::OK, "{}", resp.text().await.unwrap());
    (passkeys, storage)
}

/// A sign-in assertion from `passkeys` for fresh options.
async fn assertion(s: &TestServer, origin: &str, passkeys: &Arc<SoftwarePasskeys>) -> String {
    let resp = post(s, origin, "/console/sign-in/passkey/options", None, &[]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let options: Value = resp.json().await.unwrap();
    assert!(
        options
            .get("allowCredentials")
            .is_none_or(|a| a == &Value::Array(vec![])),
        "a discoverable sign-in names no credential: {options}"
    );
    assert_eq!(options["userVerification"], "required");
    let options = options.to_string();
    authenticator(passkeys, move |p| p.get_assertion(&options))
        .await
        .expect("the authenticator asserts")
}

async fn sign_in(s: &TestServer, origin: &str, credential: &str) -> reqwest::Response {
    post(
        s,
        origin,
        "/console/sign-in/passkey",
        None,
        &[("credential", credential)],
    )
    .await
}

async fn a_passkey_registered_in_a_session_signs_in_with_its_role(db: Db) {
    let (s, origin) = on_localhost(db).await;
    let operator = link_session(&s, &origin, Role::Operator).await;
    let (passkeys, _) = register(&s, &origin, &operator, "Olga's laptop").await;

    let page = browser()
        .get(s.url("/console/passkeys"))
        .header(COOKIE, &operator.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Olga&#39;s laptop") || page.contains("Olga&#x27;s laptop"),
        "{page}"
    );

    let credential = assertion(&s, &origin, &passkeys).await;
    let resp = sign_in(&s, &origin, &credential).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = cookie_of(&resp);
    let set = resp.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(set.contains(attribute), "{set}");
    }
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["location"], "/console/");
    // The new session works, with the role of the session that registered the passkey.
    let overview = browser()
        .get(s.url("/console/"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(overview.status(), StatusCode::OK);
    assert!(
        overview
            .text()
            .await
            .unwrap()
            .contains("Signed in as <strong>operator</strong>")
    );
    // Both steps are in the trail: who registered it, and the sign-in by passkey.
    let events = s.state().store.recent_audit_events(None, 50).await.unwrap();
    let registered = events
        .iter()
        .find(|e| e.kind == "admin.passkey_registered")
        .expect("registration audited");
    assert!(registered.actor.starts_with("admin-key:"));
    assert!(
        registered.detail.contains("\"role\":\"operator\""),
        "{}",
        registered.detail
    );
    let signed_in = events
        .iter()
        .find(|e| e.kind == "admin.signed_in" && e.detail.contains("\"method\":\"passkey\""))
        .expect("passkey sign-in audited");
    assert!(signed_in.actor.starts_with("admin-passkey:"));
    // The same assertion again (a replay) opens nothing: its challenge was used.
    assert_eq!(
        sign_in(&s, &origin, &credential).await.status(),
        StatusCode::FORBIDDEN
    );
    s.stop().await;
}

async fn passkey_ceremonies_refuse_replays_strangers_and_revoked_keys(db: Db) {
    let (s, origin) = on_localhost(db).await;
    let admin = link_session(&s, &origin, Role::Admin).await;
    let operator = link_session(&s, &origin, Role::Operator).await;

    // A registration ceremony belongs to the session that started it.
    let storage = Arc::new(MemoryStorage::default());
    let passkeys = software(&storage, &origin);
    let fields = [("csrf", operator.csrf.as_str()), ("label", "stolen")];
    let options = post(
        &s,
        &origin,
        "/console/passkeys/options",
        Some(&operator.cookie),
        &fields,
    )
    .await
    .text()
    .await
    .unwrap();
    let created = authenticator(&passkeys, move |p| p.create(&options))
        .await
        .unwrap();
    let resp = post(
        &s,
        &origin,
        "/console/passkeys",
        Some(&admin.cookie),
        &[
            ("csrf", admin.csrf.as_str()),
            ("label", "stolen"),
            ("credential", &created),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(
        s.state()
            .store
            .list_admin_passkeys()
            .await
            .unwrap()
            .is_empty()
    );

    // Registering needs the session's CSRF token, like every console post.
    let resp = post(
        &s,
        &origin,
        "/console/passkeys/options",
        Some(&operator.cookie),
        &[("label", "no token")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // A label is required and bounded.
    let resp = post(
        &s,
        &origin,
        "/console/passkeys/options",
        Some(&operator.cookie),
        &[("csrf", operator.csrf.as_str()), ("label", " ")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let (passkeys, storage) = register(&s, &origin, &operator, "ops key").await;

    // An assertion made for another origin (a phishing site relaying the challenge).
    let phished = software(
        &Arc::new(MemoryStorage::from_snapshot(storage.snapshot())),
        "http://localhost.evil.example",
    );
    let credential = assertion(&s, &origin, &phished).await;
    assert_eq!(
        sign_in(&s, &origin, &credential).await.status(),
        StatusCode::FORBIDDEN
    );

    // A sign-in posted from another site is refused before it is read.
    let credential = assertion(&s, &origin, &passkeys).await;
    assert_eq!(
        sign_in(&s, "https://evil.example", &credential)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    // Garbage, and a flood-sized body, get clear refusals, not a 500.
    assert_eq!(
        sign_in(&s, &origin, "{not json").await.status(),
        StatusCode::BAD_REQUEST
    );
    let huge = format!("{{\"rawId\":\"{}\"}}", "A".repeat(70 * 1024));
    assert_eq!(
        sign_in(&s, &origin, &huge).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let forged = serde_json::json!({
        "id": "AAAA", "rawId": "AAAA", "type": "public-key",
        "response": {"clientDataJSON": "e30", "authenticatorData": "", "signature": ""}
    })
    .to_string();
    assert_eq!(
        sign_in(&s, &origin, &forged).await.status(),
        StatusCode::BAD_REQUEST
    );

    // An operator cannot revoke a passkey; an admin can, and it signs in no more.
    let id = s.state().store.list_admin_passkeys().await.unwrap()[0]
        .id
        .clone();
    let path = format!("/console/passkeys/{id}/revoke");
    let resp = post(
        &s,
        &origin,
        &path,
        Some(&operator.cookie),
        &[("csrf", &operator.csrf)],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = post(
        &s,
        &origin,
        &path,
        Some(&admin.cookie),
        &[("csrf", &admin.csrf)],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let credential = assertion(&s, &origin, &passkeys).await;
    assert_eq!(
        sign_in(&s, &origin, &credential).await.status(),
        StatusCode::FORBIDDEN
    );
    let kinds: Vec<String> = s
        .state()
        .store
        .recent_audit_events(None, 50)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(
        kinds.contains(&"admin.passkey_revoked".to_owned()),
        "{kinds:?}"
    );
    let passkey_sign_ins = s
        .state()
        .store
        .recent_audit_events(None, 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "admin.signed_in" && e.detail.contains("\"method\":\"passkey\""))
        .count();
    assert_eq!(passkey_sign_ins, 0, "every sign-in above was refused");
    s.stop().await;
}

async fn passkeys_are_unavailable_on_an_ip_address(db: Db) {
    let s = TestServer::start(db).await;
    let origin = s.url("");
    let session = link_session(&s, &origin, Role::Admin).await;
    let page = browser()
        .get(s.url("/console/passkeys"))
        .header(COOKIE, &session.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Passkeys need the console on a domain name"),
        "{page}"
    );
    let resp = post(
        &s,
        &origin,
        "/console/passkeys/options",
        Some(&session.cookie),
        &[("csrf", session.csrf.as_str()), ("label", "laptop")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    let resp = post(&s, &origin, "/console/sign-in/passkey/options", None, &[]).await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    let error: Value = resp.json().await.unwrap();
    assert!(error["error"].as_str().unwrap().contains("domain name"));
    s.stop().await;
}
