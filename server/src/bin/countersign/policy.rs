//! `countersign policy ...`: validate, test, add, list, show, activate, roll back, dry-run.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use countersign_server::clock::{Clock, SystemClock};
use countersign_server::config::Config;
use countersign_server::policy::annotations::parse_duration;
use countersign_server::policy::service::PolicyEngine;
use countersign_server::policy::{cases, history, manage};
use countersign_server::store::Store;

use crate::{JsonFlag, print};

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Print the Cedar schema policies are validated against (from this configuration).
    Schema,
    /// Check a Cedar policy file against the schema; exits 1 and names line and column of
    /// each problem if it does not validate.
    Validate {
        file: PathBuf,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Run a TOML file of declarative cases (request -> expected outcome and approvers)
    /// against a policy file; exits 1 if any case fails.
    Test {
        file: PathBuf,
        /// The Cedar file under test (default: the suite's `policy`, relative to it).
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Store a policy file as a new version (it must validate).
    Add {
        file: PathBuf,
        #[arg(long)]
        description: Option<String>,
        /// Activate it at once.
        #[arg(long)]
        activate: bool,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// List stored versions, newest first.
    List {
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Show one version with its source.
    Show {
        version: i64,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Make a version the active one (running servers pick it up within
    /// policy.reload_interval_ms).
    Activate {
        version: i64,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Re-activate the version that was active before the current one.
    Rollback {
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Replay recent decisions through a candidate policy file and report what would
    /// change.
    DryRun {
        file: PathBuf,
        /// Replay the recorded decision history (the only source so far; required so the
        /// command says what it does).
        #[arg(long, required = true)]
        against_history: bool,
        /// How far back, as an ISO 8601 duration.
        #[arg(long, default_value = "P7D")]
        since: String,
        /// Most changed decisions to list.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[command(flatten)]
        out: JsonFlag,
    },
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn problems_text(
    file: &Path,
    problems: &[countersign_server::policy::document::Problem],
) -> String {
    problems
        .iter()
        .map(|p| format!("{}:{p}", file.display()))
        .collect::<Vec<_>>()
        .join("\n")
}

pub async fn policy_command(config: Config, cmd: &PolicyCommand) -> anyhow::Result<()> {
    let actor = "cli";
    // Policies may name the actions of the gateway's tools, as the server knows them.
    let config = countersign_server::gateway::declare_tool_types(config)
        .await
        .context("listing the MCP gateway's tools")?;
    let engine = PolicyEngine::new(&config).map_err(anyhow::Error::msg)?;
    let now = SystemClock.now_ms();
    match cmd {
        PolicyCommand::Schema => {
            print!("{}", engine.schema().text);
            Ok(())
        }
        PolicyCommand::Validate { file, out } => validate(&engine, file, out),
        PolicyCommand::Test { file, policy, out } => test(&engine, file, policy.as_deref(), out),
        PolicyCommand::Add {
            file,
            description,
            activate,
            out,
        } => {
            let store = crate::open_store(&config).await?;
            let added = Added {
                description: description.as_deref(),
                activate: *activate,
                actor,
                now,
            };
            add(&engine, &store, file, added, out).await
        }
        PolicyCommand::List { out } => list(&engine, &crate::open_store(&config).await?, out).await,
        PolicyCommand::Show { version, out } => {
            let store = crate::open_store(&config).await?;
            let v = manage::show(&engine, &store, *version).await?;
            print(out.json, &v, || v.source.clone().unwrap_or_default())
        }
        PolicyCommand::Activate { version, out } => {
            let store = crate::open_store(&config).await?;
            let v = manage::activate(&engine, &store, now, *version, actor).await?;
            print(out.json, &v, || {
                format!("policy version {} is active", v.version)
            })
        }
        PolicyCommand::Rollback { out } => {
            let store = crate::open_store(&config).await?;
            let v = manage::rollback(&engine, &store, now, actor).await?;
            print(out.json, &v, || {
                format!("rolled back: policy version {} is active", v.version)
            })
        }
        PolicyCommand::DryRun {
            file,
            against_history: _,
            since,
            limit,
            out,
        } => {
            let secs = parse_duration(since)
                .with_context(|| format!("--since {since:?} is not an ISO 8601 duration"))?;
            let store = crate::open_store(&config).await?;
            let since_ms = now - 1000 * secs as i64;
            dry_run(&engine, &store, file, since_ms, *limit, out).await
        }
    }
}

/// How `policy add` records the new version.
struct Added<'a> {
    description: Option<&'a str>,
    activate: bool,
    actor: &'a str,
    now: i64,
}

/// Compiles `file`; exits 1 when it does not.
fn validate(engine: &PolicyEngine, file: &Path, out: &JsonFlag) -> anyhow::Result<()> {
    let source = read(file)?;
    let (valid, problems, ids) = match engine.compile(&source, 0) {
        Ok(doc) => (true, Vec::new(), doc.policies.keys().cloned().collect()),
        Err(p) => (false, p, Vec::<String>::new()),
    };
    let value = serde_json::json!({"valid": valid, "policies": ids, "problems": problems});
    print(out.json, &value, || {
        if valid {
            format!(
                "{}: valid ({} policies: {})",
                file.display(),
                ids.len(),
                ids.join(", ")
            )
        } else {
            problems_text(file, &problems)
        }
    })?;
    if !valid {
        std::process::exit(1);
    }
    Ok(())
}

/// Runs the test suite `file` against its policy (or `policy`); exits 1 when a case fails.
fn test(
    engine: &PolicyEngine,
    file: &Path,
    policy: Option<&Path>,
    out: &JsonFlag,
) -> anyhow::Result<()> {
    let suite: cases::Suite = toml::from_str(&read(file)?)
        .with_context(|| format!("{} is not a policy test suite", file.display()))?;
    let policy_path = match (policy, &suite.policy) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(rel)) => file.parent().unwrap_or(Path::new(".")).join(rel),
        (None, None) => {
            anyhow::bail!("name the policy file with --policy or `policy = \"...\"` in the suite")
        }
    };
    let source = read(&policy_path)?;
    let doc = engine
        .compile(&source, 0)
        .map_err(|p| anyhow::anyhow!("{}", problems_text(&policy_path, &p)))?;
    let results = cases::run(engine, &doc, &suite);
    let failed = results.iter().filter(|r| !r.passed).count();
    print(out.json, &results, || {
        let mut lines: Vec<String> = results
            .iter()
            .map(|r| {
                let mut line = format!(
                    "{} {} -> {}",
                    if r.passed { "ok  " } else { "FAIL" },
                    r.name,
                    r.outcome.as_str()
                );
                if !r.approvers.is_empty() {
                    line.push_str(&format!(" (approvers: {})", r.approvers.join(", ")));
                }
                for f in &r.failures {
                    line.push_str(&format!("\n       {f}"));
                }
                line
            })
            .collect();
        lines.push(format!(
            "{} passed, {failed} failed",
            results.len() - failed
        ));
        lines.join("\n")
    })?;
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}

async fn add(
    engine: &PolicyEngine,
    store: &Store,
    file: &Path,
    added: Added<'_>,
    out: &JsonFlag,
) -> anyhow::Result<()> {
    let source = read(file)?;
    let version = manage::add(
        engine,
        store,
        added.now,
        &source,
        added.description,
        added.activate,
        added.actor,
    )
    .await
    .map_err(|e| match e {
        countersign_server::policy::PolicyError::Invalid(p) => {
            anyhow::anyhow!("{}", problems_text(file, &p))
        }
        other => other.into(),
    })?;
    print(out.json, &version, || {
        format!(
            "policy version {} added{}",
            version.version,
            if version.active { " and activated" } else { "" }
        )
    })
}

async fn list(engine: &PolicyEngine, store: &Store, out: &JsonFlag) -> anyhow::Result<()> {
    let versions = manage::list(engine, store).await?;
    print(out.json, &versions, || {
        if versions.is_empty() {
            return "no stored versions; the built-in default is active".into();
        }
        versions
            .iter()
            .map(|v| {
                format!(
                    "{}{}\t{}\t{}\t{}",
                    v.version,
                    if v.active { "*" } else { "" },
                    countersign_server::clock::rfc3339(v.created_at),
                    v.policies.join(","),
                    v.description.as_deref().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// Replays the decisions since `since_ms` (at most `limit`) under the candidate
/// policy in `file`.
async fn dry_run(
    engine: &PolicyEngine,
    store: &Store,
    file: &Path,
    since_ms: i64,
    limit: usize,
    out: &JsonFlag,
) -> anyhow::Result<()> {
    let source = read(file)?;
    let candidate = engine
        .compile(&source, -1)
        .map_err(|p| anyhow::anyhow!("{}", problems_text(file, &p)))?;
    let report = history::dry_run(store, &candidate, since_ms, limit).await?;
    print(out.json, &report, || {
        let mut lines = vec![format!(
            "replayed {} decisions: {} unchanged, {} would change{}",
            report.replayed,
            report.unchanged,
            report.replayed - report.unchanged,
            if report.skipped > 0 {
                format!(" ({} without recorded facts skipped)", report.skipped)
            } else {
                String::new()
            }
        )];
        for (change, n) in &report.changes {
            lines.push(format!("  {change}: {n}"));
        }
        for c in &report.changed {
            lines.push(format!(
                "  {} {} {} {}: {} -> {} ({})",
                countersign_server::clock::rfc3339(c.at),
                c.agent,
                c.action,
                c.subject,
                c.was.as_str(),
                c.would_be.as_str(),
                c.policies_now
                    .iter()
                    .map(|p| p.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        lines.join("\n")
    })
}
