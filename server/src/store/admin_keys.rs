//! Admin API keys, stored as SHA-256 hashes of high-entropy secrets.

use sqlx::Row;

use super::{Store, StoreError};

impl Store {
    pub async fn insert_admin_key(
        &self,
        id: &str,
        name: &str,
        key_hash: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO admin_keys (id, name, key_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(name)
        .bind(key_hash)
        .bind(now_ms)
        .execute(self.writer())
        .await
        .map_err(StoreError::from_insert)?;
        Ok(())
    }

    /// The id of the live admin key with this hash.
    pub async fn admin_key_by_hash(&self, key_hash: &str) -> Result<Option<String>, StoreError> {
        let row =
            sqlx::query("SELECT id FROM admin_keys WHERE key_hash = $1 AND revoked_at IS NULL")
                .bind(key_hash)
                .fetch_optional(self.reader())
                .await?;
        Ok(match row {
            Some(row) => Some(row.try_get("id")?),
            None => None,
        })
    }
}
