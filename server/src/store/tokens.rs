//! Issued access tokens. A token belongs to the authentication request that earned it and
//! is recorded on that row (`token_*` columns), so issuing is a single atomic statement and
//! a request can never carry two tokens. This module reads and revokes them by `jti`.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, Tx};
use crate::ids::{AuthReqId, ClientId, Subject};

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
    pub auth_req_id: AuthReqId,
    pub client_id: ClientId,
    pub subject: Subject,
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
    pub approval_id: AuthReqId,
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

/// Where a page of credentials continues: the issue time (ms) and `jti` of the last
/// credential of the page before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenCursor<'a> {
    pub issued_at: i64,
    pub jti: &'a str,
}

impl<'a> TokenCursor<'a> {
    /// Reads a cursor written by [`TokenCursor::write`]: `{issued_at}.{jti}`.
    pub fn parse(s: &'a str) -> Option<Self> {
        let (issued_at, jti) = s.split_once('.')?;
        if jti.is_empty() || !issued_at.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(TokenCursor {
            issued_at: issued_at.parse().ok()?,
            jti,
        })
    }

    /// The cursor that continues after `t`.
    pub fn write(t: &TokenRecord) -> String {
        format!("{}.{}", t.issued_at, t.jti)
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
        self.page_tokens(selector, None, limit).await
    }

    /// One page of the credentials matching `selector`, newest first (issue time, then
    /// `jti`, descending), starting after `after` (the last one of the previous page):
    /// keyset pagination, so a late page costs what the first one does (migration 0017's
    /// indexes walk each selector in that order).
    pub async fn page_tokens(
        &self,
        selector: TokenSelector<'_>,
        after: Option<TokenCursor<'_>>,
        limit: i64,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        let Some(sides) = selector.sides() else {
            return self
                .tokens_where(selector.condition(), selector.value(), after, limit)
                .await;
        };
        let mut all = Vec::new();
        for side in sides {
            all.extend(
                self.tokens_where(side, selector.value(), after, limit)
                    .await?,
            );
        }
        all.sort_by(|a, b| {
            b.issued_at
                .cmp(&a.issued_at)
                .then_with(|| b.jti.cmp(&a.jti))
        });
        all.dedup_by(|a, b| a.jti == b.jti);
        all.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(all)
    }

    async fn tokens_where(
        &self,
        condition: &str,
        value: &str,
        after: Option<TokenCursor<'_>>,
        limit: i64,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        let keyset = if after.is_some() {
            " AND (token_issued_at, token_jti) < ($3, $4)"
        } else {
            ""
        };
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM auth_requests WHERE token_jti IS NOT NULL AND {condition}{keyset} \
             ORDER BY token_issued_at DESC, token_jti DESC LIMIT $2"
        ));
        let mut query = sqlx::query(sql).bind(value).bind(limit);
        if let Some(c) = after {
            query = query.bind(c.issued_at).bind(c.jti);
        }
        let rows = query.fetch_all(self.reader()).await?;
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
        client_id: &ClientId,
        renewal_id: &AuthReqId,
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
    use super::{TokenCursor, TokenGrant, TokenSelector};
    use crate::store::Store;
    use crate::store::auth_requests::{AuthRequestRecord, AuthRequestStatus};
    use crate::store::testing::each_backend;

    /// Issues credential `jti` at `issued_at` on a fresh approved request (agent `agent`
    /// of the seeded owner alice), decided by `decided_by`.
    async fn issue(store: &Store, jti: &str, issued_at: i64, decided_by: &str) {
        let id = crate::ids::AuthReqId::from(format!("req-{jti}"));
        store
            .insert_auth_request(&AuthRequestRecord {
                id: id.clone(),
                client_id: "agent".into(),
                subject: "alice".into(),
                scope: "openid".into(),
                delivery_mode: countersign_shared::DeliveryMode::Poll,
                status: AuthRequestStatus::Approved,
                expires_at: i64::MAX / 2,
                interval_secs: 5,
                decided_at: Some(1),
                decided_by: Some(decided_by.into()),
                decision_method: Some(
                    crate::store::auth_requests::ApprovalMethod::Developer.into(),
                ),
                ..AuthRequestRecord::default()
            })
            .await
            .unwrap();
        let grant = TokenGrant {
            jti: jti.into(),
            token_type: "Bearer".into(),
            cnf_jkt: None,
            issued_at,
            expires_at: issued_at + 900_000,
            status_list: 1,
            status_idx: issued_at * 100 + i64::from(jti.as_bytes()[1]),
        };
        assert!(
            store
                .claim_for_issue(&id, &"agent".into(), &grant, issued_at)
                .await
                .unwrap()
                .is_some(),
            "issued {jti}"
        );
    }

    /// Pages through `selector` `size` at a time, following each page's last credential.
    async fn walk(store: &Store, selector: TokenSelector<'_>, size: i64) -> Vec<Vec<String>> {
        let mut pages = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let cursor = after.as_deref().map(|a| TokenCursor::parse(a).unwrap());
            let page = store.page_tokens(selector, cursor, size).await.unwrap();
            if page.is_empty() {
                return pages;
            }
            after = page.last().map(TokenCursor::write);
            pages.push(page.into_iter().map(|t| t.jti).collect());
        }
    }

    #[tokio::test]
    async fn keyset_pages_visit_each_credential_once_newest_first_ties_by_jti() {
        each_backend(|store| async move {
            crate::store::auth_requests::tests::seed(&store).await;
            // Three issued in the same millisecond, so only the jti orders them.
            for (jti, at, by) in [
                ("t1", 1_000, "alice"),
                ("t2", 2_000, "bob"),
                ("t3", 2_000, "alice"),
                ("t4", 2_000, "bob"),
                ("t5", 3_000, "alice"),
            ] {
                issue(&store, jti, at, by).await;
            }
            let pages = |v: &[&[&str]]| -> Vec<Vec<String>> {
                v.iter()
                    .map(|p| p.iter().map(|s| (*s).to_owned()).collect())
                    .collect()
            };
            assert_eq!(
                walk(&store, TokenSelector::All, 2).await,
                pages(&[&["t5", "t4"], &["t3", "t2"], &["t1"]])
            );
            assert_eq!(
                walk(&store, TokenSelector::Agent("agent"), 3).await,
                pages(&[&["t5", "t4", "t3"], &["t2", "t1"]])
            );
            // The approver rule is two index walks merged: pages must still not repeat or
            // skip. bob decided t2 and t4; alice's own requests count for her only when
            // nobody else's wallet decided them (dev decisions: all five).
            assert_eq!(
                walk(&store, TokenSelector::Approver("bob"), 1).await,
                pages(&[&["t4"], &["t2"]])
            );
            assert_eq!(
                walk(&store, TokenSelector::Approver("alice"), 2).await,
                pages(&[&["t5", "t4"], &["t3", "t2"], &["t1"]])
            );
            assert_eq!(
                walk(&store, TokenSelector::Owner("alice"), 4).await,
                pages(&[&["t5", "t4", "t3", "t2"], &["t1"]])
            );
        })
        .await;
    }

    #[test]
    fn cursors_read_back_what_they_wrote_and_nothing_else() {
        let c = TokenCursor::parse("1700000000123.urn:a.b").unwrap();
        assert_eq!((c.issued_at, c.jti), (1_700_000_000_123, "urn:a.b"));
        for bad in [
            "",
            "123",
            "123.",
            ".jti",
            "-5.jti",
            "+5.jti",
            "1e3.jti",
            "99999999999999999999.j",
        ] {
            assert!(TokenCursor::parse(bad).is_none(), "{bad:?}");
        }
    }

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
