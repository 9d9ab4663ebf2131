//! Humans' decisions on pending requests. Recording a decision is the only way a request
//! becomes approved or denied: developer approvals (`--dev-approvals`) and the wallet's
//! verified approvals ([`wallet`]) both end in [`record`]. In one transaction it records
//! the decision (with the wallet's signed approval as evidence), issues tokens when the
//! client is in push mode, and queues the client notification.
//!
//! Wallets enroll through [`enrollment`]; every wallet call is authenticated by the device
//! key ([`wallet::authenticate`]); passkey ceremonies go through [`webauthn`].

pub mod desk;
pub mod enrollment;
pub mod wallet;
pub mod webauthn;

use std::sync::Arc;

use countersign_shared::DeliveryMode;

use serde_json::json;

pub use crate::store::auth_requests::ApprovalMethod;
pub use desk::ApprovalDesk;

use crate::audit::EventKind;
use crate::credentials::{self, CredentialError, IssueInput};
use crate::ids::{AuthReqId, ClientId};
use crate::notifications::{self, Outcome};
use crate::policy::service::{actions_of, sample_of};
use crate::store::audit::NewAuditRecord;
use crate::store::auth_requests::{AuthRequestRecord, AuthRequestStatus, Decision};
use crate::store::baselines::SampleRecord;
use crate::store::group_commit::Done;
use crate::store::{StoreError, Tx};

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("no such authentication request")]
    NotFound,
    /// The request is no longer pending: decided already, or expired undecided.
    #[error("{}", match .0 {
        Ended::Expired => "the request is no longer pending: it expired before it was decided",
        Ended::Decided => "the request is no longer pending: it was already decided",
    })]
    NotPending(Ended),
    /// The wallet call carried no valid device proof, or the device is unknown or disabled.
    #[error("{0}")]
    Unauthenticated(String),
    /// The device is genuine but may not act on this request (another human's).
    #[error("{0}")]
    Forbidden(String),
    /// Malformed or out-of-range input.
    #[error("{0}")]
    Invalid(String),
    /// Well-formed but does not verify: signatures, transaction hash, passkey ceremony.
    #[error("{0}")]
    Rejected(String),
    /// The enrollment invitation is unknown, expired or already used.
    #[error("{0}")]
    Invitation(String),
    #[error("{0}")]
    Conflict(String),
    /// A named thing (human, device) does not exist.
    #[error("{0}")]
    Missing(String),
    /// Stored state that cannot be read back, or a key that cannot sign.
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Credential(#[from] CredentialError),
}

/// A decision and its evidence.
#[derive(Debug, Clone, Copy)]
pub struct DecisionInput<'a> {
    pub approved: bool,
    pub decided_by: &'a str,
    pub method: ApprovalMethod,
    /// The wallet-signed decision (compact JWS) and its device key's thumbprint.
    pub approval_jws: Option<&'a str>,
    pub device_jkt: Option<&'a str>,
    /// The human's reason for a denial, as signed in the approval.
    pub reason: Option<&'a str>,
}

impl<'a> DecisionInput<'a> {
    fn decision(&self, at_ms: i64) -> Decision<'a> {
        Decision {
            approved: self.approved,
            decided_by: self.decided_by,
            method: self.method.into(),
            at_ms,
            approval_jws: self.approval_jws,
            device_jkt: self.device_jkt,
        }
    }
}

/// Records a decision that needs nothing else in its transaction (developer approvals,
/// and policy approvals of ping and push requests).
pub async fn decide(
    desk: &Arc<ApprovalDesk>,
    auth_req_id: &AuthReqId,
    input: DecisionInput<'_>,
) -> Result<(), ApprovalError> {
    let request = desk
        .store
        .auth_request(auth_req_id)
        .await?
        .ok_or(ApprovalError::NotFound)?;
    let prepared = prepare(desk, &request, input.approved).await?;
    let owned = OwnedInput::from(&input);
    record(desk, request, prepared, move |_, _| {
        Box::pin(async move { Ok(Checked::Record(owned)) })
    })
    .await
}

/// Why a request can no longer be decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Expired,
    Decided,
}

impl Ended {
    /// Why `request` (found not decidable at `now_ms`) is over.
    pub fn of(request: &AuthRequestRecord, now_ms: i64) -> Self {
        if request.status == AuthRequestStatus::Pending && now_ms >= request.expires_at {
            Ended::Expired
        } else {
            Ended::Decided
        }
    }
}

/// The trace event of a human's (or developer's) decision on `request`.
fn decision_event(
    request: &AuthRequestRecord,
    input: &DecisionInput<'_>,
    at_ms: i64,
) -> Option<NewAuditRecord> {
    let kind = match (input.method, input.approved) {
        (ApprovalMethod::Policy, _) => return None, // traced with the policy decision
        (_, true) => EventKind::RequestApproved,
        (_, false) => EventKind::RequestDenied,
    };
    let actor = match input.method {
        ApprovalMethod::Wallet => format!("human:{}", input.decided_by),
        _ => input.decided_by.to_owned(),
    };
    let policies: Option<serde_json::Value> = request
        .policy_refs
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok());
    let mut detail = json!({
        "agent": request.client_id,
        "user": request.subject,
        "approver": input.decided_by,
        "method": input.method.as_str(),
        "device_jkt": input.device_jkt,
        // The evidence itself is on the request (and in the credential); the trace names
        // it by digest.
        "approval_digest": input.approval_jws.map(|j| countersign_jose::b64url_encode(countersign_jose::sha256(j.as_bytes()))),
        "policies": policies,
        // How long the request waited for this human (the console's approval latency).
        "waited_ms": (at_ms - request.created_at).max(0),
    });
    if let Some(reason) = input.reason {
        detail["reason"] = json!(reason);
    }
    Some(NewAuditRecord {
        at: at_ms,
        actor,
        kind: kind.as_str().to_owned(),
        subject: request.id.to_string(),
        detail: detail.to_string(),
    })
}

/// What an approved request adds to its agent's baselines.
fn samples_of(request: &AuthRequestRecord, at_ms: i64) -> Vec<SampleRecord> {
    let details: Option<Vec<serde_json::Value>> = request
        .authorization_details
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok());
    actions_of(details.as_deref())
        .into_iter()
        .map(|(action, detail)| sample_of(&request.client_id, &action, detail, at_ms))
        .collect()
}

/// What recording a decision needs that takes its own writes (a Token Status List entry
/// for push mode's credential may reserve a block): done before the decision's
/// transaction opens, since on SQLite that transaction holds the only writer connection.
pub(crate) struct Prepared {
    client: crate::store::clients::ClientRecord,
    mode: DeliveryMode,
    grant: Option<crate::store::tokens::TokenGrant>,
}

pub(crate) async fn prepare(
    desk: &ApprovalDesk,
    request: &AuthRequestRecord,
    approved: bool,
) -> Result<Prepared, ApprovalError> {
    let now = desk.now_ms();
    if request.status != AuthRequestStatus::Pending || now >= request.expires_at {
        return Err(ApprovalError::NotPending(Ended::of(request, now)));
    }
    let mode = request.delivery_mode;
    let client = desk
        .store
        .client(&request.client_id)
        .await?
        .ok_or(ApprovalError::NotFound)?;
    let grant = match approved && mode == DeliveryMode::Push {
        true => Some(
            // Push mode: bound to the key the request named (or the client registered);
            // bc-authorize refused a push request of a non-bearer client without one.
            credentials::new_grant(
                &desk.issuing(),
                request.dpop_jkt.clone(),
                credentials::validity_secs(&desk.config.tokens, request),
            )
            .await?,
        ),
        false => None,
    };
    Ok(Prepared {
        client,
        mode,
        grant,
    })
}

/// A [`DecisionInput`] that can travel to the group-commit writer.
pub(crate) struct OwnedInput {
    pub approved: bool,
    pub decided_by: String,
    pub method: ApprovalMethod,
    pub approval_jws: Option<String>,
    pub device_jkt: Option<String>,
    pub reason: Option<String>,
}

impl From<&DecisionInput<'_>> for OwnedInput {
    fn from(input: &DecisionInput<'_>) -> Self {
        Self {
            approved: input.approved,
            decided_by: input.decided_by.to_owned(),
            method: input.method,
            approval_jws: input.approval_jws.map(str::to_owned),
            device_jkt: input.device_jkt.map(str::to_owned),
            reason: input.reason.map(str::to_owned),
        }
    }
}

impl OwnedInput {
    fn as_input(&self) -> DecisionInput<'_> {
        DecisionInput {
            approved: self.approved,
            decided_by: &self.decided_by,
            method: self.method,
            approval_jws: self.approval_jws.as_deref(),
            device_jkt: self.device_jkt.as_deref(),
            reason: self.reason.as_deref(),
        }
    }
}

/// What a recorded decision leaves to do once it committed.
struct Recorded {
    client_id: ClientId,
    notifies: bool,
    samples: Vec<SampleRecord>,
    approved: bool,
    method: ApprovalMethod,
}

/// What the checks run in a decision's savepoint before anything is recorded (the
/// wallet's passkey challenge is consumed there) concluded.
pub(crate) enum Checked {
    /// Record this decision.
    Record(OwnedInput),
    /// Refuse, keeping the checks' writes (a failed attempt still uses up its challenge).
    Refuse(ApprovalError),
}

/// Records the decision `precheck` returns on `request` (an `Err` from it rolls its
/// writes back), inside the next group-committed
/// transaction (so the decision's trace event shares that batch's commit and its one lock
/// of the audit chain's head): the decision with its evidence, the credential in push
/// mode, the client notification, the trace and the baseline. Answers once committed.
pub(crate) async fn record<P>(
    desk: &Arc<ApprovalDesk>,
    request: AuthRequestRecord,
    prepared: Prepared,
    precheck: P,
) -> Result<(), ApprovalError>
where
    P: for<'a, 'c> FnOnce(
            &'a ApprovalDesk,
            &'a mut Tx<'c>,
        )
            -> futures_util::future::BoxFuture<'a, Result<Checked, ApprovalError>>
        + Send
        + 'static,
{
    let grant = prepared.grant.clone();
    let work_desk = Arc::clone(desk);
    let recorded = desk
        .store
        .write_with(move |conn| {
            Box::pin(async move {
                let desk = &*work_desk;
                let step = async {
                    let mut tx = Tx::nested(conn).await?;
                    let input = match precheck(desk, &mut tx).await? {
                        Checked::Record(input) => input,
                        Checked::Refuse(e) => {
                            tx.commit().await?;
                            return Err(e);
                        }
                    };
                    let (recorded, events) =
                        record_on(desk, &mut tx, &request, prepared, input.as_input()).await?;
                    tx.commit().await?;
                    Ok::<_, ApprovalError>((recorded, events))
                }
                .await;
                match step {
                    Ok((recorded, events)) => Done {
                        result: Ok(recorded),
                        events,
                    },
                    Err(e) => Done {
                        result: Err(e),
                        events: Vec::new(),
                    },
                }
            })
        })
        .await;
    match recorded {
        Ok(r) => {
            desk.policy.observe(&r.samples);
            if r.notifies {
                desk.outbox_wake.notify_one();
            }
            tracing::info!(
                client_id = %r.client_id,
                approved = r.approved,
                method = r.method.as_str(),
                "authentication request decided"
            );
            Ok(())
        }
        Err(e) => {
            if let Some(grant) = &grant {
                credentials::discard_grant(&desk.status_allocator, grant);
            }
            Err(e)
        }
    }
}

/// The decision's writes inside `tx`; returns what to do after commit and the trace.
async fn record_on(
    desk: &ApprovalDesk,
    tx: &mut Tx<'_>,
    request: &AuthRequestRecord,
    prepared: Prepared,
    input: DecisionInput<'_>,
) -> Result<(Recorded, Vec<NewAuditRecord>), ApprovalError> {
    let now = desk.now_ms();
    let Prepared {
        client,
        mode,
        grant,
    } = prepared;
    let decided = desk
        .store
        .decide_auth_request(
            Some(&mut *tx),
            &request.id,
            &input.decision(now),
            grant.as_ref(),
        )
        .await?;
    let Some(request) = decided else {
        // It was pending and unexpired when prepared: someone decided it since, or its
        // time ran out in between.
        return Err(ApprovalError::NotPending(Ended::of(request, now)));
    };
    let outcome = match (input.approved, &grant) {
        (false, _) => Outcome::Denied,
        (true, None) => Outcome::Ready,
        (true, Some(grant)) => {
            let human = desk
                .store
                .human(credentials::approver_subject(&request))
                .await?
                .ok_or(ApprovalError::NotFound)?;
            let input = IssueInput {
                request: &request,
                human: &human,
                grant,
                for_push: true,
                renewal_of: None,
            };
            Outcome::Approved(credentials::issue(&desk.issuing(), input)?)
        }
    };
    let notifies = mode != DeliveryMode::Poll;
    if notifies {
        notifications::enqueue(&desk.store, desk.now_ms(), tx, &request, &client, outcome).await?;
    }
    let mut events: Vec<NewAuditRecord> =
        decision_event(&request, &input, now).into_iter().collect();
    if let Some(grant) = &grant {
        // Push mode: the credential went out with the decision.
        events.push(credentials::issued_event(&request, grant));
    }
    // A human's approval teaches the baseline what this agent does (a policy approval
    // already did, with its decision).
    let samples = match (input.approved, input.method) {
        (true, ApprovalMethod::Wallet | ApprovalMethod::Developer) => samples_of(&request, now),
        _ => Vec::new(),
    };
    desk.store.insert_samples(tx, &samples).await?;
    Ok((
        Recorded {
            client_id: client.client_id,
            notifies,
            samples,
            approved: input.approved,
            method: input.method,
        },
        events,
    ))
}
