//! Credentials: the issued credentials filtered by agent, approver or owner, one
//! credential's detail and status, and revocation with a reason.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::agents::urlencode;
use super::format::{action_summary, age, local};
use super::{Admin, PageError, render, see_other};
use crate::admin::Role;
use crate::credentials::manage::{self, CredentialSummary, ManageError};
use crate::state::AppState;

impl From<ManageError> for PageError {
    fn from(e: ManageError) -> Self {
        match e {
            ManageError::Invalid(m) => PageError::Invalid(m),
            ManageError::NotFound(id) => PageError::NotFound(format!("no credential {id:?}")),
            ManageError::Store(e) => e.into(),
        }
    }
}

/// How a credential stands at a moment.
pub fn status_of(c: &CredentialSummary, now_s: i64) -> &'static str {
    if c.revoked_at.is_some() {
        "revoked"
    } else if c.expires_at <= now_s {
        "expired"
    } else {
        "live"
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    agent: String,
    #[serde(default)]
    approver: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    after: String,
}

/// Credentials on one page of the list.
const PAGE: i64 = 50;

pub struct Row {
    pub id: String,
    pub agent: String,
    pub approver: String,
    pub status: &'static str,
    pub issued: String,
    pub expires: String,
}

#[derive(Template)]
#[template(path = "console/credentials.html")]
struct CredentialsPage {
    admin: Admin,
    agent: String,
    approver: String,
    owner: String,
    rows: Vec<Row>,
    /// The next page's address, when there is one.
    next: Option<String>,
}

pub async fn list(
    admin: Admin,
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let now = state.now_ms();
    let selector = manage::selector(
        non_empty(&q.agent),
        non_empty(&q.approver),
        non_empty(&q.owner),
    )?;
    let page = manage::page(&state.store, selector, non_empty(&q.after), PAGE).await?;
    let rows = page
        .credentials
        .into_iter()
        .map(|c| Row {
            status: status_of(&c, now / 1000),
            issued: age(c.issued_at * 1000, now),
            expires: age(c.expires_at * 1000, now),
            id: c.id,
            agent: c.agent,
            approver: c.approver,
        })
        .collect();
    let next = page.next.map(|after| {
        format!(
            "/console/credentials?agent={}&approver={}&owner={}&after={}",
            urlencode(&q.agent),
            urlencode(&q.approver),
            urlencode(&q.owner),
            urlencode(&after)
        )
    });
    render(&CredentialsPage {
        admin,
        agent: q.agent,
        approver: q.approver,
        owner: q.owner,
        rows,
        next,
    })
}

/// A filter field: absent when blank.
fn non_empty(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

#[derive(Template)]
#[template(path = "console/credential.html")]
struct CredentialPage {
    admin: Admin,
    c: CredentialSummary,
    status: &'static str,
    issued: String,
    expires: String,
    action: String,
    details: String,
}

pub async fn detail(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let now = state.now_ms();
    let c = manage::show(&state.store, &id).await?;
    let token = state.store.token(&c.id).await?;
    let details = token
        .as_ref()
        .and_then(|t| t.authorization_details.clone())
        .unwrap_or_default();
    let pretty = serde_json::from_str::<serde_json::Value>(&details)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(details.clone());
    render(&CredentialPage {
        status: status_of(&c, now / 1000),
        issued: local(c.issued_at * 1000),
        expires: local(c.expires_at * 1000),
        action: action_summary(Some(&details).filter(|d| !d.is_empty()).map(String::as_str)),
        details: pretty,
        admin,
        c,
    })
}

#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    reason: String,
}

pub async fn revoke(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<RevokeForm>,
) -> Result<Response, PageError> {
    admin.require(Role::Operator)?;
    manage::revoke_one(
        &state.store,
        &id,
        form.reason.trim(),
        &admin.actor(),
        state.now_ms(),
    )
    .await?;
    Ok(see_other(&format!(
        "/console/credentials/{}",
        urlencode(&id)
    )))
}
