#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! The `countersign` binary as a script would drive it: exit codes, `--json` output, and
//! `serve` refusing unsafe developer mode.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use common::{add_alice, countersign, json};
use serde_json::Value;

#[test]
fn directory_commands_print_json_and_fail_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let human = add_alice(d);
    assert_eq!(human["subject"], "alice");
    let agent = json(
        d,
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
    assert_eq!(agent["client_secret"].as_str().unwrap().len(), 43);
    let agents = json(d, &["agent", "list", "--json"]);
    assert_eq!(agents[0]["client_id"], "proc");
    assert!(agents[0].get("client_secret").is_none());
    assert_eq!(
        json(d, &["human", "list", "--json"])[0]["email"],
        "alice@example.com"
    );
    let key = json(d, &["admin-key", "create", "--json"]);
    assert!(key["key"].as_str().unwrap().starts_with("csk_"));
    let rotated = json(d, &["keys", "rotate", "--json"]);
    assert!(rotated["kid"].is_string());
    assert!(
        d.join("countersign.db").exists(),
        "SQLite in the working directory by default"
    );

    let jwks = d.join("jwks.json");
    let pair = countersign_jose::SigningKeyPair::generate();
    std::fs::write(
        &jwks,
        serde_json::to_string(&countersign_jose::JwkSet {
            keys: vec![pair.public_jwk()],
        })
        .unwrap(),
    )
    .unwrap();
    let jwt_agent = json(
        d,
        &[
            "agent",
            "add",
            "--client-id",
            "jwt",
            "--owner",
            "alice",
            "--auth",
            "private_key_jwt",
            "--jwks",
            jwks.to_str().unwrap(),
            "--mode",
            "ping",
            "--notification-endpoint",
            "http://127.0.0.1:9/cb",
            "--json",
        ],
    );
    assert!(jwt_agent.get("client_secret").is_none());
    assert_eq!(jwt_agent["delivery_mode"], "ping");

    // Tools and approver route: set, replaced, lifted.
    let limited = json(
        d,
        &[
            "agent",
            "update",
            "proc",
            "--tools",
            "erp,crm",
            "--approver",
            "manager",
            "--json",
        ],
    );
    assert_eq!(limited["tools"], serde_json::json!(["crm", "erp"]));
    assert_eq!(limited["approver"], "manager");
    let lifted = json(
        d,
        &[
            "agent",
            "update",
            "proc",
            "--tools",
            "",
            "--approver",
            "",
            "--json",
        ],
    );
    assert!(
        lifted.get("tools").is_none() && lifted.get("approver").is_none(),
        "{lifted}"
    );

    let dup = countersign(d)
        .args([
            "human",
            "add",
            "--subject",
            "alice",
            "--email",
            "x@example.com",
            "--name",
            "X",
        ])
        .output()
        .unwrap();
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    let bad = countersign(d)
        .args([
            "agent",
            "add",
            "--client-id",
            "z",
            "--owner",
            "nobody",
            "--auth",
            "client_secret_basic",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nobody"));
}

/// Ids are base64url and may start with `-`; they must still be read as ids, not flags.
#[test]
fn ids_starting_with_a_hyphen_are_ids() {
    let dir = tempfile::tempdir().unwrap();
    let out = countersign(dir.path())
        .args(["credential", "show", "-6q3NpUnbCHj1RycSQ0qLQ"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no credential \"-6q3NpUnbCHj1RycSQ0qLQ\""),
        "{err}"
    );
    let out = countersign(dir.path())
        .args(["agent", "resume", "-agent"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("agent \"-agent\" not found"));
    for command in ["admin-key", "scim-token"] {
        let out = countersign(dir.path())
            .args([command, "revoke", "-XSzDCe9i0X4"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("\"-XSzDCe9i0X4\""), "{command}: {err}");
    }
}

#[test]
fn dev_approvals_refused_off_loopback_and_serve_reports_what_it_did() {
    let dir = tempfile::tempdir().unwrap();
    let out = countersign(dir.path())
        .args(["serve", "--listen", "0.0.0.0:0", "--dev-approvals"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("dev_approvals"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut child = countersign(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let banner: Vec<String> = (0..6).map(|_| lines.next().unwrap().unwrap()).collect();
    let _ = child.kill();
    let _ = child.wait();
    let text = banner.join("\n");
    assert!(text.contains("issuer:    http://127.0.0.1:"), "{text}");
    assert!(
        text.contains("database:  sqlite://countersign.db"),
        "{text}"
    );
    assert!(text.contains("keys:"), "{text}");
    assert!(
        text.contains("/console/  (sign in: countersign admin sign-in-link)"),
        "{text}"
    );
    assert!(
        !text.contains("DEVELOPER MODE"),
        "developer mode is off by default"
    );
}

/// `credential list|show|revoke` against a database holding a credential from a real flow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_commands_list_show_and_revoke() {
    use countersign_server::clock::SystemClock;
    use countersign_server::config::Config;
    use countersign_server::directory::{self, NewAgent, NewHuman};

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_owned();
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: format!("sqlite://{}?mode=rwc", d.join("countersign.db").display()),
        keys_dir: d.join("countersign-keys"),
        dev_approvals: true,
        ..Config::default()
    };
    config.ciba.poll_interval_secs = 1;
    let server = countersign_server::server::start(config, std::sync::Arc::new(SystemClock))
        .await
        .unwrap();
    let store = &server.state.store;
    let human = NewHuman {
        subject: "alice".into(),
        email: "a@example.com".into(),
        name: "A".into(),
        user_code: None,
        department: String::new(),
        title: String::new(),
        role: String::new(),
        manager: None,
    };
    directory::add_human(store, human, 0, "test").await.unwrap();
    let agent = NewAgent {
        client_id: "agent".into(),
        name: None,
        owner: "alice".into(),
        auth_method: "client_secret_basic".into(),
        jwks: None,
        delivery_mode: None,
        notification_endpoint: None,
        require_signed_request: false,
        user_code_required: false,
        department: String::new(),
        risk_tier: None,
        description: None,
        tools: None,
        approver: None,
        // Bearer-only: the token request needs no DPoP proof, and `verify` accepts the
        // credential only with --allow-bearer.
        bearer_only: true,
        dpop_jkt: None,
    };
    let secret = directory::add_agent(store, agent, 0, "test")
        .await
        .unwrap()
        .client_secret
        .unwrap();
    let http = reqwest::Client::new();
    let base = server.base_url();
    let started: Value = http
        .post(format!("{base}/bc-authorize"))
        .basic_auth("agent", Some(&secret))
        .form(&[("scope", "openid"), ("login_hint", "alice")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = started["auth_req_id"].as_str().unwrap();
    http.post(format!("{base}/dev/approvals/{id}/approve"))
        .send()
        .await
        .unwrap();
    let tokens: Value = http
        .post(format!("{base}/token"))
        .basic_auth("agent", Some(&secret))
        .form(&[
            ("grant_type", "urn:openid:params:grant-type:ciba"),
            ("auth_req_id", id),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(tokens["access_token"].is_string(), "{tokens}");

    let d2 = d.clone();
    let credential = tokens["access_token"].as_str().unwrap().to_owned();
    tokio::task::spawn_blocking(move || {
        let verify = |extra: &[&str]| {
            use std::io::Write as _;
            let mut child = countersign(&d2)
                .args(["verify", "--issuer", &base])
                .args(extra)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(credential.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            (
                out.status.success(),
                serde_json::from_slice::<Value>(&out.stdout).unwrap(),
            )
        };
        let (ok, refusal) = verify(&[]);
        assert!(!ok);
        assert_eq!(refusal["reason"], "not_key_bound", "{refusal}");
        let (ok, verdict) = verify(&["--allow-bearer"]);
        assert!(ok, "{verdict}");
        assert_eq!((verdict["max_uses"].as_i64(), verdict["use_number"].as_i64()), (Some(1), Some(1)));
        let vc_id = verdict["credential_id"].as_str().unwrap().to_owned();
        assert!(vc_id.contains("/credentials/"));
        assert_eq!(
            json(&d2, &["credential", "show", &vc_id, "--json"])["approver"],
            "alice",
            "the VC id names it too"
        );
        assert_eq!(
            (verdict["agent"].as_str(), verdict["approver"].as_str()),
            (Some("agent"), Some("alice"))
        );
        let (ok, refusal) = verify(&["--allow-bearer", "--action", "wire_transfer"]);
        assert!(!ok);
        assert_eq!(refusal["reason"], "action_mismatch");

        let listed = json(&d2, &["credential", "list", "--agent", "agent", "--json"]);
        let jti = listed[0]["id"].as_str().unwrap().to_owned();
        assert_eq!(listed[0]["approver"], "alice");
        assert_eq!(
            json(&d2, &["credential", "show", &jti, "--json"])["revoked_at"],
            Value::Null
        );
        let revoked = json(
            &d2,
            &["credential", "revoke", &jti, "--reason", "test", "--json"],
        );
        assert_eq!(revoked["revoked"][0], jti.as_str());
        assert_eq!(
            json(&d2, &["credential", "show", &jti, "--json"])["revoked_reason"],
            "test"
        );
        let bulk = json(
            &d2,
            &[
                "credential",
                "revoke",
                "--owner",
                "alice",
                "--reason",
                "again",
                "--json",
            ],
        );
        assert_eq!(bulk["revoked"], serde_json::json!([]));
        let both = countersign(&d2)
            .args([
                "credential",
                "revoke",
                &jti,
                "--agent",
                "agent",
                "--reason",
                "x",
            ])
            .output()
            .unwrap();
        assert!(!both.status.success());
        let (ok, refusal) = verify(&["--allow-bearer"]);
        assert!(!ok);
        assert_eq!(refusal["reason"], "revoked", "{refusal}");

        // Both revocations are in the audit trail, which verifies; an edit breaks it.
        let events = json(&d2, &["audit", "list", "--json"]);
        assert_eq!(events[0]["kind"], "credential.revoked");
        assert_eq!(events[0]["actor"], "cli");
        assert_eq!(events[1]["detail"]["reason"], "test");
        let report = json(&d2, &["audit", "verify", "--json"]);
        // The server's start, the human's and the agent's registration, the decision, the
        // approval and the issuance are traced too.
        assert_eq!((report["intact"].clone(), report["events"].clone()), (Value::Bool(true), Value::from(8)));
        let db = d2.join("countersign.db");

        // A checkpoint exported now, an inclusion proof checked offline with the key.
        let exported = countersign(&d2).args(["audit", "checkpoint"]).output().unwrap();
        assert!(exported.status.success());
        let checkpoint_file = d2.join("checkpoint.txt");
        // `countersign audit checkpoint > FILE` is the whole export.
        std::fs::write(&checkpoint_file, &exported.stdout).unwrap();
        let vkey = String::from_utf8(countersign(&d2).args(["audit", "key"]).output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_owned();
        let proof = countersign(&d2).args(["audit", "prove", "2"]).output().unwrap();
        assert!(proof.status.success(), "{}", String::from_utf8_lossy(&proof.stderr));
        let proof_file = d2.join("proof.json");
        std::fs::write(&proof_file, &proof.stdout).unwrap();
        let checked = json(
            &d2,
            &["audit", "check-proof", proof_file.to_str().unwrap(), "--key", &vkey, "--json"],
        );
        assert_eq!(checked["valid"], true, "{checked}");
        let mut forged: Value = serde_json::from_slice(&proof.stdout).unwrap();
        forged["event"]["actor"] = "someone else".into();
        std::fs::write(&proof_file, forged.to_string()).unwrap();
        let refused = countersign(&d2)
            .args(["audit", "check-proof", proof_file.to_str().unwrap(), "--key", &vkey])
            .output()
            .unwrap();
        assert_eq!(refused.status.code(), Some(1));
        let extends = json(
            &d2,
            &["audit", "verify", "--checkpoint", checkpoint_file.to_str().unwrap(), "--json"],
        );
        assert_eq!(extends["checkpoints"][0]["extends"], true, "{extends}");

        // The newest events cut off, the head and the checkpoints rewritten: nothing in
        // the database says so, the exported checkpoint does.
        let truncated = Command::new("python3")
            .args([
                "-c",
                "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
                 c.execute('DELETE FROM audit_events WHERE seq > 3'); \
                 c.execute('UPDATE audit_head SET seq = 3, hash = (SELECT hash FROM audit_events WHERE seq = 3)'); \
                 c.execute('DELETE FROM log_checkpoints'); c.commit()",
                db.to_str().unwrap(),
            ])
            .status()
            .unwrap();
        assert!(truncated.success());
        assert!(countersign(&d2).args(["audit", "verify"]).status().unwrap().success());
        let caught = countersign(&d2)
            .args(["audit", "verify", "--checkpoint", checkpoint_file.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(caught.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&caught.stdout).contains("does NOT extend"),
            "{}",
            String::from_utf8_lossy(&caught.stdout)
        );

        let edited = Command::new("python3")
            .args([
                "-c",
                "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
                 c.execute(\"UPDATE audit_events SET actor='someone else' WHERE seq=1\"); c.commit()",
                db.to_str().unwrap(),
            ])
            .status()
            .unwrap();
        assert!(edited.success());
        let broken = countersign(&d2).args(["audit", "verify"]).output().unwrap();
        assert_eq!(broken.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&broken.stdout).contains("BROKEN at event 1"),
            "{}",
            String::from_utf8_lossy(&broken.stdout)
        );
    })
    .await
    .unwrap();
    server.shutdown().await;
}
