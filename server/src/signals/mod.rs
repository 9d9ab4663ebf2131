//! Shared Signals receiver: Security Event Tokens (RFC 8417) pushed by the identity
//! provider (RFC 8935) or polled from it ([`poll`], RFC 8936). A SET is accepted only when signed by its configured
//! transmitter's key, addressed to this server, recent, and new (`jti`); its events act
//! on the human its subject names (RFC 9493 subject identifiers: `email`, `iss_sub`,
//! `opaque`):
//!
//! - RISC `account-disabled` and `account-purged` offboard the human;
//! - RISC `account-enabled` reactivates them (nothing offboarding ended comes back);
//! - CAEP `session-revoked` revokes every credential the human approved;
//! - CAEP `credential-change` and any other event are recorded in the trace only.
//!
//! The `jti` is remembered in the same transaction as the effects, so a SET acts once,
//! even when retransmitted.

pub mod keys;
pub mod poll;

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::audit::{self, EventKind, NewEvent};
use crate::clock::Clock;
use crate::config::{Config, TransmitterConfig};
use crate::directory::offboarding;
use crate::store::tokens::TokenSelector;
use crate::store::{Store, StoreError, Tx};

/// What receiving security events works with, for the push endpoint and the pollers.
#[derive(Clone)]
pub struct SignalReceiver {
    /// The transmitters (`signals`) and what offboarding does to agents (`offboarding`).
    pub config: Arc<Config>,
    /// The audience a SET must name unless its transmitter's `audience` says otherwise.
    pub issuer: Arc<str>,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub keys: Arc<keys::TransmitterKeys>,
    /// The notification worker's, rung after polled SETs acted.
    pub outbox_wake: Arc<Notify>,
}

impl SignalReceiver {
    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}

pub const ACCOUNT_DISABLED: &str =
    "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
pub const ACCOUNT_PURGED: &str =
    "https://schemas.openid.net/secevent/risc/event-type/account-purged";
pub const ACCOUNT_ENABLED: &str =
    "https://schemas.openid.net/secevent/risc/event-type/account-enabled";
pub const SESSION_REVOKED: &str =
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
pub const CREDENTIAL_CHANGE: &str =
    "https://schemas.openid.net/secevent/caep/event-type/credential-change";

/// How far a SET's `iat` may be ahead of this server's clock.
const CLOCK_SKEW_SECS: i64 = 300;

/// The errors RFC 8935 §2.3 defines (registered in its §7.1), with a description.
#[derive(Debug, thiserror::Error)]
pub enum SetError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidKey(String),
    #[error("{0}")]
    InvalidIssuer(String),
    #[error("{0}")]
    InvalidAudience(String),
    /// A SET whose `jti` was received before (acted on then; nothing happens now).
    #[error("SET {0:?} was already received")]
    Duplicate(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SetError {
    /// The `err` code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) | Self::Duplicate(_) | Self::Store(_) => "invalid_request",
            Self::InvalidKey(_) => "invalid_key",
            Self::InvalidIssuer(_) => "invalid_issuer",
            Self::InvalidAudience(_) => "invalid_audience",
        }
    }
}

impl From<crate::directory::DirectoryError> for SetError {
    fn from(e: crate::directory::DirectoryError) -> Self {
        match e {
            crate::directory::DirectoryError::Store(s) => Self::Store(s),
            other => Self::InvalidRequest(other.to_string()),
        }
    }
}

/// What a SET did, event by event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub jti: String,
    /// `(event type, the human it acted on, what it did)`.
    pub effects: Vec<(String, Option<String>, &'static str)>,
}

fn transmitter<'a>(receiver: &'a SignalReceiver, iss: &str) -> Option<&'a TransmitterConfig> {
    receiver
        .config
        .signals
        .transmitters
        .iter()
        .find(|t| t.issuer == iss)
}

/// A SET whose signature, audience and times were checked.
struct VerifiedSet {
    iss: String,
    jti: String,
    claims: Value,
    /// Until when its `jti` must be remembered (ms).
    remember_until_ms: i64,
}

/// Verifies `token` and acts on its events.
pub async fn receive(receiver: &SignalReceiver, token: &str) -> Result<Received, SetError> {
    let set = verify(receiver, token).await?;
    let events = set.claims["events"]
        .as_object()
        .filter(|e| !e.is_empty())
        .ok_or_else(|| SetError::InvalidRequest("events must be a non-empty object".into()))?;
    let store = &receiver.store;
    let mut tx = store.begin().await?;
    if !store
        .remember_jti_in(
            &mut tx,
            &format!("set:{}", set.iss),
            &set.jti,
            set.remember_until_ms,
        )
        .await?
    {
        return Err(SetError::Duplicate(set.jti));
    }
    let mut effects = Vec::new();
    for (event_type, event) in events {
        effects.push(act_and_trace(receiver, &mut tx, &set, event_type, event).await?);
    }
    tx.commit().await?;
    store.forget_directory_cache();
    tracing::info!(
        iss = set.iss,
        jti = set.jti,
        events = effects.len(),
        "security event token received"
    );
    Ok(Received {
        jti: set.jti,
        effects,
    })
}

/// Checks the SET's form (RFC 8417 §2.3 `typ`), its signature by its transmitter's keys,
/// its audience and its times.
async fn verify(receiver: &SignalReceiver, token: &str) -> Result<VerifiedSet, SetError> {
    // Identity providers sign SETs with RSA as often as with EC keys.
    let algs = [countersign_jose::ES256, countersign_jose::RS256];
    let jws = countersign_jose::UnverifiedJws::parse_accepting(token.trim(), &algs)
        .map_err(|e| SetError::InvalidRequest(format!("not a signed SET: {e}")))?;
    let typ_ok = jws.header.typ.as_deref().is_some_and(|t| {
        let t = t.to_ascii_lowercase();
        t == "secevent+jwt" || t == "application/secevent+jwt"
    });
    if !typ_ok {
        return Err(SetError::InvalidRequest(
            "the JWS typ must be secevent+jwt (RFC 8417 §2.3)".into(),
        ));
    }
    let unverified: Value = jws
        .insecure_claims()
        .map_err(|e| SetError::InvalidRequest(e.to_string()))?;
    let iss = unverified["iss"].as_str().unwrap_or_default().to_owned();
    let Some(t) = transmitter(receiver, &iss) else {
        return Err(SetError::InvalidIssuer(format!(
            "no transmitter {iss:?} is configured"
        )));
    };
    let set = keys::keys_of(&receiver.keys, t, jws.header.kid.as_deref()).await?;
    let claims: Value = jws.verify_with_set(&set).map_err(|e| {
        SetError::InvalidKey(format!(
            "the signature does not verify with {iss}'s keys: {e}"
        ))
    })?;
    let audience = t
        .audience
        .clone()
        .unwrap_or_else(|| receiver.issuer.to_string());
    check_audience(&claims, &audience)?;
    let max_age = i64::try_from(receiver.config.signals.max_age_secs()).unwrap_or(i64::MAX);
    let iat = check_times(&claims, receiver.now_ms() / 1000, max_age)?;
    let jti = claims["jti"]
        .as_str()
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| SetError::InvalidRequest("jti is missing".into()))?
        .to_owned();
    let remember_until_ms = iat
        .saturating_add(max_age)
        .saturating_add(CLOCK_SKEW_SECS)
        .saturating_mul(1000);
    Ok(VerifiedSet {
        iss,
        jti,
        claims,
        remember_until_ms,
    })
}

fn check_audience(claims: &Value, audience: &str) -> Result<(), SetError> {
    let aud_ok = match &claims["aud"] {
        Value::String(a) => a == audience,
        Value::Array(a) => a.iter().any(|v| v.as_str() == Some(audience)),
        _ => false,
    };
    if aud_ok {
        Ok(())
    } else {
        Err(SetError::InvalidAudience(format!(
            "the SET is not addressed to {audience}"
        )))
    }
}

/// `iat` within `max_age_s` before `now_s` (and not in the future beyond the skew), and
/// `exp`, when present, not passed. Returns `iat`.
fn check_times(claims: &Value, now_s: i64, max_age_s: i64) -> Result<i64, SetError> {
    let iat = claims["iat"]
        .as_i64()
        .ok_or_else(|| SetError::InvalidRequest("iat is missing".into()))?;
    if iat > now_s.saturating_add(CLOCK_SKEW_SECS) || iat < now_s.saturating_sub(max_age_s) {
        return Err(SetError::InvalidRequest(
            "iat is outside the accepted window".into(),
        ));
    }
    if claims["exp"].as_i64().is_some_and(|exp| exp <= now_s) {
        return Err(SetError::InvalidRequest("the SET has expired".into()));
    }
    Ok(iat)
}

/// Acts on one event of `set` and traces what it did.
async fn act_and_trace(
    receiver: &SignalReceiver,
    tx: &mut Tx<'_>,
    set: &VerifiedSet,
    event_type: &str,
    event: &Value,
) -> Result<(String, Option<String>, &'static str), SetError> {
    let actor = format!("ssf:{}", set.iss);
    let subject = set.claims.get("sub_id").or_else(|| event.get("subject"));
    let human = match subject {
        Some(s) => keys::human_of(&receiver.store, &set.iss, s).await?,
        None => None,
    };
    let did = act(receiver, tx, &actor, event_type, event, human.as_deref()).await?;
    let detail = json!({ "jti": set.jti, "event": event_type, "subject": subject, "effect": did });
    let target = human
        .as_ref()
        .map_or_else(|| "unknown".to_owned(), |h| format!("human:{h}"));
    let record = NewEvent {
        actor: &actor,
        kind: EventKind::SignalReceived,
        subject: &target,
        detail,
    };
    audit::record(&receiver.store, tx, receiver.now_ms(), record).await?;
    Ok((event_type.to_owned(), human, did))
}

async fn act(
    receiver: &SignalReceiver,
    tx: &mut Tx<'_>,
    actor: &str,
    event_type: &str,
    event: &Value,
    human: Option<&str>,
) -> Result<&'static str, SetError> {
    let Some(subject) = human else {
        return Ok("no such human");
    };
    let store = &receiver.store;
    let now = receiver.now_ms();
    let active = store.human(subject).await?.is_some_and(|h| h.active);
    let reason = |what: &str| {
        let said = event["reason_admin"]["en"]
            .as_str()
            .or_else(|| event["reason"].as_str())
            .unwrap_or("");
        if said.is_empty() {
            format!("identity provider signal: {what}")
        } else {
            format!("identity provider signal: {what} ({said})")
        }
    };
    Ok(match event_type {
        ACCOUNT_DISABLED | ACCOUNT_PURGED if active => {
            let what = if event_type == ACCOUNT_DISABLED {
                "account disabled"
            } else {
                "account purged"
            };
            let fate = receiver.config.offboarding.agents;
            offboarding::offboard_in(store, tx, now, subject, &reason(what), actor, fate).await?;
            "offboarded"
        }
        ACCOUNT_DISABLED | ACCOUNT_PURGED => "already inactive",
        ACCOUNT_ENABLED if !active => {
            offboarding::reactivate_in(store, tx, now, subject, actor).await?;
            "reactivated"
        }
        ACCOUNT_ENABLED => "already active",
        SESSION_REVOKED => {
            let why = reason("sessions revoked");
            let revoked = store
                .revoke_tokens(tx, TokenSelector::RestingOn(subject), &why, now)
                .await?;
            let event = NewEvent {
                actor,
                kind: EventKind::CredentialRevoked,
                subject: &format!("human:{subject}"),
                detail: json!({ "reason": why, "scope": "approved by the human", "credentials": revoked }),
            };
            audit::record(store, tx, now, event).await?;
            "approved credentials revoked"
        }
        CREDENTIAL_CHANGE => "recorded",
        _ => "not understood; recorded",
    })
}

#[cfg(test)]
mod tests {
    use super::{CLOCK_SKEW_SECS, SetError, check_audience, check_times};
    use serde_json::json;

    #[test]
    fn the_audience_is_a_string_or_one_of_an_array() {
        assert!(check_audience(&json!({"aud": "https://cs"}), "https://cs").is_ok());
        assert!(check_audience(&json!({"aud": ["x", "https://cs"]}), "https://cs").is_ok());
        for claims in [json!({"aud": "x"}), json!({"aud": ["x"]}), json!({})] {
            assert!(matches!(
                check_audience(&claims, "https://cs"),
                Err(SetError::InvalidAudience(_))
            ));
        }
    }

    #[test]
    fn iat_must_be_recent_and_exp_not_passed() {
        let now = 1_000_000;
        assert_eq!(check_times(&json!({"iat": now}), now, 60).unwrap(), now);
        assert!(check_times(&json!({"iat": now - 60}), now, 60).is_ok());
        assert!(check_times(&json!({"iat": now - 61}), now, 60).is_err());
        assert!(check_times(&json!({"iat": now + CLOCK_SKEW_SECS}), now, 60).is_ok());
        assert!(check_times(&json!({"iat": now + CLOCK_SKEW_SECS + 1}), now, 60).is_err());
        assert!(check_times(&json!({"iat": now, "exp": now}), now, 60).is_err());
        assert!(check_times(&json!({"iat": now, "exp": now + 1}), now, 60).is_ok());
        assert!(check_times(&json!({}), now, 60).is_err());
    }
}
