//! `countersign audit list|verify|export|approvals|checkpoint`.

use std::io::Write as _;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use countersign_server::audit::export::{self, ExportFilter, ExportFormat};
use countersign_server::audit::{self, checkpoint};
use countersign_server::clock::SystemClock;
use countersign_server::config::Config;
use countersign_server::server;

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
    /// 1 if anything is broken, naming the first bad event.
    Verify {
        #[command(flatten)]
        out: JsonFlag,
    },
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
    /// Sign a checkpoint of the chain's head now (the server does so periodically).
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

pub async fn audit_command(config: Config, cmd: &AuditCommand) -> anyhow::Result<()> {
    let state = server::open_state(config, Arc::new(SystemClock)).await?;
    let store = &state.store;
    match cmd {
        AuditCommand::List {
            subject,
            limit,
            out,
        } => {
            let events = audit::recent(store, subject.as_deref(), *limit).await?;
            print(out.json, &events, || {
                events
                    .iter()
                    .map(|e| {
                        format!(
                            "{}\t{}\t{}\t{}\t{}\t{}",
                            e.seq,
                            countersign_server::credentials::vc::rfc3339(e.at.div_euclid(1000)),
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
        AuditCommand::Verify { out } => {
            let report = audit::verify(store, &state.keys.jwks()).await?;
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
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            if format == ExportFormat::Csv {
                writeln!(out, "{}", export::CSV_HEADER)?;
            }
            let mut failed = None;
            let count = export::for_each(store, &filter, |e| {
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
        AuditCommand::Approvals {
            agent,
            resource,
            since,
            out,
        } => {
            let since = since.as_deref().map(instant).transpose()?.unwrap_or(0);
            let records = export::approvals(store, agent, resource.as_deref(), since).await?;
            print(out.json, &records, || {
                if records.is_empty() {
                    return format!("no approved access by {agent}");
                }
                records
                    .iter()
                    .map(|r| {
                        format!(
                            "{}\t{}\t{}\t{}\tapproved by {} ({})\tpolicies {}\tcredentials {}",
                            countersign_server::credentials::vc::rfc3339(r.at),
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
        AuditCommand::Checkpoint { out } => {
            let seq = checkpoint::sign_head(&state).await?;
            let value = serde_json::json!({ "checkpoint": seq });
            print(out.json, &value, || match seq {
                Some(seq) => format!("checkpoint signed at event {seq}"),
                None => "the head is already checkpointed".into(),
            })
        }
    }
}
