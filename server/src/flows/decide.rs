//! The decision use case (`POST /v1/decisions`): a decision without a credential, for
//! gateways that enforce it themselves, and dry-runs. Authenticated as the agent's client;
//! traced like every decision (unless a dry-run), and feeding the session and baselines
//! the same way `bc-authorize` does.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::ciba::CibaError;
use crate::ciba::authorize::Peer;
use crate::ciba::details::DetailSchemas;
use crate::ciba::request::{prompt_labels, task_id};
use crate::policy::facts::Principal;
use crate::policy::service::{self, Attempt, Decided, PolicyEngine};
use crate::policy::{ApproverRoute, Outcome, PolicyRef, trace};
use crate::store::Store;
use crate::store::clients::ClientRecord;
use crate::store::group_commit::WriteSet;
use crate::store::humans::HumanRecord;

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

/// What deciding works with.
pub struct Deciding<'a> {
    pub policy: &'a PolicyEngine,
    pub store: &'a Store,
    pub details: &'a DetailSchemas,
    pub now_ms: i64,
}

/// Decides the action described by `params` for `client`.
///
/// Parameters: `authorization_details` (RFC 9396 array) or `action` with optional
/// `arguments` (a JSON object); `resource` (a tool id); `login_hint` (default: the agent's
/// owner); `task_id`; `prompt_labels`; `scope` (default `openid`); `dry_run=true`.
pub async fn decide(
    deps: &Deciding<'_>,
    client: &ClientRecord,
    params: &Map<String, Value>,
    peer: &Peer,
) -> Result<DecisionAnswer, CibaError> {
    if !client.enabled {
        return Err(CibaError::UnauthorizedClient(
            "the client is disabled".into(),
        ));
    }
    let details = requested_details(params)?;
    if !details.is_empty() {
        deps.details.check(&details)?;
    }
    let user = user_of(deps.store, client, string(params, "login_hint")).await?;
    let dry_run = dry_run(params)?;
    let labels = prompt_labels(params)?;
    let task = task_id(params)?;
    let attempt = Attempt {
        client,
        user: &user,
        details: (!details.is_empty()).then_some(details.as_slice()),
        resource: string(params, "resource"),
        scope: string(params, "scope").unwrap_or("openid"),
        binding_message: None,
        task_id: task.as_deref(),
        source_ip: peer.source_ip,
        prompt_labels: &labels,
        principal: Principal::Agent,
    };
    let decided = service::decide(deps.policy, deps.store, &attempt, deps.now_ms).await?;
    let decision_id = if dry_run {
        None
    } else {
        Some(record(deps, client, &attempt, &decided).await?)
    };
    Ok(answer(
        decided,
        decision_id,
        user.subject.into_string(),
        dry_run,
    ))
}

/// The entries to decide: `authorization_details` as sent, or one entry of type `action`
/// with `arguments` as its fields; none when neither is sent.
fn requested_details(params: &Map<String, Value>) -> Result<Vec<Value>, CibaError> {
    match (
        string(params, "authorization_details"),
        string(params, "action"),
    ) {
        (Some(_), Some(_)) => Err(CibaError::InvalidRequest(
            "send authorization_details or action, not both".into(),
        )),
        (Some(text), None) => match serde_json::from_str(text) {
            Ok(Value::Array(items)) if !items.is_empty() => Ok(items),
            Ok(_) => Err(CibaError::InvalidAuthorizationDetails(
                "must be a non-empty JSON array".into(),
            )),
            Err(e) => Err(CibaError::InvalidAuthorizationDetails(format!(
                "not valid JSON: {e}"
            ))),
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
            Ok(vec![Value::Object(entry)])
        }
        (None, None) => Ok(Vec::new()),
    }
}

/// The human the action is decided for: the `login_hint`'s, else the agent's owner.
async fn user_of(
    store: &Store,
    client: &ClientRecord,
    login_hint: Option<&str>,
) -> Result<HumanRecord, CibaError> {
    let found = match login_hint {
        Some(hint) => store.human_by_hint(hint).await?,
        None => store.human(&client.owner_subject).await?,
    };
    found.ok_or(CibaError::UnknownUserId)
}

fn dry_run(params: &Map<String, Value>) -> Result<bool, CibaError> {
    match string(params, "dry_run") {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(CibaError::InvalidRequest(
            "dry_run must be true or false".into(),
        )),
    }
}

/// Writes the decision's trace (with the session's update and the baseline's samples)
/// and returns its id.
async fn record(
    deps: &Deciding<'_>,
    client: &ClientRecord,
    attempt: &Attempt<'_>,
    decided: &Decided,
) -> Result<String, CibaError> {
    let id = crate::ids::sortable("dec_", deps.now_ms, 16);
    let event = trace::decision_event(
        decided,
        &format!("client:{}", client.client_id),
        &id,
        attempt.details,
        deps.now_ms,
    );
    let set = WriteSet {
        events: vec![event],
        session: decided.session.clone(),
        samples: decided.samples.clone(),
        ..WriteSet::default()
    };
    deps.store.write(set).await?;
    deps.policy.observe(&decided.samples);
    Ok(id)
}

fn answer(
    decided: Decided,
    decision_id: Option<String>,
    subject: String,
    dry_run: bool,
) -> DecisionAnswer {
    let d = decided.decision;
    DecisionAnswer {
        decision_id,
        decision: d.outcome,
        subject,
        policies: d.policies,
        reasons: d.reasons,
        approver_routes: if d.outcome == Outcome::StepUp {
            d.approvers
        } else {
            Vec::new()
        },
        approvers: decided
            .approvers
            .into_iter()
            .map(crate::ids::Subject::into_string)
            .collect(),
        validity_secs: d.validity_secs,
        risk_signals: d.risk_signals,
        dry_run,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
            .collect()
    }

    #[test]
    fn an_action_with_arguments_is_one_entry_of_its_type() {
        let entries = requested_details(&params(&[
            ("action", "purchase_order"),
            ("arguments", r#"{"amount": 120}"#),
        ]))
        .expect("valid");
        assert_eq!(
            entries,
            [serde_json::json!({"type": "purchase_order", "amount": 120})]
        );
        assert!(requested_details(&params(&[])).expect("valid").is_empty());
    }

    #[test]
    fn malformed_requests_are_refused_by_name() {
        let refused = |pairs: &[(&str, &str)]| requested_details(&params(pairs)).err();
        assert!(matches!(
            refused(&[("action", "a"), ("authorization_details", "[{}]")]),
            Some(CibaError::InvalidRequest(_))
        ));
        assert!(matches!(
            refused(&[("authorization_details", "[]")]),
            Some(CibaError::InvalidAuthorizationDetails(_))
        ));
        assert!(matches!(
            refused(&[("authorization_details", "{")]),
            Some(CibaError::InvalidAuthorizationDetails(_))
        ));
        assert!(matches!(
            refused(&[("action", "a"), ("arguments", "[1]")]),
            Some(CibaError::InvalidRequest(_))
        ));
        assert_eq!(dry_run(&params(&[("dry_run", "true")])).ok(), Some(true));
        assert_eq!(dry_run(&params(&[])).ok(), Some(false));
        assert!(dry_run(&params(&[("dry_run", "yes")])).is_err());
    }
}
