//! The decision trace: every event, newest first, filtered by subject and kind, with the
//! chain's verification (on request: it reads the whole trail).

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::format::{age, utc};
use super::{Admin, PageError, render};
use crate::audit;
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
