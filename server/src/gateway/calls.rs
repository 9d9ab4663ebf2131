//! What the gateway reports back to the trace: what became of each call, and the approval
//! requests an agent withdraws when its user gives up on a held call. The gateway in this
//! process reports directly; a gateway on another machine reports over
//! `POST /v1/gateway-calls` and `POST /v1/withdrawals`, authenticated as the agent, and
//! the same checks and records apply.

use countersign_gateway::{Call, Fate};
use serde_json::{Map, Value, json};

use crate::ciba::CibaError;
use crate::ids::{AuthReqId, ClientId};
use crate::store::audit::{EventKind, NewAuditRecord};
use crate::store::auth_requests::{Decision, DecisionMethod};
use crate::store::group_commit::WriteSet;
use crate::store::{Store, StoreError};

/// Longest tool name, MCP request id, session or approval request id accepted from a
/// remote gateway; longest reason.
const MAX_NAME: usize = 256;
const MAX_REASON: usize = 1_000;

/// The outcomes [`Fate::outcome`] names, the only ones a report may carry.
pub const OUTCOMES: [&str; 5] = [
    "awaiting_approval",
    "forwarded",
    "forwarded_tool_error",
    "upstream_failed",
    "stopped",
];

/// One call's fate, as the trace records it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallReport {
    /// The agent's client id.
    pub agent: String,
    /// The namespaced tool.
    pub tool: String,
    pub mcp_request_id: String,
    pub session: Option<String>,
    pub decision_id: Option<String>,
    /// One of [`OUTCOMES`].
    pub outcome: &'static str,
    pub reason: Option<String>,
    /// The approval request a held call waits for.
    pub auth_req_id: Option<String>,
}

impl CallReport {
    pub fn of(call: &Call, decision_id: Option<&str>, fate: &Fate) -> Self {
        Self {
            agent: call.agent.0.clone(),
            tool: call.tool.clone(),
            mcp_request_id: call.mcp_request_id.clone(),
            session: call.session.clone(),
            decision_id: decision_id.map(str::to_owned),
            outcome: fate.outcome(),
            reason: fate.reason().map(str::to_owned),
            auth_req_id: match fate {
                Fate::AwaitingApproval { auth_req_id } => Some(auth_req_id.clone()),
                _ => None,
            },
        }
    }

    /// Whether the upstream has acted already: the answer goes to the agent whatever
    /// becomes of this record, so the gateway in this process need not wait for its
    /// commit (the decision was durable before the call was forwarded).
    pub fn after_the_upstream(&self) -> bool {
        matches!(
            self.outcome,
            "forwarded" | "forwarded_tool_error" | "upstream_failed"
        )
    }

    fn event(&self, at_ms: i64) -> NewAuditRecord {
        let mut detail = json!({
            "agent": self.agent,
            "tool": self.tool,
            "mcp_request_id": self.mcp_request_id,
            "session": self.session,
            "decision_id": self.decision_id,
            "outcome": self.outcome,
            "reason": self.reason,
        });
        if let Some(id) = &self.auth_req_id {
            detail["auth_req_id"] = Value::String(id.clone());
        }
        NewAuditRecord {
            at: at_ms,
            actor: format!("client:{}", self.agent),
            kind: EventKind::GatewayCall.as_str().to_owned(),
            subject: self.decision_id.as_deref().unwrap_or(&self.tool).to_owned(),
            detail: detail.to_string(),
        }
    }
}

/// Records `report` in the trace; with `durable`, only once it is committed.
pub async fn record(
    store: &Store,
    report: &CallReport,
    now_ms: i64,
    durable: bool,
) -> Result<(), StoreError> {
    let set = WriteSet {
        events: vec![report.event(now_ms)],
        ..WriteSet::default()
    };
    if durable {
        store.write(set).await.map(|_| ())
    } else {
        store.submit(set).await
    }
}

fn text<'a>(
    params: &'a Map<String, Value>,
    name: &str,
    max: usize,
) -> Result<Option<&'a str>, CibaError> {
    match params.get(name).and_then(Value::as_str) {
        None | Some("") => Ok(None),
        Some(s) if s.len() > max => Err(CibaError::InvalidRequest(format!(
            "{name} is longer than {max} bytes"
        ))),
        Some(s) => Ok(Some(s)),
    }
}

/// The report a remote gateway sent for `agent` (`POST /v1/gateway-calls`): every field
/// bounded, the outcome one the gateway names, and the decision and approval request it
/// names the agent's own, so no agent can write into another's history.
pub async fn report_from(
    store: &Store,
    agent: &str,
    params: &Map<String, Value>,
) -> Result<CallReport, CibaError> {
    let tool = text(params, "tool", MAX_NAME)?
        .ok_or_else(|| CibaError::InvalidRequest("tool is required".into()))?;
    let outcome = text(params, "outcome", MAX_NAME)?
        .ok_or_else(|| CibaError::InvalidRequest("outcome is required".into()))?;
    let outcome = OUTCOMES
        .into_iter()
        .find(|known| *known == outcome)
        .ok_or_else(|| {
            CibaError::InvalidRequest(format!("outcome must be one of {}", OUTCOMES.join(", ")))
        })?;
    let decision_id = text(params, "decision_id", MAX_NAME)?;
    if let Some(id) = decision_id {
        let actor = format!("client:{agent}");
        let events = store.audit_events_about(id, 1).await?;
        if events.first().is_none_or(|first| first.actor != actor) {
            return Err(CibaError::InvalidRequest(
                "decision_id names no decision made for this agent".into(),
            ));
        }
    }
    let auth_req_id = text(params, "auth_req_id", MAX_NAME)?;
    match (outcome, auth_req_id) {
        ("awaiting_approval", None) => {
            return Err(CibaError::InvalidRequest(
                "a call awaiting approval names its auth_req_id".into(),
            ));
        }
        (_, Some(id)) => {
            let own = store.auth_request(&AuthReqId::new(id)).await?;
            if own.is_none_or(|request| request.client_id != agent) {
                return Err(CibaError::InvalidRequest(
                    "auth_req_id names no approval request of this agent".into(),
                ));
            }
        }
        _ => {}
    }
    Ok(CallReport {
        agent: agent.to_owned(),
        tool: tool.to_owned(),
        mcp_request_id: text(params, "mcp_request_id", MAX_NAME)?
            .unwrap_or_default()
            .to_owned(),
        session: text(params, "session", MAX_NAME)?.map(str::to_owned),
        decision_id: decision_id.map(str::to_owned),
        outcome,
        reason: text(params, "reason", MAX_REASON)?.map(str::to_owned),
        auth_req_id: auth_req_id.map(str::to_owned),
    })
}

/// Ends `agent`'s pending approval request `auth_req_id` (its user gave up on the held
/// call): the approvers are no longer asked and it can no longer be collected. Whether it
/// was withdrawn now; a request of another agent, unknown, or already answered or
/// expired is left as it is.
pub async fn withdraw(
    store: &Store,
    agent: &ClientId,
    auth_req_id: &AuthReqId,
    reason: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    match store.auth_request(auth_req_id).await? {
        Some(request) if request.client_id == *agent => {}
        _ => return Ok(false),
    }
    let actor = format!("client:{agent}");
    let decision = Decision {
        approved: false,
        decided_by: &actor,
        method: DecisionMethod::Withdrawn,
        at_ms: now_ms,
        approval_jws: None,
        device_jkt: None,
    };
    // Only a pending, unexpired request changes; one answered meanwhile stays answered.
    let Some(request) = store.decide_poll_request(auth_req_id, &decision).await? else {
        return Ok(false);
    };
    let detail = json!({
        "agent": request.client_id,
        "user": request.subject,
        "method": DecisionMethod::Withdrawn.as_str(),
        "reason": reason,
        "waited_ms": (now_ms - request.created_at).max(0),
    });
    let event = NewAuditRecord {
        at: now_ms,
        actor,
        kind: EventKind::RequestWithdrawn.as_str().to_owned(),
        subject: request.id.into_string(),
        detail: detail.to_string(),
    };
    let set = WriteSet {
        events: vec![event],
        ..WriteSet::default()
    };
    store.write(set).await.map(|_| true)
}

/// The reason a remote gateway gives for a withdrawal, bounded.
pub fn withdrawal_reason(params: &Map<String, Value>) -> Result<&str, CibaError> {
    Ok(text(params, "reason", MAX_REASON)?.unwrap_or("withdrawn by the agent"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use countersign_gateway::{AgentId, mapping::Action};

    fn call() -> Call {
        Call {
            agent: AgentId("shopper".into()),
            tool: "shop.place_order".into(),
            action: Action {
                detail: json!({"type": "purchase_order"}),
                resource: None,
            },
            session: Some("s-1".into()),
            mcp_request_id: "7".into(),
            source_ip: None,
        }
    }

    #[test]
    fn every_fate_has_an_outcome_a_remote_gateway_may_report() {
        let fates = [
            Fate::AwaitingApproval {
                auth_req_id: "r".into(),
            },
            Fate::Forwarded { is_error: false },
            Fate::Forwarded { is_error: true },
            Fate::UpstreamFailed { reason: "x".into() },
            Fate::Stopped { reason: "y".into() },
        ];
        for fate in &fates {
            assert!(OUTCOMES.contains(&fate.outcome()), "{fate:?}");
        }
        let outcomes: std::collections::BTreeSet<_> = fates.iter().map(Fate::outcome).collect();
        assert_eq!(
            outcomes.len(),
            OUTCOMES.len(),
            "each outcome is some fate's"
        );
    }

    #[test]
    fn a_report_records_the_call_with_its_agent_as_actor() {
        let report = CallReport::of(
            &call(),
            Some("dec_1"),
            &Fate::AwaitingApproval {
                auth_req_id: "req-1".into(),
            },
        );
        assert!(!report.after_the_upstream());
        let event = report.event(5);
        assert_eq!(event.kind, EventKind::GatewayCall.as_str());
        assert_eq!(event.actor, "client:shopper");
        assert_eq!(event.subject, "dec_1");
        let detail: Value = serde_json::from_str(&event.detail).unwrap();
        assert_eq!(detail["auth_req_id"], "req-1");
        assert_eq!(detail["outcome"], "awaiting_approval");
        assert_eq!(detail["mcp_request_id"], "7");
        let forwarded = CallReport::of(&call(), None, &Fate::Forwarded { is_error: false });
        assert!(forwarded.after_the_upstream());
        assert_eq!(forwarded.event(5).subject, "shop.place_order");
    }

    #[test]
    fn report_fields_are_bounded() {
        let mut params = Map::new();
        params.insert("reason".into(), Value::String("x".repeat(MAX_REASON + 1)));
        assert!(matches!(
            text(&params, "reason", MAX_REASON),
            Err(CibaError::InvalidRequest(_))
        ));
        assert!(matches!(
            withdrawal_reason(&params),
            Err(CibaError::InvalidRequest(_))
        ));
        params.insert("reason".into(), Value::String(String::new()));
        assert_eq!(
            withdrawal_reason(&params).unwrap(),
            "withdrawn by the agent"
        );
    }
}
