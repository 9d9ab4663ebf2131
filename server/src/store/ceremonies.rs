//! The `webauthn_ceremonies` aggregate: WebAuthn ceremonies in flight, keyed by their
//! single-use challenge. Taking one deletes it, so a challenge can be answered once.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, Tx};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CeremonyRecord {
    /// base64url of the 16-byte challenge.
    pub challenge: String,
    /// `registration` or `assertion`.
    pub kind: String,
    /// The relying party's serialized server state (base64url).
    pub state: String,
    pub invitation_id: Option<String>,
    pub device_id: Option<String>,
    pub auth_req_id: Option<String>,
    /// Hash of the transaction the device was shown (assertions).
    pub transaction_hash: Option<String>,
    /// The console session that started a console passkey registration.
    pub admin_key_id: Option<String>,
    pub expires_at: i64,
}

const COLUMNS: &str = "challenge, kind, state, invitation_id, device_id, auth_req_id, transaction_hash, \
                       admin_key_id, expires_at";

fn from_row(row: &AnyRow) -> Result<CeremonyRecord, StoreError> {
    Ok(CeremonyRecord {
        challenge: row.try_get("challenge")?,
        kind: row.try_get("kind")?,
        state: row.try_get("state")?,
        invitation_id: row.try_get("invitation_id")?,
        device_id: row.try_get("device_id")?,
        auth_req_id: row.try_get("auth_req_id")?,
        transaction_hash: row.try_get("transaction_hash")?,
        admin_key_id: row.try_get("admin_key_id")?,
        expires_at: row.try_get("expires_at")?,
    })
}

impl Store {
    pub async fn insert_ceremony(&self, c: &CeremonyRecord) -> Result<(), StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO webauthn_ceremonies ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ));
        sqlx::query(sql)
            .bind(&c.challenge)
            .bind(&c.kind)
            .bind(&c.state)
            .bind(&c.invitation_id)
            .bind(&c.device_id)
            .bind(&c.auth_req_id)
            .bind(&c.transaction_hash)
            .bind(&c.admin_key_id)
            .bind(c.expires_at)
            .execute(self.writer())
            .await
            .map_err(StoreError::from_insert)?;
        Ok(())
    }

    /// Deletes and returns the unexpired ceremony of `kind` with `challenge`, inside `tx`:
    /// of two callers presenting the same challenge, one gets it.
    pub async fn take_ceremony(
        &self,
        tx: &mut Tx<'_>,
        challenge: &str,
        kind: &str,
        now_ms: i64,
    ) -> Result<Option<CeremonyRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "DELETE FROM webauthn_ceremonies WHERE challenge = $1 AND kind = $2 AND expires_at > $3 \
             RETURNING {COLUMNS}"
        ));
        let row = sqlx::query(sql)
            .bind(challenge)
            .bind(kind)
            .bind(now_ms)
            .fetch_optional(tx.conn())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Forgets ceremonies nobody finished.
    pub async fn purge_expired_ceremonies(&self, now_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM webauthn_ceremonies WHERE expires_at <= $1")
            .bind(now_ms)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected())
    }
}
