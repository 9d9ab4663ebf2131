//! Cross-replica wake-ups for the wallets' live channel. On PostgreSQL an event is a
//! `NOTIFY` on [`LIVE_CHANNEL`], which every replica LISTENs to and hands to its own
//! subscribers; SQLite has one process, so events stay in it.

use std::time::Duration;

use tokio::sync::watch;

use super::{Backend, Store, StoreError};

pub const LIVE_CHANNEL: &str = "countersign_live";

impl Store {
    /// Announces `payload` to every replica's listener (PostgreSQL only).
    pub async fn notify_live(&self, payload: &str) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(LIVE_CHANNEL)
            .bind(payload)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Passes every payload NOTIFYed on [`LIVE_CHANNEL`] to `deliver` until `shutdown`,
    /// reconnecting after errors. `listening` is called each time the LISTEN is in place
    /// (first and after every reconnect, when notifications may have been missed). On
    /// SQLite it is called once and this returns.
    pub async fn listen_live(
        &self,
        deliver: impl Fn(&str) + Send + 'static,
        listening: impl Fn() + Send + 'static,
        mut shutdown: watch::Receiver<bool>,
    ) {
        if self.backend != Backend::Postgres {
            listening();
            return;
        }
        loop {
            match sqlx::postgres::PgListener::connect(&self.url).await {
                Ok(mut listener) => match listener.listen(LIVE_CHANNEL).await {
                    Ok(()) => {
                        listening();
                        loop {
                            tokio::select! {
                                // `try_recv` (not `recv`) so that a reconnection, which
                                // loses whatever was NOTIFYed meanwhile, is seen.
                                message = listener.try_recv() => match message {
                                    Ok(Some(n)) => deliver(n.payload()),
                                    Ok(None) => {
                                        tracing::warn!("live channel listener reconnected; subscribers resync");
                                        listening();
                                    }
                                    Err(e) => {
                                        tracing::warn!(error = %e, "live channel listener lost its connection; reconnecting");
                                        break;
                                    }
                                },
                                _ = shutdown.changed() => return,
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "LISTEN failed; retrying"),
                },
                Err(e) => {
                    tracing::warn!(error = %e, "live channel listener cannot connect; retrying")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
