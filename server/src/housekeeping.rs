//! Periodic chores: telling ping/push clients about requests that expired undecided,
//! forgetting expired one-time identifiers and old baseline samples, signing audit
//! checkpoints, installing a policy version activated elsewhere, and SQLite WAL
//! checkpoints off the writer connection.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::audit::log::AuditLog;
use crate::audit::sinks::Publishing;
use crate::clock::Clock;
use crate::config::Config;
use crate::policy::service::PolicyEngine;
use crate::store::Store;

const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
const PURGE_EVERY_TICKS: u32 = 60;

/// What the chores work with.
pub struct Housekeeping {
    pub config: Arc<Config>,
    pub issuer: Arc<str>,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub audit_log: Arc<AuditLog>,
    /// The notification worker's, rung when expiry notices were queued.
    pub outbox_wake: Arc<Notify>,
}

impl Housekeeping {
    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn publishing(&self) -> Publishing<'_> {
        Publishing {
            sinks: &self.config.audit.sinks,
            store: &self.store,
            issuer: &self.issuer,
            clock: self.clock.as_ref(),
        }
    }
}

pub async fn run(state: Housekeeping, mut shutdown: watch::Receiver<bool>) {
    let mut tick = 0u32;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(CHECKPOINT_EVERY) => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) =
            crate::notifications::announce_expired(&state.store, state.now_ms(), &state.outbox_wake)
                .await
        {
            tracing::warn!(error = %e, "announcing expired requests failed; will retry");
        }
        if let Err(e) = state.store.checkpoint().await {
            tracing::warn!(error = %e, "WAL checkpoint failed; SQLite will checkpoint on its own");
        }
        tick = tick.wrapping_add(1);
        let checkpoint_every = state.config.audit.checkpoint_interval_secs.max(1);
        if u64::from(tick).is_multiple_of(checkpoint_every)
            && let Err(e) =
                crate::audit::checkpoint::sign_head(&state.audit_log, &state.publishing()).await
        {
            tracing::warn!(error = %e, "signing an audit checkpoint failed; will retry");
        }
        if tick.is_multiple_of(PURGE_EVERY_TICKS) {
            let window = 1000 * state.config.policy.baseline_window_secs as i64;
            if let Err(e) = state.store.purge_samples(state.now_ms() - window).await {
                tracing::warn!(error = %e, "purging old baseline samples failed");
            }
            if let Err(e) = state.store.purge_expired_jtis(state.now_ms()).await {
                tracing::warn!(error = %e, "purging expired jti records failed");
            }
            if let Err(e) = state.store.purge_expired_ceremonies(state.now_ms()).await {
                tracing::warn!(error = %e, "purging expired passkey ceremonies failed");
            }
            if let Err(e) = state.store.purge_credential_uses(state.now_ms()).await {
                tracing::warn!(error = %e, "purging uses of expired credentials failed");
            }
        }
    }
}

/// Installs a policy version another replica or the CLI activated, within
/// `policy.reload_interval_ms`.
pub async fn refresh_policy(
    policy: Arc<PolicyEngine>,
    store: Store,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let every = every.max(Duration::from_millis(1));
    let mut last_error: Option<String> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        // Errors are logged once until they change, not every interval.
        match crate::policy::service::refresh(&policy, &store).await {
            Ok(()) => last_error = None,
            Err(e) => {
                let text = e.to_string();
                if last_error.as_deref() != Some(&text) {
                    tracing::error!(error = %text, "installing the active policy version failed");
                    last_error = Some(text);
                }
            }
        }
    }
}
