//! Issued access tokens. A token belongs to the authentication request that earned it and
//! is recorded on that row (`token_*` columns), so issuing is a single atomic statement and
//! a request can never carry two tokens. This module reads and revokes them by `jti`.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, Tx};

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
    pub revoked_reason: Option<String>,
    pub status_list: Option<i64>,
    pub status_idx: Option<i64>,
    pub task_id: Option<String>,
    /// The credential (jti) this one renews.
    pub renewal_of: Option<String>,
    /// The request whose approval this credential rests on: its own for a first
    /// credential, the original request's for a renewal.
    pub approval_id: String,
    /// When the approval was given, and by what method.
    pub decided_at: Option<i64>,
}

/// Which credentials an administrative query or revocation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSelector<'a> {
    All,
    Id(&'a str),
    /// This credential and every renewal descending from it.
    Lineage(&'a str),
    /// Held by this agent (client id).
    Agent(&'a str),
    /// Approved by this human (subject): they decided it in their wallet (whoever the
    /// request named: routed, group, role and four-eyes approvals included), or it named
    /// them and no person decided (a developer or a policy approval).
    Approver(&'a str),
    /// Resting on this human: approved by them, or requested in their name (whoever
    /// approved it). What offboarding and a revoked session end.
    RestingOn(&'a str),
    /// Held by agents this human (subject) owns.
    Owner(&'a str),
}

impl<'a> TokenSelector<'a> {
    /// SQL condition on `auth_requests` with `$1` bound to [`Self::value`].
    fn condition(self) -> &'static str {
        match self {
            TokenSelector::All => "$1 = ''",
            TokenSelector::Id(_) => "token_jti = $1",
            TokenSelector::Lineage(_) => {
                "token_jti IN (WITH RECURSIVE lineage (jti) AS (SELECT CAST($1 AS TEXT) \
                 UNION ALL SELECT r.token_jti FROM auth_requests r JOIN lineage l ON r.renewal_of = l.jti) \
                 SELECT jti FROM lineage)"
            }
            TokenSelector::Agent(_) => "client_id = $1",
            TokenSelector::Approver(_) => {
                "(decided_by = $1 OR (subject = $1 AND (decision_method IS NULL \
                 OR decision_method <> 'passkey+device_key')))"
            }
            TokenSelector::RestingOn(_) => "(decided_by = $1 OR subject = $1)",
            TokenSelector::Owner(_) => {
                "client_id IN (SELECT client_id FROM clients WHERE owner_subject = $1)"
            }
        }
    }

    /// A condition of the form `A OR B` as its two sides, each of which walks an index
    /// by itself (migration 0013); [`Store::tokens`] runs them apart and merges, since a
    /// planner without statistics (SQLite) scans every credential for the `OR`.
    fn sides(self) -> Option<[&'static str; 2]> {
        match self {
            TokenSelector::Approver(_) => Some([
                "decided_by = $1",
                "(subject = $1 AND (decision_method IS NULL \
                 OR decision_method <> 'passkey+device_key'))",
            ]),
            TokenSelector::RestingOn(_) => Some(["decided_by = $1", "subject = $1"]),
            _ => None,
        }
    }

    fn value(self) -> &'a str {
        match self {
            TokenSelector::All => "",
            TokenSelector::Id(v)
            | TokenSelector::Lineage(v)
            | TokenSelector::Agent(v)
            | TokenSelector::Approver(v)
            | TokenSelector::RestingOn(v)
            | TokenSelector::Owner(v) => v,
        }
    }
}

const TOKEN_COLUMNS: &str = "id, client_id, subject, scope, authorization_details, token_jti, token_type, token_cnf_jkt, \
    token_issued_at, token_expires_at, token_revoked_at, token_revoked_reason, token_status_list, token_status_idx, \
    task_id, renewal_of, COALESCE(approval_id, id) AS approval_root, decided_at";

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
        revoked_reason: row.try_get("token_revoked_reason")?,
        status_list: row.try_get("token_status_list")?,
        status_idx: row.try_get("token_status_idx")?,
        task_id: row.try_get("task_id")?,
        renewal_of: row.try_get("renewal_of")?,
        approval_id: row.try_get("approval_root")?,
        decided_at: row.try_get("decided_at")?,
    })
}

impl Store {
    pub async fn token(&self, jti: &str) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self.tokens(TokenSelector::Id(jti), 1).await?.pop())
    }

    /// Issued credentials matching `selector`, newest first, at most `limit`.
    pub async fn tokens(
        &self,
        selector: TokenSelector<'_>,
        limit: i64,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        let Some(sides) = selector.sides() else {
            return self
                .tokens_where(selector.condition(), selector.value(), limit)
                .await;
        };
        let mut all = Vec::new();
        for side in sides {
            all.extend(self.tokens_where(side, selector.value(), limit).await?);
        }
        all.sort_by(|a, b| {
            b.issued_at
                .cmp(&a.issued_at)
                .then_with(|| a.jti.cmp(&b.jti))
        });
        all.dedup_by(|a, b| a.jti == b.jti);
        all.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(all)
    }

    async fn tokens_where(
        &self,
        condition: &str,
        value: &str,
        limit: i64,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM auth_requests WHERE token_jti IS NOT NULL AND {condition} \
             ORDER BY token_issued_at DESC LIMIT $2"
        ));
        let rows = sqlx::query(sql)
            .bind(value)
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Revokes, inside `tx`, every unexpired, unrevoked credential matching `selector`
    /// with `reason`; returns their ids. Their status list bits are set from the next
    /// fetch after `tx` commits.
    pub async fn revoke_tokens(
        &self,
        tx: &mut Tx<'_>,
        selector: TokenSelector<'_>,
        reason: &str,
        now_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE auth_requests SET token_revoked_at = $2, token_revoked_reason = $3 \
             WHERE token_jti IS NOT NULL AND token_revoked_at IS NULL AND token_expires_at > $2 AND {} \
             RETURNING token_jti, token_status_list",
            selector.condition()
        ));
        // Unprepared, like deciding a request (`auth_requests::decide`): a cached generic
        // plan made while few credentials were live chose the partial index of everyone's
        // live credentials, with no index condition, for a single jti or agent.
        let rows = sqlx::query(sql)
            .persistent(false)
            .bind(selector.value())
            .bind(now_ms)
            .bind(reason)
            .fetch_all(tx.conn())
            .await?;
        let mut lists: Vec<i64> = rows
            .iter()
            .filter_map(|r| {
                r.try_get::<Option<i64>, _>("token_status_list")
                    .ok()
                    .flatten()
            })
            .collect();
        lists.sort_unstable();
        lists.dedup();
        // Every server's signed copy of these lists is now out of date.
        for list in lists {
            sqlx::query("UPDATE status_lists SET revision = revision + 1 WHERE id = $1")
                .bind(list)
                .execute(tx.conn())
                .await?;
        }
        rows.iter().map(|r| Ok(r.try_get("token_jti")?)).collect()
    }

    /// Records `renewal` (a new request row in state `issued`, carrying `grant`) as the
    /// renewal of credential `parent_jti`, provided that credential is still live
    /// (unrevoked, unexpired at `now_ms`), was never renewed before, and is held by
    /// `client_id`. Returns false when any of that fails. One statement, with a unique
    /// index on `renewal_of`: of concurrent renewals of one credential, one wins.
    pub async fn insert_renewal(
        &self,
        tx: &mut Tx<'_>,
        parent_jti: &str,
        client_id: &str,
        renewal_id: &str,
        grant: &TokenGrant,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO auth_requests (id, client_id, subject, scope, binding_message, acr_values, \
               authorization_details, delivery_mode, notification_token, status, created_at, expires_at, \
               interval_secs, decided_at, decided_by, decision_method, task_id, renewal_of, approval_id, \
               approval_jws, approval_device_jkt, \
               action, resource, policy_outcome, policy_refs, policy_reasons, risk_signals, validity_secs, \
               max_uses, dpop_jkt, \
               token_issued_at, token_jti, token_type, token_cnf_jkt, token_expires_at, \
               token_status_list, token_status_idx) \
             SELECT $1, client_id, subject, scope, binding_message, acr_values, authorization_details, \
               delivery_mode, NULL, 'issued', $2, $3, interval_secs, decided_at, decided_by, decision_method, \
               task_id, token_jti, COALESCE(approval_id, id), approval_jws, approval_device_jkt, \
               action, resource, policy_outcome, policy_refs, policy_reasons, risk_signals, validity_secs, \
               max_uses, dpop_jkt, \
               $4, $5, $10, $11, $3, $6, $7 \
             FROM auth_requests WHERE token_jti = $8 AND client_id = $9 \
               AND token_revoked_at IS NULL AND token_expires_at > $2",
        )
        // Unprepared: see `revoke_tokens`.
        .persistent(false)
        .bind(renewal_id)
        .bind(now_ms)
        .bind(grant.expires_at)
        .bind(grant.issued_at)
        .bind(&grant.jti)
        .bind(grant.status_list)
        .bind(grant.status_idx)
        .bind(parent_jti)
        .bind(client_id)
        .bind(&grant.token_type)
        .bind(&grant.cnf_jkt)
        .execute(tx.conn())
        .await;
        match inserted {
            Ok(done) => Ok(done.rows_affected() == 1),
            Err(e) if StoreError::from_insert_ref(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TokenSelector;

    /// The approver rule is written once: its two indexed sides are exactly its `OR`.
    #[test]
    fn split_conditions_are_the_same_rule() {
        for selector in [
            TokenSelector::Approver("alice"),
            TokenSelector::RestingOn("alice"),
        ] {
            let [a, b] = selector.sides().expect("the condition is split");
            assert_eq!(selector.condition(), format!("({a} OR {b})"));
        }
    }
}
