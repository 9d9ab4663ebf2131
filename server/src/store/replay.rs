//! One-time identifiers (`jti` of client assertions, signed requests, DPoP proofs) seen
//! before. Kept in the database so every replica refuses a replay, until the identifier's
//! own expiry.

use super::{Store, StoreError, Tx};

impl Store {
    /// Records `jti` in `namespace`; returns false when it was already recorded.
    pub async fn remember_jti(
        &self,
        namespace: &str,
        jti: &str,
        expires_at_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO seen_jtis (namespace, jti, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (namespace, jti) DO NOTHING",
        )
        .bind(namespace)
        .bind(jti)
        .bind(expires_at_ms)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// [`Self::remember_jti`] inside `tx` (so the identifier is spent only if what it
    /// allowed commits).
    pub async fn remember_jti_in(
        &self,
        tx: &mut Tx<'_>,
        namespace: &str,
        jti: &str,
        expires_at_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO seen_jtis (namespace, jti, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (namespace, jti) DO NOTHING",
        )
        .bind(namespace)
        .bind(jti)
        .bind(expires_at_ms)
        .execute(tx.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Forgets identifiers whose tokens can no longer be presented anyway.
    pub async fn purge_expired_jtis(&self, now_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM seen_jtis WHERE expires_at < $1")
            .bind(now_ms)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing::each_backend;

    #[tokio::test]
    async fn second_use_is_refused_per_namespace_until_purged() {
        each_backend(|store| async move {
            assert!(store.remember_jti("client:a", "j1", 100).await.unwrap());
            assert!(!store.remember_jti("client:a", "j1", 100).await.unwrap());
            assert!(store.remember_jti("client:b", "j1", 100).await.unwrap());
            assert_eq!(store.purge_expired_jtis(101).await.unwrap(), 2);
            assert!(store.remember_jti("client:a", "j1", 200).await.unwrap());
        })
        .await;
    }
}
