//! Reading the trail out: exports (JSON lines or CSV) filtered by time, agent and human,
//! and the question auditors ask most: who approved agent X's access to resource Y, and
//! under which policy.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{AuditEvent, EventKind};
use crate::store::{Store, StoreError};

/// Events read per page.
const PAGE: i64 = 1000;

/// Which events to export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportFilter {
    /// Unix milliseconds, inclusive; and exclusive.
    pub since_ms: i64,
    pub until_ms: i64,
    /// Events about this agent (client id).
    pub agent: Option<String>,
    /// Events about this human: as the user, owner or approver, or as the actor.
    pub human: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

fn detail_is(detail: &Value, keys: &[&str], value: &str) -> bool {
    keys.iter()
        .any(|k| detail.get(*k).and_then(Value::as_str) == Some(value))
}

impl ExportFilter {
    pub fn matches(&self, e: &AuditEvent) -> bool {
        let agent_ok = self.agent.as_deref().is_none_or(|a| {
            detail_is(&e.detail, &["agent"], a)
                || e.actor == format!("client:{a}")
                || e.subject == format!("agent:{a}")
        });
        let human_ok = self.human.as_deref().is_none_or(|h| {
            detail_is(&e.detail, &["user", "owner", "approver", "subject"], h)
                || e.actor == format!("human:{h}")
                || e.subject == format!("human:{h}")
        });
        agent_ok && human_ok
    }
}

/// A CSV field: a cell a spreadsheet would run as a formula (starting with `=`, `+`,
/// `-`, `@`, a tab or a carriage return; the trail holds text agents and IdPs chose) is
/// neutralised with a leading `'`, then quoted where RFC 4180 needs it.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

pub const CSV_HEADER: &str = "seq,at,actor,kind,subject,detail,prev_hash,hash";

/// One event as a line of the export (without the line break).
pub fn line(e: &AuditEvent, format: ExportFormat) -> String {
    match format {
        ExportFormat::Jsonl => serde_json::to_string(e).unwrap_or_default(),
        ExportFormat::Csv => [
            e.seq.to_string(),
            crate::clock::rfc3339(e.at.div_euclid(1000)),
            e.actor.clone(),
            e.kind.clone(),
            e.subject.clone(),
            e.detail.to_string(),
            e.prev_hash.clone(),
            e.hash.clone(),
        ]
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(","),
    }
}

impl ExportFormat {
    /// `jsonl` (also the default when absent) or `csv`.
    pub fn parse(name: Option<&str>) -> Option<Self> {
        match name {
            None | Some("jsonl") => Some(Self::Jsonl),
            Some("csv") => Some(Self::Csv),
            Some(_) => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jsonl => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Jsonl => "jsonl",
            Self::Csv => "csv",
        }
    }
}

/// The whole export as text: every matching event, one per line, after the CSV header.
pub async fn to_text(
    store: &Store,
    filter: &ExportFilter,
    format: ExportFormat,
) -> Result<String, StoreError> {
    let mut body = String::new();
    if format == ExportFormat::Csv {
        body.push_str(CSV_HEADER);
        body.push('\n');
    }
    for_each(store, filter, |e| {
        body.push_str(&line(&e, format));
        body.push('\n');
    })
    .await?;
    Ok(body)
}

/// Calls `emit` with each matching event, oldest first, reading the trail page by page.
pub async fn for_each(
    store: &Store,
    filter: &ExportFilter,
    mut emit: impl FnMut(AuditEvent),
) -> Result<usize, StoreError> {
    let mut after = 0;
    let mut count = 0;
    loop {
        let page = store
            .audit_events_between(filter.since_ms, filter.until_ms, after, PAGE)
            .await?;
        let Some(last) = page.last().map(|e| e.seq) else {
            return Ok(count);
        };
        after = last;
        for record in page {
            let event = AuditEvent::from(record);
            if filter.matches(&event) {
                count += 1;
                emit(event);
            }
        }
    }
}

/// One access of an agent to a resource and how it was approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalRecord {
    /// The request (or decision) id.
    pub request: String,
    /// Unix seconds of the decision.
    pub at: i64,
    pub agent: String,
    pub action: String,
    pub resource: String,
    /// `allow` (by policy) or `step_up` (a human was asked).
    pub outcome: String,
    #[schema(value_type = Vec<Object>)]
    pub policies: Value,
    /// Who approved: a human's subject, or `policy` when a policy allowed it; `None` while
    /// undecided or when the human denied.
    pub approved_by: Option<String>,
    /// `passkey+device_key`, `dev`, `policy`, or `denied`.
    pub method: Option<String>,
    /// Credentials issued for it.
    pub credentials: Vec<String>,
}

/// An approval as the trail links it: the record, and the events it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracedApproval {
    pub record: ApprovalRecord,
    /// The `decision.made` event.
    pub decision_seq: i64,
    /// The human's `request.approved` / `request.denied` event, when a human decided;
    /// and when (Unix milliseconds).
    pub human_decision: Option<(i64, i64)>,
}

/// Most approvals one question answers (the newest).
pub const APPROVALS_LIMIT: i64 = 1000;

/// Who approved `agent`'s access (to `resource`, when given) since `since_ms`, under which
/// policy, from the trail alone: the newest [`APPROVALS_LIMIT`], oldest first.
pub async fn approvals(
    store: &Store,
    agent: &str,
    resource: Option<&str>,
    since_ms: i64,
) -> Result<Vec<ApprovalRecord>, StoreError> {
    let traced = traced_approvals(store, agent, resource, since_ms, APPROVALS_LIMIT).await?;
    Ok(traced.into_iter().rev().map(|t| t.record).collect())
}

/// The newest `limit` approvals of `agent`'s access (to `resource`, when given) since
/// `since_ms`, newest first, with the events they were read from. Indexed reads only:
/// the decisions by agent, the humans' decisions on those requests by subject, the
/// credentials by request id.
pub async fn traced_approvals(
    store: &Store,
    agent: &str,
    resource: Option<&str>,
    since_ms: i64,
    limit: i64,
) -> Result<Vec<TracedApproval>, StoreError> {
    let decisions = store
        .approving_decisions(agent, resource, since_ms, limit.clamp(1, APPROVALS_LIMIT))
        .await?;
    let ids: Vec<String> = decisions.iter().map(|d| d.subject.clone()).collect();
    let humans = store.human_decisions_on(&ids).await?;
    let credentials = store.credentials_of_requests(&ids).await?;
    Ok(decisions
        .into_iter()
        .map(|d| {
            let seq = d.seq;
            let event = AuditEvent::from(d);
            let text = |v: &Value, k: &str| {
                v.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let outcome = text(&event.detail, "outcome");
            let by_policy = outcome == "allow";
            let human = humans.iter().rfind(|h| h.subject == event.subject);
            let (approved_by, method) = match human {
                Some(h) => {
                    let detail: Value = serde_json::from_str(&h.detail).unwrap_or(Value::Null);
                    if h.kind == EventKind::RequestApproved.as_str() {
                        (
                            Some(text(&detail, "approver")),
                            Some(text(&detail, "method")),
                        )
                    } else {
                        (None, Some("denied".to_owned()))
                    }
                }
                None if by_policy => (Some("policy".to_owned()), Some("policy".to_owned())),
                None => (None, None),
            };
            TracedApproval {
                decision_seq: seq,
                human_decision: human.map(|h| (h.seq, h.at)),
                record: ApprovalRecord {
                    request: event.subject.clone(),
                    at: event.at.div_euclid(1000),
                    agent: agent.to_owned(),
                    action: text(&event.detail, "action"),
                    resource: text(&event.detail, "resource"),
                    outcome,
                    policies: event.detail.get("policies").cloned().unwrap_or(Value::Null),
                    approved_by,
                    method,
                    credentials: credentials
                        .iter()
                        .filter(|(request, _)| *request == event.subject)
                        .map(|(_, jti)| jti.clone())
                        .collect(),
                },
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_they_must_be() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn csv_cells_a_spreadsheet_would_run_are_neutralised() {
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("=1+1"), "'=1+1");
        assert_eq!(csv_field("+1"), "'+1");
        assert_eq!(csv_field("-1"), "'-1");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("\tx"), "'\tx");
        assert_eq!(csv_field("\rx"), "\"'\rx\"");
        assert_eq!(csv_field("a=1"), "a=1");
        assert_eq!(csv_field("{\"a\":\"=1\"}"), "\"{\"\"a\"\":\"\"=1\"\"}\"");
    }

    #[test]
    fn filters_match_agents_and_humans_wherever_they_appear() {
        let event = |actor: &str, detail: Value| AuditEvent {
            seq: 1,
            at: 0,
            actor: actor.into(),
            kind: "k".into(),
            subject: "s".into(),
            detail,
            prev_hash: String::new(),
            hash: String::new(),
        };
        let f = ExportFilter {
            agent: Some("bot".into()),
            ..ExportFilter::default()
        };
        assert!(f.matches(&event("client:bot", serde_json::json!({}))));
        assert!(f.matches(&event("cli", serde_json::json!({"agent": "bot"}))));
        assert!(!f.matches(&event("cli", serde_json::json!({"agent": "other"}))));
        let h = ExportFilter {
            human: Some("alice".into()),
            ..ExportFilter::default()
        };
        assert!(h.matches(&event("human:alice", serde_json::json!({}))));
        assert!(h.matches(&event("cli", serde_json::json!({"approver": "alice"}))));
        assert!(!h.matches(&event("cli", serde_json::json!({"approver": "bob"}))));
    }
}
