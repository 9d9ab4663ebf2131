//! Admin API for the audit trail: read the newest events, verify the hash chain and its
//! signed checkpoints, export, and ask who approved an agent's access.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::IntoParams;

use super::admin::{AdminCaller, ApiQuery};
use super::error::ProblemResponse;
use crate::audit::export::{self, ApprovalRecord, ExportFilter, ExportFormat};
use crate::audit::{self, AuditEvent, ChainReport};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/audit", get(list))
        .route("/admin/v1/audit/verify", get(verify))
        .route("/admin/v1/audit/export", get(export))
        .route("/admin/v1/audit/approvals", get(approvals))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct Filter {
    /// Only events about this subject (`credential:ID`, `agent:ID`, `human:SUBJECT`).
    subject: Option<String>,
    /// How many events, 1 to 1000 (default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

#[utoipa::path(get, path = "/admin/v1/audit", tag = "admin", params(Filter),
    responses((status = 200, body = Vec<AuditEvent>, description = "newest first"),
        (status = 400, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn list(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiQuery(f): ApiQuery<Filter>,
) -> Result<Json<Vec<AuditEvent>>, ProblemResponse> {
    let limit = match f.limit.as_deref() {
        None => 100,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=audit::LIST_LIMIT).contains(n))
            .ok_or_else(|| {
                ProblemResponse::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "limit must be an integer from 1 to 1000",
                )
            })?,
    };
    Ok(Json(
        audit::recent(&state.store, f.subject.as_deref(), limit).await?,
    ))
}

/// Recomputes every event's hash and link. `intact: false` names the first broken event.
#[utoipa::path(get, path = "/admin/v1/audit/verify", tag = "admin",
    responses((status = 200, body = ChainReport),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn verify(
    _: AdminCaller,
    State(state): State<AppState>,
) -> Result<Json<ChainReport>, ProblemResponse> {
    Ok(Json(
        audit::verify(&state.store, &state.keys.jwks(), &state.audit_log).await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ExportQuery {
    /// Unix seconds, inclusive (default: the beginning).
    #[param(value_type = Option<i64>, minimum = 0)]
    since: Option<String>,
    /// Unix seconds, exclusive (default: now and later).
    #[param(value_type = Option<i64>, minimum = 0)]
    until: Option<String>,
    /// Only events about this agent (client id).
    agent: Option<String>,
    /// Only events about this human (as user, owner, approver or actor).
    human: Option<String>,
    /// `jsonl` (default) or `csv`.
    #[param(value_type = Option<String>, pattern = "^(jsonl|csv)$")]
    format: Option<String>,
}

fn seconds(name: &str, value: Option<&str>, default: i64) -> Result<i64, ProblemResponse> {
    match value {
        None => Ok(default),
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| n.saturating_mul(1000))
            .ok_or_else(|| {
                ProblemResponse::new(
                    StatusCode::BAD_REQUEST,
                    format!("{name} must be Unix seconds (a non-negative integer)"),
                )
            }),
    }
}

/// The trail as JSON lines (`application/x-ndjson`) or CSV (`text/csv`), oldest first.
#[utoipa::path(get, path = "/admin/v1/audit/export", tag = "admin", params(ExportQuery),
    responses((status = 200, description = "one event per line", content(
            (String = "application/x-ndjson"), (String = "text/csv"))),
        (status = 400, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn export(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ProblemResponse> {
    let format = ExportFormat::parse(q.format.as_deref()).ok_or_else(|| {
        ProblemResponse::new(StatusCode::BAD_REQUEST, "format must be jsonl or csv")
    })?;
    let filter = ExportFilter {
        since_ms: seconds("since", q.since.as_deref(), 0)?,
        until_ms: seconds("until", q.until.as_deref(), i64::MAX)?,
        agent: q.agent,
        human: q.human,
    };
    let body = export::to_text(&state.store, &filter, format).await?;
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    Ok(resp)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ApprovalsQuery {
    /// The agent (client id).
    agent: String,
    /// The tool or app (an id of `policy.tools`).
    resource: Option<String>,
    /// Unix seconds (default: the beginning).
    #[param(value_type = Option<i64>, minimum = 0)]
    since: Option<String>,
}

/// Who approved this agent's access (to this resource), when, under which policy, and the
/// credentials issued for it: read from the audit trail.
#[utoipa::path(get, path = "/admin/v1/audit/approvals", tag = "admin", params(ApprovalsQuery),
    responses((status = 200, body = Vec<ApprovalRecord>, description = "oldest first"),
        (status = 400, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn approvals(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ApprovalsQuery>,
) -> Result<Json<Vec<ApprovalRecord>>, ProblemResponse> {
    let since = seconds("since", q.since.as_deref(), 0)?;
    Ok(Json(
        export::approvals(&state.store, &q.agent, q.resource.as_deref(), since).await?,
    ))
}
