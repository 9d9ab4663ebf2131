//! Admin API for offboarding humans and the agent kill switch (see
//! [`crate::directory::offboarding`]).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};

use super::admin::{AdminCaller, ApiJson};
use super::error::ProblemResponse;
use crate::directory::offboarding::{self, Offboarded, Reason, Suspended};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/humans/{subject}/activate", post(activate_human))
        .route(
            "/admin/v1/humans/{subject}/deactivate",
            post(deactivate_human),
        )
        .route("/admin/v1/agents/{client_id}/suspend", post(suspend_agent))
        .route("/admin/v1/agents/{client_id}/resume", post(resume_agent))
        .route(
            "/admin/v1/agents/{client_id}/reassign",
            post(reassign_agent),
        )
}

fn actor(caller: &AdminCaller) -> String {
    format!("admin-key:{}", caller.0)
}

/// Reactivates a human: they can be named in requests again. Nothing their deactivation
/// ended comes back (credentials stay revoked, agents stay suspended until resumed).
#[utoipa::path(post, path = "/admin/v1/humans/{subject}/activate", tag = "admin",
    params(("subject" = String, Path)),
    responses((status = 204), (status = 401, body = super::error::Problem, content_type = "application/problem+json"), (status = 404, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn activate_human(
    caller: AdminCaller,
    State(state): State<AppState>,
    Path(subject): Path<String>,
) -> Result<StatusCode, ProblemResponse> {
    offboarding::reactivate_human(&state.store, state.now_ms(), &subject, &actor(&caller)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Offboards a human in one transaction: deactivates them, revokes every credential they
/// approved or their agents hold, suspends their agents, ends their pending requests and
/// disables their devices; each effect is in the audit trail.
#[utoipa::path(post, path = "/admin/v1/humans/{subject}/deactivate", tag = "admin", request_body = Reason,
    params(("subject" = String, Path)),
    responses((status = 200, body = Offboarded),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = super::error::Problem, content_type = "application/problem+json"),
        super::error::JsonBodyProblems,
        (status = 422, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn deactivate_human(
    caller: AdminCaller,
    State(state): State<AppState>,
    Path(subject): Path<String>,
    ApiJson(body): ApiJson<Reason>,
) -> Result<Json<Offboarded>, ProblemResponse> {
    let done = offboarding::offboard_human(
        &state.store,
        state.now_ms(),
        &subject,
        &body.reason,
        &actor(&caller),
        state.config.offboarding.agents,
    )
    .await?;
    state.outbox_wake.notify_one();
    Ok(Json(done))
}

/// The kill switch: the agent's requests and token polls get `unauthorized_client` until
/// it is resumed; every credential it holds is revoked and its pending requests end.
#[utoipa::path(post, path = "/admin/v1/agents/{client_id}/suspend", tag = "admin", request_body = Reason,
    params(("client_id" = String, Path)),
    responses((status = 200, body = Suspended),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = super::error::Problem, content_type = "application/problem+json"),
        super::error::JsonBodyProblems,
        (status = 422, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn suspend_agent(
    caller: AdminCaller,
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    ApiJson(body): ApiJson<Reason>,
) -> Result<Json<Suspended>, ProblemResponse> {
    let done = offboarding::suspend_agent(
        &state.store,
        state.now_ms(),
        &client_id,
        &body.reason,
        &actor(&caller),
    )
    .await?;
    state.outbox_wake.notify_one();
    Ok(Json(done))
}

/// Lets a suspended agent make requests again; its owner must be active. Revoked
/// credentials stay revoked.
#[utoipa::path(post, path = "/admin/v1/agents/{client_id}/resume", tag = "admin",
    params(("client_id" = String, Path)),
    responses((status = 204), (status = 401, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn resume_agent(
    caller: AdminCaller,
    State(state): State<AppState>,
    Path(client_id): Path<String>,
) -> Result<StatusCode, ProblemResponse> {
    offboarding::resume_agent(&state.store, state.now_ms(), &client_id, &actor(&caller)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new owner for an agent, and why.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reassignment {
    /// The subject of an active human.
    #[schema(min_length = 1, max_length = 128)]
    pub owner: String,
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// Hands the agent to another (active) human; recorded in the audit trail. A suspended
/// agent stays suspended until resumed.
#[utoipa::path(post, path = "/admin/v1/agents/{client_id}/reassign", tag = "admin", request_body = Reassignment,
    params(("client_id" = String, Path)),
    responses((status = 204),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = super::error::Problem, content_type = "application/problem+json"),
        super::error::JsonBodyProblems,
        (status = 422, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn reassign_agent(
    caller: AdminCaller,
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    ApiJson(body): ApiJson<Reassignment>,
) -> Result<StatusCode, ProblemResponse> {
    offboarding::reassign_agent(
        &state.store,
        state.now_ms(),
        &client_id,
        &body.owner,
        &body.reason,
        &actor(&caller),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
