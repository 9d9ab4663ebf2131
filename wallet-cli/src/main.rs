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
use countersign_wallet_core::{EnrollOptions, LiveEvent, ShownRequest, Wallet};
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
    Show {
        /// Request ids are base64url and may start with '-'.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Show a request and approve it.
    Approve(Decide),
    /// Show a request and deny it.
    Deny(Decide),
    /// Wait for requests and print each new one as it arrives over the live channel
    /// (with --interactive, decide each).
    Watch {
        /// Seconds between reconnection attempts (or polls with --poll).
        #[arg(long, default_value_t = 2)]
        interval: u64,
        /// Ask to approve or deny each request as it arrives.
        #[arg(long, conflicts_with = "auto_approve")]
        interactive: bool,
        /// Approve every request without asking. For demos and CI only: no human decides.
        #[arg(long)]
        auto_approve: bool,
        /// Poll the pending list instead of holding the live channel open.
        #[arg(long)]
        poll: bool,
        /// Stop after this many requests were seen (for scripts).
        #[arg(long)]
        count: Option<usize>,
    },
}

#[derive(Args)]
struct Decide {
    /// Request ids are base64url and may start with '-'.
    #[arg(allow_hyphen_values = true)]
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
    let recorded = wallet.decide(&args.id, kind, None)?;
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

/// `watch`: reacts to each new request once, however it learned of it.
struct Watcher<'a> {
    wallet: &'a Wallet,
    seen: std::collections::HashSet<String>,
    interactive: bool,
    auto_approve: bool,
    count: Option<usize>,
    json: bool,
}

impl Watcher<'_> {
    /// Handles request `id` if new; true once `count` requests were seen.
    fn handle(&mut self, id: &str, agent: &str, via: &str) -> anyhow::Result<bool> {
        if !self.seen.insert(id.to_owned()) {
            return Ok(false);
        }
        if self.json {
            println!("{}", json!({"request_id": id, "agent": agent, "via": via}));
        } else {
            println!("new request {id} from {agent} ({via})");
        }
        if self.interactive || self.auto_approve {
            let shown = self.wallet.show(id)?;
            if !self.json {
                println!("{}", describe(&shown));
            }
            let kind = if self.auto_approve || confirm("Approve? (no = deny)")? {
                DecisionKind::Approve
            } else {
                DecisionKind::Deny
            };
            let status = self.wallet.decide(id, kind, None)?.status;
            if self.json {
                println!("{}", json!({"request_id": id, "status": status}));
            } else {
                println!("{status}");
            }
        }
        Ok(self.count.is_some_and(|c| self.seen.len() >= c))
    }

    /// Handles every pending request; true when done.
    fn catch_up(&mut self) -> anyhow::Result<bool> {
        for p in self.wallet.pending()? {
            if self.handle(&p.id, &p.agent, "pending")? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn run(mut self, poll: bool, interval: std::time::Duration) -> anyhow::Result<()> {
        loop {
            if poll {
                if self.catch_up()? {
                    return Ok(());
                }
                std::thread::sleep(interval);
                continue;
            }
            let mut failure = None;
            let mut done = false;
            let wallet = self.wallet;
            let result = wallet.watch(|event| {
                let step = match event {
                    LiveEvent::Ready => {
                        // Announced after the catch-up, so whatever arrives from here on
                        // is heard over the channel.
                        let caught_up = self.catch_up();
                        if matches!(caught_up, Ok(false)) {
                            eprintln!("watching: live channel connected, waiting for requests");
                        }
                        caught_up
                    }
                    LiveEvent::Resync => self.catch_up(),
                    LiveEvent::Request { request_id } => {
                        self.handle(&request_id, "an agent", "live")
                    }
                };
                match step {
                    Ok(finished) => {
                        done = finished;
                        !finished
                    }
                    Err(e) => {
                        failure = Some(e);
                        false
                    }
                }
            });
            if let Some(e) = failure {
                return Err(e);
            }
            match result {
                Ok(()) if done => return Ok(()),
                Ok(()) => {}
                Err(e) => eprintln!("live channel: {e}; reconnecting"),
            }
            std::thread::sleep(interval);
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let wallet = open(&cli.state)?;
    match &cli.command {
        Command::Enroll { uri, name } => {
            let options = EnrollOptions {
                platform: "desktop".into(),
                name: name.clone(),
                // The desktop wallet hears of requests over the live channel.
                push_channel: "live".into(),
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
            auto_approve,
            poll,
            count,
        } => {
            if *auto_approve {
                eprintln!("WARNING: approving every request without asking; no human decides");
            }
            let watcher = Watcher {
                wallet: &wallet,
                seen: std::collections::HashSet::new(),
                interactive: *interactive,
                auto_approve: *auto_approve,
                count: *count,
                json: cli.json,
            };
            watcher.run(*poll, std::time::Duration::from_secs(*interval))?;
        }
    }
    Ok(())
}
