//! What an enrolled wallet does: authenticate every call with its device key, list the
//! requests waiting for its human, fetch one as a server-signed request object (which
//! also opens a single-use passkey challenge bound to that request, device and
//! transaction), and send back the human's decision.
//!
//! A decision is accepted only when all of these hold: the approval JWS is signed by this
//! device's key; it names this request; its transaction hash equals the hash the server
//! recomputes from its own records now (so nothing the human did not see can be
//! approved); the passkey assertion answers a challenge issued for this request on this
//! device for this very transaction (deleted on first use) with user verification, the
//! expected RP ID and origin and a growing signature counter; and the request is pending,
//! unexpired and routed to this device's human.

use std::sync::Arc;

use countersign_jose::{Jwk, UnverifiedJws};
use countersign_shared::approval::{
    APPROVAL_TYP, AgentSummary, ApprovalClaims, DecisionKind, DecisionRecorded, DisplayedRequest,
    PendingRequest, REQUEST_OBJECT_TYP, RequestObjectClaims, Transaction, transaction_hash,
};
use serde_json::Value;

use super::webauthn::{StoredPasskey, challenge_of};
use super::{
    ApprovalDesk, ApprovalError, ApprovalMethod, Checked, DecisionInput, OwnedInput, prepare,
    record,
};
use crate::ids::AuthReqId;
use crate::oidc::dpop::{self, DpopError};
use crate::store::auth_requests::{AuthRequestRecord, AuthRequestStatus};
use crate::store::ceremonies::CeremonyRecord;
use crate::store::devices::DeviceRecord;

const ASSERTION: &str = "assertion";
/// Most requests one listing returns.
const PENDING_LIMIT: i64 = 100;

/// Authenticates a wallet call: `proof` (the `DPoP` header) must be signed by an enrolled,
/// enabled device's key, for `method` and `url`, fresh and never seen before.
pub async fn authenticate(
    desk: &ApprovalDesk,
    proof: Option<&str>,
    method: &str,
    url: &str,
) -> Result<DeviceRecord, ApprovalError> {
    let proof = proof.ok_or_else(|| {
        ApprovalError::Unauthenticated("a DPoP proof signed by the device key is required".into())
    })?;
    let refused = |e: DpopError| match e {
        DpopError::Invalid(m) => ApprovalError::Unauthenticated(format!("device proof: {m}")),
        DpopError::Store(s) => ApprovalError::Store(s),
    };
    // Signature and freshness first, then whose key it is, and only then the replay
    // cache: a stranger's self-signed proofs are refused without writing anything.
    let checked = dpop::check_proof(proof, method, url, desk.dpop_window()).map_err(refused)?;
    let device = desk
        .store
        .device_by_key(&checked.jkt)
        .await?
        .ok_or_else(|| {
            ApprovalError::Unauthenticated("no device is enrolled with this key".into())
        })?;
    if device.disabled_at.is_some() {
        return Err(ApprovalError::Unauthenticated(
            "this device was removed; enroll it again".into(),
        ));
    }
    let active = desk
        .store
        .human(&device.subject)
        .await?
        .is_some_and(|h| h.active);
    if !active {
        return Err(ApprovalError::Unauthenticated(
            "this device's human is not active".into(),
        ));
    }
    dpop::remember(&desk.store, desk.dpop_window(), &checked)
        .await
        .map_err(refused)?;
    Ok(device)
}

pub async fn pending(
    desk: &ApprovalDesk,
    device: &DeviceRecord,
) -> Result<Vec<PendingRequest>, ApprovalError> {
    let requests = desk
        .store
        .pending_for_subject(&device.subject, desk.now_ms(), PENDING_LIMIT)
        .await?;
    let mut out = Vec::with_capacity(requests.len());
    for r in requests {
        let agent = desk
            .store
            .client(&r.client_id)
            .await?
            .map_or_else(|| r.client_id.to_string(), |c| c.name);
        out.push(PendingRequest {
            action: action_of(&r),
            id: r.id.into_string(),
            agent,
            requested_at: r.created_at.div_euclid(1000),
            expires_at: r.expires_at.div_euclid(1000),
        });
    }
    Ok(out)
}

fn action_of(r: &AuthRequestRecord) -> Option<String> {
    let details: Value = serde_json::from_str(r.authorization_details.as_deref()?).ok()?;
    details.get(0)?.get("type")?.as_str().map(str::to_owned)
}

/// The transaction `approver` decides on, built from the server's records only.
async fn transaction(
    desk: &ApprovalDesk,
    request: &AuthRequestRecord,
    approver: &str,
) -> Result<Transaction, ApprovalError> {
    let client = desk
        .store
        .client(&request.client_id)
        .await?
        .ok_or(ApprovalError::NotFound)?;
    let authorization_details = match &request.authorization_details {
        Some(text) => Some(
            serde_json::from_str(text)
                .map_err(|_| ApprovalError::Internal("stored authorization_details".into()))?,
        ),
        None => None,
    };
    Ok(Transaction {
        request_id: request.id.to_string(),
        agent: AgentSummary {
            client_id: client.client_id.into_string(),
            name: client.name,
            owner: client.owner_subject.into_string(),
        },
        approver: approver.to_owned(),
        action: action_of(request),
        authorization_details,
        binding_message: request.binding_message.clone(),
        scope: request.scope.clone(),
        task_id: request.task_id.clone(),
        requested_at: request.created_at.div_euclid(1000),
        expires_at: request.expires_at.div_euclid(1000),
        credential_validity_secs: crate::credentials::validity_secs(&desk.config.tokens, request),
        policy_reason: request
            .policy_reasons
            .as_deref()
            .and_then(|r| serde_json::from_str::<Vec<String>>(r).ok())
            .filter(|r| !r.is_empty())
            .map(|r| r.join("; ")),
        risk_signals: request
            .risk_signals
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok())
            .unwrap_or_default(),
    })
}

/// The request, if this device's human may decide it now.
async fn decidable(
    desk: &ApprovalDesk,
    device: &DeviceRecord,
    id: &AuthReqId,
) -> Result<AuthRequestRecord, ApprovalError> {
    let request = desk
        .store
        .auth_request(id)
        .await?
        .ok_or(ApprovalError::NotFound)?;
    if !desk.store.approvers_of(id).await?.contains(&device.subject) {
        return Err(ApprovalError::Forbidden(
            "this request is not routed to this device's human".into(),
        ));
    }
    let now = desk.now_ms();
    if request.status != AuthRequestStatus::Pending || request.expires_at <= now {
        return Err(ApprovalError::NotPending(super::Ended::of(&request, now)));
    }
    Ok(request)
}

fn stored_passkey(device: &DeviceRecord) -> StoredPasskey {
    StoredPasskey {
        id: device.passkey_id.clone(),
        user: device.passkey_user.clone(),
        static_state: device.passkey_static.clone(),
        dynamic_state: device.passkey_dynamic.clone(),
        transports: device.passkey_transports,
    }
}

/// Signs the request object for `device` and opens the passkey challenge for it.
pub async fn display(
    desk: &ApprovalDesk,
    device: &DeviceRecord,
    id: &AuthReqId,
) -> Result<DisplayedRequest, ApprovalError> {
    let request = decidable(desk, device, id).await?;
    let transaction = transaction(desk, &request, &device.subject).await?;
    let hash = transaction_hash(&transaction).map_err(ApprovalError::Internal)?;
    let started = desk
        .relying_party
        .start_assertion(&stored_passkey(device))?;
    let now = desk.now_ms();
    let ttl = 1000 * desk.config.wallet.ceremony_ttl_secs as i64;
    desk.store
        .insert_ceremony(&CeremonyRecord {
            challenge: started.challenge,
            kind: ASSERTION.into(),
            state: started.state,
            invitation_id: None,
            device_id: Some(device.id.clone()),
            auth_req_id: Some(request.id.to_string()),
            transaction_hash: Some(hash.clone()),
            admin_key_id: None,
            expires_at: (now + ttl).min(request.expires_at),
        })
        .await?;
    let claims = RequestObjectClaims {
        iss: desk.issuer.to_string(),
        aud: device.id.clone(),
        iat: now.div_euclid(1000),
        exp: request.expires_at.div_euclid(1000),
        transaction,
        transaction_hash: hash,
        webauthn: started.options,
    };
    let request_object = desk
        .keys
        .active()
        .sign(REQUEST_OBJECT_TYP, &claims)
        .map_err(|e| ApprovalError::Internal(e.to_string()))?;
    Ok(DisplayedRequest { request_object })
}

/// A denial's reason is the human's words, kept with the signed decision: text of at most
/// 500 characters, and only on a denial.
fn check_reason(claims: &ApprovalClaims) -> Result<(), ApprovalError> {
    match &claims.reason {
        None => Ok(()),
        Some(_) if claims.decision == DecisionKind::Approve => Err(ApprovalError::Invalid(
            "approval: a reason goes with a denial".into(),
        )),
        Some(r)
            if r.trim().is_empty() || r.chars().count() > 500 || r.contains(char::is_control) =>
        {
            Err(ApprovalError::Invalid(
                "approval: reason must be 1-500 characters of text".into(),
            ))
        }
        Some(_) => Ok(()),
    }
}

/// Verifies the wallet's signed decision on request `id` and records it.
pub async fn decide(
    desk: &Arc<ApprovalDesk>,
    device: &DeviceRecord,
    id: &AuthReqId,
    approval: &str,
) -> Result<DecisionRecorded, ApprovalError> {
    let claims = signed_claims(desk, device, id, approval)?;
    let request = decidable(desk, device, id).await?;
    let expected = transaction_hash(&transaction(desk, &request, &device.subject).await?)
        .map_err(ApprovalError::Internal)?;
    if claims.transaction_hash != expected {
        return Err(ApprovalError::Rejected(
            "the request changed since it was shown (transaction hash mismatch); nothing was recorded".into(),
        ));
    }

    let challenge = challenge_of(&claims.assertion)?;
    let approved = claims.decision == DecisionKind::Approve;
    let prepared = prepare(desk, &request, approved).await?;
    // The challenge is consumed, the assertion checked and the decision recorded in one
    // savepoint of the group-committed transaction.
    let device = device.clone();
    let (id_owned, approval) = (id.to_owned(), approval.to_owned());
    let assertion = claims.assertion.clone();
    let reason = claims.reason.clone();
    record(desk, request, prepared, move |desk, tx| {
        Box::pin(async move {
            let now = desk.now_ms();
            let ceremony = desk
                .store
                .take_ceremony(tx, &challenge, ASSERTION, now)
                .await?;
            let verified = match ceremony {
                None => Err(ApprovalError::Rejected(
                    "the passkey assertion answers no open challenge (unknown, used or expired)"
                        .into(),
                )),
                Some(c)
                    if c.device_id.as_deref() == Some(device.id.as_str())
                        && c.auth_req_id.as_deref() == Some(id_owned.as_str())
                        && c.transaction_hash.as_deref() == Some(expected.as_str()) =>
                {
                    desk.relying_party
                        .finish_assertion(&c.state, &assertion, &stored_passkey(&device))
                        .map_err(ApprovalError::from)
                }
                Some(_) => Err(ApprovalError::Rejected(
                    "the passkey challenge was issued for another request, device or transaction"
                        .into(),
                )),
            };
            let dynamic = match verified {
                Ok(d) => d,
                Err(e) => return Ok(Checked::Refuse(e)),
            };
            desk.store
                .update_passkey_state(tx, &device.id, &dynamic, now)
                .await?;
            Ok(Checked::Record(OwnedInput::from(&DecisionInput {
                approved,
                decided_by: &device.subject,
                method: ApprovalMethod::Wallet,
                approval_jws: Some(&approval),
                device_jkt: Some(&device.key_jkt),
                reason: reason.as_deref(),
            })))
        })
    })
    .await?;
    Ok(DecisionRecorded {
        request_id: id.to_string(),
        status: if approved { "approved" } else { "denied" }.into(),
    })
}

/// The claims of `approval`, once it is shown to be this device's signature, for request
/// `id`, recent, with a reason only on a denial.
fn signed_claims(
    desk: &ApprovalDesk,
    device: &DeviceRecord,
    id: &str,
    approval: &str,
) -> Result<ApprovalClaims, ApprovalError> {
    let invalid = |m: String| ApprovalError::Invalid(format!("approval: {m}"));
    let jws = UnverifiedJws::parse(approval).map_err(|e| invalid(e.to_string()))?;
    if jws.header.typ.as_deref() != Some(APPROVAL_TYP) {
        return Err(invalid(format!("typ must be {APPROVAL_TYP}")));
    }
    let device_key: Jwk = serde_json::from_str(&device.key_jwk)
        .map_err(|_| ApprovalError::Internal("stored device key".into()))?;
    jws.verify_jwk(&device_key).map_err(|_| {
        ApprovalError::Rejected("the approval is not signed by this device's key".into())
    })?;
    let claims: ApprovalClaims = jws.insecure_claims().map_err(|e| invalid(e.to_string()))?;
    if claims.request_id != id {
        return Err(ApprovalError::Rejected(
            "the approval was signed for another request".into(),
        ));
    }
    let now_s = desk.clock.now_secs();
    let window = desk.config.wallet.ceremony_ttl_secs as i64;
    let skew = desk.config.ciba.clock_skew_secs as i64;
    if claims.iat > now_s + skew || claims.iat < now_s - window - skew {
        return Err(ApprovalError::Rejected(
            "the approval's iat is outside the accepted window".into(),
        ));
    }
    check_reason(&claims)?;
    Ok(claims)
}
