//! API keys: admin keys (`countersign admin-key create`) for the admin API and SCIM
//! tokens (`countersign scim-token create`) for provisioning, presented as bearer tokens.
//! A key works only for its own scope, until it expires or is revoked. Creating and
//! revoking one is an audit event naming who did it (`admin_key.created`,
//! `scim_token.revoked`, ...; subject `admin-key:ID` / `scim-token:ID`), never the secret.

pub mod passkeys;
pub mod roles;
pub mod sign_in_links;
pub mod sso;

pub use roles::Role;

use serde_json::json;

use crate::audit::{self, EventKind, NewEvent};
use crate::secrets::{Secret, hash_secret};
use crate::store::admin_keys::AdminKeyRecord;
use crate::store::{Store, StoreError, Tx};

/// What a key may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The admin API (`/admin/v1`).
    Admin,
    /// SCIM provisioning (`/scim/v2`).
    Scim,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Scim => "scim",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Self::Admin => "csk_",
            Self::Scim => "css_",
        }
    }

    /// How the trail names a key of this scope: `admin-key:ID`, `scim-token:ID` (also the
    /// actor of what the key does).
    pub fn subject(self, id: &str) -> String {
        match self {
            Self::Admin => format!("admin-key:{id}"),
            Self::Scim => format!("scim-token:{id}"),
        }
    }

    fn created(self) -> EventKind {
        match self {
            Self::Admin => EventKind::AdminKeyCreated,
            Self::Scim => EventKind::ScimTokenCreated,
        }
    }

    fn revoked(self) -> EventKind {
        match self {
            Self::Admin => EventKind::AdminKeyRevoked,
            Self::Scim => EventKind::ScimTokenRevoked,
        }
    }
}

/// A new key; `secret` is shown once. The key's id is a prefix of the secret's hash so an
/// operator can name a key without holding the secret.
pub struct NewAdminKey {
    pub id: String,
    pub secret: Secret,
}

/// Creates a key for `scope`, expiring at `expires_at_ms` when given; `actor` is recorded
/// as having created it.
pub async fn create_key(
    store: &Store,
    name: &str,
    scope: Scope,
    expires_at_ms: Option<i64>,
    now_ms: i64,
    actor: &str,
) -> Result<NewAdminKey, StoreError> {
    let mut tx = store.begin().await?;
    let key = create_key_in(
        store,
        &mut tx,
        name,
        scope,
        Role::Admin,
        expires_at_ms,
        now_ms,
    )
    .await?;
    let event = NewEvent {
        actor,
        kind: scope.created(),
        subject: &scope.subject(&key.id),
        detail: json!({ "name": name, "expires_at": expires_at_ms }),
    };
    audit::record(store, &mut tx, now_ms, event).await?;
    tx.commit().await?;
    Ok(key)
}

/// Stores a new key inside `tx`; the caller records why (an SSO sign-in records
/// `admin.signed_in`).
pub(crate) async fn create_key_in(
    store: &Store,
    tx: &mut Tx<'_>,
    name: &str,
    scope: Scope,
    role: Role,
    expires_at_ms: Option<i64>,
    now_ms: i64,
) -> Result<NewAdminKey, StoreError> {
    let secret = Secret::new(format!(
        "{}{}",
        scope.prefix(),
        countersign_jose::random_b64url(32)
    ));
    let hash = secret.hash();
    let id = hash
        .trim_start_matches("sha256:")
        .chars()
        .take(12)
        .collect::<String>();
    let record = AdminKeyRecord {
        id: id.clone(),
        name: name.to_owned(),
        key_hash: hash,
        scope: scope.as_str().to_owned(),
        role: role.as_str().to_owned(),
        expires_at: expires_at_ms,
        created_at: now_ms,
    };
    store.insert_admin_key(tx, &record).await?;
    Ok(NewAdminKey { id, secret })
}

/// Revokes key `id` of `scope` (it stops working at once); `actor` is recorded as having
/// revoked it. False when there is no such live key of that scope.
pub async fn revoke_key(
    store: &Store,
    scope: Scope,
    id: &str,
    now_ms: i64,
    actor: &str,
) -> Result<bool, StoreError> {
    let mut tx = store.begin().await?;
    let Some(name) = store
        .revoke_admin_key(&mut tx, id, scope.as_str(), now_ms)
        .await?
    else {
        return Ok(false);
    };
    let event = NewEvent {
        actor,
        kind: scope.revoked(),
        subject: &scope.subject(id),
        detail: json!({ "name": name }),
    };
    audit::record(store, &mut tx, now_ms, event).await?;
    tx.commit().await?;
    Ok(true)
}

/// A live key: its id and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedKey {
    pub id: String,
    pub role: Role,
}

/// The key `presented`, if it is live at `now_ms` and has `scope`.
pub async fn verify_key(
    store: &Store,
    presented: &str,
    scope: Scope,
    now_ms: i64,
) -> Result<Option<VerifiedKey>, StoreError> {
    let Some((id, role)) = store
        .admin_key_by_hash(&hash_secret(presented), scope.as_str(), now_ms)
        .await?
    else {
        return Ok(None);
    };
    // A role this server does not know (a newer server's) grants nothing more than viewing.
    let role = role.parse().unwrap_or(Role::Viewer);
    Ok(Some(VerifiedKey { id, role }))
}
