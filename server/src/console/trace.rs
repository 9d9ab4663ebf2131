//! The decision trace: every event, newest first, filtered by subject and kind, with the
//! chain's verification (on request: it reads the whole trail).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse as _, Response};
use serde::Deserialize;

use super::format::{age, utc};
use super::{Admin, PageError, render};
use crate::audit::export::{ExportFilter, ExportFormat};
use crate::audit::{self, export};
use crate::state::AppState;

const PAGE: i64 = 100;

#[derive(Deserialize)]
pub struct TraceQuery {
    /// Events about this subject (`agent:ID`, `human:SUBJECT`, a credential id...).
    #[serde(default)]
    subject: String,
    /// Events whose kind starts with this (`decision`, `request.`, `agent.`...).
    #[serde(default)]
    kind: String,
    /// Events before this sequence number (the next page).
    before: Option<i64>,
    /// Verify the whole chain and its checkpoints.
    #[serde(default)]
    verify: Option<String>,
}

pub struct Row {
    pub seq: i64,
    pub at: String,
    pub age: String,
    pub actor: String,
    pub kind: String,
    pub subject: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "console/trace.html")]
struct TracePage {
    admin: Admin,
    subject: String,
    kind: String,
    rows: Vec<Row>,
    next: Option<i64>,
    report: Option<audit::ChainReport>,
}

pub async fn list(
    admin: Admin,
    State(state): State<AppState>,
    Query(query): Query<TraceQuery>,
) -> Result<Response, PageError> {
    let now = state.now_ms();
    let subject = query.subject.trim().chars().take(200).collect::<String>();
    let kind = query.kind.trim().chars().take(64).collect::<String>();
    let records = state
        .store
        .page_audit_events(query.before.unwrap_or(i64::MAX), &subject, &kind, PAGE)
        .await?;
    let next = (records.len() as i64 == PAGE)
        .then(|| records.last().map(|r| r.seq))
        .flatten();
    let rows = records
        .into_iter()
        .map(|r| Row {
            seq: r.seq,
            at: utc(r.at),
            age: age(r.at, now),
            actor: r.actor,
            kind: r.kind,
            subject: r.subject,
            detail: r.detail,
        })
        .collect();
    let report = match query.verify {
        Some(_) => Some(audit::verify(&state.store, &state.keys.jwks(), &state.audit_log).await?),
        None => None,
    };
    render(&TracePage {
        admin,
        subject,
        kind,
        rows,
        next,
        report,
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
