//! Uses of an approval an enforcement point redeems by re-evaluating its request (the
//! AuthZEN Access Request and Approval profile): no credential is issued, so the uses are
//! counted on the request, against its `max_uses`, in the one statement that checks that
//! the approval still stands.

use sqlx::Row as _;

use super::STANDING;
use crate::ids::{AuthReqId, ClientId};
use crate::store::{Store, StoreError};

impl Store {
    /// Counts one use of request `id`'s approval by `client_id` at `now_ms`: only an
    /// approved request (its credential never collected) whose approval is still valid
    /// (`decided_at` + its validity, `default_validity_ms` when the policy set none), under
    /// its use limit, with its human, agent and approver still in good standing. Returns
    /// the uses counted so far, or `None` when it does not stand.
    pub async fn use_approval(
        &self,
        id: &AuthReqId,
        client_id: &ClientId,
        now_ms: i64,
        default_validity_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let sql = format!(
            "UPDATE auth_requests SET approval_uses = approval_uses + 1 \
             WHERE id = $1 AND client_id = $2 AND status = 'approved' \
             AND decided_at + COALESCE(validity_secs * 1000, $4) > $3 \
             AND (max_uses = 0 OR approval_uses < max_uses) \
             AND {STANDING} RETURNING approval_uses"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .persistent(false)
            .bind(id)
            .bind(client_id)
            .bind(now_ms)
            .bind(default_validity_ms)
            .fetch_optional(self.writer())
            .await?;
        Ok(match row {
            Some(row) => Some(row.try_get::<i64, _>("approval_uses")?),
            None => None,
        })
    }
}
