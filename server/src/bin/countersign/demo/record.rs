//! The demo's last act: the decision trace of the run, as the audit trail holds it, and
//! the chain's verification after a freshly signed checkpoint.

use std::time::Instant;

use anyhow::bail;
use countersign_server::audit::{self, checkpoint};
use serde_json::{Value, json};

use super::Demo;
use super::narrator::{Tone, ms_since};
use super::story::dollars;

/// A trace event's determining policies as `id vN`.
pub(super) fn policy_names(detail: &Value) -> Vec<String> {
    detail["policies"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| format!("{} v{}", p["id"].as_str().unwrap_or("?"), p["version"]))
                .collect()
        })
        .unwrap_or_default()
}

/// The strings of a JSON array (none for anything else).
pub(super) fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

impl Demo {
    /// The decision trace of the run and the audit chain's verification.
    pub(super) async fn record(&self) -> anyhow::Result<()> {
        self.narrator.part("5. The record");
        let state = &self.running.state;
        let mut events = audit::recent(&state.store, None, 1000).await?;
        events.reverse();
        let decisions: Vec<Value> = events
            .iter()
            .filter(|e| e.kind == "decision.made")
            .map(|e| {
                json!({
                    "request": e.subject, "action": e.detail["action"],
                    "amount": e.detail["inputs"][0]["arguments"]["amount"],
                    "environment": e.detail["inputs"][0]["arguments"]["environment"],
                    "outcome": e.detail["outcome"], "policies": policy_names(&e.detail),
                    "reasons": e.detail["reasons"],
                })
            })
            .collect();
        let lines: Vec<String> = decisions
            .iter()
            .map(|d| {
                let amount = d["amount"]
                    .as_f64()
                    .map(|a| format!(" {}", dollars(a.round() as u64)))
                    .or_else(|| d["environment"].as_str().map(|e| format!(" {e}")))
                    .unwrap_or_default();
                format!(
                    "{}{amount} → {} by {}",
                    d["action"].as_str().unwrap_or("?"),
                    d["outcome"].as_str().unwrap_or("?"),
                    strings(&d["policies"]).join(", ")
                )
            })
            .collect();
        self.narrator.event(
            "trace",
            Tone::Done,
            &format!(
                "decision trace: {} decisions, each with the facts it saw",
                decisions.len()
            ),
            json!({ "decisions": decisions }),
            &lines,
        );

        let started = Instant::now();
        checkpoint::sign_head(&state.audit_log, &state.publishing()).await?;
        let report = audit::verify(&state.store, &state.keys.jwks(), &state.audit_log).await?;
        if !report.intact {
            bail!(
                "the audit chain is broken at {:?}: {:?}",
                report.broken_at,
                report.reason
            );
        }
        self.narrator.event(
            "audit.verified",
            Tone::Done,
            &format!(
                "audit verify: {} events hash-chained, {} signed log checkpoint(s) verified",
                report.events, report.log_checkpoints_verified
            ),
            json!({
                "intact": report.intact, "events": report.events, "head": report.head,
                "log_checkpoints_verified": report.log_checkpoints_verified,
                "took_ms": ms_since(started),
            }),
            &[],
        );
        Ok(())
    }
}
