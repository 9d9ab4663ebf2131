//! The `clients` aggregate: agents registered as OAuth / CIBA clients.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, Tx, flag};
use crate::ids::{ClientId, Subject};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    pub client_id: ClientId,
    pub name: String,
    pub owner_subject: Subject,
    /// `client_secret_basic`, `client_secret_post` or `private_key_jwt`.
    pub auth_method: String,
    pub secret_hash: Option<String>,
    /// The client's public JWK Set (JSON text), for `private_key_jwt`, signed requests and
    /// `login_hint_token`.
    pub jwks: Option<String>,
    /// `poll`, `ping` or `push`.
    pub delivery_mode: String,
    pub notification_endpoint: Option<String>,
    pub require_signed_request: bool,
    pub user_code_required: bool,
    pub enabled: bool,
    pub created_at: i64,
    pub department: String,
    /// `low`, `medium`, `high` (free text policies compare).
    pub risk_tier: String,
    pub description: Option<String>,
    /// Tools (by `policy.tools` name) the agent may act on; `None`: any.
    pub tools: Option<Vec<String>>,
    /// Approver route for step-ups whose policy names none; `None`: the request's user.
    pub approver: Option<String>,
    /// Registered to receive bearer credentials: no DPoP proof is asked of it, and its
    /// credentials say they are unbound. Every other client must bind (RFC 9449).
    pub bearer_only: bool,
    /// A registered DPoP key (RFC 7638 thumbprint) that binds its credentials when a
    /// request names none (ping and push clients, whose tokens may never pass a proof).
    pub dpop_jkt: Option<String>,
}

const COLUMNS: &str = "client_id, name, owner_subject, auth_method, secret_hash, jwks, delivery_mode, \
    notification_endpoint, require_signed_request, user_code_required, enabled, created_at, \
    department, risk_tier, description, tools, approver, bearer_only, dpop_jkt";

fn from_row(row: &AnyRow) -> Result<ClientRecord, StoreError> {
    Ok(ClientRecord {
        client_id: row.try_get("client_id")?,
        name: row.try_get("name")?,
        owner_subject: row.try_get("owner_subject")?,
        auth_method: row.try_get("auth_method")?,
        secret_hash: row.try_get("secret_hash")?,
        jwks: row.try_get("jwks")?,
        delivery_mode: row.try_get("delivery_mode")?,
        notification_endpoint: row.try_get("notification_endpoint")?,
        require_signed_request: flag(row.try_get("require_signed_request")?),
        user_code_required: flag(row.try_get("user_code_required")?),
        enabled: flag(row.try_get("enabled")?),
        created_at: row.try_get("created_at")?,
        department: row.try_get("department")?,
        risk_tier: row.try_get("risk_tier")?,
        description: row.try_get("description")?,
        tools: match row.try_get::<Option<String>, _>("tools")? {
            Some(json) => Some(
                serde_json::from_str(&json)
                    .map_err(|e| StoreError::Corrupt(format!("clients.tools: {e}")))?,
            ),
            None => None,
        },
        approver: row.try_get("approver")?,
        bearer_only: flag(row.try_get("bearer_only")?),
        dpop_jkt: row.try_get("dpop_jkt")?,
    })
}

/// The `client_id`s of `rows`, sorted.
fn sorted_ids(rows: &[AnyRow]) -> Result<Vec<String>, StoreError> {
    let mut ids = rows
        .iter()
        .map(|r| r.try_get("client_id"))
        .collect::<Result<Vec<String>, _>>()?;
    ids.sort();
    Ok(ids)
}

fn tools_json(tools: &Option<Vec<String>>) -> Option<String> {
    tools
        .as_ref()
        .map(|t| serde_json::Value::from(t.clone()).to_string())
}

impl Store {
    /// Registers `c` inside `tx`; `Conflict` when its client id is taken.
    pub async fn insert_client(&self, tx: &mut Tx<'_>, c: &ClientRecord) -> Result<(), StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO clients ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
        ));
        sqlx::query(sql)
            .bind(&c.client_id)
            .bind(&c.name)
            .bind(&c.owner_subject)
            .bind(&c.auth_method)
            .bind(&c.secret_hash)
            .bind(&c.jwks)
            .bind(&c.delivery_mode)
            .bind(&c.notification_endpoint)
            .bind(i64::from(c.require_signed_request))
            .bind(i64::from(c.user_code_required))
            .bind(i64::from(c.enabled))
            .bind(c.created_at)
            .bind(&c.department)
            .bind(&c.risk_tier)
            .bind(&c.description)
            .bind(tools_json(&c.tools))
            .bind(&c.approver)
            .bind(i64::from(c.bearer_only))
            .bind(&c.dpop_jkt)
            .execute(tx.conn())
            .await
            .map_err(StoreError::from_insert)?;
        self.directory_cache.clients.clear();
        Ok(())
    }

    pub async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let cache = &self.directory_cache.clients;
        if let Some(hit) = cache.get(&client_id.to_owned()) {
            return Ok(hit);
        }
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM clients WHERE client_id = $1"
        ));
        let row = sqlx::query(sql)
            .bind(client_id)
            .fetch_optional(self.reader())
            .await?;
        let client = row.as_ref().map(from_row).transpose()?;
        cache.put(client_id.to_owned(), client.clone());
        Ok(client)
    }

    /// `client_id` as `tx` sees it (uncached: the transaction may have just written it).
    pub async fn client_in(
        &self,
        tx: &mut Tx<'_>,
        client_id: &str,
    ) -> Result<Option<ClientRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM clients WHERE client_id = $1"
        ));
        let row = sqlx::query(sql)
            .bind(client_id)
            .fetch_optional(tx.conn())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM clients ORDER BY client_id"));
        let rows = sqlx::query(sql).fetch_all(self.reader()).await?;
        rows.iter().map(from_row).collect()
    }

    /// The clients `owner` owns, by client id.
    pub async fn clients_of_owner(&self, owner: &str) -> Result<Vec<ClientRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM clients WHERE owner_subject = $1 ORDER BY client_id"
        ));
        let rows = sqlx::query(sql)
            .bind(owner)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// How many clients are enabled and how many suspended.
    pub async fn count_clients(&self) -> Result<(i64, i64), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(CASE WHEN enabled = 1 THEN 1 END) AS on_, \
             COUNT(CASE WHEN enabled = 1 THEN NULL ELSE 1 END) AS off_ FROM clients",
        )
        .fetch_one(self.reader())
        .await?;
        Ok((row.try_get("on_")?, row.try_get("off_")?))
    }

    /// Up to `limit` clients after `after` (keyset order by client id) whose id, name or
    /// owner contains `search` (case-insensitive), for the console's list.
    pub async fn page_clients(
        &self,
        after: &str,
        search: &str,
        limit: i64,
    ) -> Result<Vec<ClientRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM clients WHERE client_id > $1 AND (LOWER(client_id) LIKE $2 ESCAPE '\\' \
             OR LOWER(name) LIKE $2 ESCAPE '\\' OR LOWER(owner_subject) LIKE $2 ESCAPE '\\') \
             ORDER BY client_id LIMIT $3"
        ));
        let rows = sqlx::query(sql)
            .bind(after)
            .bind(super::like_pattern(search))
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Enables or suspends `client_id` inside `tx`; false when no such client exists.
    pub async fn set_client_enabled(
        &self,
        tx: &mut Tx<'_>,
        client_id: &str,
        enabled: bool,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE clients SET enabled = $1 WHERE client_id = $2")
            .bind(i64::from(enabled))
            .bind(client_id)
            .execute(tx.conn())
            .await?;
        self.directory_cache.clients.clear();
        Ok(done.rows_affected() == 1)
    }

    /// Makes `owner` the owner of `client_id`, inside `tx`; false when no such client.
    pub async fn set_client_owner(
        &self,
        tx: &mut Tx<'_>,
        client_id: &str,
        owner: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE clients SET owner_subject = $1 WHERE client_id = $2")
            .bind(owner)
            .bind(client_id)
            .execute(tx.conn())
            .await?;
        self.directory_cache.clients.clear();
        Ok(done.rows_affected() == 1)
    }

    /// Hands every agent `from` owns to `to`, inside `tx`; returns their ids.
    pub async fn reassign_clients_of(
        &self,
        tx: &mut Tx<'_>,
        from: &str,
        to: &str,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "UPDATE clients SET owner_subject = $1 WHERE owner_subject = $2 RETURNING client_id",
        )
        .bind(to)
        .bind(from)
        .fetch_all(tx.conn())
        .await?;
        self.directory_cache.clients.clear();
        sorted_ids(&rows)
    }

    /// Suspends, inside `tx`, every enabled agent `owner` owns; returns their ids.
    pub async fn suspend_clients_of(
        &self,
        tx: &mut Tx<'_>,
        owner: &str,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "UPDATE clients SET enabled = 0 WHERE owner_subject = $1 AND enabled = 1 RETURNING client_id",
        )
        .bind(owner)
        .fetch_all(tx.conn())
        .await?;
        self.directory_cache.clients.clear();
        sorted_ids(&rows)
    }

    /// Changes what policies read of an agent, inside `tx`; false when no such client
    /// exists.
    pub async fn update_client_profile(
        &self,
        tx: &mut Tx<'_>,
        c: &ClientRecord,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE clients SET name = $2, department = $3, risk_tier = $4, description = $5, \
             tools = $6, approver = $7 WHERE client_id = $1",
        )
        .bind(&c.client_id)
        .bind(&c.name)
        .bind(&c.department)
        .bind(&c.risk_tier)
        .bind(&c.description)
        .bind(tools_json(&c.tools))
        .bind(&c.approver)
        .execute(tx.conn())
        .await?;
        self.directory_cache.clients.clear();
        Ok(done.rows_affected() == 1)
    }
}
