//! Alerting approvers' devices that a request waits for them. One [`PushSender`] per
//! channel, chosen by the channel each device enrolled with: APNs ([`apns`]), FCM HTTP v1
//! ([`fcm`]) and the live channel for desktop and CLI wallets ([`live`]).
//!
//! What is pushed is data-minimal: the request id, the server's origin and an alert text
//! (by default naming the agent, configurably generic). Amounts, vendors and binding
//! messages are fetched by the wallet over its authenticated API, never pushed.
//!
//! Delivery goes through a durable outbox ([`crate::store::push_outbox`]): rows are
//! written with the request in one transaction, and [`worker`] sends them with retries
//! until the request expires.

pub mod apns;
pub mod fcm;
mod keys;
pub mod live;
pub mod worker;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::clock::Clock;
use crate::config::{Config, PushAlert};
use crate::ids::Subject;
use crate::store::Store;
use crate::store::auth_requests::AuthRequestRecord;
use crate::store::push_outbox::PushRow;

/// Channels that deliver through the outbox.
pub const CHANNELS: [&str; 3] = ["apns", "fcm", "live"];

/// Where to send: one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    pub device_id: String,
    pub subject: String,
    /// APNs device token or FCM registration token (none for the live channel).
    pub token: Option<String>,
}

/// What to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushMessage {
    pub request_id: String,
    /// The server's origin (issuer URL), so a wallet enrolled with several knows where to
    /// fetch the request.
    pub server: String,
    pub title: String,
    pub body: String,
    /// Unix seconds after which the alert is pointless (the request's expiry).
    pub expires_at: i64,
}

impl PushMessage {
    /// The alert for `request`, naming `agent_name` unless configured generic.
    pub fn for_request(
        config: &Config,
        issuer: &str,
        request_id: &str,
        agent_name: &str,
        expires_at_ms: i64,
    ) -> Self {
        let body = match config.push.alert {
            PushAlert::Agent => format!("Approval requested by {agent_name}"),
            PushAlert::Generic => "Approval requested".to_owned(),
        };
        Self {
            request_id: request_id.to_owned(),
            server: issuer.to_owned(),
            title: "Countersign".to_owned(),
            body,
            expires_at: expires_at_ms.div_euclid(1000),
        }
    }
}

/// Why a send failed, and so what to do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The push service says the token is no longer valid: flag the device for
    /// re-registration and stop.
    #[error("unregistered: {0}")]
    Unregistered(String),
    /// Try again later (`after` when the service said when).
    #[error("{reason}")]
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// The service refused the message for good.
    #[error("rejected: {0}")]
    Rejected(String),
    /// No credentials are configured for this channel.
    #[error("the {0} channel is not configured")]
    NotConfigured(String),
}

impl PushError {
    /// A stable label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            PushError::Unregistered(_) => "unregistered",
            PushError::Retry { .. } => "retry",
            PushError::Rejected(_) => "rejected",
            PushError::NotConfigured(_) => "not_configured",
        }
    }
}

/// Sends one alert to one device.
pub trait PushSender: Send + Sync {
    fn send<'a>(
        &'a self,
        target: &'a PushTarget,
        message: &'a PushMessage,
    ) -> BoxFuture<'a, Result<(), PushError>>;
}

/// A push credential that cannot be used, naming its configuration key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration key `{key}`: {reason}")]
pub struct PushConfigError {
    pub key: &'static str,
    pub reason: String,
}

/// The senders of this server, by channel.
#[derive(Clone)]
pub struct Senders(Arc<HashMap<&'static str, Arc<dyn PushSender>>>);

impl Senders {
    /// Builds the configured senders, reading and checking their credentials (so a bad
    /// key fails the start, naming the key).
    pub fn from_config(
        config: &Config,
        clock: Arc<dyn Clock>,
        hub: Arc<live::LiveHub>,
        store: Store,
    ) -> Result<Self, PushConfigError> {
        let timeout = Duration::from_millis(config.push.request_timeout_ms);
        let mut senders: HashMap<&'static str, Arc<dyn PushSender>> = HashMap::new();
        senders.insert("live", Arc::new(live::LiveSender::new(hub, store)));
        if let Some(apns) = &config.push.apns {
            senders.insert(
                "apns",
                Arc::new(apns::ApnsSender::new(apns, timeout, clock.clone())?),
            );
        }
        if let Some(fcm) = &config.push.fcm {
            senders.insert("fcm", Arc::new(fcm::FcmSender::new(fcm, timeout, clock)?));
        }
        Ok(Self(Arc::new(senders)))
    }

    pub fn get(&self, channel: &str) -> Option<Arc<dyn PushSender>> {
        self.0.get(channel).cloned()
    }
}

/// The outbox rows alerting the approvers' devices of `request`: one per enrolled device with
/// a usable push channel (a token the push service has not rejected, or the live channel).
pub async fn rows_for(
    store: &Store,
    request: &AuthRequestRecord,
    approvers: &[Subject],
) -> Result<Vec<PushRow>, crate::store::StoreError> {
    let mut devices = Vec::new();
    for subject in approvers {
        devices.extend(store.push_targets(subject).await?);
    }
    Ok(devices
        .into_iter()
        .filter(|d| {
            CHANNELS.contains(&d.push_channel.as_str())
                && (d.push_channel == "live"
                    || (d.push_token.is_some() && d.push_token_invalid_at.is_none()))
        })
        .map(|d| PushRow {
            id: countersign_jose::random_b64url(12),
            auth_req_id: request.id.clone(),
            device_id: d.id,
            channel: d.push_channel,
            created_at: request.created_at,
            attempts: 0,
            expires_at: request.expires_at,
        })
        .collect())
}
