//! The audit trail: every administrative effect (revocations, renewals, policy decisions,
//! offboarding, and every change to who may approve or what an agent may do) as an
//! append-only list of events, each hash-chained to the one before. Events are written in the same transaction as the effect they record, so
//! there is no effect without its event and no event without its effect.
//!
//! An event's hash is SHA-256 over the JSON array
//! `[seq, at, actor, kind, subject, detail, prev_hash]` (with `detail` as its stored JSON
//! text), hex encoded. The first event's `prev_hash` is `genesis`.

mod changes;
pub mod checkpoint;
pub mod export;
pub mod log;
pub mod sinks;

pub use changes::Changes;

use std::collections::HashMap;

use countersign_jose::JwkSet;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::store::audit::{AuditRecord, NewAuditRecord};
use crate::store::{Store, StoreError, Tx};

pub use crate::store::audit::EventKind;

/// What happened, before it is chained.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent<'a> {
    /// Who caused it: `admin-key:ID`, `scim-token:ID`, `admin:EMAIL` (an SSO sign-in),
    /// `cli`, `client:ID`, `human:SUBJECT`, `system`.
    pub actor: &'a str,
    pub kind: EventKind,
    /// What it is about (a credential id, an agent, a human).
    pub subject: &'a str,
    pub detail: Value,
}

/// An event as the admin API and CLI show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEvent {
    pub seq: i64,
    /// Unix milliseconds.
    pub at: i64,
    pub actor: String,
    pub kind: String,
    pub subject: String,
    #[schema(value_type = Object)]
    pub detail: Value,
    pub prev_hash: String,
    pub hash: String,
}

impl From<AuditRecord> for AuditEvent {
    fn from(r: AuditRecord) -> Self {
        AuditEvent {
            detail: serde_json::from_str(&r.detail).unwrap_or(Value::String(r.detail)),
            seq: r.seq,
            at: r.at,
            actor: r.actor,
            kind: r.kind,
            subject: r.subject,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

/// The result of checking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChainReport {
    /// True when every event's hash and link is intact and the head matches the last one.
    pub intact: bool,
    pub events: i64,
    /// Hash of the last event (`genesis` when there is none).
    pub head: String,
    /// The first event that does not verify, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broken_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Signed checkpoints that agree with the trail, and those signed by a key the server
    /// no longer publishes (not checked).
    #[serde(default)]
    pub checkpoints_verified: i64,
    #[serde(default)]
    pub checkpoints_unverifiable: i64,
    /// Signed log checkpoints (Merkle tree roots) kept in the database that agree with
    /// the trail. Copies held elsewhere are checked with `audit verify --checkpoint`.
    #[serde(default)]
    pub log_checkpoints_verified: i64,
}

pub use crate::store::audit::{GENESIS, event_hash};

impl NewEvent<'_> {
    /// The event as stored, happening at `at_ms`.
    pub fn record_at(&self, at_ms: i64) -> NewAuditRecord {
        NewAuditRecord {
            at: at_ms,
            actor: self.actor.to_owned(),
            kind: self.kind.as_str().to_owned(),
            subject: self.subject.to_owned(),
            detail: self.detail.to_string(),
        }
    }
}

/// Appends `event` inside `tx`; it becomes visible when `tx` commits. Returns its `seq`.
pub async fn record(
    store: &Store,
    tx: &mut Tx<'_>,
    at_ms: i64,
    event: NewEvent<'_>,
) -> Result<i64, StoreError> {
    let records = store
        .append_audit_events(tx, &[event.record_at(at_ms)])
        .await?;
    records
        .first()
        .map(|r| r.seq)
        .ok_or_else(|| StoreError::Corrupt("an appended event has no sequence number".into()))
}

/// Most events one listing returns.
pub const LIST_LIMIT: i64 = 1000;

/// The newest events (optionally only those about `subject`), newest first.
pub async fn recent(
    store: &Store,
    subject: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditEvent>, StoreError> {
    Ok(store
        .recent_audit_events(subject, limit.clamp(1, LIST_LIMIT))
        .await?
        .into_iter()
        .map(AuditEvent::from)
        .collect())
}

/// Recomputes every event's hash from its stored fields, checks each links to the one
/// before and that the head names the last, and checks the signed checkpoints against
/// the trail: the log's (signed by `log`, its Merkle roots recomputed) and the legacy
/// ones (with the server's published keys, `jwks`).
pub async fn verify(
    store: &Store,
    jwks: &JwkSet,
    log: &log::AuditLog,
) -> Result<ChainReport, StoreError> {
    let mut log_check = checkpoint::LogCheckpointCheck::new(store, log.origin()).await?;
    log_check.check_signatures(&log.verifier());
    // Keep only the hashes some checkpoint names: the trail may be long.
    let wanted: std::collections::HashSet<i64> = store
        .audit_checkpoints()
        .await?
        .iter()
        .map(|c| c.seq)
        .collect();
    let mut hashes = HashMap::new();
    let chain = verify_chain(store, |seq, hash| {
        if wanted.contains(&seq) {
            hashes.insert(seq, hash.to_owned());
        }
        log_check.see(seq, hash);
    })
    .await?;
    log_check.finish(chain.events);
    let checked = checkpoint::check(store, jwks, |seq| hashes.get(&seq).cloned()).await?;
    let mut report = ChainReport {
        checkpoints_verified: checked.verified,
        checkpoints_unverifiable: checked.unverifiable,
        log_checkpoints_verified: log_check.verified,
        ..chain
    };
    for (seq, reason) in [checked.broken, log_check.broken].into_iter().flatten() {
        if report.broken_at.is_none_or(|b| seq < b) {
            report.intact = false;
            report.broken_at = Some(seq);
            report.reason = Some(reason);
        }
    }
    Ok(report)
}

/// Whether `e` is the event expected next: number `expected_seq`, linked to `prev`, its
/// hash over its own fields. `Err` names the first broken event and why.
fn check_link(e: &AuditRecord, expected_seq: i64, prev: &str) -> Result<(), (i64, String)> {
    if e.seq != expected_seq {
        return Err((expected_seq, format!("event {expected_seq} is missing")));
    }
    if e.prev_hash != prev {
        return Err((e.seq, "prev_hash does not match the previous event".into()));
    }
    if e.fields_hash() != e.hash {
        return Err((e.seq, "the event's fields do not match its hash".into()));
    }
    Ok(())
}

/// The chain check alone; `seen` is told each event's hash as it is read.
async fn verify_chain(
    store: &Store,
    mut seen: impl FnMut(i64, &str),
) -> Result<ChainReport, StoreError> {
    // Read the head first: events appended while we read are past it and not checked.
    let head = store.audit_head().await?;
    let mut prev = GENESIS.to_owned();
    let mut expected_seq = 1;
    let broken = |seq: i64, reason: String, events: i64| ChainReport {
        intact: false,
        events,
        head: head.hash.clone(),
        broken_at: Some(seq),
        reason: Some(reason),
        checkpoints_verified: 0,
        checkpoints_unverifiable: 0,
        log_checkpoints_verified: 0,
    };
    loop {
        let page = store.audit_events_after(expected_seq - 1, 1000).await?;
        let Some(last) = page.last().map(|e| e.seq) else {
            break;
        };
        for e in page {
            if e.seq > head.seq {
                break;
            }
            if let Err((at, reason)) = check_link(&e, expected_seq, &prev) {
                return Ok(broken(at, reason, at - 1));
            }
            seen(e.seq, &e.hash);
            prev = e.hash;
            expected_seq += 1;
        }
        if last >= head.seq {
            break;
        }
    }
    let events = expected_seq - 1;
    if events != head.seq || prev != head.hash {
        return Ok(broken(
            events + 1,
            format!(
                "the head names event {} but the trail ends at {events}",
                head.seq
            ),
            events,
        ));
    }
    Ok(ChainReport {
        intact: true,
        events,
        head: head.hash,
        broken_at: None,
        reason: None,
        checkpoints_verified: 0,
        checkpoints_unverifiable: 0,
        log_checkpoints_verified: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::each_backend;
    use serde_json::json;

    /// An event linked to `prev`, hashed over its fields.
    fn linked(seq: i64, prev: &str) -> AuditRecord {
        let (at, actor, kind, subject, detail) = (seq * 10, "admin", "k", "s", "{}");
        AuditRecord {
            seq,
            at,
            actor: actor.into(),
            kind: kind.into(),
            subject: subject.into(),
            detail: detail.into(),
            prev_hash: prev.into(),
            hash: event_hash(seq, at, actor, kind, subject, detail, prev),
        }
    }

    #[test]
    fn a_link_is_the_next_number_on_the_previous_hash_with_its_own_hash() {
        let first = linked(1, GENESIS);
        assert!(check_link(&first, 1, GENESIS).is_ok());
        let second = linked(2, &first.hash);
        assert!(check_link(&second, 2, &first.hash).is_ok());
        assert_eq!(check_link(&second, 1, GENESIS).unwrap_err().0, 1);
        assert_eq!(check_link(&second, 2, GENESIS).unwrap_err().0, 2);
        let mut edited = second.clone();
        edited.detail = "{\"x\":1}".into();
        let (at, reason) = check_link(&edited, 2, &first.hash).unwrap_err();
        assert_eq!(at, 2);
        assert!(reason.contains("hash"), "{reason}");
    }

    /// [`super::verify`] with a fresh log key: these trails have no log checkpoints.
    async fn verify(store: &Store, jwks: &JwkSet) -> Result<ChainReport, StoreError> {
        let key = countersign_tlog::note::generate_pkcs8().unwrap();
        let log = log::AuditLog::new("as.example/audit", &key).unwrap();
        super::verify(store, jwks, &log).await
    }

    async fn append(store: &Store, n: i64) {
        for i in 0..n {
            let mut tx = store.begin().await.unwrap();
            record(
                store,
                &mut tx,
                1_000 + i,
                NewEvent {
                    actor: "cli",
                    kind: EventKind::CredentialRevoked,
                    subject: &format!("c{i}"),
                    detail: json!({"reason": "test", "i": i}),
                },
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
        }
    }

    #[tokio::test]
    async fn chain_verifies_and_rolled_back_events_leave_no_trace() {
        each_backend(|store| async move {
            let empty = verify(&store, &JwkSet::default()).await.unwrap();
            assert!(empty.intact);
            assert_eq!((empty.events, empty.head.as_str()), (0, GENESIS));

            append(&store, 3).await;
            // An event whose transaction rolls back takes its sequence number with it.
            let mut tx = store.begin().await.unwrap();
            let event = NewEvent {
                actor: "cli",
                kind: EventKind::AgentUpdated,
                subject: "gone",
                detail: json!({}),
            };
            record(&store, &mut tx, 5, event).await.unwrap();
            drop(tx);
            append(&store, 1).await;

            let report = verify(&store, &JwkSet::default()).await.unwrap();
            assert!(report.intact, "{report:?}");
            assert_eq!(report.events, 4);
            let newest = recent(&store, None, 10).await.unwrap();
            assert_eq!(newest.len(), 4);
            assert_eq!(newest[0].seq, 4);
            assert_eq!(newest[0].prev_hash, newest[1].hash);
            assert_eq!(newest[3].prev_hash, GENESIS);
            assert_eq!(report.head, newest[0].hash);
            assert_eq!(recent(&store, Some("c1"), 10).await.unwrap().len(), 1);
        })
        .await;
    }

    #[tokio::test]
    async fn tampering_is_found_at_the_edited_event() {
        each_backend(|store| async move {
            append(&store, 5).await;
            sqlx::query("UPDATE audit_events SET detail = '{\"reason\":\"benign\"}' WHERE seq = 3")
                .execute(store.writer())
                .await
                .unwrap();
            let report = verify(&store, &JwkSet::default()).await.unwrap();
            assert!(!report.intact);
            assert_eq!(report.broken_at, Some(3));

            // Recomputing the edited event's hash moves the break to the next link.
            let e = store.audit_events_after(2, 1).await.unwrap().remove(0);
            let forged = e.fields_hash();
            sqlx::query("UPDATE audit_events SET hash = $1 WHERE seq = 3")
                .bind(forged)
                .execute(store.writer())
                .await
                .unwrap();
            assert_eq!(
                verify(&store, &JwkSet::default()).await.unwrap().broken_at,
                Some(4)
            );

            // Deleting the newest event is caught by the head.
            sqlx::query("DELETE FROM audit_events WHERE seq >= 3")
                .execute(store.writer())
                .await
                .unwrap();
            let report = verify(&store, &JwkSet::default()).await.unwrap();
            assert_eq!((report.intact, report.broken_at), (false, Some(3)));
        })
        .await;
    }

    /// Each replica guesses the head from its own appends (`store::audit::HeadGuess`):
    /// two stores on one database appending in turn (every guess stale) and at once,
    /// through transactions and the group commit, still form one chain; a transaction may
    /// append twice; a group-commit work may not append in its savepoint.
    #[tokio::test]
    async fn replicas_appending_in_turn_and_at_once_form_one_chain() {
        each_backend(|store| async move {
            let other = store.connect_again().await.unwrap();
            for _ in 0..3 {
                append(&store, 1).await;
                append(&other, 2).await;
            }
            let batched = |s: &Store, i: usize| {
                let s = s.clone();
                async move {
                    let events = (0..3)
                        .map(|j| NewAuditRecord {
                            at: 7,
                            actor: "test".into(),
                            kind: "test.batched".into(),
                            subject: format!("b{i}.{j}"),
                            detail: "{}".into(),
                        })
                        .collect();
                    s.write(crate::store::group_commit::WriteSet {
                        events,
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                }
            };
            futures_util::future::join4(
                futures_util::future::join_all((0..8).map(|_| append(&store, 2))),
                futures_util::future::join_all((0..8).map(|_| append(&other, 2))),
                futures_util::future::join_all((0..8).map(|i| batched(&store, i))),
                futures_util::future::join_all((8..16).map(|i| batched(&other, i))),
            )
            .await;
            let mut tx = store.begin().await.unwrap();
            for subject in ["twice-1", "twice-2"] {
                let event = NewEvent {
                    actor: "cli",
                    kind: EventKind::AgentUpdated,
                    subject,
                    detail: json!({}),
                };
                record(&store, &mut tx, 9, event).await.unwrap();
            }
            tx.commit().await.unwrap();
            let handle = store.clone();
            let refused = store
                .write_with(move |conn| {
                    Box::pin(async move {
                        let result = async {
                            let mut tx = Tx::nested(conn).await?;
                            let event = NewEvent {
                                actor: "cli",
                                kind: EventKind::AgentUpdated,
                                subject: "nested",
                                detail: json!({}),
                            };
                            record(&handle, &mut tx, 9, event).await
                        }
                        .await;
                        crate::store::group_commit::Done {
                            result,
                            events: Vec::new(),
                        }
                    })
                })
                .await;
            assert!(matches!(refused, Err(StoreError::Misuse(_))), "{refused:?}");

            let report = verify(&other, &JwkSet::default()).await.unwrap();
            assert!(report.intact, "{report:?}");
            assert_eq!(report.events, 9 + 32 + 48 + 2);
            other.close().await;
        })
        .await;
    }

    #[tokio::test]
    async fn concurrent_appends_form_one_chain() {
        each_backend(|store| async move {
            futures_util::future::join_all((0..16).map(|_| append(&store, 2))).await;
            let report = verify(&store, &JwkSet::default()).await.unwrap();
            assert!(report.intact, "{report:?}");
            assert_eq!(report.events, 32);
        })
        .await;
    }
}
