//! Policies: the versions, the active source, and an editor that validates as you type
//! (Cedar diagnostics with line and column), dry-runs a draft against recorded decisions,
//! and saves and activates it; activation of an older version and rollback.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::diff::{self, Change, DiffLine};
use super::{Admin, PageError, render, see_other};
use crate::admin::Role;
use crate::policy::cases::{self, CaseResult};
use crate::policy::document::Problem;
use crate::policy::history::{self, DryRunReport};
use crate::policy::{PolicyError, manage};
use crate::state::AppState;

/// The longest draft accepted (as the admin API).
const MAX_SOURCE_CHARS: usize = 60_000;
/// The most test cases one run in the console evaluates.
const MAX_CASES: usize = 500;
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
    /// The declarative test cases (TOML, as `countersign policy test` reads).
    cases: String,
    /// Their results against the draft, or why they could not run.
    tested: Option<Result<Vec<CaseResult>, String>>,
}

impl PoliciesPage {
    fn cases_passed(&self) -> usize {
        match &self.tested {
            Some(Ok(results)) => results.iter().filter(|r| r.passed).count(),
            _ => 0,
        }
    }
}

/// What the page shows besides the versions: the draft and what was done with it.
#[derive(Default)]
struct Shown {
    /// The draft (the active version's source when `None`).
    source: Option<String>,
    checked: bool,
    dry_run: Option<DryRunReport>,
    notice: Option<String>,
    cases: String,
    tested: Option<Result<Vec<CaseResult>, String>>,
}

async fn page(admin: Admin, state: &AppState, shown: Shown) -> Result<Response, PageError> {
    let Shown {
        source,
        checked,
        dry_run,
        notice,
        cases,
        tested,
    } = shown;
    let versions = manage::list(&state.policy, &state.store).await?;
    let source = match source {
        Some(s) => s,
        None => match versions.iter().find(|v| v.active) {
            Some(active) => manage::show(&state.policy, &state.store, active.version)
                .await?
                .source
                .unwrap_or_default(),
            None => String::new(),
        },
    };
    let (problems, policies) = if checked {
        let v = manage::validate(&state.policy, &source);
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
        cases,
        tested,
    })
}

pub async fn list(admin: Admin, State(state): State<AppState>) -> Result<Response, PageError> {
    page(admin, &state, Shown::default()).await
}

/// Runs the TOML test `cases` against the draft `source` (its `policy = ...` key, which
/// names a file for the CLI, is ignored: the draft is under test).
fn run_cases(state: &AppState, source: &str, cases: &str) -> Result<Vec<CaseResult>, String> {
    if cases.trim().is_empty() {
        return Err("write test cases first (the TOML of `countersign policy test`)".into());
    }
    let suite: cases::Suite =
        toml::from_str(cases).map_err(|e| format!("the test cases are not valid: {e}"))?;
    if suite.cases.len() > MAX_CASES {
        return Err(format!("at most {MAX_CASES} test cases run here"));
    }
    let doc = state
        .policy
        .compile(source, -1)
        .map_err(|_| "the draft has errors; fix them before running the test cases".to_owned())?;
    Ok(cases::run(&state.policy, &doc, &suite))
}

#[derive(Deserialize)]
pub struct DraftForm {
    #[serde(default)]
    source: String,
    #[serde(default)]
    description: String,
    /// Declarative test cases (TOML), run in place against the draft.
    #[serde(default)]
    cases: String,
    /// Which button: `validate` (also sent as the editor changes), `dry_run`, `test` or
    /// `save`.
    #[serde(default)]
    action: String,
}

/// Validates, dry-runs or saves-and-activates the draft, by the button pressed.
pub async fn draft(
    admin: Admin,
    State(state): State<AppState>,
    Form(form): Form<DraftForm>,
) -> Result<Response, PageError> {
    if form.source.chars().count() > MAX_SOURCE_CHARS
        || form.cases.chars().count() > MAX_SOURCE_CHARS
    {
        return Err(PageError::Invalid(format!(
            "a policy document and its test cases are at most {MAX_SOURCE_CHARS} characters each"
        )));
    }
    let draft = |source: String| Shown {
        source: Some(source),
        checked: true,
        cases: form.cases.clone(),
        ..Shown::default()
    };
    match form.action.as_str() {
        "save" => {
            admin.require(Role::Admin)?;
            if !manage::validate(&state.policy, &form.source).valid {
                return page(admin, &state, draft(form.source)).await;
            }
            let description = Some(form.description.trim()).filter(|d| !d.is_empty());
            let saved = manage::add(
                &state.policy,
                &state.store,
                state.now_ms(),
                &form.source,
                description,
                true,
                &admin.actor(),
            )
            .await?;
            let notice = format!("version {} saved and active", saved.version);
            let shown = Shown {
                notice: Some(notice),
                cases: form.cases.clone(),
                ..Shown::default()
            };
            page(admin, &state, shown).await
        }
        "dry_run" => {
            let report = match state.policy.compile(&form.source, -1) {
                Ok(candidate) => {
                    let since = state.now_ms().saturating_sub(DRY_RUN_SINCE_MS);
                    Some(history::dry_run(&state.store, &candidate, since, 50).await?)
                }
                Err(_) => None,
            };
            let shown = Shown {
                dry_run: report,
                ..draft(form.source.clone())
            };
            page(admin, &state, shown).await
        }
        "test" => {
            let tested = Some(run_cases(&state, &form.source, &form.cases));
            let shown = Shown {
                tested,
                ..draft(form.source.clone())
            };
            page(admin, &state, shown).await
        }
        _ => page(admin, &state, draft(form.source.clone())).await,
    }
}

#[derive(Template)]
#[template(path = "console/policy_version.html")]
struct VersionPage {
    admin: Admin,
    version: manage::PolicyVersion,
    /// The version it is compared with (the one before it), if any.
    previous: Option<i64>,
    /// What changed since `previous` (every line kept when there is none); `None` when
    /// the two are too large to compare.
    diff: Option<Vec<DiffLine>>,
    added: usize,
    removed: usize,
}

/// One version: its source, and what it changed against the version before it.
pub async fn version(
    admin: Admin,
    State(state): State<AppState>,
    Path(number): Path<i64>,
) -> Result<Response, PageError> {
    let version = manage::show(&state.policy, &state.store, number).await?;
    let source = version.source.clone().unwrap_or_default();
    let previous = manage::list(&state.policy, &state.store)
        .await?
        .into_iter()
        .map(|v| v.version)
        .filter(|v| *v < number)
        .max();
    let before = match previous {
        Some(p) => manage::show(&state.policy, &state.store, p)
            .await?
            .source
            .unwrap_or_default(),
        None => String::new(),
    };
    let diff = diff::lines(&before, &source);
    let count = |change| {
        diff.as_ref()
            .map_or(0, |d| d.iter().filter(|l| l.change == change).count())
    };
    render(&VersionPage {
        added: count(Change::Added),
        removed: count(Change::Removed),
        admin,
        version,
        previous,
        diff,
    })
}

pub async fn activate(
    admin: Admin,
    State(state): State<AppState>,
    Path(version): Path<i64>,
) -> Result<Response, PageError> {
    admin.require(Role::Admin)?;
    manage::activate(
        &state.policy,
        &state.store,
        state.now_ms(),
        version,
        &admin.actor(),
    )
    .await?;
    Ok(see_other("/console/policies"))
}

pub async fn rollback(admin: Admin, State(state): State<AppState>) -> Result<Response, PageError> {
    admin.require(Role::Admin)?;
    manage::rollback(&state.policy, &state.store, state.now_ms(), &admin.actor()).await?;
    Ok(see_other("/console/policies"))
}
