//! Group commit for new authentication requests. Under load many `bc-authorize` calls
//! arrive at once; instead of one INSERT and one commit each, a single task takes whatever
//! is queued (up to `MAX_BATCH`) and writes it as one multi-row INSERT. Every caller is
//! answered only after the statement holding its row has committed, so durability is the
//! same as a lone INSERT; under light load a batch is one row and nothing waits.
//!
//! A request may come with push rows (its approver's devices to alert): those are
//! inserted in the same transaction, so a request is never created without its alerts.

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::StoreError;
use super::auth_requests::{AuthRequestRecord, bind_insert, insert_sql};
use super::push_outbox::{self, PushRow};

/// 64 rows × 20 columns stays far below SQLite's and PostgreSQL's bind-parameter limits.
const MAX_BATCH: usize = 64;

struct Job {
    record: AuthRequestRecord,
    pushes: Vec<PushRow>,
    done: oneshot::Sender<Result<(), StoreError>>,
}

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

    pub async fn insert(
        &self,
        record: AuthRequestRecord,
        pushes: Vec<PushRow>,
    ) -> Result<(), StoreError> {
        let (done, result) = oneshot::channel();
        self.queue
            .send(Job {
                record,
                pushes,
                done,
            })
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?;
        result
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?
    }
}

/// Writes `jobs` (requests and their push rows) in one transaction.
async fn write(pool: &AnyPool, jobs: &[Job]) -> Result<(), sqlx::Error> {
    let records = jobs.iter().map(|j| &j.record);
    let sql = sqlx::AssertSqlSafe(insert_sql(jobs.len()));
    let insert = records.fold(sqlx::query(sql), |q, r| bind_insert(q, r));
    let pushes: Vec<&PushRow> = jobs.iter().flat_map(|j| &j.pushes).collect();
    if pushes.is_empty() {
        // The common case needs no explicit transaction: one statement commits itself.
        insert.execute(pool).await?;
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    insert.execute(&mut *tx).await?;
    // 64 rows × 6 columns per statement keeps well within bind-parameter limits.
    for chunk in pushes.chunks(MAX_BATCH) {
        let sql = sqlx::AssertSqlSafe(push_outbox::insert_sql(chunk.len()));
        let query = chunk
            .iter()
            .fold(sqlx::query(sql), |q, r| push_outbox::bind_insert(q, r));
        query.execute(&mut *tx).await?;
    }
    tx.commit().await
}

async fn run(pool: AnyPool, mut rx: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        match write(&pool, &batch).await {
            Ok(()) => {
                for job in batch.drain(..) {
                    let _ = job.done.send(Ok(()));
                }
            }
            // One bad row (e.g. a client deleted meanwhile) must not fail its neighbours:
            // retry each row on its own so each caller gets its own answer.
            Err(_) if batch.len() > 1 => {
                for job in batch.drain(..) {
                    let result = write(&pool, std::slice::from_ref(&job))
                        .await
                        .map_err(StoreError::from_insert);
                    let _ = job.done.send(result);
                }
            }
            Err(e) => {
                let error = StoreError::from_insert(e);
                for job in batch.drain(..) {
                    let _ = job.done.send(Err(clone_error(&error)));
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
