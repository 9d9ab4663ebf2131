//! The `admin_passkeys` aggregate: console passkeys, the relying party's stored state of
//! each, the role it signs in with, and when it was last used or revoked.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, Tx};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminPasskeyRecord {
    /// base64url credential ID.
    pub id: String,
    pub label: String,
    pub role: String,
    pub user_handle: String,
    pub static_state: String,
    pub dynamic_state: String,
    pub transports: i64,
    /// Who registered it (`admin-key:ID`).
    pub created_by: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str = "id, label, role, user_handle, static_state, dynamic_state, transports, \
                       created_by, created_at, last_used_at, revoked_at";

fn from_row(row: &AnyRow) -> Result<AdminPasskeyRecord, StoreError> {
    Ok(AdminPasskeyRecord {
        id: row.try_get("id")?,
        label: row.try_get("label")?,
        role: row.try_get("role")?,
        user_handle: row.try_get("user_handle")?,
        static_state: row.try_get("static_state")?,
        dynamic_state: row.try_get("dynamic_state")?,
        transports: row.try_get("transports")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

/// How many passkeys the console lists at most (newest first).
pub const LIST_LIMIT: i64 = 200;

impl Store {
    pub async fn insert_admin_passkey(
        &self,
        tx: &mut Tx<'_>,
        p: &AdminPasskeyRecord,
    ) -> Result<(), StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO admin_passkeys ({COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ));
        sqlx::query(sql)
            .bind(&p.id)
            .bind(&p.label)
            .bind(&p.role)
            .bind(&p.user_handle)
            .bind(&p.static_state)
            .bind(&p.dynamic_state)
            .bind(p.transports)
            .bind(&p.created_by)
            .bind(p.created_at)
            .bind(p.last_used_at)
            .bind(p.revoked_at)
            .execute(tx.conn())
            .await
            .map_err(StoreError::from_insert)?;
        Ok(())
    }

    /// The passkey with credential ID `id`, revoked or not.
    pub async fn admin_passkey(&self, id: &str) -> Result<Option<AdminPasskeyRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM admin_passkeys WHERE id = $1"
        ));
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// The newest passkeys, revoked ones included.
    pub async fn list_admin_passkeys(&self) -> Result<Vec<AdminPasskeyRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM admin_passkeys ORDER BY created_at DESC, id LIMIT {LIST_LIMIT}"
        ));
        let rows = sqlx::query(sql).fetch_all(self.reader()).await?;
        rows.iter().map(from_row).collect()
    }

    /// Stores a passkey's state after a sign-in, inside `tx`, unless it was revoked
    /// meanwhile: `false` then.
    pub async fn use_admin_passkey(
        &self,
        tx: &mut Tx<'_>,
        id: &str,
        dynamic_state: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE admin_passkeys SET dynamic_state = $2, last_used_at = $3 \
             WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(dynamic_state)
        .bind(now_ms)
        .execute(tx.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Revokes a passkey inside `tx`; `false` when it is unknown or already revoked.
    pub async fn revoke_admin_passkey(
        &self,
        tx: &mut Tx<'_>,
        id: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE admin_passkeys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(now_ms)
        .execute(tx.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
