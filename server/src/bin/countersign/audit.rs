//! `countersign audit list|verify`.

use clap::Subcommand;
use countersign_server::audit;
use countersign_server::store::Store;

use crate::{JsonFlag, print};

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
    /// Recompute the hash chain over every event; exits 1 if it is broken.
    Verify {
        #[command(flatten)]
        out: JsonFlag,
    },
}

pub async fn audit_command(store: &Store, cmd: &AuditCommand) -> anyhow::Result<()> {
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
            let report = audit::verify(store).await?;
            print(out.json, &report, || {
                match (&report.broken_at, &report.reason) {
                    (Some(seq), Some(reason)) => {
                        format!("audit trail BROKEN at event {seq}: {reason}")
                    }
                    _ => format!(
                        "audit trail intact: {} event(s), head {}",
                        report.events, report.head
                    ),
                }
            })?;
            if !report.intact {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
