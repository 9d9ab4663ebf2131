//! Admin API for policies: validate, add, list, show, activate, roll back, dry-run, and
//! the schema they are validated against.

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::ToSchema;

use super::admin::{AdminCaller, ApiJson};
use super::error::ProblemResponse;
use crate::policy::PolicyError;
use crate::policy::history::{self, DryRunReport};
use crate::policy::manage::{self, PolicyVersion, Validation};
use crate::state::AppState;

/// Policy documents may be larger than other admin requests: up to 60,000 characters,
/// which JSON escaping can make several times as many bytes.
const POLICY_BODY_LIMIT: usize = 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/policies", get(list).post(add))
        .route("/admin/v1/policies/schema", get(schema))
        .route("/admin/v1/policies/validate", post(validate))
        .route("/admin/v1/policies/dry-run", post(dry_run))
        .route("/admin/v1/policies/rollback", post(rollback))
        .route("/admin/v1/policies/{version}", get(show))
        .route("/admin/v1/policies/{version}/activate", post(activate))
        .layer(DefaultBodyLimit::max(POLICY_BODY_LIMIT))
}

impl From<PolicyError> for ProblemResponse {
    fn from(err: PolicyError) -> Self {
        let detail = err.to_string();
        match err {
            PolicyError::Invalid(_) | PolicyError::BadRequest(_) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
            }
            PolicyError::NotFound(_) => Self::new(StatusCode::NOT_FOUND, detail),
            PolicyError::Store(e) => Self::from(e),
            PolicyError::Corrupt(_) => {
                tracing::error!(error = %detail, "stored policy data is corrupt");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }
}

/// A policy document to store.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPolicy {
    /// Cedar text; every policy needs an `@id`.
    #[schema(min_length = 1, max_length = 60000)]
    pub source: String,
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub description: Option<String>,
    /// Activate it at once.
    #[serde(default)]
    pub activate: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicySource {
    #[schema(min_length = 1, max_length = 60000)]
    pub source: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DryRunRequest {
    /// The candidate Cedar text.
    #[schema(min_length = 1, max_length = 60000)]
    pub source: String,
    /// How far back to replay, in seconds (default 7 days).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub since_secs: Option<u64>,
    /// Most changed decisions to list (default 50, at most 1000).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1000)]
    pub limit: Option<usize>,
}

/// The documented bounds of a policy source (and description).
fn check_source(source: &str, description: Option<&str>) -> Result<(), ProblemResponse> {
    let n = source.chars().count();
    if n == 0 || n > 60_000 {
        return Err(ProblemResponse::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "source must be 1 to 60000 characters",
        ));
    }
    if description.is_some_and(|d| d.chars().count() > 1000) {
        return Err(ProblemResponse::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "description must be at most 1000 characters",
        ));
    }
    Ok(())
}

fn version_of(text: &str) -> Result<i64, ProblemResponse> {
    text.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| {
        ProblemResponse::new(StatusCode::NOT_FOUND, format!("no policy version {text:?}"))
    })
}

fn actor(caller: &AdminCaller) -> String {
    format!("admin-key:{}", caller.0)
}

#[utoipa::path(get, path = "/admin/v1/policies", tag = "admin",
    responses((status = 200, body = Vec<PolicyVersion>, description = "newest first"),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn list(
    _: AdminCaller,
    State(state): State<AppState>,
) -> Result<Json<Vec<PolicyVersion>>, ProblemResponse> {
    Ok(Json(manage::list(&state.policy, &state.store).await?))
}

/// Stores a new version; refused (422, with line and column) unless it validates.
#[utoipa::path(post, path = "/admin/v1/policies", tag = "admin", request_body = NewPolicy,
    responses((status = 201, body = PolicyVersion),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json"),
        super::error::JsonBodyProblems,
        (status = 422, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn add(
    caller: AdminCaller,
    State(state): State<AppState>,
    ApiJson(new): ApiJson<NewPolicy>,
) -> Result<Response, ProblemResponse> {
    check_source(&new.source, new.description.as_deref())?;
    let version = manage::add(
        &state.policy,
        &state.store,
        state.now_ms(),
        &new.source,
        new.description.as_deref(),
        new.activate,
        &actor(&caller),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(version)).into_response())
}

/// The Cedar schema policies are validated against.
#[utoipa::path(get, path = "/admin/v1/policies/schema", tag = "admin",
    responses((status = 200, body = String, content_type = "text/plain"),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn schema(_: AdminCaller, State(state): State<AppState>) -> Response {
    let mut resp = state.policy.schema().text.clone().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Checks a document without storing it: every problem with its line and column.
#[utoipa::path(post, path = "/admin/v1/policies/validate", tag = "admin", request_body = PolicySource,
    responses((status = 200, body = Validation),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json"),
        super::error::JsonBodyProblems,
        (status = 422, description = "a field is missing, empty or of the wrong type", body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn validate(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PolicySource>,
) -> Result<Json<Validation>, ProblemResponse> {
    check_source(&body.source, None)?;
    Ok(Json(manage::validate(&state.policy, &body.source)))
}

/// Replays recent decisions through a candidate document and reports what would change.
#[utoipa::path(post, path = "/admin/v1/policies/dry-run", tag = "admin", request_body = DryRunRequest,
    responses((status = 200, body = DryRunReport),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json"),
        super::error::JsonBodyProblems,
        (status = 422, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn dry_run(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<DryRunRequest>,
) -> Result<Json<DryRunReport>, ProblemResponse> {
    check_source(&body.source, None)?;
    if body.since_secs == Some(0) || body.limit.is_some_and(|l| l > 1000) {
        return Err(ProblemResponse::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "since_secs must be at least 1 and limit at most 1000",
        ));
    }
    let candidate = state
        .policy
        .compile(&body.source, -1)
        .map_err(PolicyError::Invalid)?;
    let since_secs = body.since_secs.unwrap_or(7 * 86_400).max(1);
    let since = state.now_ms().saturating_sub(
        i64::try_from(since_secs)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000),
    );
    let limit = body.limit.unwrap_or(50).min(1000);
    Ok(Json(
        history::dry_run(&state.store, &candidate, since, limit).await?,
    ))
}

#[utoipa::path(post, path = "/admin/v1/policies/rollback", tag = "admin",
    responses((status = 200, body = PolicyVersion, description = "the version now active"),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "no earlier activation", body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn rollback(
    caller: AdminCaller,
    State(state): State<AppState>,
) -> Result<Json<PolicyVersion>, ProblemResponse> {
    Ok(Json(
        manage::rollback(&state.policy, &state.store, state.now_ms(), &actor(&caller)).await?,
    ))
}

#[utoipa::path(get, path = "/admin/v1/policies/{version}", tag = "admin",
    params(("version" = String, Path, description = "a version number")),
    responses((status = 200, body = PolicyVersion),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn show(
    _: AdminCaller,
    State(state): State<AppState>,
    Path(version): Path<String>,
) -> Result<Json<PolicyVersion>, ProblemResponse> {
    Ok(Json(
        manage::show(&state.policy, &state.store, version_of(&version)?).await?,
    ))
}

#[utoipa::path(post, path = "/admin/v1/policies/{version}/activate", tag = "admin",
    params(("version" = String, Path, description = "a version number")),
    responses((status = 200, body = PolicyVersion),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "the version no longer validates with this configuration", body = super::error::Problem, content_type = "application/problem+json")),
    security(("admin_key" = [])))]
pub(super) async fn activate(
    caller: AdminCaller,
    State(state): State<AppState>,
    Path(version): Path<String>,
) -> Result<Json<PolicyVersion>, ProblemResponse> {
    Ok(Json(
        manage::activate(
            &state.policy,
            &state.store,
            state.now_ms(),
            version_of(&version)?,
            &actor(&caller),
        )
        .await?,
    ))
}
