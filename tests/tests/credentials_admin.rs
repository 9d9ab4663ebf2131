#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! Administering credentials through the admin API, on both databases: listing by agent,
//! approver and owner; revoking one (idempotently, with a reason) and in bulk; revocation
//! recorded with its reason; bad requests refused.

use countersign_tests::{Agent, Db, TestServer, both_backends};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(list_and_revoke_credentials_by_id_agent_approver_and_owner);

async fn credential(s: &TestServer, agent: &Agent, subject: &str) -> String {
    let id = s.start_request(agent, subject).await;
    s.dev_decide(&id, true).await;
    s.clock.advance_ms(1_000);
    let (status, tokens) = s.poll(agent, &id).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    countersign_tests::jwt_claims(tokens["access_token"].as_str().unwrap())["jti"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn list_and_revoke_credentials_by_id_agent_approver_and_owner(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    s.human("bob").await;
    let a = s.agent("a", "alice", "client_secret_basic").await;
    let b = s.agent("b", "bob", "client_secret_basic").await;
    let c1 = credential(&s, &a, "alice").await;
    let c2 = credential(&s, &b, "alice").await;
    let c3 = credential(&s, &b, "bob").await;

    let admin = s.admin_api().await;
    let ids = |v: &Value| {
        let mut ids: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };

    let (status, all) = admin.call(Method::GET, "/admin/v1/credentials", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&all), sorted(vec![c1.clone(), c2.clone(), c3.clone()]));
    assert_eq!(
        ids(&admin
            .call(Method::GET, "/admin/v1/credentials?agent=b", None)
            .await
            .1),
        sorted(vec![c2.clone(), c3.clone()])
    );
    assert_eq!(
        ids(&admin
            .call(Method::GET, "/admin/v1/credentials?approver=alice", None)
            .await
            .1),
        sorted(vec![c1.clone(), c2.clone()])
    );
    assert_eq!(
        ids(&admin
            .call(Method::GET, "/admin/v1/credentials?owner=bob", None)
            .await
            .1),
        sorted(vec![c2.clone(), c3.clone()])
    );
    assert_eq!(
        admin
            .call(Method::GET, "/admin/v1/credentials?agent=a&owner=bob", None)
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // One, with a reason; a second revocation changes nothing.
    let (status, body) = admin
        .call(
            Method::POST,
            &format!("/admin/v1/credentials/{c1}/revoke"),
            Some(json!({"reason": "laptop stolen"})),
        )
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"revoked": [c1.clone()]}))
    );
    let (_, body) = admin
        .call(
            Method::POST,
            &format!("/admin/v1/credentials/{c1}/revoke"),
            Some(json!({"reason": "again"})),
        )
        .await;
    assert_eq!(body, json!({"revoked": []}));
    let (_, shown) = admin
        .call(Method::GET, &format!("/admin/v1/credentials/{c1}"), None)
        .await;
    assert_eq!(shown["revoked_reason"], "laptop stolen");
    assert!(shown["revoked_at"].is_i64());

    // Everything held by bob's agents.
    let (status, body) = admin
        .call(
            Method::POST,
            "/admin/v1/credentials/revoke",
            Some(json!({"owner": "bob", "reason": "offboarded"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        sorted(
            body["revoked"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        ),
        sorted(vec![c2.clone(), c3.clone()])
    );
    let (_, body) = admin
        .call(
            Method::POST,
            "/admin/v1/credentials/revoke",
            Some(json!({"approver": "bob", "reason": "x"})),
        )
        .await;
    assert_eq!(body, json!({"revoked": []}), "already revoked");
    let (_, shown) = admin
        .call(Method::GET, &format!("/admin/v1/credentials/{c3}"), None)
        .await;
    assert_eq!(shown["revoked_reason"], "offboarded");

    // Refusals.
    assert_eq!(
        admin
            .call(Method::GET, "/admin/v1/credentials/nope", None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        admin
            .call(
                Method::POST,
                "/admin/v1/credentials/nope/revoke",
                Some(json!({"reason": "x"}))
            )
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        admin
            .call(
                Method::POST,
                &format!("/admin/v1/credentials/{c1}/revoke"),
                Some(json!({"reason": " "}))
            )
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        admin
            .call(
                Method::POST,
                "/admin/v1/credentials/revoke",
                Some(json!({"reason": "everything"}))
            )
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        admin
            .call(
                Method::POST,
                "/admin/v1/credentials/revoke",
                Some(json!({"agent": "a", "owner": "bob", "reason": "x"}))
            )
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        s.http
            .get(s.url("/admin/v1/credentials"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    s.stop().await;
}
