//! Issued access tokens. A token belongs to the authentication request that earned it and
//! is recorded on that row (`token_*` columns), so issuing is a single atomic statement and
//! a request can never carry two tokens. This module reads and revokes them by `jti`.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};

/// The identity of a token about to be issued, written together with the state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub jti: String,
    /// `Bearer` or `DPoP`.
    pub token_type: String,
    /// RFC 9449 key thumbprint the token is bound to.
    pub cnf_jkt: Option<String>,
    pub issued_at: i64,
    pub expires_at: i64,
    /// Token Status List entry: list id and index.
    pub status_list: i64,
    pub status_idx: i64,
}

/// An issued token as introspection and revocation see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub jti: String,
    pub auth_req_id: String,
    pub client_id: String,
    pub subject: String,
    pub scope: String,
    pub token_type: String,
    pub cnf_jkt: Option<String>,
    pub authorization_details: Option<String>,
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

fn from_row(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        jti: row.try_get("token_jti")?,
        auth_req_id: row.try_get("id")?,
        client_id: row.try_get("client_id")?,
        subject: row.try_get("subject")?,
        scope: row.try_get("scope")?,
        token_type: row.try_get("token_type")?,
        cnf_jkt: row.try_get("token_cnf_jkt")?,
        authorization_details: row.try_get("authorization_details")?,
        issued_at: row.try_get("token_issued_at")?,
        expires_at: row.try_get("token_expires_at")?,
        revoked_at: row.try_get("token_revoked_at")?,
    })
}

impl Store {
    pub async fn token(&self, jti: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, client_id, subject, scope, authorization_details, token_jti, token_type, token_cnf_jkt, \
             token_issued_at, token_expires_at, token_revoked_at FROM auth_requests WHERE token_jti = $1",
        )
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
            "UPDATE auth_requests SET token_revoked_at = COALESCE(token_revoked_at, $1) \
             WHERE token_jti = $2 AND client_id = $3",
        )
        .bind(now_ms)
        .bind(jti)
        .bind(client_id)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
