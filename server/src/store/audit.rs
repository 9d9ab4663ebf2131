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

/// An event to append: everything but its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditRecord {
    pub at: i64,
    pub actor: String,
    pub kind: String,
    pub subject: String,
    /// JSON text.
    pub detail: String,
}

/// The first event's `prev_hash`.
pub const GENESIS: &str = "genesis";

/// The hash of an event: SHA-256 over the JSON array
/// `[seq, at, actor, kind, subject, detail, prev_hash]`, hex encoded.
pub fn event_hash(
    seq: i64,
    at: i64,
    actor: &str,
    kind: &str,
    subject: &str,
    detail: &str,
    prev_hash: &str,
) -> String {
    use sha2::Digest as _;
    // Serialized straight into the hasher: the same bytes as the JSON array's compact
    // text, without building it (this runs once per traced decision).
    let mut hasher = HashWriter(sha2::Sha256::new());
    let preimage = (seq, at, actor, kind, subject, detail, prev_hash);
    // Writing into a hasher cannot fail, and the tuple is always serializable.
    let _ = serde_json::to_writer(&mut hasher, &preimage);
    hex(&hasher.0.finalize())
}

struct HashWriter(sha2::Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        sha2::Digest::update(&mut self.0, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * bytes.len());
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// 64 events × 8 columns per statement keeps within bind-parameter limits.
const INSERT_CHUNK: usize = 64;

/// Appends `events` in order on `conn`, inside its transaction: takes their sequence
/// numbers by updating the head row (which stays locked until the transaction ends, so
/// appenders on any replica queue behind it and the chain follows commit order), chains
/// them, and makes the last one the head. Returns their records.
pub(crate) async fn append_on(
    conn: &mut sqlx::AnyConnection,
    events: &[NewAuditRecord],
) -> Result<Vec<AuditRecord>, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let n = i64::try_from(events.len()).unwrap_or(i64::MAX);
    let row = sqlx::query("UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash")
        .bind(n)
        .fetch_one(&mut *conn)
        .await?;
    let last: i64 = row.try_get("seq")?;
    let mut prev: String = row.try_get("hash")?;
    let mut records = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        let seq = last - n + 1 + i as i64;
        let hash = event_hash(seq, e.at, &e.actor, &e.kind, &e.subject, &e.detail, &prev);
        records.push(AuditRecord {
            seq,
            at: e.at,
            actor: e.actor.clone(),
            kind: e.kind.clone(),
            subject: e.subject.clone(),
            detail: e.detail.clone(),
            prev_hash: std::mem::replace(&mut prev, hash.clone()),
            hash,
        });
    }
    let chunks = super::statement_chunks(&records, INSERT_CHUNK, |e| {
        e.detail.len() + e.actor.len() + e.kind.len() + e.subject.len() + 2 * 64 + 16
    });
    for chunk in chunks {
        let values: Vec<String> = (0..chunk.len())
            .map(|r| {
                let p: Vec<String> = (1..=8).map(|c| format!("${}", r * 8 + c)).collect();
                format!("({})", p.join(", "))
            })
            .collect();
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO audit_events ({COLUMNS}) VALUES {}",
            values.join(", ")
        ));
        let query = chunk.iter().fold(sqlx::query(sql), |q, e| {
            q.bind(e.seq)
                .bind(e.at)
                .bind(e.actor.clone())
                .bind(e.kind.clone())
                .bind(e.subject.clone())
                .bind(e.detail.clone())
                .bind(e.prev_hash.clone())
                .bind(e.hash.clone())
        });
        query.execute(&mut *conn).await?;
    }
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1 AND seq = $2")
        .bind(&prev)
        .bind(last)
        .execute(&mut *conn)
        .await?;
    Ok(records)
}

impl Store {
    /// Appends `events` inside `tx`; they become visible when it commits.
    pub async fn append_audit_events(
        &self,
        tx: &mut Tx<'_>,
        events: &[NewAuditRecord],
    ) -> Result<Vec<AuditRecord>, StoreError> {
        append_on(tx.conn(), events).await
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

    /// Events of `kind` at or after `since_ms`, newest first, at most `limit`.
    pub async fn audit_events_of_kind(
        &self,
        kind: &str,
        since_ms: i64,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_events WHERE kind = $1 AND at >= $2 \
             ORDER BY seq DESC LIMIT $3"
        ));
        let rows = sqlx::query(sql)
            .bind(kind)
            .bind(since_ms)
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(from_row).collect()
    }
}

/// A signed statement of the chain's head at some point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRecord {
    pub seq: i64,
    pub hash: String,
    pub at: i64,
    /// Compact JWS by the server's key over `{iss, seq, hash, iat}`.
    pub jws: String,
}

impl Store {
    pub async fn insert_audit_checkpoint(&self, c: &CheckpointRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_checkpoints (seq, hash, at, jws) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (seq) DO NOTHING",
        )
        .bind(c.seq)
        .bind(&c.hash)
        .bind(c.at)
        .bind(&c.jws)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Every checkpoint, oldest first.
    pub async fn audit_checkpoints(&self) -> Result<Vec<CheckpointRecord>, StoreError> {
        let rows = sqlx::query("SELECT seq, hash, at, jws FROM audit_checkpoints ORDER BY seq")
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(CheckpointRecord {
                    seq: r.try_get("seq")?,
                    hash: r.try_get("hash")?,
                    at: r.try_get("at")?,
                    jws: r.try_get("jws")?,
                })
            })
            .collect()
    }

    /// Events with `since_ms <= at < until_ms` and `seq > after`, oldest first, at most
    /// `limit` (for exports, page by page).
    pub async fn audit_events_between(
        &self,
        since_ms: i64,
        until_ms: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_events WHERE seq > $1 AND at >= $2 AND at < $3 \
             ORDER BY seq LIMIT $4"
        ));
        let rows = sqlx::query(sql)
            .bind(after)
            .bind(since_ms)
            .bind(until_ms)
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(from_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::event_hash;
    use sha2::Digest as _;

    /// The chain's definition: SHA-256 of the compact JSON array. Streaming must not
    /// change a single byte of it (existing trails would stop verifying).
    #[test]
    fn hash_is_sha256_of_the_compact_json_array() {
        let detail = r#"{"amount":"1200","note":"quote \" and \\ backslash, é"}"#;
        let preimage = serde_json::json!([
            7,
            1_700_000_000_000_i64,
            "agent:a",
            "decision.made",
            "req-1",
            detail,
            "genesis"
        ]);
        let expected: String = sha2::Sha256::digest(preimage.to_string().as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let got = event_hash(
            7,
            1_700_000_000_000,
            "agent:a",
            "decision.made",
            "req-1",
            detail,
            "genesis",
        );
        assert_eq!(got, expected);
        assert_ne!(
            got,
            event_hash(
                8,
                1_700_000_000_000,
                "agent:a",
                "decision.made",
                "req-1",
                detail,
                "genesis"
            )
        );
    }
}
