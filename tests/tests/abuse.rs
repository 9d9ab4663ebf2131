#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! What an attacker repeats, floods or forges gets the protocol's refusal, and costs the
//! server nothing an anonymous caller can pile up: rate limits with `Retry-After`
//! (`slow_down` at the token endpoint), a cap on step-ups waiting for one approver
//! (traced), limited `user_code` guesses, developer approvals only from loopback without
//! a proxy, no replay-cache writes for strangers' proofs, absurd client-assertion times
//! refused, and status lists served from a cache until they change.

use countersign_jose::{SigningKeyPair, random_b64url};
use countersign_tests::{CIBA_GRANT, Db, TestServer, assert_oauth_error, both_backends};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(
    clients_and_anonymous_sources_are_rate_limited,
    a_flood_of_step_ups_for_one_approver_is_refused_and_traced,
    user_code_guesses_are_limited,
    developer_approvals_only_from_loopback_without_a_proxy,
    strangers_proofs_write_nothing_and_absurd_assertion_times_are_refused,
    status_lists_are_served_from_a_cache_until_they_change,
);

fn retry_after(headers: &reqwest::header::HeaderMap) -> u64 {
    headers["retry-after"].to_str().unwrap().parse().unwrap()
}

async fn clients_and_anonymous_sources_are_rate_limited(db: Db) {
    let s = TestServer::start_with(db, |c| {
        c.rate_limits.per_client_per_sec = 1.0;
        c.rate_limits.per_client_burst = 2.0;
        c.rate_limits.per_source_per_sec = 1.0;
        c.rate_limits.per_source_burst = 2.0;
    })
    .await;
    s.human("alice").await;
    let agent = s.agent("busy", "alice", "client_secret_basic").await;
    let params = [("scope", "openid"), ("login_hint", "alice")];
    // The burst passes; the next is 429 with Retry-After and slow_down.
    for _ in 0..2 {
        let (status, body) = s.bc_authorize(&agent, &params).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let resp = s
        .http
        .post(s.url("/bc-authorize"))
        .basic_auth(&agent.client_id, agent.secret.as_deref())
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(resp.headers()) >= 1);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "slow_down");
    // At the token endpoint the same limit is CIBA's slow_down (400).
    let resp = s
        .http
        .post(s.url("/token"))
        .basic_auth(&agent.client_id, agent.secret.as_deref())
        .form(&[("grant_type", CIBA_GRANT), ("auth_req_id", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(retry_after(resp.headers()) >= 1);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "slow_down");
    // Another client is not held up by this one.
    let other = s.agent("calm", "alice", "client_secret_basic").await;
    assert_eq!(s.bc_authorize(&other, &params).await.0, StatusCode::OK);
    // A second later the busy client may go on.
    s.clock.advance_ms(1_000);
    assert_eq!(s.bc_authorize(&agent, &params).await.0, StatusCode::OK);

    // An anonymous caller of an unauthenticated endpoint: limited by source address.
    let enroll = || {
        s.http
            .post(s.url("/wallet/v1/enrollments"))
            .json(&json!({"invitation": random_b64url(32)}))
            .send()
    };
    for _ in 0..2 {
        assert_eq!(enroll().await.unwrap().status(), StatusCode::FORBIDDEN);
    }
    let flooded = enroll().await.unwrap();
    assert_eq!(flooded.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(flooded.headers()) >= 1);
    assert_eq!(
        flooded.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(
        flooded.json::<Value>().await.unwrap()["code"],
        "rate_limited"
    );
    s.stop().await;
}

async fn a_flood_of_step_ups_for_one_approver_is_refused_and_traced(db: Db) {
    let s = TestServer::start_with(db, |c| c.rate_limits.pending_per_approver = 3).await;
    s.human("alice").await;
    let agent = s.agent("pest", "alice", "client_secret_basic").await;
    let mut waiting = Vec::new();
    for _ in 0..3 {
        waiting.push(s.start_request(&agent, "alice").await);
    }
    let (status, body) = s
        .bc_authorize(&agent, &[("scope", "openid"), ("login_hint", "alice")])
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "slow_down");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("alice")
    );
    // Traced, for admins to see who was flooded by which agent.
    let admin = s.admin_api().await;
    let (_, events) = admin
        .call(Method::GET, "/admin/v1/audit?limit=20", None)
        .await;
    let flood = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "requests.flood_refused")
        .expect("the refusal is in the trace");
    assert_eq!(flood["subject"], "human:alice");
    assert_eq!(flood["detail"]["agent"], "pest");
    assert_eq!(flood["detail"]["pending"], 3);
    // Another agent may still ask alice; once one request is decided, so may this one.
    let other = s.agent("fine", "alice", "client_secret_basic").await;
    s.start_request(&other, "alice").await;
    assert_eq!(
        s.dev_decide(&waiting[0], false).await,
        StatusCode::NO_CONTENT
    );
    s.start_request(&agent, "alice").await;
    s.stop().await;
}

async fn user_code_guesses_are_limited(db: Db) {
    let s = TestServer::start_with(db, |c| c.rate_limits.user_code_attempts = 3).await;
    s.human_with_code("alice", Some("246810")).await;
    let agent = s.agent("guesser", "alice", "client_secret_basic").await;
    let ask = |code: &'static str| {
        let (s, agent) = (&s, &agent);
        async move {
            s.bc_authorize(
                agent,
                &[
                    ("scope", "openid"),
                    ("login_hint", "alice"),
                    ("user_code", code),
                ],
            )
            .await
        }
    };
    for wrong in ["000000", "111111", "222222"] {
        assert_oauth_error(
            ask(wrong).await,
            StatusCode::BAD_REQUEST,
            "invalid_user_code",
        );
    }
    // Out of guesses: even the right code waits (else guessing would go on).
    assert_oauth_error(
        ask("246810").await,
        StatusCode::TOO_MANY_REQUESTS,
        "slow_down",
    );
    // A minute later one more guess is allowed, and the right code passes.
    s.clock.advance_ms(60_000);
    let (status, body) = ask("246810").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    s.stop().await;
}

async fn developer_approvals_only_from_loopback_without_a_proxy(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    let agent = s.agent("dev", "alice", "client_secret_basic").await;
    let id = s.start_request(&agent, "alice").await;
    for header in ["x-forwarded-for", "forwarded", "x-real-ip"] {
        let resp = s
            .http
            .post(s.url(&format!("/dev/approvals/{id}/approve")))
            .header(header, "203.0.113.9")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{header}");
    }
    let row = s.auth_request(&id).await;
    assert_eq!(row.status.as_str(), "pending");
    assert_eq!(s.dev_decide(&id, true).await, StatusCode::NO_CONTENT);
    s.stop().await;
}

async fn seen_jtis(s: &TestServer) -> i64 {
    use sqlx::Row as _;
    let url = s.state().config.database_url.clone();
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let row = sqlx::query("SELECT COUNT(*) AS n FROM seen_jtis")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    row.try_get("n").unwrap()
}

async fn strangers_proofs_write_nothing_and_absurd_assertion_times_are_refused(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    let before = seen_jtis(&s).await;
    // A well-formed proof by a key no device is enrolled with: refused, nothing stored.
    for _ in 0..20 {
        let stranger = SigningKeyPair::generate();
        let url = s.url("/wallet/v1/requests");
        let proof = s.dpop_proof_for(&stranger, "GET", &url);
        let resp = s.http.get(&url).header("dpop", proof).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    // ...nor at enrollment with an unknown invitation.
    let url = s.url("/wallet/v1/enrollments/complete");
    let stranger = SigningKeyPair::generate();
    let resp = s
        .http
        .post(&url)
        .header("dpop", s.dpop_proof_for(&stranger, "POST", &url))
        .json(
            &json!({"invitation": random_b64url(32), "device_key": stranger.public_jwk(),
            "passkey": {}, "platform": "desktop", "push_channel": "live"}),
        )
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error());
    assert_eq!(
        seen_jtis(&s).await,
        before,
        "strangers filled the replay cache"
    );

    // A client assertion with absurd times is invalid_client, never a 500.
    let agent = s.agent("jwt", "alice", "private_key_jwt").await;
    for (iat, exp) in [
        (json!(-9.0e18), json!(9.0e18)),
        (json!(0), json!(9.2e18)),
        (json!(s.now_s()), json!(1.0e300)),
        (json!(-1.0e300), json!(s.now_s() + 30)),
    ] {
        let assertion = agent.assertion_claims(json!({
            "iss": "jwt", "sub": "jwt", "aud": s.issuer(), "iat": iat, "exp": exp,
            "jti": random_b64url(12)
        }));
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
                ("client_assertion", &assertion),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::UNAUTHORIZED,
            "iat {iat} exp {exp}"
        );
        assert_eq!(
            resp.json::<Value>().await.unwrap()["error"],
            "invalid_client"
        );
    }
    s.stop().await;
}

async fn status_lists_are_served_from_a_cache_until_they_change(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    let agent = s.agent("agent", "alice", "client_secret_basic").await;
    let tokens = s.approved_tokens(&agent, "alice", &[], None).await;
    let claims = countersign_tests::jwt_claims(tokens["access_token"].as_str().unwrap());
    let uri = claims["status"]["status_list"]["uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let fetch = || async { s.http.get(&uri).send().await.unwrap().text().await.unwrap() };
    let first = fetch().await;
    // Signed once: the same bytes while nothing changed (a new signature would differ).
    assert_eq!(fetch().await, first);
    assert_eq!(fetch().await, first);
    // A revocation shows at once.
    let jti = claims["jti"].as_str().unwrap();
    let admin = s.admin_api().await;
    let (status, _) = admin
        .call(
            Method::POST,
            &format!("/admin/v1/credentials/{jti}/revoke"),
            Some(json!({"reason": "test"})),
        )
        .await;
    assert!(status.is_success());
    assert_ne!(fetch().await, first);
    s.stop().await;
}
