//! Test databases: every store test runs once on a fresh SQLite file and once on a fresh
//! PostgreSQL database (`CS_TEST_POSTGRES_URL`, default the local trust-auth
//! server). A missing PostgreSQL is a test failure, not a skip. Public so the end-to-end
//! crate creates its databases the same way.

use std::time::Duration;

use super::{Store, StoreError};

pub const DEFAULT_PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn admin_url() -> String {
    std::env::var("CS_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_PG_ADMIN_URL.to_owned())
}

/// Creates an empty PostgreSQL database with a random name; returns its URL.
pub async fn create_postgres_database() -> Result<String, StoreError> {
    let admin_url = admin_url();
    let name = format!(
        "cs_test_{}",
        countersign_jose::random_b64url(9)
            .to_ascii_lowercase()
            .replace(['-', '_'], "x")
    );
    let admin = Store::connect(&admin_url, 1, Duration::ZERO).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(admin.writer())
        .await?;
    admin.close().await;
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .unwrap_or(&admin_url);
    Ok(format!("{base}/{name}"))
}

/// Drops a database made by [`create_postgres_database`].
pub async fn drop_postgres_database(url: &str) -> Result<(), StoreError> {
    let Some((_, name)) = url.rsplit_once('/') else {
        return Ok(());
    };
    let admin = Store::connect(&admin_url(), 1, Duration::ZERO).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(admin.writer())
    .await?;
    admin.close().await;
    Ok(())
}

#[cfg(test)]
pub(crate) async fn each_backend<F, Fut>(test: F)
where
    F: Fn(Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    each_backend_migrated_through(i64::MAX, test).await
}

/// [`each_backend`] on a schema migrated only up to version `last` (a migration's test
/// writes what the server before it wrote, then migrates the rest).
#[cfg(test)]
pub(crate) async fn each_backend_migrated_through<F, Fut>(last: i64, test: F)
where
    F: Fn(Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite_url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let pg_url = create_postgres_database()
        .await
        .expect("PostgreSQL must be reachable for tests");
    for url in [sqlite_url, pg_url.clone()] {
        let store = Store::connect(&url, 4, Duration::from_secs(60))
            .await
            .expect("connect");
        store.migrate_through(last).await.expect("migrate");
        test(store.clone()).await;
        store.close().await;
    }
    drop_postgres_database(&pg_url)
        .await
        .expect("drop test database");
}
