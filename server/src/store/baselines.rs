//! The `decision_samples` aggregate: one row per accepted action (allowed by policy or
//! approved by a human) with its quantity and amount, from which the policy engine builds
//! each agent's baseline per action.

use sqlx::Row;

use super::{Store, StoreError};

#[derive(Debug, Clone, PartialEq)]
pub struct SampleRecord {
    pub client_id: String,
    pub action: String,
    pub at_ms: i64,
    pub quantity: Option<f64>,
    pub amount: Option<f64>,
}

/// Numbers are stored in units of 1/10 000 as integers: sqlx's Any driver declares an
/// optional float that is `None` as float4 on PostgreSQL, which then refuses the float8
/// of a later row.
const SCALE: f64 = 10_000.0;

fn to_stored(n: Option<f64>) -> Option<i64> {
    n.filter(|n| n.is_finite())
        .map(|n| (n * SCALE).round().clamp(i64::MIN as f64, i64::MAX as f64) as i64)
}

fn from_stored(n: Option<i64>) -> Option<f64> {
    n.map(|n| n as f64 / SCALE)
}

/// Inserts `samples` on `conn` (inside the caller's transaction).
pub(crate) async fn insert_on(
    conn: &mut sqlx::AnyConnection,
    samples: &[&SampleRecord],
) -> Result<(), StoreError> {
    let params = super::Params::of(conn);
    for chunk in samples.chunks(INSERT_CHUNK) {
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO decision_samples ({COLUMNS}) VALUES {}",
            super::placeholders_as(params, 0, chunk.len(), COLUMN_COUNT)
        ));
        let query = chunk.iter().fold(sqlx::query(sql), |q, s| bind(q, s));
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// 64 rows × 5 columns per statement keeps within bind-parameter limits.
pub(crate) const INSERT_CHUNK: usize = 64;
pub(crate) const COLUMNS: &str = "client_id, action, at, quantity_e4, amount_e4";
pub(crate) const COLUMN_COUNT: usize = 5;

/// About how many bytes `s` takes as statement parameters.
pub(crate) fn record_bytes(s: &SampleRecord) -> usize {
    s.client_id.len() + s.action.len() + 3 * 8
}

/// Binds `s` as the next row of [`COLUMNS`].
pub(crate) fn bind<'q>(q: super::AnyQuery<'q>, s: &SampleRecord) -> super::AnyQuery<'q> {
    q.bind(s.client_id.clone())
        .bind(s.action.clone())
        .bind(s.at_ms)
        .bind(to_stored(s.quantity))
        .bind(to_stored(s.amount))
}

impl Store {
    /// Inserts `samples` inside `tx`.
    pub async fn insert_samples(
        &self,
        tx: &mut super::Tx<'_>,
        samples: &[SampleRecord],
    ) -> Result<(), StoreError> {
        let refs: Vec<&SampleRecord> = samples.iter().collect();
        insert_on(tx.conn(), &refs).await
    }

    /// The newest `limit` samples of `client_id` for `action` since `since_ms`.
    pub async fn samples(
        &self,
        client_id: &str,
        action: &str,
        since_ms: i64,
        limit: i64,
    ) -> Result<Vec<SampleRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, quantity_e4, amount_e4 FROM decision_samples \
             WHERE client_id = $1 AND action = $2 AND at >= $3 ORDER BY at DESC LIMIT $4",
        )
        .bind(client_id)
        .bind(action)
        .bind(since_ms)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SampleRecord {
                    client_id: client_id.to_owned(),
                    action: action.to_owned(),
                    at_ms: r.try_get("at")?,
                    quantity: from_stored(r.try_get("quantity_e4")?),
                    amount: from_stored(r.try_get("amount_e4")?),
                })
            })
            .collect()
    }

    /// Deletes samples older than `before_ms` (housekeeping).
    pub async fn purge_samples(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM decision_samples WHERE at < $1")
            .bind(before_ms)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::each_backend;

    fn sample(at_ms: i64, quantity: Option<f64>, amount: Option<f64>) -> SampleRecord {
        SampleRecord {
            client_id: "agent".into(),
            action: "provision".into(),
            at_ms,
            quantity,
            amount,
        }
    }

    #[tokio::test]
    async fn samples_with_and_without_numbers_round_trip_newest_first() {
        each_backend(|store| async move {
            for batch in [
                vec![sample(1, None, None)],
                vec![sample(2, Some(2.0), None), sample(3, None, Some(12.5))],
                vec![sample(4, Some(3.0), Some(1200.0))],
            ] {
                let mut tx = store.begin().await.unwrap();
                store.insert_samples(&mut tx, &batch).await.unwrap();
                tx.commit().await.unwrap();
            }
            let got = store.samples("agent", "provision", 2, 10).await.unwrap();
            assert_eq!(
                got.iter()
                    .map(|s| (s.at_ms, s.quantity, s.amount))
                    .collect::<Vec<_>>(),
                [
                    (4, Some(3.0), Some(1200.0)),
                    (3, None, Some(12.5)),
                    (2, Some(2.0), None)
                ]
            );
            assert_eq!(store.purge_samples(3).await.unwrap(), 2);
        })
        .await;
    }
}
