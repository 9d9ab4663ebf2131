//! The server console (`/console/`): server-rendered pages for security admins. Every
//! action is a real form that works without JavaScript (htmx, vendored, only enhances);
//! handlers are thin and call the same domain services as the admin API.
//!
//! Protection, in one place for every page:
//! - a strict Content-Security-Policy (no inline script or style), `nosniff`, no framing,
//!   `Referrer-Policy: same-origin` (a sign-in link carries its token in the URL: no other
//!   site sees it; `no-referrer` would make browsers send `Origin: null` on our own forms);
//! - the session is an expiring admin key in an `HttpOnly`, `SameSite=Strict` cookie
//!   scoped to `/console` (`Secure` behind https);
//! - every state-changing request must come from this origin (`Origin`,
//!   `Sec-Fetch-Site`) and carry the session's CSRF token (`csrf` form field), checked
//!   by [`guard`] before any handler runs;
//! - each action checks the signed-in role on the server ([`Admin::require`]).

mod agents;
mod approvers;
mod credentials;
mod diff;
mod figures;
mod format;
mod humans;
mod integrations;
mod live;
mod overview;
mod passkeys;
mod policies;
mod sign_in;
mod trace;

use askama::Template;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::admin::{self, Role, Scope};
use crate::directory::DirectoryError;
use crate::state::AppState;
use crate::store::StoreError;

/// The console session cookie (path `/console`).
pub const SESSION_COOKIE: &str = "countersign_console";
/// How long a console session lasts.
pub const SESSION_TTL_MS: i64 = 8 * 3600 * 1000;
/// The largest form a console page posts (a policy document is the largest).
const MAX_FORM_BYTES: usize = 256 * 1024;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; \
                   object-src 'none'";

pub fn router(state: AppState) -> Router<AppState> {
    session_routes()
        .merge(directory_routes())
        .merge(governance_routes())
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/htmx.min.js", get(htmx))
        .route("/console/assets/passkeys.js", get(passkeys_js))
        .route("/console/assets/live.js", get(live_js))
        .route("/console/assets/console.js", get(console_js))
        .route_layer(middleware::from_fn_with_state(state, guard))
}

/// The overview, signing in and out, and the admin's passkeys.
fn session_routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(overview::page))
        .route("/console/live/queue", get(live::queue))
        .route("/console/queue", get(overview::queue))
        .route("/console/sign-in", get(sign_in::form).post(sign_in::redeem))
        .route("/console/sign-out", axum::routing::post(sign_in::sign_out))
        .route(
            "/console/sign-in/passkey/options",
            axum::routing::post(passkeys::sign_in_options),
        )
        .route(
            "/console/sign-in/passkey",
            axum::routing::post(passkeys::sign_in),
        )
        .route(
            "/console/passkeys",
            get(passkeys::page).post(passkeys::register),
        )
        .route(
            "/console/passkeys/options",
            axum::routing::post(passkeys::registration_options),
        )
        .route(
            "/console/passkeys/{id}/revoke",
            axum::routing::post(passkeys::revoke),
        )
}

/// Agents and their credentials.
fn directory_routes() -> Router<AppState> {
    Router::new()
        .route("/console/agents", get(agents::list).post(agents::register))
        .route("/console/agents/new", get(agents::new_form))
        .route("/console/credentials", get(credentials::list))
        .route("/console/credentials/{id}", get(credentials::detail))
        .route(
            "/console/credentials/{id}/revoke",
            axum::routing::post(credentials::revoke),
        )
        .route("/console/agents/{client_id}", get(agents::detail))
        .route(
            "/console/agents/{client_id}/suspend",
            axum::routing::post(agents::suspend),
        )
        .route(
            "/console/agents/{client_id}/resume",
            axum::routing::post(agents::resume),
        )
        .route(
            "/console/agents/{client_id}/reassign",
            axum::routing::post(agents::reassign),
        )
}

/// Humans, approvers, the trace, policies and integrations.
fn governance_routes() -> Router<AppState> {
    Router::new()
        .route("/console/humans", get(humans::list))
        .route("/console/humans/{subject}", get(humans::detail))
        .route(
            "/console/humans/{subject}/offboard",
            get(humans::offboard_preview).post(humans::offboard),
        )
        .route(
            "/console/humans/{subject}/reactivate",
            axum::routing::post(humans::reactivate),
        )
        .route(
            "/console/humans/{subject}/invitations",
            axum::routing::post(humans::invite),
        )
        .route("/console/approvers", get(approvers::page))
        .route("/console/trace", get(trace::list))
        .route("/console/trace/export", get(trace::export))
        .route("/console/trace/approvals", get(trace::approvals))
        .route("/console/trace/{seq}", get(trace::event))
        .route(
            "/console/policies",
            get(policies::list).post(policies::draft),
        )
        .route("/console/policies/{version}", get(policies::version))
        .route(
            "/console/policies/{version}/activate",
            axum::routing::post(policies::activate),
        )
        .route(
            "/console/policies/rollback",
            axum::routing::post(policies::rollback),
        )
        .route("/console/integrations", get(integrations::page))
        .route(
            "/console/integrations/scim-tokens/{id}/revoke",
            axum::routing::post(integrations::revoke_scim_token),
        )
}

async fn css() -> Response {
    asset("text/css", include_str!("../../../assets/console.css"))
}

async fn htmx() -> Response {
    asset(
        "text/javascript",
        include_str!("../../../assets/htmx.min.js"),
    )
}

async fn console_js() -> Response {
    asset(
        "text/javascript",
        include_str!("../../../assets/console.js"),
    )
}

async fn live_js() -> Response {
    asset("text/javascript", include_str!("../../../assets/live.js"))
}

async fn passkeys_js() -> Response {
    asset(
        "text/javascript",
        include_str!("../../../assets/passkeys.js"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
        .into_response()
}

/// The signed-in admin: the session key's id (the trail's actor is `admin-key:ID`), its
/// role, and the CSRF token forms must carry.
pub struct Admin {
    pub key_id: String,
    pub role: Role,
    pub csrf: String,
    /// The time zone pages show times in: the browser's, once its script has said
    /// (`format::TIME_ZONE_COOKIE`), else UTC.
    pub time_zone: String,
}

impl Admin {
    pub fn actor(&self) -> String {
        Scope::Admin.subject(&self.key_id)
    }

    /// Refuses (403) unless the session's role includes `needed`.
    pub fn require(&self, needed: Role) -> Result<(), PageError> {
        if self.role.includes(needed) {
            Ok(())
        } else {
            Err(PageError::Forbidden(format!(
                "this needs the {needed} role; you are signed in as {}",
                self.role
            )))
        }
    }

    /// Whether the operator's actions (suspend, offboard, revoke) are open to this admin:
    /// pages show their forms only then (the handlers check again).
    pub fn is_operator(&self) -> bool {
        self.role.includes(Role::Operator)
    }

    /// Whether the admin's changes (policies, keys, directory) are open to this admin.
    pub fn is_admin(&self) -> bool {
        self.role.includes(Role::Admin)
    }
}

/// The CSRF token of a session: derived from its secret (which the page's scripts cannot
/// read: the cookie is `HttpOnly`), so it needs no storage and dies with the session.
fn csrf_token(session_secret: &str) -> String {
    countersign_jose::b64url_encode(countersign_jose::sha256(
        format!("countersign console csrf\n{session_secret}").as_bytes(),
    ))
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    crate::http::cookie(headers, SESSION_COOKIE).filter(|v| !v.is_empty())
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let to_sign_in = || Redirect::to("/console/sign-in").into_response();
        let secret = session_cookie(&parts.headers).ok_or_else(to_sign_in)?;
        let key = admin::verify_key(&state.store, secret, Scope::Admin, state.now_ms())
            .await
            .map_err(|e| PageError::from(e).into_response())?
            .ok_or_else(to_sign_in)?;
        Ok(Admin {
            key_id: key.id,
            role: key.role,
            csrf: csrf_token(secret),
            time_zone: format::time_zone_of(&parts.headers)
                .map_or_else(|| "UTC".to_owned(), |(name, _)| name),
        })
    }
}

/// Runs before every console handler: security headers on every answer; for a
/// state-changing request, the same-origin checks and the CSRF token.
async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let request = if matches!(*request.method(), Method::GET | Method::HEAD) {
        request
    } else {
        match check_post(&state, request).await {
            Ok(request) => request,
            Err(refusal) => return with_headers(refusal.into_response()),
        }
    };
    let time_zone = format::time_zone_of(request.headers()).map(|(_, tz)| tz);
    with_headers(format::with_time_zone(time_zone, next.run(request)).await)
}

fn with_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A POST from another site (by `Origin` or `Sec-Fetch-Site`) or without the session's
/// CSRF token is refused before it reaches a handler; the body is read (bounded) and put
/// back for the handler.
async fn check_post(state: &AppState, request: Request) -> Result<Request, PageError> {
    let (parts, body) = request.into_parts();
    let cross_site = || PageError::Forbidden("a request from another site was refused".into());
    let site = parts.headers.get("sec-fetch-site");
    if site.is_some_and(|s| !matches!(s.as_bytes(), b"same-origin" | b"none")) {
        return Err(cross_site());
    }
    let ours = crate::paths::origin_of(&state.issuer).as_bytes();
    if parts
        .headers
        .get(header::ORIGIN)
        .is_some_and(|origin| origin.as_bytes() != ours)
    {
        return Err(cross_site());
    }
    let bytes = to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| PageError::Invalid("the form is too large".into()))?;
    // Signing in has no session yet: a single-use token or a passkey is its proof.
    if !parts.uri.path().starts_with("/console/sign-in") {
        let expected = session_cookie(&parts.headers).map(csrf_token);
        let sent = form_urlencoded::parse(&bytes)
            .find(|(name, _)| name == "csrf")
            .map(|(_, value)| value.into_owned());
        let matches = match (expected, sent) {
            (Some(expected), Some(sent)) => {
                countersign_jose::sha256(expected.as_bytes())
                    == countersign_jose::sha256(sent.as_bytes())
            }
            _ => false,
        };
        if !matches {
            return Err(PageError::Forbidden(
                "the form's security token is missing or stale; reload the page and try again"
                    .into(),
            ));
        }
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// What a console page answers instead of its content.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the service is unavailable; try again shortly")]
    Unavailable,
    #[error("something went wrong; the server log has the details")]
    Internal,
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => PageError::Conflict("it changed meanwhile; reload".into()),
            StoreError::Database(_) | StoreError::Migrate(_) | StoreError::Uncertain(_) => {
                tracing::warn!(error = %e, "console: storage unavailable");
                PageError::Unavailable
            }
            StoreError::Corrupt(_) | StoreError::Misuse(_) => {
                tracing::error!(error = %e, "console: storage error");
                PageError::Internal
            }
        }
    }
}

impl From<DirectoryError> for PageError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::Invalid(m) => PageError::Invalid(m),
            DirectoryError::NotFound(m) => PageError::NotFound(format!("{m} not found")),
            DirectoryError::Conflict(m) => PageError::Conflict(format!("{m} already exists")),
            DirectoryError::Store(e) => e.into(),
        }
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        tracing::error!(error = %e, "console: template");
        PageError::Internal
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: String,
}

impl PageError {
    /// The HTTP status of this error and the title of its page.
    pub fn status(&self) -> (StatusCode, &'static str) {
        match self {
            PageError::Invalid(_) => (StatusCode::BAD_REQUEST, "Not accepted"),
            PageError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
            PageError::Forbidden(_) => (StatusCode::FORBIDDEN, "Not allowed"),
            PageError::Conflict(_) => (StatusCode::CONFLICT, "Conflict"),
            PageError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "Unavailable"),
            PageError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "Error"),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title) = self.status();
        let page = ErrorPage {
            title,
            message: self.to_string(),
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, self.to_string()).into_response(),
        }
    }
}

/// Renders a page template.
pub fn render(page: &impl Template) -> Result<Response, PageError> {
    Ok(Html(page.render()?).into_response())
}

/// The form of an action that ends things (suspend, offboard): a reason for the trail and
/// the confirmation box.
#[derive(serde::Deserialize)]
pub struct ConfirmedReason {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    confirm: Option<String>,
}

impl ConfirmedReason {
    /// The reason, once the box was ticked; otherwise a 400 saying `what_it_does`.
    pub fn confirmed(&self, what_it_does: &str) -> Result<&str, PageError> {
        match self.confirm {
            Some(_) => Ok(self.reason.trim()),
            None => Err(PageError::Invalid(format!(
                "tick the confirmation: {what_it_does}"
            ))),
        }
    }
}

#[derive(Template)]
#[template(path = "console/signed_in.html")]
struct SignedInPage<'a> {
    email: &'a str,
    role: Role,
}

/// The page single sign-on ends on in a browser: the IdP's redirect back is a cross-site
/// navigation, on which browsers withhold the `SameSite=Strict` session cookie, so the
/// console is entered by a navigation from this page (same-site) instead of a redirect.
pub fn signed_in_page(email: &str, role: Role) -> Response {
    let page = SignedInPage { email, role };
    with_headers(match render(&page) {
        Ok(page) => page,
        Err(e) => e.into_response(),
    })
}

/// After a successful POST: back to `to` (303), so a reload does not repeat the action.
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}
