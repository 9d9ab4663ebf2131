//! The `policy_versions` aggregate: every policy document ever added, numbered, and the
//! history of which one was active when. The active version is the latest activation.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, Tx};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersionRecord {
    pub version: i64,
    pub source: String,
    pub description: Option<String>,
    pub sha256: String,
    pub created_at: i64,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationRecord {
    pub seq: i64,
    pub version: i64,
    pub activated_at: i64,
    pub activated_by: String,
}

const COLUMNS: &str = "version, source, description, sha256, created_at, created_by";

fn from_row(row: &AnyRow) -> Result<PolicyVersionRecord, StoreError> {
    Ok(PolicyVersionRecord {
        version: row.try_get("version")?,
        source: row.try_get("source")?,
        description: row.try_get("description")?,
        sha256: row.try_get("sha256")?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
    })
}

impl Store {
    /// Stores a new version inside `tx`, numbered one above the highest; returns its
    /// number. Two replicas adding at once may pick the same number: the primary key
    /// refuses the second (`Conflict`), which can simply try again.
    pub async fn insert_policy_version(
        &self,
        tx: &mut Tx<'_>,
        source: &str,
        description: Option<&str>,
        sha256: &str,
        now_ms: i64,
        created_by: &str,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO policy_versions (version, source, description, sha256, created_at, created_by) \
             SELECT COALESCE(MAX(version), 0) + 1, $1, $2, $3, $4, $5 FROM policy_versions \
             RETURNING version",
        )
        .bind(source)
        .bind(description)
        .bind(sha256)
        .bind(now_ms)
        .bind(created_by)
        .fetch_one(tx.conn())
        .await
        .map_err(StoreError::from_insert)?;
        Ok(row.try_get("version")?)
    }

    pub async fn policy_version(
        &self,
        version: i64,
    ) -> Result<Option<PolicyVersionRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM policy_versions WHERE version = $1"
        ));
        let row = sqlx::query(sql)
            .bind(version)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Every version, newest first.
    pub async fn list_policy_versions(&self) -> Result<Vec<PolicyVersionRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM policy_versions ORDER BY version DESC"
        ));
        let rows = sqlx::query(sql).fetch_all(self.reader()).await?;
        rows.iter().map(from_row).collect()
    }

    /// Makes `version` the active one when `tx` commits.
    pub async fn activate_policy_version(
        &self,
        tx: &mut Tx<'_>,
        version: i64,
        now_ms: i64,
        by: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO policy_activations (version, activated_at, activated_by) VALUES ($1, $2, $3)",
        )
        .bind(version)
        .bind(now_ms)
        .bind(by)
        .execute(tx.conn())
        .await?;
        Ok(())
    }

    /// The newest activations, newest first.
    pub async fn policy_activations(
        &self,
        limit: i64,
    ) -> Result<Vec<ActivationRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, version, activated_at, activated_by FROM policy_activations \
             ORDER BY seq DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ActivationRecord {
                    seq: r.try_get("seq")?,
                    version: r.try_get("version")?,
                    activated_at: r.try_get("activated_at")?,
                    activated_by: r.try_get("activated_by")?,
                })
            })
            .collect()
    }

    /// The active version's number (`None`: the built-in default).
    pub async fn active_policy_version(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.policy_activations(1).await?.first().map(|a| a.version))
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing::each_backend;

    #[tokio::test]
    async fn versions_are_numbered_and_the_latest_activation_wins() {
        each_backend(|store| async move {
            assert_eq!(store.active_policy_version().await.unwrap(), None);
            let mut tx = store.begin().await.unwrap();
            let v1 = store
                .insert_policy_version(&mut tx, "a", Some("first"), "h1", 1, "cli")
                .await
                .unwrap();
            let v2 = store
                .insert_policy_version(&mut tx, "b", None, "h2", 2, "cli")
                .await
                .unwrap();
            assert_eq!((v1, v2), (1, 2));
            store
                .activate_policy_version(&mut tx, 2, 3, "cli")
                .await
                .unwrap();
            store
                .activate_policy_version(&mut tx, 1, 4, "admin-key:k")
                .await
                .unwrap();
            tx.commit().await.unwrap();
            assert_eq!(store.active_policy_version().await.unwrap(), Some(1));
            let history = store.policy_activations(10).await.unwrap();
            assert_eq!(
                history.iter().map(|a| a.version).collect::<Vec<_>>(),
                [1, 2]
            );
            let mut tx = store.begin().await.unwrap();
            assert!(
                store
                    .activate_policy_version(&mut tx, 9, 5, "cli")
                    .await
                    .is_err()
            );
            drop(tx);
            let listed = store.list_policy_versions().await.unwrap();
            assert_eq!(listed[0].source, "b");
            assert_eq!(
                store
                    .policy_version(1)
                    .await
                    .unwrap()
                    .unwrap()
                    .description
                    .as_deref(),
                Some("first")
            );
        })
        .await;
    }
}
