//! Apple Push Notification service over HTTP/2 with token-based authentication: an ES256
//! provider token (`kid` = key id, `iss` = team id, `iat`) signed with the `.p8` key,
//! reused for 50 minutes (Apple accepts tokens up to an hour old and refuses refreshes
//! more often than every 20 minutes) and renewed early when APNs says it expired.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use countersign_jose::SigningKeyPair;
use futures_util::future::BoxFuture;
use serde_json::json;

use super::keys::{ec_key, es256_jwt};
use super::{PushConfigError, PushError, PushMessage, PushSender, PushTarget};
use crate::clock::Clock;
use crate::config::ApnsConfig;

pub const PRODUCTION: &str = "https://api.push.apple.com";
pub const SANDBOX: &str = "https://api.sandbox.push.apple.com";
/// How long one provider token is used.
const TOKEN_LIFETIME_SECS: i64 = 50 * 60;

pub struct ApnsSender {
    http: reqwest::Client,
    base: String,
    topic: String,
    team_id: String,
    key: SigningKeyPair,
    clock: Arc<dyn Clock>,
    /// The current provider token and when it was made (Unix seconds).
    token: Mutex<Option<(String, i64)>>,
}

fn config_error(key: &'static str, reason: impl Into<String>) -> PushConfigError {
    PushConfigError {
        key,
        reason: reason.into(),
    }
}

impl ApnsSender {
    pub fn new(
        config: &ApnsConfig,
        timeout: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, PushConfigError> {
        let pem = match (&config.key_file, &config.key) {
            (Some(path), None) => std::fs::read_to_string(path).map_err(|e| {
                config_error(
                    "push.apns.key_file",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?,
            (None, Some(pem)) => pem.clone(),
            _ => {
                return Err(config_error(
                    "push.apns.key_file",
                    "give exactly one of key_file and key",
                ));
            }
        };
        let key_name = if config.key_file.is_some() {
            "push.apns.key_file"
        } else {
            "push.apns.key"
        };
        let key = ec_key(&pem, &config.key_id).map_err(|e| config_error(key_name, e))?;
        if config.key_id.len() != 10 || !config.key_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(config_error(
                "push.apns.key_id",
                "must be Apple's 10-character key id",
            ));
        }
        if config.team_id.is_empty() {
            return Err(config_error("push.apns.team_id", "is required"));
        }
        if config.topic.is_empty() {
            return Err(config_error(
                "push.apns.topic",
                "is the app's bundle id and is required",
            ));
        }
        let base = match (&config.base_url, config.environment.as_str()) {
            (Some(url), _) => url.trim_end_matches('/').to_owned(),
            (None, "production") => PRODUCTION.to_owned(),
            (None, "sandbox") => SANDBOX.to_owned(),
            (None, other) => {
                return Err(config_error(
                    "push.apns.environment",
                    format!("{other:?} is neither production nor sandbox"),
                ));
            }
        };
        let mut builder = reqwest::Client::builder()
            .http2_prior_knowledge()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                config_error(
                    "push.apns.ca_file",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| config_error("push.apns.ca_file", e.to_string()))?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .build()
            .map_err(|e| config_error("push.apns", e.to_string()))?;
        Ok(Self {
            http,
            base,
            topic: config.topic.clone(),
            team_id: config.team_id.clone(),
            key,
            clock,
            token: Mutex::new(None),
        })
    }

    /// The provider token, made anew when older than its lifetime or when `renew`.
    fn provider_token(&self, renew: bool) -> Result<String, PushError> {
        let now = self.clock.now_secs();
        let mut cached = self.token.lock().map_err(|_| PushError::Retry {
            reason: "token lock poisoned".into(),
            after: None,
        })?;
        if let Some((token, made)) = cached.as_ref()
            && !renew
            && now - made < TOKEN_LIFETIME_SECS
        {
            return Ok(token.clone());
        }
        let token = es256_jwt(&self.key, &json!({ "iss": self.team_id, "iat": now }))
            .map_err(PushError::Rejected)?;
        *cached = Some((token.clone(), now));
        Ok(token)
    }

    async fn send_once(
        &self,
        token: &str,
        message: &PushMessage,
        renew: bool,
    ) -> Result<(), PushError> {
        let provider = self.provider_token(renew)?;
        let body = json!({
            "aps": {
                "alert": { "title": message.title, "body": message.body },
                "sound": "default",
                "mutable-content": 1,
            },
            "request_id": message.request_id,
            "server": message.server,
        });
        let response = self
            .http
            .post(format!("{}/3/device/{token}", self.base))
            .header("authorization", format!("bearer {provider}"))
            .header("apns-topic", &self.topic)
            .header("apns-push-type", "alert")
            .header("apns-priority", "10")
            .header("apns-expiration", message.expires_at.to_string())
            .header("apns-collapse-id", &message.request_id)
            .json(&body)
            .send()
            .await
            .map_err(|e| PushError::Retry {
                reason: format!("transport: {e}"),
                after: None,
            })?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let after = retry_after(response.headers());
        let reason = response
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|v| v.get("reason").and_then(|r| r.as_str()).map(str::to_owned))
            .unwrap_or_default();
        Err(classify(status, &reason, after))
    }
}

/// `Retry-After` in seconds, if the response has one.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// What an APNs error status and `reason` mean for us.
fn classify(status: u16, reason: &str, after: Option<Duration>) -> PushError {
    let text = format!("APNs {status} {reason}");
    match (status, reason) {
        (410, _) | (400, "BadDeviceToken" | "DeviceTokenNotForTopic") => {
            PushError::Unregistered(text)
        }
        (403, "ExpiredProviderToken" | "InvalidProviderToken") => PushError::Retry {
            reason: text,
            after: Some(Duration::ZERO),
        },
        (429, _) | (500..=599, _) => PushError::Retry {
            reason: text,
            after,
        },
        _ => PushError::Rejected(text),
    }
}

impl PushSender for ApnsSender {
    fn send<'a>(
        &'a self,
        target: &'a PushTarget,
        message: &'a PushMessage,
    ) -> BoxFuture<'a, Result<(), PushError>> {
        Box::pin(async move {
            let token = target
                .token
                .as_deref()
                .ok_or_else(|| PushError::Unregistered("the device has no APNs token".into()))?;
            match self.send_once(token, message, false).await {
                // Apple says our provider token is stale: make a new one and retry at once.
                Err(PushError::Retry { after: Some(d), .. }) if d.is_zero() => {
                    match self.send_once(token, message, true).await {
                        // Still refused with a fresh token: back off like any other failure.
                        Err(PushError::Retry { reason, .. }) => Err(PushError::Retry {
                            reason,
                            after: None,
                        }),
                        other => other,
                    }
                }
                other => other,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apns_errors_map_to_what_to_do() {
        assert!(matches!(
            classify(410, "Unregistered", None),
            PushError::Unregistered(_)
        ));
        assert!(matches!(
            classify(400, "BadDeviceToken", None),
            PushError::Unregistered(_)
        ));
        assert!(matches!(
            classify(400, "BadCollapseId", None),
            PushError::Rejected(_)
        ));
        assert_eq!(
            classify(429, "TooManyRequests", Some(Duration::from_secs(3))),
            PushError::Retry {
                reason: "APNs 429 TooManyRequests".into(),
                after: Some(Duration::from_secs(3))
            }
        );
        assert!(matches!(
            classify(503, "ServiceUnavailable", None),
            PushError::Retry { after: None, .. }
        ));
        assert!(matches!(
            classify(403, "ExpiredProviderToken", None),
            PushError::Retry { after: Some(d), .. } if d.is_zero()
        ));
    }
}
