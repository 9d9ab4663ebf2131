#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! The admin API (authenticated, problem+json errors), discovery, JWKS, OpenAPI, the
//! wallet apps' domain associations and the operations endpoints, over a real listener on
//! both databases.

use countersign_tests::{Db, TestServer, both_backends};
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(
    admin_api_manages_humans_and_agents,
    discovery_lists_every_ciba_field,
    operations_endpoints
);

/// The wallet apps' association files: absent until the configuration names an app, then
/// exactly the Digital Asset Links and app-site-association shapes the platforms read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_domain_vouches_for_the_configured_wallet_apps() {
    const FINGERPRINT: &str = "14:6d:e9:83:c5:73:06:50:d8:ee:b9:95:2f:34:fc:64:16:a0:83:42:e6:1d:be:a8:8a:04:96:b2:3f:cf:44:e5";
    let get = |s: &TestServer, path: &str| {
        let request = s.http.get(s.url(path));
        async move {
            let resp = request.send().await.unwrap();
            let status = resp.status();
            let kind = resp.headers()[reqwest::header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .to_owned();
            (status, kind, resp.json::<Value>().await.unwrap())
        }
    };
    let plain = TestServer::start(Db::Sqlite).await;
    for path in [
        "/.well-known/assetlinks.json",
        "/.well-known/apple-app-site-association",
    ] {
        let (status, kind, body) = get(&plain, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(kind, "application/problem+json", "{path}");
        assert!(
            body["detail"].as_str().unwrap().contains("wallet app"),
            "{body}"
        );
    }
    plain.stop().await;

    let s = TestServer::start_with(Db::Sqlite, |c| {
        c.wallet.android_apps = vec![countersign_server::config::AndroidApp {
            package_name: "app.countersign.wallet".into(),
            sha256_cert_fingerprints: vec![FINGERPRINT.into()],
        }];
        c.wallet.ios_app_ids = vec!["ABCDE12345.app.countersign.wallet".into()];
    })
    .await;
    let (status, kind, links) = get(&s, "/.well-known/assetlinks.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kind, "application/json");
    assert_eq!(
        links,
        json!([{
            "relation": ["delegate_permission/common.get_login_creds"],
            "target": {
                "namespace": "android_app",
                "package_name": "app.countersign.wallet",
                "sha256_cert_fingerprints": [FINGERPRINT.to_ascii_uppercase()],
            },
        }])
    );
    let (status, kind, association) = get(&s, "/.well-known/apple-app-site-association").await;
    assert_eq!(status, StatusCode::OK);
    // Served as JSON at the exact path, with no redirect and no extension: what Apple's
    // CDN fetches.
    assert_eq!(kind, "application/json");
    assert_eq!(
        association,
        json!({"webcredentials": {"apps": ["ABCDE12345.app.countersign.wallet"]}})
    );
    // The Android app's passkey origin joins the accepted ones.
    assert!(
        s.state().config.wallet.origins(&s.issuer()).contains(
            &"android:apk-key-hash:FG3pg8VzBlDY7rmVLzT8ZBagg0LmHb6oigSWsj_PROU".to_owned()
        )
    );
    s.stop().await;
}

async fn admin_api_manages_humans_and_agents(db: Db) {
    let s = TestServer::start(db).await;
    use countersign_server::admin::{Scope, create_key};
    let store = &s.state().store;
    let key = create_key(store, "test", Scope::Admin, None, 0, "test")
        .await
        .unwrap();
    let key = key.secret.expose().to_owned();
    // A SCIM token does not open the admin API, nor does an expired admin key.
    let scim = create_key(store, "idp", Scope::Scim, None, 0, "test")
        .await
        .unwrap();
    let expired = create_key(
        store,
        "old",
        Scope::Admin,
        Some(s.state().now_ms() + 1_000),
        0,
        "test",
    )
    .await
    .unwrap();
    s.clock.advance_ms(1_000);
    let api = |method: reqwest::Method, path: &str, auth: Option<&str>| {
        let mut req = s.http.request(method, s.url(path));
        if let Some(k) = auth {
            req = req.bearer_auth(k);
        }
        req
    };
    use reqwest::Method;

    let resp = api(Method::GET, "/admin/v1/humans", None)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    for wrong in ["csk_wrong", scim.secret.expose(), expired.secret.expose()] {
        let resp = api(Method::GET, "/admin/v1/humans", Some(wrong))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{wrong}");
    }

    let resp = api(Method::POST, "/admin/v1/humans", Some(&key))
        .json(&json!({"subject": "alice", "email": "alice@example.com", "name": "Alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let human: Value = resp.json().await.unwrap();
    assert_eq!(human["active"], true);
    let resp = api(Method::POST, "/admin/v1/humans", Some(&key))
        .json(&json!({"subject": "alice", "email": "other@example.com", "name": "A"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    let resp = api(Method::POST, "/admin/v1/humans", Some(&key))
        .json(&json!({"subject": "bob", "email": "not-an-email", "name": "Bob"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = resp.json().await.unwrap();
    assert_eq!(problem["status"], 422);
    assert!(problem["detail"].as_str().unwrap().contains("email"));
    let resp = api(Method::POST, "/admin/v1/humans", Some(&key))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = api(Method::POST, "/admin/v1/humans", Some(&key))
        .json(
            &json!({"subject": "bob", "email": "b@example.com", "name": "Bob", "superuser": true}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown fields are refused"
    );

    let resp = api(Method::POST, "/admin/v1/agents", Some(&key))
        .json(&json!({"client_id": "procurement", "owner": "alice", "auth_method": "client_secret_basic"}))
        .send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let created: Value = resp.json().await.unwrap();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(created["delivery_mode"], "poll");
    for bad in [
        json!({"client_id": "x", "owner": "nobody", "auth_method": "client_secret_basic"}),
        json!({"client_id": "x", "owner": "alice", "auth_method": "tls_client_auth"}),
        json!({"client_id": "x", "owner": "alice", "auth_method": "private_key_jwt"}),
        json!({"client_id": "x", "owner": "alice", "auth_method": "client_secret_basic", "delivery_mode": "ping"}),
        json!({"client_id": "bad id!", "owner": "alice", "auth_method": "client_secret_basic"}),
    ] {
        let resp = api(Method::POST, "/admin/v1/agents", Some(&key))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    let agents: Value = api(Method::GET, "/admin/v1/agents", Some(&key))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(agents.as_array().unwrap().len(), 1);
    assert!(
        agents[0].get("client_secret").is_none(),
        "secrets are never listed"
    );

    // The agent registered through the API works at the CIBA endpoint.
    let resp = s
        .http
        .post(s.url("/bc-authorize"))
        .basic_auth("procurement", Some(&secret))
        .form(&[("scope", "openid"), ("login_hint", "alice")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = api(
        Method::POST,
        "/admin/v1/agents/procurement/suspend",
        Some(&key),
    )
    .json(&serde_json::json!({"reason": "test"}))
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = s
        .http
        .post(s.url("/bc-authorize"))
        .basic_auth("procurement", Some(&secret))
        .form(&[("scope", "openid"), ("login_hint", "alice")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "unauthorized_client"
    );
    let resp = api(Method::POST, "/admin/v1/agents/nobody/resume", Some(&key))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = api(
        Method::POST,
        "/admin/v1/humans/alice/deactivate",
        Some(&key),
    )
    .json(&serde_json::json!({"reason": "left"}))
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let humans: Value = api(Method::GET, "/admin/v1/humans", Some(&key))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(humans[0]["active"], false);
    s.stop().await;
}

async fn discovery_lists_every_ciba_field(db: Db) {
    let s = TestServer::start(db).await;
    let d: Value = s.get_json("/.well-known/openid-configuration").await;
    assert_eq!(d["issuer"], s.issuer());
    assert_eq!(
        d["backchannel_authentication_endpoint"],
        s.url("/bc-authorize")
    );
    assert_eq!(
        d["backchannel_token_delivery_modes_supported"],
        json!(["poll", "ping", "push"])
    );
    assert_eq!(
        d["backchannel_authentication_request_signing_alg_values_supported"],
        json!(["ES256"])
    );
    assert_eq!(d["backchannel_user_code_parameter_supported"], true);
    assert!(
        d["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("urn:openid:params:grant-type:ciba"))
    );
    for method in [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ] {
        assert!(
            d["token_endpoint_auth_methods_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(method))
        );
    }
    assert_eq!(
        d["authorization_details_types_supported"],
        json!(["purchase_order"])
    );
    assert_eq!(d["dpop_signing_alg_values_supported"], json!(["ES256"]));
    assert_eq!(d["introspection_endpoint"], s.url("/introspect"));
    assert_eq!(d["revocation_endpoint"], s.url("/revoke"));
    let jwks: Value = s
        .http
        .get(d["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str()
        ),
        (Some("EC"), Some("P-256"), Some("ES256"))
    );
    assert!(key.get("d").is_none(), "no private material is published");
    s.stop().await;
}

async fn operations_endpoints(db: Db) {
    let s = TestServer::start(db).await;
    let resp = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers().contains_key("x-request-id"),
        "every response carries a request id"
    );
    assert_eq!(
        s.http.get(s.url("/readyz")).send().await.unwrap().status(),
        StatusCode::OK
    );
    let doc: Value = s.get_json("/openapi.json").await;
    assert!(doc["paths"]["/admin/v1/agents"].is_object());
    let metrics = s
        .http
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "countersign_http_requests_total",
        "countersign_http_request_duration_seconds_bucket",
        "countersign_ciba_pending_requests",
        "countersign_notification_outbox_depth",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    s.stop().await;
}
