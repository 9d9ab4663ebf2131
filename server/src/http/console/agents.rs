//! Agents: the list, one agent's detail, and the kill switch (suspend with a reason and a
//! confirmation; resume).

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::format::{action_summary, age, utc};
use super::trace::{Row as EventRow, row as event_row};
use super::{Admin, ConfirmedReason, PageError, render, see_other};
use crate::admin::Role;
use crate::admin::roles::needed_for_api;
use crate::directory;
use crate::state::AppState;
use crate::store::audit::trace::TraceFilter;
use crate::store::clients::ClientRecord;
use crate::store::tokens::TokenSelector;

/// Rows per page.
const PAGE: i64 = 50;
/// Recent decisions an agent's detail lists.
const RECENT: i64 = 20;

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: String,
}

#[derive(Template)]
#[template(path = "console/agents.html")]
struct AgentsPage {
    admin: Admin,
    q: String,
    agents: Vec<AgentRow>,
    /// The last row's id when there may be more (the next page starts after it).
    next: Option<String>,
}

pub struct AgentRow {
    pub a: ClientRecord,
    /// When its last decision was traced (`never`).
    pub last_activity: String,
    pub last_at: String,
}

pub async fn list(
    admin: Admin,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let q = query.q.trim().chars().take(100).collect::<String>();
    let agents = state.store.page_clients(&query.after, &q, PAGE).await?;
    let next = (agents.len() as i64 == PAGE)
        .then(|| agents.last().map(|a| a.client_id.to_string()))
        .flatten();
    let ids: Vec<String> = agents.iter().map(|a| a.client_id.to_string()).collect();
    let last = state.store.last_decisions(&ids).await?;
    let now = state.now_ms();
    let agents = agents
        .into_iter()
        .map(|a| {
            let at = last.iter().find(|(id, _)| *id == a.client_id).map(|l| l.1);
            AgentRow {
                last_activity: at.map_or_else(|| "never".into(), |at| age(at, now)),
                last_at: at.map(utc).unwrap_or_default(),
                a,
            }
        })
        .collect();
    render(&AgentsPage {
        admin,
        q,
        agents,
        next,
    })
}

/// A live credential as the detail lists it.
pub struct LiveCredential {
    pub id: String,
    pub action: String,
    pub approved_by: String,
    pub expires: String,
}

#[derive(Template)]
#[template(path = "console/agent.html")]
struct AgentPage {
    admin: Admin,
    agent: ClientRecord,
    credentials: Vec<LiveCredential>,
    tools: String,
    approver: String,
    decisions: Vec<EventRow>,
    /// Whether the signed-in admin may reassign its owner (the admin API's rule).
    may_reassign: bool,
}

pub async fn detail(
    admin: Admin,
    State(state): State<AppState>,
    Path(client_id): Path<String>,
) -> Result<Response, PageError> {
    let now = state.now_ms();
    let agent = state
        .store
        .client(&client_id)
        .await?
        .ok_or_else(|| PageError::NotFound(format!("agent {client_id:?} not found")))?;
    let credentials = state
        .store
        .tokens(TokenSelector::Agent(&client_id), 100)
        .await?
        .into_iter()
        .filter(|t| t.revoked_at.is_none() && t.expires_at > now)
        .map(|t| LiveCredential {
            action: action_summary(t.authorization_details.as_deref()),
            approved_by: t.subject.into_string(),
            expires: age(t.expires_at, now),
            id: t.jti,
        })
        .collect();
    let filter = TraceFilter {
        agent: client_id.clone(),
        ..TraceFilter::default()
    };
    let decisions = state
        .store
        .page_trace(&filter, i64::MAX, RECENT)
        .await?
        .into_iter()
        .map(|r| event_row(r, now))
        .collect();
    render(&AgentPage {
        may_reassign: admin.role.includes(reassign_role(&client_id)),
        decisions,
        tools: agent
            .tools
            .as_ref()
            .map_or_else(|| "any".to_owned(), |t| t.join(", ")),
        approver: agent.approver.clone().unwrap_or_else(|| "user".into()),
        admin,
        agent,
        credentials,
    })
}

pub async fn suspend(
    admin: Admin,
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Form(form): Form<ConfirmedReason>,
) -> Result<Response, PageError> {
    admin.require(Role::Operator)?;
    let reason = form.confirmed("suspending revokes every credential the agent holds")?;
    directory::offboarding::suspend_agent(
        &state.store,
        state.now_ms(),
        &client_id,
        reason,
        &admin.actor(),
    )
    .await?;
    Ok(see_other(&format!(
        "/console/agents/{}",
        urlencode(&client_id)
    )))
}

pub async fn resume(
    admin: Admin,
    State(state): State<AppState>,
    Path(client_id): Path<String>,
) -> Result<Response, PageError> {
    admin.require(Role::Operator)?;
    directory::offboarding::resume_agent(&state.store, state.now_ms(), &client_id, &admin.actor())
        .await?;
    Ok(see_other(&format!(
        "/console/agents/{}",
        urlencode(&client_id)
    )))
}

/// The role reassigning an agent's owner needs: the admin API's, for the same action.
fn reassign_role(client_id: &str) -> Role {
    needed_for_api("POST", &format!("/admin/v1/agents/{client_id}/reassign"))
}

#[derive(Deserialize)]
pub struct ReassignForm {
    #[serde(default)]
    owner: String,
    #[serde(default)]
    reason: String,
}

/// Hands the agent to another active human through the same service as the admin API's
/// `POST /admin/v1/agents/{id}/reassign` (which records it in the trail).
pub async fn reassign(
    admin: Admin,
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Form(form): Form<ReassignForm>,
) -> Result<Response, PageError> {
    admin.require(reassign_role(&client_id))?;
    directory::offboarding::reassign_agent(
        &state.store,
        state.now_ms(),
        &client_id,
        form.owner.trim(),
        form.reason.trim(),
        &admin.actor(),
    )
    .await?;
    Ok(see_other(&format!(
        "/console/agents/{}",
        urlencode(&client_id)
    )))
}

/// `s` as one URL path segment.
pub fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[derive(Template)]
#[template(path = "console/agent_new.html")]
struct NewAgentPage {
    admin: Admin,
}

pub async fn new_form(admin: Admin) -> Result<Response, PageError> {
    admin.require(Role::Admin)?;
    render(&NewAgentPage { admin })
}

#[derive(Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    auth_method: String,
    /// The agent's public keys (JWKS JSON), for `private_key_jwt`.
    #[serde(default)]
    jwks: String,
    #[serde(default)]
    bearer_only: Option<String>,
}

#[derive(Template)]
#[template(path = "console/agent_created.html")]
struct CreatedPage {
    admin: Admin,
    agent: directory::Agent,
    secret: Option<String>,
}

/// Registers an agent through the same service as the admin API and the CLI; the client
/// secret, if there is one, is shown on this page once and never again.
pub async fn register(
    admin: Admin,
    State(state): State<AppState>,
    Form(form): Form<RegisterForm>,
) -> Result<Response, PageError> {
    admin.require(Role::Admin)?;
    let jwks = match form.jwks.trim() {
        "" => None,
        text => Some(
            serde_json::from_str::<serde_json::Value>(text)
                .map_err(|e| PageError::Invalid(format!("the JWKS is not JSON: {e}")))?,
        ),
    };
    let new = serde_json::json!({
        "client_id": form.client_id.trim(),
        "name": Some(form.name.trim()).filter(|n| !n.is_empty()),
        "owner": form.owner.trim(),
        "auth_method": form.auth_method,
        "jwks": jwks,
        "bearer_only": form.bearer_only.is_some(),
    });
    let new: directory::NewAgent =
        serde_json::from_value(new).map_err(|e| PageError::Invalid(e.to_string()))?;
    let created = directory::add_agent(&state.store, new, state.now_ms(), &admin.actor()).await?;
    render(&CreatedPage {
        admin,
        agent: created.agent,
        secret: created.client_secret,
    })
}
