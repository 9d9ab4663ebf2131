//! The AuthZEN Authorization API 1.0 over HTTP (`/access/v1/...`, docs/authzen.md):
//! JSON in and out; errors are the specification's status codes with a plain-text
//! message; a denial is a `200` with `"decision": false`. The caller (the enforcement
//! point) authenticates as a client: `Authorization: Basic` with its client secret, or an
//! access token for `{issuer}/access/v1` from the `client_credentials` grant (`Bearer`,
//! or `DPoP` with its proof). `X-Request-ID` is echoed by the router's layers.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use countersign_gateway::{PresentedToken, TokenRefused};
use serde_json::{Value, json};

use super::form::basic_credentials;
use super::oauth::no_store;
use super::peer::PeerAddr;
use crate::authzen::access_request::{self, AccessRequestError};
use crate::authzen::evaluate::{self, EvaluationError};
use crate::authzen::request::{self, Evaluations, Malformed};
use crate::authzen::search::{self, SearchKind};
use crate::authzen::{self as api};
use crate::oidc::client_auth::{self, ClientAuthError, ClientCredentials};
use crate::state::AppState;
use crate::store::clients::ClientRecord;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(api::METADATA_PATH, get(metadata))
        .route(api::EVALUATION_PATH, post(evaluation))
        .route(api::EVALUATIONS_PATH, post(evaluations))
        .route(api::SEARCH_SUBJECT_PATH, post(search_subject))
        .route(api::SEARCH_RESOURCE_PATH, post(search_resource))
        .route(api::SEARCH_ACTION_PATH, post(search_action))
        .route(access_request::REQUESTS_PATH, post(request_access))
        .route(REQUEST_PATH, get(access_request_status))
        .route(CANCEL_PATH, post(cancel_access_request))
}

const REQUEST_PATH: &str = "/access/v1/requests/{id}";
const CANCEL_PATH: &str = "/access/v1/requests/{id}/cancel";

/// An AuthZEN error: its status and message (`text/plain`).
#[derive(Debug)]
pub(super) struct Refusal {
    status: StatusCode,
    message: String,
    /// Seconds to wait (429).
    retry_after: Option<u64>,
    /// The issuer, for the `WWW-Authenticate` challenges of a 401.
    realm: Option<String>,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
            realm: None,
        }
    }

    fn unauthenticated(state: &AppState, message: impl Into<String>) -> Self {
        Self {
            realm: Some(state.issuer.to_string()),
            ..Self::new(StatusCode::UNAUTHORIZED, message)
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.message).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(realm) = self.realm {
            let realm = realm.replace('"', "");
            for scheme in ["Bearer", "Basic"] {
                if let Ok(value) = HeaderValue::from_str(&format!("{scheme} realm=\"{realm}\"")) {
                    headers.append(header::WWW_AUTHENTICATE, value);
                }
            }
        }
        response
    }
}

impl From<Malformed> for Refusal {
    fn from(e: Malformed) -> Self {
        Self::new(StatusCode::BAD_REQUEST, e.0)
    }
}

impl From<EvaluationError> for Refusal {
    fn from(e: EvaluationError) -> Self {
        match e {
            EvaluationError::BadRequest(m) => Self::new(StatusCode::BAD_REQUEST, m),
            EvaluationError::Forbidden(m) => Self::new(StatusCode::FORBIDDEN, m),
            EvaluationError::Store(e) => {
                tracing::warn!(error = %e, "an AuthZEN request could not be decided");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the decision could not be made or recorded; retry",
                )
            }
        }
    }
}

/// The enforcement point calling (`POST`), authenticated.
async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    path: &str,
) -> Result<ClientRecord, Refusal> {
    caller_for(state, headers, path, "POST").await
}

/// The enforcement point calling `method path`, authenticated.
async fn caller_for(
    state: &AppState,
    headers: &HeaderMap,
    path: &str,
    method: &str,
) -> Result<ClientRecord, Refusal> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(Refusal::unauthenticated(
            state,
            "authenticate with one Authorization header: Basic (client secret), or Bearer or DPoP (a client_credentials token for this API)",
        ));
    };
    let text = value.to_str().unwrap_or_default();
    let (scheme, token) = text.split_once(' ').unwrap_or((text, ""));
    let token = token.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        return by_client_secret(state, headers, path).await;
    }
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        "Bearer"
    } else if scheme.eq_ignore_ascii_case("dpop") {
        "DPoP"
    } else {
        return Err(Refusal::unauthenticated(
            state,
            format!("the {scheme:?} scheme is not accepted: use Basic, Bearer or DPoP"),
        ));
    };
    by_access_token(state, headers, scheme, token, path, method).await
}

/// The client authenticated with its secret (HTTP Basic), enabled and under its rate.
async fn by_client_secret(
    state: &AppState,
    headers: &HeaderMap,
    path: &str,
) -> Result<ClientRecord, Refusal> {
    let basic = basic_credentials(headers)
        .map_err(|_| Refusal::unauthenticated(state, "malformed Basic credentials"))?;
    let creds = ClientCredentials {
        basic,
        ..ClientCredentials::default()
    };
    let client = client_auth::authenticate(&state.authenticating(), &creds, &state.endpoint(path))
        .await
        .map_err(|e| match e {
            ClientAuthError::Store(e) => EvaluationError::Store(e).into(),
            other => Refusal::unauthenticated(state, other.to_string()),
        })?;
    if !client.enabled {
        return Err(Refusal::unauthenticated(state, "the client is disabled"));
    }
    if let Err(crate::limits::RetryAfter(secs)) = state
        .limits
        .per_client
        .check(&client.client_id, state.now_ms())
    {
        metrics::counter!("countersign_rate_limited_total", "limit" => "client").increment(1);
        return Err(Refusal {
            retry_after: Some(secs),
            ..Refusal::new(
                StatusCode::TOO_MANY_REQUESTS,
                "over the client's rate limit",
            )
        });
    }
    Ok(client)
}

/// The client a `client_credentials` token for this API names (`scheme` Bearer or DPoP).
async fn by_access_token(
    state: &AppState,
    headers: &HeaderMap,
    scheme: &str,
    token: &str,
    path: &str,
    method: &str,
) -> Result<ClientRecord, Refusal> {
    let url = state.endpoint(path);
    let presented = PresentedToken {
        scheme,
        token,
        dpop_proof: headers.get("dpop").and_then(|v| v.to_str().ok()),
        method,
        url: &url,
    };
    crate::oidc::resource_auth::authenticate(
        &state.guarding(),
        &crate::paths::authzen_resource(&state.issuer),
        presented,
    )
    .await
    .map_err(|e| match e {
        TokenRefused::RateLimited(secs) => Refusal {
            retry_after: Some(secs),
            ..Refusal::new(
                StatusCode::TOO_MANY_REQUESTS,
                "over the client's rate limit",
            )
        },
        TokenRefused::Unavailable(m) => Refusal::new(StatusCode::SERVICE_UNAVAILABLE, m),
        other => Refusal::unauthenticated(state, other.to_string()),
    })
}

/// The JSON body: `Content-Type: application/json`, readable, an object.
fn json_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Value, Refusal> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "Content-Type must be application/json",
        ));
    }
    let body = body.map_err(|e| Refusal::new(e.status(), e.body_text()))?;
    if body.is_empty() {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "the request body is empty",
        ));
    }
    serde_json::from_slice(&body).map_err(|e| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not JSON: {e}"),
        )
    })
}

/// The PDP's metadata (AuthZEN §9.2).
#[utoipa::path(get, path = "/.well-known/authzen-configuration", tag = "authzen",
    responses((status = 200, description = "AuthZEN PDP metadata", body = Object)))]
pub(super) async fn metadata(State(state): State<AppState>) -> Response {
    axum::Json(api::metadata(&state.issuer)).into_response()
}

/// One access evaluation (AuthZEN §6): `{"decision": true|false, "context": {...}}`.
#[utoipa::path(post, path = "/access/v1/evaluation", tag = "authzen",
    request_body(content = Object, content_type = "application/json",
        description = "AuthZEN access evaluation request: subject, action, resource, context"),
    responses((status = 200, description = "the decision (a denial too)", body = Object),
        (status = 400, description = "malformed request", body = String, content_type = "text/plain"),
        (status = 401, description = "the caller is not authenticated", body = String, content_type = "text/plain"),
        (status = 403, description = "the caller may not ask about this subject", body = String, content_type = "text/plain"),
        (status = 413, description = "body too large", body = String, content_type = "text/plain"),
        (status = 429, description = "rate limited, with Retry-After", body = String, content_type = "text/plain"),
        (status = 503, description = "storage unavailable", body = String, content_type = "text/plain")),
    security(("client_basic" = []), ("client_token" = [])))]
pub(super) async fn evaluation(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Refusal> {
    let client = caller(&state, &headers, api::EVALUATION_PATH).await?;
    let body = json_body(&headers, body)?;
    let e = request::evaluation(&body)?;
    let answer = evaluate::evaluate(&state.pdp(), &client, &e, &peer).await?;
    Ok(no_store(answer.to_json()))
}

/// Many evaluations (AuthZEN §7): top-level members are defaults each item may replace;
/// `options.evaluations_semantic` is `execute_all` (default), `deny_on_first_deny` or
/// `permit_on_first_permit` (the answers end with the deciding one).
#[utoipa::path(post, path = "/access/v1/evaluations", tag = "authzen",
    request_body(content = Object, content_type = "application/json",
        description = "AuthZEN access evaluations request: defaults, evaluations, options"),
    responses((status = 200, description = "{\"evaluations\": [decision...]} (a plain decision when no evaluations were sent)", body = Object),
        (status = 400, description = "malformed request", body = String, content_type = "text/plain"),
        (status = 401, description = "the caller is not authenticated", body = String, content_type = "text/plain"),
        (status = 403, description = "the caller may not ask about this subject", body = String, content_type = "text/plain"),
        (status = 413, description = "body too large", body = String, content_type = "text/plain"),
        (status = 429, description = "rate limited, with Retry-After", body = String, content_type = "text/plain"),
        (status = 503, description = "storage unavailable", body = String, content_type = "text/plain")),
    security(("client_basic" = []), ("client_token" = [])))]
pub(super) async fn evaluations(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Refusal> {
    let client = caller(&state, &headers, api::EVALUATIONS_PATH).await?;
    let body = json_body(&headers, body)?;
    match request::evaluations(&body, state.config.authzen.max_batch)? {
        Evaluations::Single(e) => {
            let answer = evaluate::evaluate(&state.pdp(), &client, &e, &peer).await?;
            Ok(no_store(answer.to_json()))
        }
        Evaluations::Batch { items, semantic } => {
            let answers = evaluate::evaluate_batch(&state.pdp(), &client, &items, semantic, &peer)
                .await
                .map_err(EvaluationError::Store)?;
            let answers: Vec<Value> = answers.iter().map(evaluate::Answer::to_json).collect();
            Ok(no_store(json!({ "evaluations": answers })))
        }
    }
}

async fn run_search(
    state: AppState,
    peer: crate::ciba::authorize::Peer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    kind: SearchKind,
    path: &str,
) -> Result<Response, Refusal> {
    let client = caller(&state, &headers, path).await?;
    let body = json_body(&headers, body)?;
    let request = search::read(kind, &body, state.config.authzen.max_page)?;
    let page = search::search(&state.pdp(), &client, &request, &peer).await?;
    Ok(no_store(page.to_json()))
}

/// The subjects of `subject.type` the policy permits the action on the resource for
/// (AuthZEN §8.4): `user` searches the directory's humans, `agent` the caller itself.
#[utoipa::path(post, path = "/access/v1/search/subject", tag = "authzen",
    request_body(content = Object, content_type = "application/json",
        description = "subject (type only), action, resource, context, page {token, limit}"),
    responses((status = 200, description = "{\"page\": {\"next_token\", \"count\"}, \"results\": [{type, id}]}", body = Object),
        (status = 400, description = "malformed request, or a page token of another request", body = String, content_type = "text/plain"),
        (status = 401, description = "the caller is not authenticated", body = String, content_type = "text/plain"),
        (status = 413, description = "body too large", body = String, content_type = "text/plain"),
        (status = 429, description = "rate limited, with Retry-After", body = String, content_type = "text/plain"),
        (status = 503, description = "storage unavailable", body = String, content_type = "text/plain")),
    security(("client_basic" = []), ("client_token" = [])))]
pub(super) async fn search_subject(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Refusal> {
    run_search(
        state,
        peer,
        headers,
        body,
        SearchKind::Subject,
        api::SEARCH_SUBJECT_PATH,
    )
    .await
}

/// The resources of `resource.type` the subject may act on (AuthZEN §8.5): `tool`
/// searches `policy.tools`; Countersign keeps no inventory of other types (none found).
#[utoipa::path(post, path = "/access/v1/search/resource", tag = "authzen",
    request_body(content = Object, content_type = "application/json",
        description = "subject, action, resource (type only), context, page {token, limit}"),
    responses((status = 200, description = "{\"page\": {\"next_token\", \"count\"}, \"results\": [{type, id}]}", body = Object),
        (status = 400, description = "malformed request, or a page token of another request", body = String, content_type = "text/plain"),
        (status = 401, description = "the caller is not authenticated", body = String, content_type = "text/plain"),
        (status = 413, description = "body too large", body = String, content_type = "text/plain"),
        (status = 429, description = "rate limited, with Retry-After", body = String, content_type = "text/plain"),
        (status = 503, description = "storage unavailable", body = String, content_type = "text/plain")),
    security(("client_basic" = []), ("client_token" = [])))]
pub(super) async fn search_resource(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Refusal> {
    run_search(
        state,
        peer,
        headers,
        body,
        SearchKind::Resource,
        api::SEARCH_RESOURCE_PATH,
    )
    .await
}

/// The declared actions the subject may perform on the resource (AuthZEN §8.6).
#[utoipa::path(post, path = "/access/v1/search/action", tag = "authzen",
    request_body(content = Object, content_type = "application/json",
        description = "subject, resource, context, page {token, limit}"),
    responses((status = 200, description = "{\"page\": {\"next_token\", \"count\"}, \"results\": [{name}]}", body = Object),
        (status = 400, description = "malformed request, or a page token of another request", body = String, content_type = "text/plain"),
        (status = 401, description = "the caller is not authenticated", body = String, content_type = "text/plain"),
        (status = 413, description = "body too large", body = String, content_type = "text/plain"),
        (status = 429, description = "rate limited, with Retry-After", body = String, content_type = "text/plain"),
        (status = 503, description = "storage unavailable", body = String, content_type = "text/plain")),
    security(("client_basic" = []), ("client_token" = [])))]
pub(super) async fn search_action(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Refusal> {
    run_search(
        state,
        peer,
        headers,
        body,
        SearchKind::Action,
        api::SEARCH_ACTION_PATH,
    )
    .await
}

fn access_request_error(e: AccessRequestError) -> Response {
    match e {
        AccessRequestError::Evaluation(e) => Refusal::from(e).into_response(),
        AccessRequestError::Problem(problem) => {
            let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
            let mut response = (status, axum::Json(problem.to_json())).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            );
            response
        }
    }
}

/// An access request for a requestable denial (the Access Request and Approval
/// profile, Draft 1): the denied evaluation's subject, resource, action and context, and
/// `denial.binding_token` from its `context.access_request`. Becomes a CIBA request to the
/// approvers the policy names; answers the task.
#[utoipa::path(post, path = "/access/v1/requests", tag = "authzen",
    request_body(content = Object, content_type = "application/json",
        description = "subject, resource, action, context (as evaluated) and denial {binding_token, evaluation_id, expires_at}"),
    responses((status = 202, description = "{\"task\": {id, status: pending, status_endpoint, expires_at, links}}", body = Object),
        (status = 201, description = "resolved at once (the policy now allows it)", body = Object),
        (status = 400, description = "malformed (text), not_requestable or invalid_denial_binding (problem+json)", content((String = "text/plain"), (Object = "application/problem+json"))),
        (status = 401, description = "the caller is not authenticated", body = String, content_type = "text/plain"),
        (status = 409, description = "duplicate_request: this denial was already requested", body = Object, content_type = "application/problem+json"),
        (status = 410, description = "expired_denial", body = Object, content_type = "application/problem+json"),
        (status = 413, description = "body too large", body = String, content_type = "text/plain"),
        (status = 429, description = "rate limited, with Retry-After", body = String, content_type = "text/plain"),
        (status = 503, description = "storage unavailable", body = String, content_type = "text/plain")),
    security(("client_basic" = []), ("client_token" = [])))]
pub(super) async fn request_access(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let client = match caller(&state, &headers, access_request::REQUESTS_PATH).await {
        Ok(client) => client,
        Err(refusal) => return refusal.into_response(),
    };
    let body = match json_body(&headers, body) {
        Ok(body) => body,
        Err(refusal) => return refusal.into_response(),
    };
    match access_request::create(&state.pdp(), &client, &body, &peer).await {
        Ok((status, task)) => {
            let mut response = no_store(task);
            *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::ACCEPTED);
            response
        }
        Err(e) => access_request_error(e),
    }
}

/// The task of an access request: `pending`, `approved` (with `result.approval` to put
/// unchanged in the re-evaluation's `context.approval`), `denied`, `expired` or
/// `cancelled`.
#[utoipa::path(get, path = "/access/v1/requests/{id}", tag = "authzen",
    params(("id" = String, Path, description = "the task id")),
    responses((status = 200, description = "{\"task\", \"result\"?}", body = Object),
        (status = 401, description = "the caller is not authenticated", body = String, content_type = "text/plain"),
        (status = 404, description = "unknown_task", body = Object, content_type = "application/problem+json"),
        (status = 503, description = "storage unavailable", body = String, content_type = "text/plain")),
    security(("client_basic" = []), ("client_token" = [])))]
pub(super) async fn access_request_status(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<crate::ids::AuthReqId>,
    headers: HeaderMap,
) -> Response {
    let path = format!("{}/{id}", access_request::REQUESTS_PATH);
    let client = match caller_for(&state, &headers, &path, "GET").await {
        Ok(client) => client,
        Err(refusal) => return refusal.into_response(),
    };
    match access_request::status(&state.pdp(), &client, &id).await {
        Ok(task) => no_store(task),
        Err(e) => access_request_error(e),
    }
}

/// Cancels a pending access request: its approvers are no longer asked.
#[utoipa::path(post, path = "/access/v1/requests/{id}/cancel", tag = "authzen",
    params(("id" = String, Path, description = "the task id")),
    responses((status = 200, description = "{\"task\"} (cancelled)", body = Object),
        (status = 401, description = "the caller is not authenticated", body = String, content_type = "text/plain"),
        (status = 404, description = "unknown_task", body = Object, content_type = "application/problem+json"),
        (status = 409, description = "invalid_task_state: already resolved", body = Object, content_type = "application/problem+json"),
        (status = 503, description = "storage unavailable", body = String, content_type = "text/plain")),
    security(("client_basic" = []), ("client_token" = [])))]
pub(super) async fn cancel_access_request(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<crate::ids::AuthReqId>,
    headers: HeaderMap,
) -> Response {
    let path = format!("{}/{id}/cancel", access_request::REQUESTS_PATH);
    let client = match caller(&state, &headers, &path).await {
        Ok(client) => client,
        Err(refusal) => return refusal.into_response(),
    };
    match access_request::cancel(
        &state.pdp(),
        &client,
        &id,
        "cancelled by the enforcement point",
    )
    .await
    {
        Ok(task) => no_store(task),
        Err(e) => access_request_error(e),
    }
}
