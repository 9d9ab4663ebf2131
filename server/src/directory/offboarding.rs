//! Offboarding and the agent kill switch: no ghost agents. Everything a departing human
//! or a suspended agent could still do is ended in one transaction with its trace, so
//! there is never a moment where the person is gone but a credential, a pending request
//! or a phone of theirs still works (nor a revocation without its record).
//!
//! Credentials are revoked in the database; verifiers see it on their next status list
//! fetch (its TTL bounds the delay). Reactivating a human or resuming an agent restores
//! neither credentials nor requests: revocation is final.

use countersign_shared::DeliveryMode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::DirectoryError;
use crate::audit::{self, EventKind, NewEvent};
use crate::config::AgentFate;
use crate::ids::{ClientId, Subject};
use crate::notifications::{self, Outcome};
use crate::store::auth_requests::{AuthRequestRecord, DecisionMethod, PendingOf};
use crate::store::humans::HumanRecord;
use crate::store::tokens::TokenSelector;
use crate::store::{Store, StoreError, Tx};

/// Why a human is offboarded or an agent suspended (kept in the trace).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// What offboarding a human ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Offboarded {
    pub subject: String,
    /// Credentials revoked: approved by the human or held by their agents (`jti`s).
    pub revoked: Vec<String>,
    /// The human's agents, now suspended (client ids).
    pub suspended_agents: Vec<String>,
    /// The human's agents handed to their manager instead (`offboarding.agents =
    /// "reassign_to_manager"`), and to whom.
    pub reassigned_agents: Vec<String>,
    pub reassigned_to: Option<String>,
    /// Pending requests ended (the agents' next poll gets `access_denied`).
    pub ended_requests: Vec<String>,
    /// The human's wallet devices, now disabled.
    pub disabled_devices: Vec<String>,
}

/// What suspending an agent ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Suspended {
    pub client_id: String,
    pub revoked: Vec<String>,
    pub ended_requests: Vec<String>,
}

pub(crate) fn check_reason(reason: &str) -> Result<(), DirectoryError> {
    if reason.trim().is_empty() || reason.chars().count() > 500 || reason.contains(char::is_control)
    {
        return Err(DirectoryError::Invalid(
            "reason must be 1-500 characters of text".into(),
        ));
    }
    Ok(())
}

/// Deactivates `subject` and ends everything that rests on them: credentials they approved
/// or their agents hold, their agents (suspended), pending requests for them, by their
/// agents or waiting only for them, and their devices. Deactivating an inactive human
/// again ends whatever appeared since (nothing, normally) and is not an error.
pub async fn offboard_human(
    store: &Store,
    now_ms: i64,
    subject: &str,
    reason: &str,
    actor: &str,
    fate: AgentFate,
) -> Result<Offboarded, DirectoryError> {
    check_reason(reason)?;
    let mut tx = store.begin().await?;
    let done = offboard_in(store, &mut tx, now_ms, subject, reason, actor, fate).await?;
    tx.commit().await?;
    // A reader may have cached the old rows while the transaction ran.
    store.forget_directory_cache();
    Ok(done)
}

/// [`offboard_human`] inside `tx` (with whatever else the caller writes in it, e.g. the
/// SCIM resource that deprovisioned the human); the caller commits, then forgets the
/// directory cache.
pub async fn offboard_in(
    store: &Store,
    tx: &mut Tx<'_>,
    now_ms: i64,
    subject: &str,
    reason: &str,
    actor: &str,
    fate: AgentFate,
) -> Result<Offboarded, DirectoryError> {
    let Some(human) = store.human_in(tx, subject).await? else {
        return Err(DirectoryError::NotFound(format!("human {subject:?}")));
    };
    if !store.set_human_active(tx, subject, false).await? {
        return Err(DirectoryError::NotFound(format!("human {subject:?}")));
    }
    // Credentials are revoked first either way: the agents' standing ended with the
    // owner's.
    let mut revoked = store
        .revoke_tokens(tx, TokenSelector::Owner(subject), reason, now_ms)
        .await?;
    revoked.extend(
        store
            .revoke_tokens(tx, TokenSelector::RestingOn(subject), reason, now_ms)
            .await?,
    );
    let heir = heir_of(store, tx, fate, &human).await?;
    let (suspended_agents, reassigned_agents) = match &heir {
        Some(heir) => (
            Vec::new(),
            store.reassign_clients_of(tx, subject, heir).await?,
        ),
        None => (store.suspend_clients_of(tx, subject).await?, Vec::new()),
    };
    let ended = store
        .end_pending(
            tx,
            PendingOf::Human(&Subject::new(subject)),
            actor,
            DecisionMethod::Offboarding,
            now_ms,
        )
        .await?;
    let ended_requests = notify_ended(store, now_ms, tx, &ended).await?;
    let disabled_devices = store
        .disable_devices_of(tx, subject, reason, now_ms)
        .await?;
    let done = Offboarded {
        subject: subject.to_owned(),
        revoked,
        suspended_agents,
        reassigned_agents,
        reassigned_to: heir,
        ended_requests,
        disabled_devices,
    };
    trace_offboarding(store, tx, now_ms, reason, actor, &done).await?;
    Ok(done)
}

/// Who takes the human's agents: their manager, when the fate says so and the manager is
/// another active human; else nobody (the agents are suspended).
async fn heir_of(
    store: &Store,
    tx: &mut Tx<'_>,
    fate: AgentFate,
    human: &HumanRecord,
) -> Result<Option<String>, DirectoryError> {
    Ok(match (fate, &human.manager) {
        (AgentFate::ReassignToManager, Some(m)) if *m != human.subject => store
            .human_in(tx, m)
            .await?
            .filter(|h| h.active)
            .map(|h| h.subject.into_string()),
        _ => None,
    })
}

/// The trail of an offboarding: one event per kind of thing it ended.
async fn trace_offboarding(
    store: &Store,
    tx: &mut Tx<'_>,
    now_ms: i64,
    reason: &str,
    actor: &str,
    done: &Offboarded,
) -> Result<(), DirectoryError> {
    let subject = &done.subject;
    let human = format!("human:{subject}");
    let mut trace = vec![
        (EventKind::HumanOffboarded, json!({ "reason": reason })),
        (
            EventKind::CredentialRevoked,
            json!({ "reason": reason, "scope": "approved by the human, requested in their name or held by their agents",
                    "credentials": done.revoked }),
        ),
        (
            EventKind::AgentsSuspended,
            json!({ "reason": reason, "agents": done.suspended_agents }),
        ),
        (
            EventKind::RequestsEnded,
            json!({ "reason": reason, "requests": done.ended_requests }),
        ),
        (
            EventKind::DevicesDisabled,
            json!({ "reason": reason, "devices": done.disabled_devices }),
        ),
    ];
    if !done.reassigned_agents.is_empty() {
        trace.push((
            EventKind::AgentsReassigned,
            json!({ "reason": reason, "agents": done.reassigned_agents, "to": done.reassigned_to }),
        ));
    }
    for (kind, detail) in trace {
        let event = NewEvent {
            actor,
            kind,
            subject: &human,
            detail,
        };
        audit::record(store, tx, now_ms, event).await?;
    }
    tracing::warn!(
        actor,
        subject,
        reason,
        revoked = done.revoked.len(),
        agents = done.suspended_agents.len(),
        requests = done.ended_requests.len(),
        devices = done.disabled_devices.len(),
        "human offboarded"
    );
    Ok(())
}

/// Reactivates `subject`: they may be named in requests again. Nothing offboarding ended
/// comes back; their agents stay suspended until resumed one by one.
pub async fn reactivate_human(
    store: &Store,
    now_ms: i64,
    subject: &str,
    actor: &str,
) -> Result<(), DirectoryError> {
    let mut tx = store.begin().await?;
    reactivate_in(store, &mut tx, now_ms, subject, actor).await?;
    tx.commit().await?;
    store.forget_directory_cache();
    Ok(())
}

/// [`reactivate_human`] inside `tx`.
pub async fn reactivate_in(
    store: &Store,
    tx: &mut Tx<'_>,
    now_ms: i64,
    subject: &str,
    actor: &str,
) -> Result<(), DirectoryError> {
    if !store.set_human_active(tx, subject, true).await? {
        return Err(DirectoryError::NotFound(format!("human {subject:?}")));
    }
    let event = NewEvent {
        actor,
        kind: EventKind::HumanReactivated,
        subject: &format!("human:{subject}"),
        detail: json!({}),
    };
    audit::record(store, tx, now_ms, event).await?;
    Ok(())
}

/// The kill switch: suspends agent `client_id` (its requests and token polls get
/// `unauthorized_client` until resumed), revokes every credential it holds and ends its
/// pending requests.
pub async fn suspend_agent(
    store: &Store,
    now_ms: i64,
    client_id: &str,
    reason: &str,
    actor: &str,
) -> Result<Suspended, DirectoryError> {
    check_reason(reason)?;
    let mut tx = store.begin().await?;
    if !store.set_client_enabled(&mut tx, client_id, false).await? {
        return Err(DirectoryError::NotFound(format!("agent {client_id:?}")));
    }
    let revoked = store
        .revoke_tokens(&mut tx, TokenSelector::Agent(client_id), reason, now_ms)
        .await?;
    let ended = store
        .end_pending(
            &mut tx,
            PendingOf::Agent(&ClientId::new(client_id)),
            actor,
            DecisionMethod::Suspension,
            now_ms,
        )
        .await?;
    let ended_requests = notify_ended(store, now_ms, &mut tx, &ended).await?;
    let event = NewEvent {
        actor,
        kind: EventKind::AgentSuspended,
        subject: &format!("agent:{client_id}"),
        detail: json!({ "reason": reason, "credentials": revoked, "requests": ended_requests }),
    };
    audit::record(store, &mut tx, now_ms, event).await?;
    tx.commit().await?;
    // A reader may have cached the old rows while the transaction ran.
    store.forget_directory_cache();
    tracing::warn!(
        actor,
        client_id,
        reason,
        revoked = revoked.len(),
        "agent suspended"
    );
    Ok(Suspended {
        client_id: client_id.to_owned(),
        revoked,
        ended_requests,
    })
}

/// Lets a suspended agent make requests again (its revoked credentials stay revoked).
pub async fn resume_agent(
    store: &Store,
    now_ms: i64,
    client_id: &str,
    actor: &str,
) -> Result<(), DirectoryError> {
    let mut tx = store.begin().await?;
    let client = store
        .client(client_id)
        .await?
        .ok_or_else(|| DirectoryError::NotFound(format!("agent {client_id:?}")))?;
    match store.human(&client.owner_subject).await? {
        Some(owner) if owner.active => {}
        _ => {
            return Err(DirectoryError::Invalid(format!(
                "agent {client_id:?}'s owner is not active: reassign the agent first"
            )));
        }
    }
    store.set_client_enabled(&mut tx, client_id, true).await?;
    let event = NewEvent {
        actor,
        kind: EventKind::AgentResumed,
        subject: &format!("agent:{client_id}"),
        detail: json!({}),
    };
    audit::record(store, &mut tx, now_ms, event).await?;
    tx.commit().await?;
    // A reader may have cached the old rows while the transaction ran.
    store.forget_directory_cache();
    Ok(())
}

/// Hands agent `client_id` to `owner` (an active human), explicitly and audited. Its
/// credentials stay as they are; a suspended agent stays suspended until resumed.
pub async fn reassign_agent(
    store: &Store,
    now_ms: i64,
    client_id: &str,
    owner: &str,
    reason: &str,
    actor: &str,
) -> Result<(), DirectoryError> {
    check_reason(reason)?;
    let client = store
        .client(client_id)
        .await?
        .ok_or_else(|| DirectoryError::NotFound(format!("agent {client_id:?}")))?;
    match store.human(owner).await? {
        Some(h) if h.active => {}
        Some(_) => return Err(DirectoryError::Invalid(format!("{owner:?} is not active"))),
        None => {
            return Err(DirectoryError::Invalid(format!(
                "{owner:?} is not a registered human"
            )));
        }
    }
    let mut tx = store.begin().await?;
    if !store.set_client_owner(&mut tx, client_id, owner).await? {
        return Err(DirectoryError::NotFound(format!("agent {client_id:?}")));
    }
    let event = NewEvent {
        actor,
        kind: EventKind::AgentReassigned,
        subject: &format!("agent:{client_id}"),
        detail: json!({ "reason": reason, "from": client.owner_subject, "to": owner }),
    };
    audit::record(store, &mut tx, now_ms, event).await?;
    tx.commit().await?;
    store.forget_directory_cache();
    Ok(())
}

/// Announces the ended requests to ping and push agents (through the outbox, in `tx`;
/// the caller wakes the server's sender, if it runs in this process);
/// returns their ids.
async fn notify_ended(
    store: &Store,
    now_ms: i64,
    tx: &mut Tx<'_>,
    ended: &[AuthRequestRecord],
) -> Result<Vec<String>, StoreError> {
    for request in ended
        .iter()
        .filter(|r| r.delivery_mode != DeliveryMode::Poll)
    {
        if let Some(client) = store.client(&request.client_id).await? {
            notifications::enqueue(store, now_ms, tx, request, &client, Outcome::Denied).await?;
        }
    }
    let mut ids: Vec<String> = ended.iter().map(|r| r.id.to_string()).collect();
    ids.sort();
    Ok(ids)
}
