//! Admin API for the audit trail: read the newest events, verify the hash chain.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::IntoParams;

use super::admin::{AdminCaller, ApiQuery};
use super::error::ProblemResponse;
use crate::audit::{self, AuditEvent, ChainReport};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/audit", get(list))
        .route("/admin/v1/audit/verify", get(verify))
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
    Ok(Json(audit::verify(&state.store).await?))
}
