//! The `agent_sessions` aggregate: what an agent's task or session did so far (how many
//! actions, the data classifications it read, the action classes it performed), for
//! policies that compose, like "nothing external after a confidential read".

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

/// Records `u` on `conn` (inside the caller's transaction). Facts are rows of their own,
/// so recording one needs no read and concurrent updates cannot lose each other's.
pub(crate) async fn record_on(
    conn: &mut sqlx::AnyConnection,
    u: &SessionUpdate,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO agent_sessions (client_id, session_id, actions, first_at, last_at) \
         VALUES ($1, $2, 1, $3, $3) ON CONFLICT (client_id, session_id) \
         DO UPDATE SET actions = agent_sessions.actions + 1, last_at = $3",
    )
    .bind(&u.client_id)
    .bind(&u.session_id)
    .bind(u.at_ms)
    .execute(&mut *conn)
    .await?;
    let facts = [
        ("class", Some(&u.class)),
        ("classification", u.classification.as_ref()),
    ];
    for (kind, value) in facts {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            continue;
        };
        sqlx::query(
            "INSERT INTO agent_session_facts (client_id, session_id, kind, value) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(&u.client_id)
        .bind(&u.session_id)
        .bind(kind)
        .bind(value)
        .execute(&mut *conn)
        .await?;
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
