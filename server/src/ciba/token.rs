//! The CIBA grant at the token endpoint (CIBA Core §10.1, §11).

use countersign_shared::{DeliveryMode, TokenResponse};

use super::CibaError;
use crate::credentials::{self, IssueInput};
use crate::state::AppState;
use crate::store::auth_requests::AuthRequestStatus;
use crate::store::clients::ClientRecord;

/// Exchanges `auth_req_id` for tokens. Tokens are issued once: of any number of concurrent
/// polls after approval exactly one gets them, and every later poll gets `invalid_grant`.
pub async fn exchange(
    state: &AppState,
    client: &ClientRecord,
    auth_req_id: &str,
    dpop_jkt: Option<String>,
) -> Result<TokenResponse, CibaError> {
    if !client.enabled {
        return Err(CibaError::UnauthorizedClient(
            "the client is disabled".into(),
        ));
    }
    if client.delivery_mode == DeliveryMode::Push.as_str() {
        return Err(CibaError::UnauthorizedClient(
            "push-mode clients receive tokens at their notification endpoint".into(),
        ));
    }
    let unknown = || CibaError::InvalidGrant("unknown auth_req_id".into());
    let request = state
        .store
        .auth_request(auth_req_id)
        .await?
        .ok_or_else(unknown)?;
    if request.client_id != client.client_id {
        // Same answer as an unknown id: do not confirm another client's request exists.
        return Err(unknown());
    }
    let now = state.now_ms();
    match request.status {
        AuthRequestStatus::Issued => {
            return Err(CibaError::InvalidGrant("tokens were already issued".into()));
        }
        AuthRequestStatus::Denied => {
            return Err(CibaError::AccessDenied(
                "the user denied the request".into(),
            ));
        }
        AuthRequestStatus::Pending | AuthRequestStatus::Approved if now >= request.expires_at => {
            return Err(CibaError::ExpiredToken);
        }
        AuthRequestStatus::Pending | AuthRequestStatus::Approved => {}
    }
    if request.status == AuthRequestStatus::Pending {
        if !state.store.admit_poll(auth_req_id, now).await? {
            return Err(CibaError::SlowDown);
        }
        return Err(CibaError::AuthorizationPending);
    }

    let human = state
        .store
        .human(&request.subject)
        .await?
        .ok_or_else(|| CibaError::InvalidGrant("the user no longer exists".into()))?;
    let mut tx = state.store.begin().await?;
    if !state
        .store
        .claim_for_issue(&mut tx, auth_req_id, now)
        .await?
    {
        drop(tx);
        // Either this poll came too early or a concurrent poll won the tokens.
        if !state.store.admit_poll(auth_req_id, now).await? {
            return Err(CibaError::SlowDown);
        }
        return Err(CibaError::InvalidGrant("tokens were already issued".into()));
    }
    let issued = credentials::issue(
        state,
        IssueInput {
            request: &request,
            human: &human,
            dpop_jkt,
            for_push: false,
            now_ms: now,
        },
    )?;
    state.store.insert_token(&mut tx, &issued.record).await?;
    tx.commit().await?;
    Ok(issued.response)
}
