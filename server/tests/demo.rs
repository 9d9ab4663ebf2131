#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! `countersign demo` as a newcomer (and CI) runs it: every event of the story, in order,
//! including the refusals, from the `--json` stream; the interactive path where the
//! person denies; and the data it keeps with `--keep`, checked by the CLI.

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::Value;

fn countersign(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_countersign"));
    cmd.current_dir(dir)
        .env_remove("COUNTERSIGN_DATABASE_URL")
        .env_remove("COUNTERSIGN_KEYS_DIR")
        .env_remove("RUST_LOG");
    cmd
}

/// Runs `demo --json` (with `extra` arguments); its events, `part` headings left out.
fn demo_events(dir: &std::path::Path, extra: &[&str]) -> Vec<Value> {
    let out = countersign(dir)
        .args(["demo", "--json"])
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .filter(|e| e["event"] != "part")
        .collect()
}

fn named<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

fn policies(event: &Value) -> Vec<&str> {
    event["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect()
}

#[test]
fn the_demo_tells_the_whole_story_with_every_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let events = demo_events(dir.path(), &[]);
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "server.started",
            "human.provisioned",
            "agent.registered",
            "policy.activated",
            "wallet.enrolled",
            // $120
            "order.allowed",
            "credential.issued",
            "tool.accepted",
            // $1,200
            "order.held",
            "agent.pending",
            "wallet.shown",
            "wallet.approved",
            "credential.issued",
            "tool.accepted",
            "tool.rejected",
            "tool.rejected",
            // delete production
            "action.denied",
            // offboarding
            "human.offboarded",
            "tool.rejected",
            "tool.rejected",
            "agent.refused",
            // the record
            "trace",
            "audit.verified",
            "demo.finished",
        ]
    );
    let elapsed: Vec<f64> = events
        .iter()
        .map(|e| e["elapsed_ms"].as_f64().unwrap())
        .collect();
    assert!(elapsed.windows(2).all(|w| w[0] <= w[1]), "{elapsed:?}");

    let allowed = named(&events, "order.allowed")[0];
    assert_eq!(allowed["outcome"], "allow");
    assert_eq!(policies(allowed), ["small-orders v1"]);

    let held = named(&events, "order.held")[0];
    assert_eq!(held["outcome"], "step_up");
    assert!(policies(held).contains(&"large-orders v1"), "{held}");
    assert_eq!(held["approvers"], serde_json::json!(["alice"]));

    let shown = named(&events, "wallet.shown")[0];
    assert_eq!(shown["client_id"], "procurement");
    assert_eq!(shown["vendor"], "Acme Corp");
    assert_eq!(shown["amount"], 1200);
    assert_eq!(shown["currency"], "USD");
    assert_eq!(shown["binding_message"], "ORDER 1200");
    assert_eq!(shown["credential_validity_secs"], 900, "the policy's PT15M");
    assert!(
        shown["reason"].as_str().unwrap().contains("$400"),
        "{shown}"
    );
    assert_eq!(named(&events, "wallet.approved")[0]["status"], "approved");

    let issued = named(&events, "credential.issued");
    assert!(
        issued.iter().all(|c| c["token_type"] == "DPoP"),
        "{issued:?}"
    );
    assert_eq!(
        issued[0]["cnf_jkt"],
        named(&events, "agent.registered")[0]["dpop_jkt"]
    );

    let accepted = named(&events, "tool.accepted");
    assert_eq!(accepted[0]["amount"], 120);
    assert_eq!(accepted[0]["approval_method"], "policy");
    assert_eq!(accepted[1]["amount"], 1200);
    assert_eq!(accepted[1]["approver"], "alice");
    assert_eq!(accepted[0]["credential_id"], issued[0]["credential_id"]);
    assert_eq!(accepted[1]["credential_id"], issued[1]["credential_id"]);

    let rejected = named(&events, "tool.rejected");
    assert_eq!(
        (&rejected[0]["amount"], &rejected[0]["reason"]),
        (&1500.into(), &"argument_outside_approval".into())
    );
    assert_eq!(
        (&rejected[1]["amount"], &rejected[1]["reason"]),
        (&1200.into(), &"use_limit_reached".into()),
        "a single-use approval is spent by the order it approved"
    );
    for (r, amount) in rejected[2..].iter().zip([120, 1200]) {
        assert_eq!(r["amount"], amount);
        assert_eq!(r["reason"], "revoked", "{r}");
        assert_eq!(r["status_ttl_secs"], 1);
        assert!(r["after_offboarding_ms"].as_f64().unwrap() > 0.0);
    }

    let denied = named(&events, "action.denied")[0];
    assert_eq!(
        (denied["status"].as_u64(), &denied["error"]),
        (Some(403), &"access_denied".into())
    );
    assert_eq!(policies(denied), ["no-destruction v1"]);
    assert!(
        denied["error_description"]
            .as_str()
            .unwrap()
            .contains("destructive"),
        "{denied}"
    );

    let refused = named(&events, "agent.refused")[0];
    assert_eq!(refused["status"], 400, "RFC 6749 §5.2");
    assert_eq!(refused["error"], "unauthorized_client");

    let trace = named(&events, "trace")[0]["decisions"].as_array().unwrap();
    let outcomes: Vec<(&str, &str)> = trace
        .iter()
        .map(|d| {
            (
                d["action"].as_str().unwrap(),
                d["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("purchase_order", "allow"),
            ("purchase_order", "step_up"),
            ("delete_environment", "deny"),
        ]
    );
    let audit = named(&events, "audit.verified")[0];
    assert_eq!(audit["intact"], true);
    assert!(
        audit["log_checkpoints_verified"].as_i64().unwrap() >= 1,
        "{audit}"
    );
    assert!(audit["events"].as_i64().unwrap() > 10, "{audit}");
    assert_eq!(named(&events, "demo.finished")[0]["kept"], Value::Null);
}

#[test]
fn interactive_denial_refuses_the_credential_and_the_story_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = countersign(dir.path())
        .args(["demo", "--interactive"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"n\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Approve with your passkey? [y/N]"), "{text}");
    assert!(text.contains("Alice denies with her passkey"), "{text}");
    assert!(text.contains("access_denied, no credential"), "{text}");
    // Only the $120 credential exists to be killed; the deletion is still denied.
    assert!(
        text.contains("refuses the $120 credential: revoked"),
        "{text}"
    );
    assert!(!text.contains("refuses the $1,200 credential"), "{text}");
    assert!(
        text.contains("delete production: access_denied by no-destruction"),
        "{text}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "no colours off a terminal or with NO_COLOR"
    );
}

#[test]
fn kept_data_is_a_server_the_cli_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let kept = dir.path().join("demo");
    let events = demo_events(dir.path(), &["--keep", kept.to_str().unwrap()]);
    let finished = events.last().unwrap();
    assert_eq!(finished["kept"], kept.display().to_string());
    let out = countersign(dir.path())
        .args(["audit", "verify", "--json"])
        .env(
            "COUNTERSIGN_DATABASE_URL",
            format!(
                "sqlite://{}?mode=rwc",
                kept.join("countersign.db").display()
            ),
        )
        .env("COUNTERSIGN_KEYS_DIR", kept.join("keys"))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["intact"], true);
    assert_eq!(
        report["events"],
        named(&events, "audit.verified")[0]["events"],
        "the CLI reads the same trail the demo verified"
    );
}
