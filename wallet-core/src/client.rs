//! The wallet API over HTTPS (blocking, rustls). Every call after enrollment carries a
//! fresh DPoP proof signed by the device key; errors from the server arrive as RFC 9457
//! problem documents and are reported with their `detail`.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::WalletError;
use crate::device_key::DeviceKey;

pub struct ServerClient {
    agent: ureq::Agent,
    /// The server's issuer URL (no trailing slash).
    base: String,
}

impl ServerClient {
    pub fn new(base: &str) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(30)))
            .build()
            .into();
        Self {
            agent,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Opens a server-sent event stream at `path`, signed by `key`, and returns its body
    /// as lines. No overall timeout: the server sends a comment every 15 s, and a dead
    /// connection ends the stream with an error.
    pub fn event_stream(
        &self,
        path: &str,
        key: &DeviceKey,
    ) -> Result<impl std::io::BufRead + use<>, WalletError> {
        let url = self.url(path);
        let proof = key.proof("GET", &url)?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let response = agent
            .get(&url)
            .header("DPoP", &proof)
            .header("Accept", "text/event-stream")
            .call()
            .map_err(|e| WalletError::Network(format!("GET {url}: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            let mut response = response;
            let text = response.body_mut().read_to_string().unwrap_or_default();
            return Err(refusal(status.as_u16(), text));
        }
        Ok(std::io::BufReader::new(response.into_body().into_reader()))
    }

    /// `method path` with an optional JSON body, signed by `key` when given.
    pub fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&B>,
        key: Option<&DeviceKey>,
    ) -> Result<T, WalletError> {
        let url = self.url(path);
        let proof = match key {
            Some(k) => Some(k.proof(method, &url)?),
            None => None,
        };
        let network = |e: ureq::Error| WalletError::Network(format!("{method} {url}: {e}"));
        let mut response = match (method, body) {
            ("GET", _) => {
                let mut req = self.agent.get(&url);
                if let Some(p) = &proof {
                    req = req.header("DPoP", p);
                }
                req.call().map_err(network)?
            }
            (_, body) => {
                let json = match body {
                    Some(b) => {
                        serde_json::to_vec(b).map_err(|e| WalletError::Invalid(e.to_string()))?
                    }
                    None => b"{}".to_vec(),
                };
                let mut req = self
                    .agent
                    .post(&url)
                    .header("Content-Type", "application/json");
                if let Some(p) = &proof {
                    req = req.header("DPoP", p);
                }
                req.send(&json[..]).map_err(network)?
            }
        };
        let status = response.status();
        let text = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .map_err(network)?;
        if !status.is_success() {
            return Err(refusal(status.as_u16(), text));
        }
        serde_json::from_str(&text).map_err(|e| {
            WalletError::Protocol(format!("unexpected answer to {method} {path}: {e}"))
        })
    }
}

/// The error for a refusal with `status` and problem document `text`: a request that is
/// no longer pending says why (its problem `code`), anything else carries the `detail`.
fn refusal(status: u16, text: String) -> WalletError {
    let problem = serde_json::from_str::<serde_json::Value>(&text).ok();
    let field = |name: &str| {
        problem
            .as_ref()
            .and_then(|p| p.get(name)?.as_str().map(str::to_owned))
    };
    match (status, field("code").as_deref()) {
        (409, Some("request_expired")) => WalletError::Expired,
        (409, Some("request_decided")) => WalletError::AlreadyDecided,
        _ => WalletError::Refused {
            status,
            detail: field("detail").unwrap_or(text),
        },
    }
}
