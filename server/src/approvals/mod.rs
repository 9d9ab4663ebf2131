//! Recording a decision on a pending request. This is the only way a request becomes
//! approved or denied: developer approvals call it today, the wallet's verified approvals
//! will call it next. In one transaction it records the decision, issues tokens when the
//! client is in push mode, and queues the client notification.

use countersign_shared::DeliveryMode;

use crate::ciba::notify::{self, Outcome};
use crate::credentials::{self, CredentialError, IssueInput};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::auth_requests::{AuthRequestStatus, Decision};

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("no such authentication request")]
    NotFound,
    #[error("the request is no longer pending (already decided or expired)")]
    NotPending,
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
}

impl ApprovalMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Developer => "dev",
        }
    }
}

pub async fn decide(
    state: &AppState,
    auth_req_id: &str,
    approved: bool,
    decided_by: &str,
    method: ApprovalMethod,
) -> Result<(), ApprovalError> {
    let mut request = state
        .store
        .auth_request(auth_req_id)
        .await?
        .ok_or(ApprovalError::NotFound)?;
    let now = state.now_ms();
    if request.status != AuthRequestStatus::Pending || now >= request.expires_at {
        return Err(ApprovalError::NotPending);
    }
    let client = state
        .store
        .client(&request.client_id)
        .await?
        .ok_or(ApprovalError::NotFound)?;
    let push = client.delivery_mode == DeliveryMode::Push.as_str();
    let decision = Decision {
        approved,
        decided_by,
        method: method.as_str(),
        at_ms: now,
    };

    // A poll-mode decision is a single conditional UPDATE; ping and push also write a
    // notification (and push the tokens), atomically with the decision.
    if DeliveryMode::parse(&client.delivery_mode) == Some(DeliveryMode::Poll) {
        if !state
            .store
            .decide_auth_request(None, auth_req_id, &decision, false)
            .await?
        {
            return Err(ApprovalError::NotPending);
        }
        tracing::info!(client_id = %client.client_id, approved, method = method.as_str(), "authentication request decided");
        return Ok(());
    }
    let mut tx = state.store.begin().await?;
    if !state
        .store
        .decide_auth_request(Some(&mut tx), auth_req_id, &decision, push && approved)
        .await?
    {
        return Err(ApprovalError::NotPending);
    }
    request.decided_at = Some(now);
    request.decided_by = Some(decided_by.to_owned());
    request.decision_method = Some(method.as_str().to_owned());
    let outcome = match (approved, push) {
        (false, _) => Outcome::Denied,
        (true, false) => Outcome::Ready,
        (true, true) => {
            let human = state
                .store
                .human(&request.subject)
                .await?
                .ok_or(ApprovalError::NotFound)?;
            let issued = credentials::issue(
                state,
                IssueInput {
                    request: &request,
                    human: &human,
                    dpop_jkt: None,
                    for_push: true,
                    now_ms: now,
                },
            )?;
            state.store.insert_token(&mut tx, &issued.record).await?;
            Outcome::Approved(issued.response)
        }
    };
    notify::enqueue(state, &mut tx, &request, &client, outcome).await?;
    tx.commit().await?;
    state.outbox_wake.notify_one();
    tracing::info!(client_id = %client.client_id, approved, method = method.as_str(), "authentication request decided");
    Ok(())
}
