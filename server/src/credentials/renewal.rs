//! Renewal: an agent still working on the task a human approved exchanges its live
//! credential for a fresh one, without asking the human again, when policy allows it for
//! that kind of action. Spoken as an OAuth 2.0 Token Exchange (RFC 8693) at the token
//! endpoint:
//!
//! ```text
//! grant_type=urn:ietf:params:oauth:grant-type:token-exchange
//! subject_token=<the live credential>
//! subject_token_type=urn:ietf:params:oauth:token-type:access_token
//! task_id=<the task the credential was approved for>
//! [authorization_details=<exactly the approved details>]
//! ```
//!
//! with a DPoP proof by the key the credential is bound to. A renewal is granted only
//! when: the credential is this client's, live (not revoked, not expired) and never
//! renewed before; the request names the same task and (if it names any) the same
//! `authorization_details`; the policy gives every approved action type a renewal window,
//! and the human's approval is younger than the shortest; the human is still active. The
//! renewed credential ends no later than that window. Anything else needs a fresh
//! approval (a new backchannel request).

use countersign_jose::UnverifiedJws;
use countersign_shared::TokenResponse;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{IssueInput, discard_grant, issue, new_grant};
use crate::audit::{self, NewEvent, kinds};
use crate::ciba::CibaError;
use crate::config::Config;
use crate::state::AppState;
use crate::store::clients::ClientRecord;

pub const TOKEN_EXCHANGE_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// How long after the human's approval credentials for `details` may still be renewed:
/// the shortest window the policy gives any of their types. `Err` names a type the policy
/// does not allow renewing (financial transactions, by default, need a fresh approval
/// every time).
pub fn renewal_window_secs(config: &Config, details: &[Value]) -> Result<u64, String> {
    let windows = &config.tokens.renewal_windows_secs;
    let mut shortest: Option<u64> = None;
    for entry in details {
        let kind = entry.get("type").and_then(Value::as_str).unwrap_or("");
        let window = windows
            .get(kind)
            .copied()
            .ok_or_else(|| format!("policy requires a fresh approval for every {kind:?} action"))?;
        shortest = Some(shortest.map_or(window, |s| s.min(window)));
    }
    shortest.ok_or_else(|| "only credentials for authorization_details can be renewed".into())
}

#[derive(Deserialize)]
struct Jti {
    jti: Option<String>,
}

fn param<'a>(params: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    params
        .get(name)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
}

/// Handles a token-exchange request of an authenticated `client`. `dpop_jkt` is the
/// thumbprint of the key that signed the request's (already verified) DPoP proof.
pub async fn renew(
    state: &AppState,
    client: &ClientRecord,
    params: &Map<String, Value>,
    dpop_jkt: Option<String>,
) -> Result<TokenResponse, CibaError> {
    let invalid = |m: &str| CibaError::InvalidRequest(m.to_owned());
    if !client.enabled {
        return Err(CibaError::UnauthorizedClient(
            "the client is disabled".into(),
        ));
    }
    if dpop_jkt.is_none() && !client.bearer_only {
        return Err(CibaError::InvalidDpopProof(
            "a DPoP proof is required: this client's credentials are bound to its key".into(),
        ));
    }
    let subject_token =
        param(params, "subject_token").ok_or_else(|| invalid("subject_token is required"))?;
    match param(params, "subject_token_type") {
        Some(ACCESS_TOKEN_TYPE) => {}
        Some(_) => {
            return Err(invalid(
                "subject_token_type must be urn:ietf:params:oauth:token-type:access_token",
            ));
        }
        None => return Err(invalid("subject_token_type is required")),
    }
    if param(params, "requested_token_type").is_some_and(|t| t != ACCESS_TOKEN_TYPE) {
        return Err(invalid(
            "only urn:ietf:params:oauth:token-type:access_token can be requested",
        ));
    }
    if param(params, "actor_token").is_some() || param(params, "actor_token_type").is_some() {
        return Err(invalid("delegation (actor_token) is not supported"));
    }
    if param(params, "resource").is_some() || param(params, "audience").is_some() {
        return Err(CibaError::InvalidTarget(
            "a renewed credential has the audience of the one it renews".into(),
        ));
    }

    // The subject token must be a credential this server signed (any current key).
    let not_ours =
        || CibaError::InvalidGrant("subject_token is not a live credential of this client".into());
    let jti = UnverifiedJws::parse(subject_token)
        .ok()
        .and_then(|jws| jws.verify_with_set::<Jti>(&state.keys.jwks()).ok())
        .and_then(|c| c.jti)
        .ok_or_else(not_ours)?;
    let parent = state.store.token(&jti).await?.ok_or_else(not_ours)?;
    if parent.client_id != client.client_id {
        return Err(not_ours());
    }
    let now = state.now_ms();
    if parent.revoked_at.is_some() {
        return Err(CibaError::InvalidGrant(
            "the credential was revoked; it can never be renewed".into(),
        ));
    }
    if parent.expires_at <= now {
        return Err(CibaError::InvalidGrant(
            "the credential has expired; an expired credential is never renewed, ask for a fresh approval".into(),
        ));
    }

    match (param(params, "task_id"), parent.task_id.as_deref()) {
        (_, None) => {
            return Err(CibaError::InvalidGrant(
                "the credential was not approved for a task (task_id); ask for a fresh approval"
                    .into(),
            ));
        }
        (None, Some(_)) => return Err(invalid("task_id is required")),
        (Some(asked), Some(approved)) if asked != approved => {
            return Err(CibaError::InvalidGrant(
                "a different task needs a fresh approval".into(),
            ));
        }
        (Some(_), Some(_)) => {}
    }
    let approved: Vec<Value> = match &parent.authorization_details {
        Some(text) => serde_json::from_str(text)
            .map_err(|_| CibaError::Credential(super::CredentialError::CorruptDetails))?,
        None => Vec::new(),
    };
    if let Some(asked) = param(params, "authorization_details") {
        let asked: Value = serde_json::from_str(asked)
            .map_err(|e| CibaError::InvalidAuthorizationDetails(format!("not valid JSON: {e}")))?;
        if asked != Value::Array(approved.clone()) {
            return Err(CibaError::InvalidAuthorizationDetails(
                "a renewal covers exactly the approved authorization_details; a different action needs a fresh approval".into(),
            ));
        }
    }
    if let Some(scope) = param(params, "scope")
        && scope != parent.scope
    {
        return Err(CibaError::InvalidScope(
            "a renewal keeps the approved scope".into(),
        ));
    }

    let window = renewal_window_secs(&state.config, &approved).map_err(CibaError::InvalidGrant)?;
    let approved_at = parent.decided_at.unwrap_or(parent.issued_at);
    // Whole seconds, like every credential's validity.
    let window_end = (approved_at + 1000 * window as i64).div_euclid(1000) * 1000;
    if window_end <= now {
        return Err(CibaError::InvalidGrant(
            "the approval's renewal window has closed; ask for a fresh approval".into(),
        ));
    }

    // A key-bound credential is renewed only by its key, and stays bound to it.
    match (&parent.cnf_jkt, &dpop_jkt) {
        (Some(_), None) => {
            return Err(CibaError::InvalidDpopProof(
                "the credential is DPoP-bound: prove its key with a DPoP proof".into(),
            ));
        }
        (Some(bound), Some(proved)) if bound != proved => {
            return Err(CibaError::InvalidGrant(
                "the DPoP proof is signed by another key than the credential is bound to".into(),
            ));
        }
        _ => {}
    }

    let root = state
        .store
        .auth_request(&parent.approval_id)
        .await?
        .ok_or_else(not_ours)?;
    let human = state
        .store
        .human(super::approver_subject(&root))
        .await?
        .filter(|h| h.active)
        .ok_or_else(|| CibaError::InvalidGrant("the approving human is no longer active".into()))?;

    let validity = super::validity_secs(state, &root);
    // Bound to the parent's key; an unbound parent (a bearer-only client's, or one issued
    // before binding was required) is bound to the key that proved this request, if any.
    let binding = parent.cnf_jkt.clone().or(dpop_jkt);
    let mut grant = new_grant(state, now, binding, validity).await?;
    grant.expires_at = grant.expires_at.min(window_end);
    let renewal_id = countersign_jose::random_b64url(32);
    let mut tx = state.store.begin().await?;
    let inserted = state
        .store
        .insert_renewal(
            &mut tx,
            &parent.jti,
            &client.client_id,
            &renewal_id,
            &grant,
            now,
        )
        .await?;
    if !inserted {
        drop(tx);
        discard_grant(state, &grant);
        return Err(CibaError::InvalidGrant(
            "the credential was already renewed (or revoked meanwhile); renew the newest one"
                .into(),
        ));
    }
    let actor = format!("client:{}", client.client_id);
    audit::record(
        &state.store,
        &mut tx,
        now,
        NewEvent {
            actor: &actor,
            kind: kinds::CREDENTIAL_RENEWED,
            subject: &grant.jti,
            detail: json!({
                "renewal_of": parent.jti,
                "approval": parent.approval_id,
                "task_id": parent.task_id,
                "expires_at": grant.expires_at.div_euclid(1000),
            }),
        },
    )
    .await?;
    tx.commit().await?;

    let input = IssueInput {
        request: &root,
        human: &human,
        grant: &grant,
        for_push: false,
        renewal_of: Some(&parent.jti),
    };
    let mut response = issue(state, input)?;
    response.id_token = None;
    response.issued_token_type = Some(ACCESS_TOKEN_TYPE.to_owned());
    tracing::info!(client_id = %client.client_id, renewal_of = %parent.jti, "credential renewed");
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shortest_window_of_all_approved_types_applies() {
        let mut config = Config::default();
        config
            .tokens
            .renewal_windows_secs
            .extend([("deploy".to_owned(), 3600), ("read".to_owned(), 600)]);
        let d = |t: &str| json!({"type": t});
        assert_eq!(renewal_window_secs(&config, &[d("deploy")]), Ok(3600));
        assert_eq!(
            renewal_window_secs(&config, &[d("deploy"), d("read")]),
            Ok(600)
        );
        assert!(
            renewal_window_secs(&config, &[d("deploy"), d("purchase_order")])
                .unwrap_err()
                .contains("purchase_order")
        );
        assert!(renewal_window_secs(&config, &[]).is_err());
    }
}
