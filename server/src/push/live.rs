//! The live channel: wallets that hold a connection open (desktop, the CLI wallet, a phone
//! in the foreground) subscribe with `GET /wallet/v1/events` and hear of each new request
//! for their human at once. Each replica keeps its own subscribers in a [`LiveHub`]; on
//! PostgreSQL an event is published with `NOTIFY`, which every replica's listener passes
//! to its hub, so a subscriber on any replica is woken.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::{PushError, PushMessage, PushSender, PushTarget};
use crate::store::{Backend, Store};

/// What a subscriber is told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveEvent {
    /// The human the request waits for.
    pub subject: String,
    pub request_id: String,
    pub server: String,
}

/// What a subscription yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveMessage {
    Request(LiveEvent),
    /// Events may have been missed (this replica's PostgreSQL listener was reconnected):
    /// the wallet lists its pending requests again.
    Resync,
}

/// The live subscribers of this process, by human.
#[derive(Default)]
pub struct LiveHub {
    channels: Mutex<HashMap<String, broadcast::Sender<LiveMessage>>>,
    /// Set at shutdown: new subscriptions end at once.
    closed: std::sync::atomic::AtomicBool,
}

impl LiveHub {
    pub fn subscribe(&self, subject: &str) -> broadcast::Receiver<LiveMessage> {
        let mut channels = match self.channels.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return broadcast::channel(1).1;
        }
        channels
            .entry(subject.to_owned())
            .or_insert_with(|| broadcast::channel(64).0)
            .subscribe()
    }

    /// Tells `event.subject`'s subscribers in this process; forgets humans nobody listens
    /// for.
    pub fn publish(&self, event: LiveEvent) {
        let mut channels = match self.channels.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(sender) = channels.get(&event.subject) {
            let subject = event.subject.clone();
            if sender.send(LiveMessage::Request(event)).is_err() {
                channels.remove(&subject);
            }
        }
    }

    /// Tells every subscriber to list its pending requests again: called whenever this
    /// replica's listener has (re)started LISTENing, as NOTIFYs sent while it was not
    /// connected are lost.
    pub fn resync_all(&self) {
        let mut channels = match self.channels.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        channels.retain(|_, sender| sender.send(LiveMessage::Resync).is_ok());
    }

    /// Ends every subscription (their streams close), so a graceful shutdown is not held
    /// up by wallets that never hang up.
    pub fn close_all(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        match self.channels.lock() {
            Ok(mut c) => c.clear(),
            Err(poisoned) => poisoned.into_inner().clear(),
        }
    }

    /// Whether [`Self::close_all`] ran (the server is shutting down): other long-lived
    /// streams end too.
    pub fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Handles a payload NOTIFYed by any replica.
    pub fn publish_notified(&self, payload: &str) {
        match serde_json::from_str::<LiveEvent>(payload) {
            Ok(event) => self.publish(event),
            Err(e) => tracing::warn!(error = %e, "ignoring a malformed live channel notification"),
        }
    }
}

pub struct LiveSender {
    hub: Arc<LiveHub>,
    store: Store,
}

impl LiveSender {
    pub fn new(hub: Arc<LiveHub>, store: Store) -> Self {
        Self { hub, store }
    }
}

impl PushSender for LiveSender {
    fn send<'a>(
        &'a self,
        target: &'a PushTarget,
        message: &'a PushMessage,
    ) -> BoxFuture<'a, Result<(), PushError>> {
        Box::pin(async move {
            let event = LiveEvent {
                subject: target.subject.clone(),
                request_id: message.request_id.clone(),
                server: message.server.clone(),
            };
            match self.store.backend() {
                Backend::Sqlite => {
                    self.hub.publish(event);
                    Ok(())
                }
                Backend::Postgres => {
                    let payload = serde_json::to_string(&event)
                        .map_err(|e| PushError::Rejected(e.to_string()))?;
                    self.store
                        .notify_live(&payload)
                        .await
                        .map_err(|e| PushError::Retry {
                            reason: format!("NOTIFY: {e}"),
                            after: None,
                        })
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_of_a_human_hear_only_their_requests() {
        let hub = LiveHub::default();
        let mut alice = hub.subscribe("alice");
        let mut bob = hub.subscribe("bob");
        let event = |s: &str, id: &str| LiveEvent {
            subject: s.into(),
            request_id: id.into(),
            server: "https://x".into(),
        };
        hub.publish(event("alice", "r1"));
        hub.publish_notified(&serde_json::to_string(&event("bob", "r2")).unwrap());
        hub.publish_notified("not json");
        assert_eq!(
            alice.recv().await.unwrap(),
            LiveMessage::Request(event("alice", "r1"))
        );
        assert_eq!(
            bob.recv().await.unwrap(),
            LiveMessage::Request(event("bob", "r2"))
        );
        assert!(alice.try_recv().is_err());
        hub.resync_all();
        assert_eq!(alice.recv().await.unwrap(), LiveMessage::Resync);
        assert_eq!(bob.recv().await.unwrap(), LiveMessage::Resync);
        drop(alice);
        hub.publish(event("alice", "r3"));
        assert!(
            hub.channels.lock().unwrap().get("alice").is_none(),
            "nobody listens any more"
        );
    }
}
