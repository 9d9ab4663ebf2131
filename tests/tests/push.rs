#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! Alerting approvers through APNs and FCM, against local fakes that speak their real wire
//! protocol (APNs: HTTP/2 over TLS, ES256 provider tokens; FCM: OAuth JWT bearer grant and
//! HTTP v1), on both databases: what is sent (data-minimal, the real headers), and what
//! each of the services' errors makes the server do.

use countersign_jose::SigningKeyPair;
use countersign_tests::fakes::apns::{ApnsReply, FakeApns};
use countersign_tests::fakes::fcm::{FakeFcm, FcmReply};
use countersign_tests::fakes::{APNS_KEY_ID, APNS_TEAM, APNS_TOPIC, apns_config, fcm_config};
use countersign_tests::{Agent, Db, TestServer, both_backends};
use countersign_wallet_core::EnrollOptions;
use reqwest::{Method, StatusCode};
use serde_json::Value;

both_backends!(apns_alerts_carry_the_real_headers_and_nothing_sensitive);

fn phone(channel: &str, token: &str) -> EnrollOptions {
    EnrollOptions {
        platform: if channel == "apns" { "ios" } else { "android" }.into(),
        name: Some(format!("{channel} phone")),
        push_channel: channel.into(),
        push_token: Some(token.into()),
    }
}

async fn request(s: &TestServer, agent: &Agent) -> (String, i64) {
    let (status, body) = s
        .bc_authorize(
            agent,
            &[
                ("scope", "openid"),
                ("login_hint", "alice"),
                ("binding_message", "SECRET-MSG"),
                (
                    "authorization_details",
                    r#"[{"type":"purchase_order","vendor":"Acme","amount":1200,"currency":"USD"}]"#,
                ),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["auth_req_id"].as_str().unwrap().to_owned();
    let expires = s.auth_request(&id).await.expires_at;
    (id, expires.div_euclid(1000))
}

async fn apns_server(db: Db) -> (TestServer, FakeApns, Agent) {
    let key = SigningKeyPair::generate();
    let fake = FakeApns::start(
        "127.0.0.1:0".parse().unwrap(),
        APNS_TEAM,
        APNS_KEY_ID,
        key.public_jwk(),
        APNS_TOPIC,
    )
    .await;
    let s = TestServer::start_with(db, |c| {
        c.push.apns = Some(apns_config(&fake, &key));
        c.push.initial_backoff_ms = 50;
    })
    .await;
    // Retries are scheduled on the server's clock; let it follow real time.
    s.clock.follow_system_time();
    s.human("alice").await;
    let agent = s.agent("procurement", "alice", "client_secret_basic").await;
    (s, fake, agent)
}

async fn apns_alerts_carry_the_real_headers_and_nothing_sensitive(db: Db) {
    let (s, fake, agent) = apns_server(db).await;
    let _phone = s.wallet_with("alice", phone("apns", "a1b2c3")).await;
    let (id, expires) = request(&s, &agent).await;
    let got = fake.wait_for(1).await;
    let alert = &got[0];
    assert_eq!((alert.status, alert.token.as_str()), (200, "a1b2c3"));
    assert_eq!(alert.header("apns-topic"), Some(APNS_TOPIC));
    assert_eq!(alert.header("apns-push-type"), Some("alert"));
    assert_eq!(alert.header("apns-priority"), Some("10"));
    assert_eq!(alert.header("apns-collapse-id"), Some(id.as_str()));
    assert_eq!(
        alert.header("apns-expiration"),
        Some(expires.to_string().as_str())
    );
    assert_eq!(
        alert.body["aps"]["alert"]["body"],
        "Approval requested by procurement agent"
    );
    assert_eq!(alert.body["aps"]["mutable-content"], 1);
    assert_eq!(alert.body["request_id"], id);
    assert_eq!(alert.body["server"], s.issuer());
    let text = alert.body.to_string();
    for secret in ["Acme", "1200", "SECRET-MSG", "purchase_order"] {
        assert!(
            !text.contains(secret),
            "{secret} must not be pushed: {text}"
        );
    }

    // The provider token is reused across sends.
    let _ = request(&s, &agent).await;
    fake.wait_for(2).await;
    assert_eq!(fake.provider_tokens(), 1);
    let rows = s.state().store.pushes_for_request(&id).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].1.is_some(), "marked delivered");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apns_retries_honour_retry_after_and_unregistered_tokens_are_flagged() {
    let (s, fake, agent) = apns_server(Db::Sqlite).await;
    let _phone = s.wallet_with("alice", phone("apns", "tok-1")).await;
    fake.script(&[
        ApnsReply::Error(503, "ServiceUnavailable", None),
        ApnsReply::Error(429, "TooManyRequests", Some(1)),
    ]);
    let (id, _) = request(&s, &agent).await;
    let got = fake.wait_for(3).await;
    assert_eq!(
        got.iter().map(|d| d.status).collect::<Vec<_>>(),
        [503, 429, 200]
    );
    let waited = got[2].at - got[1].at;
    assert!(
        waited >= std::time::Duration::from_millis(900),
        "Retry-After ignored: {waited:?}"
    );
    let mut rows = Vec::new();
    for _ in 0..100 {
        rows = s.state().store.pushes_for_request(&id).await.unwrap();
        if rows[0].1.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        (rows[0].0.attempts, rows[0].1.is_some()),
        (3, true),
        "{rows:?}"
    );

    // Unregistered: the device stays enrolled, flagged for re-registration, and is not
    // alerted again until it is.
    fake.script(&[ApnsReply::Error(410, "Unregistered", None)]);
    let (id, _) = request(&s, &agent).await;
    fake.wait_for(4).await;
    let admin = s.admin_api().await;
    for _ in 0..100 {
        let (_, devices) = admin
            .call(Method::GET, "/admin/v1/devices?subject=alice", None)
            .await;
        if devices[0]["push_token_valid"] == false {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (_, devices) = admin
        .call(Method::GET, "/admin/v1/devices?subject=alice", None)
        .await;
    assert_eq!(devices[0]["push_token_valid"], false, "{devices}");
    assert!(devices[0]["disabled_at"].is_null(), "still enrolled");
    let rows = s.state().store.pushes_for_request(&id).await.unwrap();
    assert!(
        rows[0].2.as_deref().unwrap().contains("Unregistered"),
        "{rows:?}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await; // the directory cache
    let (quiet, _) = request(&s, &agent).await;
    assert!(
        s.state()
            .store
            .pushes_for_request(&quiet)
            .await
            .unwrap()
            .is_empty()
    );

    // BadDeviceToken on another phone means the same.
    let _other = s.wallet_with("alice", phone("apns", "tok-2")).await;
    fake.script(&[ApnsReply::Error(400, "BadDeviceToken", None)]);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let _ = request(&s, &agent).await;
    let got = fake.wait_for(5).await;
    assert_eq!((got[4].token.as_str(), got[4].status), ("tok-2", 400));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_the_wrong_team_key_is_refused_by_apns() {
    let key = SigningKeyPair::generate();
    let wrong = SigningKeyPair::generate();
    let fake = FakeApns::start(
        "127.0.0.1:0".parse().unwrap(),
        APNS_TEAM,
        APNS_KEY_ID,
        key.public_jwk(),
        APNS_TOPIC,
    )
    .await;
    let s = TestServer::start_with(Db::Sqlite, |c| {
        c.push.apns = Some(apns_config(&fake, &wrong))
    })
    .await;
    s.clock.follow_system_time();
    s.human("alice").await;
    let agent = s.agent("procurement", "alice", "client_secret_basic").await;
    let _phone = s.wallet_with("alice", phone("apns", "tok")).await;
    let _ = request(&s, &agent).await;
    // Refused, a fresh provider token tried at once, refused again.
    let got = fake.wait_for(2).await;
    assert_eq!((got[0].status, got[1].status), (403, 403));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fcm_messages_are_data_only_with_an_oauth_token_and_errors_are_handled() {
    let fake = FakeFcm::start().await;
    let s = TestServer::start_with(Db::Sqlite, |c| {
        c.push.fcm = Some(fcm_config(&fake));
        c.push.initial_backoff_ms = 50;
    })
    .await;
    s.clock.follow_system_time();
    s.human("alice").await;
    let agent = s.agent("procurement", "alice", "client_secret_basic").await;
    let _phone = s.wallet_with("alice", phone("fcm", "fcm-token-1")).await;

    let (id, expires) = request(&s, &agent).await;
    let got = fake.wait_for(1).await;
    let message = &got[0].message;
    assert_eq!(got[0].status, 200);
    assert_eq!(message["token"], "fcm-token-1");
    assert_eq!(message["data"]["request_id"], id);
    assert_eq!(
        message["data"]["body"],
        "Approval requested by procurement agent"
    );
    assert_eq!(message["android"]["priority"], "HIGH");
    assert_eq!(message["android"]["collapse_key"], id);
    let ttl: i64 = message["android"]["ttl"]
        .as_str()
        .unwrap()
        .trim_end_matches('s')
        .parse()
        .unwrap();
    assert!((0..=expires - s.now_s() + 1).contains(&ttl), "{ttl}");
    assert!(message.get("notification").is_none(), "data-only");
    assert!(!message.to_string().contains("Acme"));

    // 503 and 429 (with Retry-After) are retried; the OAuth token is reused.
    fake.script(&[
        FcmReply::Error(503, "UNAVAILABLE", None),
        FcmReply::Error(429, "QUOTA_EXCEEDED", Some(1)),
    ]);
    let _ = request(&s, &agent).await;
    let got = fake.wait_for(4).await;
    assert_eq!(
        got.iter().map(|d| d.status).collect::<Vec<_>>(),
        [200, 503, 429, 200]
    );
    assert_eq!(fake.token_requests(), 1);

    // UNREGISTERED flags the token.
    fake.script(&[FcmReply::Error(404, "UNREGISTERED", None)]);
    let _ = request(&s, &agent).await;
    fake.wait_for(5).await;
    let admin = s.admin_api().await;
    let mut valid = Value::Null;
    for _ in 0..100 {
        valid = admin
            .call(Method::GET, "/admin/v1/devices?subject=alice", None)
            .await
            .1[0]["push_token_valid"]
            .clone();
        if valid == false {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(valid, false);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_push_credentials_stop_the_start_naming_the_key() {
    let mut config = countersign_server::config::Config::default();
    config.push.fcm = Some(countersign_server::config::FcmConfig {
        service_account_file: None,
        service_account: Some(
            r#"{"client_email":"x","private_key":"nope","token_uri":"https://t"}"#.into(),
        ),
        project_id: None,
        base_url: None,
    });
    let dir = tempfile::tempdir().unwrap();
    config.database_url = format!("sqlite://{}?mode=rwc", dir.path().join("x.db").display());
    config.keys_dir = dir.path().join("keys");
    config.listen = "127.0.0.1:0".parse().unwrap();
    let clock = std::sync::Arc::new(countersign_server::clock::SystemClock);
    let err = countersign_server::server::start(config.clone(), clock.clone())
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("`push.fcm.service_account`"),
        "{err}"
    );
    config.push.fcm = None;
    config.push.apns = Some(countersign_server::config::ApnsConfig {
        key_file: Some(dir.path().join("missing.p8")),
        key: None,
        key_id: APNS_KEY_ID.into(),
        team_id: APNS_TEAM.into(),
        topic: APNS_TOPIC.into(),
        environment: "production".into(),
        base_url: None,
        ca_file: None,
    });
    let err = countersign_server::server::start(config, clock)
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("`push.apns.key_file`"), "{err}");
}
