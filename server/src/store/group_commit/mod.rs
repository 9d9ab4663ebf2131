//! Group commit for the hot writes: new authentication requests with their decision
//! trace, token issuance with its trace, and decisions made for gateways. Under load many
//! callers write at once; instead of one transaction each, a single task takes whatever
//! is queued (up to `MAX_BATCH` write sets) and writes them in one transaction, with the
//! requests as one multi-row INSERT and the audit events chained under one lock of the
//! chain's head. Every caller is answered only after the transaction holding its writes
//! has committed, so durability is the same as writing alone; under light load a batch
//! is one set and nothing waits.

mod alone;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::StoreError;
use super::audit::{self, NewAuditRecord};
use super::auth_requests::{AuthRequestRecord, bind_insert, claim_sql, from_row, insert_sql};
use super::baselines::{self, SampleRecord};
use super::push_outbox::{self, PushRow};
use super::sessions::{self, SessionUpdate};
use super::tokens::TokenGrant;
use crate::ids::{AuthReqId, ClientId, Subject};
use alone::{take_head, write_traces_alone};

/// 64 rows × 20 columns stays far below SQLite's and PostgreSQL's bind-parameter limits.
const MAX_BATCH: usize = 64;

/// Issue `grant` for an approved request, if the client waited its polling interval (see
/// [`super::Store::claim_for_issue`]).
#[derive(Debug, Clone)]
pub struct Claim {
    pub auth_req_id: AuthReqId,
    pub client_id: ClientId,
    pub grant: TokenGrant,
    pub now_ms: i64,
    /// Builds the trace event of the issuance from the claimed request.
    pub event: Option<fn(&AuthRequestRecord, &TokenGrant) -> NewAuditRecord>,
}

/// Everything one caller writes atomically. With a `claim`, the rest is written only if
/// the claim matched.
#[derive(Debug, Clone, Default)]
pub struct WriteSet {
    pub request: Option<AuthRequestRecord>,
    /// Who may approve `request` (a step-up).
    pub approvers: Vec<Subject>,
    /// Alerts for the approvers' devices.
    pub pushes: Vec<PushRow>,
    pub session: Option<SessionUpdate>,
    pub samples: Vec<SampleRecord>,
    pub claim: Option<Claim>,
    /// The trace of what this set does.
    pub events: Vec<NewAuditRecord>,
}

impl WriteSet {
    /// Only a trace (and baseline samples): what a gateway's decision writes.
    fn only_traces(&self) -> bool {
        self.request.is_none()
            && self.approvers.is_empty()
            && self.pushes.is_empty()
            && self.session.is_none()
            && self.claim.is_none()
    }
}

struct SetJob {
    set: WriteSet,
    done: oneshot::Sender<Result<Option<AuthRequestRecord>, StoreError>>,
}

/// Writes that must read what they change first (a human's decision on a pending request,
/// with the passkey challenge it consumes): run on the writer's connection inside the
/// batch's transaction, each in a savepoint of its own ([`super::Tx::nested`]), so they
/// share the batch's commit and its one lock of the audit chain's head instead of taking
/// both per decision. Keep them short: the batch waits for them.
pub type Work = Box<dyn for<'a> FnOnce(&'a mut sqlx::AnyConnection) -> BoxFuture<'a, Step> + Send>;

/// What a [`Work`] did.
pub struct Step {
    /// Events to chain with the batch's (empty when its savepoint was rolled back).
    pub events: Vec<NewAuditRecord>,
    /// Told once the batch committed (or failed: then nothing of the work persists).
    pub after: After,
}

/// A work's continuation, told how the batch's commit went.
pub type After = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// What a work returns to [`super::Store::write_with`]: its caller's result and, when it
/// kept its writes, their trace.
pub struct Done<T, E> {
    pub result: Result<T, E>,
    pub events: Vec<NewAuditRecord>,
}

enum Job {
    Set(Box<SetJob>),
    Work(Work),
}

#[derive(Clone)]
pub struct BatchWriter {
    queue: mpsc::Sender<Job>,
    /// Sets queued by [`BatchWriter::submit`] whose commit nobody awaits yet.
    unsettled: Arc<Unsettled>,
}

#[derive(Default)]
struct Unsettled {
    count: std::sync::atomic::AtomicUsize,
    settled: tokio::sync::Notify,
}

impl Unsettled {
    fn settle_one(&self) {
        if self.count.fetch_sub(1, std::sync::atomic::Ordering::AcqRel) == 1 {
            self.settled.notify_waiters();
        }
    }
}

impl BatchWriter {
    /// `writers` tasks take batches from one queue. SQLite has one writer connection, so
    /// one; on PostgreSQL several batches can do their statements at once and queue only
    /// for the audit chain's head row, which each takes last, once per batch. With
    /// `alone_bytes` (PostgreSQL), a batch that only traces is written as self-committing
    /// statements of at most that many bytes instead ([`audit::append_alone`]).
    pub(crate) fn spawn(
        pool: AnyPool,
        writers: usize,
        alone_bytes: Option<usize>,
        head: Arc<audit::HeadGuess>,
    ) -> Self {
        let (queue, rx) = mpsc::channel(4 * MAX_BATCH);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let writer = Writer {
            pool,
            head,
            alone_bytes,
        };
        for _ in 0..writers.max(1) {
            tokio::spawn(run(writer.clone(), rx.clone()));
        }
        Self {
            queue,
            unsettled: Arc::default(),
        }
    }

    /// Writes `set`; with a claim, returns the claimed request (`None`: it matched nothing
    /// and nothing was written).
    pub async fn write(&self, set: WriteSet) -> Result<Option<AuthRequestRecord>, StoreError> {
        let (done, result) = oneshot::channel();
        self.queue
            .send(Job::Set(Box::new(SetJob { set, done })))
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?;
        result
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?
    }

    /// Queues `set` for the next batch and returns once it is queued (waiting only while
    /// the queue is full), not once it is committed; a failure to write it is logged.
    pub async fn submit(&self, set: WriteSet) -> Result<(), StoreError> {
        let (done, result) = oneshot::channel();
        self.unsettled
            .count
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        if self
            .queue
            .send(Job::Set(Box::new(SetJob { set, done })))
            .await
            .is_err()
        {
            self.unsettled.settle_one();
            return Err(StoreError::Database(sqlx::Error::PoolClosed));
        }
        let unsettled = self.unsettled.clone();
        tokio::spawn(async move {
            if let Ok(Err(e)) = result.await {
                tracing::error!(error = %e, "a queued write was not committed");
            }
            unsettled.settle_one();
        });
        Ok(())
    }

    /// Waits until every set [`BatchWriter::submit`] queued so far is committed (or
    /// failed): before the pools close, so none is lost at a clean stop.
    pub async fn settle(&self) {
        loop {
            let settled = self.unsettled.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            if self
                .unsettled
                .count
                .load(std::sync::atomic::Ordering::Acquire)
                == 0
            {
                return;
            }
            settled.await;
        }
    }

    /// Runs `work` inside the next batch; its result arrives once that batch committed.
    pub async fn write_with<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: for<'a> FnOnce(&'a mut sqlx::AnyConnection) -> BoxFuture<'a, Done<T, E>>
            + Send
            + 'static,
    {
        let (done, result) = oneshot::channel::<Result<T, E>>();
        let job: Work = Box::new(move |conn| {
            Box::pin(async move {
                let Done { result, events } = work(conn).await;
                let events = if result.is_ok() { events } else { Vec::new() };
                Step {
                    events,
                    after: Box::new(move |committed: Result<(), StoreError>| {
                        let _ = done.send(committed.map_err(E::from).and(result));
                    }),
                }
            })
        });
        self.queue
            .send(Job::Work(job))
            .await
            .map_err(|_| E::from(StoreError::Database(sqlx::Error::PoolClosed)))?;
        result
            .await
            .map_err(|_| E::from(StoreError::Database(sqlx::Error::PoolClosed)))?
    }
}

impl super::Store {
    /// Writes `set` atomically; concurrent sets are group-committed (see
    /// this module). With a claim, returns the claimed request.
    pub async fn write(&self, set: WriteSet) -> Result<Option<AuthRequestRecord>, StoreError> {
        self.batch_writer.write(set).await
    }

    /// Queues `set` without waiting for its commit: for records written after the fact,
    /// whose writer has nothing to decide on their durability (see [`BatchWriter::submit`]).
    pub async fn submit(&self, set: WriteSet) -> Result<(), StoreError> {
        self.batch_writer.submit(set).await
    }

    /// Runs `work` (which opens its own savepoint with [`super::Tx::nested`]) inside the
    /// next group-committed transaction; its result arrives once that committed.
    pub async fn write_with<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: for<'a> FnOnce(
                &'a mut sqlx::AnyConnection,
            ) -> futures_util::future::BoxFuture<'a, Done<T, E>>
            + Send
            + 'static,
    {
        self.batch_writer.write_with(work).await
    }
}

type Outcome = Option<AuthRequestRecord>;

/// About how many bytes a request row's parameters take on the wire.
fn record_bytes(r: &AuthRequestRecord) -> usize {
    let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    r.id.len()
        + r.client_id.len()
        + r.subject.len()
        + r.scope.len()
        + text(&r.binding_message)
        + text(&r.acr_values)
        + text(&r.authorization_details)
        + text(&r.notification_token)
        + text(&r.task_id)
        + text(&r.policy_refs)
        + text(&r.policy_reasons)
        + text(&r.risk_signals)
        + text(&r.dpop_jkt)
        + 29 * 12
}

/// What each writer task writes with.
#[derive(Clone)]
struct Writer {
    pool: AnyPool,
    head: Arc<audit::HeadGuess>,
    /// Set where trace-only batches are written alone, in statements of at most this
    /// many bytes.
    alone_bytes: Option<usize>,
}

/// Writes every set of `jobs` and runs every work in one transaction; per set, the
/// claimed request; the works' `after`s, to be told how the commit went.
async fn write(
    writer: &Writer,
    jobs: &[SetJob],
    works: Vec<Work>,
    afters: &mut Vec<After>,
) -> Result<Vec<Outcome>, StoreError> {
    let Writer { pool, head, .. } = writer;
    let mut tx = pool.begin().await?;
    let conn: &mut sqlx::AnyConnection = &mut tx;
    insert_rows(conn, jobs).await?;
    let mut outcomes = Vec::with_capacity(jobs.len());
    let mut events = Vec::new();
    let mut samples = Vec::new();
    let mut session_updates = Vec::new();
    for job in jobs {
        let set = &job.set;
        let claimed = match &set.claim {
            Some(c) => match claim_on(conn, c).await? {
                Some(request) => {
                    if let Some(event) = c.event {
                        events.push(event(&request, &c.grant));
                    }
                    Some(request)
                }
                None => {
                    outcomes.push(None);
                    continue;
                }
            },
            None => None,
        };
        session_updates.extend(set.session.as_ref());
        samples.extend(set.samples.iter());
        events.extend(set.events.iter().cloned());
        outcomes.push(claimed);
    }
    sessions::record_all_on(conn, &session_updates).await?;
    for work in works {
        let step = work(&mut *conn).await;
        events.extend(step.events);
        afters.push(step.after);
    }
    baselines::insert_on(conn, &samples).await?;
    // Once per transaction, by construction (works return their events).
    audit::append_on(conn, Some(&**head), &events).await?;
    tx.commit()
        .await
        .map_err(|e| StoreError::Uncertain(e.to_string()))?;
    Ok(outcomes)
}

/// The sets' new requests, their approvers and their push rows, in multi-row statements.
async fn insert_rows(conn: &mut sqlx::AnyConnection, jobs: &[SetJob]) -> Result<(), StoreError> {
    let params = super::Params::of(conn);
    let requests: Vec<&AuthRequestRecord> =
        jobs.iter().filter_map(|j| j.set.request.as_ref()).collect();
    for chunk in super::statement_chunks(&requests, MAX_BATCH, |r| record_bytes(r)) {
        let sql = sqlx::AssertSqlSafe(insert_sql(params, chunk.len()));
        let insert = chunk
            .iter()
            .fold(sqlx::query(sql), |q, r| bind_insert(q, r));
        insert
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_insert)?;
    }
    let approvers: Vec<(&str, &str)> = jobs
        .iter()
        .filter_map(|j| Some((j.set.request.as_ref()?, &j.set.approvers)))
        .flat_map(|(r, subjects)| subjects.iter().map(|s| (r.id.as_str(), s.as_str())))
        .collect();
    for chunk in approvers.chunks(MAX_BATCH) {
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO request_approvers (auth_req_id, subject) VALUES {}",
            super::placeholders_as(params, 0, chunk.len(), 2)
        ));
        let query = chunk
            .iter()
            .fold(sqlx::query(sql), |q, (id, s)| q.bind(*id).bind(*s));
        query.execute(&mut *conn).await?;
    }
    let pushes: Vec<&PushRow> = jobs.iter().flat_map(|j| &j.set.pushes).collect();
    // 64 rows × 6 columns per statement keeps well within bind-parameter limits.
    for chunk in pushes.chunks(MAX_BATCH) {
        let sql = sqlx::AssertSqlSafe(push_outbox::insert_sql(chunk.len()));
        let query = chunk
            .iter()
            .fold(sqlx::query(sql), |q, r| push_outbox::bind_insert(q, r));
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Marks the claimed request issued with the claim's grant, if it is still the client's
/// approved, unissued request; returns it then.
async fn claim_on(
    conn: &mut sqlx::AnyConnection,
    c: &Claim,
) -> Result<Option<AuthRequestRecord>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(claim_sql()))
        .bind(c.grant.issued_at)
        .bind(&c.grant.jti)
        .bind(&c.grant.token_type)
        .bind(&c.grant.cnf_jkt)
        .bind(c.grant.expires_at)
        .bind(&c.auth_req_id)
        .bind(&c.client_id)
        .bind(c.now_ms)
        .bind(c.grant.status_list)
        .bind(c.grant.status_idx)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

async fn run(writer: Writer, rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    loop {
        // The queue is held only while taking a batch, so another writer takes the next
        // one while this one writes.
        let mut queue = rx.lock().await;
        if queue.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let alone = match &batch[0] {
            Job::Set(job) if job.set.only_traces() => {
                take_head(&writer, &mut queue, &mut batch).await
            }
            _ => None,
        };
        drop(queue);
        let mut sets = Vec::with_capacity(batch.len());
        let mut works = Vec::new();
        for job in batch.drain(..) {
            match job {
                Job::Set(set) => sets.push(*set),
                Job::Work(work) => works.push(work),
            }
        }
        metrics::histogram!("countersign_group_commit_batch_size")
            .record((sets.len() + works.len()) as f64);
        let started = std::time::Instant::now();
        match alone {
            Some(alone) if works.is_empty() && sets.iter().all(|j| j.set.only_traces()) => {
                write_traces_alone(&writer, alone, sets).await;
            }
            alone => {
                drop(alone);
                write_and_answer(&writer, sets, works).await;
            }
        }
        metrics::histogram!("countersign_group_commit_seconds")
            .record(started.elapsed().as_secs_f64());
    }
}

/// Writes `sets` and `works` in one transaction and answers every caller.
async fn write_and_answer(writer: &Writer, mut sets: Vec<SetJob>, works: Vec<Work>) {
    let had_works = !works.is_empty();
    let mut afters = Vec::new();
    let written = write(writer, &sets, works, &mut afters).await;
    let committed = written.as_ref().map(|_| ()).map_err(clone_error);
    for after in afters {
        after(committed.as_ref().map(|_| ()).map_err(clone_error));
    }
    match written {
        Ok(outcomes) => {
            for (job, outcome) in sets.drain(..).zip(outcomes) {
                let _ = job.done.send(Ok(outcome));
            }
        }
        // One bad set (e.g. a client deleted meanwhile) must not fail its neighbours:
        // retry each on its own so each caller gets its own answer. (A work cannot be
        // run twice; its caller got the error and may retry.) Not after a failed commit:
        // the batch may have committed, and a claim retried alone would then find its
        // request issued and its caller give back a status list entry now in use.
        Err(ref e)
            if !matches!(e, StoreError::Uncertain(_))
                && (sets.len() > 1 || (had_works && !sets.is_empty())) =>
        {
            for job in sets.drain(..) {
                let result = write(
                    writer,
                    std::slice::from_ref(&job),
                    Vec::new(),
                    &mut Vec::new(),
                )
                .await
                .map(|mut o| o.pop().flatten());
                let _ = job.done.send(result);
            }
        }
        Err(error) => {
            for job in sets.drain(..) {
                let _ = job.done.send(Err(clone_error(&error)));
            }
        }
    }
}

fn clone_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Conflict => StoreError::Conflict,
        StoreError::Uncertain(m) => StoreError::Uncertain(m.clone()),
        other => StoreError::Corrupt(format!("batched write failed: {other}")),
    }
}

#[cfg(test)]
mod tests;
