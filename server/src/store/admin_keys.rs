//! API keys (admin and SCIM), stored as SHA-256 hashes of high-entropy secrets, each with
//! a scope and an optional expiry.

use sqlx::Row;

use super::{Store, StoreError};

impl Store {
    pub async fn insert_admin_key(
        &self,
        id: &str,
        name: &str,
        key_hash: &str,
        scope: &str,
        expires_at: Option<i64>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO admin_keys (id, name, key_hash, created_at, scope, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(name)
        .bind(key_hash)
        .bind(now_ms)
        .bind(scope)
        .bind(expires_at)
        .execute(self.writer())
        .await
        .map_err(StoreError::from_insert)?;
        Ok(())
    }

    /// The id of the key with this hash, if it is live at `now_ms` and has `scope`.
    pub async fn admin_key_by_hash(
        &self,
        key_hash: &str,
        scope: &str,
        now_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT id FROM admin_keys WHERE key_hash = $1 AND revoked_at IS NULL AND scope = $2 \
             AND (expires_at IS NULL OR expires_at > $3)",
        )
        .bind(key_hash)
        .bind(scope)
        .bind(now_ms)
        .fetch_optional(self.reader())
        .await?;
        Ok(match row {
            Some(row) => Some(row.try_get("id")?),
            None => None,
        })
    }

    /// Revokes the live key with this hash; false if there was none.
    pub async fn revoke_admin_key_by_hash(
        &self,
        key_hash: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE admin_keys SET revoked_at = $2 WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(key_hash)
        .bind(now_ms)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
