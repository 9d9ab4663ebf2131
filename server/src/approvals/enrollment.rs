//! Enrolling a wallet: an administrator invites a human (a one-time, short-lived
//! `countersign://enroll?...` URI); the wallet redeems it in two steps. `begin` returns
//! passkey creation options; `complete` carries the new passkey, the device's public key
//! (proven by a proof signed with it), platform and push details, and binds the device to
//! the human. Devices can be listed and removed.

use countersign_jose::{Jwk, thumbprint};
use countersign_shared::approval::{
    BeginEnrollment, CompleteEnrollment, EnrolledDevice, EnrollmentChallenge, EnrollmentUri,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::webauthn::WebauthnError;
use super::{ApprovalDesk, ApprovalError};
use crate::audit::{self, EventKind, NewEvent};
use crate::ids::Subject;
use crate::secrets::hash_secret;
use crate::store::StoreError;
use crate::store::ceremonies::CeremonyRecord;
use crate::store::devices::{DeviceRecord, InvitationRecord};

const REGISTRATION: &str = "registration";
pub const PLATFORMS: [&str; 3] = ["ios", "android", "desktop"];
pub const PUSH_CHANNELS: [&str; 4] = ["apns", "fcm", "live", "none"];

/// A fresh invitation. The URI is the secret: shown once, stored only as a hash.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedInvitation {
    pub id: String,
    pub subject: String,
    /// `countersign://enroll?server=...&invitation=...`, for the wallet (or a QR code).
    pub uri: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// An enrolled device as administrators and wallets see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Device {
    pub id: String,
    pub subject: String,
    pub platform: String,
    pub name: Option<String>,
    pub push_channel: String,
    /// False once the push service reported the token invalid: re-register it.
    pub push_token_valid: bool,
    /// RFC 7638 thumbprint of the device key.
    pub key_thumbprint: String,
    /// Unix seconds.
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub disabled_at: Option<i64>,
    pub disabled_reason: Option<String>,
}

impl From<DeviceRecord> for Device {
    fn from(d: DeviceRecord) -> Self {
        Device {
            push_token_valid: d.push_token.is_some() && d.push_token_invalid_at.is_none(),
            id: d.id,
            subject: d.subject.into_string(),
            platform: d.platform,
            name: d.name,
            push_channel: d.push_channel,
            key_thumbprint: d.key_jkt,
            created_at: d.created_at.div_euclid(1000),
            last_used_at: d.last_used_at.map(|t| t.div_euclid(1000)),
            disabled_at: d.disabled_at.map(|t| t.div_euclid(1000)),
            disabled_reason: d.disabled_reason,
        }
    }
}

impl From<WebauthnError> for ApprovalError {
    fn from(e: WebauthnError) -> Self {
        match e {
            WebauthnError::Malformed(m) => ApprovalError::Invalid(format!("passkey: {m}")),
            WebauthnError::Rejected(m) => ApprovalError::Rejected(format!("passkey: {m}")),
            WebauthnError::State(m) => ApprovalError::Internal(m),
        }
    }
}

/// Creates a one-time invitation for `subject` to enroll a wallet.
pub async fn invite(
    desk: &ApprovalDesk,
    subject: &str,
    actor: &str,
) -> Result<CreatedInvitation, ApprovalError> {
    let human = desk
        .store
        .human(subject)
        .await?
        .ok_or_else(|| ApprovalError::Missing(format!("no human {subject:?}")))?;
    if !human.active {
        return Err(ApprovalError::Invalid(format!(
            "{subject:?} is not active; reactivate them first"
        )));
    }
    let now = desk.now_ms();
    let token = countersign_jose::random_b64url(32);
    let record = InvitationRecord {
        id: countersign_jose::random_b64url(12),
        subject: subject.to_owned(),
        token_hash: hash_secret(&token),
        created_by: actor.to_owned(),
        created_at: now,
        expires_at: now + 1000 * desk.config.wallet.invitation_ttl_secs as i64,
        redeemed_at: None,
        device_id: None,
    };
    let mut tx = desk.store.begin().await?;
    desk.store.insert_invitation(&mut tx, &record).await?;
    audit::record(
        &desk.store,
        &mut tx,
        now,
        NewEvent {
            actor,
            kind: EventKind::DeviceInvited,
            subject: &format!("human:{subject}"),
            detail: json!({ "invitation": record.id, "expires_at": record.expires_at.div_euclid(1000) }),
        },
    )
    .await?;
    tx.commit().await?;
    let uri = EnrollmentUri {
        server: desk.issuer.to_string(),
        invitation: token,
    };
    Ok(CreatedInvitation {
        id: record.id,
        subject: subject.to_owned(),
        uri: uri.to_uri(),
        expires_at: record.expires_at.div_euclid(1000),
    })
}

/// The invitation behind `token`, if it can still be redeemed.
async fn live_invitation(
    desk: &ApprovalDesk,
    token: &str,
) -> Result<InvitationRecord, ApprovalError> {
    let invitation = desk
        .store
        .invitation_by_token_hash(&hash_secret(token))
        .await?
        .ok_or_else(|| ApprovalError::Invitation("unknown enrollment invitation".into()))?;
    if invitation.redeemed_at.is_some() {
        return Err(ApprovalError::Invitation(
            "this enrollment invitation was already used; ask for a new one".into(),
        ));
    }
    if invitation.expires_at <= desk.now_ms() {
        return Err(ApprovalError::Invitation(
            "this enrollment invitation has expired; ask for a new one".into(),
        ));
    }
    Ok(invitation)
}

/// Step 1: passkey creation options for the invited human.
pub async fn begin(
    desk: &ApprovalDesk,
    request: &BeginEnrollment,
) -> Result<EnrollmentChallenge, ApprovalError> {
    let invitation = live_invitation(desk, &request.invitation).await?;
    let human = desk
        .store
        .human(&invitation.subject)
        .await?
        .filter(|h| h.active)
        .ok_or_else(|| ApprovalError::Invitation("the invited human is no longer active".into()))?;
    let started = desk
        .relying_party
        .start_registration(&human.email, &human.name, true)?;
    let now = desk.now_ms();
    let ttl = 1000 * desk.config.wallet.ceremony_ttl_secs as i64;
    desk.store
        .insert_ceremony(&CeremonyRecord {
            challenge: started.challenge,
            kind: REGISTRATION.into(),
            state: started.state,
            invitation_id: Some(invitation.id),
            device_id: None,
            auth_req_id: None,
            transaction_hash: None,
            admin_key_id: None,
            expires_at: (now + ttl).min(invitation.expires_at),
        })
        .await?;
    Ok(EnrollmentChallenge {
        subject: human.subject.into_string(),
        name: human.name,
        rp_id: desk.relying_party.rp_id().to_owned(),
        webauthn: started.options,
    })
}

fn check_details(request: &CompleteEnrollment) -> Result<(), ApprovalError> {
    let invalid = |m: String| Err(ApprovalError::Invalid(m));
    if !PLATFORMS.contains(&request.platform.as_str()) {
        return invalid(format!("platform must be one of {PLATFORMS:?}"));
    }
    if !PUSH_CHANNELS.contains(&request.push_channel.as_str()) {
        return invalid(format!("push_channel must be one of {PUSH_CHANNELS:?}"));
    }
    let token_needed = matches!(request.push_channel.as_str(), "apns" | "fcm");
    match &request.push_token {
        None if token_needed => return invalid("push_token is required for apns and fcm".into()),
        Some(t) if t.is_empty() || t.len() > 4096 || t.contains(char::is_control) => {
            return invalid("push_token must be 1-4096 printable characters".into());
        }
        _ => {}
    }
    if let Some(name) = &request.name
        && (name.chars().count() > 100 || name.contains(char::is_control) || name.trim().is_empty())
    {
        return invalid("name must be 1-100 characters of printable text".into());
    }
    if request
        .attestation
        .as_ref()
        .is_some_and(|a| a.len() > 65_536)
    {
        return invalid("attestation is larger than 64 KiB".into());
    }
    Ok(())
}

/// Step 2: verifies the passkey registration and the device key (`proof` is the request's
/// checked DPoP proof, signed by it), redeems the invitation and records the device, all
/// in one transaction. The proof's `jti` is spent only once the invitation is known live.
pub async fn complete(
    desk: &ApprovalDesk,
    request: &CompleteEnrollment,
    proof: &crate::oidc::dpop::CheckedProof,
) -> Result<EnrolledDevice, ApprovalError> {
    check_details(request)?;
    let (jwk, jkt) = device_key(request, &proof.jkt)?;
    let invitation = live_invitation(desk, &request.invitation).await?;
    crate::oidc::dpop::remember(&desk.store, desk.dpop_window(), proof)
        .await
        .map_err(|e| match e {
            crate::oidc::dpop::DpopError::Invalid(m) => {
                ApprovalError::Unauthenticated(format!("device proof: {m}"))
            }
            crate::oidc::dpop::DpopError::Store(s) => ApprovalError::Store(s),
        })?;
    let challenge = super::webauthn::challenge_of(&request.passkey)?;
    let now = desk.now_ms();
    let mut tx = desk.store.begin().await?;
    let ceremony = desk
        .store
        .take_ceremony(&mut tx, &challenge, REGISTRATION, now)
        .await?
        .filter(|c| c.invitation_id.as_deref() == Some(invitation.id.as_str()))
        .ok_or_else(|| {
            ApprovalError::Rejected(
                "the passkey answers no enrollment challenge of this invitation (unknown, used or expired)".into(),
            )
        })?;
    let passkey = match desk
        .relying_party
        .finish_registration(&ceremony.state, &request.passkey)
    {
        Ok(p) => p,
        Err(e) => {
            // A failed attempt still uses up the challenge.
            tx.commit().await?;
            return Err(e.into());
        }
    };
    let device = device_record(request, &invitation, jwk, jkt, passkey, now)?;
    enroll_in(desk, &mut tx, &invitation, &device, now).await?;
    tx.commit().await?;
    desk.store.forget_push_targets();
    tracing::info!(subject = %device.subject, device = %device.id, platform = %device.platform, "wallet enrolled");
    Ok(EnrolledDevice {
        device_id: device.id,
        subject: device.subject.into_string(),
        issuer: desk.issuer.to_string(),
        jwks: serde_json::to_value(desk.keys.jwks())
            .map_err(|e| ApprovalError::Internal(e.to_string()))?,
    })
}

/// The device key the request enrolls, a public P-256 key, and its thumbprint, which must
/// be the key that signed the request's DPoP proof (`proof_jkt`).
fn device_key(
    request: &CompleteEnrollment,
    proof_jkt: &str,
) -> Result<(Jwk, String), ApprovalError> {
    let jwk: Jwk = serde_json::from_value(request.device_key.clone())
        .map_err(|e| ApprovalError::Invalid(format!("device_key is not a JWK: {e}")))?;
    if jwk.kty != "EC" || jwk.crv.as_deref() != Some("P-256") || jwk.verifying_key().is_err() {
        return Err(ApprovalError::Invalid(
            "device_key must be a public P-256 EC key".into(),
        ));
    }
    let jkt = thumbprint(&jwk).map_err(|e| ApprovalError::Invalid(e.to_string()))?;
    if jkt != proof_jkt {
        return Err(ApprovalError::Unauthenticated(
            "the DPoP proof must be signed by device_key".into(),
        ));
    }
    Ok((jwk, jkt))
}

fn device_record(
    request: &CompleteEnrollment,
    invitation: &InvitationRecord,
    jwk: Jwk,
    jkt: String,
    passkey: super::webauthn::StoredPasskey,
    now: i64,
) -> Result<DeviceRecord, ApprovalError> {
    Ok(DeviceRecord {
        id: countersign_jose::random_b64url(12),
        subject: Subject::new(invitation.subject.as_str()),
        key_jkt: jkt,
        key_jwk: serde_json::to_string(&jwk).map_err(|e| ApprovalError::Internal(e.to_string()))?,
        platform: request.platform.clone(),
        name: request.name.clone(),
        push_channel: request.push_channel.clone(),
        push_token: request.push_token.clone(),
        push_token_invalid_at: None,
        attestation: request.attestation.clone(),
        passkey_id: passkey.id,
        passkey_user: passkey.user,
        passkey_static: passkey.static_state,
        passkey_dynamic: passkey.dynamic_state,
        passkey_transports: passkey.transports,
        created_at: now,
        last_used_at: None,
        disabled_at: None,
        disabled_reason: None,
    })
}

/// Redeems the invitation (once), stores the device and traces the enrollment in `tx`.
async fn enroll_in(
    desk: &ApprovalDesk,
    tx: &mut crate::store::Tx<'_>,
    invitation: &InvitationRecord,
    device: &DeviceRecord,
    now: i64,
) -> Result<(), ApprovalError> {
    if !desk
        .store
        .redeem_invitation(tx, &invitation.id, &device.id, now)
        .await?
    {
        return Err(ApprovalError::Invitation(
            "this enrollment invitation was already used; ask for a new one".into(),
        ));
    }
    match desk.store.insert_device(tx, device).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            return Err(ApprovalError::Conflict(
                "this device key or passkey is already enrolled".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    audit::record(
        &desk.store,
        tx,
        now,
        NewEvent {
            actor: &format!("human:{}", device.subject),
            kind: EventKind::DeviceEnrolled,
            subject: &format!("human:{}", device.subject),
            detail: json!({
                "device": device.id, "platform": device.platform, "push_channel": device.push_channel,
                "key_thumbprint": device.key_jkt, "invitation": invitation.id,
            }),
        },
    )
    .await?;
    Ok(())
}

pub async fn list_devices(
    desk: &ApprovalDesk,
    subject: Option<&str>,
) -> Result<Vec<Device>, ApprovalError> {
    Ok(desk
        .store
        .devices(subject)
        .await?
        .into_iter()
        .map(Device::from)
        .collect())
}

/// Disables a device: its proofs and approvals are refused from now on.
pub async fn remove_device(
    desk: &ApprovalDesk,
    id: &str,
    reason: &str,
    actor: &str,
) -> Result<Device, ApprovalError> {
    if reason.trim().is_empty() || reason.chars().count() > 500 || reason.contains(char::is_control)
    {
        return Err(ApprovalError::Invalid(
            "reason must be 1-500 characters of text".into(),
        ));
    }
    let device = desk
        .store
        .device(id)
        .await?
        .ok_or_else(|| ApprovalError::Missing(format!("no device {id:?}")))?;
    let now = desk.now_ms();
    let mut tx = desk.store.begin().await?;
    if desk.store.disable_device(&mut tx, id, reason, now).await? {
        audit::record(
            &desk.store,
            &mut tx,
            now,
            NewEvent {
                actor,
                kind: EventKind::DeviceRemoved,
                subject: &format!("human:{}", device.subject),
                detail: json!({ "device": id, "reason": reason }),
            },
        )
        .await?;
    }
    tx.commit().await?;
    desk.store.forget_push_targets();
    let device = desk
        .store
        .device(id)
        .await?
        .ok_or_else(|| ApprovalError::Missing(format!("no device {id:?}")))?;
    Ok(device.into())
}
