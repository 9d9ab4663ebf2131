//! Single-use console sign-in links: the token's hash, its role, who made it, its expiry,
//! and when it was used (once).

use sqlx::Row;

use super::{Store, StoreError, Tx};

/// A link as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInLinkRecord {
    pub id: String,
    pub token_hash: String,
    pub role: String,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl Store {
    pub async fn insert_sign_in_link(
        &self,
        tx: &mut Tx<'_>,
        link: &SignInLinkRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO console_sign_in_links \
             (id, token_hash, role, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&link.id)
        .bind(&link.token_hash)
        .bind(&link.role)
        .bind(&link.created_by)
        .bind(link.created_at)
        .bind(link.expires_at)
        .execute(tx.conn())
        .await
        .map_err(StoreError::from_insert)?;
        Ok(())
    }

    /// Marks the unused, unexpired link with this hash used, inside `tx`, and returns it;
    /// `None` when there is none (unknown, expired or already used). One statement, so two
    /// redemptions of one link cannot both succeed.
    pub async fn use_sign_in_link(
        &self,
        tx: &mut Tx<'_>,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<SignInLinkRecord>, StoreError> {
        let row = sqlx::query(
            "UPDATE console_sign_in_links SET used_at = $2 \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 \
             RETURNING id, token_hash, role, created_by, created_at, expires_at",
        )
        .bind(token_hash)
        .bind(now_ms)
        .fetch_optional(tx.conn())
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(SignInLinkRecord {
            id: row.try_get("id")?,
            token_hash: row.try_get("token_hash")?,
            role: row.try_get("role")?,
            created_by: row.try_get("created_by")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
        }))
    }
}
