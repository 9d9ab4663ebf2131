//! The gateway's [`Authority`], answered in this process: the same client records, policy
//! service, CIBA requests, token issuance and trace as the HTTP endpoints use, without a
//! network hop or a client authentication per call.

use std::sync::Arc;

use countersign_gateway::{
    AgentId, Approval, ApprovalState, ApprovalView, Authority, AuthorityError, Call, Fate, Grant,
    Pending, PresentedToken, TokenRefused, Verdict, mapping::Action,
};
use serde_json::{Map, Value, json};

use super::agent_keys::AgentKeys;
use crate::ciba::CibaError;
use crate::ciba::authorize::Peer;
use crate::oidc::{dpop, resource_token};
use crate::policy::Outcome;
use crate::state::AppState;
use crate::store::audit::NewAuditRecord;
use crate::store::auth_requests::{AuthRequestStatus, Decision};
use crate::store::clients::ClientRecord;
use crate::store::group_commit::WriteSet;

/// The trace event of what became of a gateway call.
pub const GATEWAY_CALL: &str = "gateway.call";
/// The trace event of an approval request its agent withdrew (the user cancelled the
/// held call), and the decision method it is recorded with.
pub const REQUEST_WITHDRAWN: &str = "request.withdrawn";
const WITHDRAWN: &str = "withdrawn";

/// Most verified tokens remembered; past it the memory starts over.
const VERIFIED_TOKENS: usize = 10_000;

pub struct InProcess {
    state: AppState,
    keys: Arc<AgentKeys>,
    /// Tokens whose signature and claims were checked, by SHA-256: an agent presents the
    /// same token with every MCP request, and an ECDSA verification is most of the cost
    /// of checking it. Expiry and the agent's standing are still checked every time.
    verified: std::sync::Mutex<std::collections::HashMap<[u8; 32], resource_token::ResourceToken>>,
    /// The gateway's resource identifier (`{issuer}/mcp`).
    resource: String,
}

impl InProcess {
    pub fn new(state: AppState, keys: Arc<AgentKeys>) -> Self {
        let resource = super::resource(&state.issuer);
        Self {
            state,
            keys,
            resource,
            verified: std::sync::Mutex::default(),
        }
    }

    async fn client(&self, agent: &AgentId) -> Result<ClientRecord, AuthorityError> {
        match self.state.store.client(&agent.0).await {
            Ok(Some(client)) if client.enabled => Ok(client),
            Ok(_) => Err(AuthorityError::Unauthorized(format!(
                "agent {agent} is not registered or is disabled"
            ))),
            Err(e) => Err(AuthorityError::Unavailable(e.to_string())),
        }
    }
}

fn authority_error(e: CibaError) -> AuthorityError {
    match e {
        CibaError::Store(e) => AuthorityError::Unavailable(e.to_string()),
        CibaError::Credential(e) => AuthorityError::Unavailable(e.to_string()),
        CibaError::UnauthorizedClient(m) => AuthorityError::Unauthorized(m),
        CibaError::RateLimited { reason, .. } => AuthorityError::Unavailable(reason),
        other => AuthorityError::Invalid(other.to_string()),
    }
}

/// The decision API's parameters for a call.
fn params(call: &Call, dry_run: bool) -> Map<String, Value> {
    let mut params = Map::new();
    let details = Value::Array(vec![call.action.detail.clone()]).to_string();
    params.insert("authorization_details".into(), Value::String(details));
    if let Some(resource) = &call.action.resource {
        params.insert("resource".into(), Value::String(resource.clone()));
    }
    if let Some(session) = &call.session {
        params.insert("task_id".into(), Value::String(session.clone()));
    }
    if dry_run {
        params.insert("dry_run".into(), Value::String("true".into()));
    }
    params
}

impl Authority for InProcess {
    async fn authenticate(&self, token: PresentedToken<'_>) -> Result<AgentId, TokenRefused> {
        let state = &self.state;
        let now_s = state.clock.now_secs();
        let skew = i64::try_from(state.config.ciba.clock_skew_secs).unwrap_or(0);
        let digest = countersign_jose::sha256(token.token.as_bytes());
        let remembered = self
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&digest)
            .cloned();
        let claims = match remembered {
            Some(claims) if claims.expires_at_s.saturating_add(skew) > now_s => claims,
            _ => {
                let claims = resource_token::verify(
                    token.token,
                    &state.keys.jwks(),
                    &state.issuer,
                    &self.resource,
                    now_s,
                    skew,
                )
                .map_err(TokenRefused::InvalidToken)?;
                let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
                if verified.len() >= VERIFIED_TOKENS {
                    verified.clear();
                }
                verified.insert(digest, claims.clone());
                claims
            }
        };
        match (&claims.jkt, token.scheme) {
            (Some(jkt), "DPoP") => {
                let proof = token.dpop_proof.ok_or_else(|| {
                    TokenRefused::InvalidDpopProof("a DPoP proof is required".into())
                })?;
                let checked =
                    dpop::check_proof(proof, token.method, token.url, dpop::window(state))
                        .map_err(|e| TokenRefused::InvalidDpopProof(e.to_string()))?;
                if &checked.jkt != jkt {
                    return Err(TokenRefused::InvalidDpopProof(
                        "the proof is not signed by the key the token is bound to".into(),
                    ));
                }
                if checked.ath.as_deref() != Some(resource_token::ath(token.token).as_str()) {
                    return Err(TokenRefused::InvalidDpopProof(
                        "the proof's ath is not this token's hash".into(),
                    ));
                }
                dpop::remember(state, &checked).await.map_err(|e| match e {
                    dpop::DpopError::Invalid(m) => TokenRefused::InvalidDpopProof(m),
                    dpop::DpopError::Store(s) => TokenRefused::Unavailable(s.to_string()),
                })?;
            }
            (Some(_), _) => {
                return Err(TokenRefused::InvalidToken(
                    "this token is DPoP-bound: send it as Authorization: DPoP with a proof".into(),
                ));
            }
            (None, "Bearer") => {}
            (None, _) => {
                return Err(TokenRefused::InvalidToken(
                    "this token is a bearer token: send it as Authorization: Bearer".into(),
                ));
            }
        }
        if let Err(crate::limits::RetryAfter(secs)) = state
            .limits
            .per_client
            .check(&claims.client_id, state.now_ms())
        {
            metrics::counter!("countersign_rate_limited_total", "limit" => "client").increment(1);
            return Err(TokenRefused::RateLimited(secs));
        }
        match state.store.client(&claims.client_id).await {
            Ok(Some(client)) if client.enabled => Ok(AgentId(client.client_id)),
            Ok(_) => Err(TokenRefused::InvalidToken(
                "the agent is not registered or is disabled".into(),
            )),
            Err(e) => Err(TokenRefused::Unavailable(e.to_string())),
        }
    }

    async fn decide(&self, call: &Call) -> Result<Verdict, AuthorityError> {
        let client = self.client(&call.agent).await?;
        let peer = Peer {
            source_ip: call.source_ip,
        };
        let answer =
            crate::policy::gateway::decide(&self.state, &client, &params(call, false), &peer)
                .await
                .map_err(authority_error)?;
        let decision_id = answer.decision_id.unwrap_or_default();
        Ok(match answer.decision {
            Outcome::Allow => Verdict::Allow { decision_id },
            Outcome::Deny => Verdict::Deny {
                decision_id,
                reasons: answer.reasons,
            },
            Outcome::StepUp => Verdict::StepUp {
                decision_id,
                reasons: answer.reasons,
                approvers: answer.approvers,
            },
        })
    }

    async fn may_offer(
        &self,
        agent: &AgentId,
        tool: &str,
        action: &Action,
    ) -> Result<bool, AuthorityError> {
        let client = self.client(agent).await?;
        let call = Call {
            agent: agent.clone(),
            tool: tool.to_owned(),
            action: action.clone(),
            session: None,
            mcp_request_id: String::new(),
            source_ip: None,
        };
        match crate::policy::gateway::decide(
            &self.state,
            &client,
            &params(&call, true),
            &Peer::default(),
        )
        .await
        {
            Ok(answer) => Ok(answer.decision != Outcome::Deny),
            // An entry the deployment's schema refuses without arguments may still be
            // callable with them.
            Err(CibaError::InvalidAuthorizationDetails(_)) => Ok(true),
            Err(e) => Err(authority_error(e)),
        }
    }

    async fn request_approval(
        &self,
        call: &Call,
        binding_message: &str,
    ) -> Result<Pending, AuthorityError> {
        let client = self.client(&call.agent).await?;
        if client.delivery_mode != countersign_shared::DeliveryMode::Poll.as_str() {
            return Err(AuthorityError::Unauthorized(format!(
                "agent {} is registered with the {} delivery mode; agents behind the gateway use poll",
                client.client_id, client.delivery_mode
            )));
        }
        let (_, jkt) = &*self
            .keys
            .key(&client.client_id)
            .map_err(AuthorityError::Unavailable)?;
        let mut params = params(call, false);
        params.insert("scope".into(), json!("openid"));
        params.insert(
            "login_hint".into(),
            Value::String(client.owner_subject.clone()),
        );
        params.insert(
            "binding_message".into(),
            Value::String(binding_message.to_owned()),
        );
        params.insert("dpop_jkt".into(), Value::String(jkt.clone()));
        // Nobody should be asked about a call the gateway no longer holds.
        let expiry = self.state.config.gateway.hold_timeout_secs.max(1);
        params.insert("requested_expiry".into(), Value::String(expiry.to_string()));
        params.remove("resource");
        let peer = Peer {
            source_ip: call.source_ip,
        };
        let response =
            crate::ciba::authorize::backchannel_authorize(&self.state, &client, params, &peer)
                .await
                .map_err(|e| match e {
                    CibaError::AccessDenied(m) => AuthorityError::Invalid(m),
                    other => authority_error(other),
                })?;
        Ok(Pending {
            auth_req_id: response.auth_req_id,
            expires_in_ms: response.expires_in.saturating_mul(1000),
            interval_ms: response.interval.unwrap_or(5).saturating_mul(1000),
        })
    }

    async fn poll(&self, agent: &AgentId, auth_req_id: &str) -> Result<Approval, AuthorityError> {
        let client = self.client(agent).await?;
        let (_, jkt) = &*self
            .keys
            .key(&client.client_id)
            .map_err(AuthorityError::Unavailable)?;
        match crate::ciba::token::exchange(&self.state, &client, auth_req_id, Some(jkt.clone()))
            .await
        {
            Ok(tokens) => {
                let approved = match tokens.authorization_details {
                    Some(Value::Array(items)) => items,
                    _ => Vec::new(),
                };
                Ok(Approval::Granted(Grant {
                    access_token: tokens.access_token,
                    approved,
                }))
            }
            Err(CibaError::AuthorizationPending) => Ok(Approval::Pending),
            Err(CibaError::SlowDown) => Ok(Approval::SlowDown),
            Err(CibaError::AccessDenied(reason)) => Ok(Approval::Denied {
                reason: Some(reason),
            }),
            Err(CibaError::ExpiredToken) => Ok(Approval::Expired),
            // Only this answer says the credential was handed out already.
            Err(CibaError::InvalidGrant(reason)) if reason.contains("already issued") => {
                Ok(Approval::AlreadyUsed)
            }
            Err(e) => Err(authority_error(e)),
        }
    }

    async fn withdraw(
        &self,
        agent: &AgentId,
        auth_req_id: &str,
        reason: &str,
    ) -> Result<(), AuthorityError> {
        let store = &self.state.store;
        let unavailable = |e: crate::store::StoreError| AuthorityError::Unavailable(e.to_string());
        match store.auth_request(auth_req_id).await.map_err(unavailable)? {
            Some(request) if request.client_id == agent.0 => {}
            // Only the agent's own requests; any other answers as already gone.
            _ => return Ok(()),
        }
        let actor = format!("client:{}", agent.0);
        let now_ms = self.state.now_ms();
        let decision = Decision {
            approved: false,
            decided_by: &actor,
            method: WITHDRAWN,
            at_ms: now_ms,
            approval_jws: None,
            device_jkt: None,
        };
        // Only a pending, unexpired request changes; one answered meanwhile stays answered.
        let Some(request) = store
            .decide_poll_request(auth_req_id, &decision)
            .await
            .map_err(unavailable)?
        else {
            return Ok(());
        };
        let detail = json!({
            "agent": request.client_id,
            "user": request.subject,
            "method": WITHDRAWN,
            "reason": reason,
            "waited_ms": (now_ms - request.created_at).max(0),
        });
        let event = NewAuditRecord {
            at: now_ms,
            actor,
            kind: REQUEST_WITHDRAWN.to_owned(),
            subject: request.id,
            detail: detail.to_string(),
        };
        let set = WriteSet {
            events: vec![event],
            ..WriteSet::default()
        };
        store.write(set).await.map(|_| ()).map_err(unavailable)
    }

    async fn approval_status(
        &self,
        auth_req_id: &str,
    ) -> Result<Option<ApprovalView>, AuthorityError> {
        let store = &self.state.store;
        let unavailable = |e: crate::store::StoreError| AuthorityError::Unavailable(e.to_string());
        let Some(request) = store.auth_request(auth_req_id).await.map_err(unavailable)? else {
            return Ok(None);
        };
        let now_ms = self.state.now_ms();
        let state = match request.status {
            AuthRequestStatus::Pending if now_ms >= request.expires_at => ApprovalState::Expired,
            AuthRequestStatus::Pending => ApprovalState::Pending,
            AuthRequestStatus::Approved => ApprovalState::Approved,
            AuthRequestStatus::Issued => ApprovalState::HandedOut,
            AuthRequestStatus::Denied => ApprovalState::Denied,
        };
        let details = match request
            .authorization_details
            .as_deref()
            .map(serde_json::from_str)
        {
            Some(Ok(Value::Array(items))) => items,
            _ => Vec::new(),
        };
        let approvers = store.approvers_of(auth_req_id).await.map_err(unavailable)?;
        Ok(Some(ApprovalView {
            agent: AgentId(request.client_id),
            state,
            binding_message: request.binding_message,
            details,
            approvers: approvers.len().max(1),
            expires_in_s: (request.expires_at - now_ms).max(0) / 1000,
        }))
    }

    fn dpop_proof(
        &self,
        agent: &AgentId,
        method: &str,
        url: &str,
        access_token: &str,
    ) -> Result<String, AuthorityError> {
        self.keys
            .proof(
                &agent.0,
                method,
                url,
                access_token,
                self.state.clock.now_secs(),
            )
            .map_err(AuthorityError::Unavailable)
    }

    async fn record(
        &self,
        call: &Call,
        decision_id: Option<&str>,
        fate: &Fate,
    ) -> Result<(), AuthorityError> {
        let mut detail = json!({
            "agent": call.agent.0,
            "tool": call.tool,
            "mcp_request_id": call.mcp_request_id,
            "session": call.session,
            "decision_id": decision_id,
            "outcome": fate.outcome(),
            "reason": fate.reason(),
        });
        if let Fate::AwaitingApproval { auth_req_id } = fate {
            detail["auth_req_id"] = Value::String(auth_req_id.clone());
        }
        let event = NewAuditRecord {
            at: self.state.now_ms(),
            actor: format!("client:{}", call.agent.0),
            kind: GATEWAY_CALL.to_owned(),
            subject: decision_id.unwrap_or(&call.tool).to_owned(),
            detail: detail.to_string(),
        };
        let set = WriteSet {
            events: vec![event],
            ..WriteSet::default()
        };
        let store = &self.state.store;
        let written = match fate {
            // The upstream has acted and its answer goes to the agent whatever becomes of
            // this record: waiting for its commit would only delay the answer. (The
            // decision was durable before the call was forwarded.)
            Fate::Forwarded { .. } | Fate::UpstreamFailed { .. } => store.submit(set).await,
            _ => store.write(set).await.map(|_| ()),
        };
        written.map_err(|e| AuthorityError::Unavailable(e.to_string()))
    }
}
