#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! Someone with write access to the database edits, deletes, reorders or inserts rows of
//! the audit trail, or cuts off its newest events and rewrites the head to match: `audit
//! verify` (here through the admin API; the CLI calls the same check) reports each,
//! naming the first bad event. Also: exports by agent and human, and "who approved agent
//! X's access to resource Y".

use countersign_tests::{Agent, Db, TestServer, both_backends};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(
    edits_deletions_reorderings_and_insertions_are_found,
    truncation_is_found_by_the_signed_checkpoint,
    exports_and_who_approved_what,
);

/// The admin key the checks use, made during setup, and how many events the setup left
/// (the start's `config.loaded`, the human's and the agent's registration, the key's
/// creation): the history under test comes after them.
struct Setup {
    key: String,
    base: i64,
}

/// A server whose trail holds its setup, then a few decisions, approvals and issuances.
async fn with_history(db: Db) -> (TestServer, Agent, Setup) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    let agent = s.agent("procurement", "alice", "client_secret_basic").await;
    let key = s.admin_api().await.key().to_owned();
    let base = verify(&s, &key).await["events"].as_i64().unwrap();
    let details =
        json!([{"type": "purchase_order", "vendor": "Acme", "amount": 1200, "currency": "USD"}])
            .to_string();
    for _ in 0..2 {
        s.approved_tokens(
            &agent,
            "alice",
            &[("authorization_details", &details)],
            None,
        )
        .await;
    }
    (s, agent, Setup { key, base })
}

async fn verify(s: &TestServer, key: &str) -> Value {
    let resp = s
        .http
        .get(s.url("/admin/v1/audit/verify"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

async fn broken_at(s: &TestServer, setup: &Setup) -> (Value, Value) {
    let r = verify(s, &setup.key).await;
    assert_eq!(r["intact"], false, "{r}");
    (r["broken_at"].clone(), r["reason"].clone())
}

async fn edits_deletions_reorderings_and_insertions_are_found(db: Db) {
    // Each tamper on a fresh trail of six events after the setup: decision, approval,
    // issuance, twice. `n(i)` is the i-th of them.
    let (s, _, setup) = with_history(db).await;
    let n = |i: i64| setup.base + i;
    assert_eq!(verify(&s, &setup.key).await["events"], n(6));
    assert_eq!(verify(&s, &setup.key).await["intact"], true);
    s.execute_sql(&format!(
        "UPDATE audit_events SET detail = '{{\"outcome\":\"allow\"}}' WHERE seq = {}",
        n(4)
    ))
    .await;
    let (at, reason) = broken_at(&s, &setup).await;
    assert_eq!(at, n(4), "{reason}");
    s.stop().await;

    let (s, _, setup) = with_history(db).await;
    let n = |i: i64| setup.base + i;
    s.execute_sql(&format!("DELETE FROM audit_events WHERE seq = {}", n(3)))
        .await;
    let (at, reason) = broken_at(&s, &setup).await;
    assert_eq!(at, n(3), "{reason}");
    assert!(reason.as_str().unwrap().contains("missing"), "{reason}");
    s.stop().await;

    // Reordering: events 2 and 3 swap places (their sequence numbers).
    let (s, _, setup) = with_history(db).await;
    let n = |i: i64| setup.base + i;
    s.execute_sql(&format!(
        "UPDATE audit_events SET seq = 100000 WHERE seq = {}",
        n(2)
    ))
    .await;
    s.execute_sql(&format!(
        "UPDATE audit_events SET seq = {} WHERE seq = {}",
        n(2),
        n(3)
    ))
    .await;
    s.execute_sql(&format!(
        "UPDATE audit_events SET seq = {} WHERE seq = 100000",
        n(3)
    ))
    .await;
    let (at, reason) = broken_at(&s, &setup).await;
    assert_eq!(at, n(2), "{reason}");
    s.stop().await;

    // Insertion: a forged event slipped in after event 4 (everything after shifts up).
    let (s, _, setup) = with_history(db).await;
    let n = |i: i64| setup.base + i;
    for seq in [n(6), n(5)] {
        s.execute_sql(&format!(
            "UPDATE audit_events SET seq = {} WHERE seq = {seq}",
            seq + 1
        ))
        .await;
    }
    s.execute_sql(&format!(
        "INSERT INTO audit_events (seq, at, actor, kind, subject, detail, prev_hash, hash) \
         SELECT {}, at, 'human:alice', 'request.approved', subject, detail, hash, hash \
         FROM audit_events WHERE seq = {}",
        n(5),
        n(4)
    ))
    .await;
    s.execute_sql(&format!("UPDATE audit_head SET seq = {}", n(7)))
        .await;
    let (at, reason) = broken_at(&s, &setup).await;
    assert_eq!(at, n(5), "{reason}");
    s.stop().await;
}

async fn truncation_is_found_by_the_signed_checkpoint(db: Db) {
    let (s, _, setup) = with_history(db).await;
    let events = verify(&s, &setup.key).await["events"].as_i64().unwrap();
    assert_eq!(
        countersign_server::audit::checkpoint::sign_head(
            &s.state().audit_log,
            &s.state().publishing()
        )
        .await
        .unwrap(),
        Some(events)
    );
    let r = verify(&s, &setup.key).await;
    assert_eq!(
        (r["intact"].clone(), r["log_checkpoints_verified"].clone()),
        (json!(true), json!(1)),
        "{r}"
    );
    // Cut off the last two events and make the head agree: the chain alone is intact...
    let kept = events - 2;
    s.execute_sql(&format!("DELETE FROM audit_events WHERE seq > {kept}"))
        .await;
    s.execute_sql(&format!(
        "UPDATE audit_head SET seq = {kept}, hash = (SELECT hash FROM audit_events WHERE seq = {kept})"
    ))
    .await;
    // ...but the signed checkpoint commits to more events.
    let (at, reason) = broken_at(&s, &setup).await;
    assert_eq!(at, kept + 1, "{reason}");
    assert!(reason.as_str().unwrap().contains("checkpoint"), "{reason}");

    // Rewriting the checkpoint's size and root to match does not help: the signature
    // covers them.
    s.execute_sql(&format!("UPDATE log_checkpoints SET size = {kept}"))
        .await;
    let (at, reason) = broken_at(&s, &setup).await;
    assert_eq!(at, kept, "{reason}");
    assert!(reason.as_str().unwrap().contains("not signed"), "{reason}");
    // Deleting it leaves nothing in the database to contradict the trail: that is what
    // checkpoints held elsewhere are for (tests/audit_log.rs).
    s.execute_sql("DELETE FROM log_checkpoints").await;
    assert_eq!(verify(&s, &setup.key).await["intact"], true);
    s.stop().await;
}

async fn exports_and_who_approved_what(db: Db) {
    let (s, agent, _) = with_history(db).await;
    s.human("bob").await;
    let other = s.agent("other", "bob", "client_secret_basic").await;
    s.approved_tokens(&other, "bob", &[], None).await;
    let admin = s.admin_api().await;
    let get_text = |path: String| {
        let s = &s;
        let admin = &admin;
        async move {
            let key = admin_key(admin);
            let resp = s
                .http
                .get(s.url(&path))
                .bearer_auth(key)
                .send()
                .await
                .unwrap();
            let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
            (resp.status(), ct, resp.text().await.unwrap())
        }
    };
    let (status, ct, body) = get_text("/admin/v1/audit/export?agent=procurement".into()).await;
    assert_eq!(
        (status, ct.as_str()),
        (StatusCode::OK, "application/x-ndjson")
    );
    let events: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The agent's registration, then a decision, an approval and an issuance, twice.
    assert_eq!(events.len(), 7, "{body}");
    assert_eq!(events[0]["kind"], "agent.registered", "{body}");
    assert!(
        events
            .windows(2)
            .all(|w| w[0]["seq"].as_i64() < w[1]["seq"].as_i64())
    );
    let (_, _, bob) = get_text("/admin/v1/audit/export?human=bob".into()).await;
    // Bob's registration, his agent's (he owns it), and his one approved request.
    assert_eq!(bob.lines().count(), 5, "{bob}");
    assert!(
        bob.lines().next().unwrap().contains("\"human.created\""),
        "{bob}"
    );
    let (_, ct, csv) = get_text("/admin/v1/audit/export?format=csv&agent=other".into()).await;
    assert!(ct.starts_with("text/csv"));
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("seq,at,actor,kind,subject,detail,prev_hash,hash")
    );
    assert_eq!(lines.count(), 4, "the agent's registration and its request");
    let (_, _, none) = get_text(format!("/admin/v1/audit/export?since={}", s.now_s() + 60)).await;
    assert!(none.is_empty());
    let (status, _, _) = get_text("/admin/v1/audit/export?format=xml".into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Who approved the procurement agent's access, under which policy.
    let (status, records) = admin
        .call(
            Method::GET,
            "/admin/v1/audit/approvals?agent=procurement",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{records}");
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), 2);
    for r in records {
        assert_eq!(r["outcome"], "step_up");
        assert_eq!(r["approved_by"], "developer-mode");
        assert_eq!(r["method"], "dev");
        assert_eq!(
            r["policies"],
            json!([{"id": "default-step-up", "version": 0}])
        );
        assert_eq!(r["credentials"].as_array().unwrap().len(), 1);
        assert_eq!(r["action"], "purchase_order");
    }
    let _ = agent;
    s.stop().await;
}

fn admin_key(admin: &countersign_tests::AdminApi<'_>) -> String {
    admin.key().to_owned()
}
