//! Periodic chores: telling ping/push clients about requests that expired undecided,
//! forgetting expired one-time identifiers, and SQLite WAL checkpoints off the writer
//! connection.

use std::time::Duration;

use tokio::sync::watch;

use crate::state::AppState;

const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
const PURGE_EVERY_TICKS: u32 = 60;

pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let mut tick = 0u32;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(CHECKPOINT_EVERY) => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = crate::ciba::notify::announce_expired(&state).await {
            tracing::warn!(error = %e, "announcing expired requests failed; will retry");
        }
        if let Err(e) = state.store.checkpoint().await {
            tracing::warn!(error = %e, "WAL checkpoint failed; SQLite will checkpoint on its own");
        }
        tick = tick.wrapping_add(1);
        if tick.is_multiple_of(PURGE_EVERY_TICKS) {
            if let Err(e) = state.store.purge_expired_jtis(state.now_ms()).await {
                tracing::warn!(error = %e, "purging expired jti records failed");
            }
            if let Err(e) = state.store.purge_expired_ceremonies(state.now_ms()).await {
                tracing::warn!(error = %e, "purging expired passkey ceremonies failed");
            }
        }
    }
}
