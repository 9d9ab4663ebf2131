//! The `auth_requests` aggregate: CIBA authentication requests and their state machine
//! `pending -> approved -> issued` or `pending -> denied`. Expiry is derived from
//! `expires_at`, never written, so a request cannot be stuck in a stale state.

mod approval_uses;
mod states;

pub use states::{ApprovalMethod, AuthRequestStatus, DecisionMethod};

use countersign_shared::DeliveryMode;
use countersign_shared::decision::Outcome;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::tokens::TokenGrant;
use super::{AnyQuery, Store, StoreError, Tx};
use crate::ids::{AuthReqId, ClientId, Subject};

/// Whose pending requests [`Store::end_pending`] ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingOf<'a> {
    /// An offboarded human.
    Human(&'a Subject),
    /// A suspended agent.
    Agent(&'a ClientId),
}

/// How often a request's credential may be used: a count, 0 for any number of times
/// within its validity. Defaults to once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxUses(pub i64);

impl Default for MaxUses {
    fn default() -> Self {
        Self(1)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthRequestRecord {
    pub id: AuthReqId,
    pub client_id: ClientId,
    pub subject: Subject,
    pub scope: String,
    pub binding_message: Option<String>,
    pub acr_values: Option<String>,
    /// RFC 9396 `authorization_details` as approved (JSON text).
    pub authorization_details: Option<String>,
    pub delivery_mode: DeliveryMode,
    pub notification_token: Option<String>,
    pub status: AuthRequestStatus,
    pub created_at: i64,
    pub expires_at: i64,
    pub interval_secs: i64,
    pub last_poll_at: Option<i64>,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
    pub decision_method: Option<DecisionMethod>,
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
    pub policy_outcome: Option<Outcome>,
    pub policy_refs: Option<String>,
    pub policy_reasons: Option<String>,
    pub risk_signals: Option<String>,
    pub validity_secs: Option<i64>,
    /// How often the credential may be used (the policy's `@max_uses`).
    pub max_uses: MaxUses,
    /// The DPoP key thumbprint the credential must be bound to (RFC 9449 `dpop_jkt`, or
    /// the client's registered key).
    pub dpop_jkt: Option<String>,
}

const COLUMNS: &str = "id, client_id, subject, scope, binding_message, acr_values, authorization_details, \
    delivery_mode, notification_token, status, created_at, expires_at, interval_secs, last_poll_at, \
    decided_at, decided_by, decision_method, task_id, approval_jws, approval_device_jkt, \
    action, resource, policy_outcome, policy_refs, policy_reasons, risk_signals, validity_secs, \
    max_uses, dpop_jkt";
/// Bound parameters per row of [`insert_sql`]: the columns above.
const PER_ROW: usize = 29;

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
        delivery_mode: DeliveryMode::parse(&row.try_get::<String, _>("delivery_mode")?)
            .ok_or_else(|| StoreError::Corrupt("auth request delivery mode".into()))?,
        notification_token: row.try_get("notification_token")?,
        status: AuthRequestStatus::parse(&status)?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        interval_secs: row.try_get("interval_secs")?,
        last_poll_at: row.try_get("last_poll_at")?,
        decided_at: row.try_get("decided_at")?,
        decided_by: row.try_get("decided_by")?,
        decision_method: row
            .try_get::<Option<String>, _>("decision_method")?
            .as_deref()
            .map(DecisionMethod::parse)
            .transpose()?,
        task_id: row.try_get("task_id")?,
        approval_jws: row.try_get("approval_jws")?,
        approval_device_jkt: row.try_get("approval_device_jkt")?,
        action: row.try_get("action")?,
        resource: row.try_get("resource")?,
        policy_outcome: row
            .try_get::<Option<String>, _>("policy_outcome")?
            .map(|o| {
                Outcome::parse(&o).ok_or_else(|| {
                    StoreError::Corrupt(format!("auth request policy outcome {o:?}"))
                })
            })
            .transpose()?,
        policy_refs: row.try_get("policy_refs")?,
        policy_reasons: row.try_get("policy_reasons")?,
        risk_signals: row.try_get("risk_signals")?,
        validity_secs: row.try_get("validity_secs")?,
        max_uses: MaxUses(row.try_get("max_uses")?),
        dpop_jkt: row.try_get("dpop_jkt")?,
    })
}

/// Who decided a request and how, written with the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'a> {
    pub approved: bool,
    pub decided_by: &'a str,
    pub method: DecisionMethod,
    pub at_ms: i64,
    /// The wallet-signed decision and its device key's thumbprint (wallet decisions).
    pub approval_jws: Option<&'a str>,
    pub device_jkt: Option<&'a str>,
}

/// `INSERT` of `rows` auth requests in one statement.
pub(super) fn insert_sql(params: super::Params, rows: usize) -> String {
    format!(
        "INSERT INTO auth_requests ({COLUMNS}) VALUES {}",
        super::placeholders_as(params, 0, rows, PER_ROW)
    )
}

pub(super) fn bind_insert<'q>(q: AnyQuery<'q>, r: &AuthRequestRecord) -> AnyQuery<'q> {
    q.bind(r.id.clone())
        .bind(r.client_id.clone())
        .bind(r.subject.clone())
        .bind(r.scope.clone())
        .bind(r.binding_message.clone())
        .bind(r.acr_values.clone())
        .bind(r.authorization_details.clone())
        .bind(r.delivery_mode.as_str())
        .bind(r.notification_token.clone())
        .bind(r.status.as_str())
        .bind(r.created_at)
        .bind(r.expires_at)
        .bind(r.interval_secs)
        .bind(r.last_poll_at)
        .bind(r.decided_at)
        .bind(r.decided_by.clone())
        .bind(r.decision_method.map(DecisionMethod::as_str))
        .bind(r.task_id.clone())
        .bind(r.approval_jws.clone())
        .bind(r.approval_device_jkt.clone())
        .bind(r.action.clone())
        .bind(r.resource.clone())
        .bind(r.policy_outcome.map(Outcome::as_str))
        .bind(r.policy_refs.clone())
        .bind(r.policy_reasons.clone())
        .bind(r.risk_signals.clone())
        .bind(r.validity_secs)
        .bind(r.max_uses.0)
        .bind(r.dpop_jkt.clone())
}

/// Issues a grant for an approved request whose client waited its polling interval
/// (binds: issued_at, jti, type, cnf_jkt, default expiry, id, client_id, now, status list,
/// status index). The credential expires after the validity its policy set, else at the
/// default expiry. Nothing is issued when the proof's key is not the one the request named
/// (`dpop_jkt`), or when the request's human, the human who approved it or its agent is
/// no longer active: those are checked in the same statement, so a deactivation that
/// commits first always wins.
pub(super) fn claim_sql() -> String {
    format!(
        "UPDATE auth_requests SET status = 'issued', token_issued_at = $1, last_poll_at = $8, \
         token_jti = $2, token_type = $3, token_cnf_jkt = $4, \
         token_expires_at = $1 + COALESCE(validity_secs * 1000, $5 - $1), \
         token_status_list = $9, token_status_idx = $10 \
         WHERE id = $6 AND client_id = $7 AND status = 'approved' AND expires_at > $8 \
         AND (last_poll_at IS NULL OR last_poll_at + interval_secs * 1000 <= $8) \
         AND (dpop_jkt IS NULL OR dpop_jkt = $4) \
         AND {STANDING} RETURNING {COLUMNS}"
    )
}

/// The request's human, its deciding human (when a person decided) and its agent are all
/// still active: what issuing a credential rests on.
pub(crate) const STANDING: &str = "EXISTS (SELECT 1 FROM humans h WHERE h.subject = auth_requests.subject AND h.active = 1) \
    AND EXISTS (SELECT 1 FROM clients c WHERE c.client_id = auth_requests.client_id AND c.enabled = 1) \
    AND (decision_method IS NULL OR decision_method <> 'passkey+device_key' \
         OR EXISTS (SELECT 1 FROM humans d WHERE d.subject = auth_requests.decided_by AND d.active = 1))";

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
    pub async fn approvers_of(&self, id: &AuthReqId) -> Result<Vec<Subject>, StoreError> {
        let rows = sqlx::query(
            "SELECT subject FROM request_approvers WHERE auth_req_id = $1 ORDER BY subject",
        )
        .bind(id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(|r| Ok(r.try_get("subject")?)).collect()
    }

    pub async fn auth_request(
        &self,
        id: &AuthReqId,
    ) -> Result<Option<AuthRequestRecord>, StoreError> {
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
    pub async fn admit_poll(&self, id: &AuthReqId, now_ms: i64) -> Result<bool, StoreError> {
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
        id: &AuthReqId,
        decision: &Decision<'_>,
        grant: Option<&TokenGrant>,
    ) -> Result<Option<AuthRequestRecord>, StoreError> {
        self.decide(tx, id, decision, grant, "").await
    }

    /// Decides a pending poll-mode request (whose decision needs no other write) in one
    /// statement; `None` when the request is not a pending, unexpired poll-mode request.
    pub async fn decide_poll_request(
        &self,
        id: &AuthReqId,
        decision: &Decision<'_>,
    ) -> Result<Option<AuthRequestRecord>, StoreError> {
        self.decide(None, id, decision, None, " AND delivery_mode = 'poll'")
            .await
    }

    async fn decide(
        &self,
        tx: Option<&mut Tx<'_>>,
        id: &AuthReqId,
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
        let sql = sqlx::AssertSqlSafe(decide_sql(extra_condition));
        // Not a cached prepared statement: PostgreSQL switches those to a generic plan
        // after five runs, and one made while few requests were pending (the bench: right
        // after the approval scenario) scanned the whole partial index of pending
        // requests, or the status index, for the one id; 5-25 ms per decision once tens
        // of thousands were pending (`cargo xtask bench`: 206 flows/s at a p50 of 70 ms).
        // Planned with its values each time, it looks the id up by primary key.
        let query = sqlx::query(sql)
            .persistent(false)
            .bind(status.as_str())
            .bind(decision.at_ms)
            .bind(decision.decided_by)
            .bind(decision.method.as_str())
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
        id: &AuthReqId,
        client_id: &ClientId,
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
        subject: &Subject,
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

    /// Ends, inside `tx`, the pending requests `of` names, and the approved ones whose
    /// credential was not collected yet, as denied by `by` with `method` (the agent's
    /// next poll gets `access_denied`); returns them as ended.
    pub async fn end_pending(
        &self,
        tx: &mut Tx<'_>,
        of: PendingOf<'_>,
        by: &str,
        method: DecisionMethod,
        now_ms: i64,
    ) -> Result<Vec<AuthRequestRecord>, StoreError> {
        let condition = match of {
            // Pending: requests for the human, by their agents, or that only they could
            // approve (a request routed to several people stays open for the others).
            // Approved, not yet collected: for the human, by their agents, or approved by
            // them.
            PendingOf::Human(_) => {
                "((status = 'pending' AND (subject = $1 \
                   OR client_id IN (SELECT client_id FROM clients WHERE owner_subject = $1) \
                   OR id IN (SELECT a.auth_req_id FROM request_approvers a WHERE a.subject = $1 \
                     AND NOT EXISTS (SELECT 1 FROM request_approvers o JOIN humans h ON h.subject = o.subject \
                       WHERE o.auth_req_id = a.auth_req_id AND o.subject <> $1 AND h.active = 1)))) \
                 OR (status = 'approved' AND (subject = $1 OR decided_by = $1 \
                   OR client_id IN (SELECT client_id FROM clients WHERE owner_subject = $1))))"
            }
            PendingOf::Agent(_) => "status IN ('pending', 'approved') AND client_id = $1",
        };
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE auth_requests SET status = 'denied', decided_at = $2, decided_by = $3, \
             decision_method = $4 WHERE expires_at > $2 AND {condition} \
             RETURNING {COLUMNS}"
        ));
        let key = match of {
            PendingOf::Human(subject) => subject.as_str(),
            PendingOf::Agent(client_id) => client_id.as_str(),
        };
        let rows = sqlx::query(sql)
            .bind(key)
            .bind(now_ms)
            .bind(by)
            .bind(method.as_str())
            .fetch_all(tx.conn())
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// How many of `client_id`'s requests wait for `approver` at `now_ms`, and when the
    /// first of them expires.
    pub async fn pending_step_ups(
        &self,
        client_id: &ClientId,
        approver: &Subject,
        now_ms: i64,
    ) -> Result<(i64, Option<i64>), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(r.expires_at) AS first FROM auth_requests r \
             JOIN request_approvers a ON a.auth_req_id = r.id \
             WHERE a.subject = $1 AND r.client_id = $2 AND r.status = 'pending' AND r.expires_at > $3",
        )
        .persistent(false)
        .bind(approver)
        .bind(client_id)
        .bind(now_ms)
        .fetch_one(self.reader())
        .await?;
        Ok((row.try_get("n")?, row.try_get("first")?))
    }

    /// The oldest `limit` requests still waiting for a human at `now_ms` (the console's
    /// queue).
    pub async fn pending_queue(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<AuthRequestRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM auth_requests WHERE status = 'pending' AND expires_at > $1 \
             ORDER BY created_at LIMIT $2"
        ));
        let rows = sqlx::query(sql)
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

/// The statement deciding one pending request. Run unprepared (see `decide`).
pub(crate) fn decide_sql(extra_condition: &str) -> String {
    format!(
        "UPDATE auth_requests SET status = $1, decided_at = $2, decided_by = $3, decision_method = $4, \
         token_issued_at = $5, token_jti = $6, token_type = $7, token_cnf_jkt = $8, token_expires_at = $9, \
         token_status_list = $11, token_status_idx = $12, approval_jws = $13, approval_device_jkt = $14 \
         WHERE id = $10 AND status = 'pending' AND expires_at > $2{extra_condition} RETURNING {COLUMNS}"
    )
}

#[cfg(test)]
pub(crate) mod tests;
