//! The AuthZEN Access Request and Approval Profile (openid/authzen,
//! `profiles/authzen-access-request-approval/authzen-access-request-approval-profile-1_0.md`,
//! Draft 1, June 2026): a step-up is a denial that says access may be requested; the
//! access request becomes a CIBA request routed to the approvers the policy names (their
//! wallets alert); once approved, re-evaluating exactly the same request is permitted,
//! within the approval's validity and use limit.
//!
//! The denial is bound to its evaluation by a `binding_token`: a compact JWS (HS256 under a
//! key only this server's replicas hold, since only they verify it; every step-up answer
//! carries one, and an ECDSA signature each cost more than the rest of a batched
//! decision) over the evaluation id, the SHA-256 of the JCS of subject, resource, action
//! and context, the caller and a short expiry. So an access request can only ask for what
//! was denied.

use serde_json::{Map, Value, json};

use super::Pdp;
use super::evaluate::{Answer, EvaluationError, HUMAN_TYPES};
use super::request::{self, Evaluation};
use crate::ciba::CibaError;
use crate::ciba::authorize::Peer;
use crate::ids::AuthReqId;
use crate::store::audit::NewAuditRecord;
use crate::store::auth_requests::{AuthRequestRecord, AuthRequestStatus, DecisionMethod};
use crate::store::clients::ClientRecord;
use crate::store::group_commit::WriteSet;

/// Where access requests are made; a task's status is at `{REQUESTS_PATH}/{id}`.
pub const REQUESTS_PATH: &str = "/access/v1/requests";
/// The profile's capability, advertised in the PDP metadata.
pub const CAPABILITY: &str = "urn:openid:authzen:capability:access-request";
/// The JWT `typ` of a denial's binding token.
const BINDING_TYP: &str = "authzen-denial+jwt";
/// The binding key's file in the keys directory.
const BINDING_KEY_FILE: &str = "authzen-denial-binding.secret";

/// Signs and opens denial binding tokens (compact JWS, HS256).
pub struct DenialBindings {
    key: ring::hmac::Key,
}

impl DenialBindings {
    /// The key in `keys_dir`, created (32 random bytes, 0600) the first time.
    pub fn load(keys_dir: &std::path::Path) -> Result<Self, crate::oidc::keys::KeyError> {
        let secret = crate::oidc::keys::load_or_create_secret(keys_dir, BINDING_KEY_FILE)?;
        Ok(Self::new(&secret))
    }

    pub fn new(secret: &[u8; 32]) -> Self {
        Self {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret),
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "HS256", "typ": BINDING_TYP}).to_string();
        let input = format!(
            "{}.{}",
            countersign_jose::b64url_encode(header),
            countersign_jose::b64url_encode(claims.to_string())
        );
        let tag = ring::hmac::sign(&self.key, input.as_bytes());
        format!("{input}.{}", countersign_jose::b64url_encode(tag.as_ref()))
    }

    /// The claims of a token this key signed (the signature checked in constant time).
    fn open(&self, token: &str) -> Option<Map<String, Value>> {
        let (input, signature) = token.rsplit_once('.')?;
        let (header, payload) = input.split_once('.')?;
        let tag = countersign_jose::b64url_decode(signature)?;
        ring::hmac::verify(&self.key, input.as_bytes(), &tag).ok()?;
        let header: Value =
            serde_json::from_slice(&countersign_jose::b64url_decode(header)?).ok()?;
        if header["alg"] != "HS256" || header["typ"] != BINDING_TYP {
            return None;
        }
        serde_json::from_slice(&countersign_jose::b64url_decode(payload)?).ok()
    }
}

/// How long a requestable denial may be turned into an access request.
const DENIAL_LIFETIME_MS: i64 = 10 * 60 * 1000;
/// The profile's error types (RFC 9457 `type`).
const ERROR_PREFIX: &str = "urn:openid:authzen:access-request:error:";

/// A refused access request: RFC 9457 problem details with the profile's error type.
#[derive(Debug)]
pub struct Problem {
    pub status: u16,
    pub kind: &'static str,
    pub detail: String,
}

impl Problem {
    fn new(status: u16, kind: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            detail: detail.into(),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "type": format!("{ERROR_PREFIX}{}", self.kind),
            "title": self.kind.replace('_', " "),
            "status": self.status,
            "detail": self.detail,
        })
    }
}

/// An access request could not be handled: the profile's problem, or the evaluation's
/// own error (malformed, forbidden, storage).
#[derive(Debug)]
pub enum AccessRequestError {
    Problem(Problem),
    Evaluation(EvaluationError),
}

impl From<EvaluationError> for AccessRequestError {
    fn from(e: EvaluationError) -> Self {
        Self::Evaluation(e)
    }
}

impl From<request::Malformed> for AccessRequestError {
    fn from(e: request::Malformed) -> Self {
        Self::Evaluation(EvaluationError::BadRequest(e.0))
    }
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn endpoint(pdp: &Pdp<'_>) -> String {
    pdp.endpoint(REQUESTS_PATH)
}

fn entity(e: &request::Entity) -> Value {
    json!({"type": e.kind, "id": e.id, "properties": e.properties})
}

/// What an approval is bound to: the digest of the evaluation's subject, resource,
/// action and context (less the `approval` a re-evaluation adds).
pub fn binding_hash(e: &Evaluation) -> String {
    let mut context = e.context.clone();
    context.remove("approval");
    crate::policy::trace::digest(&json!({
        "subject": entity(&e.subject),
        "resource": entity(&e.resource),
        "action": {"name": e.action.name, "properties": e.action.properties},
        "context": context,
    }))
}

/// Adds to a step-up's answer what the profile's requestable denial carries: the reason,
/// the evaluation id, and `access_request` with the endpoint and the binding token.
pub fn advertise(
    pdp: &Pdp<'_>,
    caller: &ClientRecord,
    e: &Evaluation,
    answer: &mut Answer,
    now_ms: i64,
) {
    let Some(evaluation_id) = answer.context.get("decision_id").cloned() else {
        return;
    };
    let expires_at = now_ms + DENIAL_LIFETIME_MS;
    let claims = json!({
        "iss": pdp.issuer,
        "aud": endpoint(pdp),
        "sub": caller.client_id,
        "iat": now_ms / 1000,
        "exp": expires_at / 1000,
        "jti": countersign_jose::random_b64url(16),
        "evaluation_id": evaluation_id,
        "binding_hash": binding_hash(e),
        "denial_expires_at": rfc3339(expires_at),
    });
    let token = pdp.denial_bindings.sign(&claims);
    let context = &mut answer.context;
    context.insert("reason".into(), json!("approval_required"));
    context.insert("evaluation_id".into(), evaluation_id);
    context.insert("evaluated_at".into(), json!(rfc3339(now_ms)));
    context.insert(
        "access_request".into(),
        json!({
            "endpoint": endpoint(pdp),
            "expires_at": rfc3339(expires_at),
            "binding_token": token,
            "display": {"title": "Request approval", "description": format!("{} needs a human's approval", e.action.name)},
        }),
    );
}

/// The claims of a binding token this server signed for `caller`, if valid now.
fn binding(
    pdp: &Pdp<'_>,
    caller: &ClientRecord,
    token: &str,
    now_ms: i64,
) -> Result<Map<String, Value>, Problem> {
    let invalid = |why: &str| Problem::new(400, "invalid_denial_binding", why.to_owned());
    let claims = pdp
        .denial_bindings
        .open(token)
        .ok_or_else(|| invalid("binding_token is not a denial binding this PDP signed"))?;
    if claims.get("iss").and_then(Value::as_str) != Some(pdp.issuer)
        || claims.get("aud").and_then(Value::as_str) != Some(endpoint(pdp).as_str())
        || claims.get("sub").and_then(Value::as_str) != Some(caller.client_id.as_str())
    {
        return Err(invalid("binding_token was issued to another party"));
    }
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    if exp.saturating_mul(1000) <= now_ms {
        return Err(Problem::new(
            410,
            "expired_denial",
            "the denial has expired; evaluate again",
        ));
    }
    Ok(claims)
}

/// `POST /access/v1/requests`: an access request for a denial this PDP made. Answers the
/// task (`202` while pending, `201` when already resolved).
pub async fn create(
    pdp: &Pdp<'_>,
    caller: &ClientRecord,
    body: &Value,
    peer: &Peer,
) -> Result<(u16, Value), AccessRequestError> {
    let e = request::evaluation(body)?;
    let now_ms = pdp.now_ms();
    redeem_denial(pdp, caller, body, &e, now_ms).await?;
    let params = approval_params(pdp, caller, &e);
    let response =
        crate::ciba::authorize::backchannel_authorize(&pdp.authorizing, caller, params, peer)
            .await
            .map_err(|err| match err {
                CibaError::AccessDenied(m) => {
                    AccessRequestError::Problem(Problem::new(400, "not_requestable", m))
                }
                CibaError::Store(s) => EvaluationError::Store(s).into(),
                other => EvaluationError::BadRequest(other.to_string()).into(),
            })?;
    let record = pdp
        .store
        .auth_request(&AuthReqId::new(response.auth_req_id.as_str()))
        .await
        .map_err(EvaluationError::Store)?
        .ok_or_else(|| EvaluationError::BadRequest("the request vanished".into()))?;
    let task = task(pdp, &record, now_ms);
    let status = if task["task"]["status"] == "pending" {
        202
    } else {
        201
    };
    Ok((status, task))
}

/// Checks that `body.denial.binding_token` is this caller's denial of exactly `e`, and
/// uses it up: one access request per denial, so a replayed one asks nobody twice.
async fn redeem_denial(
    pdp: &Pdp<'_>,
    caller: &ClientRecord,
    body: &Value,
    e: &Evaluation,
    now_ms: i64,
) -> Result<(), AccessRequestError> {
    let denial = body
        .get("denial")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            EvaluationError::BadRequest("denial is required: the denial's binding_token".into())
        })?;
    let token = denial
        .get("binding_token")
        .and_then(Value::as_str)
        .ok_or_else(|| EvaluationError::BadRequest("denial.binding_token is required".into()))?;
    let claims = binding(pdp, caller, token, now_ms).map_err(AccessRequestError::Problem)?;
    if claims.get("binding_hash").and_then(Value::as_str) != Some(binding_hash(e).as_str()) {
        return Err(AccessRequestError::Problem(Problem::new(
            400,
            "invalid_denial_binding",
            "the request is not the one that was denied",
        )));
    }
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let exp_ms = claims.get("exp").and_then(Value::as_i64).unwrap_or(0) * 1000;
    let fresh = pdp
        .store
        .remember_jti(&format!("authzen-denial:{}", caller.client_id), jti, exp_ms)
        .await
        .map_err(EvaluationError::Store)?;
    if !fresh {
        return Err(AccessRequestError::Problem(Problem::new(
            409,
            "duplicate_request",
            "an access request was already made for this denial",
        )));
    }
    Ok(())
}

/// The backchannel authentication request an access request for `e` becomes: asked of
/// the human subject (or the caller's owner), for the evaluation's action as one
/// `authorization_details` entry.
fn approval_params(pdp: &Pdp<'_>, caller: &ClientRecord, e: &Evaluation) -> Map<String, Value> {
    let login_hint = if HUMAN_TYPES.contains(&e.subject.kind.as_str()) {
        e.subject.id.clone()
    } else {
        caller.owner_subject.to_string()
    };
    let detail = super::evaluate::detail(e, &pdp.config.authzen.property_fields);
    let mut params = Map::new();
    params.insert("scope".into(), json!("openid"));
    params.insert("login_hint".into(), json!(login_hint));
    params.insert(
        "authorization_details".into(),
        json!(Value::Array(vec![detail]).to_string()),
    );
    params.insert(
        "binding_message".into(),
        json!(
            format!("Access request: {}", e.action.name)
                .chars()
                .take(pdp.config.ciba.binding_message_max_chars)
                .collect::<String>()
        ),
    );
    if let Some(task) = e.context.get("task_id").and_then(Value::as_str) {
        params.insert("task_id".into(), json!(task));
    }
    params
}

/// The task of `caller`'s request `id` (`GET /access/v1/requests/{id}`).
pub async fn status(
    pdp: &Pdp<'_>,
    caller: &ClientRecord,
    id: &AuthReqId,
) -> Result<Value, AccessRequestError> {
    let record = own_request(pdp, caller, id).await?;
    Ok(task(pdp, &record, pdp.now_ms()))
}

/// Cancels `caller`'s pending request `id` (`POST /access/v1/requests/{id}/cancel`).
pub async fn cancel(
    pdp: &Pdp<'_>,
    caller: &ClientRecord,
    id: &AuthReqId,
    reason: &str,
) -> Result<Value, AccessRequestError> {
    own_request(pdp, caller, id).await?;
    let now_ms = pdp.now_ms();
    let withdrawn =
        crate::gateway::calls::withdraw(pdp.store, &caller.client_id, id, reason, now_ms)
            .await
            .map_err(EvaluationError::Store)?;
    let record = own_request(pdp, caller, id).await?;
    if !withdrawn {
        return Err(AccessRequestError::Problem(Problem::new(
            409,
            "invalid_task_state",
            format!(
                "the task is {}",
                task(pdp, &record, now_ms)["task"]["status"]
            ),
        )));
    }
    Ok(task(pdp, &record, now_ms))
}

async fn own_request(
    pdp: &Pdp<'_>,
    caller: &ClientRecord,
    id: &AuthReqId,
) -> Result<AuthRequestRecord, AccessRequestError> {
    match pdp
        .store
        .auth_request(id)
        .await
        .map_err(EvaluationError::Store)?
    {
        Some(record) if record.client_id == caller.client_id => Ok(record),
        _ => Err(AccessRequestError::Problem(Problem::new(
            404,
            "unknown_task",
            "no such access request",
        ))),
    }
}

/// How long an approval of `record` holds, in milliseconds after its decision.
fn validity_ms(pdp: &Pdp<'_>, record: &AuthRequestRecord) -> i64 {
    record
        .validity_secs
        .unwrap_or_else(|| i64::try_from(pdp.config.tokens.access_token_ttl_secs).unwrap_or(0))
        .saturating_mul(1000)
}

fn task(pdp: &Pdp<'_>, record: &AuthRequestRecord, now_ms: i64) -> Value {
    let status = match record.status {
        AuthRequestStatus::Pending if now_ms >= record.expires_at => "expired",
        AuthRequestStatus::Pending => "pending",
        AuthRequestStatus::Approved | AuthRequestStatus::Issued => "approved",
        AuthRequestStatus::Denied if record.decision_method == Some(DecisionMethod::Withdrawn) => {
            "cancelled"
        }
        AuthRequestStatus::Denied => "denied",
    };
    let id = &record.id;
    let mut task = json!({
        "id": id,
        "status": status,
        "status_endpoint": format!("{}/{id}", endpoint(pdp)),
        "expires_at": rfc3339(record.expires_at),
        "links": {"cancel": format!("{}/{id}/cancel", endpoint(pdp))},
    });
    let mut answer = Map::new();
    if status == "approved" {
        let decided = record.decided_at.unwrap_or(record.created_at);
        task["result"] = json!("approved");
        answer.insert(
            "result".into(),
            json!({
                "mode": "reevaluate",
                "approval": {
                    "id": id,
                    "approved_at": rfc3339(decided),
                    "approved_until": rfc3339(decided + validity_ms(pdp, record)),
                },
            }),
        );
    }
    answer.insert("task".into(), task);
    Value::Object(answer)
}

/// What a presented approval came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Redemption {
    /// It stands: one use counted. The approval as the answer's `context.approval`.
    Permitted(Value),
    /// It does not: the profile's `reason`.
    Refused(&'static str),
}

/// A re-evaluation carrying `context.approval`: permitted when the approval is this
/// caller's, for exactly this subject and request, approved, and still within its
/// validity and use limit; each permit counts a use and is traced. `None`: no approval
/// was presented.
pub async fn redeem(
    pdp: &Pdp<'_>,
    caller: &ClientRecord,
    e: &Evaluation,
    subject: &str,
    decision_id: &str,
    now_ms: i64,
) -> Result<Option<Redemption>, crate::store::StoreError> {
    let Some(approval) = e.context.get("approval") else {
        return Ok(None);
    };
    let Some(id) = approval
        .get("id")
        .and_then(Value::as_str)
        .map(AuthReqId::new)
    else {
        return Ok(Some(Redemption::Refused("approval_unverifiable")));
    };
    let Some(record) = pdp.store.auth_request(&id).await? else {
        return Ok(Some(Redemption::Refused("approval_unverifiable")));
    };
    // The approved request is exactly this evaluation's one entry (as access was asked).
    let asked = Value::Array(vec![super::evaluate::detail(
        e,
        &pdp.config.authzen.property_fields,
    )]);
    let same = record
        .authorization_details
        .as_deref()
        .and_then(|d| serde_json::from_str::<Value>(d).ok())
        .is_some_and(|approved| approved == asked);
    if record.client_id != caller.client_id || record.subject != subject || !same {
        return Ok(Some(Redemption::Refused("out_of_scope")));
    }
    let Some(uses) = pdp
        .store
        .use_approval(&id, &caller.client_id, now_ms, validity_ms(pdp, &record))
        .await?
    else {
        return Ok(Some(Redemption::Refused(match record.status {
            AuthRequestStatus::Pending => "grant_pending",
            _ => "approval_expired",
        })));
    };
    let event = NewAuditRecord {
        at: now_ms,
        actor: format!("client:{}", caller.client_id),
        kind: crate::audit::EventKind::ApprovalUsed.as_str().to_owned(),
        subject: id.to_string(),
        detail: json!({"decision_id": decision_id, "uses": uses, "max_uses": record.max_uses.0})
            .to_string(),
    };
    pdp.store
        .write(WriteSet {
            events: vec![event],
            ..WriteSet::default()
        })
        .await?;
    let decided = record.decided_at.unwrap_or(record.created_at);
    Ok(Some(Redemption::Permitted(json!({
        "id": id,
        "approved_until": rfc3339(decided + validity_ms(pdp, &record)),
        "uses": uses,
    }))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binding_opens_only_under_its_key_and_unaltered() {
        let bindings = DenialBindings::new(&[3; 32]);
        let claims = json!({"sub": "pep", "binding_hash": "abc"});
        let token = bindings.sign(&claims);
        assert_eq!(bindings.open(&token), claims.as_object().cloned());
        assert_eq!(
            DenialBindings::new(&[4; 32]).open(&token),
            None,
            "another key"
        );
        let (header, rest) = token.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let forged = format!(
            "{header}.{}.{signature}",
            countersign_jose::b64url_encode(
                json!({"sub": "pep", "binding_hash": "xyz"}).to_string()
            )
        );
        assert_eq!(bindings.open(&forged), None, "altered claims");
        assert_eq!(bindings.open("a.b"), None);
        assert_eq!(bindings.open(""), None);
    }
}
