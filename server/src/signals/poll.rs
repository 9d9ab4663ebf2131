//! Poll delivery (RFC 8936): for each transmitter with a `poll_url`, this server asks for
//! SETs, acts on each exactly as on a pushed one ([`super::receive`]), and acknowledges
//! it in the next request, or reports why not in `setErrs`.
//!
//! A SET is acknowledged only after its effects are committed, so a crash in between makes
//! the transmitter deliver it again; the remembered `jti` then marks it a duplicate, which
//! is acknowledged without acting twice. A storage failure is neither acknowledged nor
//! reported, so the SET comes back. Several replicas may poll the same transmitter: the
//! same rule makes that safe.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{SetError, SignalReceiver};
use crate::config::TransmitterConfig;

/// SETs asked for per poll.
const MAX_EVENTS: u32 = 100;
/// Wait after a failed poll, doubling up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// RFC 8936 §2.4 poll request.
#[derive(Debug, Default, Serialize)]
struct PollRequest {
    ack: Vec<String>,
    #[serde(rename = "setErrs", skip_serializing_if = "BTreeMap::is_empty")]
    set_errs: BTreeMap<String, SetErr>,
    #[serde(rename = "maxEvents")]
    max_events: u32,
    #[serde(rename = "returnImmediately")]
    return_immediately: bool,
}

#[derive(Debug, Serialize)]
struct SetErr {
    err: &'static str,
    description: String,
}

/// RFC 8936 §2.5 poll response.
#[derive(Debug, Deserialize)]
struct PollResponse {
    #[serde(default)]
    sets: BTreeMap<String, String>,
    #[serde(default, rename = "moreAvailable")]
    more_available: bool,
}

/// Polls every transmitter that has a `poll_url` until `shutdown`.
pub async fn run(receiver: SignalReceiver, shutdown: watch::Receiver<bool>) {
    let pollers: Vec<_> = receiver
        .config
        .signals
        .transmitters
        .iter()
        .filter(|t| t.poll_url.is_some())
        .cloned()
        .map(|t| tokio::spawn(poll_transmitter(receiver.clone(), t, shutdown.clone())))
        .collect();
    for poller in pollers {
        let _ = poller.await;
    }
}

async fn poll_transmitter(
    receiver: SignalReceiver,
    transmitter: TransmitterConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(url) = transmitter.poll_url.clone() else {
        return;
    };
    // Validated at start-up; a file that vanished since is reported here.
    let token = match transmitter.poll_token() {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, issuer = %transmitter.issuer, "not polling for SETs");
            return;
        }
    };
    let http = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "not polling for SETs: HTTP client");
            return;
        }
    };
    let interval = Duration::from_secs(receiver.config.signals.poll_interval_secs());
    let mut request = PollRequest {
        max_events: MAX_EVENTS,
        return_immediately: true,
        ..PollRequest::default()
    };
    let mut backoff = FIRST_BACKOFF;
    loop {
        let wait = match poll_once(&receiver, &http, &url, token.as_deref(), &request).await {
            Ok((next, more)) => {
                backoff = FIRST_BACKOFF;
                let answered = !next.ack.is_empty() || !next.set_errs.is_empty();
                request = next;
                // Acknowledge at once, and fetch at once while more are waiting.
                if more || answered {
                    Duration::ZERO
                } else {
                    interval
                }
            }
            Err(e) => {
                // The acknowledgements are kept and sent with the next poll.
                tracing::warn!(error = %e, issuer = %transmitter.issuer, "polling for SETs failed; retrying");
                let wait = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                wait
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One poll: sends `request`'s acknowledgements, acts on what comes back. Returns the
/// next request (its acknowledgements) and whether more SETs are available.
async fn poll_once(
    receiver: &SignalReceiver,
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    request: &PollRequest,
) -> Result<(PollRequest, bool), String> {
    let mut call = http.post(url).json(request);
    if let Some(token) = token {
        call = call.bearer_auth(token);
    }
    let response = call.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(format!(
            "{status}: {}",
            body.chars().take(200).collect::<String>()
        ));
    }
    let polled: PollResponse = response
        .json()
        .await
        .map_err(|e| format!("not an RFC 8936 poll response: {e}"))?;
    let mut next = PollRequest {
        max_events: request.max_events,
        return_immediately: request.return_immediately,
        ..PollRequest::default()
    };
    let mut acted = false;
    for (jti, set) in polled.sets {
        match super::receive(receiver, &set).await {
            Ok(_) => {
                acted = true;
                next.ack.push(jti);
            }
            Err(SetError::Duplicate(_)) => next.ack.push(jti),
            Err(SetError::Store(e)) => {
                tracing::error!(error = %e, jti, "storing a polled security event failed; it will be delivered again");
            }
            Err(e) => {
                tracing::info!(error = %e, jti, "refusing a polled security event");
                next.set_errs.insert(
                    jti,
                    SetErr {
                        err: e.code(),
                        description: e.to_string(),
                    },
                );
            }
        }
    }
    if acted {
        receiver.outbox_wake.notify_one();
    }
    Ok((next, polled.more_available))
}
