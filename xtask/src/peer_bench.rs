//! The peer `cargo xtask bench` measures beside Countersign: panva's `oidc-provider`
//! (tests/interop/oidc-provider/ciba-peer.mjs) as a CIBA provider, in memory, no policy,
//! no trace. It is installed from npm by the bench when absent and driven by the same
//! load generator with the same settings, so each of our throughput rows has a ratio.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

use crate::bench::{ServerProcess, run_ok, wait_ready, workspace_root};
use crate::loadgen::{self, LoadArgs, Report, Scenario};

/// The peer's one client, the benchmark agent's twin.
const CLIENT_ID: &str = "bench";
const CLIENT_SECRET: &str = "bench-peer-secret";

/// The scenarios both servers answer: the HTTP floor, `bc-authorize`, the whole flow.
pub(crate) const SCENARIOS: [Scenario; 3] =
    [Scenario::Healthz, Scenario::Authorize, Scenario::Flow];

/// Name and version, for the table, read from the installed package.
pub(crate) fn name() -> String {
    let manifest = workspace_root()
        .join("tests/interop/oidc-provider/node_modules/oidc-provider/package.json");
    let version = std::fs::read_to_string(manifest)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["version"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".into());
    format!("oidc-provider {version} (Node, in memory, no policy, no trace)")
}

/// Starts the peer (installing it with `npm ci` first if needed) and waits until it serves.
async fn start(log: &std::path::Path) -> anyhow::Result<(ServerProcess, String)> {
    let dir = workspace_root().join("tests/interop/oidc-provider");
    if !dir.join("node_modules/oidc-provider").exists() {
        eprintln!("bench: installing oidc-provider from npm");
        run_ok(Command::new("npm").current_dir(&dir).args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ]))?;
    }
    let mut child = Command::new("node")
        .current_dir(&dir)
        .args(["ciba-peer.mjs", CLIENT_ID, CLIENT_SECRET, "alice"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log)?)
        .spawn()
        .context("starting node (Node.js 20 or later is needed for the peer)")?;
    let stdout = child.stdout.take().context("the peer's stdout")?;
    let process = ServerProcess(child);
    // The first line says where it listens; the rest (the provider's notices) is read
    // and dropped for as long as it runs, or Node would die writing to a closed pipe.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    let first = rx.await.unwrap_or_default();
    let Some(base) = first.trim().strip_prefix("listening ") else {
        bail!("the peer did not start (see {})", log.display());
    };
    let base = base.to_owned();
    wait_ready(&base).await?;
    Ok((process, base))
}

/// Each of [`SCENARIOS`] on the peer, as `concurrency` clients for `duration_secs`.
pub(crate) async fn measure(
    dir: &std::path::Path,
    concurrency: usize,
    duration_secs: u64,
) -> anyhow::Result<Vec<Report>> {
    let (_peer, base) = start(&dir.join("peer.log")).await?;
    let mut reports = Vec::new();
    for scenario in SCENARIOS {
        eprintln!("bench: peer {scenario:?} for {duration_secs}s with {concurrency} clients");
        let report = loadgen::run(&LoadArgs {
            base: base.clone(),
            client_id: CLIENT_ID.into(),
            secret: CLIENT_SECRET.into(),
            login_hint: "alice".into(),
            scenario,
            concurrency,
            duration_secs,
            warmup_secs: 2,
        })
        .await?;
        eprintln!("bench: {}", serde_json::to_string(&report)?);
        reports.push(report);
    }
    Ok(reports)
}
