//! The `auth_requests` aggregate: CIBA authentication requests and their state machine
//! `pending -> approved -> issued` or `pending -> denied`. Expiry is derived from
//! `expires_at`, never written, so a request cannot be stuck in a stale state.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::tokens::TokenGrant;
use super::{Store, StoreError, Tx};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuthRequestStatus {
    #[default]
    Pending,
    Approved,
    Denied,
    /// Approved and its tokens were handed out (or pushed); nothing more to issue.
    Issued,
}

impl AuthRequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Issued => "issued",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "pending" => Self::Pending,
            "approved" => Self::Approved,
            "denied" => Self::Denied,
            "issued" => Self::Issued,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "auth request status {other:?}"
                )));
            }
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthRequestRecord {
    pub id: String,
    pub client_id: String,
    pub subject: String,
    pub scope: String,
    pub binding_message: Option<String>,
    pub acr_values: Option<String>,
    /// RFC 9396 `authorization_details` as approved (JSON text).
    pub authorization_details: Option<String>,
    pub delivery_mode: String,
    pub notification_token: Option<String>,
    pub status: AuthRequestStatus,
    pub created_at: i64,
    pub expires_at: i64,
    pub interval_secs: i64,
    pub last_poll_at: Option<i64>,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
    pub decision_method: Option<String>,
    /// The agent's task or session this request belongs to.
    pub task_id: Option<String>,
    /// The decision as the human's wallet signed it (compact JWS), and the thumbprint of
    /// the device key that signed it.
    pub approval_jws: Option<String>,
    pub approval_device_jkt: Option<String>,
    /// The policy decision: the action (first `authorization_details` type, or
    /// `authenticate`) on which tool, the outcome, the determining policies and reasons
    /// and the risk signals (JSON arrays), and the credential validity it set.
    pub action: Option<String>,
    pub resource: Option<String>,
    pub policy_outcome: Option<String>,
    pub policy_refs: Option<String>,
    pub policy_reasons: Option<String>,
    pub risk_signals: Option<String>,
    pub validity_secs: Option<i64>,
}

const COLUMNS: &str = "id, client_id, subject, scope, binding_message, acr_values, authorization_details, \
    delivery_mode, notification_token, status, created_at, expires_at, interval_secs, last_poll_at, \
    decided_at, decided_by, decision_method, task_id, approval_jws, approval_device_jkt, \
    action, resource, policy_outcome, policy_refs, policy_reasons, risk_signals, validity_secs";
/// Bound parameters per row of [`insert_sql`]: the columns above.
const PER_ROW: usize = 27;

pub(super) fn from_row(row: &AnyRow) -> Result<AuthRequestRecord, StoreError> {
    let status: String = row.try_get("status")?;
    Ok(AuthRequestRecord {
        id: row.try_get("id")?,
        client_id: row.try_get("client_id")?,
        subject: row.try_get("subject")?,
        scope: row.try_get("scope")?,
        binding_message: row.try_get("binding_message")?,
        acr_values: row.try_get("acr_values")?,
        authorization_details: row.try_get("authorization_details")?,
        delivery_mode: row.try_get("delivery_mode")?,
        notification_token: row.try_get("notification_token")?,
        status: AuthRequestStatus::parse(&status)?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        interval_secs: row.try_get("interval_secs")?,
        last_poll_at: row.try_get("last_poll_at")?,
        decided_at: row.try_get("decided_at")?,
        decided_by: row.try_get("decided_by")?,
        decision_method: row.try_get("decision_method")?,
        task_id: row.try_get("task_id")?,
        approval_jws: row.try_get("approval_jws")?,
        approval_device_jkt: row.try_get("approval_device_jkt")?,
        action: row.try_get("action")?,
        resource: row.try_get("resource")?,
        policy_outcome: row.try_get("policy_outcome")?,
        policy_refs: row.try_get("policy_refs")?,
        policy_reasons: row.try_get("policy_reasons")?,
        risk_signals: row.try_get("risk_signals")?,
        validity_secs: row.try_get("validity_secs")?,
    })
}

/// Who decided a request and how, written with the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'a> {
    pub approved: bool,
    pub decided_by: &'a str,
    /// e.g. `dev` for developer approvals; the wallet adds `passkey+device_key`.
    pub method: &'a str,
    pub at_ms: i64,
    /// The wallet-signed decision and its device key's thumbprint (wallet decisions).
    pub approval_jws: Option<&'a str>,
    pub device_jkt: Option<&'a str>,
}

/// `INSERT` of `rows` auth requests in one statement.
pub(super) fn insert_sql(rows: usize) -> String {
    let per_row = PER_ROW;
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let params: Vec<String> = (1..=per_row)
                .map(|c| format!("${}", r * per_row + c))
                .collect();
            format!("({})", params.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO auth_requests ({COLUMNS}) VALUES {}",
        values.join(", ")
    )
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

pub(super) fn bind_insert<'q>(q: AnyQuery<'q>, r: &AuthRequestRecord) -> AnyQuery<'q> {
    q.bind(r.id.clone())
        .bind(r.client_id.clone())
        .bind(r.subject.clone())
        .bind(r.scope.clone())
        .bind(r.binding_message.clone())
        .bind(r.acr_values.clone())
        .bind(r.authorization_details.clone())
        .bind(r.delivery_mode.clone())
        .bind(r.notification_token.clone())
        .bind(r.status.as_str())
        .bind(r.created_at)
        .bind(r.expires_at)
        .bind(r.interval_secs)
        .bind(r.last_poll_at)
        .bind(r.decided_at)
        .bind(r.decided_by.clone())
        .bind(r.decision_method.clone())
        .bind(r.task_id.clone())
        .bind(r.approval_jws.clone())
        .bind(r.approval_device_jkt.clone())
        .bind(r.action.clone())
        .bind(r.resource.clone())
        .bind(r.policy_outcome.clone())
        .bind(r.policy_refs.clone())
        .bind(r.policy_reasons.clone())
        .bind(r.risk_signals.clone())
        .bind(r.validity_secs)
}

/// Issues a grant for an approved request whose client waited its polling interval
/// (binds: issued_at, jti, type, cnf_jkt, default expiry, id, client_id, now, status list,
/// status index). The credential expires after the validity its policy set, else at the
/// default expiry.
pub(super) fn claim_sql() -> String {
    format!(
        "UPDATE auth_requests SET status = 'issued', token_issued_at = $1, last_poll_at = $8, \
         token_jti = $2, token_type = $3, token_cnf_jkt = $4, \
         token_expires_at = $1 + COALESCE(validity_secs * 1000, $5 - $1), \
         token_status_list = $9, token_status_idx = $10 \
         WHERE id = $6 AND client_id = $7 AND status = 'approved' AND expires_at > $8 \
         AND (last_poll_at IS NULL OR last_poll_at + interval_secs * 1000 <= $8) RETURNING {COLUMNS}"
    )
}

impl Store {
    /// Inserts a new request on its own (tests, tools); the server writes requests with
    /// their trace through [`Self::write`].
    pub async fn insert_auth_request(&self, r: &AuthRequestRecord) -> Result<(), StoreError> {
        self.write(super::group_commit::WriteSet {
            request: Some(r.clone()),
            approvers: vec![r.subject.clone()],
            ..Default::default()
        })
        .await
        .map(|_| ())
    }

    /// Who may decide request `id`.
    pub async fn approvers_of(&self, id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT subject FROM request_approvers WHERE auth_req_id = $1 ORDER BY subject",
        )
        .bind(id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(|r| Ok(r.try_get("subject")?)).collect()
    }

    pub async fn auth_request(&self, id: &str) -> Result<Option<AuthRequestRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM auth_requests WHERE id = $1"));
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Records a poll if the client waited its interval since the previous one. Atomic, so
    /// of two simultaneous polls at most one passes. Returns false when the client polled
    /// too early; the interval is then raised by 5 seconds (CIBA Core §11 `slow_down`).
    pub async fn admit_poll(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let admitted = sqlx::query(
            "UPDATE auth_requests SET last_poll_at = $1 \
             WHERE id = $2 AND (last_poll_at IS NULL OR last_poll_at + interval_secs * 1000 <= $1)",
        )
        .bind(now_ms)
        .bind(id)
        .execute(self.writer())
        .await?;
        if admitted.rows_affected() == 1 {
            return Ok(true);
        }
        sqlx::query("UPDATE auth_requests SET interval_secs = interval_secs + 5, last_poll_at = $1 WHERE id = $2")
            .bind(now_ms)
            .bind(id)
            .execute(self.writer())
            .await?;
        Ok(false)
    }

    /// Moves a pending, unexpired request to its decision: `denied`, `approved`, or straight
    /// to `issued` with `grant` recorded when the tokens go out with the decision (push
    /// mode). Runs inside `tx` when the decision comes with other writes, else commits on its
    /// own. Returns the updated request, or `None` when it was not pending or had expired.
    pub async fn decide_auth_request(
        &self,
        tx: Option<&mut Tx<'_>>,
        id: &str,
        decision: &Decision<'_>,
        grant: Option<&TokenGrant>,
    ) -> Result<Option<AuthRequestRecord>, StoreError> {
        self.decide(tx, id, decision, grant, "").await
    }

    /// Decides a pending poll-mode request (whose decision needs no other write) in one
    /// statement; `None` when the request is not a pending, unexpired poll-mode request.
    pub async fn decide_poll_request(
        &self,
        id: &str,
        decision: &Decision<'_>,
    ) -> Result<Option<AuthRequestRecord>, StoreError> {
        self.decide(None, id, decision, None, " AND delivery_mode = 'poll'")
            .await
    }

    async fn decide(
        &self,
        tx: Option<&mut Tx<'_>>,
        id: &str,
        decision: &Decision<'_>,
        grant: Option<&TokenGrant>,
        extra_condition: &'static str,
    ) -> Result<Option<AuthRequestRecord>, StoreError> {
        let status = match (decision.approved, grant) {
            (false, _) => AuthRequestStatus::Denied,
            (true, None) => AuthRequestStatus::Approved,
            (true, Some(_)) => AuthRequestStatus::Issued,
        };
        let grant = grant.filter(|_| decision.approved);
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE auth_requests SET status = $1, decided_at = $2, decided_by = $3, decision_method = $4, \
             token_issued_at = $5, token_jti = $6, token_type = $7, token_cnf_jkt = $8, token_expires_at = $9, \
             token_status_list = $11, token_status_idx = $12, approval_jws = $13, approval_device_jkt = $14 \
             WHERE id = $10 AND status = 'pending' AND expires_at > $2{extra_condition} RETURNING {COLUMNS}"
        ));
        let query = sqlx::query(sql)
            .bind(status.as_str())
            .bind(decision.at_ms)
            .bind(decision.decided_by)
            .bind(decision.method)
            .bind(grant.map(|g| g.issued_at))
            .bind(grant.map(|g| g.jti.clone()))
            .bind(grant.map(|g| g.token_type.clone()))
            .bind(grant.and_then(|g| g.cnf_jkt.clone()))
            .bind(grant.map(|g| g.expires_at))
            .bind(id)
            .bind(grant.map(|g| g.status_list))
            .bind(grant.map(|g| g.status_idx))
            .bind(decision.approval_jws)
            .bind(decision.device_jkt);
        let row = match tx {
            Some(tx) => query.fetch_optional(tx.conn()).await?,
            None => query.fetch_optional(self.writer()).await?,
        };
        row.as_ref().map(from_row).transpose()
    }

    /// Issues `grant` for an approved request of `client_id`, provided the client waited its
    /// polling interval (the poll is recorded in the same statement). One statement, so
    /// exactly one caller ever succeeds for a given request however many poll at once.
    /// Returns the request, or `None` (then [`Self::auth_request`] tells why).
    pub async fn claim_for_issue(
        &self,
        id: &str,
        client_id: &str,
        grant: &TokenGrant,
        now_ms: i64,
    ) -> Result<Option<AuthRequestRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(claim_sql()))
            .bind(grant.issued_at)
            .bind(&grant.jti)
            .bind(&grant.token_type)
            .bind(&grant.cnf_jkt)
            .bind(grant.expires_at)
            .bind(id)
            .bind(client_id)
            .bind(now_ms)
            .bind(grant.status_list)
            .bind(grant.status_idx)
            .fetch_optional(self.writer())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Marks up to `limit` ping/push requests that expired undecided as announced, and
    /// returns them so the caller queues their notices in the same transaction.
    pub async fn mark_expired_notified(
        &self,
        tx: &mut Tx<'_>,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<AuthRequestRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE auth_requests SET expiry_notified_at = $1 WHERE id IN (\
               SELECT id FROM auth_requests WHERE status = 'pending' AND expires_at <= $1 \
               AND delivery_mode <> 'poll' AND expiry_notified_at IS NULL LIMIT $2) \
             RETURNING {COLUMNS}"
        ));
        let rows = sqlx::query(sql)
            .bind(now_ms)
            .bind(limit)
            .fetch_all(tx.conn())
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Requests waiting for `subject`'s decision (routed to them), newest first.
    pub async fn pending_for_subject(
        &self,
        subject: &str,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<AuthRequestRecord>, StoreError> {
        let columns = COLUMNS
            .split(", ")
            .map(|c| format!("r.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {columns} FROM request_approvers a JOIN auth_requests r ON r.id = a.auth_req_id \
             WHERE a.subject = $1 AND r.status = 'pending' AND r.expires_at > $2 \
             ORDER BY r.created_at DESC LIMIT $3"
        ));
        let rows = sqlx::query(sql)
            .bind(subject)
            .bind(now_ms)
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Requests still waiting for a human (for the `pending requests` gauge).
    pub async fn count_pending_auth_requests(&self, now_ms: i64) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM auth_requests WHERE status = 'pending' AND expires_at > $1",
        )
        .bind(now_ms)
        .fetch_one(self.reader())
        .await?;
        Ok(row.try_get("n")?)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::clients::ClientRecord;
    use crate::store::humans::HumanRecord;
    use crate::store::testing::each_backend;
    use crate::store::tokens::TokenGrant;

    pub(crate) async fn seed(store: &Store) {
        store
            .insert_human(&HumanRecord {
                subject: "alice".into(),
                email: "a@example.com".into(),
                name: "Alice".into(),
                active: true,
                user_code_hash: None,
                created_at: 0,
                department: String::new(),
                title: String::new(),
                role: String::new(),
                manager: None,
            })
            .await
            .unwrap();
        store
            .insert_client(&ClientRecord {
                client_id: "agent".into(),
                name: "Agent".into(),
                owner_subject: "alice".into(),
                auth_method: "client_secret_basic".into(),
                secret_hash: Some("h".into()),
                jwks: None,
                delivery_mode: "poll".into(),
                notification_endpoint: None,
                require_signed_request: false,
                user_code_required: false,
                enabled: true,
                created_at: 0,
                department: String::new(),
                risk_tier: "low".into(),
                description: None,
            })
            .await
            .unwrap();
    }

    fn request(id: &str, expires_at: i64) -> AuthRequestRecord {
        AuthRequestRecord {
            id: id.into(),
            client_id: "agent".into(),
            subject: "alice".into(),
            scope: "openid".into(),
            binding_message: Some("W4SCT".into()),
            acr_values: None,
            authorization_details: Some(r#"[{"type":"purchase_order"}]"#.into()),
            delivery_mode: "poll".into(),
            notification_token: None,
            status: AuthRequestStatus::Pending,
            created_at: 0,
            expires_at,
            interval_secs: 5,
            last_poll_at: None,
            decided_at: None,
            decided_by: None,
            decision_method: None,
            task_id: Some("task-1".into()),
            ..AuthRequestRecord::default()
        }
    }

    #[tokio::test]
    async fn lifecycle_pending_approved_issued_exactly_once() {
        each_backend(|store| async move {
            seed(&store).await;
            let r = request("r1", 1_000_000);
            store.insert_auth_request(&r).await.unwrap();
            assert_eq!(store.auth_request("r1").await.unwrap(), Some(r));
            assert_eq!(store.count_pending_auth_requests(0).await.unwrap(), 1);

            // Polls: first admitted, second too early (interval raised), later admitted.
            assert!(store.admit_poll("r1", 1_000).await.unwrap());
            assert!(!store.admit_poll("r1", 2_000).await.unwrap());
            assert_eq!(
                store
                    .auth_request("r1")
                    .await
                    .unwrap()
                    .unwrap()
                    .interval_secs,
                10
            );
            assert!(!store.admit_poll("r1", 11_000).await.unwrap());
            // A too-early poll also restarts the wait: 11 000 + 15 000.
            assert!(!store.admit_poll("r1", 25_999).await.unwrap());
            assert!(store.admit_poll("r1", 46_000).await.unwrap());

            let d = Decision {
                approved: true,
                decided_by: "alice",
                method: "dev",
                at_ms: 500,
                approval_jws: None,
                device_jkt: None,
            };
            let decided = store
                .decide_auth_request(None, "r1", &d, None)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                (decided.status, decided.decided_by.as_deref()),
                (AuthRequestStatus::Approved, Some("alice"))
            );
            assert_eq!(
                store
                    .decide_auth_request(None, "r1", &d, None)
                    .await
                    .unwrap(),
                None,
                "decided once"
            );

            // The last admitted poll was at 46 000 with a 20 s interval.
            let grant = |at: i64, jti: &str| TokenGrant {
                jti: jti.into(),
                token_type: "DPoP".into(),
                cnf_jkt: Some("jkt".into()),
                issued_at: at,
                expires_at: at + 900_000,
                status_list: 1,
                status_idx: at,
            };
            assert_eq!(
                store
                    .claim_for_issue("r1", "agent", &grant(65_999, "t0"), 65_999)
                    .await
                    .unwrap(),
                None,
                "too early"
            );
            assert_eq!(
                store
                    .claim_for_issue("r1", "intruder", &grant(66_000, "t1"), 66_000)
                    .await
                    .unwrap(),
                None,
                "other client"
            );
            let issued = store
                .claim_for_issue("r1", "agent", &grant(66_000, "t2"), 66_000)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(issued.status, AuthRequestStatus::Issued);
            assert_eq!(
                store
                    .claim_for_issue("r1", "agent", &grant(99_000, "t3"), 99_000)
                    .await
                    .unwrap(),
                None,
                "already issued"
            );

            let token = store.token("t2").await.unwrap().unwrap();
            assert_eq!(
                (
                    token.auth_req_id.as_str(),
                    token.token_type.as_str(),
                    token.cnf_jkt.as_deref()
                ),
                ("r1", "DPoP", Some("jkt"))
            );
            assert_eq!(store.token("t1").await.unwrap(), None);
            let mut tx = store.begin().await.unwrap();
            let revoke = crate::store::tokens::TokenSelector::Id("t2");
            let first = store
                .revoke_tokens(&mut tx, revoke, "r", 70_000)
                .await
                .unwrap();
            let again = store
                .revoke_tokens(&mut tx, revoke, "r", 80_000)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            assert_eq!((first, again), (vec!["t2".to_owned()], vec![]));
            assert_eq!(
                store.token("t2").await.unwrap().unwrap().revoked_at,
                Some(70_000),
                "first revocation time kept"
            );
        })
        .await;
    }

    #[tokio::test]
    async fn concurrent_inserts_are_group_committed_with_per_row_outcomes() {
        each_backend(|store| async move {
            seed(&store).await;
            let mut rows: Vec<AuthRequestRecord> = (0..200)
                .map(|i| request(&format!("g{i}"), 10_000))
                .collect();
            // One row references a client that does not exist: only that caller fails.
            rows[117].client_id = "ghost".into();
            let results =
                futures_util::future::join_all(rows.iter().map(|r| store.insert_auth_request(r)))
                    .await;
            for (i, result) in results.iter().enumerate() {
                assert_eq!(result.is_ok(), i != 117, "row {i}: {result:?}");
            }
            assert_eq!(store.count_pending_auth_requests(0).await.unwrap(), 199);
            assert_eq!(
                store.auth_request("g42").await.unwrap(),
                Some(rows[42].clone())
            );
            assert!(matches!(
                store.insert_auth_request(&rows[0]).await,
                Err(StoreError::Conflict)
            ));
        })
        .await;
    }

    #[tokio::test]
    async fn expired_requests_cannot_be_decided_and_rolled_back_decisions_vanish() {
        each_backend(|store| async move {
            seed(&store).await;
            store
                .insert_auth_request(&request("r2", 1_000))
                .await
                .unwrap();
            let mut tx = store.begin().await.unwrap();
            let late = Decision {
                approved: true,
                decided_by: "alice",
                method: "dev",
                at_ms: 1_000,
                approval_jws: None,
                device_jkt: None,
            };
            assert_eq!(
                store
                    .decide_auth_request(Some(&mut tx), "r2", &late, None)
                    .await
                    .unwrap(),
                None
            );
            let on_time = Decision { at_ms: 999, ..late };
            assert!(
                store
                    .decide_auth_request(Some(&mut tx), "r2", &on_time, None)
                    .await
                    .unwrap()
                    .is_some()
            );
            drop(tx); // rollback
            assert_eq!(
                store.auth_request("r2").await.unwrap().unwrap().status,
                AuthRequestStatus::Pending
            );
            assert_eq!(store.count_pending_auth_requests(1_000).await.unwrap(), 0);
        })
        .await;
    }
}
