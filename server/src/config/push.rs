//! Push delivery to approvers' devices: APNs, FCM HTTP v1 and the live channel.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Alerting approvers' devices (APNs, FCM, the live channel).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushConfig {
    /// Alert text: `agent` ("Approval requested by <agent>") or `generic` ("Approval
    /// requested"). Nothing else about the request is ever pushed.
    pub alert: PushAlert,
    /// First retry delay; doubles per attempt (±25 % jitter) up to `max_backoff_ms`, until
    /// the request expires. A `Retry-After` from the push service wins.
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// Timeout of one send.
    pub request_timeout_ms: u64,
    /// How often the worker looks for due retries when nothing wakes it.
    pub poll_interval_ms: u64,
    pub apns: Option<ApnsConfig>,
    pub fcm: Option<FcmConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushAlert {
    Agent,
    Generic,
}

/// Apple Push Notification service, token-based authentication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApnsConfig {
    /// The `.p8` signing key file from Apple (PKCS#8 PEM, P-256); or give `key`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The same key as PEM text (e.g. from `COUNTERSIGN_PUSH__APNS__KEY`).
    #[serde(default)]
    pub key: Option<String>,
    /// The key's 10-character id (the provider token's `kid`).
    pub key_id: String,
    /// The Apple developer team id (the provider token's `iss`).
    pub team_id: String,
    /// The wallet app's bundle id (`apns-topic`).
    pub topic: String,
    /// `production` or `sandbox`; picks the endpoint unless `base_url` is set.
    #[serde(default = "default_apns_environment")]
    pub environment: String,
    /// Override of the APNs endpoint (a gateway, or a test server).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Extra PEM root certificate to trust for `base_url` (a private gateway's CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_apns_environment() -> String {
    "production".into()
}

/// Firebase Cloud Messaging HTTP v1 with a service account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FcmConfig {
    /// The service account JSON key file; or give `service_account`.
    #[serde(default)]
    pub service_account_file: Option<PathBuf>,
    /// The same JSON as text (e.g. from `COUNTERSIGN_PUSH__FCM__SERVICE_ACCOUNT`).
    #[serde(default)]
    pub service_account: Option<String>,
    /// The Firebase project; defaults to the service account's `project_id`.
    #[serde(default)]
    pub project_id: Option<String>,
    /// Override of `https://fcm.googleapis.com`.
    #[serde(default)]
    pub base_url: Option<String>,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            alert: PushAlert::Agent,
            initial_backoff_ms: 500,
            max_backoff_ms: 60_000,
            request_timeout_ms: 10_000,
            poll_interval_ms: 1_000,
            apns: None,
            fcm: None,
        }
    }
}
