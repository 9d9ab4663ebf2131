#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! Errors of the backchannel authentication endpoint (CIBA Core §13) and of client
//! authentication, over a real listener on both databases: the standard OAuth error JSON
//! and status, never a 500.

use countersign_jose::random_b64url;
use countersign_tests::assert_oauth_error as expect;
use countersign_tests::{Agent, Db, TestServer, both_backends, new_agent, unsigned_jwt};
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(backchannel_errors, client_authentication_errors);

const BAD: StatusCode = StatusCode::BAD_REQUEST;

async fn backchannel_errors(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    s.human_with_code("carol", Some("4321")).await;
    let a = s.agent("a", "alice", "client_secret_basic").await;
    let ok = |extra: &[(&'static str, &'static str)]| {
        let mut p = vec![("scope", "openid"), ("login_hint", "alice")];
        p.extend_from_slice(extra);
        p
    };

    // A missing scope is a missing required parameter (RFC 6749 §5.2), not a bad one.
    expect(
        s.bc_authorize(&a, &[("login_hint", "alice")]).await,
        BAD,
        "invalid_request",
    );
    expect(
        s.bc_authorize(&a, &[("scope", "email"), ("login_hint", "alice")])
            .await,
        BAD,
        "invalid_scope",
    );
    expect(
        s.bc_authorize(&a, &[("scope", "openid payroll"), ("login_hint", "alice")])
            .await,
        BAD,
        "invalid_scope",
    );
    expect(
        s.bc_authorize(&a, &[("scope", "openid")]).await,
        BAD,
        "invalid_request",
    );
    expect(
        s.bc_authorize(&a, &ok(&[("id_token_hint", "x")])).await,
        BAD,
        "invalid_request",
    );
    expect(
        s.bc_authorize(&a, &[("scope", "openid"), ("id_token_hint", "not.a.jwt")])
            .await,
        BAD,
        "invalid_request",
    );
    expect(
        s.bc_authorize(&a, &[("scope", "openid"), ("login_hint", "nobody")])
            .await,
        BAD,
        "unknown_user_id",
    );
    expect(
        s.bc_authorize(&a, &ok(&[("requested_expiry", "-5")])).await,
        BAD,
        "invalid_request",
    );
    let long = "x".repeat(129);
    let long: &'static str = Box::leak(long.into_boxed_str());
    expect(
        s.bc_authorize(&a, &ok(&[("binding_message", long)])).await,
        BAD,
        "invalid_binding_message",
    );
    expect(
        s.bc_authorize(&a, &ok(&[("binding_message", "line\nbreak")]))
            .await,
        BAD,
        "invalid_binding_message",
    );
    for details in [
        r#"[{"type":"purchase_order","vendor":"Acme","amount":-1,"currency":"USD"}]"#,
        r#"[{"type":"purchase_order","vendor":"Acme","amount":10,"currency":"dollars"}]"#,
        r#"[{"type":"wire_transfer"}]"#,
        r#"{"type":"purchase_order"}"#,
        r#"[]"#,
        r#"[{"type":"#,
    ] {
        expect(
            s.bc_authorize(&a, &ok(&[("authorization_details", details)]))
                .await,
            BAD,
            "invalid_authorization_details",
        );
    }

    // requested_expiry is honoured up to the configured maximum.
    let (_, body) = s
        .bc_authorize(&a, &ok(&[("requested_expiry", "120")]))
        .await;
    assert_eq!(body["expires_in"], 120);
    let (_, body) = s
        .bc_authorize(&a, &ok(&[("requested_expiry", "999999")]))
        .await;
    assert_eq!(body["expires_in"], 3600);

    // user_code: required because carol set one.
    expect(
        s.bc_authorize(&a, &[("scope", "openid"), ("login_hint", "carol")])
            .await,
        BAD,
        "missing_user_code",
    );
    expect(
        s.bc_authorize(
            &a,
            &[
                ("scope", "openid"),
                ("login_hint", "carol"),
                ("user_code", "0000"),
            ],
        )
        .await,
        BAD,
        "invalid_user_code",
    );
    let (status, _) = s
        .bc_authorize(
            &a,
            &[
                ("scope", "openid"),
                ("login_hint", "carol"),
                ("user_code", "4321"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // ... or because the client is registered to send one.
    let strict = s
        .agent_with(
            countersign_server::directory::NewAgent {
                user_code_required: true,
                ..new_agent("strict", "alice", "client_secret_basic")
            },
            false,
        )
        .await;
    expect(
        s.bc_authorize(&strict, &ok(&[])).await,
        BAD,
        "missing_user_code",
    );
    expect(
        s.bc_authorize(&strict, &ok(&[("user_code", "1234")])).await,
        BAD,
        "invalid_user_code",
    );

    // Ping/push clients must send a client_notification_token.
    let ping = s
        .agent_with(
            countersign_server::directory::NewAgent {
                delivery_mode: Some("ping".into()),
                notification_endpoint: Some("http://127.0.0.1:9/cb".into()),
                ..new_agent("pinger", "alice", "client_secret_basic")
            },
            false,
        )
        .await;
    expect(
        s.bc_authorize(&ping, &ok(&[])).await,
        BAD,
        "invalid_request",
    );

    // login_hint_token: signed by the client's key; expired ones have their own code.
    let k = s.agent("keyed", "alice", "private_key_jwt").await;
    let now = s.now_s();
    let expired = k.assertion_claims(
        json!({"sub_id": {"format": "email", "email": "alice@example.com"}, "exp": now - 10}),
    );
    expect(
        s.bc_authorize(&k, &[("scope", "openid"), ("login_hint_token", &expired)])
            .await,
        BAD,
        "expired_login_hint_token",
    );
    let fresh = k.assertion_claims(
        json!({"sub_id": {"format": "email", "email": "alice@example.com"}, "exp": now + 60}),
    );
    let (status, body) = s
        .bc_authorize(&k, &[("scope", "openid"), ("login_hint_token", &fresh)])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stranger = k.assertion_claims(
        json!({"sub_id": {"format": "opaque", "id": "mallory"}, "exp": now + 60}),
    );
    expect(
        s.bc_authorize(&k, &[("scope", "openid"), ("login_hint_token", &stranger)])
            .await,
        BAD,
        "unknown_user_id",
    );
    expect(
        s.bc_authorize(&a, &[("scope", "openid"), ("login_hint_token", &fresh)])
            .await,
        BAD,
        "invalid_request",
    );

    // Disabled client: unauthorized_client. Inactive user: access_denied (403).
    let (store, now) = (&s.state().store, s.state().now_ms());
    countersign_server::directory::offboarding::suspend_agent(store, now, "strict", "test", "test")
        .await
        .unwrap();
    expect(
        s.bc_authorize(&strict, &ok(&[("user_code", "x")])).await,
        BAD,
        "unauthorized_client",
    );
    s.deactivate_only("alice").await;
    expect(
        s.bc_authorize(&a, &ok(&[])).await,
        StatusCode::FORBIDDEN,
        "access_denied",
    );
    s.stop().await;
}

async fn client_authentication_errors(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    let basic = s.agent("basic", "alice", "client_secret_basic").await;
    let jwt = s.agent("jwt", "alice", "private_key_jwt").await;
    let params = [("scope", "openid"), ("login_hint", "alice")];
    let unauthorized = StatusCode::UNAUTHORIZED;

    let wrong = Agent {
        secret: Some("wrong".into()),
        ..s.agent("b2", "alice", "client_secret_basic").await
    };
    let resp = s
        .http
        .post(s.url("/bc-authorize"))
        .basic_auth("b2", Some("wrong"))
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), unauthorized);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    expect(
        s.bc_authorize(&wrong, &params).await,
        unauthorized,
        "invalid_client",
    );
    let ghost = Agent {
        client_id: "ghost".into(),
        ..Agent {
            secret: basic.secret.clone(),
            client_id: String::new(),
            key: None,
            method: "client_secret_basic".into(),
            dpop: countersign_jose::SigningKeyPair::generate(),
        }
    };
    expect(
        s.bc_authorize(&ghost, &params).await,
        unauthorized,
        "invalid_client",
    );
    // Registered for Basic, authenticating with POST: refused.
    let as_post = Agent {
        method: "client_secret_post".into(),
        client_id: basic.client_id.clone(),
        secret: basic.secret.clone(),
        key: None,
        dpop: countersign_jose::SigningKeyPair::generate(),
    };
    expect(
        s.bc_authorize(&as_post, &params).await,
        unauthorized,
        "invalid_client",
    );
    // No credentials at all.
    let resp = s
        .http
        .post(s.url("/bc-authorize"))
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), unauthorized);
    // Two methods at once.
    let resp = s
        .http
        .post(s.url("/bc-authorize"))
        .basic_auth("basic", basic.secret.as_deref())
        .form(&[
            ("scope", "openid"),
            ("login_hint", "alice"),
            ("client_secret", "x"),
            ("client_id", "basic"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), BAD);

    let aud = s.issuer();
    let now = s.now_s();
    let assertion_with = |claims: Value| jwt.assertion_claims(claims);
    let send = |assertion: String| {
        let s = &s;
        async move {
            let resp = s
                .http
                .post(s.url("/bc-authorize"))
                .form(&[
                    ("scope", "openid"),
                    ("login_hint", "alice"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", assertion.as_str()),
                ])
                .send()
                .await
                .unwrap();
            let status = resp.status();
            (status, resp.json::<Value>().await.unwrap())
        }
    };
    let base = |jti: &str| json!({"iss": "jwt", "sub": "jwt", "aud": aud, "iat": now, "exp": now + 60, "jti": jti});
    let (status, body) = send(assertion_with(base("ok-1"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    expect(
        send(assertion_with(base("ok-1"))).await,
        unauthorized,
        "invalid_client",
    ); // replay
    let mut expired = base("e");
    expired["exp"] = json!(now - 120);
    expired["iat"] = json!(now - 180);
    expect(
        send(assertion_with(expired)).await,
        unauthorized,
        "invalid_client",
    );
    let mut wrong_aud = base("w");
    wrong_aud["aud"] = json!("https://someone-else.example");
    expect(
        send(assertion_with(wrong_aud)).await,
        unauthorized,
        "invalid_client",
    );
    let mut no_jti = base("x");
    no_jti.as_object_mut().unwrap().remove("jti");
    expect(
        send(assertion_with(no_jti)).await,
        unauthorized,
        "invalid_client",
    );
    let mut wrong_sub = base("s");
    wrong_sub["sub"] = json!("basic");
    expect(
        send(assertion_with(wrong_sub)).await,
        unauthorized,
        "invalid_client",
    );
    let mut too_long = base("l");
    too_long["exp"] = json!(now + 86_400);
    expect(
        send(assertion_with(too_long)).await,
        unauthorized,
        "invalid_client",
    );
    for alg in ["none", "HS256", "RS256"] {
        let forged = unsigned_jwt(json!({"alg": alg, "typ": "JWT"}), base(&random_b64url(8)));
        expect(send(forged).await, unauthorized, "invalid_client");
    }
    // Signed by a key that is not the client's.
    let impostor = s.agent("impostor", "alice", "private_key_jwt").await;
    expect(
        send(impostor.assertion_claims(base("i"))).await,
        unauthorized,
        "invalid_client",
    );
    s.stop().await;
}
