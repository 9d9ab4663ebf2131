#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! Two replicas on one PostgreSQL database: every alert goes out exactly once although
//! both run a push worker, and a live-channel subscriber on one replica hears of a request
//! created on the other (LISTEN/NOTIFY).

use std::io::BufRead as _;
use std::sync::Arc;

use countersign_jose::SigningKeyPair;
use countersign_tests::fakes::apns::FakeApns;
use countersign_tests::fakes::{APNS_KEY_ID, APNS_TEAM, APNS_TOPIC, apns_config};
use countersign_tests::{Db, TestServer};
use countersign_wallet_core::software::SoftwareKeystore;
use countersign_wallet_core::wallet::DEVICE_KEY_ALIAS;
use countersign_wallet_core::{DeviceKey, EnrollOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_send_each_alert_once_and_wake_live_subscribers_everywhere() {
    let key = SigningKeyPair::generate();
    let fake = FakeApns::start(
        "127.0.0.1:0".parse().unwrap(),
        APNS_TEAM,
        APNS_KEY_ID,
        key.public_jwk(),
        APNS_TOPIC,
    )
    .await;
    let a = TestServer::start_with(Db::Postgres, |c| {
        c.push.apns = Some(apns_config(&fake, &key))
    })
    .await;
    a.clock.follow_system_time();
    let b = a.replica().await;
    a.human("alice").await;
    let agent = a.agent("procurement", "alice", "client_secret_basic").await;
    let _phone = a
        .wallet_with(
            "alice",
            EnrollOptions {
                platform: "ios".into(),
                name: None,
                push_channel: "apns".into(),
                push_token: Some("phone".into()),
            },
        )
        .await;
    let desktop = a
        .wallet_with(
            "alice",
            EnrollOptions {
                platform: "desktop".into(),
                name: None,
                push_channel: "live".into(),
                push_token: None,
            },
        )
        .await;

    // The desktop wallet listens on replica B (its proof names the shared issuer).
    let device = DeviceKey::new(
        Arc::new(SoftwareKeystore::new(desktop.storage.clone())),
        DEVICE_KEY_ALIAS,
    );
    let proof = device
        .proof("GET", &format!("{}/wallet/v1/events", a.issuer()))
        .unwrap();
    let events_url = b.url("/wallet/v1/events");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        let response = ureq::get(&events_url)
            .header("DPoP", &proof)
            .call()
            .unwrap();
        for line in std::io::BufReader::new(response.into_body().into_reader()).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        let line = rx.recv().await.unwrap();
        if line == "event: ready" {
            break;
        }
    }

    // Requests alternate between the replicas; both push workers run.
    let mut ids = Vec::new();
    for i in 0..20 {
        let server = if i % 2 == 0 { &a } else { &b };
        ids.push(server.start_request(&agent, "alice").await);
    }
    let got = fake.wait_for(20).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let got_after = fake.received();
    assert_eq!(
        got_after.len(),
        20,
        "each alert exactly once: {}",
        got.len()
    );
    let mut alerted: Vec<String> = got_after
        .iter()
        .map(|d| d.body["request_id"].as_str().unwrap().to_owned())
        .collect();
    alerted.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(alerted, expected);

    // The subscriber on B heard of every request, including those created on A.
    let mut heard = Vec::new();
    let mut event = String::new();
    while heard.len() < ids.len() {
        let line = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "B's subscriber heard {} of {} requests: {heard:?}",
                    heard.len(),
                    ids.len()
                )
            })
            .unwrap();
        if let Some(name) = line.strip_prefix("event: ") {
            // A resync means B's listener missed NOTIFYs, which nothing here provokes.
            assert_ne!(name, "resync", "after {heard:?}");
            event = name.to_owned();
        } else if let Some(data) = line.strip_prefix("data: ").filter(|_| event == "request") {
            let event: serde_json::Value = serde_json::from_str(data).unwrap();
            heard.push(event["request_id"].as_str().unwrap().to_owned());
        }
    }
    heard.sort();
    assert_eq!(heard, expected);
    b.stop().await;
    a.stop().await;
}
