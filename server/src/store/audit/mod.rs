//! The `audit_events` aggregate: an append-only, hash-chained list of events. This module
//! only stores and reads; chaining and verification are [`crate::audit`]'s.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, Tx, baselines};

mod checkpoints;
pub mod facets;
pub mod kinds;
pub mod trace;

pub use checkpoints::CheckpointRecord;
pub use kinds::EventKind;

/// One stored event, exactly as hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub seq: i64,
    /// Unix milliseconds.
    pub at: i64,
    pub actor: String,
    pub kind: String,
    pub subject: String,
    /// JSON text.
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The last event's sequence number and hash (`0`, `genesis` for an empty trail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    pub seq: i64,
    pub hash: String,
}

pub(crate) const COLUMNS: &str = "seq, at, actor, kind, subject, detail, prev_hash, hash";

/// The columns an append writes: the event and its [`facets`].
fn insert_columns() -> String {
    format!("{COLUMNS}, {}", facets::COLUMNS)
}

/// Parameters per appended event.
const INSERT_PARAMS: usize = 8 + facets::COUNT;

pub(crate) fn from_row(row: &AnyRow) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        seq: row.try_get("seq")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        kind: row.try_get("kind")?,
        subject: row.try_get("subject")?,
        detail: row.try_get("detail")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// An event to append: everything but its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditRecord {
    pub at: i64,
    pub actor: String,
    pub kind: String,
    pub subject: String,
    /// JSON text.
    pub detail: String,
}

/// The first event's `prev_hash`.
pub const GENESIS: &str = "genesis";

/// The hash of an event: SHA-256 over the JSON array
/// `[seq, at, actor, kind, subject, detail, prev_hash]`, hex encoded.
pub fn event_hash(
    seq: i64,
    at: i64,
    actor: &str,
    kind: &str,
    subject: &str,
    detail: &str,
    prev_hash: &str,
) -> String {
    use sha2::Digest as _;
    // Serialized straight into the hasher: the same bytes as the JSON array's compact
    // text, without building it (this runs once per traced decision).
    let mut hasher = HashWriter(sha2::Sha256::new());
    let preimage = (seq, at, actor, kind, subject, detail, prev_hash);
    // Writing into a hasher cannot fail, and the tuple is always serializable.
    let _ = serde_json::to_writer(&mut hasher, &preimage);
    hex(&hasher.0.finalize())
}

impl AuditRecord {
    /// The hash of this event's own fields: what `hash` is, unless the event was edited.
    pub fn fields_hash(&self) -> String {
        event_hash(
            self.seq,
            self.at,
            &self.actor,
            &self.kind,
            &self.subject,
            &self.detail,
            &self.prev_hash,
        )
    }
}

struct HashWriter(sha2::Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        sha2::Digest::update(&mut self.0, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * bytes.len());
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// 64 events × 14 columns per statement keeps within bind-parameter limits.
const INSERT_CHUNK: usize = 64;

/// The chain's head as this process last wrote it. An append that guesses right writes
/// the new head with a conditional UPDATE (on PostgreSQL, in the same statement as its
/// first events) instead of first reading the head under lock: one round trip fewer
/// while every other appender waits for the head row. The database stays the judge: a
/// wrong guess (another replica appended, or the guessing transaction rolled back)
/// changes nothing, and the append falls back to reading the head.
///
/// Appends in this process take the guess in turn, from reading it to writing the new
/// head (so the second of two concurrent appends guesses the first's head, and its
/// UPDATE waits for the first's commit instead of missing). That cannot deadlock with
/// the head row's lock as long as a transaction takes the guess at most once: whoever
/// holds the row lock has then finished with the guess ([`super::Tx`] enforces it).
#[derive(Debug, Default)]
pub(crate) struct HeadGuess(tokio::sync::Mutex<Option<AuditHead>>);

/// The guess, taken.
pub(crate) type HeadGuard<'a> = tokio::sync::MutexGuard<'a, Option<AuditHead>>;

impl HeadGuess {
    /// Takes the guess, waiting for any append in this process that has it.
    pub(crate) async fn lock(&self) -> HeadGuard<'_> {
        self.0.lock().await
    }
}

/// `events` chained after `head`.
fn chain<'a>(
    head: &AuditHead,
    events: impl IntoIterator<Item = &'a NewAuditRecord>,
) -> Vec<AuditRecord> {
    let mut prev = head.hash.clone();
    events
        .into_iter()
        .zip(head.seq + 1..)
        .map(|(e, seq)| {
            let hash = event_hash(seq, e.at, &e.actor, &e.kind, &e.subject, &e.detail, &prev);
            AuditRecord {
                seq,
                at: e.at,
                actor: e.actor.clone(),
                kind: e.kind.clone(),
                subject: e.subject.clone(),
                detail: e.detail.clone(),
                prev_hash: std::mem::replace(&mut prev, hash.clone()),
                hash,
            }
        })
        .collect()
}

fn tail(records: &[AuditRecord]) -> Option<AuditHead> {
    records.last().map(|r| AuditHead {
        seq: r.seq,
        hash: r.hash.clone(),
    })
}

/// Appends `events` in order on `conn`, inside its transaction, and makes the last one
/// the head. The head row stays locked (updated) until the transaction ends, so
/// appenders on any replica queue behind it and the chain follows commit order. Returns
/// the events' records.
pub(crate) async fn append_on(
    conn: &mut sqlx::AnyConnection,
    guess: Option<&HeadGuess>,
    events: &[NewAuditRecord],
) -> Result<Vec<AuditRecord>, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let Some(guess) = guess else {
        return append_locked(conn, events).await;
    };
    let mut guessed = guess.0.lock().await;
    if let Some(head) = guessed.take() {
        let records = chain(&head, events);
        if append_after_guess(conn, &head, &records).await? {
            *guessed = tail(&records);
            return Ok(records);
        }
    }
    let records = append_locked(conn, events).await?;
    *guessed = tail(&records);
    Ok(records)
}

/// Appends after reading the head under its row lock.
async fn append_locked(
    conn: &mut sqlx::AnyConnection,
    events: &[NewAuditRecord],
) -> Result<Vec<AuditRecord>, StoreError> {
    let n = i64::try_from(events.len()).unwrap_or(i64::MAX);
    let row = sqlx::query("UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash")
        .bind(n)
        .fetch_one(&mut *conn)
        .await?;
    let head = AuditHead {
        seq: row.try_get::<i64, _>("seq")? - n,
        hash: row.try_get("hash")?,
    };
    let records = chain(&head, events);
    insert(conn, &records, None).await?;
    if let Some(last) = tail(&records) {
        sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1 AND seq = $2")
            .bind(&last.hash)
            .bind(last.seq)
            .execute(&mut *conn)
            .await?;
    }
    Ok(records)
}

/// Moves the head from `head` to the last of `records` if it is still `head`, and then
/// inserts `records`; false (and nothing written) if the head had moved.
async fn append_after_guess(
    conn: &mut sqlx::AnyConnection,
    head: &AuditHead,
    records: &[AuditRecord],
) -> Result<bool, StoreError> {
    let Some(last) = tail(records) else {
        return Ok(true);
    };
    if conn.backend_name() == "PostgreSQL" {
        // One statement: the head moves and the first events go in, or neither. The
        // guess is checked in SET, not WHERE: a WHERE is judged on the row as this
        // statement's snapshot sees it, before the concurrent appender it waits for has
        // committed the very head it guessed; SET sees the row after that wait.
        return insert(conn, records, Some((head, &last))).await;
    }
    let moved = sqlx::query(
        "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1 AND seq = $3 AND hash = $4",
    )
    .bind(last.seq)
    .bind(&last.hash)
    .bind(head.seq)
    .bind(&head.hash)
    .execute(&mut *conn)
    .await?;
    if moved.rows_affected() != 1 {
        return Ok(false);
    }
    insert(conn, records, None).await
}

/// The CTE `head` of PostgreSQL's head-moving statements: moves the head from ($3, $4)
/// to ($1, $2) if it is there, and says in `moved` whether it is now at ($1, $2).
const MOVE_HEAD: &str = "WITH head AS (UPDATE audit_head SET \
     seq = CASE WHEN seq = $3 AND hash = $4 THEN $1 ELSE seq END, \
     hash = CASE WHEN seq = $3 AND hash = $4 THEN $2 ELSE hash END \
     WHERE id = 1 RETURNING seq = $1 AND hash = $2 AS moved)";

/// Inserts `records` (in statements of bounded size). With `moving` (PostgreSQL only),
/// the first statement also moves the head from the first to the second value, and
/// inserts nothing if the head was not at the first: then false.
async fn insert(
    conn: &mut sqlx::AnyConnection,
    records: &[AuditRecord],
    mut moving: Option<(&AuditHead, &AuditHead)>,
) -> Result<bool, StoreError> {
    // Each event's facets are read out of its detail once, here.
    let rows: Vec<(&AuditRecord, facets::Facets)> = records
        .iter()
        .map(|e| (e, facets::of(&e.kind, &e.detail)))
        .collect();
    let params = super::Params::of(conn);
    let chunks = super::statement_chunks(&rows, INSERT_CHUNK, |(e, f)| {
        statement_bytes(&e.actor, &e.kind, &e.subject, &e.detail) + f.bytes()
    });
    for chunk in chunks {
        let offset = if moving.is_some() { 4 } else { 0 };
        let values = super::placeholders_as(params, offset, chunk.len(), INSERT_PARAMS);
        let columns = insert_columns();
        let sql = match moving {
            None => format!("INSERT INTO audit_events ({columns}) VALUES {values}"),
            Some(_) => format!(
                "{MOVE_HEAD} INSERT INTO audit_events ({columns}) SELECT * FROM (VALUES {values}) \
                 AS v ({columns}) WHERE (SELECT moved FROM head) ON CONFLICT (seq) DO NOTHING"
            ),
        };
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some((from, to)) = moving {
            query = query
                .bind(to.seq)
                .bind(to.hash.clone())
                .bind(from.seq)
                .bind(from.hash.clone());
        }
        let query = chunk.iter().fold(query, |q, (e, f)| bind_record(q, e, f));
        let done = query.execute(&mut *conn).await?;
        if moving.take().is_some() {
            // `moved` compares the head after the statement with the guess's target, so
            // it is also true when another appender already put identical events there
            // (same content after the same head gives the same hashes): then they are
            // all in place already, ON CONFLICT inserted none, and this append has not
            // happened.
            match done.rows_affected() {
                0 => return Ok(false),
                n if n == chunk.len() as u64 => {}
                _ => {
                    return Err(StoreError::Corrupt(
                        "audit events beyond the chain's head".into(),
                    ));
                }
            }
        }
    }
    Ok(true)
}

/// About how many bytes an event takes as statement parameters (with its hashes).
fn statement_bytes(actor: &str, kind: &str, subject: &str, detail: &str) -> usize {
    detail.len() + actor.len() + kind.len() + subject.len() + 2 * 64 + 16
}

impl NewAuditRecord {
    /// About how many bytes this event takes as statement parameters once chained.
    pub(crate) fn statement_bytes(&self) -> usize {
        statement_bytes(&self.actor, &self.kind, &self.subject, &self.detail)
            + facets::of(&self.kind, &self.detail).bytes()
    }
}

/// Binds `e` as the next row of [`insert_columns`]: the event and its facets.
fn bind_record<'q>(
    q: super::AnyQuery<'q>,
    e: &AuditRecord,
    facets: &facets::Facets,
) -> super::AnyQuery<'q> {
    let q = q
        .bind(e.seq)
        .bind(e.at)
        .bind(e.actor.clone())
        .bind(e.kind.clone())
        .bind(e.subject.clone())
        .bind(e.detail.clone())
        .bind(e.prev_hash.clone())
        .bind(e.hash.clone());
    facets.clone().bind(q)
}

/// PostgreSQL only: appends `events` after the guessed head (taken by the caller, who
/// holds no connection it waits for meanwhile) together with `samples`, in one statement
/// outside any transaction (so it commits by itself). The head row is then locked only
/// while PostgreSQL runs and flushes that statement, not across round trips to this
/// process: under load the head row is what every batch queues for. Returns false with
/// nothing written when there is no guess, the guess is wrong or the events do not fit
/// one statement of `max_bytes`; the caller then writes them the ordinary way.
pub(crate) async fn append_alone(
    conn: &mut sqlx::AnyConnection,
    guessed: &mut HeadGuard<'_>,
    max_bytes: usize,
    events: &[&NewAuditRecord],
    samples: &[&baselines::SampleRecord],
) -> Result<bool, StoreError> {
    let bytes = events.iter().map(|e| e.statement_bytes()).sum::<usize>()
        + samples
            .iter()
            .map(|s| baselines::record_bytes(s))
            .sum::<usize>();
    if events.is_empty()
        || events.len() > INSERT_CHUNK
        || samples.len() > baselines::INSERT_CHUNK
        || bytes > max_bytes
    {
        return Ok(false);
    }
    let Some(head) = guessed.take() else {
        return Ok(false);
    };
    let records = chain(&head, events.iter().copied());
    let Some(last) = tail(&records) else {
        return Ok(false);
    };
    let event_values = super::placeholders(4, records.len(), INSERT_PARAMS);
    let sample_offset = 4 + INSERT_PARAMS * records.len();
    let samples_cte = if samples.is_empty() {
        String::new()
    } else {
        format!(
            ", samples AS (INSERT INTO decision_samples ({cols}) SELECT * FROM (VALUES {values}) \
             AS v ({cols}) WHERE EXISTS (SELECT 1 FROM events))",
            cols = baselines::COLUMNS,
            values = super::placeholders(sample_offset, samples.len(), baselines::COLUMN_COUNT)
        )
    };
    // As in `insert`: the guess is judged in SET, after any wait for the row; identical
    // events already in place insert nothing (ON CONFLICT), and then neither do samples.
    let columns = insert_columns();
    let sql = format!(
        "{MOVE_HEAD}, events AS (INSERT INTO audit_events ({columns}) SELECT * FROM (VALUES {event_values}) \
         AS v ({columns}) WHERE (SELECT moved FROM head) ON CONFLICT (seq) DO NOTHING \
         RETURNING seq){samples_cte} \
         SELECT count(*) AS inserted FROM events"
    );
    let query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(last.seq)
        .bind(last.hash.clone())
        .bind(head.seq)
        .bind(head.hash.clone());
    let query = records.iter().fold(query, |q, e| {
        bind_record(q, e, &facets::of(&e.kind, &e.detail))
    });
    let query = samples.iter().fold(query, |q, s| baselines::bind(q, s));
    // The guess stays taken until the statement returns: a second batch sent meanwhile
    // on another connection could reach the head row first and be refused (measured:
    // an eighth of batches fell back so), costing more than the wait.
    let inserted: i64 = query.fetch_one(&mut *conn).await?.try_get("inserted")?;
    match usize::try_from(inserted) {
        Ok(0) => Ok(false),
        Ok(n) if n == records.len() => {
            **guessed = Some(last);
            Ok(true)
        }
        _ => Err(StoreError::Corrupt(
            "audit events beyond the chain's head".into(),
        )),
    }
}

impl Store {
    /// Appends `events` inside `tx`; they become visible when it commits.
    pub async fn append_audit_events(
        &self,
        tx: &mut Tx<'_>,
        events: &[NewAuditRecord],
    ) -> Result<Vec<AuditRecord>, StoreError> {
        if tx.nested {
            // The batch appends once, after its works (see HeadGuess on why once).
            return Err(StoreError::Misuse(
                "a group-commit work returns its audit events to the batch",
            ));
        }
        // A second append in the same transaction already holds the head row's lock: it
        // reads the head at no wait, and must not queue for the guess (see HeadGuess).
        let guess = (!std::mem::replace(&mut tx.appended, true)).then_some(&*self.audit_head);
        append_on(tx.conn(), guess, events).await
    }

    pub async fn audit_head(&self) -> Result<AuditHead, StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(self.reader())
            .await?;
        Ok(AuditHead {
            seq: row.try_get("seq")?,
            hash: row.try_get("hash")?,
        })
    }

    /// Events with `seq > after`, oldest first, at most `limit`.
    pub async fn audit_events_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2"
        ));
        let rows = sqlx::query(sql)
            .bind(after)
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// The newest events, newest first, optionally only those about `subject`.
    pub async fn recent_audit_events(
        &self,
        subject: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_events WHERE ($1 = '' OR subject = $1) \
             ORDER BY seq DESC LIMIT $2"
        ));
        let rows = sqlx::query(sql)
            .bind(subject.unwrap_or(""))
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Up to `limit` events before `before_seq`, newest first, about `subject` (any when
    /// empty) and of a kind starting with `kind_prefix` (any when empty): the console's
    /// keyset-paginated trace.
    pub async fn page_audit_events(
        &self,
        before_seq: i64,
        subject: &str,
        kind_prefix: &str,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_events WHERE seq < $1 AND ($2 = '' OR subject = $2) \
             AND ($3 = '' OR kind LIKE $4 ESCAPE '\\') ORDER BY seq DESC LIMIT $5"
        ));
        let prefix = super::like_pattern(kind_prefix);
        let rows = sqlx::query(sql)
            .bind(before_seq)
            .bind(subject)
            .bind(kind_prefix)
            // `%prefix%` without its leading `%`: a prefix match.
            .bind(&prefix[1..])
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Events of `kind` at or after `since_ms`, newest first, at most `limit`.
    pub async fn audit_events_of_kind(
        &self,
        kind: &str,
        since_ms: i64,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_events WHERE kind = $1 AND at >= $2 \
             ORDER BY seq DESC LIMIT $3"
        ));
        let rows = sqlx::query(sql)
            .bind(kind)
            .bind(since_ms)
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(from_row).collect()
    }
}

impl Store {
    /// Events with `since_ms <= at < until_ms` and `seq > after`, oldest first, at most
    /// `limit` (for exports, page by page).
    pub async fn audit_events_between(
        &self,
        since_ms: i64,
        until_ms: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_events WHERE seq > $1 AND at >= $2 AND at < $3 \
             ORDER BY seq LIMIT $4"
        ));
        let rows = sqlx::query(sql)
            .bind(after)
            .bind(since_ms)
            .bind(until_ms)
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(from_row).collect()
    }
}

#[cfg(test)]
mod tests;
