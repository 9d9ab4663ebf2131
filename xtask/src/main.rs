//! Chores. `cargo xtask bench` builds release binaries, starts a real server on SQLite and
//! then on PostgreSQL, drives it with the load generator, and rewrites the tables in
//! docs/benchmarks.md. `cargo xtask loadgen` runs the generator alone against any server.

mod bench;
mod loadgen;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build release binaries, benchmark SQLite and PostgreSQL, rewrite docs/benchmarks.md.
    Bench(bench::BenchArgs),
    /// Drive a running server (started with --dev-approvals) and print results as JSON.
    Loadgen(loadgen::LoadArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Bench(args) => bench::run(args).await,
        Command::Loadgen(args) => {
            let report = loadgen::run(&args).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
    }
}
