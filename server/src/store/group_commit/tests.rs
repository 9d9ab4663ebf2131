//! Tests of the group-commit writer, on both backends.

use super::{Done, WriteSet};
use crate::store::audit::NewAuditRecord;
use crate::store::baselines::SampleRecord;
use crate::store::testing::each_backend;
use crate::store::{StoreError, Tx};

fn event(subject: &str) -> NewAuditRecord {
    NewAuditRecord {
        at: 1,
        actor: "test".into(),
        kind: "test.work".into(),
        subject: subject.into(),
        detail: "{}".into(),
    }
}

/// Traced decisions (events and baseline samples, PostgreSQL's single-statement
/// path) from two replicas at once, so that guesses of the head go stale, and with
/// details large enough that a batch needs several statements: every event is in
/// one intact chain and every sample is stored exactly once.
#[tokio::test]
async fn traces_from_two_replicas_are_each_written_once() {
    each_backend(|store| async move {
        let other = store.connect_again().await.unwrap();
        let decide = |s: &crate::store::Store, i: usize| {
            let s = s.clone();
            async move {
                let mut e = event(&format!("d{i}"));
                // Every third about 5 KB: a batch of them exceeds one statement.
                e.detail = format!("{{\"pad\":\"{}\"}}", "x".repeat(5000 * (i % 3 / 2)));
                let sample = SampleRecord {
                    client_id: "agent".into(),
                    action: format!("act{}", i % 2),
                    at_ms: 1_000 + i as i64,
                    quantity: Some(i as f64),
                    amount: None,
                };
                s.write(WriteSet {
                    events: vec![e],
                    samples: vec![sample],
                    ..WriteSet::default()
                })
                .await
                .unwrap();
            }
        };
        futures_util::future::join(
            futures_util::future::join_all((0..40).map(|i| decide(&store, i))),
            futures_util::future::join_all((40..80).map(|i| decide(&other, i))),
        )
        .await;
        let report =
            crate::audit::verify(&store, &countersign_jose::JwkSet::default(), &test_log())
                .await
                .unwrap();
        assert!(report.intact && report.events == 80, "{report:?}");
        let mut subjects: Vec<String> = store
            .audit_events_of_kind("test.work", 0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.subject)
            .collect();
        subjects.sort();
        let mut expected: Vec<String> = (0..80).map(|i| format!("d{i}")).collect();
        expected.sort();
        assert_eq!(subjects, expected);
        for action in ["act0", "act1"] {
            let samples = store.samples("agent", action, 0, 1000).await.unwrap();
            let mut at: Vec<i64> = samples.iter().map(|s| s.at_ms).collect();
            at.sort();
            let want: Vec<i64> = (0..80)
                .filter(|i| format!("act{}", i % 2) == action)
                .map(|i| 1_000 + i)
                .collect();
            assert_eq!(at, want, "{action}");
        }
        other.close().await;
    })
    .await;
}

/// Works batched together commit together, but one that fails rolls back only its
/// own savepoint: its neighbour's writes and events persist, its own do not.
#[tokio::test]
async fn a_failing_work_rolls_back_alone() {
    each_backend(|store| async move {
        let work = |jti: &'static str, fail: bool| {
            let store = store.clone();
            async move {
                store
                    .write_with(move |conn| {
                        Box::pin(async move {
                            let step = async {
                                let mut tx = Tx::nested(conn).await?;
                                sqlx::query(
                                    "INSERT INTO seen_jtis (namespace, jti, expires_at) VALUES ('t', $1, 9)",
                                )
                                .bind(jti)
                                .execute(tx.conn())
                                .await?;
                                if fail {
                                    return Err(StoreError::Conflict);
                                }
                                tx.commit().await?;
                                Ok(())
                            }
                            .await;
                            Done {
                                result: step,
                                events: vec![event(jti)],
                            }
                        })
                    })
                    .await
            }
        };
        let (ok, failed) = tokio::join!(work("kept", false), work("dropped", true));
        ok.unwrap();
        assert!(matches!(failed, Err(StoreError::Conflict)), "{failed:?}");
        // The kept insert persists (a second use is refused); the dropped one does not.
        assert!(!store.remember_jti("t", "kept", 9).await.unwrap());
        assert!(store.remember_jti("t", "dropped", 9).await.unwrap());
        let events = store
            .audit_events_of_kind("test.work", 0, 10)
            .await
            .unwrap();
        let subjects: Vec<&str> = events.iter().map(|e| e.subject.as_str()).collect();
        assert_eq!(subjects, ["kept"]);
        let report = crate::audit::verify(&store, &countersign_jose::JwkSet::default(), &test_log())
            .await
            .unwrap();
        assert!(report.intact && report.events == 1, "{report:?}");
    })
    .await;
}

fn test_log() -> crate::audit::log::AuditLog {
    let key = countersign_tlog::note::generate_pkcs8().unwrap();
    crate::audit::log::AuditLog::new("test/audit", &key).unwrap()
}

/// Sets queued without waiting are all committed once `settle` returns, which `close`
/// calls before the pools go: a clean stop loses none.
#[tokio::test]
async fn submitted_sets_are_committed_once_settled() {
    each_backend(|store| async move {
        for i in 0..50 {
            let set = WriteSet {
                events: vec![event(&format!("s{i}"))],
                ..WriteSet::default()
            };
            store.submit(set).await.unwrap();
        }
        store.batch_writer.settle().await;
        let written = store
            .audit_events_of_kind("test.work", 0, 100)
            .await
            .unwrap();
        assert_eq!(written.len(), 50);
        // Nothing queued: settles at once.
        store.batch_writer.settle().await;
    })
    .await;
}

fn session_update(session: &str, at_ms: i64, class: &str) -> crate::store::sessions::SessionUpdate {
    crate::store::sessions::SessionUpdate {
        client_id: "agent".into(),
        session_id: session.into(),
        at_ms,
        class: class.into(),
        classification: (class == "read").then(|| "confidential".to_owned()),
    }
}

/// Session updates are written per batch, a session's several updates as one row: none
/// is lost or counted twice, whether they share a statement (written directly with
/// duplicates, which PostgreSQL refuses to apply twice to one row) or come from
/// concurrent writers, and later batches add to what is there.
#[tokio::test]
async fn a_batch_of_session_updates_counts_each_once() {
    each_backend(|store| async move {
        let updates = [
            session_update("s1", 5, "read"),
            session_update("s1", 3, "external"),
            session_update("s1", 9, "read"),
            session_update("s2", 4, "external"),
        ];
        let mut tx = store.begin().await.unwrap();
        let refs: Vec<_> = updates.iter().collect();
        super::sessions::record_all_on(tx.conn(), &refs)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let s1 = store.session("agent", "s1").await.unwrap();
        assert_eq!(s1.actions, 3);
        assert_eq!(s1.classes, ["external", "read"]);
        assert_eq!(s1.classifications, ["confidential"]);
        assert_eq!(store.session("agent", "s2").await.unwrap().actions, 1);

        let write = |i: i64| {
            let store = store.clone();
            async move {
                let session = if i % 3 == 0 { "s2" } else { "s1" };
                let class = if i % 2 == 0 { "read" } else { "write" };
                store
                    .write(WriteSet {
                        session: Some(session_update(session, 100 + i, class)),
                        events: vec![event(&format!("e{i}"))],
                        ..WriteSet::default()
                    })
                    .await
                    .unwrap();
            }
        };
        futures_util::future::join_all((0..30).map(write)).await;
        let s1 = store.session("agent", "s1").await.unwrap();
        let s2 = store.session("agent", "s2").await.unwrap();
        assert_eq!((s1.actions, s2.actions), (3 + 20, 1 + 10));
        assert_eq!(s1.classes, ["external", "read", "write"]);
        assert_eq!(s2.classes, ["external", "read", "write"]);
        assert_eq!(s2.classifications, ["confidential"]);
    })
    .await;
}
