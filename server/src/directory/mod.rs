//! Humans and agents. The CLI and the admin API both go through these functions, so they
//! validate alike.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub mod agent_access;
mod agents;
pub mod offboarding;

pub use agents::{
    Agent, AgentProfile, AgentUpdate, CreatedAgent, NewAgent, add_agent, list_agents, update_agent,
};

use crate::secrets::hash_secret;
use crate::store::humans::HumanRecord;
use crate::store::{Store, StoreError};

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
                manager: h.manager,
            },
            subject: h.subject,
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

pub async fn add_human(store: &Store, new: NewHuman, now_ms: i64) -> Result<Human, DirectoryError> {
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
        subject: new.subject.clone(),
        email: new.email,
        name: new.name,
        active: true,
        user_code_hash: new.user_code.as_deref().map(hash_secret),
        created_at: now_ms,
        department: new.department,
        title: new.title,
        role: new.role,
        manager: new.manager,
    };
    let mut tx = store.begin().await?;
    match store.insert_human(&mut tx, &record).await {
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

/// Applies `update` to `subject`'s profile.
pub async fn update_human(
    store: &Store,
    subject: &str,
    update: HumanUpdate,
) -> Result<Human, DirectoryError> {
    let mut h = store
        .human(subject)
        .await?
        .ok_or_else(|| DirectoryError::NotFound(format!("human {subject:?}")))?;
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
        h.manager = (!m.is_empty()).then_some(m);
    }
    let profile = HumanProfile {
        department: h.department.clone(),
        title: h.title.clone(),
        role: h.role.clone(),
        manager: h.manager.clone(),
    };
    check_profile(store, &profile, subject).await?;
    let mut tx = store.begin().await?;
    match store.update_human_profile(&mut tx, &h).await {
        Ok(true) => {
            tx.commit().await?;
            Ok(h.into())
        }
        Ok(false) => Err(DirectoryError::NotFound(format!("human {subject:?}"))),
        Err(StoreError::Conflict) => {
            Err(DirectoryError::Conflict("a human with this email".into()))
        }
        Err(e) => Err(e.into()),
    }
}

/// A group of humans (approver routing `group:NAME`, `principal.owner in Group::"NAME"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Group {
    pub name: String,
    pub display_name: String,
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._@:-]+$")]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub display_name: Option<String>,
}

pub async fn add_group(store: &Store, new: NewGroup, now_ms: i64) -> Result<Group, DirectoryError> {
    check_identifier("name", &new.name)?;
    let display = new.display_name.unwrap_or_else(|| new.name.clone());
    check_text("display_name", &display, 200)?;
    let mut tx = store.begin().await?;
    match store
        .insert_group(&mut tx, &new.name, &display, now_ms)
        .await
    {
        Err(StoreError::Conflict) => Err(DirectoryError::Conflict(format!("group {:?}", new.name))),
        Err(e) => Err(e.into()),
        Ok(()) => {
            tx.commit().await?;
            Ok(Group {
                name: new.name,
                display_name: display,
                members: Vec::new(),
            })
        }
    }
}

pub async fn list_groups(store: &Store) -> Result<Vec<Group>, DirectoryError> {
    Ok(store
        .list_groups()
        .await?
        .into_iter()
        .map(|(name, display_name, members)| Group {
            name,
            display_name,
            members,
        })
        .collect())
}

/// Adds or removes `subject` as a member of group `name`.
pub async fn set_group_member(
    store: &Store,
    name: &str,
    subject: &str,
    member: bool,
) -> Result<(), DirectoryError> {
    let mut tx = store.begin().await?;
    if store
        .set_group_member(&mut tx, name, subject, member)
        .await?
    {
        tx.commit().await?;
        Ok(())
    } else if member {
        Err(DirectoryError::NotFound(format!(
            "group {name:?} or human {subject:?}"
        )))
    } else {
        Err(DirectoryError::NotFound(format!(
            "{subject:?} in group {name:?}"
        )))
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
