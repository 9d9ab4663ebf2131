//! Console passkeys: an admin signed in (by link or SSO) registers a passkey, then signs
//! in with it, the server being the WebAuthn relying party for its own origin.
//!
//! A passkey signs in with the role of the session that registered it, so registering
//! one never raises a role. Each ceremony's challenge is used once (taken before it is
//! verified), a registration ceremony belongs to the session that started it, and the
//! signature counter only grows (a cloned authenticator is refused). Registering,
//! revoking and signing in are audit events.

use serde_json::{Value, json};

use super::sign_in_links::ConsoleSession;
use super::{Role, Scope, create_key_in};
use crate::approvals::webauthn::{
    RelyingParty, StoredPasskey, WebauthnError, challenge_of, credential_id_of,
};
use crate::audit::{self, EventKind, NewEvent};
use crate::store::admin_passkeys::AdminPasskeyRecord;
use crate::store::ceremonies::CeremonyRecord;
use crate::store::{Store, StoreError};

const REGISTRATION: &str = "console_registration";
const ASSERTION: &str = "console_assertion";
/// The longest label (what the passkey is called in the console and the trail).
pub const MAX_LABEL: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// The console is served from an IP address: WebAuthn needs a domain name.
    #[error(
        "passkeys need the console on a domain name (WebAuthn does not work on an IP \
         address); set `issuer` to a URL with a host name, e.g. http://localhost:8080"
    )]
    Unavailable,
    #[error("{0}")]
    Invalid(String),
    /// The ceremony failed: unknown or expired challenge, unknown or revoked passkey, or
    /// a response that does not verify.
    #[error("{0}")]
    Rejected(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<WebauthnError> for PasskeyError {
    fn from(e: WebauthnError) -> Self {
        match e {
            WebauthnError::Malformed(m) => {
                Self::Invalid(format!("malformed passkey response: {m}"))
            }
            WebauthnError::Rejected(m) => {
                Self::Rejected(format!("the passkey did not verify: {m}"))
            }
            WebauthnError::State(m) => Self::Store(StoreError::Corrupt(m)),
        }
    }
}

/// The relying party for the console's own origin (`issuer`), or `None` when the issuer's
/// host is an IP address (no RP ID can name it).
pub fn relying_party(issuer: &str) -> Option<RelyingParty> {
    let origin = crate::paths::origin_of(issuer);
    let host = origin.split_once("://").map_or(origin, |(_, h)| h);
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    if host.is_empty() || host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok() {
        return None;
    }
    RelyingParty::new(&host.to_ascii_lowercase(), vec![origin.to_owned()]).ok()
}

fn checked_label(label: &str) -> Result<&str, PasskeyError> {
    let label = label.trim();
    if label.is_empty() || label.chars().count() > MAX_LABEL || label.chars().any(char::is_control)
    {
        return Err(PasskeyError::Invalid(format!(
            "name the passkey (1 to {MAX_LABEL} characters, e.g. \"alice's laptop\")"
        )));
    }
    Ok(label)
}

/// Takes the ceremony `response` answers (its challenge) once, committed at once: a
/// response replayed, or answered after it expired, finds nothing.
async fn take(
    store: &Store,
    response: &Value,
    kind: &str,
    now_ms: i64,
) -> Result<CeremonyRecord, PasskeyError> {
    let challenge = challenge_of(response)?;
    let mut tx = store.begin().await?;
    let ceremony = store
        .take_ceremony(&mut tx, &challenge, kind, now_ms)
        .await?;
    tx.commit().await?;
    ceremony.ok_or_else(|| {
        PasskeyError::Rejected(
            "this passkey prompt is unknown, expired or already answered; start again".into(),
        )
    })
}

/// Starts registering a passkey for the session `key_id`; the options go to the browser.
pub async fn start_registration(
    store: &Store,
    rp: Option<&RelyingParty>,
    key_id: &str,
    label: &str,
    ttl_ms: i64,
    now_ms: i64,
) -> Result<Value, PasskeyError> {
    let rp = rp.ok_or(PasskeyError::Unavailable)?;
    let label = checked_label(label)?;
    // WebAuthn user names are RFC 8265 identifiers (no spaces); the label is the display
    // name the authenticator shows.
    let user_name = format!("countersign-console-{}", key_id.to_ascii_lowercase());
    let started = rp.start_registration(&user_name, label, false)?;
    store
        .insert_ceremony(&CeremonyRecord {
            challenge: started.challenge,
            kind: REGISTRATION.into(),
            state: started.state,
            invitation_id: None,
            device_id: None,
            auth_req_id: None,
            transaction_hash: None,
            admin_key_id: Some(key_id.to_owned()),
            expires_at: now_ms.saturating_add(ttl_ms),
        })
        .await?;
    Ok(started.options)
}

/// Verifies the browser's registration `response` for the session `key_id` (which must
/// be the one that started it) and stores the passkey with that session's `role`.
pub async fn finish_registration(
    store: &Store,
    rp: Option<&RelyingParty>,
    key_id: &str,
    role: Role,
    label: &str,
    response: &Value,
    now_ms: i64,
) -> Result<AdminPasskeyRecord, PasskeyError> {
    let rp = rp.ok_or(PasskeyError::Unavailable)?;
    let label = checked_label(label)?;
    let ceremony = take(store, response, REGISTRATION, now_ms).await?;
    if ceremony.admin_key_id.as_deref() != Some(key_id) {
        return Err(PasskeyError::Rejected(
            "this passkey prompt was started by another session".into(),
        ));
    }
    let passkey = rp.finish_registration(&ceremony.state, response)?;
    let actor = Scope::Admin.subject(key_id);
    let record = AdminPasskeyRecord {
        id: passkey.id,
        label: label.to_owned(),
        role: role.as_str().to_owned(),
        user_handle: passkey.user,
        static_state: passkey.static_state,
        dynamic_state: passkey.dynamic_state,
        transports: passkey.transports,
        created_by: actor.clone(),
        created_at: now_ms,
        last_used_at: None,
        revoked_at: None,
    };
    let mut tx = store.begin().await?;
    store
        .insert_admin_passkey(&mut tx, &record)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => {
                PasskeyError::Rejected("this passkey is already registered".into())
            }
            e => e.into(),
        })?;
    let event = NewEvent {
        actor: &actor,
        kind: EventKind::AdminPasskeyRegistered,
        subject: &subject(&record.id),
        detail: json!({ "label": record.label, "role": role }),
    };
    audit::record(store, &mut tx, now_ms, event).await?;
    tx.commit().await?;
    Ok(record)
}

/// How the trail names a passkey: `admin-passkey:` and the start of its credential ID.
pub fn subject(id: &str) -> String {
    format!("admin-passkey:{}", id.chars().take(22).collect::<String>())
}

/// Starts a sign-in: options for any passkey of this console (the browser lets the admin
/// pick one).
pub async fn start_sign_in(
    store: &Store,
    rp: Option<&RelyingParty>,
    ttl_ms: i64,
    now_ms: i64,
) -> Result<Value, PasskeyError> {
    let rp = rp.ok_or(PasskeyError::Unavailable)?;
    let started = rp.start_discoverable_assertion()?;
    store
        .insert_ceremony(&CeremonyRecord {
            challenge: started.challenge,
            kind: ASSERTION.into(),
            state: started.state,
            invitation_id: None,
            device_id: None,
            auth_req_id: None,
            transaction_hash: None,
            admin_key_id: None,
            expires_at: now_ms.saturating_add(ttl_ms),
        })
        .await?;
    Ok(started.options)
}

/// Verifies a sign-in assertion and starts a console session with the passkey's role,
/// recorded as `admin.signed_in` with `"method": "passkey"`.
pub async fn finish_sign_in(
    store: &Store,
    rp: Option<&RelyingParty>,
    response: &Value,
    session_ttl_ms: i64,
    now_ms: i64,
) -> Result<ConsoleSession, PasskeyError> {
    let rp = rp.ok_or(PasskeyError::Unavailable)?;
    let ceremony = take(store, response, ASSERTION, now_ms).await?;
    let id = credential_id_of(response)?;
    let unknown = || {
        PasskeyError::Rejected(
            "this passkey is not registered with this console, or it was revoked".into(),
        )
    };
    let record = store.admin_passkey(&id).await?.ok_or_else(unknown)?;
    if record.revoked_at.is_some() {
        return Err(unknown());
    }
    let stored = StoredPasskey {
        id: record.id.clone(),
        user: record.user_handle.clone(),
        static_state: record.static_state.clone(),
        dynamic_state: record.dynamic_state.clone(),
        transports: record.transports,
    };
    let dynamic_state = rp.finish_discoverable_assertion(&ceremony.state, response, &stored)?;
    let role: Role = record.role.parse().unwrap_or(Role::Viewer);
    let expires_at_ms = now_ms.saturating_add(session_ttl_ms);
    let mut tx = store.begin().await?;
    if !store
        .use_admin_passkey(&mut tx, &record.id, &dynamic_state, now_ms)
        .await?
    {
        return Err(unknown());
    }
    let key = create_key_in(
        store,
        &mut tx,
        &format!("console session: passkey {}", record.label),
        Scope::Admin,
        role,
        Some(expires_at_ms),
        now_ms,
    )
    .await?;
    let passkey_subject = subject(&record.id);
    let event = NewEvent {
        actor: &passkey_subject,
        kind: EventKind::AdminSignedIn,
        subject: &Scope::Admin.subject(&key.id),
        detail: json!({
            "method": "passkey",
            "role": role,
            "passkey": record.label,
            "expires_at": expires_at_ms,
        }),
    };
    audit::record(store, &mut tx, now_ms, event).await?;
    tx.commit().await?;
    Ok(ConsoleSession {
        key_id: key.id,
        secret: key.secret,
        role,
        expires_at_ms,
    })
}

/// Revokes a passkey (it signs in no more); `false` when unknown or already revoked.
pub async fn revoke(store: &Store, id: &str, actor: &str, now_ms: i64) -> Result<bool, StoreError> {
    let mut tx = store.begin().await?;
    if !store.revoke_admin_passkey(&mut tx, id, now_ms).await? {
        return Ok(false);
    }
    let event = NewEvent {
        actor,
        kind: EventKind::AdminPasskeyRevoked,
        subject: &subject(id),
        detail: json!({}),
    };
    audit::record(store, &mut tx, now_ms, event).await?;
    tx.commit().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_is_the_issuers_host_and_origin() {
        let rp = relying_party("https://Console.Example.com:8443/base").unwrap();
        assert_eq!(rp.rp_id(), "console.example.com");
        assert!(relying_party("http://localhost:8080").is_some());
        // WebAuthn has no RP ID for an IP address: passkeys are unavailable there.
        assert!(relying_party("http://127.0.0.1:8080").is_none());
        assert!(relying_party("http://[::1]:8080").is_none());
    }

    #[test]
    fn labels_are_bounded_and_printable() {
        assert_eq!(
            checked_label("  alice's laptop ").unwrap(),
            "alice's laptop"
        );
        assert!(checked_label("").is_err());
        assert!(checked_label("a\nb").is_err());
        assert!(checked_label(&"x".repeat(MAX_LABEL + 1)).is_err());
    }
}
