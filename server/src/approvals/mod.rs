//! Humans' decisions on pending requests. Recording a decision is the only way a request
//! becomes approved or denied: developer approvals (`--dev-approvals`) and the wallet's
//! verified approvals ([`wallet`]) both end in [`record`]. In one transaction it records
//! the decision (with the wallet's signed approval as evidence), issues tokens when the
//! client is in push mode, and queues the client notification.
//!
//! Wallets enroll through [`enrollment`]; every wallet call is authenticated by the device
//! key ([`wallet::authenticate`]); passkey ceremonies go through [`webauthn`].

pub mod enrollment;
pub mod wallet;
pub mod webauthn;

use countersign_shared::DeliveryMode;

use crate::ciba::notify::{self, Outcome};
use crate::credentials::{self, CredentialError, IssueInput};
use crate::state::AppState;
use crate::store::auth_requests::{AuthRequestRecord, AuthRequestStatus, Decision};
use crate::store::{StoreError, Tx};

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("no such authentication request")]
    NotFound,
    #[error("the request is no longer pending (already decided or expired)")]
    NotPending,
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

/// How the human (or the developer standing in for one) confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalMethod {
    /// `--dev-approvals`: no human confirmation took place, and tokens say so.
    Developer,
    /// The wallet: a passkey assertion with user verification, and the device key's
    /// signature over the transaction.
    Wallet,
}

impl ApprovalMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Developer => "dev",
            Self::Wallet => "passkey+device_key",
        }
    }
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
}

impl<'a> DecisionInput<'a> {
    fn decision(&self, at_ms: i64) -> Decision<'a> {
        Decision {
            approved: self.approved,
            decided_by: self.decided_by,
            method: self.method.as_str(),
            at_ms,
            approval_jws: self.approval_jws,
            device_jkt: self.device_jkt,
        }
    }
}

fn log(client_id: &str, input: &DecisionInput<'_>) {
    tracing::info!(
        client_id,
        approved = input.approved,
        method = input.method.as_str(),
        "authentication request decided"
    );
}

/// Records a decision that needs nothing else in its transaction (developer approvals).
pub async fn decide(
    state: &AppState,
    auth_req_id: &str,
    input: DecisionInput<'_>,
) -> Result<(), ApprovalError> {
    // Most requests are poll mode, whose decision is one conditional UPDATE: try that
    // first. Ping and push also write a notification (and push mode the tokens),
    // atomically with the decision, so they need the request and a transaction.
    if let Some(request) = state
        .store
        .decide_poll_request(auth_req_id, &input.decision(state.now_ms()))
        .await?
    {
        log(&request.client_id, &input);
        return Ok(());
    }
    let request = state
        .store
        .auth_request(auth_req_id)
        .await?
        .ok_or(ApprovalError::NotFound)?;
    let prepared = prepare(state, &request, input.approved).await?;
    let tx = state.store.begin().await?;
    record(state, tx, &request, prepared, input).await
}

/// What recording a decision needs that takes its own writes (a Token Status List entry
/// for push mode's credential may reserve a block): done before the decision's
/// transaction opens, since on SQLite that transaction holds the only writer connection.
pub(crate) struct Prepared {
    client: crate::store::clients::ClientRecord,
    mode: Option<DeliveryMode>,
    grant: Option<crate::store::tokens::TokenGrant>,
}

impl Prepared {
    /// Gives back what was reserved for a decision that will not be recorded.
    pub(crate) fn release(&self, state: &AppState) {
        if let Some(grant) = &self.grant {
            credentials::discard_grant(state, grant);
        }
    }
}

pub(crate) async fn prepare(
    state: &AppState,
    request: &AuthRequestRecord,
    approved: bool,
) -> Result<Prepared, ApprovalError> {
    if request.status != AuthRequestStatus::Pending || state.now_ms() >= request.expires_at {
        return Err(ApprovalError::NotPending);
    }
    let mode = DeliveryMode::parse(&request.delivery_mode);
    let client = state
        .store
        .client(&request.client_id)
        .await?
        .ok_or(ApprovalError::NotFound)?;
    let grant = match approved && mode == Some(DeliveryMode::Push) {
        true => Some(credentials::new_grant(state, state.now_ms(), None).await?),
        false => None,
    };
    Ok(Prepared {
        client,
        mode,
        grant,
    })
}

/// Records the decision on `request` inside `tx` (which may already hold other writes,
/// e.g. the consumed passkey challenge) and commits.
pub(crate) async fn record(
    state: &AppState,
    mut tx: Tx,
    request: &AuthRequestRecord,
    prepared: Prepared,
    input: DecisionInput<'_>,
) -> Result<(), ApprovalError> {
    let now = state.now_ms();
    let Prepared {
        client,
        mode,
        grant,
    } = prepared;
    let decided = state
        .store
        .decide_auth_request(
            Some(&mut tx),
            &request.id,
            &input.decision(now),
            grant.as_ref(),
        )
        .await?;
    let Some(request) = decided else {
        if let Some(grant) = &grant {
            credentials::discard_grant(state, grant);
        }
        return Err(ApprovalError::NotPending);
    };
    let outcome = match (input.approved, &grant) {
        (false, _) => Outcome::Denied,
        (true, None) => Outcome::Ready,
        (true, Some(grant)) => {
            let human = state
                .store
                .human(&request.subject)
                .await?
                .ok_or(ApprovalError::NotFound)?;
            let input = IssueInput {
                request: &request,
                human: &human,
                grant,
                for_push: true,
                renewal_of: None,
            };
            Outcome::Approved(credentials::issue(state, input)?)
        }
    };
    if mode != Some(DeliveryMode::Poll) {
        notify::enqueue(state, &mut tx, &request, &client, outcome).await?;
    }
    tx.commit().await?;
    state.outbox_wake.notify_one();
    log(&client.client_id, &input);
    Ok(())
}
