//! Sends due push rows. Woken when a request with alerts is created, and otherwise looks
//! for due retries every `push.poll_interval_ms`. Each row is leased (30 s) before it is
//! sent, so on PostgreSQL exactly one replica sends it; a row whose send succeeded is
//! marked delivered and never sent again. A crash between the push service's answer and
//! that mark resends after the lease (APNs and FCM then collapse the duplicate, as both
//! carry the request id as their collapse key).

use std::time::Duration;

use tokio::sync::watch;

use super::{PushError, PushMessage, PushTarget};
use crate::ciba::notify::backoff_ms;
use crate::state::AppState;
use crate::store::auth_requests::AuthRequestStatus;
use crate::store::push_outbox::PushRow;

const LEASE_MS: i64 = 30_000;
const BATCH: i64 = 64;

pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let poll = Duration::from_millis(state.config.push.poll_interval_ms);
    loop {
        loop {
            let now = state.now_ms();
            let batch = match state
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
            let sends = batch.into_iter().map(|row| deliver(&state, row));
            futures_util::future::join_all(sends).await;
        }
        tokio::select! {
            _ = state.push_wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Why a row is not worth sending any more, if it is not.
async fn obsolete(state: &AppState, row: &PushRow, now: i64) -> Option<&'static str> {
    if row.expires_at <= now {
        return Some("the request expired");
    }
    match state.store.auth_request(&row.auth_req_id).await {
        Ok(Some(r)) if r.status == AuthRequestStatus::Pending => None,
        Ok(Some(_)) => Some("the request was decided"),
        Ok(None) => Some("the request is gone"),
        Err(_) => None,
    }
}

async fn deliver(state: &AppState, row: PushRow) {
    let now = state.now_ms();
    let outcome = attempt(state, &row, now).await;
    let now = state.now_ms();
    let channel = row.channel.clone();
    let (error, retry_at) = match outcome {
        Ok(()) => {
            metrics::counter!("countersign_push_total", "channel" => channel, "outcome" => "sent")
                .increment(1);
            metrics::histogram!("countersign_push_first_delivery_seconds")
                .record((now - row.created_at).max(0) as f64 / 1000.0);
            if let Err(e) = state.store.mark_push_delivered(&row.id, now).await {
                tracing::warn!(error = %e, "recording a delivered push failed; it may be sent again");
            }
            return;
        }
        Err(PushError::Retry { reason, after }) => {
            let delay = match after {
                Some(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
                None => backoff_ms(
                    state.config.push.initial_backoff_ms,
                    state.config.push.max_backoff_ms,
                    row.attempts,
                ),
            };
            let next = now.saturating_add(delay);
            (reason, (next < row.expires_at).then_some(next))
        }
        Err(PushError::Unregistered(reason)) => {
            if let Err(e) = state.store.invalidate_push_token(&row.device_id, now).await {
                tracing::warn!(error = %e, "flagging an unregistered push token failed");
            }
            (reason, None)
        }
        Err(e @ (PushError::Rejected(_) | PushError::NotConfigured(_))) => (e.to_string(), None),
    };
    let outcome = match retry_at {
        Some(_) => "retry",
        None => "failed",
    };
    metrics::counter!("countersign_push_total", "channel" => channel.clone(), "outcome" => outcome)
        .increment(1);
    tracing::info!(channel, device = %row.device_id, attempts = row.attempts + 1, %error, will_retry = retry_at.is_some(), "push not delivered");
    if let Err(e) = state
        .store
        .mark_push_failed(&row.id, &error, retry_at, now)
        .await
    {
        tracing::warn!(error = %e, "recording a failed push failed; the lease will expire and it will be retried");
    }
}

/// One send of `row`, or why not.
async fn attempt(state: &AppState, row: &PushRow, now: i64) -> Result<(), PushError> {
    if let Some(why) = obsolete(state, row, now).await {
        return Err(PushError::Rejected(format!("not sent: {why}")));
    }
    let device = match state.store.device(&row.device_id).await {
        Ok(Some(d)) if d.disabled_at.is_none() => d,
        Ok(_) => {
            return Err(PushError::Rejected(
                "not sent: the device was removed".into(),
            ));
        }
        Err(e) => {
            return Err(PushError::Retry {
                reason: format!("reading the device: {e}"),
                after: None,
            });
        }
    };
    let sender = state
        .push
        .get(&row.channel)
        .ok_or_else(|| PushError::NotConfigured(row.channel.clone()))?;
    let agent = match state.store.auth_request(&row.auth_req_id).await {
        Ok(Some(r)) => match state.store.client(&r.client_id).await {
            Ok(Some(c)) => c.name,
            _ => r.client_id,
        },
        _ => "an agent".to_owned(),
    };
    let message = PushMessage::for_request(
        &state.config,
        &state.issuer,
        &row.auth_req_id,
        &agent,
        row.expires_at,
    );
    let target = PushTarget {
        device_id: device.id,
        subject: device.subject,
        token: device
            .push_token
            .filter(|_| device.push_token_invalid_at.is_none()),
    };
    sender.send(&target, &message).await
}

/// Sends a test alert to one device now, outside the outbox (`countersign push test`).
pub async fn send_test(state: &AppState, device_id: &str) -> Result<(), PushError> {
    let device = state
        .store
        .device(device_id)
        .await
        .ok()
        .flatten()
        .ok_or_else(|| PushError::Rejected(format!("no device {device_id:?}")))?;
    let sender = state
        .push
        .get(&device.push_channel)
        .ok_or_else(|| PushError::NotConfigured(device.push_channel.clone()))?;
    let message = PushMessage {
        request_id: "test".into(),
        server: state.issuer.to_string(),
        title: "Countersign".into(),
        body: "Test notification".into(),
        expires_at: state.clock.now_secs() + 300,
    };
    let target = PushTarget {
        device_id: device.id,
        subject: device.subject,
        token: device.push_token,
    };
    sender.send(&target, &message).await
}
