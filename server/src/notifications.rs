//! Client notifications for ping and push modes (CIBA Core §10.2, §10.3), delivered from
//! the durable outbox: written with the decision, retried with exponential backoff and
//! jitter until the request expires, erased once delivered.
//!
//! Delivery is at-least-once: if the server dies after the client answered 2xx but before
//! the success was recorded, the message is sent again after the lease runs out. Clients
//! de-duplicate by `auth_req_id` (CIBA requires them to accept one result per request).

use std::sync::Arc;
use std::time::Duration;

use countersign_shared::ciba::PushNotification;
use countersign_shared::{DeliveryMode, OAuthErrorCode, PingNotification, TokenResponse};
use rand_core::{OsRng, RngCore};
use tokio::sync::{Notify, watch};

use crate::clock::Clock;
use crate::config::NotificationConfig;
use crate::store::auth_requests::AuthRequestRecord;
use crate::store::clients::ClientRecord;
use crate::store::outbox::OutboxMessage;
use crate::store::{Store, StoreError, Tx};

/// How long a worker owns a claimed message before another may retry it.
const LEASE_MS: i64 = 30_000;
const BATCH: i64 = 32;

/// What a decision tells the client.
pub enum Outcome {
    Approved(TokenResponse),
    /// Ping mode: the client fetches the result from the token endpoint.
    Ready,
    Denied,
    /// Nobody decided before the request expired.
    Expired,
}

/// How long the notice that a request expired keeps being retried (the request itself is
/// already over, so its own expiry cannot bound the retries).
const EXPIRY_NOTICE_RETRY_MS: i64 = 10 * 60 * 1000;

/// Writes the notification for a decided request into the outbox inside `tx`. Poll-mode
/// clients get none.
pub async fn enqueue(
    store: &Store,
    now_ms: i64,
    tx: &mut Tx<'_>,
    request: &AuthRequestRecord,
    client: &ClientRecord,
    outcome: Outcome,
) -> Result<(), StoreError> {
    let mode = DeliveryMode::parse(&client.delivery_mode);
    let (Some(endpoint), Some(bearer)) =
        (&client.notification_endpoint, &request.notification_token)
    else {
        return Ok(());
    };
    let payload = match (mode, outcome) {
        (Some(DeliveryMode::Ping), _) => serde_json::to_string(&PingNotification {
            auth_req_id: request.id.to_string(),
        }),
        (Some(DeliveryMode::Push), Outcome::Approved(token)) => {
            serde_json::to_string(&PushNotification::Token {
                auth_req_id: request.id.to_string(),
                token,
            })
        }
        (Some(DeliveryMode::Push), Outcome::Denied | Outcome::Ready) => {
            serde_json::to_string(&PushNotification::Error {
                auth_req_id: request.id.to_string(),
                error: OAuthErrorCode::AccessDenied,
                error_description: Some("the user denied the request".into()),
            })
        }
        (Some(DeliveryMode::Push), Outcome::Expired) => {
            serde_json::to_string(&PushNotification::Error {
                auth_req_id: request.id.to_string(),
                error: OAuthErrorCode::ExpiredToken,
                error_description: Some("the request expired before the user decided".into()),
            })
        }
        (Some(DeliveryMode::Poll) | None, _) => return Ok(()),
    }
    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let message = OutboxMessage {
        id: countersign_jose::random_b64url(16),
        auth_req_id: request.id.clone(),
        endpoint: endpoint.clone(),
        bearer: bearer.clone(),
        payload,
        attempts: 0,
        expires_at: request.expires_at.max(now_ms + EXPIRY_NOTICE_RETRY_MS),
    };
    store.enqueue_notification(tx, &message, now_ms).await
}

/// Tells ping and push clients about their requests that expired undecided (CIBA Core §12:
/// errors after the `auth_req_id` was issued go to the push client's endpoint; ping clients
/// are pinged and then read `expired_token` at the token endpoint). Marking the requests
/// and queueing the notices is one transaction, so each is told exactly once.
/// `wake` is the notification worker's.
pub async fn announce_expired(
    store: &Store,
    now_ms: i64,
    wake: &Notify,
) -> Result<usize, StoreError> {
    let mut tx = store.begin().await?;
    let expired = store.mark_expired_notified(&mut tx, now_ms, 100).await?;
    for request in &expired {
        if let Some(client) = store.client(&request.client_id).await? {
            enqueue(store, now_ms, &mut tx, request, &client, Outcome::Expired).await?;
        }
    }
    tx.commit().await?;
    if !expired.is_empty() {
        wake.notify_one();
    }
    Ok(expired.len())
}

/// Delay before retry number `attempt` (0-based): doubling from the configured initial
/// backoff up to the maximum, with ±25 % jitter so retries from many requests spread out.
pub fn backoff_ms(initial: u64, max: u64, attempt: i64) -> i64 {
    let exp = u32::try_from(attempt.clamp(0, 30)).unwrap_or(30);
    let base = initial.saturating_mul(1u64 << exp).min(max) as i64;
    let spread = base / 4;
    if spread == 0 {
        return base.max(1);
    }
    let jitter = (OsRng.next_u64() % (2 * spread as u64 + 1)) as i64 - spread;
    (base + jitter).max(1)
}

/// What the notification worker works with.
pub struct Outbox {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    /// Rung after each decision that enqueued a notification.
    pub wake: Arc<Notify>,
    pub config: NotificationConfig,
}

/// Runs until `shutdown` changes. Woken by `outbox.wake` after each decision, and
/// otherwise looks for due retries every `notifications.poll_interval_ms`.
pub async fn run_worker(state: Outbox, mut shutdown: watch::Receiver<bool>) {
    let cfg = state.config.clone();
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_millis(cfg.request_timeout_ms))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the notification HTTP client; ping/push delivery is off");
            return;
        }
    };
    loop {
        loop {
            let now = state.clock.now_ms();
            let batch = match state
                .store
                .claim_due_notifications(now, now + LEASE_MS, BATCH)
                .await
            {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox claim failed; retrying later");
                    break;
                }
            };
            if batch.is_empty() {
                break;
            }
            let sends = batch.into_iter().map(|m| deliver(&state, &client, m));
            futures_util::future::join_all(sends).await;
        }
        tokio::select! {
            _ = state.wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(cfg.poll_interval_ms)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn deliver(state: &Outbox, client: &reqwest::Client, m: OutboxMessage) {
    let cfg = &state.config;
    let result = client
        .post(&m.endpoint)
        .bearer_auth(&m.bearer)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(m.payload.clone())
        .send()
        .await;
    let now = state.clock.now_ms();
    let error = match result {
        Ok(resp) if resp.status().is_success() => {
            metrics::counter!("countersign_notifications_total", "outcome" => "delivered")
                .increment(1);
            if let Err(e) = state.store.mark_notification_delivered(&m.id, now).await {
                tracing::warn!(error = %e, "recording a delivered notification failed; it may be sent again");
            }
            return;
        }
        Ok(resp) => format!("HTTP {}", resp.status().as_u16()),
        Err(e) => format!("transport: {e}"),
    };
    let next = now + backoff_ms(cfg.initial_backoff_ms, cfg.max_backoff_ms, m.attempts);
    let retry = (next < m.expires_at).then_some(next);
    metrics::counter!("countersign_notifications_total", "outcome" => if retry.is_some() { "retry" } else { "gave_up" }).increment(1);
    tracing::info!(endpoint = %m.endpoint, attempts = m.attempts + 1, %error, will_retry = retry.is_some(), "client notification failed");
    if let Err(e) = state
        .store
        .mark_notification_failed(&m.id, &error, retry, now)
        .await
    {
        tracing::warn!(error = %e, "recording a failed notification failed; the lease will expire and it will be retried");
    }
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_doubles_caps_and_jitters_within_a_quarter() {
        for attempt in 0..12 {
            let expected = (500u64 << attempt).min(30_000) as i64;
            for _ in 0..50 {
                let d = backoff_ms(500, 30_000, attempt);
                assert!(
                    d >= expected - expected / 4 && d <= expected + expected / 4,
                    "{attempt}: {d}"
                );
            }
        }
        assert_eq!(backoff_ms(1, 10, 0), 1);
    }
}
