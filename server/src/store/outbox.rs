//! The client-notification outbox (CIBA ping and push callbacks). Messages are written in
//! the same transaction as the decision they announce, so a crash can never lose one; a
//! worker claims due messages under a lease, so no two workers (or replicas) send the same
//! message at once.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, Store, StoreError, Tx};
use crate::ids::AuthReqId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    pub id: String,
    pub auth_req_id: AuthReqId,
    pub endpoint: String,
    pub bearer: String,
    pub payload: String,
    pub attempts: i64,
    pub expires_at: i64,
}

fn from_row(row: &AnyRow) -> Result<OutboxMessage, StoreError> {
    Ok(OutboxMessage {
        id: row.try_get("id")?,
        auth_req_id: row.try_get("auth_req_id")?,
        endpoint: row.try_get("endpoint")?,
        bearer: row.try_get("bearer")?,
        payload: row.try_get("payload")?,
        attempts: row.try_get("attempts")?,
        expires_at: row.try_get("expires_at")?,
    })
}

impl Store {
    pub async fn enqueue_notification(
        &self,
        tx: &mut Tx<'_>,
        m: &OutboxMessage,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO outbox (id, auth_req_id, endpoint, bearer, payload, attempts, next_attempt_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, 0, $6, $7)",
        )
        .bind(&m.id)
        .bind(&m.auth_req_id)
        .bind(&m.endpoint)
        .bind(&m.bearer)
        .bind(&m.payload)
        .bind(now_ms)
        .bind(m.expires_at)
        .execute(tx.conn())
        .await
        .map_err(StoreError::from_insert)?;
        Ok(())
    }

    /// Leases up to `limit` due messages until `lease_until_ms`.
    pub async fn claim_due_notifications(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        // PostgreSQL replicas skip rows another replica is claiming right now; SQLite has a
        // single writer, so the plain subquery is already exclusive.
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE outbox SET locked_until = $1 WHERE id IN (\
               SELECT id FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL \
               AND next_attempt_at <= $2 AND locked_until <= $2 ORDER BY next_attempt_at LIMIT $3 {lock}) \
             RETURNING id, auth_req_id, endpoint, bearer, payload, attempts, expires_at"
        ));
        let rows = sqlx::query(sql)
            .bind(lease_until_ms)
            .bind(now_ms)
            .bind(limit)
            .fetch_all(self.writer())
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Delivered: the payload (which may hold tokens) is erased.
    pub async fn mark_notification_delivered(
        &self,
        id: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET delivered_at = $1, payload = '', attempts = attempts + 1 WHERE id = $2")
            .bind(now_ms)
            .bind(id)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// A failed attempt: retry at `next_attempt_at_ms`, or give up when that is `None`.
    pub async fn mark_notification_failed(
        &self,
        id: &str,
        error: &str,
        next_attempt_at_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        match next_attempt_at_ms {
            Some(next) => sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, locked_until = 0, last_error = $2 \
                 WHERE id = $3",
            )
            .bind(next)
            .bind(error)
            .bind(id),
            None => sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, failed_at = $1, payload = '', last_error = $2 WHERE id = $3",
            )
            .bind(now_ms)
            .bind(error)
            .bind(id),
        }
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Messages not yet delivered nor given up (the `outbox depth` gauge).
    pub async fn outbox_depth(&self) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL",
        )
        .fetch_one(self.reader())
        .await?;
        Ok(row.try_get("n")?)
    }

    /// Delivery state of the messages of one request, for tests and operators:
    /// `(attempts, delivered, failed)`.
    pub async fn notification_state(
        &self,
        auth_req_id: &str,
    ) -> Result<Vec<(i64, bool, bool)>, StoreError> {
        let rows = sqlx::query(
            "SELECT attempts, delivered_at, failed_at FROM outbox WHERE auth_req_id = $1 ORDER BY id",
        )
        .bind(auth_req_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                let delivered: Option<i64> = r.try_get("delivered_at")?;
                let failed: Option<i64> = r.try_get("failed_at")?;
                Ok((
                    r.try_get("attempts")?,
                    delivered.is_some(),
                    failed.is_some(),
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::auth_requests::{AuthRequestRecord, AuthRequestStatus};
    use crate::store::testing::each_backend;

    #[tokio::test]
    async fn claim_lease_retry_and_deliver() {
        each_backend(|store| async move {
            crate::store::auth_requests::tests::seed(&store).await;
            store
                .insert_auth_request(&AuthRequestRecord {
                    id: "r".into(),
                    client_id: "agent".into(),
                    subject: "alice".into(),
                    scope: "openid".into(),
                    binding_message: None,
                    acr_values: None,
                    authorization_details: None,
                    delivery_mode: countersign_shared::DeliveryMode::Ping,
                    notification_token: Some("t".into()),
                    status: AuthRequestStatus::Pending,
                    created_at: 0,
                    expires_at: 100_000,
                    interval_secs: 5,
                    last_poll_at: None,
                    decided_at: None,
                    decided_by: None,
                    decision_method: None,
                    ..AuthRequestRecord::default()
                })
                .await
                .unwrap();
            let msg = OutboxMessage {
                id: "m1".into(),
                auth_req_id: "r".into(),
                endpoint: "http://127.0.0.1:1/cb".into(),
                bearer: "t".into(),
                payload: "{}".into(),
                attempts: 0,
                expires_at: 100_000,
            };
            let mut tx = store.begin().await.unwrap();
            store.enqueue_notification(&mut tx, &msg, 10).await.unwrap();
            tx.commit().await.unwrap();
            assert_eq!(store.outbox_depth().await.unwrap(), 1);

            let claimed = store.claim_due_notifications(10, 1_010, 10).await.unwrap();
            assert_eq!(claimed, vec![msg.clone()]);
            // Leased: a second worker sees nothing until the lease ends.
            assert!(
                store
                    .claim_due_notifications(500, 1_500, 10)
                    .await
                    .unwrap()
                    .is_empty()
            );
            assert_eq!(
                store
                    .claim_due_notifications(1_010, 2_010, 10)
                    .await
                    .unwrap()
                    .len(),
                1
            );

            store
                .mark_notification_failed("m1", "503", Some(3_000), 1_100)
                .await
                .unwrap();
            assert!(
                store
                    .claim_due_notifications(2_999, 4_000, 10)
                    .await
                    .unwrap()
                    .is_empty()
            );
            let again = store
                .claim_due_notifications(3_000, 4_000, 10)
                .await
                .unwrap();
            assert_eq!(again[0].attempts, 1);
            store
                .mark_notification_delivered("m1", 3_100)
                .await
                .unwrap();
            assert!(
                store
                    .claim_due_notifications(10_000, 11_000, 10)
                    .await
                    .unwrap()
                    .is_empty()
            );
            assert_eq!(store.outbox_depth().await.unwrap(), 0);
            assert_eq!(
                store.notification_state("r").await.unwrap(),
                vec![(2, true, false)]
            );
        })
        .await;
    }
}
