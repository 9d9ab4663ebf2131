#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! `countersign policy ...` and `countersign audit ...` as an operator drives them, on
//! SQLite and PostgreSQL: validation errors name file, line and column; declarative cases
//! pass or fail with exit codes; versions are added, activated and rolled back; and
//! `audit verify` finds an edited, deleted or reordered event.

use std::path::Path;
use std::process::{Command, Output};

use countersign_server::store::testing::{create_postgres_database, drop_postgres_database};
use serde_json::Value;

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/policy/examples");

fn countersign(dir: &Path, database: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_countersign"))
        .current_dir(dir)
        .env_remove("COUNTERSIGN_DATABASE_URL")
        .env("RUST_LOG", "warn")
        .arg("--database")
        .arg(database)
        .args(args)
        .output()
        .unwrap()
}

fn json(dir: &Path, database: &str, args: &[&str]) -> Value {
    let out = countersign(dir, database, args);
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: no JSON: {e}"))
}

fn sqlite(dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("cs.db").display())
}

#[test]
fn validate_names_file_line_and_column_and_test_runs_the_documented_cases() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = sqlite(d);
    let good = format!("{EXAMPLES}/procurement.cedar");
    let ok = countersign(d, &db, &["policy", "validate", &good]);
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).contains("valid (5 policies"));

    let bad = d.join("bad.cedar");
    std::fs::write(
        &bad,
        "@id(\"a\")\npermit (principal, action, resource)\nwhen { context.arguments.amout > 1 };\n\
         @id(\"b\") @approver(\"boss\") @step_up permit (principal, action, resource);\n",
    )
    .unwrap();
    let out = countersign(d, &db, &["policy", "validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("bad.cedar:3:8: policy \"a\""), "{text}");
    assert!(
        text.contains("bad.cedar:4:1: policy \"b\": @approver(\"boss\")"),
        "{text}"
    );
    let out = countersign(
        d,
        &db,
        &["policy", "validate", bad.to_str().unwrap(), "--json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], false);
    assert_eq!(report["problems"][0]["line"], 3);

    // The documented suite passes...
    let suite = format!("{EXAMPLES}/procurement.test.toml");
    let out = countersign(d, &db, &["policy", "test", &suite]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("8 passed, 0 failed"));
    // ...and a wrong expectation fails, saying what it got.
    let wrong = d.join("wrong.toml");
    std::fs::write(
        &wrong,
        std::fs::read_to_string(&suite).unwrap().replace(
            "amount = 399, currency = \"USD\" }\nexpect = \"allow\"",
            "amount = 399, currency = \"USD\" }\nexpect = \"deny\"",
        ),
    )
    .unwrap();
    let out = countersign(
        d,
        &db,
        &[
            "policy",
            "test",
            wrong.to_str().unwrap(),
            "--policy",
            &good,
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let results: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results[0]["passed"], false);
    assert_eq!(results[0]["failures"][0], "expected deny, got allow");
    assert_eq!(results[1]["passed"], true);
}

fn versions_and_audit_on(d: &Path, db: &str) {
    let policy = format!("{EXAMPLES}/procurement.cedar");
    let v1 = json(
        d,
        db,
        &[
            "policy",
            "add",
            &policy,
            "--activate",
            "--description",
            "first",
            "--json",
        ],
    );
    assert_eq!(
        (v1["version"].clone(), v1["active"].clone()),
        (Value::from(1), Value::Bool(true))
    );
    let stricter = d.join("stricter.cedar");
    std::fs::write(
        &stricter,
        std::fs::read_to_string(&policy)
            .unwrap()
            .replace("400", "100"),
    )
    .unwrap();
    let v2 = json(
        d,
        db,
        &["policy", "add", stricter.to_str().unwrap(), "--json"],
    );
    assert_eq!(v2["active"], false);
    json(d, db, &["policy", "activate", "2", "--json"]);
    let listed = json(d, db, &["policy", "list", "--json"]);
    assert_eq!(listed[0]["version"], 2);
    assert_eq!(listed[0]["active"], true);
    let back = json(d, db, &["policy", "rollback", "--json"]);
    assert_eq!(back["version"], 1);
    let shown = json(d, db, &["policy", "show", "1", "--json"]);
    assert!(shown["source"].as_str().unwrap().contains("small-orders"));
    let missing = countersign(d, db, &["policy", "activate", "7"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("policy version 7"));
    let dry = json(
        d,
        db,
        &[
            "policy",
            "dry-run",
            stricter.to_str().unwrap(),
            "--against-history",
            "--json",
        ],
    );
    assert_eq!(dry["replayed"], 0, "no decisions yet");

    // Five administrative events: two additions, three activations.
    let report = json(d, db, &["audit", "verify", "--json"]);
    assert_eq!(
        (report["intact"].clone(), report["events"].clone()),
        (Value::Bool(true), Value::from(5))
    );
    let checkpoint = json(d, db, &["audit", "checkpoint", "--json"]);
    assert_eq!(
        (checkpoint["signed"].clone(), checkpoint["size"].clone()),
        (Value::from(5), Value::from(5))
    );
    let export = countersign(d, db, &["audit", "export", "--format", "csv"]);
    assert!(export.status.success());
    let csv = String::from_utf8_lossy(&export.stdout);
    assert_eq!(csv.lines().count(), 6, "{csv}");
    assert!(csv.lines().nth(1).unwrap().contains("policy.added"));
}

/// Runs one statement against `db` from outside the server.
async fn tamper(db: &str, sql: &str) {
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(db).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

fn broken_at(d: &Path, db: &str) -> (i64, String) {
    let out = countersign(d, db, &["audit", "verify", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        report["broken_at"].as_i64().unwrap(),
        report["reason"].as_str().unwrap().to_owned(),
    )
}

async fn tamper_cases_on(make_db: impl AsyncFn(&Path) -> String) {
    for (sql, first_bad) in [
        (
            "UPDATE audit_events SET actor = 'someone else' WHERE seq = 3",
            3,
        ),
        ("DELETE FROM audit_events WHERE seq = 2", 2),
        ("UPDATE audit_events SET at = at + 1 WHERE seq = 4", 4),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_owned();
        let db = make_db(&d).await;
        let (d2, db2) = (d.clone(), db.clone());
        tokio::task::spawn_blocking(move || versions_and_audit_on(&d2, &db2))
            .await
            .unwrap();
        tamper(&db, sql).await;
        let (d2, db2) = (d.clone(), db.clone());
        let (at, reason) = tokio::task::spawn_blocking(move || broken_at(&d2, &db2))
            .await
            .unwrap();
        assert_eq!(at, first_bad, "{sql}: {reason}");
        if db.starts_with("postgres") {
            drop_postgres_database(&db).await.unwrap();
        }
    }
    // Reordering: two events swap sequence numbers.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_owned();
    let db = make_db(&d).await;
    let (d2, db2) = (d.clone(), db.clone());
    tokio::task::spawn_blocking(move || versions_and_audit_on(&d2, &db2))
        .await
        .unwrap();
    for sql in [
        "UPDATE audit_events SET seq = 100 WHERE seq = 3",
        "UPDATE audit_events SET seq = 3 WHERE seq = 4",
        "UPDATE audit_events SET seq = 4 WHERE seq = 100",
    ] {
        tamper(&db, sql).await;
    }
    let db3 = db.clone();
    let (at, reason) = tokio::task::spawn_blocking(move || broken_at(&d, &db3))
        .await
        .unwrap();
    assert_eq!(at, 3, "{reason}");
    if db.starts_with("postgres") {
        drop_postgres_database(&db).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_audit_and_tampering_on_sqlite() {
    tamper_cases_on(async |d: &Path| sqlite(d)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_audit_and_tampering_on_postgres() {
    tamper_cases_on(async |_: &Path| {
        create_postgres_database()
            .await
            .expect("PostgreSQL must be reachable (127.0.0.1:5432)")
    })
    .await;
}
