//! The tables `cargo xtask bench` writes into docs/benchmarks.md, between their markers.

use super::{
    APPROVAL_END, APPROVAL_START, BenchArgs, DEMO_END, DEMO_START, END, OFFBOARD_END,
    OFFBOARD_START, PUSH_END, PUSH_START, START, machine, run_date,
};
use crate::approval::ApprovalReport;
use crate::loadgen::{Report, Scenario};
use crate::offboard_bench::OffboardReport;
use crate::peer_bench;
use crate::push_bench::PushReport;

pub(super) fn render_demo(runs: &[f64]) -> String {
    format!(
        "{DEMO_START}\nMeasured {} on {}.\n\nCommand: `cargo xtask bench` (runs `countersign demo --json` {} times)\n\n\
         | runs | fastest s | slowest s |\n|---:|---:|---:|\n| {} | {:.2} | {:.2} |\n{DEMO_END}",
        run_date(),
        machine(),
        runs.len(),
        runs.len(),
        runs.iter().copied().fold(f64::INFINITY, f64::min) / 1000.0,
        runs.iter().copied().fold(0.0, f64::max) / 1000.0,
    )
}

fn scenario_label(scenario: Scenario) -> &'static str {
    match scenario {
        Scenario::Authorize => "bc-authorize",
        Scenario::Flow => "full flow (authorize, approve, token)",
        Scenario::Decision => "POST /v1/decisions (procurement policy, traced)",
        Scenario::Healthz => "GET /healthz (HTTP alone: the floor)",
        Scenario::AuthzenEvaluation => "AuthZEN evaluation (procurement policy, traced)",
        Scenario::AuthzenBatch => "AuthZEN evaluations, 100 per request (decisions, traced)",
    }
}

/// The CIBA table: our rows, each with its rate as a multiple of the peer's for the same
/// scenario in the same run, then the peer's own rows.
pub(super) fn render(args: &BenchArgs, rows: &[(&str, Report)], peer: &[Report]) -> String {
    let mut out = format!(
        "{START}\nMeasured {} on {}.\n\nCommand: `cargo xtask bench --duration-secs {} --concurrency {}`\n\n\
         | storage | scenario | per second | × peer | p50 ms | p95 ms | p99 ms | errors | CPU steal |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n",
        run_date(),
        machine(),
        args.duration_secs,
        args.concurrency
    );
    let peer_rate = |scenario: Scenario| {
        peer.iter()
            .find(|p| p.scenario == scenario)
            .map(|p| p.per_second)
            .filter(|rate| *rate > 0.0)
    };
    let peer_name = peer_bench::name();
    let ours = rows
        .iter()
        .map(|(storage, r)| (*storage, r, peer_rate(r.scenario)));
    let theirs = peer.iter().map(|r| (peer_name.as_str(), r, None));
    for (storage, r, against) in ours.chain(theirs) {
        let ratio = against.map_or_else(|| "—".to_owned(), |p| format!("{:.2}", r.per_second / p));
        out.push_str(&format!(
            "| {storage} | {} | {:.0} | {ratio} | {:.2} | {:.2} | {:.2} | {} | {:.0}% |\n",
            scenario_label(r.scenario),
            r.per_second,
            r.p50_ms,
            r.p95_ms,
            r.p99_ms,
            r.errors,
            r.steal_pct
        ));
    }
    out.push_str(END);
    out
}

pub(super) fn render_push(args: &BenchArgs, rows: &[(&str, PushReport)]) -> String {
    let mut out = format!(
        "{PUSH_START}\nMeasured {} on {}.\n\nCommand: `cargo xtask bench --duration-secs {} --concurrency {} --push-rate {}`\n\n\
         | storage | requests/s offered | requests | alerts delivered | p50 ms | p95 ms | p99 ms |\n|---|---:|---:|---:|---:|---:|---:|\n",
        run_date(),
        machine(),
        args.duration_secs,
        args.concurrency,
        args.push_rate
    );
    for (storage, r) in rows {
        out.push_str(&format!(
            "| {storage} | {} | {} | {} | {:.2} | {:.2} | {:.2} |\n",
            r.rate, r.requests, r.delivered, r.p50_ms, r.p95_ms, r.p99_ms
        ));
    }
    out.push_str(PUSH_END);
    out
}

pub(super) fn render_approvals(args: &BenchArgs, rows: &[(&str, ApprovalReport)]) -> String {
    let mut out = format!(
        "{APPROVAL_START}\nMeasured {} on {}.\n\nCommand: `cargo xtask bench --approvals {}` (one round trip at a time)\n\n\
         | storage | round trips | p50 ms | p95 ms | p99 ms | max ms | median per step: authorize / show / decide / token ms |\n|---|---:|---:|---:|---:|---:|---|\n",
        run_date(),
        machine(),
        args.approvals
    );
    for (storage, r) in rows {
        out.push_str(&format!(
            "| {storage} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} / {:.2} / {:.2} / {:.2} |\n",
            r.iterations,
            r.p50_ms,
            r.p95_ms,
            r.p99_ms,
            r.max_ms,
            r.step_p50_ms[0],
            r.step_p50_ms[1],
            r.step_p50_ms[2],
            r.step_p50_ms[3]
        ));
    }
    out.push_str(APPROVAL_END);
    out
}

pub(super) fn render_offboard(args: &BenchArgs, rows: &[(&str, OffboardReport)]) -> String {
    let mut out = format!(
        "{OFFBOARD_START}\nMeasured {} on {}.\n\nCommand: `cargo xtask bench --offboard-agents {} --offboard-credentials-per-agent {}`\n\n\
         | storage | agents | live credentials | revoked | deactivation answered ms | verifier refuses ms |\n|---|---:|---:|---:|---:|---:|\n",
        run_date(),
        machine(),
        args.offboard_agents,
        args.offboard_credentials_per_agent
    );
    for (storage, r) in rows {
        out.push_str(&format!(
            "| {storage} | {} | {} | {} | {:.1} | {:.1} |\n",
            r.agents, r.credentials, r.revoked, r.revoke_ms, r.visible_ms
        ));
    }
    out.push_str(OFFBOARD_END);
    out
}
