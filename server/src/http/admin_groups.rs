//! Admin API for groups of humans (approver routing `group:NAME`, and
//! `principal.owner in Group::"NAME"` in policies).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};

use super::admin::{AdminCaller, ApiJson};
use super::error::ProblemResponse;
use crate::directory::{self, Group, NewGroup};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/groups", get(list).post(add))
        .route(
            "/admin/v1/groups/{name}/members/{subject}",
            put(add_member).delete(remove_member),
        )
}

#[utoipa::path(get, path = "/admin/v1/groups", tag = "admin",
    responses((status = 200, body = Vec<Group>), (status = 401, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn list(
    _: AdminCaller,
    State(state): State<AppState>,
) -> Result<Json<Vec<Group>>, ProblemResponse> {
    Ok(Json(directory::list_groups(&state.store).await?))
}

#[utoipa::path(post, path = "/admin/v1/groups", tag = "admin", request_body = NewGroup,
    responses((status = 201, body = Group),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = super::error::Problem, content_type = "application/problem+json"),
        super::error::JsonBodyProblems,
        (status = 422, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn add(
    caller: AdminCaller,
    State(state): State<AppState>,
    ApiJson(new): ApiJson<NewGroup>,
) -> Result<Response, ProblemResponse> {
    let group = directory::add_group(&state.store, new, state.now_ms(), &caller.actor()).await?;
    tracing::info!(admin_key = %caller.0, group = %group.name, "group added");
    Ok((StatusCode::CREATED, Json(group)).into_response())
}

#[utoipa::path(put, path = "/admin/v1/groups/{name}/members/{subject}", tag = "admin",
    params(("name" = String, Path), ("subject" = String, Path)),
    responses((status = 204, description = "a member (also when already one)"),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn add_member(
    caller: AdminCaller,
    State(state): State<AppState>,
    Path((name, subject)): Path<(String, String)>,
) -> Result<StatusCode, ProblemResponse> {
    let (now, actor) = (state.now_ms(), caller.actor());
    directory::set_group_member(&state.store, &name, &subject, true, now, &actor).await?;
    tracing::info!(admin_key = %caller.0, group = %name, %subject, "group member added");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/admin/v1/groups/{name}/members/{subject}", tag = "admin",
    params(("name" = String, Path), ("subject" = String, Path)),
    responses((status = 204),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn remove_member(
    caller: AdminCaller,
    State(state): State<AppState>,
    Path((name, subject)): Path<(String, String)>,
) -> Result<StatusCode, ProblemResponse> {
    let (now, actor) = (state.now_ms(), caller.actor());
    directory::set_group_member(&state.store, &name, &subject, false, now, &actor).await?;
    tracing::info!(admin_key = %caller.0, group = %name, %subject, "group member removed");
    Ok(StatusCode::NO_CONTENT)
}
