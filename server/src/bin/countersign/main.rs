//! `countersign`: run the server and administer it from the command line.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use countersign_server::clock::{Clock, SystemClock};
use countersign_server::config::{Config, LogFormat};
use countersign_server::directory::{self, NewAgent, NewHuman};
use countersign_server::oidc::keys::KeyRing;
use countersign_server::store::Store;
use countersign_server::{admin, server};
use serde::Serialize;

mod audit;
mod credential;
mod device;
mod push;
mod verify;

use audit::{AuditCommand, audit_command};
use credential::credential_command;
use device::{DeviceCommand, device_command};
use push::{PushCommand, push_command};
use verify::verify;

#[derive(Parser)]
#[command(
    name = "countersign",
    version,
    about = "Runtime authorization for AI agents: a CIBA authorization server"
)]
struct Cli {
    /// TOML configuration file (keys as in docs/operations.md).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Database URL (`sqlite://PATH?mode=rwc` or `postgres://...`). Env: COUNTERSIGN_DATABASE_URL.
    #[arg(long, global = true, value_name = "URL")]
    database: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the authorization server.
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage humans (agent owners and approvers).
    #[command(subcommand)]
    Human(HumanCommand),
    /// Manage agents (CIBA clients).
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Manage admin API keys.
    #[command(subcommand, name = "admin-key")]
    AdminKey(AdminKeyCommand),
    /// Manage the server's signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// List, show and revoke issued credentials.
    #[command(subcommand)]
    Credential(CredentialCommand),
    /// Invite humans to enroll wallets; list and remove devices.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Check push delivery to a device.
    #[command(subcommand)]
    Push(PushCommand),
    /// Read and verify the hash-chained audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Verify a credential read from stdin as a tool would (offline except for the issuer's
    /// JWKS and status list); prints the verdict or the reason as JSON, exits 1 if refused.
    Verify(VerifyArgs),
}

#[derive(Args)]
struct VerifyArgs {
    /// The issuer to trust; its keys are fetched from <issuer>/jwks.json.
    #[arg(long, value_name = "URL")]
    issuer: String,
    /// The DPoP proof presented with the credential.
    #[arg(long, value_name = "PROOF")]
    dpop: Option<String>,
    /// HTTP method of the call (for DPoP).
    #[arg(long, default_value = "POST")]
    method: String,
    /// URL of the call (for DPoP).
    #[arg(long, value_name = "URL", default_value = "")]
    url: String,
    /// The authorization_details type the call performs.
    #[arg(long, value_name = "TYPE")]
    action: Option<String>,
    /// The call's arguments (JSON object), checked against the approval.
    #[arg(long, value_name = "JSON")]
    arguments: Option<String>,
}

#[derive(Args)]
struct CredentialFilter {
    /// Credentials held by this agent (client id).
    #[arg(long, value_name = "CLIENT_ID")]
    agent: Option<String>,
    /// Credentials approved by this human (subject).
    #[arg(long, value_name = "SUBJECT")]
    approver: Option<String>,
    /// Credentials held by agents this human (subject) owns.
    #[arg(long, value_name = "SUBJECT")]
    owner: Option<String>,
}

#[derive(Subcommand)]
enum CredentialCommand {
    /// List credentials, newest first (at most 1000).
    List {
        #[command(flatten)]
        filter: CredentialFilter,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Show one credential.
    Show {
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Revoke one credential (by id) or all selected by --agent, --approver or --owner.
    Revoke {
        #[arg(allow_hyphen_values = true)]
        id: Option<String>,
        #[command(flatten)]
        filter: CredentialFilter,
        /// Why (recorded with the revocation).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        out: JsonFlag,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on. Env: COUNTERSIGN_LISTEN. Default 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// Issuer identifier (URL). Env: COUNTERSIGN_ISSUER. Default http://<listen>.
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// Expose /dev/approvals so integrations can be tested without a phone (loopback only).
    #[arg(long)]
    dev_approvals: bool,
}

#[derive(Args)]
pub(crate) struct JsonFlag {
    /// Print machine-readable JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Subcommand)]
enum HumanCommand {
    /// Register a human.
    Add {
        #[arg(long)]
        subject: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// CIBA user_code agents must present for this human.
        #[arg(long)]
        user_code: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// List humans.
    List {
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Allow new requests naming this human again.
    Activate {
        #[arg(allow_hyphen_values = true)]
        subject: String,
    },
    /// Refuse new requests naming this human (access_denied).
    Deactivate {
        #[arg(allow_hyphen_values = true)]
        subject: String,
    },
}

#[derive(Subcommand)]
enum AgentCommand {
    /// Register an agent as a CIBA client; prints a generated client secret once.
    Add {
        #[arg(long)]
        client_id: String,
        /// Subject of the owning human.
        #[arg(long)]
        owner: String,
        /// client_secret_basic, client_secret_post or private_key_jwt.
        #[arg(long)]
        auth: String,
        /// Display name shown to approvers.
        #[arg(long)]
        name: Option<String>,
        /// File with the agent's public JWK Set (private_key_jwt, signed requests).
        #[arg(long, value_name = "FILE")]
        jwks: Option<PathBuf>,
        /// poll (default), ping or push.
        #[arg(long, value_name = "MODE")]
        mode: Option<String>,
        /// client_notification_endpoint for ping and push.
        #[arg(long, value_name = "URL")]
        notification_endpoint: Option<String>,
        /// Require signed authentication requests (FAPI-CIBA).
        #[arg(long)]
        require_signed_request: bool,
        /// Require a user_code in every request.
        #[arg(long)]
        user_code_required: bool,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// List agents.
    List {
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Refuse the agent's new requests and token polls (unauthorized_client).
    Disable {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Re-enable a disabled agent.
    Enable {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
}

#[derive(Subcommand)]
enum AdminKeyCommand {
    /// Create an admin API key; prints it once.
    Create {
        #[arg(long, default_value = "admin")]
        name: String,
        #[command(flatten)]
        out: JsonFlag,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a new signing key and retire the current one (published until its tokens
    /// expire). Running servers use it after restart.
    Rotate {
        #[command(flatten)]
        out: JsonFlag,
    },
}

fn load_config(cli: &Cli, serve: Option<&ServeArgs>) -> anyhow::Result<Config> {
    let mut config = Config::load(cli.config.as_deref(), std::env::vars())?;
    if let Some(db) = &cli.database {
        config.database_url = db.clone();
    }
    if let Some(args) = serve {
        if let Some(listen) = args.listen {
            config.listen = listen;
        }
        if let Some(issuer) = &args.issuer {
            config.issuer = Some(issuer.clone());
        }
        config.dev_approvals |= args.dev_approvals;
    }
    config.validate()?;
    Ok(config)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=info"));
    use std::io::IsTerminal as _;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

pub(crate) fn print<T: Serialize>(
    json: bool,
    value: &T,
    text: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        println!("{}", text());
    }
    Ok(())
}

async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&config.database_url, 2, std::time::Duration::ZERO)
        .await
        .with_context(|| format!("opening {}", config.database_url))?;
    store.migrate().await.context("applying migrations")?;
    Ok(store)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let serve_args = match &cli.command {
        Command::Serve(args) => Some(args),
        _ => None,
    };
    let config = load_config(&cli, serve_args)?;
    init_logging(config.log_format);
    let now = SystemClock.now_ms();
    match &cli.command {
        Command::Serve(_) => serve(config).await,
        Command::Migrate => {
            open_store(&config).await?;
            println!("migrations applied to {}", redact(&config.database_url));
            Ok(())
        }
        Command::Human(cmd) => {
            let store = open_store(&config).await?;
            match cmd {
                HumanCommand::Add {
                    subject,
                    email,
                    name,
                    user_code,
                    out,
                } => {
                    let new = NewHuman {
                        subject: subject.clone(),
                        email: email.clone(),
                        name: name.clone(),
                        user_code: user_code.clone(),
                    };
                    let human = directory::add_human(&store, new, now).await?;
                    print(out.json, &human, || {
                        format!("added human {} <{}>", human.subject, human.email)
                    })
                }
                HumanCommand::List { out } => {
                    let humans = directory::list_humans(&store).await?;
                    print(out.json, &humans, || {
                        humans
                            .iter()
                            .map(|h| {
                                format!(
                                    "{}\t{}\t{}\t{}",
                                    h.subject,
                                    h.email,
                                    h.name,
                                    if h.active { "active" } else { "inactive" }
                                )
                            })
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                }
                HumanCommand::Activate { subject } => {
                    directory::set_human_active(&store, subject, true).await?;
                    println!("human {subject} activated");
                    Ok(())
                }
                HumanCommand::Deactivate { subject } => {
                    directory::set_human_active(&store, subject, false).await?;
                    println!("human {subject} deactivated");
                    Ok(())
                }
            }
        }
        Command::Agent(cmd) => {
            let store = open_store(&config).await?;
            match cmd {
                AgentCommand::Add {
                    client_id,
                    owner,
                    auth,
                    name,
                    jwks,
                    mode,
                    notification_endpoint,
                    require_signed_request,
                    user_code_required,
                    out,
                } => {
                    let jwks = match jwks {
                        Some(path) => Some(
                            serde_json::from_str(
                                &std::fs::read_to_string(path)
                                    .with_context(|| format!("reading {}", path.display()))?,
                            )
                            .with_context(|| format!("{} is not JSON", path.display()))?,
                        ),
                        None => None,
                    };
                    let new = NewAgent {
                        client_id: client_id.clone(),
                        name: name.clone(),
                        owner: owner.clone(),
                        auth_method: auth.clone(),
                        jwks,
                        delivery_mode: mode.clone(),
                        notification_endpoint: notification_endpoint.clone(),
                        require_signed_request: *require_signed_request,
                        user_code_required: *user_code_required,
                    };
                    let created = directory::add_agent(&store, new, now).await?;
                    print(out.json, &created, || {
                        let mut text = format!(
                            "added agent {} (owner {}, {}, {} mode)",
                            created.agent.client_id,
                            created.agent.owner,
                            created.agent.auth_method,
                            created.agent.delivery_mode
                        );
                        if let Some(secret) = &created.client_secret {
                            text.push_str(&format!(
                                "\nclient_secret: {secret}\n(shown once; only its hash is stored)"
                            ));
                        }
                        text
                    })
                }
                AgentCommand::List { out } => {
                    let agents = directory::list_agents(&store).await?;
                    print(out.json, &agents, || {
                        agents
                            .iter()
                            .map(|a| {
                                format!(
                                    "{}\t{}\t{}\t{}\t{}",
                                    a.client_id,
                                    a.owner,
                                    a.auth_method,
                                    a.delivery_mode,
                                    if a.enabled { "enabled" } else { "disabled" }
                                )
                            })
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                }
                AgentCommand::Disable { client_id } => {
                    directory::set_agent_enabled(&store, client_id, false).await?;
                    println!("agent {client_id} disabled");
                    Ok(())
                }
                AgentCommand::Enable { client_id } => {
                    directory::set_agent_enabled(&store, client_id, true).await?;
                    println!("agent {client_id} enabled");
                    Ok(())
                }
            }
        }
        Command::AdminKey(AdminKeyCommand::Create { name, out }) => {
            let store = open_store(&config).await?;
            let key = admin::create_key(&store, name, now).await?;
            let value =
                serde_json::json!({ "id": key.id, "name": name, "key": key.secret.expose() });
            print(out.json, &value, || {
                format!(
                    "admin key {} created:\n{}\n(shown once; use it as `Authorization: Bearer <key>`)",
                    key.id,
                    key.secret.expose()
                )
            })
        }
        // Needs no database or keys: only the issuer's published JWKS and status lists.
        Command::Verify(args) => verify(args).await,
        Command::Credential(cmd) => {
            let store = open_store(&config).await?;
            credential_command(&store, cmd, now).await
        }
        Command::Device(cmd) => device_command(config, cmd).await,
        Command::Push(cmd) => push_command(config, cmd).await,
        Command::Audit(cmd) => {
            let store = open_store(&config).await?;
            audit_command(&store, cmd).await
        }
        Command::Keys(KeysCommand::Rotate { out }) => {
            let kid = KeyRing::rotate(&config.keys_dir, now)?;
            let value = serde_json::json!({ "kid": kid, "keys_dir": config.keys_dir });
            print(out.json, &value, || {
                format!(
                    "new signing key {kid} in {}; restart servers to use it",
                    config.keys_dir.display()
                )
            })
        }
    }
}

/// The database URL without any password, for printing.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{}@{}", &url[..scheme_end + 3], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let keys_dir =
        std::fs::canonicalize(&config.keys_dir).unwrap_or_else(|_| config.keys_dir.clone());
    let database = redact(&config.database_url);
    let running = server::start(config, Arc::new(SystemClock)).await?;
    let keys_dir = std::fs::canonicalize(&keys_dir).unwrap_or(keys_dir);
    println!(
        "countersign {} listening on http://{}",
        env!("CARGO_PKG_VERSION"),
        running.addr
    );
    println!("  issuer:    {}", running.base_url());
    println!(
        "  discovery: {}/.well-known/openid-configuration",
        running.base_url()
    );
    println!("  database:  {database}");
    println!(
        "  keys:      {} (kid {})",
        keys_dir.display(),
        running.state.keys.active().kid()
    );
    if running.state.config.dev_approvals {
        println!("  DEVELOPER MODE: POST /dev/approvals/{{auth_req_id}}/approve|deny is enabled");
    }
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}
