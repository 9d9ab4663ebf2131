//! Trace-only batches written alone: where the store is set up for it, a batch of sets
//! that only append to the trace (decisions' events and baseline samples) is written as
//! one statement on its own connection, holding the chain's head, and answered at once.

use tokio::sync::mpsc;

use super::{Job, MAX_BATCH, SetJob, Writer, clone_error, write_and_answer};
use crate::store::audit::{self, NewAuditRecord};
use crate::store::baselines::{self, SampleRecord};

/// What a batch of traces is written alone with: a connection and the chain's head.
pub(super) struct Alone<'a> {
    conn: sqlx::pool::PoolConnection<sqlx::Any>,
    head: audit::HeadGuard<'a>,
    max_bytes: usize,
}

/// Where trace-only batches are written alone: takes a connection, then the chain's head
/// (the guess), and only then everything queued meanwhile into `batch`. Taking the head
/// before the batch puts the callers who arrived during the previous statement into this
/// one instead of one statement later (measured: batches of ~10 instead of ~5). The
/// connection comes first because a transaction elsewhere may hold one while it waits
/// for the guess. `None` where batches are not written alone, or without a connection
/// (the ordinary way then meets the same error and reports it to each caller).
pub(super) async fn take_head<'a>(
    writer: &'a Writer,
    queue: &mut mpsc::Receiver<Job>,
    batch: &mut Vec<Job>,
) -> Option<Alone<'a>> {
    let max_bytes = writer.alone_bytes?;
    let conn = writer.pool.acquire().await.ok()?;
    let head = writer.head.lock().await;
    while batch.len() < MAX_BATCH {
        match queue.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    Some(Alone {
        conn,
        head,
        max_bytes,
    })
}

/// Writes trace-only `sets` alone, in statements of at most `alone.max_bytes` (see
/// STATEMENT_BYTES why they stay small), each committing and answered by itself; what
/// could not be written so goes the ordinary way after the head is let go.
pub(super) async fn write_traces_alone(writer: &Writer, alone: Alone<'_>, mut sets: Vec<SetJob>) {
    let Alone {
        mut conn,
        mut head,
        max_bytes,
    } = alone;
    let sizes: Vec<usize> =
        crate::store::statement_chunks_within(&sets, MAX_BATCH, max_bytes, set_bytes)
            .iter()
            .map(|group| group.len())
            .collect();
    let mut ordinary = Vec::new();
    for size in sizes {
        let group: Vec<SetJob> = sets.drain(..size).collect();
        if let Some(group) = write_alone(&mut conn, &mut head, max_bytes, group).await {
            ordinary.extend(group);
        }
    }
    // The ordinary way takes the head itself.
    drop((head, conn));
    if !ordinary.is_empty() {
        write_and_answer(writer, ordinary, Vec::new()).await;
    }
}

/// About how many bytes of statement parameters `job` writes.
fn set_bytes(job: &SetJob) -> usize {
    job.set
        .events
        .iter()
        .map(NewAuditRecord::statement_bytes)
        .chain(job.set.samples.iter().map(baselines::record_bytes))
        .sum()
}

/// Writes a group of trace-only sets as one statement and answers them; gives the group
/// back if that did not apply (nothing was written), to be written the ordinary way.
async fn write_alone(
    conn: &mut sqlx::AnyConnection,
    head: &mut audit::HeadGuard<'_>,
    max_bytes: usize,
    group: Vec<SetJob>,
) -> Option<Vec<SetJob>> {
    let events: Vec<&NewAuditRecord> = group.iter().flat_map(|j| &j.set.events).collect();
    let samples: Vec<&SampleRecord> = group.iter().flat_map(|j| &j.set.samples).collect();
    match audit::append_alone(conn, head, max_bytes, &events, &samples).await {
        Ok(true) => {
            for job in group {
                let _ = job.done.send(Ok(None));
            }
            None
        }
        Ok(false) => Some(group),
        // Not retried: the statement may have committed before its answer was lost, and
        // a retry would trace the same decisions twice.
        Err(error) => {
            for job in group {
                let _ = job.done.send(Err(clone_error(&error)));
            }
            None
        }
    }
}
