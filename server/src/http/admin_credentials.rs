//! Admin API for issued credentials: list, show, revoke one, revoke in bulk.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
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
    /// Continue after this cursor: the `after` of the previous page's `Link: rel="next"`.
    after: Option<String>,
    /// Credentials per page, 1 to 1000 (default 1000).
    limit: Option<String>,
}

#[utoipa::path(get, path = "/admin/v1/credentials", tag = "admin", params(Filter),
    responses((status = 200, body = Vec<CredentialSummary>,
            description = "newest first, one page; when more follow, a `Link` header with `rel=\"next\"` gives the next page's address",
            headers(("Link" = String, description = "RFC 8288 link to the next page, when there is one"))),
        (status = 400, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn list(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiQuery(f): ApiQuery<Filter>,
) -> Result<Response, ProblemResponse> {
    let limit = match f.limit.as_deref() {
        None => manage::LIST_LIMIT,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=manage::LIST_LIMIT).contains(n))
            .ok_or_else(|| {
                ProblemResponse::new(
                    StatusCode::BAD_REQUEST,
                    "limit must be an integer from 1 to 1000",
                )
            })?,
    };
    let selector = manage::selector(
        f.agent.as_deref(),
        f.approver.as_deref(),
        f.owner.as_deref(),
    )?;
    let page = manage::page(&state.store, selector, f.after.as_deref(), limit).await?;
    let mut response = Json(page.credentials).into_response();
    if let Some(next) = page.next {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("agent", &f.agent),
            ("approver", &f.approver),
            ("owner", &f.owner),
        ] {
            if let Some(v) = value {
                query.append_pair(name, v);
            }
        }
        query.append_pair("limit", &limit.to_string());
        query.append_pair("after", &next);
        let link = format!(
            "<{}/admin/v1/credentials?{}>; rel=\"next\"",
            state.issuer,
            query.finish()
        );
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    Ok(response)
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
