//! Agents: registered as CIBA clients with an owner, a profile policies read, the tools
//! they may use and their approver route (see [`super::agent_access`]).

use countersign_jose::JwkSet;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{DirectoryError, agent_access, check_http_url, check_identifier, check_text};
use crate::audit::{self, Changes, EventKind, NewEvent};
use crate::ids::{ClientId, Subject};
use crate::oidc::client_auth::AuthMethod;
use crate::secrets::Secret;
use crate::store::clients::ClientRecord;
use crate::store::{Store, StoreError, Tx};

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
    /// `client_notification_endpoint`, required for ping and push: `https`, or `http`
    /// on a loopback address only.
    #[serde(default)]
    #[schema(pattern = "^https?://[^\\s#]+$")]
    pub notification_endpoint: Option<String>,
    /// Receive bearer credentials (no proof of possession). Off by default: the agent
    /// must bind every credential to its DPoP key (RFC 9449), and verifiers refuse
    /// unbound credentials unless configured otherwise.
    #[serde(default)]
    pub bearer_only: bool,
    /// The agent's DPoP key (RFC 7638 SHA-256 thumbprint), binding credentials of
    /// requests that name no `dpop_jkt` (ping and push clients).
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_-]{43}$")]
    pub dpop_jkt: Option<String>,
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
    /// RFC 9449 client metadata: true unless the agent was registered bearer-only.
    pub dpop_bound_access_tokens: bool,
    /// The registered DPoP key thumbprint, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
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
            client_id: c.client_id.into_string(),
            name: c.name,
            owner: c.owner_subject.into_string(),
            auth_method: c.auth_method,
            delivery_mode: c.delivery_mode,
            notification_endpoint: c.notification_endpoint,
            require_signed_request: c.require_signed_request,
            user_code_required: c.user_code_required,
            dpop_bound_access_tokens: !c.bearer_only,
            dpop_jkt: c.dpop_jkt,
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

/// Registers an agent; `actor` is recorded as having done it (`agent.registered`, with
/// everything that decides what it may do, its public keys by thumbprint and never its
/// secret).
pub async fn add_agent(
    store: &Store,
    new: NewAgent,
    now_ms: i64,
    actor: &str,
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
    let jwks = new.jwks.as_ref().map(public_jwks).transpose()?;
    if (method == AuthMethod::PrivateKeyJwt || new.require_signed_request) && jwks.is_none() {
        return Err(DirectoryError::Invalid(
            "jwks is required for private_key_jwt and signed requests".into(),
        ));
    }
    let mode = new.delivery_mode.as_deref().unwrap_or("poll");
    check_delivery(mode, new.notification_endpoint.as_deref())?;
    check_key_binding(new.dpop_jkt.as_deref(), new.bearer_only)?;
    check_shown_name(new.name.as_deref())?;
    let profile = profile_of(&new)?;
    let secret = (method != AuthMethod::PrivateKeyJwt).then(Secret::generate);
    let record = ClientRecord {
        client_id: ClientId::new(new.client_id.as_str()),
        name: new
            .name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| new.client_id.clone()),
        owner_subject: Subject::new(new.owner),
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
        bearer_only: new.bearer_only,
        dpop_jkt: new.dpop_jkt,
    };
    let mut tx = store.begin().await?;
    match insert_client_in(store, &mut tx, now_ms, actor, &record).await {
        Err(StoreError::Conflict) => Err(DirectoryError::Conflict(format!(
            "agent {:?}",
            new.client_id
        ))),
        Err(e) => Err(e.into()),
        Ok(()) => {
            tx.commit().await?;
            Ok(CreatedAgent {
                agent: record.into(),
                client_secret: secret.map(|s| s.expose().to_owned()),
            })
        }
    }
}

/// How the agent's credentials are bound: to the DPoP key `dpop_jkt` names (a JWK
/// thumbprint), or bearer-only, not both.
fn check_key_binding(dpop_jkt: Option<&str>, bearer_only: bool) -> Result<(), DirectoryError> {
    if let Some(jkt) = dpop_jkt
        && !is_thumbprint(jkt)
    {
        return Err(DirectoryError::Invalid(
            "dpop_jkt must be a JWK SHA-256 thumbprint (RFC 7638), base64url encoded".into(),
        ));
    }
    if bearer_only && dpop_jkt.is_some() {
        return Err(DirectoryError::Invalid(
            "a bearer-only agent has no DPoP key: give bearer_only or dpop_jkt, not both".into(),
        ));
    }
    Ok(())
}

/// What policies and approvers see of a new agent, checked.
fn profile_of(new: &NewAgent) -> Result<AgentProfile, DirectoryError> {
    let profile = AgentProfile {
        department: new.department.clone(),
        risk_tier: new.risk_tier.clone().unwrap_or_else(|| "low".into()),
        description: new.description.clone(),
        tools: agent_access::normalize_tools(new.tools.clone())?,
        approver: agent_access::normalize_approver(new.approver.clone())?,
    };
    check_agent_profile(&profile)?;
    Ok(profile)
}

/// The agent's registered keys as stored: a JWK Set with at least one usable public
/// P-256 key and no private key.
fn public_jwks(value: &Value) -> Result<String, DirectoryError> {
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
    serde_json::to_string(&set).map_err(|e| DirectoryError::Invalid(e.to_string()))
}

/// A CIBA delivery mode with the notification endpoint it needs: none in poll mode, one
/// in ping and push modes.
fn check_delivery(mode: &str, endpoint: Option<&str>) -> Result<(), DirectoryError> {
    match (mode, endpoint) {
        ("poll", None) => Ok(()),
        ("poll", Some(_)) => Err(DirectoryError::Invalid(
            "notification_endpoint is only used in ping and push modes".into(),
        )),
        ("ping" | "push", Some(url)) => check_notification_endpoint(url),
        ("ping" | "push", None) => Err(DirectoryError::Invalid(
            "notification_endpoint is required in ping and push modes".into(),
        )),
        _ => Err(DirectoryError::Invalid(
            "delivery_mode must be poll, ping or push".into(),
        )),
    }
}

/// Inserts `c` inside `tx` with its `agent.registered` event.
async fn insert_client_in(
    store: &Store,
    tx: &mut Tx<'_>,
    now_ms: i64,
    actor: &str,
    c: &ClientRecord,
) -> Result<(), StoreError> {
    store.insert_client(tx, c).await?;
    let keys: Vec<String> = c
        .jwks
        .as_deref()
        .and_then(|text| serde_json::from_str::<JwkSet>(text).ok())
        .map(|set| {
            set.keys
                .iter()
                .filter_map(|k| countersign_jose::thumbprint(k).ok())
                .collect()
        })
        .unwrap_or_default();
    let event = NewEvent {
        actor,
        kind: EventKind::AgentRegistered,
        subject: &format!("agent:{}", c.client_id),
        detail: json!({
            "owner": c.owner_subject,
            "name": c.name,
            "auth_method": c.auth_method,
            "keys": keys,
            "delivery_mode": c.delivery_mode,
            "notification_endpoint": c.notification_endpoint,
            "require_signed_request": c.require_signed_request,
            "user_code_required": c.user_code_required,
            "bearer_only": c.bearer_only,
            "dpop_jkt": c.dpop_jkt,
            "department": c.department,
            "risk_tier": c.risk_tier,
            "description": c.description,
            "tools": c.tools,
            "approver": c.approver,
        }),
    };
    audit::record(store, tx, now_ms, event).await?;
    Ok(())
}

/// RFC 7638 SHA-256 thumbprint, base64url without padding.
fn is_thumbprint(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The agent's name is shown to approvers: it may not hide or reorder text.
fn check_shown_name(name: Option<&str>) -> Result<(), DirectoryError> {
    match name.and_then(countersign_shared::text::deceptive) {
        Some(c) => Err(DirectoryError::Invalid(format!(
            "name contains U+{:04X}, an invisible or direction-changing character",
            u32::from(c)
        ))),
        None => Ok(()),
    }
}

/// Ping and push notifications carry credentials (push) or wake the agent (ping): they go
/// over TLS, except to a listener on this machine's loopback interface.
pub(crate) fn check_notification_endpoint(url: &str) -> Result<(), DirectoryError> {
    check_http_url("notification_endpoint", url)?;
    if url.starts_with("https://") || is_loopback_http(url) {
        Ok(())
    } else {
        Err(DirectoryError::Invalid(
            "notification_endpoint must be https (plain http only on a loopback address)".into(),
        ))
    }
}

/// Whether `url` is `http://` to a loopback address (127.0.0.0/8, [::1], localhost).
pub fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.contains('@') {
        return false;
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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

/// Applies `update` to agent `client_id`; `actor` is recorded with what changed
/// (`agent.updated`; nothing is written when nothing changes).
pub async fn update_agent(
    store: &Store,
    client_id: &str,
    update: AgentUpdate,
    now_ms: i64,
    actor: &str,
) -> Result<Agent, DirectoryError> {
    let mut tx = store.begin().await?;
    let old = store
        .client_in(&mut tx, client_id)
        .await?
        .ok_or_else(|| DirectoryError::NotFound(format!("agent {client_id:?}")))?;
    let profile = AgentProfile {
        department: update.department.unwrap_or(old.department.clone()),
        risk_tier: update.risk_tier.unwrap_or(old.risk_tier.clone()),
        description: match update.description {
            Some(d) if d.is_empty() => None,
            Some(d) => Some(d),
            None => old.description.clone(),
        },
        tools: match update.tools {
            Some(t) => agent_access::normalize_tools(Some(t))?,
            None => old.tools.clone(),
        },
        approver: match update.approver {
            Some(a) => agent_access::normalize_approver(Some(a))?,
            None => old.approver.clone(),
        },
    };
    check_agent_profile(&profile)?;
    let mut changes = Changes::default();
    changes
        .field("department", &old.department, &profile.department)
        .field("risk_tier", &old.risk_tier, &profile.risk_tier)
        .field("description", &old.description, &profile.description)
        .field("tools", &old.tools, &profile.tools)
        .field("approver", &old.approver, &profile.approver);
    let mut c = old;
    c.department = profile.department;
    c.risk_tier = profile.risk_tier;
    c.description = profile.description;
    c.tools = profile.tools;
    c.approver = profile.approver;
    if changes.is_empty() {
        return Ok(c.into());
    }
    if !store.update_client_profile(&mut tx, &c).await? {
        return Err(DirectoryError::NotFound(format!("agent {client_id:?}")));
    }
    let event = NewEvent {
        actor,
        kind: EventKind::AgentUpdated,
        subject: &format!("agent:{client_id}"),
        detail: changes.into_detail(),
    };
    audit::record(store, &mut tx, now_ms, event).await?;
    tx.commit().await?;
    store.forget_directory_cache();
    Ok(c.into())
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
    use super::*;

    #[test]
    fn notification_endpoints_are_https_or_loopback() {
        for ok in [
            "https://agent.example/cb",
            "http://127.0.0.1:8080/cb",
            "http://127.9.9.9/cb",
            "http://[::1]:9000/cb",
            "http://localhost:3000/cb",
        ] {
            assert!(check_notification_endpoint(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://agent.example/cb",
            "http://10.0.0.1/cb",
            "http://127.0.0.1.evil.example/cb",
            "http://localhost.evil.example/cb",
            "http://127.0.0.1@evil.example/cb",
            "http://[::ffff:10.0.0.1]/cb",
            "ftp://127.0.0.1/cb",
        ] {
            assert!(check_notification_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn poll_has_no_endpoint_and_ping_and_push_need_one() {
        let url = Some("https://agent.example/cb");
        assert!(check_delivery("poll", None).is_ok());
        assert!(check_delivery("poll", url).is_err());
        assert!(check_delivery("ping", url).is_ok());
        assert!(check_delivery("push", url).is_ok());
        assert!(check_delivery("ping", None).is_err());
        assert!(check_delivery("push", None).is_err());
        assert!(check_delivery("stream", url).is_err());
    }

    #[test]
    fn registered_keys_are_public_p256_keys() {
        let key = countersign_jose::SigningKeyPair::generate();
        let public = serde_json::to_value(key.public_jwk()).unwrap();
        assert!(public_jwks(&json!({"keys": [public]})).is_ok());
        assert!(public_jwks(&json!({"keys": []})).is_err());
        assert!(public_jwks(&json!({"keys": "none"})).is_err());
        let mut private = serde_json::to_value(key.public_jwk()).unwrap();
        private["d"] = json!(countersign_jose::b64url_encode(key.scalar_bytes()));
        assert!(public_jwks(&json!({"keys": [private]})).is_err());
    }
}
