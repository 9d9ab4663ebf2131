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
use super::calls::CallReport;
use crate::ciba::CibaError;
use crate::ciba::authorize::{Authorizing, Peer};
use crate::credentials::Issuing;
use crate::flows::decide::Deciding;
use crate::ids::{AuthReqId, ClientId};
use crate::oidc::resource_auth::Guarding;
use crate::policy::Outcome;
use crate::store::Store;
use crate::store::auth_requests::AuthRequestStatus;
use crate::store::clients::ClientRecord;

/// The server's services the in-process gateway asks, as they are now (the server's
/// shared state provides them; the gateway holds it for as long as it runs).
pub trait Services: Send + Sync + 'static {
    fn store(&self) -> &Store;
    fn now_ms(&self) -> i64;
    /// `gateway.hold_timeout_secs`: how long a held call's approval request lives.
    fn hold_timeout_secs(&self) -> u64;
    fn guarding(&self) -> Guarding<'_>;
    fn deciding(&self) -> Deciding<'_>;
    fn authorizing(&self) -> Authorizing<'_>;
    fn issuing(&self) -> Issuing<'_>;
}

pub struct InProcess {
    services: Arc<dyn Services>,
    keys: Arc<AgentKeys>,
    /// The gateway's resource identifier (`{issuer}/mcp`).
    resource: String,
}

impl InProcess {
    pub fn new(services: Arc<dyn Services>, keys: Arc<AgentKeys>, issuer: &str) -> Self {
        Self {
            services,
            keys,
            resource: crate::paths::gateway_resource(issuer),
        }
    }

    async fn client(&self, agent: &AgentId) -> Result<ClientRecord, AuthorityError> {
        match self.services.store().client(&agent.0).await {
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
pub(super) fn params(call: &Call, dry_run: bool) -> Map<String, Value> {
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

/// The backchannel authentication request's parameters for a call: asked of
/// `login_hint`, the credential bound to the gateway's key `jkt` for the agent.
pub(super) fn approval_params(
    call: &Call,
    binding_message: &str,
    login_hint: &str,
    jkt: &str,
    hold_timeout_secs: u64,
) -> Map<String, Value> {
    let mut params = params(call, false);
    params.insert("scope".into(), json!("openid"));
    params.insert("login_hint".into(), Value::String(login_hint.to_owned()));
    params.insert(
        "binding_message".into(),
        Value::String(binding_message.to_owned()),
    );
    params.insert("dpop_jkt".into(), Value::String(jkt.to_owned()));
    // Nobody should be asked about a call the gateway no longer holds.
    params.insert(
        "requested_expiry".into(),
        Value::String(hold_timeout_secs.max(1).to_string()),
    );
    // The tool's id decides the call; CIBA's `resource` names where the token is used.
    params.remove("resource");
    params
}

/// The gateway's verdict of a decision API answer.
pub(super) fn verdict(answer: crate::flows::decide::DecisionAnswer) -> Verdict {
    let decision_id = answer.decision_id.unwrap_or_default();
    match answer.decision {
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
    }
}

/// The call a dry run of `tool`'s action decides (no session, no arguments' request).
pub(super) fn dry_run_call(agent: &AgentId, tool: &str, action: &Action) -> Call {
    Call {
        agent: agent.clone(),
        tool: tool.to_owned(),
        action: action.clone(),
        session: None,
        mcp_request_id: String::new(),
        source_ip: None,
    }
}

impl Authority for InProcess {
    async fn authenticate(&self, token: PresentedToken<'_>) -> Result<AgentId, TokenRefused> {
        crate::oidc::resource_auth::authenticate(&self.services.guarding(), &self.resource, token)
            .await
            .map(|client| AgentId(client.client_id.into_string()))
    }

    async fn decide(&self, call: &Call) -> Result<Verdict, AuthorityError> {
        let client = self.client(&call.agent).await?;
        let peer = Peer {
            source_ip: call.source_ip,
        };
        let answer = crate::flows::decide::decide(
            &self.services.deciding(),
            &client,
            &params(call, false),
            &peer,
        )
        .await
        .map_err(authority_error)?;
        Ok(verdict(answer))
    }

    async fn may_offer(
        &self,
        agent: &AgentId,
        tool: &str,
        action: &Action,
    ) -> Result<bool, AuthorityError> {
        let client = self.client(agent).await?;
        let call = dry_run_call(agent, tool, action);
        match crate::flows::decide::decide(
            &self.services.deciding(),
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
        let params = approval_params(
            call,
            binding_message,
            &client.owner_subject,
            jkt,
            self.services.hold_timeout_secs(),
        );
        let peer = Peer {
            source_ip: call.source_ip,
        };
        let authorizing = self.services.authorizing();
        let response =
            crate::ciba::authorize::backchannel_authorize(&authorizing, &client, params, &peer)
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
        match crate::ciba::token::exchange(
            &self.services.issuing(),
            &client,
            &AuthReqId::new(auth_req_id),
            Some(jkt.clone()),
        )
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
        let now_ms = self.services.now_ms();
        super::calls::withdraw(
            self.services.store(),
            &ClientId::new(agent.0.as_str()),
            &AuthReqId::new(auth_req_id),
            reason,
            now_ms,
        )
        .await
        .map(|_| ())
        .map_err(|e| AuthorityError::Unavailable(e.to_string()))
    }

    async fn approval_status(
        &self,
        auth_req_id: &str,
    ) -> Result<Option<ApprovalView>, AuthorityError> {
        let store = self.services.store();
        let unavailable = |e: crate::store::StoreError| AuthorityError::Unavailable(e.to_string());
        let Some(request) = store
            .auth_request(&AuthReqId::new(auth_req_id))
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        let now_ms = self.services.now_ms();
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
        let approvers = store.approvers_of(&request.id).await.map_err(unavailable)?;
        Ok(Some(ApprovalView {
            agent: AgentId(request.client_id.into_string()),
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
                Some(access_token),
                self.services.now_ms().div_euclid(1000),
            )
            .map_err(AuthorityError::Unavailable)
    }

    async fn record(
        &self,
        call: &Call,
        decision_id: Option<&str>,
        fate: &Fate,
    ) -> Result<(), AuthorityError> {
        let report = CallReport::of(call, decision_id, fate);
        let durable = !report.after_the_upstream();
        super::calls::record(
            self.services.store(),
            &report,
            self.services.now_ms(),
            durable,
        )
        .await
        .map_err(|e| AuthorityError::Unavailable(e.to_string()))
    }
}
