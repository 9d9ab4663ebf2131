//! The overview: what waits on whom right now, the last hour's decisions, how fast humans
//! approve, what was revoked, and the agents that look unusual.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::figures::{self, DecisionChart};
use super::format::{action_summary, age, duration, utc};
use super::{Admin, PageError, render};
use crate::audit::EventKind;
use crate::state::AppState;
use crate::store::Store;
use crate::store::console_stats::AgentActivity;

/// One step-up waiting for a human, as the queue shows it.
pub struct Waiting {
    pub agent: String,
    pub human: String,
    pub action: String,
    pub created: String,
    pub age: String,
    pub expires_in: String,
}

/// An agent the overview flags, and why.
pub struct Flagged {
    pub agent: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "console/overview.html")]
struct OverviewPage {
    admin: Admin,
    agents_active: i64,
    agents_suspended: i64,
    humans_active: i64,
    humans_inactive: i64,
    waiting: Vec<Waiting>,
    pending: i64,
    oldest_waiting: String,
    chart: DecisionChart,
    approvals: i64,
    latency_p50: String,
    latency_p95: String,
    revocations: i64,
    offboardings: i64,
    suspensions: i64,
    flagged: Vec<Flagged>,
}

/// The queue alone: what the live stream sends (and `/console/queue` answers), so the
/// figures are not computed again for every update of every open console.
#[derive(Template)]
#[template(path = "console/queue.html")]
struct QueueFragment {
    waiting: Vec<Waiting>,
}

/// The queue's HTML now (the live stream's fragment).
pub async fn queue_html(state: &AppState) -> Result<String, PageError> {
    Ok(QueueFragment {
        waiting: waiting(&state.store, state.now_ms()).await?,
    }
    .render()?)
}

pub async fn queue(_admin: Admin, State(state): State<AppState>) -> Result<Response, PageError> {
    render(&QueueFragment {
        waiting: waiting(&state.store, state.now_ms()).await?,
    })
}

async fn waiting(store: &Store, now: i64) -> Result<Vec<Waiting>, PageError> {
    Ok(store
        .pending_queue(now, QUEUE_LIMIT)
        .await?
        .into_iter()
        .map(|r| Waiting {
            age: age(r.created_at, now),
            created: utc(r.created_at),
            expires_in: age(r.expires_at, now),
            action: action_summary(r.authorization_details.as_deref()),
            agent: r.client_id.into_string(),
            human: r.subject.into_string(),
        })
        .collect())
}

/// How many waiting requests the queue lists (oldest first).
const QUEUE_LIMIT: i64 = 50;
const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// The hours before the last one that make an agent's baseline.
const BASELINE_HOURS: i64 = 23;
/// The newest decisions before the last hour that make the baselines: however busy the
/// day was, the page reads at most this many events' details for them.
const BASELINE_SAMPLE: i64 = 20_000;
/// How many agents the anomaly list shows at most, of each kind.
const FLAG_LIMIT: i64 = 20;

pub async fn page(admin: Admin, State(state): State<AppState>) -> Result<Response, PageError> {
    let now = state.now_ms();
    let store = &state.store;
    let (agents_active, agents_suspended) = store.count_clients().await?;
    let (humans_active, humans_inactive) = store.count_humans().await?;
    let waiting = waiting(store, now).await?;
    // The chart's last bar is the minute under way.
    let chart_end = (now.div_euclid(MINUTE_MS) + 1) * MINUTE_MS;
    let chart_start = chart_end - figures::MINUTES as i64 * MINUTE_MS;
    let chart = figures::decision_chart(
        &store.decisions_per_minute(chart_start, chart_end).await?,
        chart_start,
    );
    let (approvals, latency) = store.approval_latency(now - DAY_MS, &[0.5, 0.95]).await?;
    let shown = |ms: Option<&Option<i64>>| ms.copied().flatten().map_or("–".into(), duration);
    let counts = store
        .count_events_since(
            &[
                EventKind::CredentialRevoked.as_str(),
                EventKind::HumanOffboarded.as_str(),
                EventKind::AgentSuspended.as_str(),
            ],
            now - DAY_MS,
        )
        .await?;
    let count_of = |kind: EventKind| {
        counts
            .iter()
            .find(|(k, _)| k == kind.as_str())
            .map_or(0, |(_, n)| *n)
    };
    render(&OverviewPage {
        agents_active,
        agents_suspended,
        humans_active,
        humans_inactive,
        pending: store.count_pending_auth_requests(now).await?,
        oldest_waiting: waiting.first().map_or("–".into(), |w| w.age.clone()),
        waiting,
        chart,
        approvals,
        latency_p50: shown(latency.first()),
        latency_p95: shown(latency.get(1)),
        revocations: count_of(EventKind::CredentialRevoked),
        offboardings: count_of(EventKind::HumanOffboarded),
        suspensions: count_of(EventKind::AgentSuspended),
        flagged: flagged(store, now).await?,
        admin,
    })
}

/// Agents far above their own baseline of denials and step-ups, then suspended agents
/// (with the reason of their suspension when the trail has it).
async fn flagged(store: &Store, now: i64) -> Result<Vec<Flagged>, PageError> {
    let recent_since = now - HOUR_MS;
    let recent = store
        .denials_and_step_ups_by_agent(recent_since, now + 1, figures::MIN_RECENT, FLAG_LIMIT)
        .await?;
    let mut flagged = Vec::new();
    if !recent.is_empty() {
        let (baseline, from) = store
            .sampled_denials_and_step_ups(
                recent_since - BASELINE_HOURS * HOUR_MS,
                recent_since,
                BASELINE_SAMPLE,
            )
            .await?;
        let hours = (recent_since - from) as f64 / HOUR_MS as f64;
        for (agent, n) in recent {
            let activity = AgentActivity {
                baseline: baseline
                    .iter()
                    .find(|(a, _)| *a == agent)
                    .map_or(0, |(_, b)| *b),
                recent: n,
                agent,
            };
            if let Some(reason) = figures::anomaly(&activity, hours) {
                flagged.push(Flagged {
                    agent: activity.agent,
                    reason,
                });
            }
        }
    }
    for (client_id, _) in store.suspended_clients(FLAG_LIMIT).await? {
        let said = store
            .latest_event_about(
                &format!("agent:{client_id}"),
                EventKind::AgentSuspended.as_str(),
            )
            .await?
            .map(|(at, actor, detail)| {
                let reason = serde_json::from_str::<serde_json::Value>(&detail)
                    .ok()
                    .and_then(|d| d["reason"].as_str().map(str::to_owned))
                    .filter(|r| !r.is_empty());
                match reason {
                    Some(r) => format!("suspended {} by {actor}: {r}", age(at, now)),
                    None => format!("suspended {} by {actor}", age(at, now)),
                }
            });
        flagged.push(Flagged {
            agent: client_id,
            reason: said.unwrap_or_else(|| {
                "suspended (with its owner's offboarding or before the trail)".into()
            }),
        });
    }
    Ok(flagged)
}
