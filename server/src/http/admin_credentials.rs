//! Admin API for issued credentials: list, show, revoke one, revoke in bulk.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::IntoParams;

use super::admin::{AdminCaller, ApiJson, ApiQuery};
use super::error::ProblemResponse;
use crate::credentials::manage::{self, CredentialSummary, RevokeMany, RevokeOne, Revoked};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/credentials", get(list))
        .route("/admin/v1/credentials/revoke", post(revoke_many))
        .route("/admin/v1/credentials/{id}", get(show))
        .route("/admin/v1/credentials/{id}/revoke", post(revoke_one))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct Filter {
    /// Only credentials held by this agent.
    agent: Option<String>,
    /// Only credentials approved by this human.
    approver: Option<String>,
    /// Only credentials held by agents this human owns.
    owner: Option<String>,
}

#[utoipa::path(get, path = "/admin/v1/credentials", tag = "admin", params(Filter),
    responses((status = 200, body = Vec<CredentialSummary>, description = "newest first, at most 1000"),
        (status = 400, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn list(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiQuery(f): ApiQuery<Filter>,
) -> Result<Json<Vec<CredentialSummary>>, ProblemResponse> {
    let selector = manage::selector(
        f.agent.as_deref(),
        f.approver.as_deref(),
        f.owner.as_deref(),
    )?;
    Ok(Json(manage::list(&state.store, selector).await?))
}

#[utoipa::path(get, path = "/admin/v1/credentials/{id}", tag = "admin", params(("id" = String, Path)),
    responses((status = 200, body = CredentialSummary),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn show(
    _: AdminCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CredentialSummary>, ProblemResponse> {
    Ok(Json(manage::show(&state.store, &id).await?))
}

#[utoipa::path(post, path = "/admin/v1/credentials/{id}/revoke", tag = "admin", params(("id" = String, Path)), request_body = RevokeOne,
    responses((status = 200, body = Revoked),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = super::error::Problem, content_type = "application/problem+json"),
        super::error::JsonBodyProblems,
        (status = 422, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn revoke_one(
    caller: AdminCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RevokeOne>,
) -> Result<Json<Revoked>, ProblemResponse> {
    let actor = format!("admin-key:{}", caller.0);
    Ok(Json(
        manage::revoke_one(&state.store, &id, &body.reason, &actor, state.now_ms()).await?,
    ))
}

/// Revokes every live credential of one agent, of one approving human, or of the agents
/// one human owns.
#[utoipa::path(post, path = "/admin/v1/credentials/revoke", tag = "admin", request_body = RevokeMany,
    responses((status = 200, body = Revoked),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json"),
        super::error::JsonBodyProblems,
        (status = 422, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn revoke_many(
    caller: AdminCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RevokeMany>,
) -> Result<Json<Revoked>, ProblemResponse> {
    let actor = format!("admin-key:{}", caller.0);
    Ok(Json(
        manage::revoke_many(&state.store, &body, &actor, state.now_ms()).await?,
    ))
}
