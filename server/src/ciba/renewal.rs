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

use super::CibaError;
use crate::audit::{self, EventKind, NewEvent};
use crate::config::TokenConfig;
use crate::credentials::{IssueInput, Issuing, discard_grant, issue, new_grant};
use crate::store::Store;
use crate::store::auth_requests::AuthRequestRecord;
use crate::store::clients::ClientRecord;
use crate::store::humans::HumanRecord;
use crate::store::tokens::{TokenGrant, TokenRecord};

pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// How long after the human's approval credentials for `details` may still be renewed:
/// the shortest window the policy gives any of their types. `Err` names a type the policy
/// does not allow renewing (financial transactions, by default, need a fresh approval
/// every time).
pub fn renewal_window_secs(tokens: &TokenConfig, details: &[Value]) -> Result<u64, String> {
    let windows = &tokens.renewal_windows_secs;
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
    ctx: &Issuing<'_>,
    client: &ClientRecord,
    params: &Map<String, Value>,
    dpop_jkt: Option<String>,
) -> Result<TokenResponse, CibaError> {
    may_renew(client, dpop_jkt.as_deref())?;
    let subject_token = exchange_params(params)?;
    let parent = live_parent(ctx, client, subject_token).await?;
    check_task(params, &parent)?;
    let approved = approved_details(&parent)?;
    check_same_approval(params, &parent, &approved)?;
    let window = renewal_window_secs(ctx.tokens, &approved).map_err(CibaError::InvalidGrant)?;
    let approved_at = parent.decided_at.unwrap_or(parent.issued_at);
    // Whole seconds, like every credential's validity.
    let window_end = (approved_at + 1000 * window as i64).div_euclid(1000) * 1000;
    if window_end <= ctx.now_ms {
        return Err(CibaError::InvalidGrant(
            "the approval's renewal window has closed; ask for a fresh approval".into(),
        ));
    }
    check_key(parent.cnf_jkt.as_deref(), dpop_jkt.as_deref())?;
    let (root, human) = approval_of(ctx.store, &parent).await?;
    let validity = crate::credentials::validity_secs(ctx.tokens, &root);
    // Bound to the parent's key; an unbound parent (a bearer-only client's, or one issued
    // before binding was required) is bound to the key that proved this request, if any.
    let binding = parent.cnf_jkt.clone().or(dpop_jkt);
    let mut grant = new_grant(ctx, binding, validity).await?;
    grant.expires_at = grant.expires_at.min(window_end);
    record_renewal(ctx, client, &parent, &grant).await?;
    let input = IssueInput {
        request: &root,
        human: &human,
        grant: &grant,
        for_push: false,
        renewal_of: Some(&parent.jti),
    };
    let mut response = issue(ctx, input)?;
    response.id_token = None;
    response.issued_token_type = Some(ACCESS_TOKEN_TYPE.to_owned());
    tracing::info!(client_id = %client.client_id, renewal_of = %parent.jti, "credential renewed");
    Ok(response)
}

/// An enabled client, proving its key unless registered bearer-only.
fn may_renew(client: &ClientRecord, dpop_jkt: Option<&str>) -> Result<(), CibaError> {
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
    Ok(())
}

/// The RFC 8693 parameters a renewal accepts; returns the subject token.
fn exchange_params(params: &Map<String, Value>) -> Result<&str, CibaError> {
    let invalid = |m: &str| CibaError::InvalidRequest(m.to_owned());
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
    Ok(subject_token)
}

/// The credential `subject_token` is: signed by this server (any current key), the
/// client's own, neither revoked nor expired.
async fn live_parent(
    ctx: &Issuing<'_>,
    client: &ClientRecord,
    subject_token: &str,
) -> Result<TokenRecord, CibaError> {
    let not_ours =
        || CibaError::InvalidGrant("subject_token is not a live credential of this client".into());
    let jti = UnverifiedJws::parse(subject_token)
        .ok()
        .and_then(|jws| jws.verify_with_set::<Jti>(&ctx.keys.jwks()).ok())
        .and_then(|c| c.jti)
        .ok_or_else(not_ours)?;
    let parent = ctx.store.token(&jti).await?.ok_or_else(not_ours)?;
    if parent.client_id != client.client_id {
        return Err(not_ours());
    }
    if parent.revoked_at.is_some() {
        return Err(CibaError::InvalidGrant(
            "the credential was revoked; it can never be renewed".into(),
        ));
    }
    if parent.expires_at <= ctx.now_ms {
        return Err(CibaError::InvalidGrant(
            "the credential has expired; an expired credential is never renewed, ask for a fresh approval".into(),
        ));
    }
    Ok(parent)
}

/// Renewals stay within the task the approval was for.
fn check_task(params: &Map<String, Value>, parent: &TokenRecord) -> Result<(), CibaError> {
    match (param(params, "task_id"), parent.task_id.as_deref()) {
        (_, None) => Err(CibaError::InvalidGrant(
            "the credential was not approved for a task (task_id); ask for a fresh approval".into(),
        )),
        (None, Some(_)) => Err(CibaError::InvalidRequest("task_id is required".into())),
        (Some(asked), Some(approved)) if asked != approved => Err(CibaError::InvalidGrant(
            "a different task needs a fresh approval".into(),
        )),
        (Some(_), Some(_)) => Ok(()),
    }
}

fn approved_details(parent: &TokenRecord) -> Result<Vec<Value>, CibaError> {
    match &parent.authorization_details {
        Some(text) => serde_json::from_str(text).map_err(|_| {
            CibaError::Credential(crate::credentials::CredentialError::CorruptDetails)
        }),
        None => Ok(Vec::new()),
    }
}

/// What the request asks, if it says, must be exactly what was approved.
fn check_same_approval(
    params: &Map<String, Value>,
    parent: &TokenRecord,
    approved: &[Value],
) -> Result<(), CibaError> {
    if let Some(asked) = param(params, "authorization_details") {
        let asked: Value = serde_json::from_str(asked)
            .map_err(|e| CibaError::InvalidAuthorizationDetails(format!("not valid JSON: {e}")))?;
        if asked.as_array().map(Vec::as_slice) != Some(approved) {
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
    Ok(())
}

/// A key-bound credential is renewed only by its key, and stays bound to it.
fn check_key(bound: Option<&str>, proved: Option<&str>) -> Result<(), CibaError> {
    match (bound, proved) {
        (Some(_), None) => Err(CibaError::InvalidDpopProof(
            "the credential is DPoP-bound: prove its key with a DPoP proof".into(),
        )),
        (Some(bound), Some(proved)) if bound != proved => Err(CibaError::InvalidGrant(
            "the DPoP proof is signed by another key than the credential is bound to".into(),
        )),
        _ => Ok(()),
    }
}

/// The approval the credential rests on, and its human, still active.
async fn approval_of(
    store: &Store,
    parent: &TokenRecord,
) -> Result<(AuthRequestRecord, HumanRecord), CibaError> {
    let root = store
        .auth_request(&parent.approval_id)
        .await?
        .ok_or_else(|| {
            CibaError::InvalidGrant("subject_token is not a live credential of this client".into())
        })?;
    let human = store
        .human(crate::credentials::approver_subject(&root))
        .await?
        .filter(|h| h.active)
        .ok_or_else(|| CibaError::InvalidGrant("the approving human is no longer active".into()))?;
    Ok((root, human))
}

/// Records the renewal (once per parent: a second one finds it renewed) with its trace.
async fn record_renewal(
    ctx: &Issuing<'_>,
    client: &ClientRecord,
    parent: &TokenRecord,
    grant: &TokenGrant,
) -> Result<(), CibaError> {
    let now = ctx.now_ms;
    // A request row like any other: its id is made as theirs are (sorting by time).
    let renewal_id = crate::ids::AuthReqId::mint(now);
    let mut tx = ctx.store.begin().await?;
    let inserted = ctx
        .store
        .insert_renewal(
            &mut tx,
            &parent.jti,
            &client.client_id,
            &renewal_id,
            grant,
            now,
        )
        .await?;
    if !inserted {
        drop(tx);
        discard_grant(ctx.status, grant);
        return Err(CibaError::InvalidGrant(
            "the credential was already renewed (or revoked meanwhile); renew the newest one"
                .into(),
        ));
    }
    let actor = format!("client:{}", client.client_id);
    audit::record(
        ctx.store,
        &mut tx,
        now,
        NewEvent {
            actor: &actor,
            kind: EventKind::CredentialRenewed,
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn parent(task: Option<&str>, cnf: Option<&str>) -> TokenRecord {
        TokenRecord {
            jti: "j1".into(),
            auth_req_id: "r1".into(),
            client_id: "agent".into(),
            subject: "alice".into(),
            scope: "openid".into(),
            token_type: "DPoP".into(),
            cnf_jkt: cnf.map(str::to_owned),
            authorization_details: Some(r#"[{"type":"deploy","env":"prod"}]"#.into()),
            issued_at: 0,
            expires_at: 1,
            revoked_at: None,
            revoked_reason: None,
            status_list: None,
            status_idx: None,
            task_id: task.map(str::to_owned),
            renewal_of: None,
            approval_id: "r1".into(),
            decided_at: None,
        }
    }

    fn params(pairs: &[(&str, &str)]) -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect()
    }

    #[test]
    fn only_a_plain_exchange_of_an_access_token_is_a_renewal() {
        let ok = [
            ("subject_token", "t"),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
        ];
        assert_eq!(exchange_params(&params(&ok)).ok(), Some("t"));
        let with = |extra: (&str, &str)| {
            let mut all = ok.to_vec();
            all.push(extra);
            exchange_params(&params(&all)).map(|_| ())
        };
        assert!(matches!(
            with(("actor_token", "a")),
            Err(CibaError::InvalidRequest(_))
        ));
        assert!(matches!(
            with(("audience", "x")),
            Err(CibaError::InvalidTarget(_))
        ));
        assert!(matches!(
            with((
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:id_token"
            )),
            Err(CibaError::InvalidRequest(_))
        ));
        assert!(matches!(
            exchange_params(&params(&[("subject_token", "t")])),
            Err(CibaError::InvalidRequest(_))
        ));
    }

    #[test]
    fn a_renewal_stays_in_its_task_its_approval_and_its_key() {
        let p = parent(Some("task-1"), Some("k1"));
        assert!(check_task(&params(&[("task_id", "task-1")]), &p).is_ok());
        assert!(matches!(
            check_task(&params(&[("task_id", "task-2")]), &p),
            Err(CibaError::InvalidGrant(_))
        ));
        assert!(matches!(
            check_task(&params(&[]), &p),
            Err(CibaError::InvalidRequest(_))
        ));
        assert!(matches!(
            check_task(&params(&[("task_id", "task-1")]), &parent(None, None)),
            Err(CibaError::InvalidGrant(_))
        ));
        let approved = approved_details(&p).expect("stored details");
        let same = params(&[(
            "authorization_details",
            r#"[{"type":"deploy","env":"prod"}]"#,
        )]);
        assert!(check_same_approval(&same, &p, &approved).is_ok());
        let other = params(&[(
            "authorization_details",
            r#"[{"type":"deploy","env":"dev"}]"#,
        )]);
        assert!(matches!(
            check_same_approval(&other, &p, &approved),
            Err(CibaError::InvalidAuthorizationDetails(_))
        ));
        assert!(matches!(
            check_same_approval(&params(&[("scope", "openid email")]), &p, &approved),
            Err(CibaError::InvalidScope(_))
        ));
        assert!(check_key(Some("k1"), Some("k1")).is_ok());
        assert!(check_key(None, None).is_ok());
        assert!(matches!(
            check_key(Some("k1"), None),
            Err(CibaError::InvalidDpopProof(_))
        ));
        assert!(matches!(
            check_key(Some("k1"), Some("k2")),
            Err(CibaError::InvalidGrant(_))
        ));
    }

    #[test]
    fn the_shortest_window_of_all_approved_types_applies() {
        let mut config = Config::default();
        config
            .tokens
            .renewal_windows_secs
            .extend([("deploy".to_owned(), 3600), ("read".to_owned(), 600)]);
        let d = |t: &str| json!({"type": t});
        assert_eq!(
            renewal_window_secs(&config.tokens, &[d("deploy")]),
            Ok(3600)
        );
        assert_eq!(
            renewal_window_secs(&config.tokens, &[d("deploy"), d("read")]),
            Ok(600)
        );
        assert!(
            renewal_window_secs(&config.tokens, &[d("deploy"), d("purchase_order")])
                .unwrap_err()
                .contains("purchase_order")
        );
        assert!(renewal_window_secs(&config.tokens, &[]).is_err());
    }
}
