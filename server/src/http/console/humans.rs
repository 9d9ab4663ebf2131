//! Humans: search, one person's detail, and offboarding after a preview of everything it
//! will revoke and end.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::agents::{LiveCredential, urlencode};
use super::format::{action_summary, age, local};
use super::{Admin, ConfirmedReason, PageError, render, see_other};
use crate::admin::Role;
use crate::directory;
use crate::state::AppState;
use crate::store::clients::ClientRecord;
use crate::store::humans::HumanRecord;
use crate::store::tokens::TokenSelector;

const PAGE: i64 = 50;
/// Credentials a human's detail lists as approved by them (the newest).
const APPROVED: i64 = 50;

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: String,
}

#[derive(Template)]
#[template(path = "console/humans.html")]
struct HumansPage {
    admin: Admin,
    q: String,
    humans: Vec<HumanRecord>,
    next: Option<String>,
}

pub async fn list(
    admin: Admin,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let q = query.q.trim().chars().take(100).collect::<String>();
    let humans = state.store.page_humans(&query.after, &q, PAGE).await?;
    let next = (humans.len() as i64 == PAGE)
        .then(|| humans.last().map(|h| h.subject.to_string()))
        .flatten();
    render(&HumansPage {
        admin,
        q,
        humans,
        next,
    })
}

/// Everything that rests on a human: what offboarding ends.
struct RestingOn {
    human: HumanRecord,
    agents: Vec<ClientRecord>,
    credentials: Vec<LiveCredential>,
    waiting: Vec<String>,
}

async fn resting_on(state: &AppState, subject: &str) -> Result<RestingOn, PageError> {
    let now = state.now_ms();
    let store = &state.store;
    let human = store
        .human(subject)
        .await?
        .ok_or_else(|| PageError::NotFound(format!("human {subject:?} not found")))?;
    let mut credentials = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for selector in [
        TokenSelector::RestingOn(subject),
        TokenSelector::Owner(subject),
    ] {
        for t in store.tokens(selector, 500).await? {
            let live = t.revoked_at.is_none() && t.expires_at > now;
            if live && seen.insert(t.jti.clone()) {
                credentials.push(LiveCredential {
                    action: format!(
                        "{} ({})",
                        action_summary(t.authorization_details.as_deref()),
                        t.client_id
                    ),
                    approved_by: t.subject.into_string(),
                    expires: age(t.expires_at, now),
                    id: t.jti,
                });
            }
        }
    }
    let waiting = store
        .pending_for_subject(&human.subject, now, 500)
        .await?
        .into_iter()
        .map(|r| {
            format!(
                "{} for {}",
                action_summary(r.authorization_details.as_deref()),
                r.client_id
            )
        })
        .collect();
    Ok(RestingOn {
        agents: store.clients_of_owner(subject).await?,
        human,
        credentials,
        waiting,
    })
}

#[derive(Template)]
#[template(path = "console/human.html")]
struct HumanPage {
    admin: Admin,
    r: RestingOn,
    groups: Vec<String>,
    devices: Vec<Device>,
    approved: Vec<Approved>,
}

/// An enrolled wallet as the detail lists it.
pub struct Device {
    pub name: String,
    pub platform: String,
    pub enrolled: String,
    pub last_used: String,
    /// `None` while enabled; else when and why it was disabled.
    pub disabled: Option<String>,
}

/// A credential the human approved.
pub struct Approved {
    pub id: String,
    pub agent: String,
    pub action: String,
    pub issued: String,
    pub status: &'static str,
}

pub async fn detail(
    admin: Admin,
    State(state): State<AppState>,
    Path(subject): Path<String>,
) -> Result<Response, PageError> {
    let now = state.now_ms();
    let r = resting_on(&state, &subject).await?;
    let store = &state.store;
    let devices = store
        .devices(Some(&subject))
        .await?
        .into_iter()
        .map(|d| Device {
            name: d.name.unwrap_or_else(|| "unnamed".into()),
            platform: d.platform,
            enrolled: local(d.created_at),
            last_used: d
                .last_used_at
                .map_or_else(|| "never".into(), |at| age(at, now)),
            disabled: d.disabled_at.map(|at| match d.disabled_reason {
                Some(reason) if !reason.is_empty() => format!("{} ({reason})", local(at)),
                _ => local(at),
            }),
        })
        .collect();
    let approved = store
        .tokens(TokenSelector::Approver(&subject), APPROVED)
        .await?
        .into_iter()
        .map(|t| Approved {
            status: if t.revoked_at.is_some() {
                "revoked"
            } else if t.expires_at <= now {
                "expired"
            } else {
                "live"
            },
            action: action_summary(t.authorization_details.as_deref()),
            issued: local(t.issued_at),
            agent: t.client_id.into_string(),
            id: t.jti,
        })
        .collect();
    render(&HumanPage {
        admin,
        groups: store.groups_of(&subject).await?,
        r,
        devices,
        approved,
    })
}

#[derive(Template)]
#[template(path = "console/offboard.html")]
struct OffboardPage {
    admin: Admin,
    r: RestingOn,
    agent_fate: &'static str,
}

pub async fn offboard_preview(
    admin: Admin,
    State(state): State<AppState>,
    Path(subject): Path<String>,
) -> Result<Response, PageError> {
    admin.require(Role::Operator)?;
    let r = resting_on(&state, &subject).await?;
    let agent_fate = match state.config.offboarding.agents {
        crate::config::AgentFate::Suspend => "suspended",
        crate::config::AgentFate::ReassignToManager => {
            "handed to their manager (suspended if there is no active manager)"
        }
    };
    render(&OffboardPage {
        admin,
        r,
        agent_fate,
    })
}

pub async fn offboard(
    admin: Admin,
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Form(form): Form<ConfirmedReason>,
) -> Result<Response, PageError> {
    admin.require(Role::Operator)?;
    let reason = form.confirmed("offboarding revokes and ends everything listed")?;
    directory::offboarding::offboard_human(
        &state.store,
        state.now_ms(),
        &subject,
        reason,
        &admin.actor(),
        state.config.offboarding.agents,
    )
    .await?;
    Ok(see_other(&format!(
        "/console/humans/{}",
        urlencode(&subject)
    )))
}

pub async fn reactivate(
    admin: Admin,
    State(state): State<AppState>,
    Path(subject): Path<String>,
) -> Result<Response, PageError> {
    admin.require(Role::Operator)?;
    directory::offboarding::reactivate_human(
        &state.store,
        state.now_ms(),
        &subject,
        &admin.actor(),
    )
    .await?;
    Ok(see_other(&format!(
        "/console/humans/{}",
        urlencode(&subject)
    )))
}

#[derive(Template)]
#[template(path = "console/invitation.html")]
struct InvitationPage {
    admin: Admin,
    subject: String,
    uri: String,
    /// The URI as a QR code (an SVG `data:` URL: no inline markup, so the CSP holds).
    qr: String,
    expires: String,
}

/// A one-time wallet enrollment invitation for the human, with its QR code.
pub async fn invite(
    admin: Admin,
    State(state): State<AppState>,
    Path(subject): Path<String>,
) -> Result<Response, PageError> {
    admin.require(Role::Admin)?;
    let created = crate::approvals::enrollment::invite(&state.approvals, &subject, &admin.actor())
        .await
        .map_err(|e| match e {
            crate::approvals::ApprovalError::Missing(m) => PageError::NotFound(m),
            crate::approvals::ApprovalError::Invalid(m) => PageError::Invalid(m),
            crate::approvals::ApprovalError::Store(e) => e.into(),
            other => {
                tracing::error!(error = %other, "console: invitation");
                PageError::Internal
            }
        })?;
    render(&InvitationPage {
        admin,
        qr: qr_data_url(&created.uri)?,
        expires: age(created.expires_at * 1000, state.now_ms()),
        subject: created.subject,
        uri: created.uri,
    })
}

fn qr_data_url(text: &str) -> Result<String, PageError> {
    use base64::Engine as _;
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| {
        tracing::error!(error = %e, "console: QR code");
        PageError::Internal
    })?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(256, 256)
        .build();
    Ok(format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    ))
}
