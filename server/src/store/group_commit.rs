//! Group commit for new authentication requests. Under load many `bc-authorize` calls
//! arrive at once; instead of one INSERT and one commit each, a single task takes whatever
//! is queued (up to `MAX_BATCH`) and writes it as one multi-row INSERT. Every caller is
//! answered only after the statement holding its row has committed, so durability is the
//! same as a lone INSERT; under light load a batch is one row and nothing waits.

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::StoreError;
use super::auth_requests::{AuthRequestRecord, bind_insert, insert_sql};

/// 64 rows × 20 columns stays far below SQLite's and PostgreSQL's bind-parameter limits.
const MAX_BATCH: usize = 64;

type Job = (AuthRequestRecord, oneshot::Sender<Result<(), StoreError>>);

#[derive(Clone)]
pub struct AuthRequestWriter {
    queue: mpsc::Sender<Job>,
}

impl AuthRequestWriter {
    pub fn spawn(pool: AnyPool) -> Self {
        let (queue, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(pool, rx));
        Self { queue }
    }

    pub async fn insert(&self, record: AuthRequestRecord) -> Result<(), StoreError> {
        let (done, result) = oneshot::channel();
        self.queue
            .send((record, done))
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?;
        result
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?
    }
}

async fn run(pool: AnyPool, mut rx: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let records: Vec<&AuthRequestRecord> = batch.iter().map(|(r, _)| r).collect();
        let sql = sqlx::AssertSqlSafe(insert_sql(records.len()));
        let query = records
            .iter()
            .fold(sqlx::query(sql), |q, r| bind_insert(q, r));
        match query.execute(&pool).await {
            Ok(_) => {
                for (_, done) in batch.drain(..) {
                    let _ = done.send(Ok(()));
                }
            }
            // One bad row (e.g. a client deleted meanwhile) must not fail its neighbours:
            // retry each row on its own so each caller gets its own answer.
            Err(_) if batch.len() > 1 => {
                for (record, done) in batch.drain(..) {
                    let sql = sqlx::AssertSqlSafe(insert_sql(1));
                    let result = bind_insert(sqlx::query(sql), &record)
                        .execute(&pool)
                        .await
                        .map(|_| ())
                        .map_err(StoreError::from_insert);
                    let _ = done.send(result);
                }
            }
            Err(e) => {
                let error = StoreError::from_insert(e);
                for (_, done) in batch.drain(..) {
                    let _ = done.send(Err(clone_error(&error)));
                }
            }
        }
    }
}

fn clone_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Conflict => StoreError::Conflict,
        other => StoreError::Corrupt(format!("batched insert failed: {other}")),
    }
}
