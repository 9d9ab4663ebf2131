//! API keys (admin and SCIM), stored as SHA-256 hashes of high-entropy secrets, each with
//! a scope and an optional expiry.

use sqlx::Row;

use super::{Store, StoreError, Tx};

/// A key as stored (only the secret's hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminKeyRecord {
    pub id: String,
    pub name: String,
    pub key_hash: String,
    /// `admin` or `scim`.
    pub scope: String,
    /// `viewer`, `operator` or `admin` (admin-scoped keys; `admin` for SCIM tokens).
    pub role: String,
    pub expires_at: Option<i64>,
    pub created_at: i64,
}

impl Store {
    /// Stores a new key inside `tx`.
    pub async fn insert_admin_key(
        &self,
        tx: &mut Tx<'_>,
        key: &AdminKeyRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO admin_keys (id, name, key_hash, created_at, scope, expires_at, role) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&key.id)
        .bind(&key.name)
        .bind(&key.key_hash)
        .bind(key.created_at)
        .bind(&key.scope)
        .bind(key.expires_at)
        .bind(&key.role)
        .execute(tx.conn())
        .await
        .map_err(StoreError::from_insert)?;
        Ok(())
    }

    /// The id and role of the key with this hash, if it is live at `now_ms` and has
    /// `scope`.
    pub async fn admin_key_by_hash(
        &self,
        key_hash: &str,
        scope: &str,
        now_ms: i64,
    ) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT id, role FROM admin_keys WHERE key_hash = $1 AND revoked_at IS NULL \
             AND scope = $2 AND (expires_at IS NULL OR expires_at > $3)",
        )
        .bind(key_hash)
        .bind(scope)
        .bind(now_ms)
        .fetch_optional(self.reader())
        .await?;
        Ok(match row {
            Some(row) => Some((row.try_get("id")?, row.try_get("role")?)),
            None => None,
        })
    }

    /// Revokes, inside `tx`, the unrevoked key with this hash; its id, or `None` if there
    /// was none.
    pub async fn revoke_admin_key_by_hash(
        &self,
        tx: &mut Tx<'_>,
        key_hash: &str,
        now_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "UPDATE admin_keys SET revoked_at = $2 WHERE key_hash = $1 AND revoked_at IS NULL \
             RETURNING id",
        )
        .bind(key_hash)
        .bind(now_ms)
        .fetch_optional(tx.conn())
        .await?;
        Ok(match row {
            Some(row) => Some(row.try_get("id")?),
            None => None,
        })
    }

    /// Revokes, inside `tx`, the unrevoked key `id` of `scope`; its name, or `None` if
    /// there was none.
    pub async fn revoke_admin_key(
        &self,
        tx: &mut Tx<'_>,
        id: &str,
        scope: &str,
        now_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "UPDATE admin_keys SET revoked_at = $3 \
             WHERE id = $1 AND scope = $2 AND revoked_at IS NULL RETURNING name",
        )
        .bind(id)
        .bind(scope)
        .bind(now_ms)
        .fetch_optional(tx.conn())
        .await?;
        Ok(match row {
            Some(row) => Some(row.try_get("name")?),
            None => None,
        })
    }
}
