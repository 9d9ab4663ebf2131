//! The decision API (`POST /v1/decisions`): a decision without a credential, for gateways
//! that enforce it themselves, and dry-runs. Authenticated as the agent's client; traced
//! like every decision (unless a dry-run), and feeding the session and baselines the same
//! way `bc-authorize` does.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::service::{self, Attempt};
use super::{ApproverRoute, Outcome, PolicyRef};
use crate::ciba::CibaError;
use crate::ciba::authorize::{Peer, check_authorization_details};
use crate::ciba::request::{prompt_labels, task_id};
use crate::state::AppState;
use crate::store::clients::ClientRecord;
use crate::store::group_commit::WriteSet;

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DecisionAnswer {
    /// Names this decision in the trace (absent for a dry-run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_id: Option<String>,
    pub decision: Outcome,
    /// The human the action was decided for: the `login_hint`'s, or the agent's owner.
    /// An approval of it is asked for with this subject as the `login_hint`.
    pub subject: String,
    /// The policies that determined it (`@id` and version).
    pub policies: Vec<PolicyRef>,
    pub reasons: Vec<String>,
    /// For `step_up`: who may approve (routes as the policy names them) and the humans
    /// they resolve to now.
    #[schema(value_type = Vec<String>)]
    pub approver_routes: Vec<ApproverRoute>,
    pub approvers: Vec<String>,
    /// The credential validity a step-up or allow would get, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validity_secs: Option<u64>,
    pub risk_signals: Vec<String>,
    pub dry_run: bool,
}

fn string<'a>(params: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    params
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Decides the action described by `params` for `client`.
///
/// Parameters: `authorization_details` (RFC 9396 array) or `action` with optional
/// `arguments` (a JSON object); `resource` (a tool id); `login_hint` (default: the agent's
/// owner); `task_id`; `prompt_labels`; `scope` (default `openid`); `dry_run=true`.
pub async fn decide(
    state: &AppState,
    client: &ClientRecord,
    params: &Map<String, Value>,
    peer: &Peer,
) -> Result<DecisionAnswer, CibaError> {
    if !client.enabled {
        return Err(CibaError::UnauthorizedClient(
            "the client is disabled".into(),
        ));
    }
    let details: Vec<Value> = match (
        string(params, "authorization_details"),
        string(params, "action"),
    ) {
        (Some(_), Some(_)) => {
            return Err(CibaError::InvalidRequest(
                "send authorization_details or action, not both".into(),
            ));
        }
        (Some(text), None) => match serde_json::from_str(text) {
            Ok(Value::Array(items)) if !items.is_empty() => items,
            Ok(_) => {
                return Err(CibaError::InvalidAuthorizationDetails(
                    "must be a non-empty JSON array".into(),
                ));
            }
            Err(e) => {
                return Err(CibaError::InvalidAuthorizationDetails(format!(
                    "not valid JSON: {e}"
                )));
            }
        },
        (None, Some(action)) => {
            let mut entry = match string(params, "arguments") {
                None => Map::new(),
                Some(text) => match serde_json::from_str(text) {
                    Ok(Value::Object(map)) => map,
                    _ => {
                        return Err(CibaError::InvalidRequest(
                            "arguments must be a JSON object".into(),
                        ));
                    }
                },
            };
            entry.insert("type".into(), Value::String(action.to_owned()));
            vec![Value::Object(entry)]
        }
        (None, None) => Vec::new(),
    };
    if !details.is_empty() {
        check_authorization_details(state, &details)?;
    }
    let user = match string(params, "login_hint") {
        Some(hint) => state
            .store
            .human_by_hint(hint)
            .await?
            .ok_or(CibaError::UnknownUserId)?,
        None => state
            .store
            .human(&client.owner_subject)
            .await?
            .ok_or(CibaError::UnknownUserId)?,
    };
    let dry_run = match string(params, "dry_run") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(CibaError::InvalidRequest(
                "dry_run must be true or false".into(),
            ));
        }
    };
    let labels = prompt_labels(params)?;
    let task = task_id(params)?;
    let scope = string(params, "scope").unwrap_or("openid");
    let now = state.now_ms();
    let attempt = Attempt {
        client,
        user: &user,
        details: (!details.is_empty()).then_some(details.as_slice()),
        resource: string(params, "resource"),
        scope,
        binding_message: None,
        task_id: task.as_deref(),
        source_ip: peer.source_ip,
        prompt_labels: &labels,
        principal: super::facts::Principal::Agent,
    };
    let decided = service::decide(state, &attempt, now).await?;
    let decision_id = if dry_run {
        None
    } else {
        let id = format!("dec_{}", countersign_jose::random_b64url(16));
        let event = super::trace::decision_event(
            &decided,
            &format!("client:{}", client.client_id),
            &id,
            attempt.details,
            now,
        );
        let set = WriteSet {
            events: vec![event],
            session: decided.session.clone(),
            samples: decided.samples.clone(),
            ..WriteSet::default()
        };
        state.store.write(set).await?;
        state.policy.observe(&decided.samples);
        Some(id)
    };
    let d = decided.decision;
    Ok(DecisionAnswer {
        decision_id,
        decision: d.outcome,
        subject: user.subject.clone(),
        policies: d.policies,
        reasons: d.reasons,
        approver_routes: if d.outcome == Outcome::StepUp {
            d.approvers
        } else {
            Vec::new()
        },
        approvers: decided.approvers,
        validity_secs: d.validity_secs,
        risk_signals: d.risk_signals,
        dry_run,
    })
}
