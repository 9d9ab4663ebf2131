//! The CIBA grant at the token endpoint (CIBA Core §10.1, §11).

use countersign_shared::{DeliveryMode, TokenResponse};

use super::CibaError;
use crate::credentials::{self, IssueInput, Issuing};
use crate::ids::AuthReqId;
use crate::store::Store;
use crate::store::auth_requests::{AuthRequestRecord, AuthRequestStatus, DecisionMethod};
use crate::store::clients::ClientRecord;
use crate::store::group_commit::{Claim, WriteSet};

/// Exchanges `auth_req_id` for tokens. Tokens are issued once: of any number of concurrent
/// polls after approval exactly one gets them, and every later poll gets `invalid_grant`.
pub async fn exchange(
    issuing: &Issuing<'_>,
    client: &ClientRecord,
    auth_req_id: &AuthReqId,
    dpop_jkt: Option<String>,
) -> Result<TokenResponse, CibaError> {
    may_poll(client, dpop_jkt.as_deref())?;
    let now = issuing.now_ms;
    let default_ttl = issuing.tokens.access_token_ttl_secs;
    let mut grant = credentials::new_grant(issuing, dpop_jkt, default_ttl).await?;
    // Happy path first: one conditional statement issues the grant, with its trace event,
    // group-committed with other writes. Only when it matched nothing do we read the
    // request to say why.
    let claim = WriteSet {
        claim: Some(Claim {
            auth_req_id: auth_req_id.clone(),
            client_id: client.client_id.clone(),
            grant: grant.clone(),
            now_ms: now,
            event: Some(credentials::issued_event),
        }),
        ..WriteSet::default()
    };
    let Some(request) = issuing.store.write(claim).await? else {
        credentials::discard_grant(issuing.status, &grant);
        let refused = refusal(issuing.store, client, auth_req_id, grant.cnf_jkt, now).await;
        return Err(refused.unwrap_or_else(|failure| failure));
    };
    // The statement set the expiry from the request's policy validity; so does this.
    grant.expires_at =
        grant.issued_at + 1000 * credentials::validity_secs(issuing.tokens, &request) as i64;
    let human = issuing
        .store
        .human(credentials::approver_subject(&request))
        .await?
        .ok_or_else(|| CibaError::InvalidGrant("the user no longer exists".into()))?;
    let input = IssueInput {
        request: &request,
        human: &human,
        grant: &grant,
        for_push: false,
        renewal_of: None,
    };
    Ok(credentials::issue(issuing, input)?)
}

/// Whether `client` may poll with this proof at all: enabled, not push (push clients are
/// sent their tokens), and with a DPoP proof unless registered bearer-only.
fn may_poll(client: &ClientRecord, dpop_jkt: Option<&str>) -> Result<(), CibaError> {
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
    // RFC 9449 §5.2: a client that is not registered bearer-only always binds its
    // credentials, so a token request without a proof is refused before anything else.
    if dpop_jkt.is_none() && !client.bearer_only {
        return Err(CibaError::InvalidDpopProof(
            "a DPoP proof is required: this client's credentials are bound to its key".into(),
        ));
    }
    Ok(())
}

/// Why a claim of `auth_req_id` matched nothing, read from the request (recording a
/// poll when the interval admits one); `Err` only when that reading failed.
async fn refusal(
    store: &Store,
    client: &ClientRecord,
    auth_req_id: &AuthReqId,
    proof_jkt: Option<String>,
    now: i64,
) -> Result<CibaError, CibaError> {
    let unknown = || CibaError::InvalidGrant("unknown auth_req_id".into());
    let request = store.auth_request(auth_req_id).await?.ok_or_else(unknown)?;
    if request.client_id != client.client_id {
        // Same answer as an unknown id: do not confirm another client's request exists.
        return Ok(unknown());
    }
    Ok(match request.status {
        AuthRequestStatus::Issued => CibaError::InvalidGrant("tokens were already issued".into()),
        AuthRequestStatus::Denied => CibaError::AccessDenied("the user denied the request".into()),
        AuthRequestStatus::Pending | AuthRequestStatus::Approved if now >= request.expires_at => {
            CibaError::ExpiredToken
        }
        // RFC 9449 §10: the request named the key its credential is bound to.
        AuthRequestStatus::Approved
            if request.dpop_jkt.is_some() && request.dpop_jkt != proof_jkt =>
        {
            CibaError::InvalidDpopProof(
                "the DPoP proof is not signed by the key the request named (dpop_jkt)".into(),
            )
        }
        AuthRequestStatus::Approved if !standing(store, &request).await? => {
            CibaError::AccessDenied(
                "the user, the approver or the agent is no longer active".into(),
            )
        }
        // Approved but not claimable: this poll came too early (or lost a race to a poll
        // that has just recorded itself, which is too early as well).
        AuthRequestStatus::Approved => {
            store.admit_poll(auth_req_id, now).await?;
            CibaError::SlowDown
        }
        AuthRequestStatus::Pending if store.admit_poll(auth_req_id, now).await? => {
            CibaError::AuthorizationPending
        }
        AuthRequestStatus::Pending => CibaError::SlowDown,
    })
}

/// Whether what `request`'s credential rests on still stands: its human and the human who
/// approved it are active, its agent is not suspended (the claim statement checks the
/// same, `store::auth_requests::STANDING`; this only says why it matched nothing).
async fn standing(store: &Store, request: &AuthRequestRecord) -> Result<bool, CibaError> {
    let active = |h: Option<crate::store::humans::HumanRecord>| h.is_some_and(|h| h.active);
    if !active(store.human(&request.subject).await?) {
        return Ok(false);
    }
    if request.decision_method == Some(DecisionMethod::WALLET)
        && let Some(by) = &request.decided_by
        && !active(store.human(by).await?)
    {
        return Ok(false);
    }
    Ok(store
        .client(&request.client_id)
        .await?
        .is_some_and(|c| c.enabled))
}
