//! Chores. `cargo xtask bench` builds release binaries, starts a real server on SQLite and
//! then on PostgreSQL, drives it with the load generator, runs the criterion suites, and
//! rewrites the tables in docs/benchmarks.md. `cargo xtask loadgen` runs the generator
//! alone against any server.

mod approval;
mod bench;
mod console_bench;
mod criterion_bench;
mod dpop;
mod gateway_bench;
mod loadgen;
mod offboard_bench;
mod peer_bench;
mod push_bench;
mod structure;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build release binaries, benchmark SQLite and PostgreSQL over HTTP, run the criterion
    /// suites, rewrite docs/benchmarks.md.
    Bench(bench::BenchArgs),
    /// Drive a running server (started with --dev-approvals) and print results as JSON.
    Loadgen(loadgen::LoadArgs),
    /// Seed 10,000 agents, 100,000 humans and 1,000,000 trace events, then time every
    /// console page on SQLite and PostgreSQL (docs/benchmarks.md).
    ConsoleBench(console_bench::ConsoleBenchArgs),
    /// Allowed MCP tool calls through the gateway against the same calls straight to the
    /// upstream: calls per second and added latency (docs/benchmarks.md).
    GatewayBench(gateway_bench::GatewayBenchArgs),
    /// Measure the approval round trip against a running server with a software wallet.
    Approval(ApprovalArgs),
    /// Check the server's layering (function length, AppState at the edges, no module
    /// cycles) against xtask/structure-debt.txt; `--write` redraws the import graph.
    Structure(structure::StructureArgs),
}

#[derive(clap::Args)]
struct ApprovalArgs {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base: String,
    #[arg(long)]
    client_id: String,
    #[arg(long)]
    secret: String,
    /// An enrollment invitation URI for the human the agent asks (`alice`).
    #[arg(long)]
    invitation: String,
    #[arg(long, default_value_t = 300)]
    iterations: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Bench(args) => bench::run(args).await,
        Command::ConsoleBench(args) => console_bench::run(args).await,
        Command::GatewayBench(args) => gateway_bench::run(args).await,
        Command::Structure(args) => structure::run(&args),
        Command::Loadgen(args) => {
            let report = loadgen::run(&args).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Approval(a) => {
            let report = tokio::task::spawn_blocking(move || {
                approval::run(
                    &a.base,
                    &a.client_id,
                    &a.secret,
                    &a.invitation,
                    a.iterations,
                )
            })
            .await??;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
    }
}
