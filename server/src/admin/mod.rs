//! API keys: admin keys (`countersign admin-key create`) for the admin API and SCIM
//! tokens (`countersign scim-token create`) for provisioning, presented as bearer tokens.
//! A key works only for its own scope and until it expires.

pub mod sso;

use crate::secrets::{Secret, hash_secret};
use crate::store::{Store, StoreError};

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
}

/// A new key; `secret` is shown once. The key's id is a prefix of the secret's hash so an
/// operator can name a key without holding the secret.
pub struct NewAdminKey {
    pub id: String,
    pub secret: Secret,
}

/// Creates a key for `scope`, expiring at `expires_at_ms` when given.
pub async fn create_key(
    store: &Store,
    name: &str,
    scope: Scope,
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
    store
        .insert_admin_key(&id, name, &hash, scope.as_str(), expires_at_ms, now_ms)
        .await?;
    Ok(NewAdminKey { id, secret })
}

/// The id of the key `presented`, if it is live at `now_ms` and has `scope`.
pub async fn verify_key(
    store: &Store,
    presented: &str,
    scope: Scope,
    now_ms: i64,
) -> Result<Option<String>, StoreError> {
    store
        .admin_key_by_hash(&hash_secret(presented), scope.as_str(), now_ms)
        .await
}
