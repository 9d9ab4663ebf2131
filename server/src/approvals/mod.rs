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
    let now = state.now_ms();
    let decision = Decision {
        approved,
        decided_by,
        method: method.as_str(),
        at_ms: now,
    };
    let log = |client_id: &str| {
        tracing::info!(
            client_id,
            approved,
            method = method.as_str(),
            "authentication request decided"
        );
    };

    // Most requests are poll mode, whose decision is one conditional UPDATE: try that
    // first. Ping and push also write a notification (and push mode the tokens),
    // atomically with the decision, so they need the request and a transaction.
    if let Some(request) = state
        .store
        .decide_poll_request(auth_req_id, &decision)
        .await?
    {
        log(&request.client_id);
        return Ok(());
    }
    let request = state
        .store
        .auth_request(auth_req_id)
        .await?
        .ok_or(ApprovalError::NotFound)?;
    let mode = DeliveryMode::parse(&request.delivery_mode);
    if request.status != AuthRequestStatus::Pending
        || now >= request.expires_at
        || mode == Some(DeliveryMode::Poll)
    {
        return Err(ApprovalError::NotPending);
    }
    let client = state
        .store
        .client(&request.client_id)
        .await?
        .ok_or(ApprovalError::NotFound)?;
    let grant = match approved && mode == Some(DeliveryMode::Push) {
        true => Some(credentials::new_grant(state, now, None).await?),
        false => None,
    };
    let mut tx = state.store.begin().await?;
    let decided = state
        .store
        .decide_auth_request(Some(&mut tx), auth_req_id, &decision, grant.as_ref())
        .await?;
    let Some(request) = decided else {
        if let Some(grant) = &grant {
            credentials::discard_grant(state, grant);
        }
        return Err(ApprovalError::NotPending);
    };
    let outcome = match (approved, &grant) {
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
    notify::enqueue(state, &mut tx, &request, &client, outcome).await?;
    tx.commit().await?;
    state.outbox_wake.notify_one();
    log(&client.client_id);
    Ok(())
}
