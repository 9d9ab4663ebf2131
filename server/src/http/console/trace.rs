//! The decision trace: every event, newest first, filtered in the database by agent,
//! human, outcome, policy, time, subject and kind (keyset-paginated); one event's detail
//! (the facts the decision saw, its policy, approver, evidence, credential and place in
//! the chain); the question "who approved agent X's access to resource Y, under which
//! policy"; and the chain's verification (on request: it reads the whole trail).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse as _, Response};
use serde::Deserialize;
use serde_json::Value;

use super::format::{age, local};
use super::{Admin, PageError, render};
use crate::audit::export::{ExportFilter, ExportFormat};
use crate::audit::{self, export};
use crate::state::AppState;
use crate::store::audit::AuditRecord;
use crate::store::audit::trace::TraceFilter;

const PAGE: i64 = 100;
/// Approvals the question lists (the newest).
const APPROVALS: i64 = 100;
/// Other events about the same request an event's detail lists.
const RELATED: i64 = 20;
const DAY_MS: i64 = 86_400_000;

/// The outcomes decision events record, as the filter offers them.
pub const OUTCOMES: [(&str, &str); 5] = [
    ("allow", "allowed by policy"),
    ("step_up", "step-up (a human asked)"),
    ("deny", "denied by policy"),
    ("approved", "approved by a human"),
    ("denied", "denied by a human"),
];

#[derive(Deserialize, Default)]
pub struct TraceQuery {
    /// Events about this subject (`agent:ID`, `human:SUBJECT`, a credential id...).
    #[serde(default)]
    subject: String,
    /// Events whose kind starts with this (`decision`, `request.`, `agent.`...).
    #[serde(default)]
    kind: String,
    #[serde(default)]
    agent: String,
    #[serde(default)]
    human: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    policy: String,
    #[serde(default)]
    version: String,
    /// Dates (`YYYY-MM-DD`, UTC), both days included.
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    /// Events before this sequence number (the next page).
    before: Option<i64>,
    /// Verify the whole chain and its checkpoints.
    #[serde(default)]
    verify: Option<String>,
}

/// A date field (`YYYY-MM-DD`, UTC) as Unix milliseconds at its start; `None` when blank.
pub fn day_start_ms(field: &str, date: &str) -> Result<Option<i64>, PageError> {
    let date = date.trim();
    if date.is_empty() {
        return Ok(None);
    }
    let invalid = || PageError::Invalid(format!("{field} must be a date like 2026-12-06"));
    let day: jiff::civil::Date = date.parse().map_err(|_| invalid())?;
    let start = jiff::tz::Offset::UTC
        .to_timestamp(day.to_datetime(jiff::civil::Time::midnight()))
        .map_err(|_| invalid())?;
    Ok(Some(start.as_millisecond()))
}

/// A short text filter field, trimmed and bounded.
fn field(s: &str, max: usize) -> String {
    s.trim().chars().take(max).collect()
}

impl TraceQuery {
    /// The filter the form asks for, checked.
    fn filter(&self) -> Result<TraceFilter, PageError> {
        let outcome = field(&self.outcome, 16);
        if !outcome.is_empty() && !OUTCOMES.iter().any(|(o, _)| *o == outcome) {
            return Err(PageError::Invalid(format!("no outcome {outcome:?}")));
        }
        let version = match self.version.trim() {
            "" => None,
            v => Some(v.parse::<i64>().map_err(|_| {
                PageError::Invalid("the policy version must be a whole number".into())
            })?),
        };
        let since_ms = day_start_ms("from", &self.from)?;
        let until_ms = day_start_ms("to", &self.to)?.map(|start| start.saturating_add(DAY_MS));
        Ok(TraceFilter {
            subject: field(&self.subject, 200),
            kind_prefix: field(&self.kind, 64),
            agent: field(&self.agent, 200),
            human: field(&self.human, 200),
            outcome,
            policy_id: field(&self.policy, 200),
            policy_version: version,
            since_ms,
            until_ms,
        })
    }

    /// The query string of this filter (no page, no verification), for the next page.
    fn query_string(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("subject", &self.subject),
            ("kind", &self.kind),
            ("agent", &self.agent),
            ("human", &self.human),
            ("outcome", &self.outcome),
            ("policy", &self.policy),
            ("version", &self.version),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !value.trim().is_empty() {
                out.append_pair(name, value.trim());
            }
        }
        out.finish()
    }
}

/// One choice of the outcome filter.
pub struct OutcomeOption {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

pub struct Row {
    pub seq: i64,
    pub at: String,
    pub age: String,
    pub actor: String,
    pub kind: String,
    pub subject: String,
    pub agent: String,
    pub human: String,
    pub outcome: String,
    pub policy: String,
}

/// `id v3` for the first policy of a detail (blank when none).
fn first_policy(detail: &Value) -> String {
    policies(detail).into_iter().next().unwrap_or_default()
}

/// Each policy a detail names, as `id v3`.
fn policies(detail: &Value) -> Vec<String> {
    detail
        .get("policies")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|p| {
                    let id = p.get("id").and_then(Value::as_str).unwrap_or("?");
                    match p.get("version").and_then(Value::as_i64) {
                        Some(v) => format!("{id} v{v}"),
                        None => id.to_owned(),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

fn text(detail: &Value, key: &str) -> String {
    detail
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn strings(detail: &Value, key: &str) -> Vec<String> {
    detail
        .get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// What an event's outcome reads as: a decision's, or a human's decision by its kind.
fn outcome_of(kind: &str, detail: &Value) -> String {
    use crate::audit::EventKind;
    match EventKind::parse(kind) {
        Some(EventKind::DecisionMade) => text(detail, "outcome"),
        Some(EventKind::RequestApproved) => "approved".into(),
        Some(EventKind::RequestDenied) => "denied".into(),
        _ => String::new(),
    }
}

/// An event as a row of a list (the trace, an agent's recent decisions).
pub fn row(r: AuditRecord, now: i64) -> Row {
    let detail: Value = serde_json::from_str(&r.detail).unwrap_or(Value::Null);
    Row {
        seq: r.seq,
        at: local(r.at),
        age: age(r.at, now),
        agent: text(&detail, "agent"),
        human: text(&detail, "user"),
        outcome: outcome_of(&r.kind, &detail),
        policy: first_policy(&detail),
        actor: r.actor,
        kind: r.kind,
        subject: r.subject,
    }
}

#[derive(Template)]
#[template(path = "console/trace.html")]
struct TracePage {
    admin: Admin,
    q: TraceQuery,
    outcomes: Vec<OutcomeOption>,
    rows: Vec<Row>,
    /// The next page's URL.
    next: Option<String>,
    report: Option<audit::ChainReport>,
}

pub async fn list(
    admin: Admin,
    State(state): State<AppState>,
    Query(q): Query<TraceQuery>,
) -> Result<Response, PageError> {
    let now = state.now_ms();
    let filter = q.filter()?;
    let records = state
        .store
        .page_trace(&filter, q.before.unwrap_or(i64::MAX), PAGE)
        .await?;
    let next = (records.len() as i64 == PAGE)
        .then(|| records.last().map(|r| r.seq))
        .flatten()
        .map(|before| format!("/console/trace?{}&before={before}", q.query_string()));
    let rows = records.into_iter().map(|r| row(r, now)).collect();
    let report = match q.verify {
        Some(_) => Some(audit::verify(&state.store, &state.keys.jwks(), &state.audit_log).await?),
        None => None,
    };
    let outcomes = OUTCOMES
        .iter()
        .map(|(value, label)| OutcomeOption {
            value,
            label,
            selected: q.outcome.trim() == *value,
        })
        .collect();
    render(&TracePage {
        admin,
        q,
        outcomes,
        rows,
        next,
        report,
    })
}

/// An event's place in the chain and the log, as far as it is cheap to tell.
pub struct ChainStanding {
    pub hash: String,
    pub prev_hash: String,
    /// Its fields hash to its stored hash.
    pub hash_matches: bool,
    /// The event before it has the hash this one links to (`None` for the first).
    pub linked: Option<bool>,
    /// Its Merkle leaf hash (RFC 9162, base64).
    pub leaf: String,
    /// The size of the smallest signed log checkpoint covering it, if one does yet.
    pub checkpoint: Option<i64>,
}

#[derive(Template)]
#[template(path = "console/trace_event.html")]
struct EventPage {
    admin: Admin,
    seq: i64,
    at: String,
    actor: String,
    kind: String,
    subject: String,
    outcome: String,
    agent: String,
    human: String,
    owner: String,
    action: String,
    resource: String,
    policies: Vec<String>,
    reasons: Vec<String>,
    approvers: Vec<String>,
    risk_signals: Vec<String>,
    /// A human's decision: who, how, and the evidence by digest.
    approver: String,
    method: String,
    device: String,
    evidence: String,
    /// The facts the decision saw (pretty JSON), and the whole detail.
    facts: String,
    detail: String,
    credentials: Vec<String>,
    related: Vec<Row>,
    chain: ChainStanding,
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

pub async fn event(
    admin: Admin,
    State(state): State<AppState>,
    Path(seq): Path<i64>,
) -> Result<Response, PageError> {
    let now = state.now_ms();
    let store = &state.store;
    let e = store
        .audit_event(seq)
        .await?
        .ok_or_else(|| PageError::NotFound(format!("no event {seq}")))?;
    let detail: Value = serde_json::from_str(&e.detail).unwrap_or(Value::Null);
    let credentials = credentials_of(store, &e).await?;
    let request = match text(&detail, "request") {
        r if r.is_empty() => e.subject.clone(),
        r => r,
    };
    let related = store
        .audit_events_about(&request, RELATED)
        .await?
        .into_iter()
        .filter(|r| r.seq != seq)
        .map(|r| row(r, now))
        .collect();
    let chain = ChainStanding::of(store, &e).await?;
    let inputs = detail.get("inputs").cloned().unwrap_or(Value::Null);
    render(&EventPage {
        admin,
        seq,
        at: local(e.at),
        outcome: outcome_of(&e.kind, &detail),
        agent: text(&detail, "agent"),
        human: text(&detail, "user"),
        owner: text(&detail, "owner"),
        action: text(&detail, "action"),
        resource: text(&detail, "resource"),
        policies: policies(&detail),
        reasons: strings(&detail, "reasons"),
        approvers: strings(&detail, "approvers"),
        risk_signals: strings(&detail, "risk_signals"),
        approver: text(&detail, "approver"),
        method: text(&detail, "method"),
        device: text(&detail, "device_jkt"),
        evidence: text(&detail, "approval_digest"),
        facts: if inputs.is_null() {
            String::new()
        } else {
            pretty(&inputs)
        },
        detail: pretty(&detail),
        actor: e.actor,
        kind: e.kind,
        subject: e.subject,
        credentials,
        related,
        chain,
    })
}

/// The credentials an event is about: a credential.issued event's own, the others' the
/// request's.
async fn credentials_of(
    store: &crate::store::Store,
    e: &crate::store::audit::AuditRecord,
) -> Result<Vec<String>, PageError> {
    if e.kind == crate::audit::EventKind::CredentialIssued.as_str() {
        return Ok(vec![e.subject.clone()]);
    }
    Ok(store
        .credentials_of_requests(std::slice::from_ref(&e.subject))
        .await?
        .into_iter()
        .map(|(_, jti)| jti)
        .collect())
}

impl ChainStanding {
    /// How `e` stands in the chain: its hash, its link to the event before, its leaf in
    /// the log and the first checkpoint covering it.
    async fn of(
        store: &crate::store::Store,
        e: &crate::store::audit::AuditRecord,
    ) -> Result<Self, PageError> {
        let previous = match e.seq {
            1 => None,
            _ => store.audit_event(e.seq - 1).await?,
        };
        Ok(ChainStanding {
            hash_matches: e.fields_hash() == e.hash,
            linked: match e.seq {
                1 => None,
                _ => Some(previous.is_some_and(|p| p.hash == e.prev_hash)),
            },
            leaf: audit::log::leaf_of(&e.hash)
                .map(|h| audit::log::b64(&h))
                .unwrap_or_else(|_| "not a SHA-256 hash".into()),
            checkpoint: store.log_checkpoint_covering(e.seq).await?.map(|c| c.size),
            hash: e.hash.clone(),
            prev_hash: e.prev_hash.clone(),
        })
    }
}

#[derive(Deserialize)]
pub struct ApprovalsQuery {
    #[serde(default)]
    agent: String,
    #[serde(default)]
    resource: String,
}

pub struct ApprovalRow {
    pub decision_seq: i64,
    pub at: String,
    pub action: String,
    pub resource: String,
    pub outcome: String,
    pub approved_by: String,
    pub method: String,
    /// The human's decision event and when, if a human decided.
    pub human_seq: Option<i64>,
    pub human_at: String,
    pub policies: Vec<String>,
    pub credentials: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/trace_approvals.html")]
struct ApprovalsPage {
    admin: Admin,
    agent: String,
    resource: String,
    asked: bool,
    rows: Vec<ApprovalRow>,
}

/// Who approved agent X's access (to resource Y), when and under which policy version,
/// and the credential issued: the same question as the admin API's
/// `/admin/v1/audit/approvals`, answered by the same function.
pub async fn approvals(
    admin: Admin,
    State(state): State<AppState>,
    Query(q): Query<ApprovalsQuery>,
) -> Result<Response, PageError> {
    let agent = field(&q.agent, 200);
    let resource = field(&q.resource, 200);
    let rows = if agent.is_empty() {
        Vec::new()
    } else {
        let resource = Some(resource.as_str()).filter(|r| !r.is_empty());
        export::traced_approvals(&state.store, &agent, resource, 0, APPROVALS)
            .await?
            .into_iter()
            .map(|t| ApprovalRow {
                decision_seq: t.decision_seq,
                at: local(t.record.at * 1000),
                action: t.record.action,
                resource: t.record.resource,
                outcome: t.record.outcome,
                approved_by: t.record.approved_by.unwrap_or_else(|| "nobody".into()),
                method: t.record.method.unwrap_or_else(|| "undecided".into()),
                human_seq: t.human_decision.map(|(seq, _)| seq),
                human_at: t
                    .human_decision
                    .map(|(_, at)| local(at))
                    .unwrap_or_default(),
                policies: policies(&serde_json::json!({ "policies": t.record.policies })),
                credentials: t.record.credentials,
            })
            .collect()
    };
    render(&ApprovalsPage {
        admin,
        asked: !agent.is_empty(),
        agent,
        resource,
        rows,
    })
}

#[derive(Deserialize)]
pub struct ExportQuery {
    #[serde(default)]
    format: Option<String>,
    /// Events about this agent (client id) or this human (subject); blank for any.
    #[serde(default)]
    agent: String,
    #[serde(default)]
    human: String,
}

/// The trail (or the part about one agent or human) as a JSON lines or CSV download,
/// the same export as the admin API's.
pub async fn export(
    _: Admin,
    State(state): State<AppState>,
    Query(query): Query<ExportQuery>,
) -> Result<Response, PageError> {
    let format = ExportFormat::parse(query.format.as_deref())
        .ok_or_else(|| PageError::Invalid("format must be jsonl or csv".into()))?;
    let non_empty = |s: String| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let filter = ExportFilter {
        since_ms: 0,
        until_ms: i64::MAX,
        agent: non_empty(query.agent),
        human: non_empty(query.human),
    };
    let body = export::to_text(&state.store, &filter, format).await?;
    let disposition = format!(
        "attachment; filename=\"countersign-trail.{}\"",
        format.extension()
    );
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(day_start_ms("from", "").ok(), Some(None));
        assert_eq!(
            day_start_ms("from", "2026-12-06").ok(),
            Some(Some(1_796_515_200_000))
        );
        assert!(day_start_ms("from", "06/12/2026").is_err());
        let q = TraceQuery {
            to: "2026-12-06".into(),
            ..TraceQuery::default()
        };
        assert_eq!(
            q.filter().ok().and_then(|f| f.until_ms),
            Some(1_796_515_200_000 + DAY_MS)
        );
    }

    #[test]
    fn filters_are_checked_and_carried_to_the_next_page() {
        let q = TraceQuery {
            outcome: "maybe".into(),
            ..TraceQuery::default()
        };
        assert!(q.filter().is_err());
        let q = TraceQuery {
            agent: "bot 1".into(),
            outcome: "deny".into(),
            version: "3".into(),
            ..TraceQuery::default()
        };
        assert_eq!(q.filter().ok().and_then(|f| f.policy_version), Some(3));
        assert_eq!(q.query_string(), "agent=bot+1&outcome=deny&version=3");
    }

    #[test]
    fn policies_read_as_id_and_version() {
        let d = serde_json::json!({"policies": [{"id": "pay", "version": 3}, {"id": "x"}]});
        assert_eq!(policies(&d), ["pay v3", "x"]);
        assert_eq!(first_policy(&Value::Null), "");
    }
}
