//! Reading the trail out: exports (JSON lines or CSV) filtered by time, agent and human,
//! and the question auditors ask most: who approved agent X's access to resource Y, and
//! under which policy.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::AuditEvent;
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

/// Quotes a CSV field (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

pub const CSV_HEADER: &str = "seq,at,actor,kind,subject,detail,prev_hash,hash";

/// One event as a line of the export (without the line break).
pub fn line(e: &AuditEvent, format: ExportFormat) -> String {
    match format {
        ExportFormat::Jsonl => serde_json::to_string(e).unwrap_or_default(),
        ExportFormat::Csv => [
            e.seq.to_string(),
            crate::credentials::vc::rfc3339(e.at.div_euclid(1000)),
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

/// Who approved `agent`'s access (to `resource`, when given) since `since_ms`, under which
/// policy, from the trail alone.
pub async fn approvals(
    store: &Store,
    agent: &str,
    resource: Option<&str>,
    since_ms: i64,
) -> Result<Vec<ApprovalRecord>, StoreError> {
    let filter = ExportFilter {
        since_ms,
        until_ms: i64::MAX,
        agent: None,
        human: None,
    };
    let mut records: Vec<ApprovalRecord> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for_each(store, &filter, |e| {
        let d = &e.detail;
        let text = |k: &str| {
            d.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        match e.kind.as_str() {
            crate::policy::trace::DECISION_MADE => {
                let outcome = text("outcome");
                let wanted = text("agent") == agent
                    && resource.is_none_or(|r| text("resource") == r)
                    && (outcome == "allow" || outcome == "step_up");
                if wanted {
                    index.insert(e.subject.clone(), records.len());
                    records.push(ApprovalRecord {
                        request: e.subject.clone(),
                        at: e.at.div_euclid(1000),
                        agent: agent.to_owned(),
                        action: text("action"),
                        resource: text("resource"),
                        approved_by: (outcome == "allow").then(|| "policy".to_owned()),
                        method: (outcome == "allow").then(|| "policy".to_owned()),
                        outcome,
                        policies: d.get("policies").cloned().unwrap_or(Value::Null),
                        credentials: Vec::new(),
                    });
                }
            }
            crate::approvals::kinds::REQUEST_APPROVED | crate::approvals::kinds::REQUEST_DENIED => {
                if let Some(&i) = index.get(&e.subject) {
                    let approved = e.kind == crate::approvals::kinds::REQUEST_APPROVED;
                    records[i].approved_by = approved.then(|| text("approver"));
                    records[i].method = Some(if approved {
                        text("method")
                    } else {
                        "denied".to_owned()
                    });
                }
            }
            crate::credentials::kinds::CREDENTIAL_ISSUED => {
                if let Some(&i) = index.get(&text("request")) {
                    records[i].credentials.push(e.subject.clone());
                }
            }
            _ => {}
        }
    })
    .await?;
    Ok(records)
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
