//! Whose keys sign a transmitter's SETs, and which human a SET's subject names.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use countersign_jose::JwkSet;
use serde_json::Value;

use super::SetError;
use crate::config::TransmitterConfig;
use crate::store::Store;

/// How soon a transmitter's JWKS is fetched again for a `kid` it did not have.
const REFETCH_AFTER: Duration = Duration::from_secs(60);

/// Largest JWK Set accepted from a transmitter.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Fetched JWK Sets by `jwks_uri`, and the one fetch in flight: a burst of SETs naming an
/// unknown `kid` makes one request to the transmitter, not one each.
#[derive(Debug, Default)]
pub struct TransmitterKeys {
    sets: Mutex<HashMap<String, (Instant, JwkSet)>>,
    fetching: tokio::sync::Mutex<()>,
}

impl TransmitterKeys {
    fn cached(&self, uri: &str) -> Option<(Instant, JwkSet)> {
        self.sets.lock().ok().and_then(|c| c.get(uri).cloned())
    }
}

/// Whether `cached` answers for `kid` without a fetch.
fn enough(cached: Option<&(Instant, JwkSet)>, kid: Option<&str>) -> bool {
    cached.is_some_and(|(fetched, set)| {
        kid.is_none_or(|k| set.keys.iter().any(|j| j.kid.as_deref() == Some(k)))
            || fetched.elapsed() < REFETCH_AFTER
    })
}

/// GETs `uri` without following redirects (a transmitter's keys are where it said), in
/// at most 5 s and [`MAX_JWKS_BYTES`].
async fn fetch(uri: &str) -> Result<JwkSet, String> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let mut resp = client
        .get(uri)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| e.to_string())?;
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
    {
        return Err(format!("the key set is larger than {MAX_JWKS_BYTES} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_JWKS_BYTES {
            return Err(format!("the key set is larger than {MAX_JWKS_BYTES} bytes"));
        }
    }
    serde_json::from_slice(&body).map_err(|e| format!("not a JWK Set: {e}"))
}

/// The keys to verify `t`'s SET with (`kid`, when the SET names one, decides whether a
/// cached set is enough).
pub async fn keys_of(
    keys: &TransmitterKeys,
    t: &TransmitterConfig,
    kid: Option<&str>,
) -> Result<JwkSet, SetError> {
    if let Some(inline) = &t.jwks {
        return serde_json::from_str(inline).map_err(|e| {
            SetError::InvalidKey(format!("the configured jwks is not a JWK Set: {e}"))
        });
    }
    let Some(uri) = &t.jwks_uri else {
        return Err(SetError::InvalidKey(
            "the transmitter has no keys configured".into(),
        ));
    };
    let cached = keys.cached(uri);
    if enough(cached.as_ref(), kid) {
        return Ok(cached.map(|(_, set)| set).unwrap_or_default());
    }
    // One fetch at a time; whoever waited finds what the fetch before it brought.
    let _one = keys.fetching.lock().await;
    let cached = keys.cached(uri);
    if enough(cached.as_ref(), kid) {
        return Ok(cached.map(|(_, set)| set).unwrap_or_default());
    }
    let fetched = fetch(uri).await;
    match fetched {
        Ok(set) => {
            if let Ok(mut c) = keys.sets.lock() {
                c.insert(uri.clone(), (Instant::now(), set.clone()));
            }
            Ok(set)
        }
        // The last good set still verifies what it can.
        Err(e) => cached.map(|(_, set)| set).ok_or_else(|| {
            SetError::InvalidKey(format!(
                "cannot fetch the transmitter's keys from {uri}: {e}"
            ))
        }),
    }
}

/// The human a subject identifier (RFC 9493) names: `email` by e-mail address; `iss_sub`
/// and `opaque` by subject, then by the SCIM User's externalId or id (the identity
/// provider's own identifiers). `None`: nobody here.
pub async fn human_of(
    store: &Store,
    iss: &str,
    subject: &Value,
) -> Result<Option<String>, SetError> {
    let format = subject["format"].as_str().unwrap_or_default();
    let key = match format {
        "email" => {
            let Some(email) = subject["email"].as_str() else {
                return Err(SetError::InvalidRequest(
                    "an email subject needs email".into(),
                ));
            };
            return Ok(store
                .human_by_hint(email)
                .await?
                .map(|h| h.subject.into_string()));
        }
        "iss_sub" => {
            if subject["iss"].as_str() != Some(iss) {
                // Another issuer's subject: not ours to map.
                return Ok(None);
            }
            subject["sub"].as_str()
        }
        "opaque" => subject["id"].as_str(),
        other => {
            return Err(SetError::InvalidRequest(format!(
                "subject format {other:?} is not supported (email, iss_sub, opaque)"
            )));
        }
    };
    let Some(key) = key else {
        return Err(SetError::InvalidRequest(format!(
            "the {format} subject is incomplete"
        )));
    };
    if let Some(h) = store.human(key).await? {
        return Ok(Some(h.subject.into_string()));
    }
    let users = store.scim_resources("User").await?;
    Ok(users
        .into_iter()
        .find(|u| u.external_id.as_deref() == Some(key) || u.id == key)
        .map(|u| u.target))
}
