//! Admin API for wallets: invite a human to enroll one, list devices, remove one.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::admin::{AdminCaller, ApiJson, ApiQuery};
use super::error::ProblemResponse;
use crate::approvals::enrollment::{self, CreatedInvitation, Device};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/humans/{subject}/invitations", post(invite))
        .route("/admin/v1/devices", get(list))
        .route("/admin/v1/devices/{id}/remove", post(remove))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct Filter {
    /// Only this human's devices.
    subject: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveDevice {
    /// Why (recorded with the removal).
    pub reason: String,
}

/// A one-time enrollment invitation for the human (the URI is shown once).
#[utoipa::path(post, path = "/admin/v1/humans/{subject}/invitations", tag = "admin", params(("subject" = String, Path)),
    responses((status = 201, body = CreatedInvitation),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "the human is not active", body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn invite(
    caller: AdminCaller,
    State(state): State<AppState>,
    Path(subject): Path<String>,
) -> Result<Response, ProblemResponse> {
    let actor = format!("admin-key:{}", caller.0);
    let created = enrollment::invite(&state.approvals, &subject, &actor).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

#[utoipa::path(get, path = "/admin/v1/devices", tag = "admin", params(Filter),
    responses((status = 200, body = Vec<Device>, description = "newest first"),
        (status = 400, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn list(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiQuery(f): ApiQuery<Filter>,
) -> Result<Json<Vec<Device>>, ProblemResponse> {
    Ok(Json(
        enrollment::list_devices(&state.approvals, f.subject.as_deref()).await?,
    ))
}

/// Disables a device: its proofs and approvals are refused from now on.
#[utoipa::path(post, path = "/admin/v1/devices/{id}/remove", tag = "admin", params(("id" = String, Path)), request_body = RemoveDevice,
    responses((status = 200, body = Device),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = super::error::Problem, content_type = "application/problem+json"),
        super::error::JsonBodyProblems,
        (status = 422, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn remove(
    caller: AdminCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RemoveDevice>,
) -> Result<Json<Device>, ProblemResponse> {
    let actor = format!("admin-key:{}", caller.0);
    Ok(Json(
        enrollment::remove_device(&state.approvals, &id, &body.reason, &actor).await?,
    ))
}
