//! The `agent_sessions` aggregate: what an agent's task or session did so far (how many
//! actions, the data classifications it read, the action classes it performed), for
//! policies that compose, like "nothing external after a confidential read".

use std::collections::{BTreeMap, BTreeSet};

use sqlx::Row;

use super::{Store, StoreError};
use crate::ids::ClientId;

/// One action to add to a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUpdate {
    pub client_id: ClientId,
    pub session_id: String,
    pub at_ms: i64,
    /// The action's class (`read`, `external`, ...).
    pub class: String,
    /// The data classification read, for a read.
    pub classification: Option<String>,
}

/// What a session did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionRecord {
    pub actions: i64,
    pub classifications: Vec<String>,
    pub classes: Vec<String>,
}

/// Rows per statement: 64 × 5 parameters stays far below both backends' limits.
const CHUNK: usize = 64;

/// Records `updates` on `conn` (inside the caller's transaction): every session's count
/// in one multi-row statement and every new fact in another, however many updates a
/// batch holds (one statement each was two or three round trips per decision to
/// SQLite's connection thread). Facts are rows of their own, so recording needs no read
/// and concurrent batches cannot lose each other's.
pub(crate) async fn record_all_on(
    conn: &mut sqlx::AnyConnection,
    updates: &[&SessionUpdate],
) -> Result<(), StoreError> {
    // Per session: how many actions, the first and the last time. One row per key, as
    // PostgreSQL refuses a statement that updates the same row twice.
    let mut counts: BTreeMap<(&str, &str), (i64, i64, i64)> = BTreeMap::new();
    let mut facts: BTreeSet<(&str, &str, &str, &str)> = BTreeSet::new();
    for u in updates {
        let key = (u.client_id.as_str(), u.session_id.as_str());
        let entry = counts.entry(key).or_insert((0, u.at_ms, u.at_ms));
        *entry = (entry.0 + 1, entry.1.min(u.at_ms), entry.2.max(u.at_ms));
        let kinds = [
            ("class", Some(&u.class)),
            ("classification", u.classification.as_ref()),
        ];
        for (kind, value) in kinds {
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                facts.insert((key.0, key.1, kind, value));
            }
        }
    }
    let params = super::Params::of(conn);
    let counts: Vec<_> = counts.into_iter().collect();
    for chunk in counts.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO agent_sessions (client_id, session_id, actions, first_at, last_at) \
             VALUES {} ON CONFLICT (client_id, session_id) DO UPDATE SET \
             actions = agent_sessions.actions + excluded.actions, \
             last_at = CASE WHEN excluded.last_at > agent_sessions.last_at \
               THEN excluded.last_at ELSE agent_sessions.last_at END",
            super::placeholders_as(params, 0, chunk.len(), 5)
        );
        let query = chunk.iter().fold(
            sqlx::query(sqlx::AssertSqlSafe(sql)),
            |q, ((client_id, session_id), (actions, first, last))| {
                q.bind(*client_id)
                    .bind(*session_id)
                    .bind(*actions)
                    .bind(*first)
                    .bind(*last)
            },
        );
        query.execute(&mut *conn).await?;
    }
    let facts: Vec<_> = facts.into_iter().collect();
    for chunk in facts.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO agent_session_facts (client_id, session_id, kind, value) \
             VALUES {} ON CONFLICT DO NOTHING",
            super::placeholders_as(params, 0, chunk.len(), 4)
        );
        let query = chunk.iter().fold(
            sqlx::query(sqlx::AssertSqlSafe(sql)),
            |q, (client_id, session_id, kind, value)| {
                q.bind(*client_id)
                    .bind(*session_id)
                    .bind(*kind)
                    .bind(*value)
            },
        );
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

impl Store {
    /// What session `session_id` of `client_id` did so far (empty when it is new).
    pub async fn session(
        &self,
        client_id: &str,
        session_id: &str,
    ) -> Result<SessionRecord, StoreError> {
        let mut record = SessionRecord::default();
        let row = sqlx::query(
            "SELECT actions FROM agent_sessions WHERE client_id = $1 AND session_id = $2",
        )
        .bind(client_id)
        .bind(session_id)
        .fetch_optional(self.reader())
        .await?;
        let Some(row) = row else {
            return Ok(record);
        };
        record.actions = row.try_get("actions")?;
        let facts = sqlx::query(
            "SELECT kind, value FROM agent_session_facts WHERE client_id = $1 AND session_id = $2 \
             ORDER BY kind, value",
        )
        .bind(client_id)
        .bind(session_id)
        .fetch_all(self.reader())
        .await?;
        for f in facts {
            let (kind, value): (String, String) = (f.try_get("kind")?, f.try_get("value")?);
            match kind.as_str() {
                "classification" => record.classifications.push(value),
                _ => record.classes.push(value),
            }
        }
        Ok(record)
    }
}
