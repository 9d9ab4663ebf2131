#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! Signed authentication requests, token endpoint errors (CIBA Core §11) and malformed
//! input, over a real listener on both databases: the standard OAuth error JSON and
//! status, never a 500.

use countersign_jose::{SigningKeyPair, random_b64url, thumbprint};
use countersign_tests::assert_oauth_error as expect;
use countersign_tests::{
    CIBA_GRANT, Db, TestServer, both_backends, jwt_claims, new_agent, unsigned_jwt,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(
    signed_request_rules,
    token_endpoint_errors,
    malformed_requests,
    credentials_are_bound_to_the_agent,
);

const BAD: StatusCode = StatusCode::BAD_REQUEST;

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
    let (store, now) = (&s.state().store, s.state().now_ms());
    countersign_server::directory::offboarding::suspend_agent(store, now, "b", "test", "test")
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
    // Undecodable bytes leave no scope: a missing parameter.
    expect(
        post(vec![0xff, 0xfe, b'=', 0x80], form).await,
        BAD,
        "invalid_request",
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

/// DPoP is required for every credential (RFC 9449 §5.2 `dpop_bound_access_tokens`)
/// unless the agent was registered bearer-only; a request may name the key up front
/// (`dpop_jkt`, RFC 9449 §10), and then only that key gets the credential.
async fn credentials_are_bound_to_the_agent(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    let a = s.agent("a", "alice", "client_secret_basic").await;
    let token_request = |id: &str| {
        vec![
            ("grant_type", CIBA_GRANT.to_owned()),
            ("auth_req_id", id.to_owned()),
        ]
    };
    let post = |agent, id: String, proof: Option<String>| {
        let s = &s;
        async move {
            let params = token_request(&id);
            let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            s.post_as_with(agent, "/token", &params, proof).await
        }
    };

    // A normal client without a proof: refused, and nothing is issued.
    let id = s.start_request(&a, "alice").await;
    assert_eq!(s.dev_decide(&id, true).await, StatusCode::NO_CONTENT);
    s.clock.advance_ms(1_000);
    expect(post(&a, id.clone(), None).await, BAD, "invalid_dpop_proof");
    let row = s.auth_request(&id).await;
    assert_eq!(row.status.as_str(), "approved", "no credential was issued");
    // With its proof it gets a DPoP-bound credential.
    let (status, tokens) = s.poll(&a, &id).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "DPoP");
    let claims = jwt_claims(tokens["access_token"].as_str().unwrap());
    let jkt = thumbprint(&a.dpop.public_jwk()).unwrap();
    assert_eq!(claims["cnf"]["jkt"], jkt.as_str());
    assert_eq!(claims["credentialSubject"]["binding"], "dpop");

    // dpop_jkt names the key: a proof by another key gets nothing, the named key does.
    let (status, body) = s
        .bc_authorize(
            &a,
            &[
                ("scope", "openid"),
                ("login_hint", "alice"),
                ("dpop_jkt", &jkt),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let named = body["auth_req_id"].as_str().unwrap().to_owned();
    assert_eq!(s.dev_decide(&named, true).await, StatusCode::NO_CONTENT);
    s.clock.advance_ms(1_000);
    let stranger = SigningKeyPair::generate();
    let wrong = s.dpop_proof(&stranger, &s.url("/token"), &random_b64url(12));
    expect(
        post(&a, named.clone(), Some(wrong)).await,
        BAD,
        "invalid_dpop_proof",
    );
    s.clock.advance_ms(1_000);
    let (status, tokens) = s.poll(&a, &named).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    expect(
        s.bc_authorize(
            &a,
            &[
                ("scope", "openid"),
                ("login_hint", "alice"),
                ("dpop_jkt", "not-a-thumbprint"),
            ],
        )
        .await,
        BAD,
        "invalid_request",
    );

    // A bearer-only agent needs no proof, and its credential says it is unbound.
    let bearer = s
        .agent_with(
            countersign_server::directory::NewAgent {
                bearer_only: true,
                ..new_agent("bearer", "alice", "client_secret_basic")
            },
            false,
        )
        .await;
    let id = s.start_request(&bearer, "alice").await;
    assert_eq!(s.dev_decide(&id, true).await, StatusCode::NO_CONTENT);
    s.clock.advance_ms(1_000);
    let (status, tokens) = post(&bearer, id, None).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    let claims = jwt_claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(claims["credentialSubject"]["binding"], "bearer");
    assert!(claims.get("cnf").is_none());
    // The admin API says so too (RFC 9449 client metadata).
    let admin = s.admin_api().await;
    let (_, agents) = admin
        .call(reqwest::Method::GET, "/admin/v1/agents", None)
        .await;
    let of = |id: &str| {
        agents
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["client_id"] == id)
            .unwrap()["dpop_bound_access_tokens"]
            .clone()
    };
    assert_eq!((of("a"), of("bearer")), (json!(true), json!(false)));

    // Ping and push notification endpoints: https, or http on loopback only.
    for (endpoint, ok) in [
        ("http://agent.example/cb", false),
        ("https://agent.example/cb", true),
        ("http://127.0.0.1:9/cb", true),
    ] {
        let (status, body) = admin
            .call(
                reqwest::Method::POST,
                "/admin/v1/agents",
                Some(json!({"client_id": format!("ping-{}", random_b64url(4).to_lowercase()), "owner": "alice",
                    "auth_method": "client_secret_basic", "delivery_mode": "ping",
                    "notification_endpoint": endpoint})),
            )
            .await;
        assert_eq!(status.is_success(), ok, "{endpoint}: {status} {body}");
    }
    s.stop().await;
}
