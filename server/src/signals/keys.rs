//! Whose keys sign a transmitter's SETs, and which human a SET's subject names.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use countersign_jose::JwkSet;
use serde_json::Value;

use super::SetError;
use crate::config::TransmitterConfig;
use crate::state::AppState;

/// How soon a transmitter's JWKS is fetched again for a `kid` it did not have.
const REFETCH_AFTER: Duration = Duration::from_secs(60);

/// Fetched JWK Sets by `jwks_uri`.
#[derive(Debug, Default)]
pub struct TransmitterKeys(Mutex<HashMap<String, (Instant, JwkSet)>>);

/// The keys to verify `t`'s SET with (`kid`, when the SET names one, decides whether a
/// cached set is enough).
pub async fn keys_of(
    state: &AppState,
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
    let cached = state
        .signal_keys
        .0
        .lock()
        .ok()
        .and_then(|c| c.get(uri).cloned());
    if let Some((fetched, set)) = &cached {
        let has_kid = kid.is_none_or(|k| set.keys.iter().any(|j| j.kid.as_deref() == Some(k)));
        if has_kid || fetched.elapsed() < REFETCH_AFTER {
            return Ok(set.clone());
        }
    }
    let fetched = async {
        let resp = reqwest::Client::new()
            .get(uri)
            .timeout(Duration::from_secs(5))
            .send()
            .await?
            .error_for_status()?;
        resp.json::<JwkSet>().await
    }
    .await;
    match fetched {
        Ok(set) => {
            if let Ok(mut c) = state.signal_keys.0.lock() {
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
    state: &AppState,
    iss: &str,
    subject: &Value,
) -> Result<Option<String>, SetError> {
    let store = &state.store;
    let format = subject["format"].as_str().unwrap_or_default();
    let key = match format {
        "email" => {
            let Some(email) = subject["email"].as_str() else {
                return Err(SetError::InvalidRequest(
                    "an email subject needs email".into(),
                ));
            };
            return Ok(store.human_by_hint(email).await?.map(|h| h.subject));
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
        return Ok(Some(h.subject));
    }
    let users = store.scim_resources("User").await?;
    Ok(users
        .into_iter()
        .find(|u| u.external_id.as_deref() == Some(key) || u.id == key)
        .map(|u| u.target))
}
