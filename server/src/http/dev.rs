//! Developer approvals (`--dev-approvals`): approve or deny a pending request without a
//! phone. Only mounted when enabled, which the configuration allows on loopback only.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;

use super::error::ProblemResponse;
use crate::approvals::{self, ApprovalMethod, DecisionInput};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dev/approvals/{auth_req_id}/approve", post(approve))
        .route("/dev/approvals/{auth_req_id}/deny", post(deny))
}

/// Who the decision is recorded as: never the human, whose confirmation did not happen.
const DEV_DECIDER: &str = "developer-mode";

fn developer(approved: bool) -> DecisionInput<'static> {
    DecisionInput {
        approved,
        decided_by: DEV_DECIDER,
        method: ApprovalMethod::Developer,
        approval_jws: None,
        device_jkt: None,
    }
}

#[utoipa::path(post, path = "/dev/approvals/{auth_req_id}/approve", tag = "dev",
    params(("auth_req_id" = String, Path)),
    responses((status = 204, description = "approved"), (status = 404, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = super::error::Problem, content_type = "application/problem+json", description = "already decided or expired")))]
pub(super) async fn approve(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ProblemResponse> {
    approvals::decide(&state, &id, developer(true)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/dev/approvals/{auth_req_id}/deny", tag = "dev",
    params(("auth_req_id" = String, Path)),
    responses((status = 204, description = "denied"), (status = 404, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = super::error::Problem, content_type = "application/problem+json", description = "already decided or expired")))]
pub(super) async fn deny(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ProblemResponse> {
    approvals::decide(&state, &id, developer(false)).await?;
    Ok(StatusCode::NO_CONTENT)
}
