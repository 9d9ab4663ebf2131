//! Admin single sign-on over HTTP (`/admin/sso/*`): the browser side of
//! [`crate::admin::sso`]. Cookies, not bearer headers, because a person's browser makes
//! these requests.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ProblemResponse;
use crate::admin::sso::{self, LOGIN_TTL_SECS, SsoError};
use crate::state::AppState;

/// The admin session (an admin-scoped key), sent back on `/admin` paths only.
pub const SESSION_COOKIE: &str = "countersign_admin";
/// The started login's state, nonce and PKCE verifier, on the callback path only.
const LOGIN_COOKIE: &str = "countersign_sso";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/sso/login", get(login))
        .route(sso::CALLBACK_PATH, get(callback))
        .route("/admin/sso/logout", post(logout))
}

impl From<SsoError> for ProblemResponse {
    fn from(err: SsoError) -> Self {
        let detail = err.to_string();
        let status = match err {
            SsoError::NotConfigured => StatusCode::NOT_FOUND,
            SsoError::BadState(_) => StatusCode::BAD_REQUEST,
            SsoError::Refused(_) | SsoError::NotAnAdmin(_) => StatusCode::FORBIDDEN,
            SsoError::IdToken(_) => StatusCode::UNAUTHORIZED,
            SsoError::Provider(_) => StatusCode::BAD_GATEWAY,
            SsoError::Store(e) => return Self::from(e),
        };
        tracing::info!(error = %detail, "admin sign-in refused");
        Self::new(status, detail)
    }
}

/// The value of cookie `name` in the request, if sent.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

pub fn set_cookie(state: &AppState, name: &str, value: &str, attrs: &str) -> HeaderValue {
    // `Secure` whenever the server is reached over TLS; plain http only on a loopback
    // test or developer setup.
    let secure = if state.issuer.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!("{name}={value}; HttpOnly{secure}; {attrs}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn configured(state: &AppState) -> Result<&sso::AdminSso, ProblemResponse> {
    state
        .admin_sso
        .as_deref()
        .ok_or_else(|| SsoError::NotConfigured.into())
}

#[derive(Debug, Deserialize, IntoParams)]
pub(super) struct LoginParams {
    /// Passed on to the identity provider (who is signing in, e.g. an e-mail address).
    login_hint: Option<String>,
}

/// Starts an admin sign-in: redirects the browser to the identity provider.
#[utoipa::path(get, path = "/admin/sso/login", tag = "admin-sso", params(LoginParams),
    responses((status = 303, description = "to the identity provider's authorization endpoint (sets the sign-in cookie)"),
        (status = 404, description = "single sign-on is not configured", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 502, description = "the identity provider could not be discovered", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "too many requests from this address (Retry-After)", body = super::error::Problem, content_type = "application/problem+json")))]
pub(super) async fn login(
    State(state): State<AppState>,
    params: Result<Query<LoginParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ProblemResponse> {
    let sso = configured(&state)?;
    let Query(params) =
        params.map_err(|e| ProblemResponse::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let started = sso.start(params.login_hint.as_deref()).await?;
    let cookie = set_cookie(
        &state,
        LOGIN_COOKIE,
        &started.cookie,
        // Lax: the IdP's redirect back is a cross-site top-level GET.
        &format!(
            "SameSite=Lax; Path={}; Max-Age={LOGIN_TTL_SECS}",
            sso::CALLBACK_PATH
        ),
    );
    let mut response = StatusCode::SEE_OTHER.into_response();
    let location = HeaderValue::from_str(&started.authorize_url)
        .map_err(|_| ProblemResponse::new(StatusCode::BAD_GATEWAY, "unusable authorize URL"))?;
    response.headers_mut().insert(header::LOCATION, location);
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// What the identity provider sends back (OpenID Connect Core §3.1.2.5 and §3.1.2.6).
#[derive(Debug, Deserialize, IntoParams)]
pub(super) struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// A signed-in admin.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedIn {
    pub email: String,
    /// The identity provider's `sub`.
    pub subject: String,
    /// Unix milliseconds when the session ends.
    pub expires_at: i64,
}

/// The identity provider's redirect back: verifies the sign-in and opens an admin session
/// (an `HttpOnly`, `SameSite=Strict` cookie every `/admin` endpoint accepts).
#[utoipa::path(get, path = "/admin/sso/callback", tag = "admin-sso", params(CallbackParams),
    responses((status = 200, description = "signed in (sets the session cookies of the admin API and the console); a browser asking for text/html gets a page that continues to the console", body = SignedIn),
        (status = 400, description = "not a sign-in started here, or it expired", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "the ID token does not verify", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "refused by the IdP, or not an administrator", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "single sign-on is not configured", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 502, description = "the identity provider failed", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "too many requests from this address (Retry-After)", body = super::error::Problem, content_type = "application/problem+json")))]
pub(super) async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<CallbackParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ProblemResponse> {
    let sso = configured(&state)?;
    let Query(params) =
        params.map_err(|e| ProblemResponse::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    if let Some(error) = params.error {
        let why = params.error_description.unwrap_or_default();
        return Err(SsoError::Refused(format!("{error} {why}").trim().to_owned()).into());
    }
    let (Some(code), Some(login_state)) = (params.code, params.state) else {
        return Err(SsoError::BadState("code and state are required").into());
    };
    let session = sso
        .finish(
            &state.store,
            state.now_ms(),
            &code,
            &login_state,
            cookie(&headers, LOGIN_COOKIE),
        )
        .await?;
    let max_age = (session.expires_at_ms - state.now_ms()).max(0) / 1000;
    // A person's browser goes on to the console (a page, not JSON); the console's own
    // cookie holds the same session, scoped to its path.
    let wants_page = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    let mut response = if wants_page {
        crate::http::console::signed_in_page(&session.email, session.role)
    } else {
        Json(SignedIn {
            email: session.email,
            subject: session.subject,
            expires_at: session.expires_at_ms,
        })
        .into_response()
    };
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(
            &state,
            SESSION_COOKIE,
            session.secret.expose(),
            &format!("SameSite=Strict; Path=/admin; Max-Age={max_age}"),
        ),
    );
    headers.append(
        header::SET_COOKIE,
        set_cookie(
            &state,
            crate::http::console::SESSION_COOKIE,
            session.secret.expose(),
            &format!("SameSite=Strict; Path=/console; Max-Age={max_age}"),
        ),
    );
    headers.append(
        header::SET_COOKIE,
        set_cookie(
            &state,
            LOGIN_COOKIE,
            "",
            &format!("SameSite=Lax; Path={}; Max-Age=0", sso::CALLBACK_PATH),
        ),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Ends the admin session this browser holds.
#[utoipa::path(post, path = "/admin/sso/logout", tag = "admin-sso",
    responses((status = 204, description = "signed out (the session cookie is cleared)"),
        (status = 401, description = "no live session", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "too many requests from this address (Retry-After)", body = super::error::Problem, content_type = "application/problem+json")))]
pub(super) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ProblemResponse> {
    let unauthorized = || ProblemResponse::new(StatusCode::UNAUTHORIZED, "no admin session");
    let presented = cookie(&headers, SESSION_COOKIE).ok_or_else(unauthorized)?;
    if !sso::end_session(&state.store, presented, state.now_ms()).await? {
        return Err(unauthorized());
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(
            &state,
            SESSION_COOKIE,
            "",
            "SameSite=Strict; Path=/admin; Max-Age=0",
        ),
    );
    Ok(response)
}
