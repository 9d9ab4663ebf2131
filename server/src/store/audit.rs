//! The `audit_events` aggregate: an append-only, hash-chained list of events. This module
//! only stores and reads; chaining and verification are [`crate::audit`]'s.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, Tx};

/// One stored event, exactly as hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub seq: i64,
    /// Unix milliseconds.
    pub at: i64,
    pub actor: String,
    pub kind: String,
    pub subject: String,
    /// JSON text.
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The last event's sequence number and hash (`0`, `genesis` for an empty trail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    pub seq: i64,
    pub hash: String,
}

const COLUMNS: &str = "seq, at, actor, kind, subject, detail, prev_hash, hash";

fn from_row(row: &AnyRow) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        seq: row.try_get("seq")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        kind: row.try_get("kind")?,
        subject: row.try_get("subject")?,
        detail: row.try_get("detail")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

impl Store {
    /// Takes the next sequence number and returns it with the previous head's hash. The
    /// head row stays locked until `tx` ends, so concurrent appenders (on any replica)
    /// queue behind it and the chain follows commit order. Finish with
    /// [`Self::append_audit_event`] in the same transaction.
    pub async fn lock_audit_head(&self, tx: &mut Tx) -> Result<AuditHead, StoreError> {
        let row =
            sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
                .fetch_one(tx.conn())
                .await?;
        Ok(AuditHead {
            seq: row.try_get("seq")?,
            hash: row.try_get("hash")?,
        })
    }

    /// Stores `event` and makes it the head.
    pub async fn append_audit_event(
        &self,
        tx: &mut Tx,
        event: &AuditRecord,
    ) -> Result<(), StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO audit_events ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ));
        sqlx::query(sql)
            .bind(event.seq)
            .bind(event.at)
            .bind(&event.actor)
            .bind(&event.kind)
            .bind(&event.subject)
            .bind(&event.detail)
            .bind(&event.prev_hash)
            .bind(&event.hash)
            .execute(tx.conn())
            .await?;
        sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1 AND seq = $2")
            .bind(&event.hash)
            .bind(event.seq)
            .execute(tx.conn())
            .await?;
        Ok(())
    }

    pub async fn audit_head(&self) -> Result<AuditHead, StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(self.reader())
            .await?;
        Ok(AuditHead {
            seq: row.try_get("seq")?,
            hash: row.try_get("hash")?,
        })
    }

    /// Events with `seq > after`, oldest first, at most `limit`.
    pub async fn audit_events_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2"
        ));
        let rows = sqlx::query(sql)
            .bind(after)
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// The newest events, newest first, optionally only those about `subject`.
    pub async fn recent_audit_events(
        &self,
        subject: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_events WHERE ($1 = '' OR subject = $1) \
             ORDER BY seq DESC LIMIT $2"
        ));
        let rows = sqlx::query(sql)
            .bind(subject.unwrap_or(""))
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(from_row).collect()
    }
}
