//! The `scim_resources` aggregate: Users and Groups as the identity provider provisioned
//! them. The human or group each provisions lives in its own aggregate; this keeps the
//! SCIM document (what the provider sent, normalized) so it is served back as it was.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, Tx};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimRecord {
    pub id: String,
    /// `User` or `Group`.
    pub resource_type: String,
    /// Lower-cased `userName` or `displayName` (unique per type).
    pub name_key: String,
    pub external_id: Option<String>,
    /// The human's subject or the group's name.
    pub target: String,
    /// The resource's attributes as JSON text (no `id`, `meta`, `schemas`).
    pub doc: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str =
    "id, resource_type, name_key, external_id, target, doc, version, created_at, updated_at";

fn from_row(row: &AnyRow) -> Result<ScimRecord, StoreError> {
    Ok(ScimRecord {
        id: row.try_get("id")?,
        resource_type: row.try_get("resource_type")?,
        name_key: row.try_get("name_key")?,
        external_id: row.try_get("external_id")?,
        target: row.try_get("target")?,
        doc: row.try_get("doc")?,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// `Conflict` when the name (or target) is taken.
    pub async fn insert_scim_resource(
        &self,
        tx: &mut Tx<'_>,
        r: &ScimRecord,
    ) -> Result<(), StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO scim_resources ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ));
        sqlx::query(sql)
            .bind(&r.id)
            .bind(&r.resource_type)
            .bind(&r.name_key)
            .bind(&r.external_id)
            .bind(&r.target)
            .bind(&r.doc)
            .bind(r.version)
            .bind(r.created_at)
            .bind(r.updated_at)
            .execute(tx.conn())
            .await
            .map_err(StoreError::from_insert)?;
        Ok(())
    }

    /// Replaces the stored document of `r.id` if it is still at `r.version - 1`; false
    /// when it changed meanwhile (or is gone). `Conflict` when the new name is taken.
    pub async fn update_scim_resource(
        &self,
        tx: &mut Tx<'_>,
        r: &ScimRecord,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE scim_resources SET name_key = $1, external_id = $2, doc = $3, version = $4, \
             updated_at = $5 WHERE id = $6 AND resource_type = $7 AND version = $8",
        )
        .bind(&r.name_key)
        .bind(&r.external_id)
        .bind(&r.doc)
        .bind(r.version)
        .bind(r.updated_at)
        .bind(&r.id)
        .bind(&r.resource_type)
        .bind(r.version - 1)
        .execute(tx.conn())
        .await
        .map_err(StoreError::from_insert)?;
        Ok(done.rows_affected() == 1)
    }

    /// False when there was no such resource.
    pub async fn delete_scim_resource(
        &self,
        tx: &mut Tx<'_>,
        resource_type: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM scim_resources WHERE id = $1 AND resource_type = $2")
            .bind(id)
            .bind(resource_type)
            .execute(tx.conn())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn scim_resource(
        &self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<ScimRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM scim_resources WHERE id = $1 AND resource_type = $2"
        ));
        let row = sqlx::query(sql)
            .bind(id)
            .bind(resource_type)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// The resource of `resource_type` provisioning `target` (a subject or group name).
    pub async fn scim_resource_for(
        &self,
        resource_type: &str,
        target: &str,
    ) -> Result<Option<ScimRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM scim_resources WHERE target = $1 AND resource_type = $2"
        ));
        let row = sqlx::query(sql)
            .bind(target)
            .bind(resource_type)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Every resource of `resource_type`, oldest first (filters run over these).
    pub async fn scim_resources(&self, resource_type: &str) -> Result<Vec<ScimRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM scim_resources WHERE resource_type = $1 ORDER BY created_at, id"
        ));
        let rows = sqlx::query(sql)
            .bind(resource_type)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(from_row).collect()
    }
}
