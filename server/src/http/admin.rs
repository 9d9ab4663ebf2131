//! The admin JSON API (`/admin/v1`), authenticated with admin API keys as bearer tokens.
//! The same operations as the CLI, through the same directory service.

use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;

use super::error::ProblemResponse;
use crate::admin;
use crate::directory::{
    self, Agent, AgentUpdate, CreatedAgent, Human, HumanUpdate, NewAgent, NewHuman,
};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/humans", get(list_humans).post(add_human))
        .route("/admin/v1/humans/{subject}", patch(update_human))
        .route("/admin/v1/agents/{client_id}", patch(update_agent))
        .route("/admin/v1/agents", get(list_agents).post(add_agent))
        .route("/admin/v1/scim-tokens", post(create_scim_token))
        .route("/admin/v1/scim-tokens/{id}", delete(revoke_scim_token))
}

/// Proof that the request carried a live admin key whose role allows this endpoint
/// (`admin::roles::needed_for_api`); holds the key's id.
pub struct AdminCaller(pub String);

impl AdminCaller {
    /// Who the trail records as acting: `admin-key:ID` (an SSO session is a key too).
    pub fn actor(&self) -> String {
        admin::Scope::Admin.subject(&self.0)
    }
}

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = ProblemResponse;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized = || {
            ProblemResponse::new(
                StatusCode::UNAUTHORIZED,
                "a valid admin API key (Authorization: Bearer ...) or admin session is required",
            )
        };
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, key)| key.trim());
        let presented = match bearer {
            Some(key) => key,
            None => {
                let session =
                    super::admin_sso::cookie(&parts.headers, super::admin_sso::SESSION_COOKIE)
                        .ok_or_else(unauthorized)?;
                // The cookie is SameSite=Strict; a browser that says where a changing
                // request comes from must also say it comes from here.
                let safe = matches!(
                    parts.method,
                    axum::http::Method::GET | axum::http::Method::HEAD
                );
                let origin = parts
                    .headers
                    .get(header::ORIGIN)
                    .and_then(|v| v.to_str().ok());
                if !safe && origin.is_some_and(|o| o != crate::paths::origin_of(&state.issuer)) {
                    return Err(ProblemResponse::new(
                        StatusCode::FORBIDDEN,
                        "a cross-origin request may not use the admin session",
                    ));
                }
                session
            }
        };
        let key = admin::verify_key(&state.store, presented, admin::Scope::Admin, state.now_ms())
            .await?
            .ok_or_else(unauthorized)?;
        let needed = admin::roles::needed_for_api(parts.method.as_str(), parts.uri.path());
        if !key.role.includes(needed) {
            return Err(ProblemResponse::new(
                StatusCode::FORBIDDEN,
                format!("this needs the {needed} role; the key is a {}", key.role),
            ));
        }
        Ok(AdminCaller(key.id))
    }
}

/// A JSON body whose every rejection is a problem document.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ProblemResponse;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(ProblemResponse::new(
                rejection.status(),
                rejection.body_text(),
            )),
        }
    }
}

/// A query string whose every rejection (malformed, duplicated field) is a problem
/// document.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ProblemResponse;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(rejection) => Err(ProblemResponse::new(
                rejection.status(),
                rejection.body_text(),
            )),
        }
    }
}

fn created<T: serde::Serialize>(body: T) -> Response {
    (StatusCode::CREATED, Json(body)).into_response()
}

#[utoipa::path(get, path = "/admin/v1/humans", tag = "admin",
    responses((status = 200, body = Vec<Human>), (status = 401, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn list_humans(
    _: AdminCaller,
    State(state): State<AppState>,
) -> Result<Json<Vec<Human>>, ProblemResponse> {
    Ok(Json(directory::list_humans(&state.store).await?))
}

#[utoipa::path(post, path = "/admin/v1/humans", tag = "admin", request_body = NewHuman,
    responses((status = 201, body = Human), (status = 401, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = super::error::Problem, content_type = "application/problem+json"), (status = 422, body = super::error::Problem, content_type = "application/problem+json"),
        super::error::JsonBodyProblems),
    security(("admin_key" = [])))]
pub(super) async fn add_human(
    caller: AdminCaller,
    State(state): State<AppState>,
    ApiJson(new): ApiJson<NewHuman>,
) -> Result<Response, ProblemResponse> {
    let human = directory::add_human(&state.store, new, state.now_ms(), &caller.actor()).await?;
    tracing::info!(admin_key = %caller.0, subject = %human.subject, "human added");
    Ok(created(human))
}

#[utoipa::path(get, path = "/admin/v1/agents", tag = "admin",
    responses((status = 200, body = Vec<Agent>), (status = 401, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn list_agents(
    _: AdminCaller,
    State(state): State<AppState>,
) -> Result<Json<Vec<Agent>>, ProblemResponse> {
    Ok(Json(directory::list_agents(&state.store).await?))
}

/// Registers an agent as a CIBA client. For secret-based methods the response carries the
/// generated `client_secret`, shown this once.
#[utoipa::path(post, path = "/admin/v1/agents", tag = "admin", request_body = NewAgent,
    responses((status = 201, body = CreatedAgent), (status = 401, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = super::error::Problem, content_type = "application/problem+json"), (status = 422, body = super::error::Problem, content_type = "application/problem+json"),
        super::error::JsonBodyProblems),
    security(("admin_key" = [])))]
pub(super) async fn add_agent(
    caller: AdminCaller,
    State(state): State<AppState>,
    ApiJson(new): ApiJson<NewAgent>,
) -> Result<Response, ProblemResponse> {
    let agent = directory::add_agent(&state.store, new, state.now_ms(), &caller.actor()).await?;
    tracing::info!(admin_key = %caller.0, client_id = %agent.agent.client_id, "agent added");
    Ok(created(agent))
}

/// Changes a human's e-mail, name, department, title, role or manager (absent fields stay).
/// Each change is an audit event (`human.updated`) naming the admin and every field's old
/// and new value.
#[utoipa::path(patch, path = "/admin/v1/humans/{subject}", tag = "admin", request_body = HumanUpdate,
    params(("subject" = String, Path)),
    responses((status = 200, body = Human),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = super::error::Problem, content_type = "application/problem+json"),
        super::error::JsonBodyProblems,
        (status = 422, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn update_human(
    caller: AdminCaller,
    State(state): State<AppState>,
    Path(subject): Path<String>,
    ApiJson(update): ApiJson<HumanUpdate>,
) -> Result<Json<Human>, ProblemResponse> {
    let (now, actor) = (state.now_ms(), caller.actor());
    let human = directory::update_human(&state.store, &subject, update, now, &actor).await?;
    tracing::info!(admin_key = %caller.0, %subject, "human updated");
    Ok(Json(human))
}

/// Changes what policies read of an agent: department, risk tier, description, the tools
/// it may use and its approver route (absent fields stay). Each change is an audit event
/// (`agent.updated`) naming the admin and every field's old and new value.
#[utoipa::path(patch, path = "/admin/v1/agents/{client_id}", tag = "admin", request_body = AgentUpdate,
    params(("client_id" = String, Path)),
    responses((status = 200, body = Agent),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = super::error::Problem, content_type = "application/problem+json"),
        super::error::JsonBodyProblems,
        (status = 422, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn update_agent(
    caller: AdminCaller,
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    ApiJson(update): ApiJson<AgentUpdate>,
) -> Result<Json<Agent>, ProblemResponse> {
    let (now, actor) = (state.now_ms(), caller.actor());
    let agent = directory::update_agent(&state.store, &client_id, update, now, &actor).await?;
    tracing::info!(admin_key = %caller.0, %client_id, "agent updated");
    Ok(Json(agent))
}

/// A SCIM token to create.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewScimToken {
    /// What it is for (e.g. the identity provider's name).
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Days until it stops working; absent: never.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<u32>,
}

/// A created SCIM token; `token` is shown this once.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct CreatedScimToken {
    pub id: String,
    pub name: String,
    /// Unix milliseconds, if it expires.
    pub expires_at: Option<i64>,
    pub token: String,
}

/// Creates a bearer token for the identity provider's SCIM client (`/scim/v2`); it opens
/// nothing else.
#[utoipa::path(post, path = "/admin/v1/scim-tokens", tag = "admin", request_body = NewScimToken,
    responses((status = 201, body = CreatedScimToken),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json"),
        super::error::JsonBodyProblems,
        (status = 422, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn create_scim_token(
    caller: AdminCaller,
    State(state): State<AppState>,
    ApiJson(new): ApiJson<NewScimToken>,
) -> Result<Response, ProblemResponse> {
    let name = new.name.trim();
    let days = new.expires_in_days.unwrap_or(1);
    if name.is_empty()
        || name.chars().count() > 200
        || name.contains(char::is_control)
        || !(1..=3650).contains(&days)
    {
        return Err(ProblemResponse::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "name must be 1-200 characters of text and expires_in_days 1-3650",
        ));
    }
    let now = state.now_ms();
    let expires_at = new.expires_in_days.map(|d| now + i64::from(d) * 86_400_000);
    let scope = admin::Scope::Scim;
    let key =
        admin::create_key(&state.store, name, scope, expires_at, now, &caller.actor()).await?;
    tracing::info!(admin_key = %caller.0, scim_token = %key.id, "SCIM token created");
    Ok(created(CreatedScimToken {
        id: key.id,
        name: name.to_owned(),
        expires_at,
        token: key.secret.expose().to_owned(),
    }))
}

/// Revokes a SCIM token: the identity provider's next call with it is refused.
#[utoipa::path(delete, path = "/admin/v1/scim-tokens/{id}", tag = "admin",
    params(("id" = String, Path, description = "the token's id (as created)")),
    responses((status = 204),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn revoke_scim_token(
    caller: AdminCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ProblemResponse> {
    let scope = admin::Scope::Scim;
    if !admin::revoke_key(&state.store, scope, &id, state.now_ms(), &caller.actor()).await? {
        return Err(ProblemResponse::new(
            StatusCode::NOT_FOUND,
            "no live SCIM token with this id",
        ));
    }
    tracing::info!(admin_key = %caller.0, scim_token = %id, "SCIM token revoked");
    Ok(StatusCode::NO_CONTENT)
}
