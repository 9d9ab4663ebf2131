#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! `countersign gateway` over stdio, as an agent that launches its tools locally runs it:
//! the official Python MCP SDK client starts the gateway as its MCP server, and the
//! gateway starts its upstream (the Python SDK shop of `tests/interop/mcp`) as a child
//! process. The agent's identity comes from the command line; its calls are decided and
//! traced like calls over HTTP.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

fn interop(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/interop/mcp")
        .join(file)
}

/// The test virtualenv's Python (scripts/test.sh installs `mcp` there).
fn python() -> String {
    std::env::var("CS_SCIM_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/.cache/countersign-venv/bin/python",
            std::env::var("HOME").unwrap_or_default()
        )
    })
}

fn countersign(dir: &Path, config: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_countersign"))
        .current_dir(dir)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("COUNTERSIGN_DATABASE_URL")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn an_agent_launches_the_gateway_over_stdio_and_its_calls_are_decided() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("upstream-calls.jsonl");
    let config = d.join("countersign.toml");
    std::fs::write(
        &config,
        format!(
            r#"database_url = "sqlite://{db}?mode=rwc"
keys_dir = "{keys}"

[gateway]
enabled = true

[gateway.upstreams.shop]
command = [{python:?}, {upstream:?}, "stdio"]
env = {{ MCP_UPSTREAM_LOG = {log:?} }}

[gateway.tools."shop.drop_database"]
type = "drop_database"

[policy.actions]
drop_database = "destructive"
purchase_order = "external"
"#,
            db = d.join("cs.db").display(),
            keys = d.join("keys").display(),
            python = python(),
            upstream = interop("upstream.py").display().to_string(),
            log = log.display().to_string(),
        ),
    )
    .unwrap();
    countersign(
        d,
        &config,
        &[
            "human",
            "add",
            "--subject",
            "alice",
            "--email",
            "alice@example.com",
            "--name",
            "Alice",
        ],
    );
    countersign(
        d,
        &config,
        &[
            "agent",
            "add",
            "--client-id",
            "local",
            "--owner",
            "alice",
            "--auth",
            "client_secret_basic",
            "--bearer-only",
        ],
    );
    let policy = d.join("policy.cedar");
    std::fs::write(
        &policy,
        r#"@id("catalog")
permit (principal, action == Action::"shop_get_catalog", resource);
@id("no-destruction")
@reason("destructive actions are never allowed to agents")
forbid (principal, action in Action::"destructive", resource);
"#,
    )
    .unwrap();
    // `drop_database` is named by a mapping; `shop_get_catalog` is a default type, which
    // the CLI learns (as the server does) by listing the upstream's tools.
    countersign(
        d,
        &config,
        &["policy", "add", policy.to_str().unwrap(), "--activate"],
    );

    let gateway = json!([
        env!("CARGO_BIN_EXE_countersign"),
        "--config",
        config.to_str().unwrap(),
        "gateway",
        "--agent",
        "local"
    ]);
    let steps = json!([
        {"op": "list"},
        {"op": "call", "tool": "shop.get_catalog", "arguments": {}},
        {"op": "call", "tool": "shop.drop_database", "arguments": {}},
    ]);
    let out = Command::new(python())
        .arg(interop("client.py"))
        .arg("--stdio")
        .arg(gateway.to_string())
        .arg(steps.to_string())
        .current_dir(d)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        results[0]["tools"],
        json!(["shop.get_catalog"]),
        "only what the policy can allow"
    );
    assert_eq!(results[1]["is_error"], false, "{}", results[1]);
    assert_eq!(results[1]["json"]["items"][0]["sku"], "A-1");
    assert_eq!(results[2]["is_error"], true);
    assert!(
        results[2]["texts"][0]
            .as_str()
            .unwrap()
            .contains("destructive actions are never allowed")
    );
    let executed = std::fs::read_to_string(&log).unwrap();
    assert_eq!(executed.lines().count(), 1, "{executed}");
    // Traced with the agent as the actor.
    let trace = countersign(d, &config, &["audit", "list", "--json"]);
    assert!(
        trace.contains("gateway.call")
            && trace.contains("shop.get_catalog")
            && trace.contains("forwarded"),
        "{trace}"
    );
    assert!(trace.contains("client:local"), "{trace}");
}
