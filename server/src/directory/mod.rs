//! Humans, groups and agents. The CLI, the admin API and SCIM all go through these
//! functions, so they validate alike; each change is written in one transaction with its
//! audit event, naming the actor (`admin-key:ID`, `scim-token:ID`, `cli`).

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

pub mod agent_access;
mod agents;
mod groups;
pub mod offboarding;

pub use agents::{
    Agent, AgentProfile, AgentUpdate, CreatedAgent, NewAgent, add_agent, list_agents, update_agent,
};
pub use groups::{Group, NewGroup, add_group, list_groups, set_group_member};
pub(crate) use groups::{create_group_in, delete_group_in, rename_group_in, set_members_in};

use crate::audit::{self, Changes, EventKind, NewEvent};
use crate::ids::Subject;
use crate::secrets::hash_secret;
use crate::store::humans::HumanRecord;
use crate::store::{Store, StoreError, Tx};

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A person to register.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHuman {
    /// Stable subject identifier (the `sub` of ID tokens, usable as `login_hint`).
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._@:-]+$")]
    pub subject: String,
    /// `local@domain`, no whitespace or control characters.
    #[schema(
        max_length = 254,
        pattern = "^[^\\s@\\x00-\\x1f\\x7f-\\x9f]+@[^\\s\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    pub email: String,
    /// Display name shown to approvers: some visible text, no control characters.
    #[schema(
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*\\S[^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub name: String,
    /// Optional CIBA `user_code` the person must give to agents acting for them.
    #[serde(default)]
    #[schema(min_length = 4, max_length = 64)]
    pub user_code: Option<String>,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub department: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub title: String,
    /// Routes `@approver("role:NAME")` step-ups.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub role: String,
    /// The subject of this person's manager (`@approver("manager")`).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._@:-]+$")]
    pub manager: Option<String>,
}

impl NewHuman {
    fn profile(&self) -> HumanProfile {
        HumanProfile {
            department: self.department.clone(),
            title: self.title.clone(),
            role: self.role.clone(),
            manager: self.manager.clone(),
        }
    }
}

/// What policies read of a person and how approvals are routed to them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct HumanProfile {
    #[schema(max_length = 200)]
    pub department: String,
    #[schema(max_length = 200)]
    pub title: String,
    /// Routes `@approver("role:NAME")` step-ups.
    #[schema(max_length = 200)]
    pub role: String,
    /// The subject of this person's manager (`@approver("manager")`).
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._@:-]+$")]
    pub manager: Option<String>,
}

/// Changes to a person's profile; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HumanUpdate {
    #[schema(max_length = 254)]
    pub email: Option<String>,
    #[schema(max_length = 200)]
    pub name: Option<String>,
    #[schema(max_length = 200)]
    pub department: Option<String>,
    #[schema(max_length = 200)]
    pub title: Option<String>,
    #[schema(max_length = 200)]
    pub role: Option<String>,
    /// A subject, or `""` to clear.
    #[schema(max_length = 128)]
    pub manager: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Human {
    pub subject: String,
    pub email: String,
    pub name: String,
    pub active: bool,
    pub has_user_code: bool,
    /// Unix time in seconds.
    pub created_at: i64,
    #[serde(flatten)]
    pub profile: HumanProfile,
}

impl From<HumanRecord> for Human {
    fn from(h: HumanRecord) -> Self {
        Human {
            profile: HumanProfile {
                department: h.department,
                title: h.title,
                role: h.role,
                manager: h.manager.map(Subject::into_string),
            },
            subject: h.subject.into_string(),
            email: h.email,
            name: h.name,
            active: h.active,
            has_user_code: h.user_code_hash.is_some(),
            created_at: h.created_at.div_euclid(1000),
        }
    }
}

pub(crate) fn check_identifier(what: &str, value: &str) -> Result<(), DirectoryError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(DirectoryError::Invalid(format!(
            "{what} must be 1-128 characters of letters, digits and . _ - @ :"
        )))
    }
}

/// The rule the OpenAPI schema of `NewHuman.email` states: `local@domain`, both parts
/// non-empty, no whitespace or control characters, at most 254 characters.
pub(crate) fn check_email(email: &str) -> Result<(), DirectoryError> {
    let clean = !email.contains(|c: char| c.is_whitespace() || c.is_control());
    let parts_ok = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    if clean && parts_ok && email.chars().count() <= 254 {
        Ok(())
    } else {
        Err(DirectoryError::Invalid(
            "email must be an e-mail address (local@domain)".into(),
        ))
    }
}

pub(crate) fn check_http_url(what: &str, value: &str) -> Result<(), DirectoryError> {
    let ok = (value.starts_with("https://") || value.starts_with("http://"))
        && value.len() > "http://".len()
        && !value.contains(char::is_whitespace)
        && !value.contains('#');
    if ok {
        Ok(())
    } else {
        Err(DirectoryError::Invalid(format!(
            "{what} must be an http(s) URL without fragment"
        )))
    }
}

/// Registers a human; `actor` is recorded as having done it (`human.created`).
pub async fn add_human(
    store: &Store,
    new: NewHuman,
    now_ms: i64,
    actor: &str,
) -> Result<Human, DirectoryError> {
    check_identifier("subject", &new.subject)?;
    check_email(&new.email)?;
    check_name(&new.name)?;
    if new
        .user_code
        .as_ref()
        .is_some_and(|c| !(4..=64).contains(&c.chars().count()))
    {
        return Err(DirectoryError::Invalid(
            "user_code must be 4-64 characters".into(),
        ));
    }
    check_profile(store, &new.profile(), &new.subject).await?;
    let record = HumanRecord {
        subject: Subject::new(new.subject.as_str()),
        email: new.email,
        name: new.name,
        active: true,
        user_code_hash: new.user_code.as_deref().map(hash_secret),
        created_at: now_ms,
        department: new.department,
        title: new.title,
        role: new.role,
        manager: new.manager.map(Subject::new),
    };
    let mut tx = store.begin().await?;
    match insert_human_in(store, &mut tx, now_ms, actor, &record).await {
        Err(StoreError::Conflict) => Err(DirectoryError::Conflict(format!(
            "a human with subject {:?} or this email",
            new.subject
        ))),
        Err(e) => Err(e.into()),
        Ok(()) => {
            tx.commit().await?;
            Ok(record.into())
        }
    }
}

/// Inserts `h` inside `tx` with its `human.created` event (which tells whether there is a
/// user code, never the code).
pub(crate) async fn insert_human_in(
    store: &Store,
    tx: &mut Tx<'_>,
    now_ms: i64,
    actor: &str,
    h: &HumanRecord,
) -> Result<(), StoreError> {
    store.insert_human(tx, h).await?;
    let event = NewEvent {
        actor,
        kind: EventKind::HumanCreated,
        subject: &format!("human:{}", h.subject),
        detail: json!({
            "email": h.email,
            "name": h.name,
            "department": h.department,
            "title": h.title,
            "role": h.role,
            "manager": h.manager,
            "user_code": h.user_code_hash.is_some(),
        }),
    };
    audit::record(store, tx, now_ms, event).await?;
    Ok(())
}

/// Writes `new` over `old` inside `tx` with a `human.updated` event naming each changed
/// field; writes nothing when nothing changed. False when the human is gone.
pub(crate) async fn update_human_in(
    store: &Store,
    tx: &mut Tx<'_>,
    now_ms: i64,
    actor: &str,
    old: &HumanRecord,
    new: &HumanRecord,
) -> Result<bool, StoreError> {
    let mut changes = Changes::default();
    changes
        .field("email", &old.email, &new.email)
        .field("name", &old.name, &new.name)
        .field("department", &old.department, &new.department)
        .field("title", &old.title, &new.title)
        .field("role", &old.role, &new.role)
        .field("manager", &old.manager, &new.manager);
    if changes.is_empty() {
        return Ok(true);
    }
    if !store.update_human_profile(tx, new).await? {
        return Ok(false);
    }
    let event = NewEvent {
        actor,
        kind: EventKind::HumanUpdated,
        subject: &format!("human:{}", new.subject),
        detail: changes.into_detail(),
    };
    audit::record(store, tx, now_ms, event).await?;
    Ok(true)
}

pub(crate) fn check_text(what: &str, value: &str, max: usize) -> Result<(), DirectoryError> {
    if value.chars().count() > max || value.contains(char::is_control) {
        return Err(DirectoryError::Invalid(format!(
            "{what} must be at most {max} characters without control characters"
        )));
    }
    Ok(())
}

pub(crate) fn check_name(name: &str) -> Result<(), DirectoryError> {
    if name.trim().is_empty() || name.chars().count() > 200 || name.contains(char::is_control) {
        return Err(DirectoryError::Invalid(
            "name must be 1-200 characters of visible text without control characters".into(),
        ));
    }
    Ok(())
}

async fn check_profile(
    store: &Store,
    p: &HumanProfile,
    subject: &str,
) -> Result<(), DirectoryError> {
    check_text("department", &p.department, 200)?;
    check_text("title", &p.title, 200)?;
    check_text("role", &p.role, 200)?;
    if let Some(manager) = &p.manager {
        check_identifier("manager", manager)?;
        if manager == subject {
            return Err(DirectoryError::Invalid(
                "a person cannot be their own manager".into(),
            ));
        }
        if store.human(manager).await?.is_none() {
            return Err(DirectoryError::Invalid(format!(
                "manager {manager:?} is not a registered human"
            )));
        }
    }
    Ok(())
}

/// Applies `update` to `subject`'s profile; `actor` is recorded with what changed
/// (`human.updated`; nothing is written when nothing changes).
pub async fn update_human(
    store: &Store,
    subject: &str,
    update: HumanUpdate,
    now_ms: i64,
    actor: &str,
) -> Result<Human, DirectoryError> {
    let mut tx = store.begin().await?;
    let old = store
        .human_in(&mut tx, subject)
        .await?
        .ok_or_else(|| DirectoryError::NotFound(format!("human {subject:?}")))?;
    let mut h = old.clone();
    if let Some(email) = update.email {
        check_email(&email)?;
        h.email = email;
    }
    if let Some(name) = update.name {
        check_name(&name)?;
        h.name = name;
    }
    if let Some(d) = update.department {
        h.department = d;
    }
    if let Some(t) = update.title {
        h.title = t;
    }
    if let Some(r) = update.role {
        h.role = r;
    }
    if let Some(m) = update.manager {
        h.manager = (!m.is_empty()).then(|| Subject::new(m));
    }
    let profile = HumanProfile {
        department: h.department.clone(),
        title: h.title.clone(),
        role: h.role.clone(),
        manager: h.manager.as_ref().map(Subject::to_string),
    };
    check_profile(store, &profile, subject).await?;
    match update_human_in(store, &mut tx, now_ms, actor, &old, &h).await {
        Ok(true) => {
            tx.commit().await?;
            store.forget_directory_cache();
            Ok(h.into())
        }
        Ok(false) => Err(DirectoryError::NotFound(format!("human {subject:?}"))),
        Err(StoreError::Conflict) => {
            Err(DirectoryError::Conflict("a human with this email".into()))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn list_humans(store: &Store) -> Result<Vec<Human>, DirectoryError> {
    Ok(store
        .list_humans()
        .await?
        .into_iter()
        .map(Human::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::check_email;

    #[test]
    fn email_rule_matches_the_documented_schema() {
        for ok in ["a@b", "alice@example.com", "x@y@z", "ü@bücher.de"] {
            assert!(check_email(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "@",
            "a@",
            "@b",
            "a b@c",
            "a@b\u{85}",
            "a\u{18}@b",
            "plain",
        ] {
            assert!(check_email(bad).is_err(), "{bad:?}");
        }
        assert!(check_email(&format!("{}@b", "a".repeat(253))).is_err());
    }
}
