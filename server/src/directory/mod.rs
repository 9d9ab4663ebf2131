//! Humans and agents. The CLI and the admin API both go through these functions, so they
//! validate alike.

use countersign_jose::JwkSet;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

pub mod agent_access;
pub mod offboarding;

use crate::oidc::client_auth::AuthMethod;
use crate::secrets::{Secret, hash_secret};
use crate::store::clients::ClientRecord;
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

/// An agent to register as a CIBA client.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._@:-]+$")]
    pub client_id: String,
    /// Display name shown to approvers; defaults to the client id.
    #[serde(default)]
    pub name: Option<String>,
    /// Subject of the human who owns the agent; must already be registered.
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._@:-]+$")]
    pub owner: String,
    /// `client_secret_basic`, `client_secret_post` or `private_key_jwt`.
    #[schema(pattern = "^(client_secret_basic|client_secret_post|private_key_jwt)$")]
    pub auth_method: String,
    /// Public JWK Set; required for `private_key_jwt` and signed requests.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<Value>,
    /// `poll` (default), `ping` or `push`.
    #[serde(default)]
    #[schema(pattern = "^(poll|ping|push)$")]
    pub delivery_mode: Option<String>,
    /// `client_notification_endpoint`, required for ping and push.
    #[serde(default)]
    #[schema(pattern = "^https?://[^\\s#]+$")]
    pub notification_endpoint: Option<String>,
    #[serde(default)]
    pub require_signed_request: bool,
    #[serde(default)]
    pub user_code_required: bool,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub department: String,
    /// `low` (default), `medium`, `high`, or any word policies compare.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 64)]
    pub risk_tier: Option<String>,
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub description: Option<String>,
    /// Tools the agent may act on (absent or empty: any).
    #[serde(default)]
    #[schema(max_items = 100)]
    pub tools: Option<Vec<String>>,
    /// Approver route for step-ups whose policy names none (absent: the request's user).
    #[serde(default)]
    #[schema(pattern = "^(user|owner|manager|group:.+|role:.+)$")]
    pub approver: Option<String>,
}

/// What policies read of an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct AgentProfile {
    #[schema(max_length = 200)]
    pub department: String,
    /// `low` (default), `medium`, `high`, or any word policies compare.
    #[schema(min_length = 1, max_length = 64)]
    pub risk_tier: String,
    #[schema(max_length = 1000)]
    pub description: Option<String>,
    /// The tools (names from `policy.tools`) the agent may act on; absent: any tool the
    /// policies allow. A request for another tool is denied.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 100)]
    pub tools: Option<Vec<String>>,
    /// Who approves the agent's step-ups when the deciding policy names no `@approver`:
    /// `user`, `owner`, `manager`, `group:NAME` or `role:NAME`; absent: the request's user.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(user|owner|manager|group:.+|role:.+)$")]
    pub approver: Option<String>,
}

impl Default for AgentProfile {
    fn default() -> Self {
        Self {
            department: String::new(),
            risk_tier: "low".into(),
            description: None,
            tools: None,
            approver: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Agent {
    pub client_id: String,
    pub name: String,
    pub owner: String,
    pub auth_method: String,
    pub delivery_mode: String,
    pub notification_endpoint: Option<String>,
    pub require_signed_request: bool,
    pub user_code_required: bool,
    pub enabled: bool,
    /// Unix time in seconds.
    pub created_at: i64,
    #[serde(flatten)]
    pub profile: AgentProfile,
}

impl From<ClientRecord> for Agent {
    fn from(c: ClientRecord) -> Self {
        Agent {
            profile: AgentProfile {
                department: c.department,
                risk_tier: c.risk_tier,
                description: c.description,
                tools: c.tools,
                approver: c.approver,
            },
            client_id: c.client_id,
            name: c.name,
            owner: c.owner_subject,
            auth_method: c.auth_method,
            delivery_mode: c.delivery_mode,
            notification_endpoint: c.notification_endpoint,
            require_signed_request: c.require_signed_request,
            user_code_required: c.user_code_required,
            enabled: c.enabled,
            created_at: c.created_at.div_euclid(1000),
        }
    }
}

/// A newly registered agent. `client_secret` is shown this once and stored only hashed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedAgent {
    #[serde(flatten)]
    pub agent: Agent,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
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

fn check_http_url(what: &str, value: &str) -> Result<(), DirectoryError> {
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

pub async fn add_agent(
    store: &Store,
    new: NewAgent,
    now_ms: i64,
) -> Result<CreatedAgent, DirectoryError> {
    check_identifier("client_id", &new.client_id)?;
    let method = AuthMethod::parse(&new.auth_method).ok_or_else(|| {
        DirectoryError::Invalid(
            "auth_method must be client_secret_basic, client_secret_post or private_key_jwt".into(),
        )
    })?;
    if store.human(&new.owner).await?.is_none() {
        return Err(DirectoryError::Invalid(format!(
            "owner {:?} is not a registered human",
            new.owner
        )));
    }
    let jwks = match &new.jwks {
        Some(value) => {
            let set: JwkSet = serde_json::from_value(value.clone())
                .map_err(|e| DirectoryError::Invalid(format!("jwks is not a JWK Set: {e}")))?;
            let usable = set
                .keys
                .iter()
                .filter(|k| k.verifying_key().is_ok())
                .count();
            if usable == 0 || set.keys.iter().any(|k| k.d.is_some()) {
                return Err(DirectoryError::Invalid(
                    "jwks must hold at least one public P-256 key and no private keys".into(),
                ));
            }
            Some(serde_json::to_string(&set).map_err(|e| DirectoryError::Invalid(e.to_string()))?)
        }
        None => None,
    };
    if (method == AuthMethod::PrivateKeyJwt || new.require_signed_request) && jwks.is_none() {
        return Err(DirectoryError::Invalid(
            "jwks is required for private_key_jwt and signed requests".into(),
        ));
    }
    let mode = new.delivery_mode.as_deref().unwrap_or("poll");
    match (mode, &new.notification_endpoint) {
        ("poll", None) => {}
        ("poll", Some(_)) => {
            return Err(DirectoryError::Invalid(
                "notification_endpoint is only used in ping and push modes".into(),
            ));
        }
        ("ping" | "push", Some(url)) => check_http_url("notification_endpoint", url)?,
        ("ping" | "push", None) => {
            return Err(DirectoryError::Invalid(
                "notification_endpoint is required in ping and push modes".into(),
            ));
        }
        _ => {
            return Err(DirectoryError::Invalid(
                "delivery_mode must be poll, ping or push".into(),
            ));
        }
    }
    let profile = AgentProfile {
        department: new.department.clone(),
        risk_tier: new.risk_tier.clone().unwrap_or_else(|| "low".into()),
        description: new.description.clone(),
        tools: agent_access::normalize_tools(new.tools.clone())?,
        approver: agent_access::normalize_approver(new.approver.clone())?,
    };
    check_agent_profile(&profile)?;
    let secret = (method != AuthMethod::PrivateKeyJwt).then(Secret::generate);
    let record = ClientRecord {
        client_id: new.client_id.clone(),
        name: new
            .name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| new.client_id.clone()),
        owner_subject: new.owner,
        auth_method: method.as_str().to_owned(),
        secret_hash: secret.as_ref().map(Secret::hash),
        jwks,
        delivery_mode: mode.to_owned(),
        notification_endpoint: new.notification_endpoint,
        require_signed_request: new.require_signed_request,
        user_code_required: new.user_code_required,
        enabled: true,
        created_at: now_ms,
        department: profile.department,
        risk_tier: profile.risk_tier,
        description: profile.description,
        tools: profile.tools,
        approver: profile.approver,
    };
    match store.insert_client(&record).await {
        Err(StoreError::Conflict) => Err(DirectoryError::Conflict(format!(
            "agent {:?}",
            new.client_id
        ))),
        Err(e) => Err(e.into()),
        Ok(()) => Ok(CreatedAgent {
            agent: record.into(),
            client_secret: secret.map(|s| s.expose().to_owned()),
        }),
    }
}

fn check_agent_profile(p: &AgentProfile) -> Result<(), DirectoryError> {
    check_text("department", &p.department, 200)?;
    if p.risk_tier.is_empty() {
        return Err(DirectoryError::Invalid(
            "risk_tier must not be empty".into(),
        ));
    }
    check_text("risk_tier", &p.risk_tier, 64)?;
    if let Some(d) = &p.description {
        check_text("description", d, 1000)?;
    }
    Ok(())
}

/// Changes to what policies read of an agent; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentUpdate {
    #[schema(max_length = 200)]
    pub department: Option<String>,
    #[schema(min_length = 1, max_length = 64)]
    pub risk_tier: Option<String>,
    /// `""` clears it.
    #[schema(max_length = 1000)]
    pub description: Option<String>,
    /// Replaces the agent's tools; `[]` lifts the restriction.
    #[schema(max_items = 100)]
    pub tools: Option<Vec<String>>,
    /// `""` clears it.
    pub approver: Option<String>,
}

/// Applies `update` to agent `client_id`.
pub async fn update_agent(
    store: &Store,
    client_id: &str,
    update: AgentUpdate,
) -> Result<Agent, DirectoryError> {
    let mut c = store
        .client(client_id)
        .await?
        .ok_or_else(|| DirectoryError::NotFound(format!("agent {client_id:?}")))?;
    let profile = AgentProfile {
        department: update.department.unwrap_or(c.department.clone()),
        risk_tier: update.risk_tier.unwrap_or(c.risk_tier.clone()),
        description: match update.description {
            Some(d) if d.is_empty() => None,
            Some(d) => Some(d),
            None => c.description.clone(),
        },
        tools: match update.tools {
            Some(t) => agent_access::normalize_tools(Some(t))?,
            None => c.tools.clone(),
        },
        approver: match update.approver {
            Some(a) => agent_access::normalize_approver(Some(a))?,
            None => c.approver.clone(),
        },
    };
    check_agent_profile(&profile)?;
    c.department = profile.department;
    c.risk_tier = profile.risk_tier;
    c.description = profile.description;
    c.tools = profile.tools;
    c.approver = profile.approver;
    if store.update_client_profile(&c).await? {
        Ok(c.into())
    } else {
        Err(DirectoryError::NotFound(format!("agent {client_id:?}")))
    }
}

pub async fn list_agents(store: &Store) -> Result<Vec<Agent>, DirectoryError> {
    Ok(store
        .list_clients()
        .await?
        .into_iter()
        .map(Agent::from)
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
