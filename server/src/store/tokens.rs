//! The `tokens` aggregate: one row per access token issued, for introspection and
//! revocation. The unique `auth_req_id` column is the last line of defence against issuing
//! twice for one approval.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, Tx};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub jti: String,
    pub auth_req_id: String,
    pub client_id: String,
    pub subject: String,
    pub scope: String,
    /// `Bearer` or `DPoP`.
    pub token_type: String,
    pub cnf_jkt: Option<String>,
    pub authorization_details: Option<String>,
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str = "jti, auth_req_id, client_id, subject, scope, token_type, cnf_jkt, authorization_details, \
    issued_at, expires_at, revoked_at";

fn from_row(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        jti: row.try_get("jti")?,
        auth_req_id: row.try_get("auth_req_id")?,
        client_id: row.try_get("client_id")?,
        subject: row.try_get("subject")?,
        scope: row.try_get("scope")?,
        token_type: row.try_get("token_type")?,
        cnf_jkt: row.try_get("cnf_jkt")?,
        authorization_details: row.try_get("authorization_details")?,
        issued_at: row.try_get("issued_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

impl Store {
    pub async fn insert_token(&self, tx: &mut Tx, t: &TokenRecord) -> Result<(), StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO tokens ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ));
        sqlx::query(sql)
            .bind(&t.jti)
            .bind(&t.auth_req_id)
            .bind(&t.client_id)
            .bind(&t.subject)
            .bind(&t.scope)
            .bind(&t.token_type)
            .bind(&t.cnf_jkt)
            .bind(&t.authorization_details)
            .bind(t.issued_at)
            .bind(t.expires_at)
            .bind(t.revoked_at)
            .execute(tx.conn())
            .await
            .map_err(StoreError::from_insert)?;
        Ok(())
    }

    pub async fn token(&self, jti: &str) -> Result<Option<TokenRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM tokens WHERE jti = $1"));
        let row = sqlx::query(sql)
            .bind(jti)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Marks a client's token revoked; idempotent. Returns false when the token is unknown
    /// or belongs to another client.
    pub async fn revoke_token(
        &self,
        jti: &str,
        client_id: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE jti = $2 AND client_id = $3",
        )
        .bind(now_ms)
        .bind(jti)
        .bind(client_id)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
