//! Issuing what an approval earns: the access token, which is a W3C Verifiable Credential
//! secured as a `vc+jwt` ([`vc`]), with a Token Status List entry for revocation
//! ([`status`]), and the ID token for the approving human. Also introspection (RFC 7662)
//! and revocation (RFC 7009).

mod introspect;
pub mod manage;
pub mod status;
pub mod uses;
pub mod vc;

pub use introspect::{Introspection, introspect, revoke};

use countersign_jose::{JoseError, sha256_half_b64url};
use countersign_shared::TokenResponse;
use countersign_shared::ciba::AUTH_REQ_ID_CLAIM;
use serde_json::{Value, json};

use crate::audit::EventKind;
use crate::config::TokenConfig;
use crate::oidc::discovery::{ACR_DEV, ACR_POLICY, ACR_WALLET};
use crate::oidc::keys::KeyRing;
use crate::store::auth_requests::{ApprovalMethod, AuthRequestRecord, DecisionMethod};
use crate::store::humans::HumanRecord;
use crate::store::tokens::TokenGrant;
use crate::store::{Store, StoreError};
use status::StatusAllocator;

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("signing failed: {0}")]
    Signing(#[from] JoseError),
    #[error("stored authorization_details are not valid JSON")]
    CorruptDetails,
    #[error("encoding failed: {0}")]
    Encoding(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What issuing (and introspecting) credentials works with, at one moment.
#[derive(Clone, Copy)]
pub struct Issuing<'a> {
    pub issuer: &'a str,
    pub keys: &'a KeyRing,
    pub store: &'a Store,
    pub tokens: &'a TokenConfig,
    /// `policy.environment`, carried in every credential.
    pub environment: &'a str,
    pub status: &'a StatusAllocator,
    pub now_ms: i64,
}

/// What to issue for one approved request.
pub struct IssueInput<'a> {
    pub request: &'a AuthRequestRecord,
    pub human: &'a HumanRecord,
    /// The token's identity, already recorded with the request.
    pub grant: &'a TokenGrant,
    /// Push mode puts the `auth_req_id` into the ID token (CIBA Core §10.3.1).
    pub for_push: bool,
    /// For a renewal: the `jti` of the credential it renews.
    pub renewal_of: Option<&'a str>,
}

/// Chooses the identity, lifetime and status list entry of the next credential. It is
/// recorded in the same statement that marks the request issued, before anything is
/// signed, so a credential that exists is always one the server knows about.
pub async fn new_grant(
    ctx: &Issuing<'_>,
    dpop_jkt: Option<String>,
    ttl_secs: u64,
) -> Result<TokenGrant, StoreError> {
    let now_ms = ctx.now_ms;
    let ttl_ms = 1000 * ttl_secs as i64;
    let (status_list, status_idx) = ctx.status.allocate(ctx.store, now_ms).await?;
    Ok(TokenGrant {
        jti: crate::ids::sortable("", now_ms, 16),
        token_type: if dpop_jkt.is_some() { "DPoP" } else { "Bearer" }.to_owned(),
        cnf_jkt: dpop_jkt,
        // Whole seconds, so `exp` in the JWT and the stored expiry agree exactly.
        issued_at: now_ms.div_euclid(1000) * 1000,
        expires_at: now_ms.div_euclid(1000) * 1000 + ttl_ms,
        status_list,
        status_idx,
    })
}

/// How long `request`'s credential is valid: what its policy set (`@validity`, bounded by
/// `policy.max_validity_secs` when the policy was compiled), else
/// `tokens.access_token_ttl_secs`. The token endpoint's claim computes the same in SQL.
pub fn validity_secs(tokens: &TokenConfig, request: &AuthRequestRecord) -> u64 {
    request
        .validity_secs
        .and_then(|v| u64::try_from(v).ok())
        .filter(|v| *v > 0)
        .unwrap_or(tokens.access_token_ttl_secs)
}

/// The human whose approval a request's credential rests on: the wallet's human who
/// decided, else the human the request named (developer and policy approvals).
pub fn approver_subject(request: &AuthRequestRecord) -> &str {
    match (request.decision_method, &request.decided_by) {
        (Some(DecisionMethod::WALLET), Some(by)) => by,
        _ => &request.subject,
    }
}

/// The trace event of issuing `grant` for `request`.
pub fn issued_event(
    request: &AuthRequestRecord,
    grant: &TokenGrant,
) -> crate::store::audit::NewAuditRecord {
    crate::store::audit::NewAuditRecord {
        at: grant.issued_at,
        actor: format!("client:{}", request.client_id),
        kind: EventKind::CredentialIssued.as_str().to_owned(),
        subject: grant.jti.clone(),
        detail: json!({
            "request": request.id,
            "agent": request.client_id,
            "user": request.subject,
            "approver": approver_subject(request),
            "action": request.action,
            "resource": request.resource,
            "token_type": grant.token_type,
            "cnf_jkt": grant.cnf_jkt,
            "validity_secs": request.validity_secs,
            "max_uses": vc::max_uses_claim(request.max_uses),
            "status": {"list": grant.status_list, "idx": grant.status_idx},
        })
        .to_string(),
    }
}

/// Returns the status entry of a grant that was not issued after all.
pub fn discard_grant(status: &StatusAllocator, grant: &TokenGrant) {
    status.give_back((grant.status_list, grant.status_idx));
}

/// How the decision was made, as `acr` / `amr` claims.
fn authentication_context(method: Option<DecisionMethod>) -> (String, Vec<String>) {
    match method {
        // No one authenticated: a policy allowed the action.
        Some(DecisionMethod::Approval(ApprovalMethod::Policy)) => {
            (ACR_POLICY.to_owned(), vec!["policy".to_owned()])
        }
        Some(wallet @ DecisionMethod::WALLET) => (
            ACR_WALLET.to_owned(),
            wallet.as_str().split('+').map(str::to_owned).collect(),
        ),
        // Developer approvals are labelled as such and never look like a human's (no
        // other method approves, so none other is issued).
        _ => (ACR_DEV.to_owned(), vec!["dev".to_owned()]),
    }
}

pub fn issue(ctx: &Issuing<'_>, input: IssueInput<'_>) -> Result<TokenResponse, CredentialError> {
    let key = ctx.keys.active();
    let req = input.request;
    let grant = input.grant;
    let now_s = grant.issued_at.div_euclid(1000);
    let exp = grant.expires_at.div_euclid(1000);
    let details: Option<Value> = match &req.authorization_details {
        Some(text) => {
            Some(serde_json::from_str(text).map_err(|_| CredentialError::CorruptDetails)?)
        }
        None => None,
    };
    let auth_time = req.decided_at.unwrap_or(grant.issued_at).div_euclid(1000);
    let (acr, amr) = authentication_context(req.decision_method);

    let facts = vc::CredentialFacts {
        issuer: ctx.issuer,
        request: req,
        approver: input.human,
        grant,
        authorization_details: details.as_ref(),
        status_uri: status::list_uri(ctx.issuer, grant.status_list),
        acr: &acr,
        amr: &amr,
        renewal_of: input.renewal_of,
        environment: ctx.environment,
    };
    let access_token = key.sign("vc+jwt", &vc::credential_claims(&facts))?;

    let mut id = json!({
        "iss": ctx.issuer,
        // The human who authenticated: the approver (the named user unless routed).
        "sub": input.human.subject,
        "aud": req.client_id,
        "iat": now_s,
        "exp": now_s + ctx.tokens.id_token_ttl_secs as i64,
        "auth_time": auth_time,
        "acr": acr,
        "amr": amr,
        "at_hash": sha256_half_b64url(&access_token),
    });
    let scopes: Vec<&str> = req.scope.split(' ').collect();
    if scopes.contains(&"profile") {
        id["name"] = json!(input.human.name);
    }
    if scopes.contains(&"email") {
        id["email"] = json!(input.human.email);
    }
    if input.for_push {
        id[AUTH_REQ_ID_CLAIM] = json!(req.id);
    }
    let id_token = key.sign("JWT", &id)?;

    Ok(TokenResponse {
        access_token,
        token_type: grant.token_type.clone(),
        expires_in: u64::try_from(exp - now_s).unwrap_or_default(),
        id_token: Some(id_token),
        issued_token_type: None,
        scope: Some(req.scope.clone()),
        authorization_details: details,
    })
}
