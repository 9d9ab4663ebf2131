#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! Every error the backchannel and token endpoints define, and bad input, over a real
//! listener on both databases: the standard OAuth error JSON and status, never a 500.

use countersign_jose::random_b64url;
use countersign_tests::{
    Agent, CIBA_GRANT, Db, TestServer, both_backends, new_agent, unsigned_jwt,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(
    backchannel_errors,
    client_authentication_errors,
    signed_request_rules,
    token_endpoint_errors,
    malformed_requests
);

#[track_caller]
fn expect(result: (StatusCode, Value), status: StatusCode, code: &str) {
    let (got_status, body) = result;
    assert_eq!(
        (got_status, body["error"].as_str()),
        (status, Some(code)),
        "{body}"
    );
    assert!(body["error_description"].is_string(), "{body}");
}

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

    expect(
        s.bc_authorize(&a, &[("login_hint", "alice")]).await,
        BAD,
        "invalid_scope",
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
    countersign_server::directory::set_agent_enabled(&s.state().store, "strict", false)
        .await
        .unwrap();
    expect(
        s.bc_authorize(&strict, &ok(&[("user_code", "x")])).await,
        BAD,
        "unauthorized_client",
    );
    countersign_server::directory::set_human_active(&s.state().store, "alice", false)
        .await
        .unwrap();
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

async fn signed_request_rules(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    let fapi = s
        .agent_with(
            countersign_server::directory::NewAgent {
                require_signed_request: true,
                ..new_agent("fapi", "alice", "private_key_jwt")
            },
            false,
        )
        .await;
    let now = s.now_s();
    let request = |jti: &str, extra: Value| {
        let mut claims = json!({"iss": "fapi", "aud": s.issuer(), "iat": now, "nbf": now, "exp": now + 300, "jti": jti,
            "scope": "openid", "login_hint": "alice", "binding_message": "W4SCT", "requested_expiry": 120,
            "authorization_details": [{"type": "purchase_order", "vendor": "Acme", "amount": 5, "currency": "EUR"}]});
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        fapi.assertion_claims(claims)
    };
    let (status, body) = s
        .bc_authorize(&fapi, &[("request", &request("r1", json!({})))])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["expires_in"], 120);
    expect(
        s.bc_authorize(&fapi, &[("request", &request("r1", json!({})))])
            .await,
        BAD,
        "invalid_request",
    ); // replay
    expect(
        s.bc_authorize(&fapi, &[("scope", "openid"), ("login_hint", "alice")])
            .await,
        BAD,
        "invalid_request",
    ); // unsigned
    expect(
        s.bc_authorize(
            &fapi,
            &[
                ("request", &request("r2", json!({}))),
                ("login_hint", "alice"),
            ],
        )
        .await,
        BAD,
        "invalid_request",
    );
    expect(
        s.bc_authorize(
            &fapi,
            &[(
                "request",
                &request("r3", json!({"aud": "https://x.example"})),
            )],
        )
        .await,
        BAD,
        "invalid_request",
    );
    expect(
        s.bc_authorize(
            &fapi,
            &[("request", &request("r4", json!({"exp": now + 7200})))],
        )
        .await,
        BAD,
        "invalid_request",
    );
    expect(
        s.bc_authorize(
            &fapi,
            &[(
                "request",
                &request("r5", json!({"exp": now - 100, "nbf": now - 200})),
            )],
        )
        .await,
        BAD,
        "invalid_request",
    );
    let mut no_nbf: Value = countersign_tests::jwt_claims(&request("r6", json!({})));
    no_nbf.as_object_mut().unwrap().remove("nbf");
    expect(
        s.bc_authorize(&fapi, &[("request", &fapi.assertion_claims(no_nbf))])
            .await,
        BAD,
        "invalid_request",
    );
    let none = unsigned_jwt(
        json!({"alg": "none"}),
        countersign_tests::jwt_claims(&request("r7", json!({}))),
    );
    expect(
        s.bc_authorize(&fapi, &[("request", &none)]).await,
        BAD,
        "invalid_request",
    );
    // Errors inside the object are the same as outside it.
    expect(
        s.bc_authorize(
            &fapi,
            &[("request", &request("r8", json!({"scope": "profile"})))],
        )
        .await,
        BAD,
        "invalid_scope",
    );
    expect(
        s.bc_authorize(
            &fapi,
            &[("request", &request("r9", json!({"login_hint": "nobody"})))],
        )
        .await,
        BAD,
        "unknown_user_id",
    );
    s.stop().await;
}

async fn token_endpoint_errors(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    let a = s.agent("a", "alice", "client_secret_basic").await;
    let b = s.agent("b", "alice", "client_secret_basic").await;

    expect(s.poll(&a, "no-such-request").await, BAD, "invalid_grant");
    let id = s.start_request(&a, "alice").await;
    expect(s.poll(&b, &id).await, BAD, "invalid_grant"); // another client's request
    expect(s.poll(&a, &id).await, BAD, "authorization_pending");
    expect(s.poll(&a, &id).await, BAD, "slow_down");
    // Each slow_down raises the interval by 5 s: 1 s is no longer enough.
    s.clock.advance_ms(1_500);
    expect(s.poll(&a, &id).await, BAD, "slow_down");
    s.clock.advance_ms(11_001);
    expect(s.poll(&a, &id).await, BAD, "authorization_pending");

    let denied = s.start_request(&a, "alice").await;
    assert_eq!(s.dev_decide(&denied, false).await, StatusCode::NO_CONTENT);
    expect(s.poll(&a, &denied).await, BAD, "access_denied");

    let (_, body) = s
        .bc_authorize(
            &a,
            &[
                ("scope", "openid"),
                ("login_hint", "alice"),
                ("requested_expiry", "30"),
            ],
        )
        .await;
    let short = body["auth_req_id"].as_str().unwrap().to_owned();
    s.clock.advance_ms(31_000);
    expect(s.poll(&a, &short).await, BAD, "expired_token");
    assert_eq!(
        s.dev_decide(&short, true).await,
        StatusCode::CONFLICT,
        "expired requests cannot be approved"
    );

    let (status, body) = s
        .post_as(
            &a,
            "/token",
            &[("grant_type", "authorization_code"), ("code", "x")],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (BAD, Some("unsupported_grant_type"))
    );
    expect(
        s.post_as(&a, "/token", &[("auth_req_id", "x")]).await,
        BAD,
        "invalid_request",
    );
    expect(
        s.post_as(&a, "/token", &[("grant_type", CIBA_GRANT)]).await,
        BAD,
        "invalid_request",
    );

    // Push-mode clients are not allowed to poll; disabled clients are refused.
    let push = s
        .agent_with(
            countersign_server::directory::NewAgent {
                delivery_mode: Some("push".into()),
                notification_endpoint: Some("http://127.0.0.1:9/cb".into()),
                ..new_agent("pusher", "alice", "client_secret_basic")
            },
            false,
        )
        .await;
    expect(s.poll(&push, "anything").await, BAD, "unauthorized_client");
    countersign_server::directory::set_agent_enabled(&s.state().store, "b", false)
        .await
        .unwrap();
    expect(s.poll(&b, &id).await, BAD, "unauthorized_client");
    s.stop().await;
}

async fn malformed_requests(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    let a = s.agent("a", "alice", "client_secret_basic").await;
    let secret = a.secret.clone();
    let post = |body: Vec<u8>, content_type: &'static str| {
        let s = &s;
        let secret = secret.clone();
        async move {
            let resp = s
                .http
                .post(s.url("/bc-authorize"))
                .basic_auth("a", secret.as_deref())
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = resp.status();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let form = "application/x-www-form-urlencoded";
    expect(
        post(b"scope=openid&login_hint=alice&scope=openid".to_vec(), form).await,
        BAD,
        "invalid_request",
    );
    expect(
        post(
            br#"{"scope":"openid","login_hint":"alice"}"#.to_vec(),
            "application/json",
        )
        .await,
        BAD,
        "invalid_request",
    );
    expect(
        post(b"scope=openid&login_hint=alice".to_vec(), "text/plain").await,
        BAD,
        "invalid_request",
    );
    expect(
        post(vec![0xff, 0xfe, b'=', 0x80], form).await,
        BAD,
        "invalid_scope",
    );
    let huge = format!(
        "scope=openid&login_hint=alice&binding_message={}",
        "a".repeat(100_000)
    );
    expect(
        post(huge.into_bytes(), form).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_request",
    );
    let resp = s
        .http
        .post(s.url("/token"))
        .basic_auth("a", Some("%%%"))
        .form(&[("grant_type", CIBA_GRANT)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = s
        .http
        .post(s.url("/token"))
        .header("authorization", "Basic ???")
        .form(&[("grant_type", CIBA_GRANT)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = s.http.get(s.url("/no/such/thing")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let resp = s
        .http
        .post(s.url("/dev/approvals/nope/approve"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    s.stop().await;
}
