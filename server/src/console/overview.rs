//! The overview: what waits on whom right now, and the state of the fleet.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::format::{action_summary, age, utc};
use super::{Admin, PageError, render};
use crate::state::AppState;

/// One step-up waiting for a human, as the queue shows it.
pub struct Waiting {
    pub agent: String,
    pub human: String,
    pub action: String,
    pub created: String,
    pub age: String,
    pub expires_in: String,
}

#[derive(Template)]
#[template(path = "console/overview.html")]
struct OverviewPage {
    admin: Admin,
    agents_active: i64,
    agents_suspended: i64,
    humans_active: i64,
    humans_inactive: i64,
    queue: Queue,
    pending: i64,
}

/// How many waiting requests the queue lists (oldest first).
const QUEUE_LIMIT: i64 = 50;

/// The queue as the overview shows it (and as the live stream sends it).
#[derive(Template)]
#[template(path = "console/queue.html")]
pub struct Queue {
    waiting: Vec<Waiting>,
}

impl Queue {
    pub async fn now(state: &AppState) -> Result<Self, PageError> {
        let now = state.now_ms();
        let waiting = state
            .store
            .pending_queue(now, QUEUE_LIMIT)
            .await?
            .into_iter()
            .map(|r| Waiting {
                age: age(r.created_at, now),
                created: utc(r.created_at),
                expires_in: age(r.expires_at, now),
                action: action_summary(r.authorization_details.as_deref()),
                agent: r.client_id,
                human: r.subject,
            })
            .collect();
        Ok(Self { waiting })
    }
}

pub async fn page(admin: Admin, State(state): State<AppState>) -> Result<Response, PageError> {
    let now = state.now_ms();
    let store = &state.store;
    let (agents_active, agents_suspended) = store.count_clients().await?;
    let (humans_active, humans_inactive) = store.count_humans().await?;
    let queue = Queue::now(&state).await?;
    render(&OverviewPage {
        agents_active,
        agents_suspended,
        humans_active,
        humans_inactive,
        pending: store.count_pending_auth_requests(now).await?,
        queue,
        admin,
    })
}
