//! Admin API keys: created by `countersign admin-key create`, presented as bearer tokens.

use crate::secrets::{Secret, hash_secret};
use crate::store::{Store, StoreError};

/// A new key; `secret` is shown once. The key's id is a prefix of the secret's hash so an
/// operator can name a key without holding the secret.
pub struct NewAdminKey {
    pub id: String,
    pub secret: Secret,
}

pub async fn create_key(store: &Store, name: &str, now_ms: i64) -> Result<NewAdminKey, StoreError> {
    let secret = Secret::new(format!("csk_{}", countersign_jose::random_b64url(32)));
    let hash = secret.hash();
    let id = hash
        .trim_start_matches("sha256:")
        .chars()
        .take(12)
        .collect::<String>();
    store.insert_admin_key(&id, name, &hash, now_ms).await?;
    Ok(NewAdminKey { id, secret })
}

/// The id of the admin key `presented`, if it is live.
pub async fn verify_key(store: &Store, presented: &str) -> Result<Option<String>, StoreError> {
    store.admin_key_by_hash(&hash_secret(presented)).await
}
