#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! Two server replicas sharing one PostgreSQL database, as behind a load balancer: a
//! request made on one is decided on the other, concurrent polls spread over both still
//! yield exactly one token, and each client notification is sent by exactly one replica.

use countersign_server::directory::NewAgent;
use countersign_tests::receiver::Receiver;
use countersign_tests::{Db, TestServer, new_agent};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_state_and_issue_exactly_once() {
    let a = TestServer::start(Db::Postgres).await;
    let b = a.replica().await;
    a.human("alice").await;
    let agent = a.agent("a", "alice", "client_secret_basic").await;

    let id = a.start_request(&agent, "alice").await;
    assert_eq!(b.dev_decide(&id, true).await, StatusCode::NO_CONTENT);
    assert_eq!(a.dev_decide(&id, true).await, StatusCode::CONFLICT);
    let polls = (0..50).map(|i| {
        if i % 2 == 0 {
            a.poll(&agent, &id)
        } else {
            b.poll(&agent, &id)
        }
    });
    let results = futures_util::future::join_all(polls).await;
    let ok = results
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .count();
    assert_eq!(ok, 1, "exactly one token across replicas: {results:?}");

    // Ping notifications: both replicas run an outbox worker; each message goes out once.
    let rx = Receiver::start("127.0.0.1:0".parse().unwrap(), &[]).await;
    let pinger = a
        .agent_with(
            NewAgent {
                delivery_mode: Some("ping".into()),
                notification_endpoint: Some(rx.url()),
                ..new_agent("pinger", "alice", "client_secret_basic")
            },
            false,
        )
        .await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        let (_, body) = b
            .bc_authorize(
                &pinger,
                &[
                    ("scope", "openid"),
                    ("login_hint", "alice"),
                    ("client_notification_token", "t"),
                ],
            )
            .await;
        ids.push(body["auth_req_id"].as_str().unwrap().to_owned());
    }
    for (i, id) in ids.iter().enumerate() {
        let replica = if i % 2 == 0 { &a } else { &b };
        assert_eq!(replica.dev_decide(id, true).await, StatusCode::NO_CONTENT);
    }
    rx.wait_for(20).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut notified: Vec<String> = rx
        .received()
        .iter()
        .map(|c| c.body["auth_req_id"].as_str().unwrap().to_owned())
        .collect();
    notified.sort();
    ids.sort();
    assert_eq!(notified, ids, "each request notified exactly once");
    rx.stop();
    b.stop().await;
    a.stop().await;
}
