//! Tests of the `auth_requests` aggregate, on both backends.

use super::*;
use crate::ids::AuthReqId;
use crate::store::clients::ClientRecord;
use crate::store::humans::HumanRecord;
use crate::store::testing::each_backend;
use crate::store::tokens::TokenGrant;

pub(crate) async fn seed(store: &Store) {
    let mut tx = store.begin().await.unwrap();
    store
        .insert_human(
            &mut tx,
            &HumanRecord {
                subject: "alice".into(),
                email: "a@example.com".into(),
                name: "Alice".into(),
                active: true,
                user_code_hash: None,
                created_at: 0,
                department: String::new(),
                title: String::new(),
                role: String::new(),
                manager: None,
            },
        )
        .await
        .unwrap();
    store
        .insert_client(
            &mut tx,
            &ClientRecord {
                client_id: "agent".into(),
                name: "Agent".into(),
                owner_subject: "alice".into(),
                auth_method: "client_secret_basic".into(),
                secret_hash: Some("h".into()),
                jwks: None,
                delivery_mode: "poll".into(),
                notification_endpoint: None,
                require_signed_request: false,
                user_code_required: false,
                enabled: true,
                created_at: 0,
                department: String::new(),
                risk_tier: "low".into(),
                description: None,
                tools: None,
                approver: None,
                bearer_only: false,
                dpop_jkt: None,
            },
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

fn request(id: &str, expires_at: i64) -> AuthRequestRecord {
    AuthRequestRecord {
        id: id.into(),
        client_id: "agent".into(),
        subject: "alice".into(),
        scope: "openid".into(),
        binding_message: Some("W4SCT".into()),
        acr_values: None,
        authorization_details: Some(r#"[{"type":"purchase_order"}]"#.into()),
        delivery_mode: countersign_shared::DeliveryMode::Poll,
        notification_token: None,
        status: AuthRequestStatus::Pending,
        created_at: 0,
        expires_at,
        interval_secs: 5,
        last_poll_at: None,
        decided_at: None,
        decided_by: None,
        decision_method: None,
        task_id: Some("task-1".into()),
        ..AuthRequestRecord::default()
    }
}

#[tokio::test]
async fn lifecycle_pending_approved_issued_exactly_once() {
    each_backend(|store| async move {
        seed(&store).await;
        let r = request("r1", 1_000_000);
        store.insert_auth_request(&r).await.unwrap();
        assert_eq!(
            store.auth_request(&AuthReqId::from("r1")).await.unwrap(),
            Some(r)
        );
        assert_eq!(store.count_pending_auth_requests(0).await.unwrap(), 1);

        // Polls: first admitted, second too early (interval raised), later admitted.
        assert!(
            store
                .admit_poll(&AuthReqId::from("r1"), 1_000)
                .await
                .unwrap()
        );
        assert!(
            !store
                .admit_poll(&AuthReqId::from("r1"), 2_000)
                .await
                .unwrap()
        );
        assert_eq!(
            store
                .auth_request(&AuthReqId::from("r1"))
                .await
                .unwrap()
                .unwrap()
                .interval_secs,
            10
        );
        assert!(
            !store
                .admit_poll(&AuthReqId::from("r1"), 11_000)
                .await
                .unwrap()
        );
        // A too-early poll also restarts the wait: 11 000 + 15 000.
        assert!(
            !store
                .admit_poll(&AuthReqId::from("r1"), 25_999)
                .await
                .unwrap()
        );
        assert!(
            store
                .admit_poll(&AuthReqId::from("r1"), 46_000)
                .await
                .unwrap()
        );

        let d = dev_approval();
        let decided = store
            .decide_auth_request(None, &AuthReqId::from("r1"), &d, None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (decided.status, decided.decided_by.as_deref()),
            (AuthRequestStatus::Approved, Some("alice"))
        );
        let stored = store
            .auth_request(&AuthReqId::from("r1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            stored.decision_method,
            Some(DecisionMethod::Approval(ApprovalMethod::Developer))
        );
        assert_eq!(
            store
                .decide_auth_request(None, &AuthReqId::from("r1"), &d, None)
                .await
                .unwrap(),
            None,
            "decided once"
        );

        // The last admitted poll was at 46 000 with a 20 s interval.
        let grant = |at: i64, jti: &str| TokenGrant {
            jti: jti.into(),
            token_type: "DPoP".into(),
            cnf_jkt: Some("jkt".into()),
            issued_at: at,
            expires_at: at + 900_000,
            status_list: 1,
            status_idx: at,
        };
        assert_eq!(
            store
                .claim_for_issue(&"r1".into(), &"agent".into(), &grant(65_999, "t0"), 65_999)
                .await
                .unwrap(),
            None,
            "too early"
        );
        assert_eq!(
            store
                .claim_for_issue(
                    &"r1".into(),
                    &"intruder".into(),
                    &grant(66_000, "t1"),
                    66_000
                )
                .await
                .unwrap(),
            None,
            "other client"
        );
        let issued = store
            .claim_for_issue(&"r1".into(), &"agent".into(), &grant(66_000, "t2"), 66_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(issued.status, AuthRequestStatus::Issued);
        assert_eq!(
            store
                .claim_for_issue(&"r1".into(), &"agent".into(), &grant(99_000, "t3"), 99_000)
                .await
                .unwrap(),
            None,
            "already issued"
        );

        let token = store.token("t2").await.unwrap().unwrap();
        assert_eq!(
            (
                token.auth_req_id.as_str(),
                token.token_type.as_str(),
                token.cnf_jkt.as_deref()
            ),
            ("r1", "DPoP", Some("jkt"))
        );
        assert_eq!(store.token("t1").await.unwrap(), None);
        let mut tx = store.begin().await.unwrap();
        let revoke = crate::store::tokens::TokenSelector::Id("t2");
        let first = store
            .revoke_tokens(&mut tx, revoke, "r", 70_000)
            .await
            .unwrap();
        let again = store
            .revoke_tokens(&mut tx, revoke, "r", 80_000)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!((first, again), (vec!["t2".to_owned()], vec![]));
        assert_eq!(
            store.token("t2").await.unwrap().unwrap().revoked_at,
            Some(70_000),
            "first revocation time kept"
        );
    })
    .await;
}

#[tokio::test]
async fn concurrent_inserts_are_group_committed_with_per_row_outcomes() {
    each_backend(|store| async move {
        seed(&store).await;
        let mut rows: Vec<AuthRequestRecord> = (0..200)
            .map(|i| request(&format!("g{i}"), 10_000))
            .collect();
        // One row references a client that does not exist: only that caller fails.
        rows[117].client_id = "ghost".into();
        let results =
            futures_util::future::join_all(rows.iter().map(|r| store.insert_auth_request(r))).await;
        for (i, result) in results.iter().enumerate() {
            assert_eq!(result.is_ok(), i != 117, "row {i}: {result:?}");
        }
        assert_eq!(store.count_pending_auth_requests(0).await.unwrap(), 199);
        assert_eq!(
            store.auth_request(&AuthReqId::from("g42")).await.unwrap(),
            Some(rows[42].clone())
        );
        assert!(matches!(
            store.insert_auth_request(&rows[0]).await,
            Err(StoreError::Conflict)
        ));
    })
    .await;
}

#[tokio::test]
async fn expired_requests_cannot_be_decided_and_rolled_back_decisions_vanish() {
    each_backend(|store| async move {
        seed(&store).await;
        store
            .insert_auth_request(&request("r2", 1_000))
            .await
            .unwrap();
        let mut tx = store.begin().await.unwrap();
        let late = Decision {
            approved: true,
            decided_by: "alice",
            method: ApprovalMethod::Developer.into(),
            at_ms: 1_000,
            approval_jws: None,
            device_jkt: None,
        };
        assert_eq!(
            store
                .decide_auth_request(Some(&mut tx), &AuthReqId::from("r2"), &late, None)
                .await
                .unwrap(),
            None
        );
        let on_time = Decision { at_ms: 999, ..late };
        assert!(
            store
                .decide_auth_request(Some(&mut tx), &AuthReqId::from("r2"), &on_time, None)
                .await
                .unwrap()
                .is_some()
        );
        drop(tx); // rollback
        assert_eq!(
            store
                .auth_request(&AuthReqId::from("r2"))
                .await
                .unwrap()
                .unwrap()
                .status,
            AuthRequestStatus::Pending
        );
        assert_eq!(store.count_pending_auth_requests(1_000).await.unwrap(), 0);
    })
    .await;
}

/// Alice approving with the developer endpoint at 500.
fn dev_approval() -> Decision<'static> {
    Decision {
        approved: true,
        decided_by: "alice",
        method: ApprovalMethod::Developer.into(),
        at_ms: 500,
        approval_jws: None,
        device_jkt: None,
    }
}

/// Seeds `store` if it is PostgreSQL (whose statement cache the next tests inspect);
/// false on SQLite.
async fn seeded_postgres(store: &Store) -> bool {
    if store.backend() != crate::store::Backend::Postgres {
        return false;
    }
    seed(store).await;
    true
}

/// Deciding a request must not leave a cached prepared statement on PostgreSQL (whose
/// generic plan, made while few requests are pending, scans them all: see `decide`).
#[tokio::test]
async fn deciding_a_request_is_planned_afresh_each_time() {
    each_backend(|store| async move {
        if !seeded_postgres(&store).await {
            return;
        }
        let d = dev_approval();
        let mut tx = store.begin().await.unwrap();
        for i in 0..7 {
            let id = format!("r{i}");
            store
                .insert_auth_request(&request(&id, 1_000_000))
                .await
                .unwrap();
            let decided = store
                .decide_auth_request(Some(&mut tx), &AuthReqId::from(&id), &d, None)
                .await
                .unwrap();
            assert!(decided.is_some(), "{id} was pending");
        }
        assert_eq!(
            cached(&mut tx, "UPDATE auth_requests SET status = $1").await,
            0
        );
        // The same check sees a cached statement, so it can fail.
        sqlx::query("SELECT 1 AS one WHERE $1 = 1")
            .bind(1_i64)
            .execute(tx.conn())
            .await
            .unwrap();
        assert_eq!(cached(&mut tx, "SELECT 1 AS one WHERE $1 = 1").await, 1);
        drop(tx);
    })
    .await;
}

/// How many of this session's prepared statements (sqlx's cached ones included) start
/// with `prefix`.
async fn cached(tx: &mut crate::store::Tx<'_>, prefix: &str) -> i64 {
    sqlx::query(
        "SELECT count(*) AS n FROM pg_prepared_statements WHERE left(statement, length($1)) = $1",
    )
    .persistent(false)
    .bind(prefix)
    .fetch_one(tx.conn())
    .await
    .unwrap()
    .try_get("n")
    .unwrap()
}

/// Revoking one credential and renewing one must not leave cached statements either: a
/// generic plan made while few credentials are live scans every live credential.
#[tokio::test]
async fn revoking_and_renewing_are_planned_afresh_each_time() {
    each_backend(|store| async move {
        if !seeded_postgres(&store).await {
            return;
        }
        let grant = TokenGrant {
            jti: "t-new".into(),
            token_type: "DPoP".into(),
            cnf_jkt: Some("jkt".into()),
            issued_at: 1,
            expires_at: 900_001,
            status_list: 1,
            status_idx: 1,
        };
        let mut tx = store.begin().await.unwrap();
        for _ in 0..7 {
            let selector = crate::store::tokens::TokenSelector::Id("no-such-jti");
            let revoked = store.revoke_tokens(&mut tx, selector, "r", 1).await;
            assert_eq!(revoked.unwrap(), Vec::<String>::new());
            let renewed = store
                .insert_renewal(
                    &mut tx,
                    "no-such-jti",
                    &"agent".into(),
                    &"r-new".into(),
                    &grant,
                    1,
                )
                .await;
            assert!(!renewed.unwrap(), "nothing to renew");
        }
        assert_eq!(
            cached(&mut tx, "UPDATE auth_requests SET token_revoked_at").await,
            0
        );
        // The renewal's INSERT (the plain one names last_poll_at after interval_secs).
        let renewal = concat!(
            "INSERT INTO auth_requests (id, client_id, subject, scope, binding_message, ",
            "acr_values, authorization_details, delivery_mode, notification_token, status, ",
            "created_at, expires_at, interval_secs, decided_at"
        );
        assert_eq!(cached(&mut tx, renewal).await, 0);
        drop(tx);
    })
    .await;
}

/// Seeds the directory and a request `id` decided with a credential `jti` allowing
/// `max_uses` uses, valid until `expires_at` (ms).
pub(crate) async fn issued_request(
    store: &Store,
    id: &str,
    jti: &str,
    max_uses: i64,
    expires_at: i64,
) {
    seed(store).await;
    let r = AuthRequestRecord {
        max_uses: MaxUses(max_uses),
        ..request(id, 1_000_000)
    };
    store.insert_auth_request(&r).await.unwrap();
    let grant = TokenGrant {
        jti: jti.into(),
        token_type: "DPoP".into(),
        cnf_jkt: Some("jkt".into()),
        issued_at: 0,
        expires_at,
        status_list: 0,
        status_idx: 7,
    };
    store
        .decide_auth_request(None, &AuthReqId::from(id), &dev_approval(), Some(&grant))
        .await
        .unwrap()
        .unwrap();
}

#[test]
fn every_decision_method_reads_back_as_itself_and_nothing_else_is_one() {
    let mut texts = std::collections::BTreeSet::new();
    for method in DecisionMethod::ALL {
        assert_eq!(DecisionMethod::parse(method.as_str()).unwrap(), method);
        assert!(texts.insert(method.as_str()), "{method:?} spelled twice");
    }
    assert_eq!(
        DecisionMethod::parse("passkey+device_key").unwrap(),
        DecisionMethod::WALLET
    );
    for stranger in ["", "passkey", "Withdrawn", "dev "] {
        assert!(DecisionMethod::parse(stranger).is_err(), "{stranger:?}");
    }
}
