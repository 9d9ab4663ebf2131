//! `countersign`: run the server and administer it from the command line.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use countersign_server::clock::{Clock, SystemClock};
use countersign_server::config::{Config, LogFormat, redact_database_url};
use countersign_server::oidc::keys::KeyRing;
use countersign_server::server;
use countersign_server::store::Store;
use serde::Serialize;

/// Measured under the decision benchmark: allocation and free were about a sixth of the
/// server's CPU with glibc's allocator (many small, short-lived JSON and SQL buffers).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod api_keys;
mod audit;
mod credential;
mod demo;
mod device;
mod directory;
mod gateway;
mod policy;
mod push;
mod verify;

use api_keys::{AdminKeyCommand, ScimTokenCommand};
use audit::{AuditCommand, audit_command};
use credential::credential_command;
use device::{DeviceCommand, device_command};
use directory::{
    AgentCommand, GroupCommand, HumanCommand, agent_command, group_command, human_command,
};
use policy::{PolicyCommand, policy_command};
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
    /// See the whole product work in seconds: a throwaway server, an agent, a policy and
    /// a software wallet; a small order passes, a large one waits for the passkey, a
    /// destructive one is stopped, offboarding kills the credential.
    Demo(demo::DemoArgs),
    /// The MCP gateway over stdin and stdout for one agent (an agent that launches its
    /// MCP servers itself); `serve` runs it over HTTP at /mcp.
    Gateway(gateway::GatewayArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage humans (agent owners and approvers).
    #[command(subcommand)]
    Human(HumanCommand),
    /// Manage agents (CIBA clients).
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Manage groups of humans (approver routing, policy conditions).
    #[command(subcommand)]
    Group(GroupCommand),
    /// Validate, test, add, activate and roll back policies; replay history (dry-run).
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// The server console: sign-in links.
    #[command(subcommand)]
    Admin(api_keys::AdminCommand),
    /// Manage admin API keys.
    #[command(subcommand, name = "admin-key")]
    AdminKey(AdminKeyCommand),
    /// Manage SCIM provisioning tokens (for the identity provider).
    #[command(subcommand)]
    ScimToken(ScimTokenCommand),
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
    /// Accept a bearer credential (of an agent registered bearer-only); by default a
    /// credential not bound to a key is refused (`not_key_bound`).
    #[arg(long)]
    allow_bearer: bool,
    /// Record the use at the issuer (POST <issuer>/credentials/<id>/uses), as a tool on
    /// several hosts would; by default it is counted in this process only.
    #[arg(long)]
    count_at_issuer: bool,
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

/// The actor the audit trail records for changes made with these commands.
pub(crate) const CLI: &str = "cli";

#[derive(Args)]
pub(crate) struct JsonFlag {
    /// Print machine-readable JSON.
    #[arg(long)]
    pub(crate) json: bool,
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

fn init_logging(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
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
    // The demo's own timeline is its output (offboarding, for one, is a warning in a
    // server's log); the server it runs logs only errors.
    let default_filter = match cli.command {
        Command::Demo(_) => "error",
        _ => "info,sqlx=warn,tower_http=info",
    };
    init_logging(config.log_format, default_filter);
    let now = SystemClock.now_ms();
    match &cli.command {
        Command::Serve(_) => serve(config).await,
        Command::Demo(args) => demo::demo(args).await,
        Command::Gateway(args) => gateway::gateway(config, args).await,
        Command::Migrate => {
            open_store(&config).await?;
            println!(
                "migrations applied to {}",
                redact_database_url(&config.database_url)
            );
            Ok(())
        }
        Command::Human(cmd) => {
            let fate = config.offboarding.agents;
            human_command(&open_store(&config).await?, cmd, now, fate).await
        }
        Command::Agent(cmd) => agent_command(&open_store(&config).await?, cmd, now).await,
        Command::Group(cmd) => group_command(&open_store(&config).await?, cmd, now).await,
        Command::Policy(cmd) => policy_command(config, cmd).await,
        Command::Admin(cmd) => {
            let issuer = config.issuer();
            api_keys::admin_command(&open_store(&config).await?, &issuer, cmd, now).await
        }
        Command::AdminKey(cmd) => {
            api_keys::admin_key_command(&open_store(&config).await?, cmd, now).await
        }
        Command::ScimToken(cmd) => {
            api_keys::scim_token_command(&open_store(&config).await?, cmd, now).await
        }
        // Needs no database or keys: only the issuer's published JWKS and status lists.
        Command::Verify(args) => verify(args).await,
        Command::Credential(cmd) => {
            let store = open_store(&config).await?;
            credential_command(&store, cmd, now).await
        }
        Command::Device(cmd) => device_command(config, cmd).await,
        Command::Push(cmd) => push_command(config, cmd).await,
        Command::Audit(cmd) => audit_command(config, cmd).await,
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

async fn serve(config: Config) -> anyhow::Result<()> {
    let keys_dir =
        std::fs::canonicalize(&config.keys_dir).unwrap_or_else(|_| config.keys_dir.clone());
    let database = redact_database_url(&config.database_url);
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
    println!(
        "  console:   {}/console/  (sign in: countersign admin sign-in-link)",
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
