//! `countersign audit list|verify|export|approvals|checkpoint|prove|check-proof|key`.

use std::io::Write as _;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use countersign_server::audit::export::{self, ExportFilter, ExportFormat};
use countersign_server::audit::log::AuditLog;
use countersign_server::audit::sinks::Publishing;
use countersign_server::audit::{self, checkpoint, log};
use countersign_server::clock::SystemClock;
use countersign_server::config::Config;
use countersign_server::server;
use countersign_server::store::Store;

use crate::{JsonFlag, print};

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Jsonl,
    Csv,
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Show the newest audit events, newest first.
    List {
        /// Only events about this subject (`credential:ID`, `agent:ID`, `human:SUBJECT`).
        #[arg(long, allow_hyphen_values = true)]
        subject: Option<String>,
        /// How many events (at most 1000).
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Recompute the hash chain over every event and check the signed checkpoints; exits
    /// 1 if anything is broken, naming the first bad event. With --checkpoint, also prove
    /// the trail extends each checkpoint held outside the database (a consistency proof):
    /// truncation, rewriting and forks since that checkpoint are found even if the
    /// database's own checkpoints were rewritten too.
    Verify {
        /// A signed checkpoint held elsewhere (file with the signed note; `-` for stdin).
        #[arg(long, value_name = "FILE")]
        checkpoint: Vec<std::path::PathBuf>,
        /// The log's verifier key to check those checkpoints with (default: this server's
        /// own, from its keys directory; pass the one you hold independently).
        #[arg(long, value_name = "VKEY")]
        key: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Print an inclusion proof of event SEQ in the newest signed checkpoint covering it
    /// (signing one first if none does), as JSON an auditor checks offline with
    /// `countersign audit check-proof` and the log's verifier key.
    Prove { seq: i64 },
    /// Check an inclusion proof offline (no database): the checkpoint is signed by the
    /// log's key, the event hashes to its hash, and its audit path leads to the signed
    /// root. Exits 1 if not.
    CheckProof {
        /// The proof (JSON from `countersign audit prove`; `-` for stdin).
        file: std::path::PathBuf,
        /// The log's verifier key, obtained independently (GET
        /// /.well-known/countersign/audit-log-key, or `countersign audit key`).
        #[arg(long, value_name = "VKEY")]
        key: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Print the audit log's verifier key (c2sp.org/signed-note).
    Key,
    /// Write events (oldest first) to stdout as JSON lines or CSV.
    Export {
        /// RFC 3339 time or Unix seconds, inclusive.
        #[arg(long)]
        since: Option<String>,
        /// RFC 3339 time or Unix seconds, exclusive.
        #[arg(long)]
        until: Option<String>,
        /// Only events about this agent (client id).
        #[arg(long, allow_hyphen_values = true)]
        agent: Option<String>,
        /// Only events about this human (as user, owner, approver or actor).
        #[arg(long, allow_hyphen_values = true)]
        human: Option<String>,
        #[arg(long, value_enum, default_value = "jsonl")]
        format: Format,
    },
    /// Who approved an agent's access (to a resource), under which policy.
    Approvals {
        #[arg(long, allow_hyphen_values = true)]
        agent: String,
        #[arg(long)]
        resource: Option<String>,
        /// RFC 3339 time or Unix seconds.
        #[arg(long)]
        since: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Sign a checkpoint of the trail now if it grew (the server does so periodically)
    /// and print the newest one: the signed note (c2sp.org/tlog-checkpoint) to keep
    /// outside the database.
    Checkpoint {
        #[command(flatten)]
        out: JsonFlag,
    },
}

/// Unix milliseconds of an RFC 3339 time or Unix seconds.
fn instant(text: &str) -> anyhow::Result<i64> {
    if let Ok(secs) = text.parse::<i64>() {
        return Ok(secs.saturating_mul(1000));
    }
    let ts: jiff::Timestamp = text
        .parse()
        .with_context(|| format!("{text:?} is neither RFC 3339 nor Unix seconds"))?;
    Ok(ts.as_millisecond())
}

fn read_input(path: &std::path::Path) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
        return Ok(text);
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Checks an inclusion proof without opening the server's database.
fn check_proof(file: &std::path::Path, key: &str, json: bool) -> anyhow::Result<()> {
    let proof: log::InclusionProof = serde_json::from_str(&read_input(file)?)
        .with_context(|| format!("{} is not an inclusion proof", file.display()))?;
    let outcome = log::check_inclusion(&proof, key);
    let report = serde_json::json!({
        "valid": outcome.is_ok(),
        "seq": proof.event.seq,
        "kind": proof.event.kind,
        "tree_size": proof.tree_size,
        "root": proof.root,
        "reason": outcome.as_ref().err().map(ToString::to_string),
    });
    print(json, &report, || match &outcome {
        Ok(()) => format!(
            "event {} ({}) is in the log of {} events with root {}",
            proof.event.seq, proof.event.kind, proof.tree_size, proof.root
        ),
        Err(e) => format!("the proof does NOT hold: {e}"),
    })?;
    if outcome.is_err() {
        std::process::exit(1);
    }
    Ok(())
}

/// What the audit commands work with: the trail, its Merkle-tree log, and where signed
/// checkpoints are sent.
struct Trail<'a> {
    store: &'a Store,
    log: &'a AuditLog,
    publishing: Publishing<'a>,
}

pub async fn audit_command(config: Config, cmd: &AuditCommand) -> anyhow::Result<()> {
    if let AuditCommand::CheckProof { file, key, out } = cmd {
        return check_proof(file, key, out.json);
    }
    let state = server::open_state(config, Arc::new(SystemClock)).await?;
    let trail = Trail {
        store: &state.store,
        log: &state.audit_log,
        publishing: state.publishing(),
    };
    match cmd {
        AuditCommand::List {
            subject,
            limit,
            out,
        } => list(&state.store, subject.as_deref(), *limit, out).await,
        AuditCommand::Verify {
            checkpoint,
            key,
            out,
        } => verify(&trail, &state.keys.jwks(), checkpoint, key.as_deref(), out).await,
        AuditCommand::Export {
            since,
            until,
            agent,
            human,
            format,
        } => {
            let filter = ExportFilter {
                since_ms: since.as_deref().map(instant).transpose()?.unwrap_or(0),
                until_ms: until
                    .as_deref()
                    .map(instant)
                    .transpose()?
                    .unwrap_or(i64::MAX),
                agent: agent.clone(),
                human: human.clone(),
            };
            let format = match format {
                Format::Jsonl => ExportFormat::Jsonl,
                Format::Csv => ExportFormat::Csv,
            };
            export_to_stdout(&state.store, &filter, format).await
        }
        AuditCommand::Approvals {
            agent,
            resource,
            since,
            out,
        } => {
            approvals(
                &state.store,
                agent,
                resource.as_deref(),
                since.as_deref(),
                out,
            )
            .await
        }
        AuditCommand::Checkpoint { out } => checkpoint_now(&trail, out).await,
        AuditCommand::Prove { seq } => prove(&trail, *seq).await,
        AuditCommand::Key => {
            println!("{}", state.audit_log.verifier());
            Ok(())
        }
        AuditCommand::CheckProof { .. } => Ok(()),
    }
}

async fn list(
    store: &Store,
    subject: Option<&str>,
    limit: i64,
    out: &JsonFlag,
) -> anyhow::Result<()> {
    let events = audit::recent(store, subject, limit).await?;
    print(out.json, &events, || {
        events
            .iter()
            .map(|e| {
                format!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    e.seq,
                    countersign_server::clock::rfc3339(e.at.div_euclid(1000)),
                    e.kind,
                    e.subject,
                    e.actor,
                    e.detail
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// Verifies the trail, and that it extends each checkpoint given (`key` verifies their
/// signatures; default: this server's log key). Exits 1 when something does not hold.
async fn verify(
    trail: &Trail<'_>,
    jwks: &countersign_jose::JwkSet,
    checkpoint: &[std::path::PathBuf],
    key: Option<&str>,
    out: &JsonFlag,
) -> anyhow::Result<()> {
    let mut report = audit::verify(trail.store, jwks, trail.log).await?;
    let extensions = extensions(trail, checkpoint, key).await?;
    for broken in extensions.iter().filter(|e| !e.extends) {
        report.intact = false;
        report.reason = broken.reason.clone().or(report.reason);
    }
    if !checkpoint.is_empty() {
        let value = serde_json::json!({ "trail": report, "checkpoints": extensions });
        print(out.json, &value, || {
            let mut lines = vec![trail_line(&report)];
            for e in &extensions {
                lines.push(if e.extends {
                    format!(
                        "extends the checkpoint of {} events (root {}): consistency proof of {} hashes to {} events (root {})",
                        e.checkpoint_size,
                        e.checkpoint_root,
                        e.consistency_proof.len(),
                        e.log_size,
                        e.log_root
                    )
                } else {
                    format!(
                        "does NOT extend the checkpoint of {} events: {}",
                        e.checkpoint_size,
                        e.reason.as_deref().unwrap_or("unknown")
                    )
                });
            }
            lines.join("\n")
        })?;
        if !report.intact {
            std::process::exit(1);
        }
        return Ok(());
    }
    print(out.json, &report, || {
        match (&report.broken_at, &report.reason) {
            (Some(seq), Some(reason)) => {
                format!("audit trail BROKEN at event {seq}: {reason}")
            }
            _ => format!(
                "audit trail intact: {} event(s), head {}, {} signed checkpoint(s) verified{}",
                report.events,
                report.head,
                report.checkpoints_verified,
                if report.checkpoints_unverifiable > 0 {
                    format!(
                        " ({} signed by retired keys not checked)",
                        report.checkpoints_unverifiable
                    )
                } else {
                    String::new()
                }
            ),
        }
    })?;
    if !report.intact {
        std::process::exit(1);
    }
    Ok(())
}

/// Whether the trail extends each checkpoint file given (`-` is standard input), their
/// signatures checked with `key` (default: this server's log key).
async fn extensions(
    trail: &Trail<'_>,
    checkpoint: &[std::path::PathBuf],
    key: Option<&str>,
) -> anyhow::Result<Vec<log::Extension>> {
    let verifier = match key {
        Some(k) => countersign_tlog::note::NoteVerifier::parse(k.trim())
            .context("--key is not a verifier key")?,
        None => trail.log.verifier(),
    };
    let mut extensions = Vec::new();
    for path in checkpoint {
        let note = read_input(path)?;
        let ext = log::extends(
            trail.store,
            trail.log.origin(),
            &note,
            std::slice::from_ref(&verifier),
        )
        .await
        .with_context(|| format!("checkpoint {}", path.display()))?;
        extensions.push(ext);
    }
    Ok(extensions)
}

async fn export_to_stdout(
    store: &Store,
    filter: &ExportFilter,
    format: ExportFormat,
) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if format == ExportFormat::Csv {
        writeln!(out, "{}", export::CSV_HEADER)?;
    }
    let mut failed = None;
    let count = export::for_each(store, filter, |e| {
        if failed.is_none()
            && let Err(err) = writeln!(out, "{}", export::line(&e, format))
        {
            failed = Some(err);
        }
    })
    .await?;
    if let Some(err) = failed {
        return Err(err.into());
    }
    out.flush()?;
    eprintln!("exported {count} event(s)");
    Ok(())
}

async fn approvals(
    store: &Store,
    agent: &str,
    resource: Option<&str>,
    since: Option<&str>,
    out: &JsonFlag,
) -> anyhow::Result<()> {
    let since = since.map(instant).transpose()?.unwrap_or(0);
    let records = export::approvals(store, agent, resource, since).await?;
    print(out.json, &records, || {
        if records.is_empty() {
            return format!("no approved access by {agent}");
        }
        records
            .iter()
            .map(|r| {
                format!(
                    "{}\t{}\t{}\t{}\tapproved by {} ({})\tpolicies {}\tcredentials {}",
                    countersign_server::clock::rfc3339(r.at),
                    r.request,
                    r.action,
                    r.resource,
                    r.approved_by.as_deref().unwrap_or("-"),
                    r.method.as_deref().unwrap_or("pending"),
                    r.policies,
                    r.credentials.join(",")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// Signs a checkpoint of the trail now (if it grew) and prints the newest.
async fn checkpoint_now(trail: &Trail<'_>, out: &JsonFlag) -> anyhow::Result<()> {
    let store = trail.store;
    let signed = checkpoint::sign_head(trail.log, &trail.publishing).await?;
    let newest = store.latest_log_checkpoint().await?;
    let value = serde_json::json!({
        "signed": signed,
        "size": newest.as_ref().map(|c| c.size),
        "note": newest.as_ref().map(|c| c.note.clone()),
    });
    // The text form is the signed note itself: `countersign audit checkpoint >
    // FILE` exports it for `audit verify --checkpoint FILE` later.
    print(out.json, &value, || match &newest {
        Some(c) => c.note.trim_end().to_owned(),
        None => "the trail is empty: nothing to checkpoint".into(),
    })
}

async fn prove(trail: &Trail<'_>, seq: i64) -> anyhow::Result<()> {
    let store = trail.store;
    let proof = match log::prove(store, trail.log, seq).await {
        Err(log::LogError::NotYet(_)) => {
            checkpoint::sign_head(trail.log, &trail.publishing).await?;
            log::prove(store, trail.log, seq).await?
        }
        other => other?,
    };
    println!("{}", serde_json::to_string_pretty(&proof)?);
    Ok(())
}

/// One line saying how the chain and the database's checkpoints fared.
fn trail_line(report: &audit::ChainReport) -> String {
    match (&report.broken_at, &report.reason) {
        (Some(seq), Some(reason)) => format!("audit trail BROKEN at event {seq}: {reason}"),
        _ => format!(
            "audit trail intact: {} event(s), head {}, {} log checkpoint(s) verified",
            report.events, report.head, report.log_checkpoints_verified
        ),
    }
}
