//! Dry-runs: replay recent decisions, with the facts each one saw (they are in its trace
//! event), through a candidate policy document and report what would change.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::document::PolicyDocument;
use super::engine::evaluate;
use super::facts::DecisionFacts;
use super::{Decision, Outcome, PolicyError, PolicyRef};
use crate::audit::EventKind;
use crate::store::Store;

/// Most decisions one dry-run replays.
pub const MAX_REPLAYED: i64 = 100_000;

/// A decision whose outcome the candidate changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChangedDecision {
    /// The request (or decision) id, and when it was decided (Unix seconds).
    pub subject: String,
    pub at: i64,
    pub agent: String,
    pub action: String,
    pub was: Outcome,
    pub would_be: Outcome,
    pub policies_then: Vec<PolicyRef>,
    pub policies_now: Vec<PolicyRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DryRunReport {
    /// Decisions replayed.
    pub replayed: usize,
    pub unchanged: usize,
    /// `"allow -> step_up": 3`, one entry per kind of change.
    pub changes: BTreeMap<String, usize>,
    /// Up to `limit` changed decisions, newest first.
    pub changed: Vec<ChangedDecision>,
    /// Trace events that could not be replayed (written before facts were recorded).
    pub skipped: usize,
}

/// Replays one recorded decision's facts through `doc`.
pub fn replay(doc: &PolicyDocument, facts: &[DecisionFacts]) -> Option<Decision> {
    Decision::combine(facts.iter().map(|f| evaluate(doc, f)).collect())
}

/// Replays the decisions made at or after `since_ms` through `candidate`.
pub async fn dry_run(
    store: &Store,
    candidate: &PolicyDocument,
    since_ms: i64,
    limit: usize,
) -> Result<DryRunReport, PolicyError> {
    let events = store
        .audit_events_of_kind(EventKind::DecisionMade.as_str(), since_ms, MAX_REPLAYED)
        .await?;
    let mut report = DryRunReport {
        replayed: 0,
        unchanged: 0,
        changes: BTreeMap::new(),
        changed: Vec::new(),
        skipped: 0,
    };
    for event in events {
        let detail: Value = serde_json::from_str(&event.detail).unwrap_or(Value::Null);
        let facts: Option<Vec<DecisionFacts>> = detail
            .get("inputs")
            .and_then(|v| serde_json::from_value(v.clone()).ok());
        let was = detail
            .get("evaluated")
            .and_then(Value::as_str)
            .and_then(Outcome::parse);
        let (Some(facts), Some(was)) = (facts, was) else {
            report.skipped += 1;
            continue;
        };
        let Some(now) = replay(candidate, &facts) else {
            report.skipped += 1;
            continue;
        };
        report.replayed += 1;
        if now.outcome == was {
            report.unchanged += 1;
            continue;
        }
        *report
            .changes
            .entry(format!("{} -> {}", was.as_str(), now.outcome.as_str()))
            .or_default() += 1;
        if report.changed.len() < limit {
            let policies_then = detail
                .get("policies")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default();
            report.changed.push(ChangedDecision {
                subject: event.subject,
                at: event.at.div_euclid(1000),
                agent: facts[0].agent.client_id.to_string(),
                action: facts[0].action.clone(),
                was,
                would_be: now.outcome,
                policies_then,
                policies_now: now.policies,
            });
        }
    }
    Ok(report)
}
