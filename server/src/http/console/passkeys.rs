//! Console passkeys: the page that lists them and registers one (the signed-in session's
//! role), and signing in with one. The WebAuthn calls need JavaScript
//! (`assets/passkeys.js`), so their endpoints answer JSON to it; without JavaScript the
//! page says so and the sign-in link and SSO still work.

use askama::Template;
use axum::Form;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::format::local;
use super::{Admin, PageError, SESSION_COOKIE, SESSION_TTL_MS, render, see_other};
use crate::admin::passkeys::{self, PasskeyError};
use crate::admin::{Role, sign_in_links::ConsoleSession};
use crate::state::AppState;

/// The largest WebAuthn response read (a registration with attestation is a few KiB).
const MAX_RESPONSE: usize = 64 * 1024;

/// An answer to the page's script: `{"error": "..."}` with the status.
pub struct ScriptError(StatusCode, String);

impl IntoResponse for ScriptError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<PasskeyError> for ScriptError {
    fn from(e: PasskeyError) -> Self {
        let status = match e {
            PasskeyError::Unavailable => StatusCode::CONFLICT,
            PasskeyError::Invalid(_) => StatusCode::BAD_REQUEST,
            PasskeyError::Rejected(_) => StatusCode::FORBIDDEN,
            PasskeyError::Store(s) => return PageError::from(s).into(),
        };
        Self(status, e.to_string())
    }
}

impl From<PageError> for ScriptError {
    fn from(e: PageError) -> Self {
        Self(e.status().0, e.to_string())
    }
}

fn ttl_ms(state: &AppState) -> i64 {
    i64::try_from(state.config.wallet.ceremony_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// The response the script sends, parsed and bounded.
fn credential(text: &str) -> Result<Value, ScriptError> {
    if text.len() > MAX_RESPONSE {
        return Err(ScriptError(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the passkey response is too large".into(),
        ));
    }
    serde_json::from_str(text).map_err(|_| {
        ScriptError(
            StatusCode::BAD_REQUEST,
            "the passkey response is not JSON".into(),
        )
    })
}

pub struct PasskeyRow {
    pub id: String,
    pub label: String,
    pub role: String,
    pub created: String,
    pub created_by: String,
    pub last_used: String,
    pub revoked: bool,
}

#[derive(Template)]
#[template(path = "console/passkeys.html")]
struct PasskeysPage {
    admin: Admin,
    passkeys: Vec<PasskeyRow>,
    available: bool,
    registered: bool,
}

#[derive(Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    registered: Option<String>,
}

pub async fn page(
    admin: Admin,
    State(state): State<AppState>,
    axum::extract::Query(query): axum::extract::Query<PageQuery>,
) -> Result<Response, PageError> {
    let passkeys = state
        .store
        .list_admin_passkeys()
        .await?
        .into_iter()
        .map(|p| PasskeyRow {
            label: p.label,
            role: p.role,
            created: local(p.created_at),
            created_by: p.created_by,
            last_used: p.last_used_at.map_or_else(|| "never".into(), local),
            revoked: p.revoked_at.is_some(),
            id: p.id,
        })
        .collect();
    render(&PasskeysPage {
        admin,
        passkeys,
        available: state.console_passkeys.is_some(),
        registered: query.registered.is_some(),
    })
}

#[derive(Deserialize)]
pub struct LabelForm {
    #[serde(default)]
    label: String,
}

/// Registration options for the signed-in session (any role: a passkey keeps its role).
pub async fn registration_options(
    admin: Admin,
    State(state): State<AppState>,
    Form(form): Form<LabelForm>,
) -> Result<Response, ScriptError> {
    let options = passkeys::start_registration(
        &state.store,
        state.console_passkeys.as_deref(),
        &admin.key_id,
        &form.label,
        ttl_ms(&state),
        state.now_ms(),
    )
    .await?;
    Ok(Json(options).into_response())
}

#[derive(Deserialize)]
pub struct CredentialForm {
    #[serde(default)]
    label: String,
    #[serde(default)]
    credential: String,
}

pub async fn register(
    admin: Admin,
    State(state): State<AppState>,
    Form(form): Form<CredentialForm>,
) -> Result<Response, ScriptError> {
    let response = credential(&form.credential)?;
    let record = passkeys::finish_registration(
        &state.store,
        state.console_passkeys.as_deref(),
        &admin.key_id,
        admin.role,
        &form.label,
        &response,
        state.now_ms(),
    )
    .await?;
    Ok(Json(json!({ "registered": record.label, "role": record.role })).into_response())
}

pub async fn revoke(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    admin.require(Role::Admin)?;
    if !passkeys::revoke(&state.store, &id, &admin.actor(), state.now_ms()).await? {
        return Err(PageError::NotFound(
            "no such passkey, or it is already revoked".into(),
        ));
    }
    Ok(see_other("/console/passkeys"))
}

/// Sign-in options (no session yet; the route is rate-limited per source address).
pub async fn sign_in_options(State(state): State<AppState>) -> Result<Response, ScriptError> {
    let options = passkeys::start_sign_in(
        &state.store,
        state.console_passkeys.as_deref(),
        ttl_ms(&state),
        state.now_ms(),
    )
    .await?;
    Ok(Json(options).into_response())
}

pub async fn sign_in(
    State(state): State<AppState>,
    Form(form): Form<CredentialForm>,
) -> Result<Response, ScriptError> {
    let response = credential(&form.credential)?;
    let session: ConsoleSession = passkeys::finish_sign_in(
        &state.store,
        state.console_passkeys.as_deref(),
        &response,
        SESSION_TTL_MS,
        state.now_ms(),
    )
    .await?;
    let mut answer = Json(json!({ "location": "/console/" })).into_response();
    answer.headers_mut().insert(
        header::SET_COOKIE,
        crate::http::set_cookie(
            &state,
            SESSION_COOKIE,
            session.secret.expose(),
            &format!(
                "SameSite=Strict; Path=/console; Max-Age={}",
                SESSION_TTL_MS / 1000
            ),
        ),
    );
    Ok(answer)
}
