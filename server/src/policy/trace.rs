//! The trace of a decision: the `decision.made` audit event, written with the decision
//! (see `store::group_commit`), naming the agent, the action, the arguments by digest,
//! the determining policies, the approvers and the facts evaluated.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::facts::DecisionFacts;
use super::service::Decided;
use crate::store::audit::{EventKind, NewAuditRecord};

/// SHA-256 (hex) of the RFC 8785 canonical JSON of `value`: the trace names arguments by
/// digest; the request row holds them.
pub fn digest(value: &Value) -> String {
    let canonical = serde_json_canonicalizer::to_string(value).unwrap_or_default();
    crate::store::audit::hex(&Sha256::digest(canonical.as_bytes()))
}

/// The detail of a `decision.made` event, serialized straight to its text (it is written
/// for every decision, so no intermediate `Value`).
#[derive(serde::Serialize)]
struct DecisionDetail<'a> {
    agent: Option<&'a str>,
    owner: Option<&'a str>,
    user: Option<&'a str>,
    action: &'a str,
    resource: &'a str,
    arguments_digest: Option<String>,
    outcome: &'a str,
    evaluated: &'a str,
    policies: &'a [super::PolicyRef],
    reasons: &'a [String],
    approvers: &'a [crate::ids::Subject],
    risk_signals: &'a [String],
    inputs: &'a [DecisionFacts],
}

/// The trace event of a decision about `subject` (a request id or decision id).
pub fn decision_event(
    decided: &Decided,
    actor: &str,
    subject: &str,
    details: Option<&[Value]>,
    at_ms: i64,
) -> NewAuditRecord {
    let d = &decided.decision;
    let first = decided.facts.first();
    let detail = DecisionDetail {
        agent: first.map(|f| f.agent.client_id.as_str()),
        owner: first.map(|f| f.agent.owner.as_str()),
        user: first.map(|f| {
            f.user
                .as_ref()
                .map_or(&f.owner.subject, |u| &u.subject)
                .as_str()
        }),
        action: &decided.action,
        resource: &decided.resource,
        arguments_digest: details.map(|d| digest(&Value::Array(d.to_vec()))),
        outcome: d.outcome.as_str(),
        evaluated: decided.evaluated.as_str(),
        policies: &d.policies,
        reasons: &d.reasons,
        approvers: &decided.approvers,
        risk_signals: &d.risk_signals,
        inputs: &decided.facts,
    };
    NewAuditRecord {
        at: at_ms,
        actor: actor.to_owned(),
        kind: EventKind::DecisionMade.as_str().to_owned(),
        subject: subject.to_owned(),
        // Plain data: serializing cannot fail.
        detail: serde_json::to_string(&detail).unwrap_or_default(),
    }
}
