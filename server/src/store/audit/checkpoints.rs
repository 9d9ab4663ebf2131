//! Checkpoints of the audit chain: the chain's head at some point, signed by the server's
//! key, so that rewriting or cutting the trail up to it shows.

use sqlx::Row;

use crate::store::{Store, StoreError};

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
}
