//! The database boundary. Domain code calls the aggregate modules below and never sees
//! which backend is underneath: SQL is written once in the dialect SQLite and PostgreSQL
//! share (`$n` placeholders, `ON CONFLICT`, `RETURNING`, integer milliseconds for time,
//! JSON as text). The few places where the dialects must differ are in this folder only.

pub mod admin_keys;
pub mod admin_passkeys;
pub mod audit;
pub mod auth_requests;
pub mod baselines;
mod cache;
pub mod ceremonies;
pub mod clients;
pub mod console_links;
pub mod console_stats;
pub mod credential_uses;
pub mod devices;
pub mod group_commit;
pub mod groups;
pub mod humans;
pub mod live;
pub mod log_checkpoints;
mod migrations;
pub mod outbox;
pub mod policies;
pub mod push_outbox;
pub mod replay;
pub mod scim;
pub mod sessions;
pub mod status_lists;
pub mod tokens;

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Executor, SqlSafeStr};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("a record with this key already exists")]
    Conflict,
    #[error("store misused: {0}")]
    Misuse(&'static str),
    /// The connection failed while committing: the transaction may or may not have
    /// committed. Never retried blindly (what it wrote may be there already); a caller
    /// that reads again learns which.
    #[error("the outcome of a commit is unknown: {0}")]
    Uncertain(String),
}

/// A `LIKE … ESCAPE '\'` pattern matching any text that contains `needle`, lower-cased
/// (callers compare with `LOWER(column)`); `%`, `_` and `\` in `needle` match themselves.
pub(crate) fn like_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl StoreError {
    /// Whether `err` is a unique-constraint violation.
    pub(crate) fn from_insert_ref(err: &sqlx::Error) -> bool {
        matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
    }

    /// Maps unique-constraint violations to [`StoreError::Conflict`].
    pub(crate) fn from_insert(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
            _ => StoreError::Database(err),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Handle to the database; cheap to clone.
///
/// SQLite allows one writer at a time; letting several pooled connections race for the
/// write lock makes them sleep in SQLite's busy handler (tens of milliseconds of tail
/// latency). So on SQLite all writes go through a single-connection pool, where they queue
/// fairly, and reads use a separate pool (WAL readers never block the writer). On
/// PostgreSQL both are the same pool.
#[derive(Clone)]
pub struct Store {
    /// The database URL (PostgreSQL's LISTEN needs a connection of its own).
    url: std::sync::Arc<str>,
    reader: AnyPool,
    writer: AnyPool,
    backend: Backend,
    pub(crate) directory_cache: std::sync::Arc<DirectoryCache>,
    /// Where this process last left the audit chain's head (see [`audit::HeadGuess`]).
    audit_head: std::sync::Arc<audit::HeadGuess>,
    batch_writer: group_commit::BatchWriter,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// Cached directory lookups (see [`cache`]).
pub(crate) struct DirectoryCache {
    pub clients: cache::TtlCache<String, Option<clients::ClientRecord>>,
    pub humans: cache::TtlCache<(bool, String), Option<humans::HumanRecord>>,
    /// A human's devices that can be alerted (enabled, with a push channel).
    pub push_targets: cache::TtlCache<String, Vec<devices::DeviceRecord>>,
    /// The groups a human is in.
    pub groups: cache::TtlCache<String, Vec<String>>,
}

/// An open transaction, or a savepoint inside the group-commit writer's transaction
/// (see [`group_commit::Work`]). Dropping it without [`Tx::commit`] rolls it back.
pub struct Tx<'c> {
    inner: sqlx::Transaction<'c, sqlx::Any>,
    /// Whether audit events were appended in it (see [`audit::HeadGuess`]).
    appended: bool,
    /// A savepoint of the group commit's transaction, whose events go to the batch.
    nested: bool,
}

impl<'c> Tx<'c> {
    /// A savepoint on `conn`, which is inside a transaction: committing it releases the
    /// savepoint, and its writes become durable when the outer transaction commits.
    pub(crate) async fn nested(conn: &'c mut sqlx::AnyConnection) -> Result<Self, StoreError> {
        Ok(Tx {
            inner: sqlx::Connection::begin(conn).await?,
            appended: false,
            nested: true,
        })
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        Ok(self.inner.commit().await?)
    }

    pub(crate) fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.inner
    }
}

/// How long a pooled PostgreSQL connection may sit idle before it is checked on acquire.
const PING_AFTER_IDLE: Duration = Duration::from_secs(10);

/// How the pools connect: no ping before every acquire, and SQLite's pragmas on every
/// new connection.
fn pool_options(backend: Backend, connections: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(connections.max(1))
        .acquire_timeout(Duration::from_secs(10))
        // sqlx's own check pings before every acquire: a round trip to the
        // connection's thread (SQLite) or the server (PostgreSQL) in front of
        // every statement. A SQLite file connection cannot go stale; a PostgreSQL
        // one can (server restart, a proxy's idle timeout), so one that sat idle
        // for a while is pinged first, and a dead one is replaced.
        .test_before_acquire(false)
        .before_acquire(move |conn, meta| {
            Box::pin(async move {
                if backend == Backend::Postgres && meta.idle_for > PING_AFTER_IDLE {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                             PRAGMA wal_autocheckpoint = 16384; PRAGMA cache_size = -32768;",
                    )
                    .await?;
                }
                Ok(())
            })
        })
}

impl Store {
    /// Connects to `url` (`sqlite:...` or `postgres://...`). SQLite connections use WAL,
    /// `synchronous=NORMAL` (durable across process crashes; an OS crash may lose the last
    /// transactions), foreign keys and a busy timeout.
    ///
    /// `cache_ttl` bounds how long a change to a client or human made by another process
    /// may go unseen by this one (zero disables the cache).
    pub async fn connect(
        url: &str,
        max_connections: u32,
        cache_ttl: Duration,
    ) -> Result<Self, StoreError> {
        let directory_cache = std::sync::Arc::new(DirectoryCache {
            clients: cache::TtlCache::new(cache_ttl),
            humans: cache::TtlCache::new(cache_ttl),
            push_targets: cache::TtlCache::new(cache_ttl),
            groups: cache::TtlCache::new(cache_ttl),
        });
        let audit_head = std::sync::Arc::new(audit::HeadGuess::default());
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let options = AnyConnectOptions::from_str(url)?;
        let pool = |connections: u32| pool_options(backend, connections);
        match backend {
            Backend::Sqlite => {
                // The writer connects first so it creates the file and switches it to WAL
                // before any reader opens it.
                let writer = pool(1).connect_with(options.clone()).await?;
                let reader = pool(max_connections).connect_with(options).await?;
                let batch_writer =
                    group_commit::BatchWriter::spawn(writer.clone(), 1, None, audit_head.clone());
                Ok(Self {
                    url: url.into(),
                    reader,
                    writer,
                    backend,
                    directory_cache,
                    audit_head,
                    batch_writer,
                })
            }
            Backend::Postgres => {
                let shared = pool(max_connections).connect_with(options).await?;
                // Two: measured on 2 cores, more writers made smaller batches and more
                // commits queueing for the head row (traced decisions got slower).
                let writers = 2.min(max_connections as usize).max(1);
                let alone_bytes = if cannot_be_tls(url) {
                    PLAIN_STATEMENT_BYTES
                } else {
                    STATEMENT_BYTES
                };
                let batch_writer = group_commit::BatchWriter::spawn(
                    shared.clone(),
                    writers,
                    Some(alone_bytes),
                    audit_head.clone(),
                );
                Ok(Self {
                    url: url.into(),
                    reader: shared.clone(),
                    writer: shared,
                    backend,
                    directory_cache,
                    audit_head,
                    batch_writer,
                })
            }
        }
    }

    /// A second handle on the same database with its own pools, writer and caches, as
    /// another replica would have.
    #[cfg(test)]
    pub(crate) async fn connect_again(&self) -> Result<Self, StoreError> {
        Self::connect(&self.url, 4, Duration::ZERO).await
    }

    /// Drops every cached directory lookup (after a transaction that changed humans,
    /// agents or devices: a reader may have cached the old rows while it ran).
    pub fn forget_directory_cache(&self) {
        self.directory_cache.clients.clear();
        self.directory_cache.humans.clear();
        self.directory_cache.push_targets.clear();
        self.directory_cache.groups.clear();
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies the embedded migrations for this backend.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.migrate_through(i64::MAX).await
    }

    /// Applies the embedded migrations up to version `last`: tests use it to stand up an
    /// older schema, write what an older server wrote, and migrate the rest.
    pub(crate) async fn migrate_through(&self, last: i64) -> Result<(), StoreError> {
        let source = match self.backend {
            Backend::Sqlite => migrations::SQLITE,
            Backend::Postgres => migrations::POSTGRES,
        };
        let migrations = source
            .iter()
            .filter(|(version, _, _)| *version <= last)
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect();
        Migrator::with_migrations(migrations)
            .run(&self.writer)
            .await?;
        Ok(())
    }

    /// Checks the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.writer).await?;
        Ok(())
    }

    pub async fn begin(&self) -> Result<Tx<'static>, StoreError> {
        Ok(Tx {
            inner: self.writer.begin().await?,
            appended: false,
            nested: false,
        })
    }

    pub(crate) fn reader(&self) -> &AnyPool {
        &self.reader
    }

    pub(crate) fn writer(&self) -> &AnyPool {
        &self.writer
    }

    /// SQLite only: copies committed WAL frames into the database file from a reader
    /// connection, so the single writer does not stall on checkpoints (the automatic
    /// checkpoint, at 16 384 pages, stays as a safety net). Call periodically.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&self.reader)
                .await?;
        }
        Ok(())
    }

    pub async fn close(&self) {
        // Records queued without waiting for their commit are written first.
        self.batch_writer.settle().await;
        self.writer.close().await;
        self.reader.close().await;
    }
}

/// Most bytes of parameters one multi-row statement carries. A PostgreSQL message larger
/// than a TLS record (16 KiB) goes out as several writes, and because sqlx leaves
/// `TCP_NODELAY` off, Nagle's algorithm holds the last one until the server's delayed ACK:
/// 40 ms per statement (measured: 516 `bc-authorize`/s at a p50 of 47 ms, against 3,900/s
/// with the same statements kept small).
pub(crate) const STATEMENT_BYTES: usize = 12 * 1024;

/// Most bytes of parameters in one statement on a PostgreSQL connection that cannot be
/// TLS (a Unix socket, or `sslmode` disable or allow): the message is one write, which
/// Nagle's algorithm does not hold. Bigger batches of traces then go as one statement
/// (measured on loopback: +6% traced decisions per second over 12 KiB).
pub(crate) const PLAIN_STATEMENT_BYTES: usize = 48 * 1024;

/// Whether a PostgreSQL connection to `url` can never use TLS.
fn cannot_be_tls(url: &str) -> bool {
    use sqlx::postgres::{PgConnectOptions, PgSslMode};
    PgConnectOptions::from_str(url).is_ok_and(|o| {
        o.get_socket().is_some()
            || o.get_host().starts_with('/')
            || matches!(o.get_ssl_mode(), PgSslMode::Disable | PgSslMode::Allow)
    })
}

/// Splits `items` into runs of at most `max_rows` whose estimated `size` stays within
/// [`STATEMENT_BYTES`] (a single oversized item is a run of its own).
pub(crate) fn statement_chunks<T>(
    items: &[T],
    max_rows: usize,
    size: impl Fn(&T) -> usize,
) -> Vec<&[T]> {
    statement_chunks_within(items, max_rows, STATEMENT_BYTES, size)
}

/// [`statement_chunks`] within `max_bytes`.
pub(crate) fn statement_chunks_within<T>(
    items: &[T],
    max_rows: usize,
    max_bytes: usize,
    size: impl Fn(&T) -> usize,
) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let n = size(item);
        if i > start && (i - start >= max_rows || bytes + n > max_bytes) {
            chunks.push(&items[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += n;
    }
    if start < items.len() {
        chunks.push(&items[start..]);
    }
    chunks
}

pub(crate) type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// The rows of a multi-row `VALUES` list: `rows` tuples of `columns` numbered
/// parameters, the first numbered `offset + 1` (`($1, $2), ($3, $4)`).
pub(crate) fn placeholders(offset: usize, rows: usize, columns: usize) -> String {
    placeholders_as(Params::Numbered, offset, rows, columns)
}

/// How a statement names its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Params {
    /// `$1, $2, ...`: what PostgreSQL needs.
    Numbered,
    /// `?` each, numbered by SQLite in order (after any numbered one before them). For
    /// the multi-row statements of the hot writes on SQLite: sqlx looks each numbered
    /// parameter's name up in a list SQLite scans from the start, so binding n of them
    /// cost n² steps (4-5 % of the server's CPU under `bc-authorize` load), while
    /// positional ones have no name to look up.
    Positional,
}

impl Params {
    /// What `conn`'s backend takes for sequential parameters.
    pub(crate) fn of(conn: &sqlx::AnyConnection) -> Self {
        if conn.backend_name() == "SQLite" {
            Self::Positional
        } else {
            Self::Numbered
        }
    }
}

/// [`placeholders`] in the style of `params`. Positional ones are bound in the same
/// order as numbered ones, so the two are interchangeable where the values are bound in
/// sequence.
pub(crate) fn placeholders_as(
    params: Params,
    offset: usize,
    rows: usize,
    columns: usize,
) -> String {
    let mut out = String::with_capacity(rows * columns * 6);
    for r in 0..rows {
        out.push_str(if r == 0 { "(" } else { ", (" });
        for c in 1..=columns {
            if c > 1 {
                out.push_str(", ");
            }
            match params {
                Params::Numbered => {
                    out.push('$');
                    out.push_str(&(offset + r * columns + c).to_string());
                }
                Params::Positional => out.push('?'),
            }
        }
        out.push(')');
    }
    out
}

/// Converts a stored 0/1 flag.
pub(crate) fn flag(v: i64) -> bool {
    v != 0
}

pub mod testing;

#[cfg(test)]
mod chunk_tests {
    use super::{STATEMENT_BYTES, statement_chunks, statement_chunks_within};

    #[test]
    fn chunks_respect_rows_and_bytes() {
        let small = vec![1usize; 10];
        let runs: Vec<usize> = statement_chunks(&small, 4, |_| 10)
            .iter()
            .map(|c| c.len())
            .collect();
        assert_eq!(runs, [4, 4, 2]);
        let big = vec![STATEMENT_BYTES / 2 + 1; 3];
        let runs: Vec<usize> = statement_chunks(&big, 64, |n| *n)
            .iter()
            .map(|c| c.len())
            .collect();
        assert_eq!(runs, [1, 1, 1]);
        assert!(statement_chunks(&Vec::<usize>::new(), 4, |_| 1).is_empty());
        let runs: Vec<usize> = statement_chunks_within(&big, 64, 3 * big[0], |n| *n)
            .iter()
            .map(|c| c.len())
            .collect();
        assert_eq!(runs, [3]);
    }

    #[test]
    fn only_sockets_and_sslmode_disable_or_allow_rule_tls_out() {
        for url in [
            "postgres://cs@localhost/cs?host=/var/run/postgresql",
            "postgres://cs@%2Fvar%2Frun%2Fpostgresql/cs",
            "postgres://cs@127.0.0.1/cs?sslmode=disable",
            "postgres://cs@127.0.0.1/cs?sslmode=allow",
        ] {
            assert!(super::cannot_be_tls(url), "{url}");
        }
        for url in [
            "postgres://cs@127.0.0.1/cs",
            "postgres://cs@db.example/cs?sslmode=prefer",
            "postgres://cs@db.example/cs?sslmode=verify-full",
        ] {
            assert!(!super::cannot_be_tls(url), "{url}");
        }
    }
}
