#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! Directory and key changes made with the `countersign` CLI are in the audit trail with
//! the actor `cli`, on SQLite and PostgreSQL: humans (role, manager), groups and their
//! members, agents (tools, approver route), admin keys and SCIM tokens created and
//! revoked. A refused command writes neither its change nor an event.

use std::path::Path;
use std::process::{Command, Output};

use countersign_server::store::testing::{create_postgres_database, drop_postgres_database};
use serde_json::{Value, json};

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

fn run(dir: &Path, database: &str, args: &[&str]) -> Value {
    let out = countersign(dir, database, args);
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn refused(dir: &Path, database: &str, args: &[&str]) {
    let out = countersign(dir, database, args);
    assert!(!out.status.success(), "{args:?} should fail");
}

fn changes_on(d: &Path, db: &str) {
    run(
        d,
        db,
        &[
            "human",
            "add",
            "--subject",
            "alice",
            "--email",
            "a@example.com",
            "--name",
            "Alice",
        ],
    );
    run(
        d,
        db,
        &[
            "human",
            "add",
            "--subject",
            "bob",
            "--email",
            "b@example.com",
            "--name",
            "Bob",
            "--role",
            "buyer",
        ],
    );
    run(
        d,
        db,
        &[
            "human",
            "update",
            "bob",
            "--role",
            "approver",
            "--manager",
            "alice",
        ],
    );
    run(d, db, &["group", "add", "--name", "approvers"]);
    run(d, db, &["group", "add-member", "approvers", "bob"]);
    run(d, db, &["group", "remove-member", "approvers", "bob"]);
    let agent = run(
        d,
        db,
        &[
            "agent",
            "add",
            "--client-id",
            "proc",
            "--owner",
            "alice",
            "--auth",
            "client_secret_basic",
            "--json",
        ],
    );
    run(
        d,
        db,
        &[
            "agent",
            "update",
            "proc",
            "--tools",
            "erp",
            "--approver",
            "group:approvers",
        ],
    );
    let key = run(d, db, &["admin-key", "create", "--name", "ops", "--json"]);
    let key_id = key["id"].as_str().unwrap();
    let token = run(
        d,
        db,
        &[
            "scim-token",
            "create",
            "--name",
            "okta",
            "--expires-in-days",
            "7",
            "--json",
        ],
    );
    let token_id = token["id"].as_str().unwrap();
    // Refused: a scope mismatch, an unknown manager, an unknown member, a revoked key.
    refused(d, db, &["admin-key", "revoke", token_id]);
    refused(
        d,
        db,
        &[
            "human",
            "update",
            "bob",
            "--title",
            "Boss",
            "--manager",
            "nobody",
        ],
    );
    refused(d, db, &["group", "add-member", "approvers", "nobody"]);
    run(d, db, &["admin-key", "revoke", key_id]);
    run(d, db, &["scim-token", "revoke", token_id]);
    refused(d, db, &["scim-token", "revoke", token_id]);

    let mut events = run(d, db, &["audit", "list", "--limit", "100", "--json"])
        .as_array()
        .unwrap()
        .clone();
    events.reverse();
    let trail: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap(),
                e["kind"].as_str().unwrap(),
                e["subject"].as_str().unwrap(),
            )
        })
        .collect();
    let (key_subject, token_subject) = (
        format!("admin-key:{key_id}"),
        format!("scim-token:{token_id}"),
    );
    assert_eq!(
        trail,
        [
            ("cli", "human.created", "human:alice"),
            ("cli", "human.created", "human:bob"),
            ("cli", "human.updated", "human:bob"),
            ("cli", "group.created", "group:approvers"),
            ("cli", "group.member_added", "group:approvers"),
            ("cli", "group.member_removed", "group:approvers"),
            ("cli", "agent.registered", "agent:proc"),
            ("cli", "agent.updated", "agent:proc"),
            ("cli", "admin_key.created", key_subject.as_str()),
            ("cli", "scim_token.created", token_subject.as_str()),
            ("cli", "admin_key.revoked", key_subject.as_str()),
            ("cli", "scim_token.revoked", token_subject.as_str()),
        ]
    );
    assert_eq!(
        events[2]["detail"],
        json!({"changes": {"role": {"from": "buyer", "to": "approver"},
            "manager": {"from": null, "to": "alice"}}})
    );
    assert_eq!(
        events[4]["detail"],
        json!({"group": "approvers", "subject": "bob"})
    );
    assert_eq!(
        events[7]["detail"],
        json!({"changes": {"tools": {"from": null, "to": ["erp"]},
            "approver": {"from": null, "to": "group:approvers"}}})
    );
    assert_eq!(
        events[9]["detail"],
        json!({"name": "okta", "expires_at": token["expires_at"]})
    );
    let text = serde_json::to_string(&events).unwrap();
    for secret in [&agent["client_secret"], &key["key"], &token["key"]] {
        assert!(
            !text.contains(secret.as_str().unwrap()),
            "a secret in the trail"
        );
    }
    let report = run(d, db, &["audit", "verify", "--json"]);
    assert_eq!(
        (report["intact"].clone(), report["events"].clone()),
        (Value::Bool(true), json!(12))
    );
}

#[test]
fn cli_changes_are_traced_with_the_cli_actor_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("cs.db").display());
    changes_on(dir.path(), &db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_changes_are_traced_with_the_cli_actor_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let db = create_postgres_database()
        .await
        .expect("PostgreSQL must be reachable (127.0.0.1:5432)");
    let (d, db2) = (dir.path().to_owned(), db.clone());
    tokio::task::spawn_blocking(move || changes_on(&d, &db2))
        .await
        .unwrap();
    drop_postgres_database(&db).await.unwrap();
}
