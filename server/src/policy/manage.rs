//! Managing policy versions: validate, add, list, show, activate, roll back. The CLI and
//! the admin API both call these; every change is an audit event.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::PolicyError;
use super::document::{PolicyDocument, Problem};
use super::service::PolicyEngine;
use crate::audit::{self, EventKind, NewEvent};
use crate::store::Store;
use crate::store::policies::PolicyVersionRecord;

/// A stored version as listings show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyVersion {
    pub version: i64,
    pub description: Option<String>,
    /// SHA-256 (hex) of the source.
    pub sha256: String,
    /// Unix seconds.
    pub created_at: i64,
    pub created_by: String,
    pub active: bool,
    /// The `@id`s it defines.
    pub policies: Vec<String>,
    /// The Cedar source (only when showing one version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// The outcome of validating a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Validation {
    pub valid: bool,
    pub policies: Vec<String>,
    pub problems: Vec<Problem>,
}

fn sha256_hex(text: &str) -> String {
    crate::store::audit::hex(&Sha256::digest(text.as_bytes()))
}

fn ids(doc: &PolicyDocument) -> Vec<String> {
    doc.policies.keys().cloned().collect()
}

pub fn validate(engine: &PolicyEngine, source: &str) -> Validation {
    match engine.compile(source, 0) {
        Ok(doc) => Validation {
            valid: true,
            policies: ids(&doc),
            problems: Vec::new(),
        },
        Err(problems) => Validation {
            valid: false,
            policies: Vec::new(),
            problems,
        },
    }
}

fn to_version(
    engine: &PolicyEngine,
    r: PolicyVersionRecord,
    active: Option<i64>,
    with_source: bool,
) -> PolicyVersion {
    let policies = engine
        .compile(&r.source, r.version)
        .map(|d| ids(&d))
        .unwrap_or_default();
    PolicyVersion {
        active: active == Some(r.version),
        version: r.version,
        description: r.description,
        sha256: r.sha256,
        created_at: r.created_at.div_euclid(1000),
        created_by: r.created_by,
        policies,
        source: with_source.then_some(r.source),
    }
}

/// Stores `source` as a new version (refused unless it validates); activates it too when
/// `activate`.
pub async fn add(
    engine: &PolicyEngine,
    store: &Store,
    now: i64,
    source: &str,
    description: Option<&str>,
    activate: bool,
    actor: &str,
) -> Result<PolicyVersion, PolicyError> {
    engine.compile(source, 0).map_err(PolicyError::Invalid)?;
    let sha = sha256_hex(source);
    let mut tx = store.begin().await?;
    let version = store
        .insert_policy_version(&mut tx, source, description, &sha, now, actor)
        .await?;
    audit::record(
        store,
        &mut tx,
        now,
        NewEvent {
            actor,
            kind: EventKind::PolicyAdded,
            subject: &format!("policy-version:{version}"),
            detail: json!({"version": version, "sha256": sha, "description": description}),
        },
    )
    .await?;
    tx.commit().await?;
    if activate {
        return self::activate(engine, store, now, version, actor).await;
    }
    show(engine, store, version).await
}

pub async fn list(engine: &PolicyEngine, store: &Store) -> Result<Vec<PolicyVersion>, PolicyError> {
    let active = store.active_policy_version().await?;
    Ok(store
        .list_policy_versions()
        .await?
        .into_iter()
        .map(|r| to_version(engine, r, active, false))
        .collect())
}

pub async fn show(
    engine: &PolicyEngine,
    store: &Store,
    version: i64,
) -> Result<PolicyVersion, PolicyError> {
    let record = store
        .policy_version(version)
        .await?
        .ok_or_else(|| PolicyError::NotFound(format!("policy version {version}")))?;
    let active = store.active_policy_version().await?;
    Ok(to_version(engine, record, active, true))
}

/// Makes `version` active here at once (other replicas within `policy.reload_interval_ms`).
pub async fn activate(
    engine: &PolicyEngine,
    store: &Store,
    now: i64,
    version: i64,
    actor: &str,
) -> Result<PolicyVersion, PolicyError> {
    let record = store
        .policy_version(version)
        .await?
        .ok_or_else(|| PolicyError::NotFound(format!("policy version {version}")))?;
    let doc = engine
        .compile(&record.source, version)
        .map_err(PolicyError::Invalid)?;
    let previous = store.active_policy_version().await?;
    let mut tx = store.begin().await?;
    store
        .activate_policy_version(&mut tx, version, now, actor)
        .await?;
    audit::record(
        store,
        &mut tx,
        now,
        NewEvent {
            actor,
            kind: EventKind::PolicyActivated,
            subject: &format!("policy-version:{version}"),
            detail: json!({"version": version, "previous": previous, "sha256": record.sha256}),
        },
    )
    .await?;
    tx.commit().await?;
    engine.install(doc);
    show(engine, store, version).await
}

/// Re-activates the version that was active before the current one.
pub async fn rollback(
    engine: &PolicyEngine,
    store: &Store,
    now: i64,
    actor: &str,
) -> Result<PolicyVersion, PolicyError> {
    let history = store.policy_activations(2).await?;
    let Some(previous) = history.get(1) else {
        return Err(PolicyError::NotFound(
            "no earlier activation to roll back to".into(),
        ));
    };
    activate(engine, store, now, previous.version, actor).await
}
