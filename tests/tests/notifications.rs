#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! Ping and push modes against a local HTTP receiver standing in for the agent's
//! notification endpoint, on both databases: payloads, bearer token, retries with backoff,
//! and delivery that survives a restart while the receiver is down.

use countersign_jose::{JwkSet, UnverifiedJws, sha256_half_b64url, thumbprint};
use countersign_server::directory::NewAgent;
use countersign_tests::receiver::Receiver;
use countersign_tests::{Db, TestServer, both_backends, new_agent};
use reqwest::StatusCode;
use serde_json::Value;

both_backends!(
    ping_mode_notifies_then_client_fetches_tokens,
    push_mode_delivers_tokens_and_denials,
    failed_deliveries_are_retried_with_backoff,
    deliveries_survive_a_restart_while_the_receiver_is_down,
    expired_requests_are_announced_once_to_ping_and_push_clients
);

fn mode_agent(client_id: &str, mode: &str, endpoint: String) -> NewAgent {
    NewAgent {
        delivery_mode: Some(mode.into()),
        notification_endpoint: Some(endpoint),
        ..new_agent(client_id, "alice", "client_secret_basic")
    }
}

async fn ping_mode_notifies_then_client_fetches_tokens(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    let rx = Receiver::start("127.0.0.1:0".parse().unwrap(), &[]).await;
    let agent = s
        .agent_with(mode_agent("pinger", "ping", rx.url()), false)
        .await;
    let (status, body) = s
        .bc_authorize(
            &agent,
            &[
                ("scope", "openid"),
                ("login_hint", "alice"),
                ("client_notification_token", "ping-secret-123"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["interval"], 1, "ping clients get an interval too");
    let id = body["auth_req_id"].as_str().unwrap().to_owned();
    assert_eq!(s.dev_decide(&id, true).await, StatusCode::NO_CONTENT);

    let got = rx.wait_for(1).await;
    assert_eq!(got[0].bearer.as_deref(), Some("ping-secret-123"));
    assert_eq!(
        got[0].body,
        serde_json::json!({"auth_req_id": id}),
        "ping carries only the id"
    );
    let (status, tokens) = s.poll(&agent, &id).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert!(tokens["access_token"].is_string());
    assert_eq!(s.state().store.outbox_depth().await.unwrap(), 0);
    rx.stop();
    s.stop().await;
}

async fn push_mode_delivers_tokens_and_denials(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    let rx = Receiver::start("127.0.0.1:0".parse().unwrap(), &[]).await;
    let agent = s
        .agent_with(mode_agent("pusher", "push", rx.url()), false)
        .await;
    // A pushed credential never passes a token request, so the request names the key it
    // is bound to (RFC 9449 §10); without one (and no registered key) it is refused.
    let (status, body) = s
        .bc_authorize(
            &agent,
            &[
                ("scope", "openid"),
                ("login_hint", "alice"),
                ("client_notification_token", "push-secret-456"),
            ],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request")),
        "{body}"
    );
    let jkt = thumbprint(&agent.dpop.public_jwk()).unwrap();
    let params = [
        ("scope", "openid"),
        ("login_hint", "alice"),
        ("client_notification_token", "push-secret-456"),
        ("dpop_jkt", jkt.as_str()),
    ];
    let (status, body) = s.bc_authorize(&agent, &params).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("interval").is_none(), "push clients do not poll");
    let id = body["auth_req_id"].as_str().unwrap().to_owned();
    assert_eq!(s.dev_decide(&id, true).await, StatusCode::NO_CONTENT);

    let got = rx.wait_for(1).await;
    let push = &got[0].body;
    assert_eq!(got[0].bearer.as_deref(), Some("push-secret-456"));
    assert_eq!(push["auth_req_id"], id);
    let access = push["access_token"].as_str().unwrap();
    assert_eq!(push["token_type"], "DPoP");
    assert_eq!(
        countersign_tests::jwt_claims(access)["cnf"]["jkt"],
        jkt.as_str()
    );
    let jwks: JwkSet = s.jwks().await;
    let id_claims: Value = UnverifiedJws::parse(push["id_token"].as_str().unwrap())
        .unwrap()
        .verify_with_set(&jwks)
        .unwrap();
    // CIBA Core §10.3.1: the ID token binds the auth_req_id and the access token.
    assert_eq!(id_claims["urn:openid:params:jwt:claim:auth_req_id"], id);
    assert_eq!(id_claims["at_hash"], sha256_half_b64url(access));
    assert!(
        id_claims.get("rt_hash").is_none(),
        "no refresh token is issued, so no rt_hash"
    );
    let (_, intro) = s.post_as(&agent, "/introspect", &[("token", access)]).await;
    assert_eq!(
        intro["active"], true,
        "the pushed token is a live, recorded token"
    );

    let (_, body) = s.bc_authorize(&agent, &params).await;
    let denied = body["auth_req_id"].as_str().unwrap().to_owned();
    assert_eq!(s.dev_decide(&denied, false).await, StatusCode::NO_CONTENT);
    let got = rx.wait_for(2).await;
    assert_eq!(got[1].body["auth_req_id"], denied);
    assert_eq!(got[1].body["error"], "access_denied");
    rx.stop();
    s.stop().await;
}

async fn failed_deliveries_are_retried_with_backoff(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    // The receiver fails twice (503, then 500) before accepting.
    let rx = Receiver::start("127.0.0.1:0".parse().unwrap(), &[503, 500]).await;
    let agent = s
        .agent_with(mode_agent("pinger", "ping", rx.url()), false)
        .await;
    let (_, body) = s
        .bc_authorize(
            &agent,
            &[
                ("scope", "openid"),
                ("login_hint", "alice"),
                ("client_notification_token", "t"),
            ],
        )
        .await;
    let id = body["auth_req_id"].as_str().unwrap().to_owned();
    s.dev_decide(&id, true).await;
    rx.wait_for(1).await;
    // Retries are scheduled on the server's clock; move it past each backoff.
    for n in 2..=3 {
        for _ in 0..100 {
            if rx.received().len() >= n {
                break;
            }
            s.clock.advance_ms(100);
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        rx.wait_for(n).await;
    }
    for _ in 0..100 {
        if s.state().store.notification_state(&id).await.unwrap() == vec![(3, true, false)] {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        s.state().store.notification_state(&id).await.unwrap(),
        vec![(3, true, false)]
    );
    s.clock.advance_ms(10_000);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        rx.received().len(),
        3,
        "a delivered notification is not sent again"
    );
    rx.stop();
    s.stop().await;
}

async fn deliveries_survive_a_restart_while_the_receiver_is_down(db: Db) {
    let mut s = TestServer::start(db).await;
    s.human("alice").await;
    // Reserve a port, then close it: deliveries fail with connection refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let agent = s
        .agent_with(
            mode_agent("pinger", "ping", format!("http://{port}/cb")),
            false,
        )
        .await;
    let (_, body) = s
        .bc_authorize(
            &agent,
            &[
                ("scope", "openid"),
                ("login_hint", "alice"),
                ("client_notification_token", "t"),
            ],
        )
        .await;
    let id = body["auth_req_id"].as_str().unwrap().to_owned();
    s.dev_decide(&id, true).await;
    for _ in 0..200 {
        if s.state()
            .store
            .notification_state(&id)
            .await
            .unwrap()
            .first()
            .is_some_and(|(attempts, _, _)| *attempts > 0)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let state = s.state().store.notification_state(&id).await.unwrap();
    assert!(
        state[0].0 >= 1 && !state[0].1,
        "attempted and not delivered: {state:?}"
    );

    s.restart().await;
    let rx = Receiver::start(port, &[]).await;
    s.clock.advance_ms(1_000);
    let got = rx.wait_for(1).await;
    assert_eq!(got[0].body["auth_req_id"], id);
    rx.stop();
    s.stop().await;
}

async fn expired_requests_are_announced_once_to_ping_and_push_clients(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    let rx = Receiver::start("127.0.0.1:0".parse().unwrap(), &[]).await;
    let pusher = s
        .agent_with(mode_agent("pusher", "push", rx.url()), false)
        .await;
    let pinger = s
        .agent_with(mode_agent("pinger", "ping", rx.url()), false)
        .await;
    let jkt = thumbprint(&pusher.dpop.public_jwk()).unwrap();
    let params = [
        ("scope", "openid"),
        ("login_hint", "alice"),
        ("client_notification_token", "t"),
        ("requested_expiry", "30"),
        ("dpop_jkt", jkt.as_str()),
    ];
    let (_, push_req) = s.bc_authorize(&pusher, &params).await;
    let (_, ping_req) = s.bc_authorize(&pinger, &params).await;
    let (push_id, ping_id) = (
        push_req["auth_req_id"].as_str().unwrap(),
        ping_req["auth_req_id"].as_str().unwrap(),
    );
    // A decided request is not announced as expired later.
    let (_, decided) = s.bc_authorize(&pinger, &params).await;
    let decided = decided["auth_req_id"].as_str().unwrap();
    s.dev_decide(decided, true).await;
    rx.wait_for(1).await;

    s.clock.advance_ms(31_000);
    let got = rx.wait_for(3).await;
    let push = got
        .iter()
        .find(|c| c.body["auth_req_id"] == push_id)
        .expect("push notice");
    assert_eq!(push.body["error"], "expired_token");
    let ping = got
        .iter()
        .find(|c| c.body["auth_req_id"] == ping_id)
        .expect("ping notice");
    assert_eq!(ping.body, serde_json::json!({"auth_req_id": ping_id}));
    let (_, body) = s.poll(&pinger, ping_id).await;
    assert_eq!(body["error"], "expired_token");

    // Told once: more housekeeping rounds add nothing.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    assert_eq!(rx.received().len(), 3, "{:?}", rx.received());
    rx.stop();
    s.stop().await;
}
