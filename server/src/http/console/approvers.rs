//! Approvers: the groups and their members, and the explainer: who can approve action A
//! for agent G, and why (a dry-run of the same decision `POST /v1/decisions` makes,
//! written nowhere).

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Admin, PageError, render};
use crate::ciba::CibaError;
use crate::ciba::authorize::Peer;
use crate::directory::{self, Group};
use crate::flows::decide::{self, DecisionAnswer};
use crate::state::AppState;

impl From<CibaError> for PageError {
    fn from(e: CibaError) -> Self {
        match e {
            CibaError::Store(e) => e.into(),
            CibaError::Credential(_) | CibaError::Policy(_) | CibaError::Client(_) => {
                tracing::error!(error = %e, "console: explaining a decision");
                PageError::Internal
            }
            // The rest describe the question asked (an unknown action, bad arguments, a
            // suspended agent): the admin reads why.
            other => PageError::Invalid(other.to_string()),
        }
    }
}

#[derive(Deserialize)]
pub struct ExplainQuery {
    #[serde(default)]
    agent: String,
    #[serde(default)]
    action: String,
    /// The call's arguments, a JSON object (`{"amount": 1200, "currency": "USD"}`).
    #[serde(default)]
    arguments: String,
    /// Whom the request would name (default: the agent's owner).
    #[serde(default)]
    user: String,
}

#[derive(Template)]
#[template(path = "console/approvers.html")]
struct ApproversPage {
    admin: Admin,
    groups: Vec<Group>,
    /// Agents with their own approver route, and the route.
    routes: Vec<(String, String)>,
    /// Roles humans hold, with how many active humans hold each.
    roles: Vec<(String, i64)>,
    agent: String,
    action: String,
    arguments: String,
    user: String,
    answer: Option<DecisionAnswer>,
}

pub async fn page(
    admin: Admin,
    State(state): State<AppState>,
    Query(q): Query<ExplainQuery>,
) -> Result<Response, PageError> {
    let groups = directory::list_groups(&state.store).await?;
    let answer = if q.agent.trim().is_empty() || q.action.trim().is_empty() {
        None
    } else {
        Some(explain(&state, &q).await?)
    };
    render(&ApproversPage {
        admin,
        groups,
        routes: state.store.agent_routes().await?,
        roles: state.store.roles_held().await?,
        agent: q.agent,
        action: q.action,
        arguments: q.arguments,
        user: q.user,
        answer,
    })
}

async fn explain(state: &AppState, q: &ExplainQuery) -> Result<DecisionAnswer, PageError> {
    let client = state
        .store
        .client(q.agent.trim())
        .await?
        .ok_or_else(|| PageError::NotFound(format!("agent {:?} not found", q.agent.trim())))?;
    let mut params = Map::new();
    params.insert("action".into(), Value::String(q.action.trim().to_owned()));
    params.insert("dry_run".into(), Value::String("true".into()));
    if !q.arguments.trim().is_empty() {
        params.insert(
            "arguments".into(),
            Value::String(q.arguments.trim().to_owned()),
        );
    }
    if !q.user.trim().is_empty() {
        params.insert("login_hint".into(), Value::String(q.user.trim().to_owned()));
    }
    Ok(decide::decide(
        &state.deciding(),
        &client,
        &params,
        &Peer { source_ip: None },
    )
    .await?)
}
