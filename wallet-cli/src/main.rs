//! `countersign-wallet`: a headless wallet for desktops, demos and CI, on wallet-core with
//! its software keystore and passkeys. The device key and passkey live in one state file
//! readable only by its owner (0600). The human confirms at the terminal (or with
//! `--yes` in scripts), which stands in for the phone's biometric.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use countersign_shared::approval::DecisionKind;
use countersign_wallet_core::software::{self, FileStorage};
use countersign_wallet_core::{EnrollOptions, ShownRequest, Wallet};
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "countersign-wallet",
    version,
    about = "A headless Countersign wallet"
)]
struct Cli {
    /// The wallet's state file (device key, passkey, enrollment). Env: COUNTERSIGN_WALLET_STATE.
    #[arg(
        long,
        global = true,
        env = "COUNTERSIGN_WALLET_STATE",
        default_value = "countersign-wallet.json"
    )]
    state: PathBuf,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enroll with a `countersign://enroll?...` invitation URI.
    Enroll {
        uri: String,
        /// A name the human recognises for this device.
        #[arg(long)]
        name: Option<String>,
    },
    /// List the requests waiting for you.
    Requests,
    /// Show one request, after checking the server's signature over it.
    Show { id: String },
    /// Show a request and approve it.
    Approve(Decide),
    /// Show a request and deny it.
    Deny(Decide),
    /// Wait for requests and print each new one (with --interactive, decide each).
    Watch {
        /// Seconds between polls.
        #[arg(long, default_value_t = 2)]
        interval: u64,
        /// Ask to approve or deny each request as it arrives.
        #[arg(long)]
        interactive: bool,
        /// Stop after this many requests were seen (for scripts).
        #[arg(long)]
        count: Option<usize>,
    },
}

#[derive(Args)]
struct Decide {
    id: String,
    /// Do not ask for confirmation.
    #[arg(long)]
    yes: bool,
}

fn open(state: &std::path::Path) -> anyhow::Result<Wallet> {
    let storage =
        FileStorage::open(state).with_context(|| format!("opening {}", state.display()))?;
    Ok(Wallet::new(software::platform(Arc::new(storage))))
}

fn describe(shown: &ShownRequest) -> String {
    let t = &shown.transaction;
    let mut lines = vec![
        format!("request      {}", t.request_id),
        format!(
            "agent        {} ({}, owned by {})",
            t.agent.name, t.agent.client_id, t.agent.owner
        ),
        format!("action       {}", t.action.as_deref().unwrap_or("-")),
    ];
    if let Some(details) = &t.authorization_details {
        lines.push(format!("details      {details}"));
    }
    if let Some(message) = &t.binding_message {
        lines.push(format!("message      {message}"));
    }
    if let Some(task) = &t.task_id {
        lines.push(format!("task         {task}"));
    }
    lines.push(format!(
        "credential   valid for {} s once approved; decide before {}",
        t.credential_validity_secs, t.expires_at
    ));
    if let Some(reason) = &t.policy_reason {
        lines.push(format!("why          {reason}"));
    }
    lines.push(format!("transaction  {}", shown.transaction_hash));
    lines.join("\n")
}

fn shown_json(shown: &ShownRequest) -> serde_json::Value {
    json!({ "transaction": shown.transaction, "transaction_hash": shown.transaction_hash })
}

fn confirm(question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("no terminal to confirm on; pass --yes");
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

fn decide(wallet: &Wallet, args: &Decide, kind: DecisionKind, json: bool) -> anyhow::Result<()> {
    let shown = wallet.show(&args.id)?;
    if !json {
        println!("{}", describe(&shown));
    }
    let verb = if kind == DecisionKind::Approve {
        "Approve"
    } else {
        "Deny"
    };
    if !args.yes && !confirm(&format!("{verb} this request?"))? {
        bail!("not confirmed; nothing was sent");
    }
    let recorded = wallet.decide(&args.id, kind)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"request": shown_json(&shown), "status": recorded.status})
            )?
        );
    } else {
        println!("{}", recorded.status);
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let wallet = open(&cli.state)?;
    match &cli.command {
        Command::Enroll { uri, name } => {
            let options = EnrollOptions {
                platform: "desktop".into(),
                name: name.clone(),
                push_channel: "none".into(),
                push_token: None,
            };
            let enrollment = wallet.enroll(uri, &options)?;
            if cli.json {
                println!(
                    "{}",
                    json!({"server": enrollment.server, "device_id": enrollment.device_id, "subject": enrollment.subject})
                );
            } else {
                println!(
                    "enrolled as {} ({}) with {}; device {}",
                    enrollment.name, enrollment.subject, enrollment.server, enrollment.device_id
                );
            }
        }
        Command::Requests => {
            let pending = wallet.pending()?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&pending)?);
            } else if pending.is_empty() {
                println!("no requests waiting");
            } else {
                for p in pending {
                    println!(
                        "{}\t{}\t{}",
                        p.id,
                        p.agent,
                        p.action.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        Command::Show { id } => {
            let shown = wallet.show(id)?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&shown_json(&shown))?);
            } else {
                println!("{}", describe(&shown));
            }
        }
        Command::Approve(args) => decide(&wallet, args, DecisionKind::Approve, cli.json)?,
        Command::Deny(args) => decide(&wallet, args, DecisionKind::Deny, cli.json)?,
        Command::Watch {
            interval,
            interactive,
            count,
        } => {
            let mut seen = std::collections::HashSet::new();
            loop {
                for p in wallet.pending()? {
                    if !seen.insert(p.id.clone()) {
                        continue;
                    }
                    if cli.json {
                        println!("{}", serde_json::to_string(&p)?);
                    } else {
                        println!(
                            "new request {} from {} ({})",
                            p.id,
                            p.agent,
                            p.action.as_deref().unwrap_or("-")
                        );
                    }
                    if *interactive {
                        let shown = wallet.show(&p.id)?;
                        println!("{}", describe(&shown));
                        let kind = if confirm("Approve? (no = deny)")? {
                            DecisionKind::Approve
                        } else {
                            DecisionKind::Deny
                        };
                        println!("{}", wallet.decide(&p.id, kind)?.status);
                    }
                    if count.is_some_and(|c| seen.len() >= c) {
                        return Ok(());
                    }
                }
                std::thread::sleep(std::time::Duration::from_secs(*interval));
            }
        }
    }
    Ok(())
}
