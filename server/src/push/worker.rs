//! Sends due push rows. Woken when a request with alerts is created, and otherwise looks
//! for due retries every `push.poll_interval_ms`. Each row is leased (30 s) before it is
//! sent, so on PostgreSQL exactly one replica sends it; a row whose send succeeded is
//! marked delivered and never sent again. A crash between the push service's answer and
//! that mark resends after the lease (APNs and FCM then collapse the duplicate, as both
//! carry the request id as their collapse key).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::{PushError, PushMessage, PushTarget, Senders};
use crate::clock::Clock;
use crate::config::Config;
use crate::notifications::backoff_ms;
use crate::store::Store;
use crate::store::push_outbox::{PushContext, PushRow};

/// What sending alerts works with.
#[derive(Clone)]
pub struct PushWorker {
    /// `push` (intervals, backoff) and what an alert says (`PushMessage::for_request`).
    pub config: Arc<Config>,
    pub issuer: Arc<str>,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub senders: Senders,
    /// Rung when a request with alerts was created.
    pub wake: Arc<Notify>,
}

impl PushWorker {
    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}

const LEASE_MS: i64 = 30_000;
const BATCH: i64 = 64;

pub async fn run(worker: PushWorker, mut shutdown: watch::Receiver<bool>) {
    let poll = Duration::from_millis(worker.config.push.poll_interval_ms);
    loop {
        loop {
            let now = worker.now_ms();
            let batch = match worker
                .store
                .claim_due_pushes(now, now + LEASE_MS, BATCH)
                .await
            {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "push outbox claim failed; retrying later");
                    break;
                }
            };
            if batch.is_empty() {
                break;
            }
            send_batch(&worker, batch).await;
        }
        tokio::select! {
            _ = worker.wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Sends a leased batch concurrently (one context read, one delivered-update for all).
async fn send_batch(worker: &PushWorker, batch: Vec<PushRow>) {
    let ids: Vec<&str> = batch.iter().map(|r| r.id.as_str()).collect();
    let contexts: HashMap<String, PushContext> = match worker.store.push_context(&ids).await {
        Ok(c) => c.into_iter().map(|c| (c.id.clone(), c)).collect(),
        Err(e) => {
            // The leases expire and the rows are tried again.
            tracing::warn!(error = %e, "reading push context failed; retrying later");
            return;
        }
    };
    let sends = batch
        .iter()
        .map(|row| attempt(worker, row, contexts.get(&row.id)));
    let outcomes = futures_util::future::join_all(sends).await;
    let now = worker.now_ms();
    let mut delivered = Vec::new();
    for (row, outcome) in batch.iter().zip(outcomes) {
        match outcome {
            Ok(()) => {
                metrics::counter!("countersign_push_total", "channel" => row.channel.clone(), "outcome" => "sent").increment(1);
                metrics::histogram!("countersign_push_first_delivery_seconds")
                    .record((now - row.created_at).max(0) as f64 / 1000.0);
                delivered.push(row.id.as_str());
            }
            Err(error) => failed(worker, row, error, now).await,
        }
    }
    if let Err(e) = worker.store.mark_pushes_delivered(&delivered, now).await {
        tracing::warn!(error = %e, "recording delivered pushes failed; they may be sent again");
    }
}

/// Records a failed send: scheduled again, or given up.
async fn failed(worker: &PushWorker, row: &PushRow, error: PushError, now: i64) {
    let (reason, retry_at) = match error {
        PushError::Retry { reason, after } => {
            let delay = match after {
                Some(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
                None => backoff_ms(
                    worker.config.push.initial_backoff_ms,
                    worker.config.push.max_backoff_ms,
                    row.attempts,
                ),
            };
            let next = now.saturating_add(delay);
            (reason, (next < row.expires_at).then_some(next))
        }
        PushError::Unregistered(reason) => {
            if let Err(e) = worker
                .store
                .invalidate_push_token(&row.device_id, now)
                .await
            {
                tracing::warn!(error = %e, "flagging an unregistered push token failed");
            }
            (reason, None)
        }
        e @ (PushError::Rejected(_) | PushError::NotConfigured(_)) => (e.to_string(), None),
    };
    let outcome = if retry_at.is_some() {
        "retry"
    } else {
        "failed"
    };
    metrics::counter!("countersign_push_total", "channel" => row.channel.clone(), "outcome" => outcome).increment(1);
    tracing::info!(channel = %row.channel, device = %row.device_id, attempts = row.attempts + 1, error = %reason, will_retry = retry_at.is_some(), "push not delivered");
    if let Err(e) = worker
        .store
        .mark_push_failed(&row.id, &reason, retry_at, now)
        .await
    {
        tracing::warn!(error = %e, "recording a failed push failed; the lease will expire and it will be retried");
    }
}

/// One send of `row`, or why not.
async fn attempt(
    worker: &PushWorker,
    row: &PushRow,
    context: Option<&PushContext>,
) -> Result<(), PushError> {
    let context = context
        .ok_or_else(|| PushError::Rejected("not sent: the request or device is gone".into()))?;
    if row.expires_at <= worker.now_ms() {
        return Err(PushError::Rejected("not sent: the request expired".into()));
    }
    if !context.request_pending {
        return Err(PushError::Rejected(
            "not sent: the request was decided".into(),
        ));
    }
    if context.device_removed {
        return Err(PushError::Rejected(
            "not sent: the device was removed".into(),
        ));
    }
    let sender = worker
        .senders
        .get(&row.channel)
        .ok_or_else(|| PushError::NotConfigured(row.channel.clone()))?;
    let message = PushMessage::for_request(
        &worker.config,
        &worker.issuer,
        &row.auth_req_id,
        &context.agent,
        row.expires_at,
    );
    let target = PushTarget {
        device_id: row.device_id.clone(),
        subject: context.subject.clone(),
        token: context
            .push_token
            .clone()
            .filter(|_| !context.token_invalid),
    };
    sender.send(&target, &message).await
}

/// Sends a test alert to one device now, outside the outbox (`countersign push test`).
pub async fn send_test(worker: &PushWorker, device_id: &str) -> Result<(), PushError> {
    let device = worker
        .store
        .device(device_id)
        .await
        .ok()
        .flatten()
        .ok_or_else(|| PushError::Rejected(format!("no device {device_id:?}")))?;
    let sender = worker
        .senders
        .get(&device.push_channel)
        .ok_or_else(|| PushError::NotConfigured(device.push_channel.clone()))?;
    let message = PushMessage {
        request_id: "test".into(),
        server: worker.issuer.to_string(),
        title: "Countersign".into(),
        body: "Test notification".into(),
        expires_at: worker.clock.now_secs() + 300,
    };
    let target = PushTarget {
        device_id: device.id,
        subject: device.subject.into_string(),
        token: device.push_token,
    };
    sender.send(&target, &message).await
}
