#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! `countersign-wallet` as a person or a script drives it, against a real server: enroll
//! with an invitation URI, list, show, approve with --yes; confirmation is required
//! without it; the state file is private.

use std::process::Command;

use countersign_tests::{Db, TestServer};
use serde_json::Value;

fn wallet(state: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_countersign-wallet"))
        .arg("--state")
        .arg(state)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn json(state: &std::path::Path, args: &[&str]) -> Value {
    let out = wallet(state, &[&["--json"], args].concat());
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?} printed no JSON: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enroll_list_show_and_approve_from_the_command_line() {
    let s = TestServer::start(Db::Sqlite).await;
    s.human("alice").await;
    let agent = s.agent("procurement", "alice", "client_secret_basic").await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("wallet.json");
    let uri = s.invitation("alice").await;

    let state2 = state.clone();
    let enrolled = tokio::task::spawn_blocking(move || json(&state2, &["enroll", &uri]))
        .await
        .unwrap();
    assert_eq!(enrolled["subject"], "alice");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the state file holds the device key");
    }

    let id = s.start_request(&agent, "alice").await;
    let state2 = state.clone();
    let id2 = id.clone();
    let (listed, refused, approved) = tokio::task::spawn_blocking(move || {
        let listed = json(&state2, &["requests"]);
        // Without a terminal and without --yes nothing is sent.
        let refused = wallet(&state2, &["approve", &id2]);
        let approved = json(&state2, &["approve", &id2, "--yes"]);
        (listed, refused, approved)
    })
    .await
    .unwrap();
    assert_eq!(listed[0]["id"], id.as_str());
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes"));
    assert_eq!(approved["status"], "approved");
    assert_eq!(
        approved["request"]["transaction"]["agent"]["client_id"],
        "procurement"
    );

    s.clock.advance_ms(1_000);
    let (status, tokens) = s.poll(&agent, &id).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{tokens}");
    let credential = countersign_tests::jwt_claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(credential["evidence"][0]["method"], "passkey+device_key");
    s.stop().await;
}

/// `watch` hears of a request over the live channel (not by polling: its poll interval
/// is a minute) and, with --auto-approve, approves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_receives_a_request_over_the_live_channel_and_approves_it() {
    use std::io::BufRead as _;
    let s = TestServer::start(Db::Sqlite).await;
    s.human("alice").await;
    let agent = s.agent("procurement", "alice", "client_secret_basic").await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("wallet.json");
    let uri = s.invitation("alice").await;
    let state2 = state.clone();
    tokio::task::spawn_blocking(move || json(&state2, &["enroll", &uri]))
        .await
        .unwrap();

    let mut watch = Command::new(env!("CARGO_BIN_EXE_countersign-wallet"))
        .arg("--state")
        .arg(&state)
        .args([
            "--json",
            "watch",
            "--auto-approve",
            "--count",
            "1",
            "--interval",
            "60",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Drain stderr to its end (a reader that stopped early would make the wallet's next
    // diagnostic fail with a broken pipe), signalling once the channel is connected.
    let stderr = watch.stderr.take().unwrap();
    let (connected_tx, connected) = tokio::sync::oneshot::channel();
    let diagnostics = std::thread::spawn(move || {
        let mut connected_tx = Some(connected_tx);
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("live channel connected")
                && let Some(tx) = connected_tx.take()
            {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    if connected.await.is_err() {
        panic!("watch never connected: {}", diagnostics.join().unwrap());
    }

    let id = s.start_request(&agent, "alice").await;
    let output = tokio::task::spawn_blocking(move || watch.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = diagnostics.join().unwrap();
    assert!(output.status.success(), "watch failed: {stderr}");
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["request_id"], id.as_str(), "{lines:?} {stderr}");
    assert_eq!(lines[0]["via"], "live");
    assert_eq!(lines[1]["status"], "approved");
    s.stop().await;
}

/// Request ids are base64url and may start with `-`; they are still ids, not flags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_starting_with_a_hyphen_are_ids() {
    let s = TestServer::start(Db::Sqlite).await;
    s.human("alice").await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("wallet.json");
    let uri = s.invitation("alice").await;
    let outputs = tokio::task::spawn_blocking(move || {
        json(&state, &["enroll", &uri]);
        [
            &["show", "-6q3NpUnbCHj1Ry"][..],
            &["approve", "-6q3NpUnbCHj1Ry", "--yes"],
            &["deny", "-6q3NpUnbCHj1Ry", "--yes"],
        ]
        .map(|args| wallet(&state, args))
    })
    .await
    .unwrap();
    for out in outputs {
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("unexpected argument"), "{err}");
        assert!(err.contains("no such authentication request"), "{err}");
    }
    s.stop().await;
}
