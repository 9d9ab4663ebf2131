//! The approver push outbox: one row per (request, device) to alert. Rows are written with
//! the request (see [`super::group_commit`]); a worker leases due rows, so no two workers
//! or replicas send the same one at once, and marks them delivered, retried or given up.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{AnyQuery, Backend, Store, StoreError};
use crate::ids::AuthReqId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRow {
    pub id: String,
    pub auth_req_id: AuthReqId,
    pub device_id: String,
    /// `apns`, `fcm` or `live`.
    pub channel: String,
    pub created_at: i64,
    pub attempts: i64,
    /// The request's expiry: nothing is sent after it.
    pub expires_at: i64,
}

const COLUMNS: &str = "id, auth_req_id, device_id, channel, created_at, attempts, expires_at";

/// What sending one row needs besides the row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushContext {
    pub id: String,
    pub request_pending: bool,
    /// The agent's display name (its client id when it has none).
    pub agent: String,
    pub subject: String,
    pub push_token: Option<String>,
    pub token_invalid: bool,
    pub device_removed: bool,
}

fn from_row(row: &AnyRow) -> Result<PushRow, StoreError> {
    Ok(PushRow {
        id: row.try_get("id")?,
        auth_req_id: row.try_get("auth_req_id")?,
        device_id: row.try_get("device_id")?,
        channel: row.try_get("channel")?,
        created_at: row.try_get("created_at")?,
        attempts: row.try_get("attempts")?,
        expires_at: row.try_get("expires_at")?,
    })
}

/// `INSERT` of `rows` push rows in one statement (due at once).
pub(super) fn insert_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let p: Vec<String> = (1..=6).map(|c| format!("${}", r * 6 + c)).collect();
            format!("({}, 0, {}, {})", p[..5].join(", "), p[4], p[5])
        })
        .collect();
    format!(
        "INSERT INTO push_outbox (id, auth_req_id, device_id, channel, created_at, attempts, \
         next_attempt_at, expires_at) VALUES {}",
        values.join(", ")
    )
}

pub(super) fn bind_insert<'q>(q: AnyQuery<'q>, r: &PushRow) -> AnyQuery<'q> {
    q.bind(r.id.clone())
        .bind(r.auth_req_id.clone())
        .bind(r.device_id.clone())
        .bind(r.channel.clone())
        .bind(r.created_at)
        .bind(r.expires_at)
}

impl Store {
    /// Leases up to `limit` due rows until `lease_until_ms`.
    pub async fn claim_due_pushes(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> Result<Vec<PushRow>, StoreError> {
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE push_outbox SET locked_until = $1 WHERE id IN (\
               SELECT id FROM push_outbox WHERE delivered_at IS NULL AND failed_at IS NULL \
               AND next_attempt_at <= $2 AND locked_until <= $2 ORDER BY next_attempt_at LIMIT $3 {lock}) \
             RETURNING {COLUMNS}"
        ));
        let query = sqlx::query(sql)
            .bind(lease_until_ms)
            .bind(now_ms)
            .bind(limit);
        let rows = match self.backend {
            // A lease is advisory: lost in a crash, the rows are simply claimable again. So
            // PostgreSQL need not wait for the WAL flush (an fsync on every claim, on the
            // path of every alert).
            Backend::Postgres => {
                let mut tx = self.writer().begin().await?;
                sqlx::query("SET LOCAL synchronous_commit TO OFF")
                    .execute(&mut *tx)
                    .await?;
                let rows = query.fetch_all(&mut *tx).await?;
                tx.commit().await?;
                rows
            }
            Backend::Sqlite => query.fetch_all(self.writer()).await?,
        };
        rows.iter().map(from_row).collect()
    }

    /// Everything sending `ids` needs, read in one query: the request's state, the
    /// agent's name and the device's token.
    pub async fn push_context(&self, ids: &[&str]) -> Result<Vec<PushContext>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT p.id, r.status, COALESCE(c.name, r.client_id) AS agent, d.subject, \
               d.push_token, d.push_token_invalid_at, d.disabled_at \
             FROM push_outbox p JOIN auth_requests r ON r.id = p.auth_req_id \
               JOIN devices d ON d.id = p.device_id LEFT JOIN clients c ON c.client_id = r.client_id \
             WHERE p.id IN ({})",
            placeholders.join(", ")
        ));
        let rows = ids
            .iter()
            .fold(sqlx::query(sql), |q, id| q.bind(*id))
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(PushContext {
                    id: r.try_get("id")?,
                    request_pending: r.try_get::<String, _>("status")? == "pending",
                    agent: r.try_get("agent")?,
                    subject: r.try_get("subject")?,
                    push_token: r.try_get("push_token")?,
                    token_invalid: r
                        .try_get::<Option<i64>, _>("push_token_invalid_at")?
                        .is_some(),
                    device_removed: r.try_get::<Option<i64>, _>("disabled_at")?.is_some(),
                })
            })
            .collect()
    }

    /// Marks `ids` delivered, in one statement.
    pub async fn mark_pushes_delivered(&self, ids: &[&str], now_ms: i64) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let placeholders: Vec<String> = (2..=ids.len() + 1).map(|i| format!("${i}")).collect();
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE push_outbox SET delivered_at = $1, attempts = attempts + 1 WHERE id IN ({})",
            placeholders.join(", ")
        ));
        ids.iter()
            .fold(sqlx::query(sql).bind(now_ms), |q, id| q.bind(*id))
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// A failed attempt: retry at `next_attempt_at_ms`, or give up when that is `None`.
    pub async fn mark_push_failed(
        &self,
        id: &str,
        error: &str,
        next_attempt_at_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let query = match next_attempt_at_ms {
            Some(next) => sqlx::query(
                "UPDATE push_outbox SET attempts = attempts + 1, next_attempt_at = $1, locked_until = 0, \
                 last_error = $2 WHERE id = $3",
            )
            .bind(next),
            None => sqlx::query(
                "UPDATE push_outbox SET attempts = attempts + 1, failed_at = $1, last_error = $2 WHERE id = $3",
            )
            .bind(now_ms),
        };
        query.bind(error).bind(id).execute(self.writer()).await?;
        Ok(())
    }

    /// Rows of one request (for tests and `push` diagnostics), oldest first.
    pub async fn pushes_for_request(
        &self,
        auth_req_id: &str,
    ) -> Result<Vec<(PushRow, Option<i64>, Option<String>)>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS}, delivered_at, last_error FROM push_outbox WHERE auth_req_id = $1 ORDER BY created_at, id"
        ));
        let rows = sqlx::query(sql)
            .bind(auth_req_id)
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    from_row(r)?,
                    r.try_get("delivered_at")?,
                    r.try_get("last_error")?,
                ))
            })
            .collect()
    }

    /// Marks a device's push token invalid (the push service said it is unregistered):
    /// the device stays enrolled and is flagged for re-registration.
    pub async fn invalidate_push_token(
        &self,
        device_id: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.directory_cache.push_targets.clear();
        sqlx::query(
            "UPDATE devices SET push_token_invalid_at = $1 WHERE id = $2 AND push_token_invalid_at IS NULL",
        )
        .bind(now_ms)
        .bind(device_id)
        .execute(self.writer())
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::insert_sql;

    #[test]
    fn rows_are_due_at_creation() {
        assert_eq!(
            insert_sql(2),
            "INSERT INTO push_outbox (id, auth_req_id, device_id, channel, created_at, attempts, \
             next_attempt_at, expires_at) VALUES ($1, $2, $3, $4, $5, 0, $5, $6), ($7, $8, $9, $10, $11, 0, $11, $12)"
        );
    }
}
