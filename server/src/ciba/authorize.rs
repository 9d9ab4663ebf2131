//! The backchannel authentication endpoint's logic (CIBA Core §7): validate, identify the
//! user, and record a pending request.

use std::sync::Arc;

use countersign_jose::UnverifiedJws;
use countersign_shared::{BackchannelAuthResponse, DeliveryMode};
use serde_json::{Map, Value};

use tokio::sync::Notify;

use super::CibaError;
use super::details::DetailSchemas;
use super::request::{AUTHENTICATION_PARAMS, BackchannelRequest};
use crate::approvals::{ApprovalDesk, ApprovalMethod, DecisionInput};
use crate::clock::Clock;
use crate::config::Config;
use crate::ids::{AuthReqId, Subject};
use crate::limits::{Limits, RetryAfter};
use crate::oidc::client_auth::client_jwks;
use crate::oidc::discovery::BASE_SCOPES;
use crate::oidc::jwt::{RegisteredClaims, check_times};
use crate::oidc::keys::KeyRing;
use crate::policy::UseLimit;
use crate::policy::service::PolicyEngine;
use crate::policy::{self, Outcome, service::Attempt};
use crate::secrets::verify_secret;
use crate::store::Store;
use crate::store::audit::NewAuditRecord;
use crate::store::auth_requests::{AuthRequestRecord, AuthRequestStatus, MaxUses};
use crate::store::clients::ClientRecord;
use crate::store::group_commit::WriteSet;
use crate::store::humans::HumanRecord;

/// Longest signed request lifetime FAPI-CIBA allows (`exp - nbf`).
const MAX_REQUEST_OBJECT_LIFETIME_SECS: f64 = 3600.0;
/// Longest `client_notification_token` accepted (CIBA Core §7.1 sets no bound; 1 KiB is
/// far above any real token and keeps rows small).
const MAX_NOTIFICATION_TOKEN_LEN: usize = 1024;

/// What the HTTP edge knows of the caller's connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Peer {
    /// The client's address (behind a trusted proxy, from `X-Forwarded-For`).
    pub source_ip: Option<std::net::IpAddr>,
}

/// What a backchannel authentication request works with.
pub struct Authorizing<'a> {
    /// `ciba` (expiries, scopes, binding messages, skew) and `rate_limits`.
    pub config: &'a Config,
    pub issuer: &'a str,
    pub store: &'a Store,
    pub clock: &'a dyn Clock,
    /// Verifies `id_token_hint` and `login_hint_token`.
    pub keys: &'a KeyRing,
    pub policy: &'a PolicyEngine,
    pub details: &'a DetailSchemas,
    pub limits: &'a Limits,
    /// Records policy approvals of ping and push requests at once.
    pub approvals: &'a Arc<ApprovalDesk>,
    /// The push worker's, rung when a request alerted its approvers.
    pub push_wake: &'a Notify,
}

impl Authorizing<'_> {
    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}

/// A request that passed the protocol's checks, with what its client's registration adds.
struct Validated {
    req: BackchannelRequest,
    mode: DeliveryMode,
    /// The key the credential will be bound to.
    dpop_jkt: Option<String>,
    /// `authorization_details` as stored (JSON text), each entry checked.
    details: Option<String>,
}

/// Handles an authenticated client's backchannel authentication request. `params` holds
/// the request parameters (client authentication parameters already removed).
pub async fn backchannel_authorize(
    deps: &Authorizing<'_>,
    client: &ClientRecord,
    params: Map<String, Value>,
    peer: &Peer,
) -> Result<BackchannelAuthResponse, CibaError> {
    if !client.enabled {
        return Err(CibaError::UnauthorizedClient(
            "the client is disabled".into(),
        ));
    }
    let params = request_params(deps, client, params).await?;
    let valid = validate(deps, client, &params)?;
    let human = identify(deps, client, &valid.req).await?;
    let ciba = &deps.config.ciba;
    let lifetime = valid
        .req
        .requested_expiry
        .map_or(ciba.default_expiry_secs, |r| r.min(ciba.max_expiry_secs));
    let now = deps.now_ms();
    let scope = valid.req.scopes.join(" ");
    let attempt = Attempt {
        client,
        user: &human,
        details: valid.req.authorization_details.as_deref(),
        resource: None,
        scope: &scope,
        binding_message: valid.req.binding_message.as_deref(),
        task_id: valid.req.task_id.as_deref(),
        source_ip: peer.source_ip,
        prompt_labels: &valid.req.prompt_labels,
        principal: principal_of(deps, valid.req.authorization_details.as_deref()),
    };
    let decided = policy::service::decide(deps.policy, deps.store, &attempt, now).await?;
    let id = AuthReqId::mint(now);
    let event = policy::trace::decision_event(
        &decided,
        &format!("client:{}", client.client_id),
        &id,
        valid.req.authorization_details.as_deref(),
        now,
    );
    let (mode, outcome) = (valid.mode, decided.decision.outcome);
    let record = AuthRequestRecord {
        id,
        created_at: now,
        expires_at: now + (lifetime as i64) * 1000,
        interval_secs: ciba.poll_interval_secs as i64,
        ..pending_record(client, &human, valid, &decided, scope)
    };
    let auth_req_id = settle(deps, client, record, mode, event, &decided).await?;
    if outcome == Outcome::Allow && mode != DeliveryMode::Poll {
        decide_at_once(deps, &auth_req_id).await?;
    }
    tracing::debug!(client_id = %client.client_id, subject = %human.subject, outcome = outcome.as_str(), "backchannel authentication request accepted");
    Ok(BackchannelAuthResponse {
        auth_req_id: auth_req_id.into_string(),
        expires_in: lifetime,
        interval: (mode != DeliveryMode::Push).then_some(ciba.poll_interval_secs),
    })
}

/// The request's parameters: the signed request object's claims when one is sent (and
/// nothing it replaces beside it), else the form's.
async fn request_params(
    deps: &Authorizing<'_>,
    client: &ClientRecord,
    params: Map<String, Value>,
) -> Result<Map<String, Value>, CibaError> {
    match params.get("request") {
        Some(Value::String(request)) => {
            if let Some(extra) = AUTHENTICATION_PARAMS
                .iter()
                .find(|p| params.contains_key(**p))
            {
                return Err(CibaError::InvalidRequest(format!(
                    "{extra} must be inside the signed request object, not beside it"
                )));
            }
            signed_request_params(deps, client, request).await
        }
        Some(_) => Err(CibaError::InvalidRequest("request must be a JWT".into())),
        None if client.require_signed_request => Err(CibaError::InvalidRequest(
            "this client must send a signed request object".into(),
        )),
        None => Ok(params),
    }
}

/// Reads the parameters and checks them against the protocol and the client's
/// registration: scopes, delivery mode, notification token, key binding, binding message,
/// `authorization_details`.
fn validate(
    deps: &Authorizing<'_>,
    client: &ClientRecord,
    params: &Map<String, Value>,
) -> Result<Validated, CibaError> {
    let req = BackchannelRequest::from_params(params)?;
    check_scopes(deps, &req.scopes)?;
    let mode = DeliveryMode::parse(&client.delivery_mode).ok_or_else(|| {
        CibaError::UnauthorizedClient("the client has no valid delivery mode".into())
    })?;
    check_notification_token(mode, req.client_notification_token.as_deref())?;
    // The credential is bound to the agent's key (RFC 9449): in push mode it is issued
    // with the approval, so the key must be known now.
    let dpop_jkt = req.dpop_jkt.clone().or_else(|| client.dpop_jkt.clone());
    if mode == DeliveryMode::Push && dpop_jkt.is_none() && !client.bearer_only {
        return Err(CibaError::InvalidRequest(
            "push-mode credentials are bound to the agent's key: send dpop_jkt (RFC 9449 §10) or register the agent's DPoP key".into(),
        ));
    }
    if let Some(message) = &req.binding_message {
        check_binding_message(message, deps.config.ciba.binding_message_max_chars)?;
    }
    let details = match &req.authorization_details {
        Some(items) => Some(deps.details.check(items)?),
        None => None,
    };
    Ok(Validated {
        req,
        mode,
        dpop_jkt,
        details,
    })
}

/// Ping and push clients are called back: they must send the bearer token for it
/// (CIBA Core §7.1), of a sane length.
fn check_notification_token(mode: DeliveryMode, token: Option<&str>) -> Result<(), CibaError> {
    match token {
        _ if mode == DeliveryMode::Poll => Ok(()),
        None => Err(CibaError::InvalidRequest(
            "client_notification_token is required in ping and push modes".into(),
        )),
        Some(t) if t.len() > MAX_NOTIFICATION_TOKEN_LEN => Err(CibaError::InvalidRequest(
            "client_notification_token is too long".into(),
        )),
        Some(_) => Ok(()),
    }
}

/// The human the request names, active, with the right user code when one is needed
/// (wrong codes are counted per human: a few, then one guess a minute).
async fn identify(
    deps: &Authorizing<'_>,
    client: &ClientRecord,
    req: &BackchannelRequest,
) -> Result<HumanRecord, CibaError> {
    let now_s = deps.clock.now_secs();
    let human =
        super::hint::resolve_user(deps.store, deps.keys, deps.issuer, now_s, client, &req.hint)
            .await?;
    if !human.active {
        return Err(CibaError::AccessDenied("the user is not active".into()));
    }
    let guesses = &deps.limits.user_code_failures;
    if let Err(RetryAfter(secs)) = guesses.allows(&human.subject, deps.now_ms()) {
        return Err(CibaError::RateLimited {
            retry_after: secs,
            reason: format!("too many wrong user codes for this user; retry in {secs} s"),
        });
    }
    if let Err(e) = check_user_code(client, &human, req.user_code.as_deref()) {
        if matches!(e, CibaError::InvalidUserCode) {
            let _ = guesses.check(&human.subject, deps.now_ms());
        }
        return Err(e);
    }
    Ok(human)
}

/// The request as stored, pending until decided, with its policy decision (its id and
/// times are the caller's).
fn pending_record(
    client: &ClientRecord,
    human: &HumanRecord,
    valid: Validated,
    decided: &policy::service::Decided,
    scope: String,
) -> AuthRequestRecord {
    let d = &decided.decision;
    AuthRequestRecord {
        client_id: client.client_id.clone(),
        subject: human.subject.clone(),
        scope,
        binding_message: valid.req.binding_message,
        acr_values: valid.req.acr_values,
        authorization_details: valid.details,
        delivery_mode: valid.mode,
        notification_token: valid.req.client_notification_token,
        status: AuthRequestStatus::Pending,
        task_id: valid.req.task_id,
        action: Some(decided.action.clone()),
        // The tool the action is on, when the request names a known one.
        resource: (decided.resource != "unknown").then(|| decided.resource.clone()),
        policy_outcome: Some(d.outcome),
        policy_refs: Some(json_text(&d.policies)),
        policy_reasons: Some(json_text(&d.reasons)),
        risk_signals: Some(json_text(&d.risk_signals)),
        validity_secs: d.validity_secs.map(|v| v as i64),
        max_uses: MaxUses(d.max_uses.unwrap_or(UseLimit::DEFAULT).as_stored()),
        dpop_jkt: valid.dpop_jkt,
        ..AuthRequestRecord::default()
    }
}

/// Writes the request with its trace as the decision settles it: refused (and recorded,
/// so history and dry-runs see it), approved at once (poll: the first token request gets
/// the credential), or waiting for its approvers, whose devices are alerted through the
/// push outbox written in the same transaction. Returns the request's id.
async fn settle(
    deps: &Authorizing<'_>,
    client: &ClientRecord,
    mut record: AuthRequestRecord,
    mode: DeliveryMode,
    event: NewAuditRecord,
    decided: &policy::service::Decided,
) -> Result<AuthReqId, CibaError> {
    let d = &decided.decision;
    let now = record.created_at;
    let mut set = WriteSet {
        events: vec![event],
        session: decided.session.clone(),
        samples: decided.samples.clone(),
        ..WriteSet::default()
    };
    match (d.outcome, mode) {
        (Outcome::Deny, _) => decided_by_policy(&mut record, AuthRequestStatus::Denied, now),
        (Outcome::Allow, DeliveryMode::Poll) => {
            decided_by_policy(&mut record, AuthRequestStatus::Approved, now);
        }
        (Outcome::Allow, _) => {}
        (Outcome::StepUp, _) => {
            refuse_a_flood(deps, client, &decided.approvers, now).await?;
            set.pushes = crate::push::rows_for(deps.store, &record, &decided.approvers).await?;
            set.approvers = decided.approvers.clone();
        }
    }
    let alerting = !set.pushes.is_empty();
    let auth_req_id = record.id.clone();
    set.request = Some(record);
    deps.store.write(set).await?;
    if d.outcome == Outcome::Deny {
        return Err(CibaError::AccessDenied(format!(
            "denied by policy: {}",
            d.reasons.join("; ")
        )));
    }
    deps.policy.observe(&decided.samples);
    if alerting {
        deps.push_wake.notify_one();
    }
    Ok(auth_req_id)
}

fn decided_by_policy(record: &mut AuthRequestRecord, status: AuthRequestStatus, now: i64) {
    record.status = status;
    record.decided_at = Some(now);
    record.decided_by = Some(POLICY_DECIDER.into());
    record.decision_method = Some(ApprovalMethod::Policy.into());
}

/// Ping and push clients hear of a decision through their notification endpoint, queued
/// (and in push mode, the tokens issued) with the decision.
async fn decide_at_once(deps: &Authorizing<'_>, auth_req_id: &AuthReqId) -> Result<(), CibaError> {
    crate::approvals::decide(
        deps.approvals,
        auth_req_id,
        DecisionInput {
            approved: true,
            decided_by: POLICY_DECIDER,
            method: ApprovalMethod::Policy,
            approval_jws: None,
            device_jkt: None,
            reason: None,
        },
    )
    .await
    .map_err(|e| match e {
        crate::approvals::ApprovalError::Store(s) => CibaError::Store(s),
        crate::approvals::ApprovalError::Credential(c) => CibaError::Credential(c),
        other => CibaError::Store(crate::store::StoreError::Corrupt(other.to_string())),
    })
}

/// Who performs what a request asks: the human it names for the actions humans perform
/// (`policy.human_actions`: the client asks on their behalf, as an AuthZEN enforcement
/// point's access request does), else the agent.
fn principal_of(deps: &Authorizing<'_>, details: Option<&[Value]>) -> policy::facts::Principal {
    policy::service::actions_of(details)
        .first()
        .map_or(policy::facts::Principal::Agent, |(action, _)| {
            deps.policy.schema().principal_of(action)
        })
}

/// Refuses a step-up when one of its approvers already has
/// `rate_limits.pending_per_approver` of this agent's requests waiting: a stream of
/// requests wears a human down until they approve one unread (approval fatigue). The
/// refusal is traced, so admins see who was flooded by which agent.
async fn refuse_a_flood(
    deps: &Authorizing<'_>,
    client: &ClientRecord,
    approvers: &[Subject],
    now: i64,
) -> Result<(), CibaError> {
    let cap = i64::from(deps.config.rate_limits.pending_per_approver);
    if cap == 0 {
        return Ok(());
    }
    for approver in approvers {
        let (waiting, first_expiry) = deps
            .store
            .pending_step_ups(&client.client_id, approver, now)
            .await?;
        if waiting < cap {
            continue;
        }
        metrics::counter!("countersign_approval_floods_refused_total").increment(1);
        let event = crate::store::audit::NewAuditRecord {
            at: now,
            actor: format!("client:{}", client.client_id),
            kind: crate::audit::EventKind::RequestsFloodRefused
                .as_str()
                .to_owned(),
            subject: format!("human:{approver}"),
            detail: serde_json::json!({
                "agent": client.client_id, "approver": approver,
                "pending": waiting, "cap": cap,
            })
            .to_string(),
        };
        deps.store
            .write(WriteSet {
                events: vec![event],
                ..WriteSet::default()
            })
            .await?;
        tracing::warn!(client_id = %client.client_id, approver = %approver, waiting, "a flood of step-ups for one approver was refused");
        let secs = first_expiry.map_or(1, |e| (e.saturating_sub(now) / 1000).max(1));
        return Err(CibaError::RateLimited {
            retry_after: u64::try_from(secs).unwrap_or(1),
            reason: format!(
                "{waiting} of this agent's requests are already waiting for {approver}'s approval (rate_limits.pending_per_approver = {cap}); retry when they are decided"
            ),
        });
    }
    Ok(())
}

/// Who a policy decision is recorded as.
pub const POLICY_DECIDER: &str = "policy";

/// JSON text of a value we built (serialising our own types cannot fail).
fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

/// Verifies a signed authentication request (CIBA Core §7.1.1, FAPI-CIBA §5.2.2) and
/// returns its claims as the request parameters.
async fn signed_request_params(
    deps: &Authorizing<'_>,
    client: &ClientRecord,
    request: &str,
) -> Result<Map<String, Value>, CibaError> {
    let bad = |m: String| CibaError::InvalidRequest(format!("signed request: {m}"));
    let jws = UnverifiedJws::parse(request).map_err(|e| bad(e.to_string()))?;
    let jwks =
        client_jwks(client).ok_or_else(|| bad("the client has no registered JWKS".into()))?;
    let claims: Map<String, Value> = jws.verify_with_set(&jwks).map_err(|e| bad(e.to_string()))?;
    let registered: RegisteredClaims =
        serde_json::from_value(Value::Object(claims.clone())).map_err(|e| bad(e.to_string()))?;
    if registered.iss.as_deref() != Some(client.client_id.as_str()) {
        return Err(bad("iss must be the client_id".into()));
    }
    if !registered
        .aud
        .as_ref()
        .is_some_and(|a| a.contains(deps.issuer))
    {
        return Err(bad(format!("aud must contain the issuer {}", deps.issuer)));
    }
    let (Some(exp), Some(nbf), Some(_iat)) = (registered.exp, registered.nbf, registered.iat)
    else {
        return Err(bad("exp, nbf and iat are required".into()));
    };
    if exp - nbf > MAX_REQUEST_OBJECT_LIFETIME_SECS {
        return Err(bad("exp must be at most 60 minutes after nbf".into()));
    }
    let skew = deps.config.ciba.clock_skew_secs as i64;
    check_times(&registered, deps.clock.now_secs(), skew).map_err(bad)?;
    let jti = registered
        .jti
        .filter(|j| !j.is_empty() && j.len() <= crate::oidc::dpop::MAX_JTI_LEN)
        .ok_or_else(|| {
            bad(format!(
                "jti is required, at most {} characters",
                crate::oidc::dpop::MAX_JTI_LEN
            ))
        })?;
    let fresh = deps
        .store
        .remember_jti(
            &format!("request:{}", client.client_id),
            &jti,
            (exp as i64).saturating_add(skew).saturating_mul(1000),
        )
        .await?;
    if !fresh {
        return Err(bad("jti was already used (replay)".into()));
    }
    Ok(claims)
}

fn check_scopes(deps: &Authorizing<'_>, scopes: &[String]) -> Result<(), CibaError> {
    if !scopes.iter().any(|s| s == "openid") {
        return Err(CibaError::InvalidScope("scope must contain openid".into()));
    }
    let extra = &deps.config.ciba.extra_scopes;
    if let Some(unknown) = scopes
        .iter()
        .find(|s| !BASE_SCOPES.contains(&s.as_str()) && !extra.contains(s))
    {
        return Err(CibaError::InvalidScope(format!(
            "unsupported scope {unknown:?}"
        )));
    }
    Ok(())
}

/// Binding messages are shown on a phone: short, printable, one line.
fn check_binding_message(message: &str, max_chars: usize) -> Result<(), CibaError> {
    if message.chars().count() > max_chars {
        return Err(CibaError::InvalidBindingMessage(format!(
            "binding_message is longer than {max_chars} characters"
        )));
    }
    if message.chars().any(char::is_control) || message.trim().is_empty() {
        return Err(CibaError::InvalidBindingMessage(
            "binding_message must be printable text on one line".into(),
        ));
    }
    if let Some(c) = countersign_shared::text::deceptive(message) {
        return Err(CibaError::InvalidBindingMessage(format!(
            "binding_message contains U+{:04X}, an invisible or direction-changing character",
            u32::from(c)
        )));
    }
    Ok(())
}

/// A user code is needed when the client is registered to send one or the user has set
/// one (CIBA Core §7.1 `user_code`).
fn check_user_code(
    client: &ClientRecord,
    human: &HumanRecord,
    code: Option<&str>,
) -> Result<(), CibaError> {
    let required = client.user_code_required || human.user_code_hash.is_some();
    match (code, &human.user_code_hash) {
        (None, _) if required => Err(CibaError::MissingUserCode),
        (None, _) => Ok(()),
        (Some(code), Some(hash)) if verify_secret(code, hash) => Ok(()),
        (Some(_), _) => Err(CibaError::InvalidUserCode),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_and_push_need_a_sane_notification_token_poll_needs_none() {
        assert!(check_notification_token(DeliveryMode::Poll, None).is_ok());
        assert!(check_notification_token(DeliveryMode::Ping, Some("t")).is_ok());
        for mode in [DeliveryMode::Ping, DeliveryMode::Push] {
            assert!(matches!(
                check_notification_token(mode, None),
                Err(CibaError::InvalidRequest(_))
            ));
            let long = "t".repeat(MAX_NOTIFICATION_TOKEN_LEN + 1);
            assert!(matches!(
                check_notification_token(mode, Some(&long)),
                Err(CibaError::InvalidRequest(_))
            ));
        }
    }

    #[test]
    fn binding_message_rules() {
        assert!(check_binding_message("Order W4SCT", 20).is_ok());
        assert!(check_binding_message("Größe ✓", 7).is_ok());
        assert!(matches!(
            check_binding_message("x".repeat(21).as_str(), 20),
            Err(CibaError::InvalidBindingMessage(_))
        ));
        assert!(matches!(
            check_binding_message("two\nlines", 20),
            Err(CibaError::InvalidBindingMessage(_))
        ));
        assert!(matches!(
            check_binding_message("  ", 20),
            Err(CibaError::InvalidBindingMessage(_))
        ));
        for sneaky in ["W4S\u{202E}CT", "W4\u{200B}SCT", "\u{2067}W4SCT"] {
            assert!(matches!(
                check_binding_message(sneaky, 20),
                Err(CibaError::InvalidBindingMessage(_))
            ));
        }
    }
}
