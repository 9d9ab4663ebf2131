//! `cargo xtask bench`: the one benchmark command. Release build, real server processes on
//! SQLite and PostgreSQL, the load generator, then the criterion suites, and the results
//! written into docs/benchmarks.md between markers (the rest of the file is left alone).

mod render;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;

use crate::approval::{self, ApprovalReport};
use crate::criterion_bench;
use crate::loadgen::{self, LoadArgs, Report, Scenario};
use crate::offboard_bench::{self, OffboardReport};
use crate::peer_bench;
use crate::push_bench::{self, PushReport};
use countersign_jose::SigningKeyPair;
use countersign_tests::fakes::apns::FakeApns;
use countersign_tests::fakes::{APNS_KEY_ID, APNS_TEAM, APNS_TOPIC, apns_key_pem};
use render::{render, render_approvals, render_demo, render_offboard, render_push};

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Maintenance database used to create and drop the benchmark database.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres_url: String,
    #[arg(long, default_value_t = 18080)]
    port: u16,
    /// Use the release binary already built.
    #[arg(long)]
    skip_build: bool,
    /// Leave out the criterion suites (policy decisions, verifier) and their table.
    #[arg(long)]
    skip_criterion: bool,
    #[arg(long, default_value = "docs/benchmarks.md")]
    output: PathBuf,
    /// Run only the push delivery scenario and print it (docs/benchmarks.md is left
    /// alone): for repeating that measurement quickly.
    #[arg(long)]
    push_only: bool,
    /// Requests per second offered in the push delivery scenario.
    #[arg(long, default_value_t = 500)]
    push_rate: u32,
    /// Approval round trips measured per backend (after 20 warm-up ones).
    #[arg(long, default_value_t = 500)]
    approvals: usize,
    /// Agents of the human offboarded in the offboarding scenario...
    #[arg(long, default_value_t = 100)]
    offboard_agents: usize,
    /// ...and live credentials each of them holds.
    #[arg(long, default_value_t = 100)]
    offboard_credentials_per_agent: usize,
    /// Only the CIBA table's scenarios, on SQLite and the peer, printed (docs/benchmarks.md
    /// is left alone): for repeating the throughput comparison quickly.
    #[arg(long)]
    quick: bool,
}

const START: &str = "<!-- bench:ciba:start -->";
const END: &str = "<!-- bench:ciba:end -->";
const PUSH_START: &str = "<!-- bench:push:start -->";
const PUSH_END: &str = "<!-- bench:push:end -->";
const APPROVAL_START: &str = "<!-- bench:approval:start -->";
const APPROVAL_END: &str = "<!-- bench:approval:end -->";
const OFFBOARD_START: &str = "<!-- bench:offboard:start -->";
const OFFBOARD_END: &str = "<!-- bench:offboard:end -->";
const DEMO_START: &str = "<!-- bench:demo:start -->";
const DEMO_END: &str = "<!-- bench:demo:end -->";

/// Wall-clock milliseconds of `runs` runs of the release `countersign demo --json`, as
/// the demo itself reports them on its last event.
fn time_demo(runs: usize) -> anyhow::Result<Vec<f64>> {
    (0..runs)
        .map(|_| {
            let out = run_ok(Command::new(binary()).args(["demo", "--json"]))?;
            let last: serde_json::Value =
                serde_json::from_str(out.lines().last().context("the demo printed nothing")?)?;
            if last["event"] != "demo.finished" {
                bail!("the demo did not finish: {last}");
            }
            last["elapsed_ms"].as_f64().context("elapsed_ms")
        })
        .collect()
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

pub(crate) fn binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from);
    target.join("release/countersign")
}

pub(crate) fn run_ok(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed");
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) struct ServerProcess(pub(crate) Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) async fn wait_ready(base: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("server at {base} did not become ready")
}

async fn bench_backend(
    args: &BenchArgs,
    name: &str,
    database_url: &str,
    dir: &Path,
) -> anyhow::Result<(
    Vec<Report>,
    ApprovalReport,
    PushReport,
    Option<OffboardReport>,
)> {
    // A local APNs, trusted through its test CA, for the push scenario.
    let apns_key = SigningKeyPair::generate();
    let apns = FakeApns::start(
        "127.0.0.1:0".parse()?,
        APNS_TEAM,
        APNS_KEY_ID,
        apns_key.public_jwk(),
        APNS_TOPIC,
    )
    .await;
    let bin = binary();
    let cli = |extra: &[&str]| {
        let mut c = Command::new(&bin);
        c.current_dir(dir)
            .arg("--database")
            .arg(database_url)
            .args(extra)
            .env("RUST_LOG", "warn")
            .env(
                "COUNTERSIGN_ISSUER",
                format!("http://127.0.0.1:{}", args.port),
            );
        c
    };
    run_ok(&mut cli(&[
        "human",
        "add",
        "--subject",
        "alice",
        "--email",
        "alice@example.com",
        "--name",
        "Alice",
    ]))?;
    let agent: serde_json::Value = serde_json::from_str(&run_ok(&mut cli(&[
        "agent",
        "add",
        "--client-id",
        "bench",
        "--owner",
        "alice",
        "--auth",
        "client_secret_basic",
        "--json",
    ]))?)?;
    let secret = agent["client_secret"]
        .as_str()
        .context("no client_secret")?
        .to_owned();
    let listen = format!("127.0.0.1:{}", args.port);
    let log = std::fs::File::create(dir.join("server.log"))?;
    // The server runs as in production (default log level), logging to a file.
    let child = Command::new(&bin)
        .current_dir(dir)
        .args([
            "--database",
            database_url,
            "serve",
            "--listen",
            &listen,
            "--dev-approvals",
        ])
        .env_remove("RUST_LOG")
        // One benchmark agent sends thousands of requests a second to one human: exactly
        // what the per-client rate limit and the approval-flood cap exist to refuse. Both
        // are off here so that the server's throughput is measured, not the limiter's.
        .env("COUNTERSIGN_RATE_LIMITS__PER_CLIENT_PER_SEC", "0")
        .env("COUNTERSIGN_RATE_LIMITS__PENDING_PER_APPROVER", "0")
        .env("COUNTERSIGN_PUSH__APNS__KEY", apns_key_pem(&apns_key))
        .env("COUNTERSIGN_PUSH__APNS__KEY_ID", APNS_KEY_ID)
        .env("COUNTERSIGN_PUSH__APNS__TEAM_ID", APNS_TEAM)
        .env("COUNTERSIGN_PUSH__APNS__TOPIC", APNS_TOPIC)
        .env("COUNTERSIGN_PUSH__APNS__BASE_URL", apns.url())
        .env("COUNTERSIGN_PUSH__APNS__CA_FILE", &apns.ca_file)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let _server = ServerProcess(child);
    let base = format!("http://{listen}");
    wait_ready(&base).await?;
    // The approval round trip first, on the fresh server: it measures latency, which the
    // load scenarios' leftover work (WAL checkpoints) would otherwise distort.
    let invitation: serde_json::Value = serde_json::from_str(&run_ok(&mut cli(&[
        "device",
        "invite",
        "--subject",
        "alice",
        "--json",
    ]))?)?;
    let uri = invitation["uri"]
        .as_str()
        .context("no invitation uri")?
        .to_owned();
    eprintln!(
        "bench: {name} approval round trip, {} iterations",
        args.approvals
    );
    let iterations = if args.push_only || args.quick {
        1
    } else {
        args.approvals
    };
    let approvals = tokio::task::spawn_blocking({
        let (base, secret) = (base.clone(), secret.clone());
        move || approval::run(&base, "bench", &secret, &uri, iterations)
    })
    .await??;
    eprintln!("bench: {}", serde_json::to_string(&approvals)?);
    let mut reports = Vec::new();
    let scenarios = if args.push_only {
        Vec::new()
    } else {
        vec![Scenario::Healthz, Scenario::Authorize, Scenario::Flow]
    };
    // One closed-loop run of `scenario` by the benchmark agent.
    let load = |scenario: Scenario| {
        eprintln!(
            "bench: {name} {scenario:?} for {}s with {} clients",
            args.duration_secs, args.concurrency
        );
        let load = LoadArgs {
            base: base.clone(),
            client_id: "bench".into(),
            secret: secret.clone(),
            login_hint: "alice".into(),
            scenario,
            concurrency: args.concurrency,
            duration_secs: args.duration_secs,
            warmup_secs: 2,
        };
        async move {
            let report = loadgen::run(&load).await?;
            eprintln!("bench: {}", serde_json::to_string(&report)?);
            anyhow::Ok(report)
        }
    };
    for scenario in scenarios {
        reports.push(load(scenario).await?);
    }
    // Decisions under the procurement policy (which refuses the plain requests above).
    let activate_procurement = || async {
        let policy = workspace_root().join("docs/policy/examples/procurement.cedar");
        run_ok(&mut cli(&[
            "policy",
            "add",
            &policy.display().to_string(),
            "--activate",
        ]))?;
        // The server installs an activated version within policy.reload_interval_ms.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        anyhow::Ok(())
    };
    if args.quick {
        activate_procurement().await?;
        reports.push(load(Scenario::Decision).await?);
        return Ok((reports, approvals, PushReport::default(), None));
    }
    // Last, as every request from now on alerts a phone: one enrolled with an APNs token.
    let invitation: serde_json::Value = serde_json::from_str(&run_ok(&mut cli(&[
        "device",
        "invite",
        "--subject",
        "alice",
        "--json",
    ]))?)?;
    let uri = invitation["uri"]
        .as_str()
        .context("no invitation uri")?
        .to_owned();
    tokio::task::spawn_blocking(move || approval::enroll_phone(&uri)).await??;
    // The server's directory cache learns of the phone within a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    eprintln!(
        "bench: {name} push delivery for {}s with {} clients",
        args.duration_secs, args.concurrency
    );
    let push = push_bench::run(
        &base,
        "bench",
        &secret,
        &apns,
        args.concurrency,
        args.push_rate,
        Duration::from_secs(args.duration_secs),
    )
    .await?;
    eprintln!("bench: {}", serde_json::to_string(&push)?);
    // Decisions last.
    if !args.push_only {
        activate_procurement().await?;
        reports.push(load(Scenario::Decision).await?);
        reports.push(load(Scenario::AuthzenEvaluation).await?);
        reports.push(load(Scenario::AuthzenBatch).await?);
    }
    // Offboarding last: it needs the procurement policy (its $120 orders are allowed at
    // once) and suspends the fleet it creates.
    let offboard = if args.push_only {
        None
    } else {
        let key: serde_json::Value =
            serde_json::from_str(&run_ok(&mut cli(&["admin-key", "create", "--json"]))?)?;
        let key = key["key"].as_str().context("no admin key")?.to_owned();
        eprintln!(
            "bench: {name} offboarding a human with {} agents x {} credentials",
            args.offboard_agents, args.offboard_credentials_per_agent
        );
        let report = offboard_bench::run(
            &base,
            &key,
            args.offboard_agents,
            args.offboard_credentials_per_agent,
            args.concurrency,
        )
        .await?;
        eprintln!("bench: {}", serde_json::to_string(&report)?);
        Some(report)
    };
    Ok((reports, approvals, push, offboard))
}

pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    // The machine's CPUs, not this process's share of them (`gateway-bench --pin`).
    let cores = std::fs::read_to_string("/proc/cpuinfo")
        .map(|t| t.lines().filter(|l| l.starts_with("processor")).count())
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(0, usize::from));
    format!(
        "{cores} cores ({cpu}), {mem_gib:.0} GiB RAM; server and load generator on the same machine"
    )
}

pub(crate) fn run_date() -> String {
    Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d")
        .output()
        .map_or_else(
            |_| "on an unknown date".into(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        )
}

pub(crate) fn psql(admin_url: &str, sql: &str) -> anyhow::Result<()> {
    run_ok(Command::new("psql").arg(admin_url).arg("-qc").arg(sql)).map(|_| ())
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if !args.skip_build {
        run_ok(
            Command::new(env!("CARGO"))
                .current_dir(workspace_root())
                // The same selection as `cargo run --release --bin countersign` (README), so the
                // two share one build instead of compiling with different features.
                .args(["build", "--release", "--bin", "countersign"]),
        )?;
    }
    let mut rows = Vec::new();
    let mut approval_rows = Vec::new();
    let mut push_rows = Vec::new();

    let dir = std::env::temp_dir().join(format!(
        "countersign-bench-{}",
        countersign_jose::random_b64url(6)
    ));
    std::fs::create_dir_all(&dir)?;
    let sqlite = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
    let mut offboard_rows = Vec::new();
    let (reports, approvals, push, offboard) =
        bench_backend(&args, "SQLite", &sqlite, &dir).await?;
    offboard_rows.extend(offboard.map(|r| ("SQLite (WAL, file)", r)));
    for r in reports {
        rows.push(("SQLite (WAL, file)", r));
    }
    approval_rows.push(("SQLite (WAL, file)", approvals));
    push_rows.push(("SQLite (WAL, file)", push));
    // The peer between our two backends, in the same run and on the same machine state.
    let peer = peer_bench::measure(&dir, args.concurrency, args.duration_secs).await?;
    if args.quick {
        let _ = std::fs::remove_dir_all(&dir);
        println!("{}", render(&args, &rows, &peer));
        return Ok(());
    }

    let pg_dir = dir.join("pg");
    std::fs::create_dir_all(&pg_dir)?;
    let db = format!("cs_bench_{}", std::process::id());
    psql(&args.postgres_url, &format!("DROP DATABASE IF EXISTS {db}"))?;
    psql(&args.postgres_url, &format!("CREATE DATABASE {db}"))?;
    let base = args
        .postgres_url
        .rsplit_once('/')
        .map_or(args.postgres_url.as_str(), |(b, _)| b);
    // As docs/operations.md recommends for a database on the same host: no TLS.
    let url = format!("{base}/{db}?sslmode=disable");
    let result = bench_backend(&args, "PostgreSQL", &url, &pg_dir).await;
    psql(
        &args.postgres_url,
        &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
    )?;
    let (reports, approvals, push, offboard) = result?;
    offboard_rows.extend(offboard.map(|r| ("PostgreSQL (local, no TLS)", r)));
    for r in reports {
        rows.push(("PostgreSQL (local, no TLS)", r));
    }
    approval_rows.push(("PostgreSQL (local, no TLS)", approvals));
    push_rows.push(("PostgreSQL (local, no TLS)", push));
    let _ = std::fs::remove_dir_all(&dir);

    if args.push_only {
        println!("{}", render_push(&args, &push_rows));
        return Ok(());
    }
    let table = render(&args, &rows, &peer);
    let approvals = render_approvals(&args, &approval_rows);
    let path = workspace_root().join(&args.output);
    let existing = std::fs::read_to_string(&path).unwrap_or_default();
    let updated = replace_between(&existing, START, END, &table);
    let updated = replace_between(&updated, APPROVAL_START, APPROVAL_END, &approvals);
    let pushes = render_push(&args, &push_rows);
    let updated = replace_between(&updated, PUSH_START, PUSH_END, &pushes);
    let offboards = render_offboard(&args, &offboard_rows);
    let mut updated = replace_between(&updated, OFFBOARD_START, OFFBOARD_END, &offboards);
    let demo = render_demo(&time_demo(3)?);
    updated = replace_between(&updated, DEMO_START, DEMO_END, &demo);
    println!("{demo}\n");
    // In-process suites run last, with no server competing for the cores.
    if !args.skip_criterion {
        let suites = criterion_bench::run(&workspace_root())?;
        let table = criterion_bench::render(&run_date(), &machine(), &suites);
        updated = replace_between(
            &updated,
            criterion_bench::START,
            criterion_bench::END,
            &table,
        );
        println!("{table}\n");
    }
    std::fs::write(&path, updated)?;
    println!("{table}\n\n{approvals}");
    Ok(())
}

/// `text` with the block from `start` to `end` replaced by `block` (appended if absent).
pub(crate) fn replace_between(text: &str, start: &str, end: &str, block: &str) -> String {
    match (text.find(start), text.find(end)) {
        (Some(s), Some(e)) if e > s => format!("{}{block}{}", &text[..s], &text[e + end.len()..]),
        _ => format!("{text}\n{block}\n"),
    }
}
