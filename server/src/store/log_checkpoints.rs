//! The audit trail as a Merkle-tree log: its signed checkpoints, the witnesses' states,
//! and the event hashes the tree's leaves are made of (`crate::audit::log`).

use sqlx::Row;

use super::{Store, StoreError};

/// A signed checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogCheckpointRecord {
    /// How many events the tree holds.
    pub size: i64,
    /// The tree's root, base64.
    pub root: String,
    /// Unix milliseconds when it was signed.
    pub at: i64,
    /// The signed note (c2sp.org/signed-note), with witness cosignatures appended.
    pub note: String,
}

fn record(r: &sqlx::any::AnyRow) -> Result<LogCheckpointRecord, StoreError> {
    Ok(LogCheckpointRecord {
        size: r.try_get("size")?,
        root: r.try_get("root")?,
        at: r.try_get("at")?,
        note: r.try_get("note")?,
    })
}

impl Store {
    /// Records a checkpoint; one per size (a second signing of the same size is ignored).
    pub async fn insert_log_checkpoint(&self, c: &LogCheckpointRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO log_checkpoints (size, root, at, note) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (size) DO NOTHING",
        )
        .bind(c.size)
        .bind(&c.root)
        .bind(c.at)
        .bind(&c.note)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Replaces the note of checkpoint `size` (with cosignatures added).
    pub async fn update_log_checkpoint_note(
        &self,
        size: i64,
        note: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE log_checkpoints SET note = $2 WHERE size = $1")
            .bind(size)
            .bind(note)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// The newest checkpoint.
    pub async fn latest_log_checkpoint(&self) -> Result<Option<LogCheckpointRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT size, root, at, note FROM log_checkpoints ORDER BY size DESC LIMIT 1",
        )
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(record).transpose()
    }

    /// The smallest checkpoint covering at least `size` events.
    pub async fn log_checkpoint_covering(
        &self,
        size: i64,
    ) -> Result<Option<LogCheckpointRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT size, root, at, note FROM log_checkpoints WHERE size >= $1 ORDER BY size LIMIT 1",
        )
        .bind(size)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(record).transpose()
    }

    /// Every checkpoint, oldest first.
    pub async fn log_checkpoints(&self) -> Result<Vec<LogCheckpointRecord>, StoreError> {
        let rows = sqlx::query("SELECT size, root, at, note FROM log_checkpoints ORDER BY size")
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(record).collect()
    }

    /// The `(seq, hash)` of events with `seq > after`, oldest first, at most `limit`.
    pub async fn audit_hashes_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let rows =
            sqlx::query("SELECT seq, hash FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(after)
                .bind(limit)
                .fetch_all(self.reader())
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("seq")?, r.try_get("hash")?)))
            .collect()
    }

    /// The size of the last checkpoint `witness` cosigned (0 when it never did).
    pub async fn witness_size(&self, witness: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT size FROM witness_states WHERE witness = $1")
            .bind(witness)
            .fetch_optional(self.reader())
            .await?;
        Ok(match row {
            Some(r) => r.try_get("size")?,
            None => 0,
        })
    }

    /// Records that `witness` now holds a checkpoint of `size`.
    pub async fn set_witness_size(
        &self,
        witness: &str,
        size: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO witness_states (witness, size, at) VALUES ($1, $2, $3) \
             ON CONFLICT (witness) DO UPDATE SET size = excluded.size, at = excluded.at",
        )
        .bind(witness)
        .bind(size)
        .bind(now_ms)
        .execute(self.writer())
        .await?;
        Ok(())
    }
}
