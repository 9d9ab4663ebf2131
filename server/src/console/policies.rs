//! Policies: the versions, the active source, and an editor that validates as you type
//! (Cedar diagnostics with line and column), dry-runs a draft against recorded decisions,
//! and saves and activates it; activation of an older version and rollback.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::{Admin, PageError, render, see_other};
use crate::admin::Role;
use crate::policy::document::Problem;
use crate::policy::history::{self, DryRunReport};
use crate::policy::{PolicyError, manage};
use crate::state::AppState;

/// The longest draft accepted (as the admin API).
const MAX_SOURCE_CHARS: usize = 60_000;
/// How far back a dry-run replays.
const DRY_RUN_SINCE_MS: i64 = 7 * 86_400_000;

impl From<PolicyError> for PageError {
    fn from(e: PolicyError) -> Self {
        match e {
            PolicyError::Invalid(problems) => PageError::Invalid(
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            PolicyError::NotFound(m) => PageError::NotFound(m),
            PolicyError::BadRequest(m) => PageError::Invalid(m),
            PolicyError::Corrupt(m) => {
                tracing::error!(error = %m, "console: stored policy data");
                PageError::Internal
            }
            PolicyError::Store(e) => e.into(),
        }
    }
}

#[derive(Template)]
#[template(path = "console/policies.html")]
struct PoliciesPage {
    admin: Admin,
    versions: Vec<manage::PolicyVersion>,
    source: String,
    checked: bool,
    problems: Vec<Problem>,
    policies: Vec<String>,
    dry_run: Option<DryRunReport>,
    notice: Option<String>,
}

async fn page(
    admin: Admin,
    state: &AppState,
    source: Option<String>,
    checked: bool,
    dry_run: Option<DryRunReport>,
    notice: Option<String>,
) -> Result<Response, PageError> {
    let versions = manage::list(state).await?;
    let source = match source {
        Some(s) => s,
        None => match versions.iter().find(|v| v.active) {
            Some(active) => manage::show(state, active.version)
                .await?
                .source
                .unwrap_or_default(),
            None => String::new(),
        },
    };
    let (problems, policies) = if checked {
        let v = manage::validate(state, &source);
        (v.problems, v.policies)
    } else {
        (Vec::new(), Vec::new())
    };
    render(&PoliciesPage {
        admin,
        versions,
        source,
        checked,
        problems,
        policies,
        dry_run,
        notice,
    })
}

pub async fn list(admin: Admin, State(state): State<AppState>) -> Result<Response, PageError> {
    page(admin, &state, None, false, None, None).await
}

#[derive(Deserialize)]
pub struct DraftForm {
    #[serde(default)]
    source: String,
    #[serde(default)]
    description: String,
    /// Which button: `validate` (also sent as the editor changes), `dry_run` or `save`.
    #[serde(default)]
    action: String,
}

/// Validates, dry-runs or saves-and-activates the draft, by the button pressed.
pub async fn draft(
    admin: Admin,
    State(state): State<AppState>,
    Form(form): Form<DraftForm>,
) -> Result<Response, PageError> {
    if form.source.chars().count() > MAX_SOURCE_CHARS {
        return Err(PageError::Invalid(format!(
            "a policy document is at most {MAX_SOURCE_CHARS} characters"
        )));
    }
    match form.action.as_str() {
        "save" => {
            admin.require(Role::Admin)?;
            if !manage::validate(&state, &form.source).valid {
                return page(admin, &state, Some(form.source), true, None, None).await;
            }
            let description = Some(form.description.trim()).filter(|d| !d.is_empty());
            let saved =
                manage::add(&state, &form.source, description, true, &admin.actor()).await?;
            let notice = format!("version {} saved and active", saved.version);
            page(admin, &state, None, false, None, Some(notice)).await
        }
        "dry_run" => {
            let report = match state.policy.compile(&form.source, -1) {
                Ok(candidate) => {
                    let since = state.now_ms().saturating_sub(DRY_RUN_SINCE_MS);
                    Some(history::dry_run(&state, &candidate, since, 50).await?)
                }
                Err(_) => None,
            };
            page(admin, &state, Some(form.source), true, report, None).await
        }
        _ => page(admin, &state, Some(form.source), true, None, None).await,
    }
}

pub async fn activate(
    admin: Admin,
    State(state): State<AppState>,
    Path(version): Path<i64>,
) -> Result<Response, PageError> {
    admin.require(Role::Admin)?;
    manage::activate(&state, version, &admin.actor()).await?;
    Ok(see_other("/console/policies"))
}

pub async fn rollback(admin: Admin, State(state): State<AppState>) -> Result<Response, PageError> {
    admin.require(Role::Admin)?;
    manage::rollback(&state, &admin.actor()).await?;
    Ok(see_other("/console/policies"))
}
