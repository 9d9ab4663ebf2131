//! Reading the trail by what its events are about: the console's decision trace, one
//! event, and the approvals of an agent's access. Every query walks an index (the facet
//! columns of migration 0013, `seq`, `subject`) with a bounded LIMIT.

use sqlx::Row;

use super::{AuditRecord, COLUMNS, from_row};
use crate::store::{Store, StoreError};

/// Which events the trace shows; every field narrows it (blank / `None`: any).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceFilter {
    /// Exactly this subject (`agent:ID`, `human:SUBJECT`, a request or credential id).
    pub subject: String,
    /// Kinds starting with this.
    pub kind_prefix: String,
    pub agent: String,
    /// The human a decision was made for.
    pub human: String,
    /// `allow`, `step_up`, `deny`, `approved`, `denied`.
    pub outcome: String,
    /// The policy that determined the outcome, and its version.
    pub policy_id: String,
    pub policy_version: Option<i64>,
    /// Unix milliseconds: `since_ms <= at < until_ms`.
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
}

#[derive(Clone)]
enum Param {
    Text(String),
    Int(i64),
}

/// Most kinds a kind prefix is expanded to (the server writes about 40).
const MAX_KINDS: usize = 64;

impl Store {
    /// Up to `limit` events before `before_seq` matching `filter`, newest first (keyset
    /// pagination: the next page is before the last one's `seq`). A time range is first
    /// turned into a range of `seq` through the `at` index, so the scan stays within it;
    /// `at` is then checked exactly.
    pub async fn page_trace(
        &self,
        filter: &TraceFilter,
        before_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let mut before = before_seq;
        // Each condition with its one `?` parameter.
        let mut conditions: Vec<(String, Param)> = Vec::new();
        let mut add =
            |condition: &str, param: Param| conditions.push((condition.to_owned(), param));
        if let Some(until) = filter.until_ms {
            let last = sqlx::query(
                "SELECT seq FROM audit_events WHERE at < $1 ORDER BY at DESC, seq DESC LIMIT 1",
            )
            .bind(until)
            .fetch_optional(self.reader())
            .await?;
            let Some(last) = last else {
                return Ok(Vec::new());
            };
            before = before.min(last.try_get::<i64, _>("seq")?.saturating_add(1));
            add("at < ?", Param::Int(until));
        }
        if let Some(since) = filter.since_ms {
            let first =
                sqlx::query("SELECT seq FROM audit_events WHERE at >= $1 ORDER BY at, seq LIMIT 1")
                    .bind(since)
                    .fetch_optional(self.reader())
                    .await?;
            let Some(first) = first else {
                return Ok(Vec::new());
            };
            add("seq >= ?", Param::Int(first.try_get("seq")?));
            add("at >= ?", Param::Int(since));
        }
        add("seq < ?", Param::Int(before));
        let indexed = facet_conditions(filter, &mut add);
        if filter.kind_prefix.is_empty() {
            return self.select_page(&conditions, limit).await;
        }
        if indexed {
            // `%prefix%` without its leading `%`: a prefix match, on the rows the facet's
            // index yields.
            let pattern = super::super::like_pattern(&filter.kind_prefix);
            add(
                "kind || '' LIKE ? ESCAPE '\\'",
                Param::Text(pattern[1..].to_owned()),
            );
            return self.select_page(&conditions, limit).await;
        }
        // The kind alone: each kind it covers walks the (kind, seq) index newest first,
        // and the pages merge (a LIKE would walk the whole trail for a rare kind, a range
        // on the index sort every event of a common one).
        let mut merged = Vec::new();
        for kind in self.kinds_starting_with(&filter.kind_prefix).await? {
            let mut these = conditions.clone();
            these.push(("kind = ?".to_owned(), Param::Text(kind)));
            merged.extend(self.select_page(&these, limit).await?);
        }
        merged.sort_by_key(|e| std::cmp::Reverse(e.seq));
        merged.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(merged)
    }

    /// Events matching every condition, newest first, at most `limit`.
    async fn select_page(
        &self,
        conditions: &[(String, Param)],
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let mut clauses = Vec::new();
        for (i, (condition, _)) in conditions.iter().enumerate() {
            clauses.push(condition.replace('?', &format!("${}", i + 1)));
        }
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_events WHERE {} ORDER BY seq DESC LIMIT ${}",
            clauses.join(" AND "),
            conditions.len() + 1
        ));
        let query = conditions
            .iter()
            .fold(sqlx::query(sql), |q, (_, p)| match p.clone() {
                Param::Text(t) => q.bind(t),
                Param::Int(i) => q.bind(i),
            });
        let rows = query.bind(limit).fetch_all(self.reader()).await?;
        rows.iter().map(from_row).collect()
    }

    /// The distinct kinds starting with `prefix` (lower-cased), at most [`MAX_KINDS`]:
    /// one index probe each.
    async fn kinds_starting_with(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let prefix = prefix.to_lowercase();
        let mut kinds: Vec<String> = Vec::new();
        while kinds.len() < MAX_KINDS {
            let (condition, after) = match kinds.last() {
                None => ("kind >= $1", prefix.clone()),
                Some(last) => ("kind > $1", last.clone()),
            };
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT kind FROM audit_events WHERE {condition} ORDER BY kind LIMIT 1"
            ));
            let row = sqlx::query(sql)
                .bind(after)
                .fetch_optional(self.reader())
                .await?;
            match row {
                Some(row) => {
                    let kind: String = row.try_get("kind")?;
                    if !kind.starts_with(&prefix) {
                        break;
                    }
                    kinds.push(kind);
                }
                None => break,
            }
        }
        Ok(kinds)
    }

    /// Event `seq`, if the trail has it.
    pub async fn audit_event(&self, seq: i64) -> Result<Option<AuditRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM audit_events WHERE seq = $1"));
        let row = sqlx::query(sql)
            .bind(seq)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// The events about `subject` (a request's decision, approval...), oldest first, at
    /// most `limit`.
    pub async fn audit_events_about(
        &self,
        subject: &str,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_events WHERE subject = $1 ORDER BY seq LIMIT $2"
        ));
        let rows = sqlx::query(sql)
            .bind(subject)
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// The newest decisions (at most `limit`, at or after `since_ms`) that let `agent` act
    /// on `resource` (any when `None`): `allow` (by policy) or `step_up` (a human asked).
    pub async fn approving_decisions(
        &self,
        agent: &str,
        resource: Option<&str>,
        since_ms: i64,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        // Walks the agent's index newest first; the rest is checked on its rows (only
        // decisions have these outcomes; `|| ''` and `+ 0` keep SQLite's planner, which
        // has no statistics, off the outcome, resource and time indexes).
        let resource_condition = match resource {
            Some(_) => "resource || '' = $4",
            None => "$4 = ''",
        };
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_events WHERE agent = $1 \
             AND outcome || '' IN ('allow', 'step_up') AND {resource_condition} AND at + 0 >= $2 \
             ORDER BY seq DESC LIMIT $3"
        ));
        let rows = sqlx::query(sql)
            .bind(agent)
            .bind(since_ms)
            .bind(limit)
            .bind(resource.unwrap_or(""))
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(from_row)
            .filter(|r| !matches!(r, Ok(e) if e.kind != "decision.made"))
            .collect()
    }

    /// The humans' decisions (`request.approved`, `request.denied`) on the requests
    /// `ids`, oldest first.
    pub async fn human_decisions_on(&self, ids: &[String]) -> Result<Vec<AuditRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // By the subject index alone: a request has a handful of events; the kind is
        // checked here (a kind condition in SQL lets SQLite walk the kind index instead).
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_events WHERE subject IN ({}) LIMIT {}",
            in_list(ids.len()),
            16 * ids.len()
        ));
        let query = ids
            .iter()
            .fold(sqlx::query(sql), |q, id| q.bind(id.clone()));
        let rows = query.fetch_all(self.reader()).await?;
        let mut events = rows
            .iter()
            .map(from_row)
            .filter(|r| {
                !matches!(r, Ok(e) if e.kind != "request.approved" && e.kind != "request.denied")
            })
            .collect::<Result<Vec<_>, _>>()?;
        events.sort_by_key(|e| e.seq);
        Ok(events)
    }

    /// The credentials (request id, jti) issued for the requests `ids`.
    pub async fn credentials_of_requests(
        &self,
        ids: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT id, token_jti FROM auth_requests WHERE id IN ({}) AND token_jti IS NOT NULL",
            in_list(ids.len())
        ));
        let query = ids
            .iter()
            .fold(sqlx::query(sql), |q, id| q.bind(id.clone()));
        let rows = query.fetch_all(self.reader()).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("token_jti")?)))
            .collect()
    }

    /// When each of the agents `ids` last had a decision traced (Unix milliseconds):
    /// one index probe per agent.
    pub async fn last_decisions(&self, ids: &[String]) -> Result<Vec<(String, i64)>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT client_id, (SELECT e.at FROM audit_events e WHERE e.agent = c.client_id \
             ORDER BY e.seq DESC LIMIT 1) AS last_at FROM clients c WHERE c.client_id IN ({})",
            in_list(ids.len())
        ));
        let query = ids
            .iter()
            .fold(sqlx::query(sql), |q, id| q.bind(id.clone()));
        let rows = query.fetch_all(self.reader()).await?;
        let mut out = Vec::new();
        for row in &rows {
            if let Some(at) = row.try_get::<Option<i64>, _>("last_at")? {
                out.push((row.try_get("client_id")?, at));
            }
        }
        Ok(out)
    }
}

/// `$1, $2, ... $n`.
fn in_list(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The facets' conditions. The first field given, in this order (the most selective
/// first, as a rule), picks the index the scan walks; the others are checked on its rows
/// (`|| ''` keeps a planner without statistics, SQLite's, from walking a less selective
/// index instead, such as every `allow` in the trail for one agent's). Returns whether a
/// facet picked the index.
fn facet_conditions(filter: &TraceFilter, add: &mut impl FnMut(&str, Param)) -> bool {
    let texts = [
        ("subject", &filter.subject),
        ("human", &filter.human),
        ("agent", &filter.agent),
        ("policy_id", &filter.policy_id),
        ("outcome", &filter.outcome),
    ];
    let mut indexed = false;
    for (column, value) in texts {
        if !value.is_empty() {
            let condition = if std::mem::replace(&mut indexed, true) {
                format!("{column} || '' = ?")
            } else {
                format!("{column} = ?")
            };
            add(&condition, Param::Text(value.clone()));
        }
    }
    if let Some(version) = filter.policy_version {
        // With its policy id, the policy index holds the version too.
        let condition = if filter.policy_id.is_empty()
            || filter.subject.len() + filter.human.len() + filter.agent.len() > 0
        {
            "policy_version + 0 = ?"
        } else {
            "policy_version = ?"
        };
        add(condition, Param::Int(version));
    }
    indexed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::audit::NewAuditRecord;
    use crate::store::testing::each_backend;

    fn event(at: i64, kind: &str, detail: &str) -> NewAuditRecord {
        NewAuditRecord {
            at,
            actor: "system".into(),
            kind: kind.into(),
            subject: format!("req-{at}"),
            detail: detail.into(),
        }
    }

    #[tokio::test]
    async fn trace_filters_by_facet_and_time_in_the_database() {
        each_backend(|store| async move {
            let events = [
                event(1000, "decision.made", r#"{"agent":"a","user":"h","outcome":"allow","resource":"r","policies":[{"id":"p","version":1}]}"#),
                event(2000, "decision.made", r#"{"agent":"a","user":"h","outcome":"deny","resource":"r","policies":[{"id":"p","version":2}]}"#),
                event(3000, "request.approved", r#"{"agent":"b","user":"h","approver":"m","policies":[{"id":"q","version":1}]}"#),
                event(4000, "agent.suspended", r#"{"agent":"a"}"#),
            ];
            let mut tx = store.begin().await.expect("begin");
            store.append_audit_events(&mut tx, &events).await.expect("append");
            tx.commit().await.expect("commit");
            let seqs = |records: Vec<AuditRecord>| records.iter().map(|r| r.seq).collect::<Vec<_>>();
            let page = |f: TraceFilter| {
                let store = store.clone();
                async move { seqs(store.page_trace(&f, i64::MAX, 10).await.expect("page")) }
            };
            assert_eq!(page(TraceFilter { agent: "a".into(), ..Default::default() }).await, [2, 1]);
            assert_eq!(page(TraceFilter { outcome: "deny".into(), ..Default::default() }).await, [2]);
            assert_eq!(page(TraceFilter { outcome: "approved".into(), ..Default::default() }).await, [3]);
            assert_eq!(page(TraceFilter { human: "h".into(), ..Default::default() }).await, [3, 2, 1]);
            assert_eq!(
                page(TraceFilter { policy_id: "p".into(), policy_version: Some(2), ..Default::default() }).await,
                [2]
            );
            assert_eq!(
                page(TraceFilter { since_ms: Some(2000), until_ms: Some(4000), ..Default::default() }).await,
                [3, 2]
            );
            assert_eq!(page(TraceFilter { until_ms: Some(500), ..Default::default() }).await, Vec::<i64>::new());
            assert_eq!(page(TraceFilter { kind_prefix: "request.".into(), ..Default::default() }).await, [3]);
            assert_eq!(page(TraceFilter { kind_prefix: "Request.".into(), ..Default::default() }).await, [3]);
            assert_eq!(page(TraceFilter { kind_prefix: "a".into(), ..Default::default() }).await, [4]);
            assert_eq!(page(TraceFilter { kind_prefix: "".into(), ..Default::default() }).await, [4, 3, 2, 1]);
            assert_eq!(
                page(TraceFilter { kind_prefix: "de".into(), human: "h".into(), ..Default::default() }).await,
                [2, 1]
            );
            assert_eq!(page(TraceFilter { kind_prefix: "zz".into(), ..Default::default() }).await, Vec::<i64>::new());
            // Kinds merge newest first across the kinds a prefix covers.
            assert_eq!(seqs(store.page_trace(&TraceFilter { kind_prefix: "re".into(), ..Default::default() }, 4, 5).await.expect("page")), [3]);
            assert_eq!(seqs(store.page_trace(&TraceFilter::default(), 3, 1).await.expect("page")), [2]);
            let approving = store.approving_decisions("a", Some("r"), 0, 10).await.expect("approving");
            assert_eq!(seqs(approving), [1]);
            assert_eq!(store.audit_event(3).await.expect("one").map(|e| e.kind).as_deref(), Some("request.approved"));
        })
        .await;
    }
}
