//! Firebase Cloud Messaging HTTP v1 (`projects/{id}/messages:send`), authenticated with
//! an OAuth 2.0 access token obtained from the service account's `token_uri` by the JWT
//! bearer grant (RFC 7523, RS256 assertion with the account's key), cached until shortly
//! before it expires. Messages are data-only and high priority, with a TTL of the time
//! left to decide. The legacy FCM API (shut down in 2024) is not used.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::apns::retry_after;
use super::keys::RsaSigner;
use super::{PushConfigError, PushError, PushMessage, PushSender, PushTarget};
use crate::clock::Clock;
use crate::config::FcmConfig;

pub const ENDPOINT: &str = "https://fcm.googleapis.com";
pub const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

#[derive(Deserialize)]
struct ServiceAccount {
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    token_uri: String,
    #[serde(default)]
    project_id: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<i64>,
}

pub struct FcmSender {
    http: reqwest::Client,
    send_url: String,
    client_email: String,
    key_id: Option<String>,
    token_uri: String,
    signer: RsaSigner,
    clock: Arc<dyn Clock>,
    /// The access token and when it expires (Unix seconds).
    token: Mutex<Option<(String, i64)>>,
}

fn config_error(key: &'static str, reason: impl Into<String>) -> PushConfigError {
    PushConfigError {
        key,
        reason: reason.into(),
    }
}

fn retry(reason: String) -> PushError {
    PushError::Retry {
        reason,
        after: None,
    }
}

impl FcmSender {
    pub fn new(
        config: &FcmConfig,
        timeout: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, PushConfigError> {
        let (key, text) = match (&config.service_account_file, &config.service_account) {
            (Some(path), None) => (
                "push.fcm.service_account_file",
                std::fs::read_to_string(path).map_err(|e| {
                    config_error(
                        "push.fcm.service_account_file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?,
            ),
            (None, Some(json)) => ("push.fcm.service_account", json.clone()),
            _ => {
                return Err(config_error(
                    "push.fcm.service_account_file",
                    "give exactly one of service_account_file and service_account",
                ));
            }
        };
        let account: ServiceAccount = serde_json::from_str(&text)
            .map_err(|e| config_error(key, format!("not a service account key: {e}")))?;
        let signer = RsaSigner::from_pem(&account.private_key)
            .map_err(|e| config_error(key, format!("private_key: {e}")))?;
        if !(account.token_uri.starts_with("https://") || account.token_uri.starts_with("http://"))
        {
            return Err(config_error(key, "token_uri must be an http(s) URL"));
        }
        let project = config
            .project_id
            .clone()
            .or(account.project_id)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                config_error(
                    "push.fcm.project_id",
                    "is required (the service account names none)",
                )
            })?;
        let base = config
            .base_url
            .as_deref()
            .unwrap_or(ENDPOINT)
            .trim_end_matches('/');
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| config_error("push.fcm", e.to_string()))?;
        Ok(Self {
            http,
            send_url: format!("{base}/v1/projects/{project}/messages:send"),
            client_email: account.client_email,
            key_id: account.private_key_id,
            token_uri: account.token_uri,
            signer,
            clock,
            token: Mutex::new(None),
        })
    }

    fn cached_token(&self) -> Option<String> {
        let now = self.clock.now_secs();
        let cached = self.token.lock().ok()?;
        cached
            .as_ref()
            .filter(|(_, expires)| *expires - 300 > now)
            .map(|(t, _)| t.clone())
    }

    fn forget_token(&self) {
        if let Ok(mut cached) = self.token.lock() {
            *cached = None;
        }
    }

    /// An access token from the cache or, failing that, from `token_uri`.
    async fn access_token(&self) -> Result<String, PushError> {
        if let Some(token) = self.cached_token() {
            return Ok(token);
        }
        let now = self.clock.now_secs();
        let assertion = self
            .signer
            .jwt(
                self.key_id.as_deref(),
                &json!({
                    "iss": self.client_email, "scope": SCOPE, "aud": self.token_uri,
                    "iat": now, "exp": now + 3600,
                }),
            )
            .map_err(PushError::Rejected)?;
        let response = self
            .http
            .post(&self.token_uri)
            .form(&[("grant_type", JWT_BEARER), ("assertion", &assertion)])
            .send()
            .await
            .map_err(|e| retry(format!("OAuth token request: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            let detail = response.text().await.unwrap_or_default();
            return Err(match status.as_u16() {
                429 | 500..=599 => retry(format!("OAuth token endpoint {status}: {detail}")),
                _ => PushError::Rejected(format!("OAuth token endpoint {status}: {detail}")),
            });
        }
        let token: TokenResponse = response
            .json()
            .await
            .map_err(|e| retry(format!("OAuth token response: {e}")))?;
        let expires = now + token.expires_in.unwrap_or(3600);
        if let Ok(mut cached) = self.token.lock() {
            *cached = Some((token.access_token.clone(), expires));
        }
        Ok(token.access_token)
    }
}

/// The FCM error code (`details[].errorCode`) or status of an error body.
fn error_code(body: &Value) -> String {
    let error = &body["error"];
    error["details"]
        .as_array()
        .and_then(|d| d.iter().find_map(|x| x["errorCode"].as_str()))
        .or_else(|| error["status"].as_str())
        .unwrap_or_default()
        .to_owned()
}

fn classify(status: u16, code: &str, after: Option<Duration>) -> PushError {
    let text = format!("FCM {status} {code}");
    match (status, code) {
        (_, "UNREGISTERED") => PushError::Unregistered(text),
        (401, _) => retry(text),
        (429, _) | (500..=599, _) => PushError::Retry {
            reason: text,
            after,
        },
        _ => PushError::Rejected(text),
    }
}

impl PushSender for FcmSender {
    fn send<'a>(
        &'a self,
        target: &'a PushTarget,
        message: &'a PushMessage,
    ) -> BoxFuture<'a, Result<(), PushError>> {
        Box::pin(async move {
            let token = target
                .token
                .as_deref()
                .ok_or_else(|| PushError::Unregistered("the device has no FCM token".into()))?;
            let ttl = (message.expires_at - self.clock.now_secs()).max(0);
            let body = json!({
                "message": {
                    "token": token,
                    "data": {
                        "request_id": message.request_id,
                        "server": message.server,
                        "title": message.title,
                        "body": message.body,
                    },
                    "android": {
                        "priority": "HIGH",
                        "ttl": format!("{ttl}s"),
                        "collapse_key": message.request_id,
                    },
                }
            });
            let access = self.access_token().await?;
            let response = self
                .http
                .post(&self.send_url)
                .bearer_auth(access)
                .json(&body)
                .send()
                .await
                .map_err(|e| retry(format!("transport: {e}")))?;
            let status = response.status().as_u16();
            if (200..300).contains(&status) {
                return Ok(());
            }
            if status == 401 {
                self.forget_token();
            }
            let after = retry_after(response.headers());
            let code = response
                .json::<Value>()
                .await
                .map(|b| error_code(&b))
                .unwrap_or_default();
            Err(classify(status, &code, after))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fcm_errors_map_to_what_to_do() {
        let unregistered = json!({"error": {"code": 404, "status": "NOT_FOUND", "details": [
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}]}});
        assert_eq!(error_code(&unregistered), "UNREGISTERED");
        assert!(matches!(
            classify(404, "UNREGISTERED", None),
            PushError::Unregistered(_)
        ));
        assert_eq!(
            error_code(&json!({"error": {"status": "UNAVAILABLE"}})),
            "UNAVAILABLE"
        );
        assert!(matches!(
            classify(503, "UNAVAILABLE", None),
            PushError::Retry { .. }
        ));
        assert!(matches!(
            classify(429, "QUOTA_EXCEEDED", Some(Duration::from_secs(7))),
            PushError::Retry { after: Some(d), .. } if d == Duration::from_secs(7)
        ));
        assert!(matches!(
            classify(400, "INVALID_ARGUMENT", None),
            PushError::Rejected(_)
        ));
    }
}
