//! Read-only aggregates for the console's overview and integrations pages. Every query is
//! bounded by a time window on an indexed column (`audit_events (kind, at)`,
//! `push_outbox (failed_at)`, the pending-push partial index), so it stays fast however
//! long the trail grows: it reads only the window's rows, never the whole table.
//!
//! What a figure counts by (a decision's agent and outcome, a human decision's latency) is
//! read from the trail's facet columns (see `store::audit::facets`), never from the
//! events' JSON detail: parsing a day's details is what made these pages slow.

use sqlx::Row;

use super::{Store, StoreError};

/// The `decision.made` trail kind (see `policy::trace`).
const DECISION_MADE: &str = super::audit::EventKind::DecisionMade.as_str();

/// Decisions of one outcome in one minute of a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinuteCount {
    /// Minutes since the window's start (0-based).
    pub minute: i64,
    /// `allow`, `deny` or `step_up`.
    pub outcome: String,
    pub count: i64,
}

/// An agent's denials and step-ups: in the recent window, and in the baseline before it
/// (see [`Store::sampled_denials_and_step_ups`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentActivity {
    pub agent: String,
    pub recent: i64,
    pub baseline: i64,
}

/// Failed pushes of one channel with one error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushFailures {
    pub channel: String,
    pub reason: String,
    pub count: i64,
    pub last_at: i64,
}

/// The push outbox right now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PushDepth {
    /// Not yet delivered or given up.
    pub waiting: i64,
    /// Of those, rows that failed at least once and wait for a retry.
    pub retrying: i64,
    /// When the oldest waiting row was created.
    pub oldest_at: Option<i64>,
}

/// One source of trail events (an actor) in a window: how many and the newest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorCount {
    pub actor: String,
    pub count: i64,
    pub last_at: i64,
}

/// An API key as listed (never its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyListing {
    pub id: String,
    pub name: String,
    pub role: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// `(agent, n)` rows; a decision without an agent (none is written today) is nobody's.
fn per_agent(rows: &[sqlx::any::AnyRow]) -> Result<Vec<(String, i64)>, StoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        if let Some(agent) = r.try_get::<Option<String>, _>("agent")? {
            out.push((agent, r.try_get("n")?));
        }
    }
    Ok(out)
}

/// The `q` quantile (in 0..=1) of ascending `sorted` by nearest rank: the ceil(q * n)-th
/// smallest, 1-based; `None` when there are no values.
fn nearest_rank(sorted: &[i64], q: f64) -> Option<i64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as usize).clamp(1, n);
    Some(sorted[rank - 1])
}

/// How many agents with their own approver route the approvers page lists.
pub const ROUTES_LIMIT: i64 = 200;
/// How many roles the approvers page lists.
pub const ROLES_LIMIT: i64 = 100;

impl Store {
    /// Agents whose step-ups go to a route of their own (`approver`), by client id.
    pub async fn agent_routes(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT client_id, approver FROM clients WHERE approver IS NOT NULL \
             ORDER BY client_id LIMIT $1",
        )
        .bind(ROUTES_LIMIT)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("client_id")?, r.try_get("approver")?)))
            .collect()
    }

    /// The roles humans hold (what `@approver("role:NAME")` routes to) and how many
    /// active humans hold each, over the `humans_role` index.
    pub async fn roles_held(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT role, COUNT(*) AS n FROM humans WHERE role <> '' AND active = $1 \
             GROUP BY role ORDER BY role LIMIT $2",
        )
        .bind(1_i64)
        .bind(ROLES_LIMIT)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("role")?, r.try_get("n")?)))
            .collect()
    }

    /// Decisions per minute and outcome with `since_ms <= at < until_ms`.
    pub async fn decisions_per_minute(
        &self,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<MinuteCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT (at - $1) / 60000 AS minute, outcome, COUNT(*) AS n \
             FROM audit_events WHERE kind = $2 AND at >= $1 AND at < $3 \
             GROUP BY 1, 2 ORDER BY 1",
        )
        .bind(since_ms)
        .bind(DECISION_MADE)
        .bind(until_ms)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MinuteCount {
                    minute: r.try_get("minute")?,
                    outcome: r
                        .try_get::<Option<String>, _>("outcome")?
                        .unwrap_or_default(),
                    count: r.try_get("n")?,
                })
            })
            .collect()
    }

    /// How long humans took to decide (request created to decided, ms), for decisions
    /// recorded since `since_ms`: the `quantiles` (each in 0..=1, nearest rank) and the
    /// number of decisions. One walk of the `audit_events_latency` index: the window's
    /// latencies are sorted here. A day holds as many as humans decided in it, which
    /// people's pace bounds, unlike the decisions agents cause.
    pub async fn approval_latency(
        &self,
        since_ms: i64,
        quantiles: &[f64],
    ) -> Result<(i64, Vec<Option<i64>>), StoreError> {
        let rows = sqlx::query(
            "SELECT latency_ms FROM audit_events WHERE latency_ms IS NOT NULL AND at >= $1",
        )
        .bind(since_ms)
        .fetch_all(self.reader())
        .await?;
        let mut latencies = rows
            .iter()
            .map(|r| r.try_get::<i64, _>("latency_ms"))
            .collect::<Result<Vec<_>, _>>()?;
        latencies.sort_unstable();
        let values = quantiles
            .iter()
            .map(|q| nearest_rank(&latencies, *q))
            .collect();
        Ok((latencies.len() as i64, values))
    }

    /// How many events of each of `kinds` were recorded since `since_ms` (kinds with none
    /// are absent).
    pub async fn count_events_since(
        &self,
        kinds: &[&str],
        since_ms: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (2..=kinds.len() + 1).map(|i| format!("${i}")).collect();
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT kind, COUNT(*) AS n FROM audit_events WHERE at >= $1 AND kind IN ({}) \
             GROUP BY kind",
            placeholders.join(", ")
        ));
        let rows = kinds
            .iter()
            .fold(sqlx::query(sql).bind(since_ms), |q, k| q.bind(*k))
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("kind")?, r.try_get("n")?)))
            .collect()
    }

    /// Per agent, its denials and step-ups with `since_ms <= at < until_ms`, for agents
    /// with at least `min` of them; most first, at most `limit`.
    pub async fn denials_and_step_ups_by_agent(
        &self,
        since_ms: i64,
        until_ms: i64,
        min: i64,
        limit: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT agent, COUNT(*) AS n FROM audit_events \
             WHERE kind = $1 AND at >= $2 AND at < $3 AND outcome IN ('deny', 'step_up') \
             GROUP BY agent HAVING COUNT(*) >= $4 ORDER BY n DESC, agent LIMIT $5",
        )
        .bind(DECISION_MADE)
        .bind(since_ms)
        .bind(until_ms)
        .bind(min)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        per_agent(&rows)
    }

    /// An hourly baseline that costs the same however busy the window was: denials and
    /// step-ups per agent among the newest `sample` decisions with `since_ms <= at <
    /// until_ms`, and how far back those decisions reach (`since_ms` when the window
    /// holds fewer than `sample`).
    pub async fn sampled_denials_and_step_ups(
        &self,
        since_ms: i64,
        until_ms: i64,
        sample: i64,
    ) -> Result<(Vec<(String, i64)>, i64), StoreError> {
        const NEWEST: &str = "FROM audit_events WHERE kind = $1 AND at >= $2 AND at < $3 \
                              ORDER BY at DESC LIMIT $4";
        let reach = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n, MIN(at) AS oldest FROM (SELECT at {NEWEST}) s"
        )))
        .bind(DECISION_MADE)
        .bind(since_ms)
        .bind(until_ms)
        .bind(sample)
        .fetch_one(self.reader())
        .await?;
        let n: i64 = reach.try_get("n")?;
        let oldest: Option<i64> = reach.try_get("oldest")?;
        let from = if n < sample {
            since_ms
        } else {
            oldest.unwrap_or(since_ms)
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT agent, COUNT(*) AS n FROM (SELECT agent, outcome {NEWEST}) s \
             WHERE outcome IN ('deny', 'step_up') GROUP BY agent"
        )))
        .bind(DECISION_MADE)
        .bind(since_ms)
        .bind(until_ms)
        .bind(sample)
        .fetch_all(self.reader())
        .await?;
        Ok((per_agent(&rows)?, from))
    }

    /// Events of `kind` since `since_ms` per actor (e.g. `signal.received` per
    /// transmitter, whose actor is `ssf:ISSUER`).
    pub async fn events_by_actor_since(
        &self,
        kind: &str,
        since_ms: i64,
    ) -> Result<Vec<ActorCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT actor, COUNT(*) AS n, MAX(at) AS last_at FROM audit_events \
             WHERE kind = $1 AND at >= $2 GROUP BY actor ORDER BY actor",
        )
        .bind(kind)
        .bind(since_ms)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ActorCount {
                    actor: r.try_get("actor")?,
                    count: r.try_get("n")?,
                    last_at: r.try_get("last_at")?,
                })
            })
            .collect()
    }

    /// The newest event of `kind` about `subject`: (at, actor, detail). Read through the
    /// subject index.
    pub async fn latest_event_about(
        &self,
        subject: &str,
        kind: &str,
    ) -> Result<Option<(i64, String, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT at, actor, detail FROM audit_events WHERE subject = $1 AND kind = $2 \
             ORDER BY seq DESC LIMIT 1",
        )
        .bind(subject)
        .bind(kind)
        .fetch_optional(self.reader())
        .await?;
        Ok(match row {
            Some(r) => Some((r.try_get("at")?, r.try_get("actor")?, r.try_get("detail")?)),
            None => None,
        })
    }

    /// Suspended agents (id, name), by id, at most `limit`.
    pub async fn suspended_clients(&self, limit: i64) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT client_id, name FROM clients WHERE enabled = 0 ORDER BY client_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("client_id")?, r.try_get("name")?)))
            .collect()
    }

    /// The push outbox's rows waiting to be sent (read through its partial index).
    pub async fn push_depth(&self) -> Result<PushDepth, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, COUNT(CASE WHEN attempts > 0 THEN 1 END) AS retrying, \
             MIN(created_at) AS oldest FROM push_outbox \
             WHERE delivered_at IS NULL AND failed_at IS NULL",
        )
        .fetch_one(self.reader())
        .await?;
        Ok(PushDepth {
            waiting: row.try_get("n")?,
            retrying: row.try_get("retrying")?,
            oldest_at: row.try_get("oldest")?,
        })
    }

    /// Pushes given up since `since_ms`, by channel and error, most first (at most
    /// `limit` groups).
    pub async fn push_failures_since(
        &self,
        since_ms: i64,
        limit: i64,
    ) -> Result<Vec<PushFailures>, StoreError> {
        let rows = sqlx::query(
            "SELECT channel, COALESCE(last_error, '') AS reason, COUNT(*) AS n, \
             MAX(failed_at) AS last_at FROM push_outbox WHERE failed_at >= $1 \
             GROUP BY channel, COALESCE(last_error, '') ORDER BY n DESC, channel, reason \
             LIMIT $2",
        )
        .bind(since_ms)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PushFailures {
                    channel: r.try_get("channel")?,
                    reason: r.try_get("reason")?,
                    count: r.try_get("n")?,
                    last_at: r.try_get("last_at")?,
                })
            })
            .collect()
    }

    /// API keys of `scope` (`admin` or `scim`), newest first, at most `limit`; sessions
    /// the console and single sign-on made (names `console session: ...`, `sso session:
    /// ...`) only while live at `now_ms`.
    pub async fn list_admin_keys(
        &self,
        scope: &str,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<KeyListing>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, role, created_at, expires_at, revoked_at FROM admin_keys \
             WHERE scope = $1 AND NOT ((name LIKE 'console session:%' OR name LIKE 'sso session:%') \
               AND (revoked_at IS NOT NULL OR (expires_at IS NOT NULL AND expires_at <= $2))) \
             ORDER BY created_at DESC, id LIMIT $3",
        )
        .bind(scope)
        .bind(now_ms)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(KeyListing {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    role: r.try_get("role")?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::store::audit::NewAuditRecord;
    use crate::store::testing::{each_backend, each_backend_migrated_through};

    fn decision(at: i64, agent: &str, outcome: &str) -> NewAuditRecord {
        NewAuditRecord {
            at,
            actor: "test".into(),
            kind: super::DECISION_MADE.into(),
            subject: format!("r{at}"),
            detail: json!({"agent": agent, "action": "x", "outcome": outcome}).to_string(),
        }
    }

    fn human_decision(at: i64, approved: bool, waited_ms: i64) -> NewAuditRecord {
        NewAuditRecord {
            at,
            actor: "human:alice".into(),
            kind: if approved {
                "request.approved"
            } else {
                "request.denied"
            }
            .into(),
            subject: format!("r{at}"),
            detail: json!({"agent": "a", "user": "alice", "waited_ms": waited_ms}).to_string(),
        }
    }

    #[test]
    fn nearest_rank_takes_the_ceiling_rank() {
        let sorted = [10, 20, 30, 40];
        assert_eq!(super::nearest_rank(&sorted, 0.5), Some(20));
        assert_eq!(super::nearest_rank(&sorted, 0.51), Some(30));
        assert_eq!(super::nearest_rank(&sorted, 0.95), Some(40));
        assert_eq!(super::nearest_rank(&sorted, 0.0), Some(10));
        assert_eq!(super::nearest_rank(&sorted, 7.0), Some(40));
        assert_eq!(super::nearest_rank(&[], 0.5), None);
    }

    #[tokio::test]
    async fn approval_latency_reads_the_humans_decisions_in_the_window() {
        each_backend(|store| async move {
            let base = 10 * 3_600_000;
            let mut events = vec![
                human_decision(base - 1, true, 1),  // before the window
                decision(base + 5, "a", "step_up"), // a policy's decision has no latency
            ];
            for (i, waited) in [5_000, 1_000, 60_000, 2_000, 30_000]
                .into_iter()
                .enumerate()
            {
                events.push(human_decision(base + 10 + i as i64, i % 2 == 0, waited));
            }
            let mut tx = store.begin().await.unwrap();
            store.append_audit_events(&mut tx, &events).await.unwrap();
            tx.commit().await.unwrap();
            let (n, quantiles) = store.approval_latency(base, &[0.5, 0.95]).await.unwrap();
            assert_eq!(n, 5);
            assert_eq!(quantiles, [Some(5_000), Some(60_000)]);
            let (n, quantiles) = store.approval_latency(base + 100, &[0.5]).await.unwrap();
            assert_eq!((n, quantiles), (0, vec![None]));
        })
        .await;
    }

    /// Migration 0018: decisions recorded before it (no `waited_ms` in their detail) get
    /// their latency from their request.
    #[tokio::test]
    async fn migration_18_fills_the_latency_of_earlier_decisions_from_their_requests() {
        use crate::store::auth_requests::{AuthRequestRecord, AuthRequestStatus};
        each_backend_migrated_through(17, |store| async move {
            crate::store::auth_requests::tests::seed(&store).await;
            let request = AuthRequestRecord {
                id: "r1".into(),
                client_id: "agent".into(),
                subject: "alice".into(),
                scope: "openid".into(),
                delivery_mode: countersign_shared::DeliveryMode::Poll,
                status: AuthRequestStatus::Pending,
                created_at: 1_000,
                expires_at: 1_000_000,
                interval_secs: 5,
                ..AuthRequestRecord::default()
            };
            store.insert_auth_request(&request).await.unwrap();
            sqlx::query("UPDATE auth_requests SET status = 'approved', decided_at = 8000 WHERE id = 'r1'")
                .execute(store.writer())
                .await
                .unwrap();
            // The row version 17's server appended (no latency column yet).
            sqlx::query(
                "INSERT INTO audit_events (seq, at, actor, kind, subject, detail, prev_hash, hash, \
                 agent, human, outcome) VALUES (1, 8000, 'human:alice', 'request.approved', 'r1', \
                 '{\"agent\":\"agent\",\"user\":\"alice\"}', 'p', 'h', 'agent', 'alice', 'approved')",
            )
            .execute(store.writer())
            .await
            .unwrap();
            store.migrate().await.unwrap();
            let (n, quantiles) = store.approval_latency(0, &[0.5]).await.unwrap();
            assert_eq!((n, quantiles), (1, vec![Some(7_000)]));
        })
        .await;
    }

    #[tokio::test]
    async fn decisions_are_counted_per_minute_outcome_and_agent_within_the_window() {
        each_backend(|store| async move {
            let base = 10 * 3_600_000;
            let events = vec![
                decision(base - 1, "a", "allow"), // before the window
                decision(base, "a", "allow"),
                decision(base + 30_000, "a", "allow"),
                decision(base + 60_000, "a", "deny"),
                decision(base + 61_000, "b", "step_up"),
                decision(base + 3_600_000, "a", "deny"), // at the window's end: excluded
            ];
            let mut tx = store.begin().await.unwrap();
            store.append_audit_events(&mut tx, &events).await.unwrap();
            tx.commit().await.unwrap();
            let got = store
                .decisions_per_minute(base, base + 3_600_000)
                .await
                .unwrap();
            let got: Vec<_> = got
                .iter()
                .map(|m| (m.minute, m.outcome.as_str(), m.count))
                .collect();
            assert_eq!(got.len(), 3, "{got:?}");
            assert!(got.contains(&(0, "allow", 2)));
            assert!(got.contains(&(1, "deny", 1)));
            assert!(got.contains(&(1, "step_up", 1)));

            let recent = store
                .denials_and_step_ups_by_agent(base, base + 4_000_000, 1, 10)
                .await
                .unwrap();
            assert_eq!(recent, [("a".to_owned(), 2), ("b".to_owned(), 1)]);
            let (baseline, from) = store
                .sampled_denials_and_step_ups(0, base + 4_000_000, 100)
                .await
                .unwrap();
            assert_eq!(from, 0, "fewer than the sample: the whole window");
            assert_eq!(baseline.len(), 2);
            // A sample of the newest two decisions reaches back to the second newest.
            let (mut baseline, from) = store
                .sampled_denials_and_step_ups(0, base + 4_000_000, 2)
                .await
                .unwrap();
            assert_eq!(from, base + 61_000);
            baseline.sort();
            assert_eq!(baseline, [("a".to_owned(), 1), ("b".to_owned(), 1)]);
        })
        .await;
    }
}
