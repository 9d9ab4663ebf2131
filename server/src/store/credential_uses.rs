//! Recorded uses of credentials (`POST /credentials/{id}/uses`): a counter on the
//! credential's request row, and one row per use keyed by what identifies the use (the
//! presenter's DPoP proof), so a report repeated after a lost answer counts once.

use sqlx::Row;

use super::{Store, StoreError};

/// What recording a use found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UseRecorded {
    /// This use is number `n`; the credential allows `max_uses` (0: any number).
    Counted { n: i64, max_uses: i64 },
    /// The same use was recorded before, as number `n`.
    Repeated { n: i64, max_uses: i64 },
    /// Nothing recorded: every allowed use is spent.
    LimitReached { max_uses: i64 },
    /// Nothing recorded: the credential is unknown, revoked or expired.
    NotLive,
}

impl Store {
    /// Counts one use of credential `jti`, identified by `use_key`, at `now_ms`: if the
    /// credential is live and has a use left. One transaction: the counter moves only
    /// together with the use's row.
    pub async fn record_credential_use(
        &self,
        jti: &str,
        use_key: &str,
        now_ms: i64,
    ) -> Result<UseRecorded, StoreError> {
        let mut tx = self.begin().await?;
        let counted = sqlx::query(
            "UPDATE auth_requests SET token_uses = token_uses + 1 \
             WHERE token_jti = $1 AND token_revoked_at IS NULL AND token_expires_at > $2 \
             AND (max_uses = 0 OR token_uses < max_uses) RETURNING token_uses, max_uses",
        )
        .persistent(false)
        .bind(jti)
        .bind(now_ms)
        .fetch_optional(tx.conn())
        .await?;
        let Some(row) = counted else {
            drop(tx);
            return self.why_not_counted(jti, use_key, now_ms).await;
        };
        let (n, max_uses): (i64, i64) = (row.try_get("token_uses")?, row.try_get("max_uses")?);
        let inserted = sqlx::query(
            "INSERT INTO credential_uses (jti, use_key, n, at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (jti, use_key) DO NOTHING",
        )
        .bind(jti)
        .bind(use_key)
        .bind(n)
        .bind(now_ms)
        .execute(tx.conn())
        .await?;
        if inserted.rows_affected() == 0 {
            // Reported before: undo this count and answer with the first one.
            drop(tx);
            return self.why_not_counted(jti, use_key, now_ms).await;
        }
        tx.commit().await?;
        Ok(UseRecorded::Counted { n, max_uses })
    }

    /// Why `jti`'s use `use_key` was not counted now.
    async fn why_not_counted(
        &self,
        jti: &str,
        use_key: &str,
        now_ms: i64,
    ) -> Result<UseRecorded, StoreError> {
        let row = sqlx::query(
            "SELECT r.max_uses, r.token_revoked_at, r.token_expires_at, u.n FROM auth_requests r \
             LEFT JOIN credential_uses u ON u.jti = r.token_jti AND u.use_key = $2 \
             WHERE r.token_jti = $1",
        )
        .bind(jti)
        .bind(use_key)
        .fetch_optional(self.writer())
        .await?;
        let Some(row) = row else {
            return Ok(UseRecorded::NotLive);
        };
        let max_uses: i64 = row.try_get("max_uses")?;
        if let Some(n) = row.try_get::<Option<i64>, _>("n")? {
            return Ok(UseRecorded::Repeated { n, max_uses });
        }
        let revoked: Option<i64> = row.try_get("token_revoked_at")?;
        let expires: Option<i64> = row.try_get("token_expires_at")?;
        if revoked.is_some() || expires.is_none_or(|e| e <= now_ms) {
            return Ok(UseRecorded::NotLive);
        }
        Ok(UseRecorded::LimitReached { max_uses })
    }

    /// Forgets uses of credentials that expired before `before_ms`.
    pub async fn purge_credential_uses(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM credential_uses WHERE at < $1 AND jti NOT IN \
             (SELECT token_jti FROM auth_requests WHERE token_jti IS NOT NULL AND token_expires_at >= $1)",
        )
        .bind(before_ms)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::each_backend;

    #[tokio::test]
    async fn counts_each_use_once_up_to_the_limit() {
        each_backend(|store| async move {
            crate::store::auth_requests::tests::issued_request(&store, "r1", "jti-1", 2, 1_000)
                .await;
            let count = |key: &'static str| {
                let store = store.clone();
                async move { store.record_credential_use("jti-1", key, 10).await.unwrap() }
            };
            assert_eq!(count("a").await, UseRecorded::Counted { n: 1, max_uses: 2 });
            // The same use again: answered with its first count, not counted twice.
            assert_eq!(
                count("a").await,
                UseRecorded::Repeated { n: 1, max_uses: 2 }
            );
            assert_eq!(count("b").await, UseRecorded::Counted { n: 2, max_uses: 2 });
            assert_eq!(count("c").await, UseRecorded::LimitReached { max_uses: 2 });
            assert_eq!(
                count("b").await,
                UseRecorded::Repeated { n: 2, max_uses: 2 }
            );
            assert_eq!(
                store
                    .record_credential_use("unknown", "a", 10)
                    .await
                    .unwrap(),
                UseRecorded::NotLive
            );
            // Expired.
            assert_eq!(
                store
                    .record_credential_use("jti-1", "d", 5_000)
                    .await
                    .unwrap(),
                UseRecorded::NotLive
            );
        })
        .await;
    }
}
