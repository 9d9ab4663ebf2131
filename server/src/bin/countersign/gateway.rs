//! `countersign gateway`: the MCP gateway over stdin and stdout, for an agent that launches
//! its MCP servers as local processes. The agent's identity comes from the command line,
//! since a pipe carries no token. By default it is one more replica of the server (the
//! same database, keys and configuration) without an HTTP listener; with `--remote URL` it
//! runs beside the agent on another machine and asks Countersign over HTTP with the
//! agent's own credentials.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::Args;
use countersign_gateway::{AgentId, Caller};
use countersign_server::clock::SystemClock;
use countersign_server::config::Config;
use countersign_server::gateway::remote::{ClientCredential, RemoteSettings};
use countersign_server::server;

#[derive(Args)]
pub struct GatewayArgs {
    /// The agent this gateway serves (its client id): every call is decided for it.
    #[arg(long, value_name = "CLIENT_ID", env = "COUNTERSIGN_GATEWAY_AGENT")]
    agent: String,
    /// Countersign's URL (its issuer): ask it over HTTP as the agent instead of opening
    /// its database, for a gateway on another machine than the server.
    #[arg(long, value_name = "URL", env = "COUNTERSIGN_GATEWAY_REMOTE")]
    remote: Option<String>,
    /// With --remote, for an agent registered with private_key_jwt: its private key, a
    /// private JWK (EC P-256) file.
    #[arg(
        long,
        value_name = "FILE",
        env = "COUNTERSIGN_GATEWAY_AGENT_KEY",
        requires = "remote",
        conflicts_with = "agent_secret"
    )]
    agent_key: Option<PathBuf>,
    /// With --remote, for an agent registered with a client secret: the secret (set the
    /// environment variable rather than the flag, which other users can see).
    #[arg(
        long,
        value_name = "SECRET",
        env = "COUNTERSIGN_GATEWAY_AGENT_SECRET",
        hide_env_values = true,
        requires = "remote"
    )]
    agent_secret: Option<String>,
    /// With --agent-secret: how it is sent, as the agent is registered.
    #[arg(long, default_value = "client_secret_basic", value_parser = ["client_secret_basic", "client_secret_post"])]
    agent_auth: String,
}

pub async fn gateway(config: Config, args: &GatewayArgs) -> anyhow::Result<()> {
    if !config.gateway.enabled {
        bail!("the configuration does not enable the gateway ([gateway] enabled = true)");
    }
    match &args.remote {
        Some(url) => beside_the_agent(config, args, url).await,
        None => replica(config, args).await,
    }
}

/// The process's own session: one process serves one agent's session.
fn caller(agent: &str) -> Caller {
    Caller {
        agent: AgentId(agent.to_owned()),
        fallback_session: format!(
            "stdio:{}-{}",
            std::process::id(),
            countersign_jose::random_b64url(6)
        ),
        source_ip: None,
    }
}

async fn beside_the_agent(config: Config, args: &GatewayArgs, url: &str) -> anyhow::Result<()> {
    let credential = match (&args.agent_key, &args.agent_secret) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading --agent-key {}", path.display()))?;
            ClientCredential::private_jwk(&text)
                .map_err(|e| anyhow::anyhow!("--agent-key {}: {e}", path.display()))?
        }
        (None, Some(secret)) if args.agent_auth == "client_secret_post" => {
            ClientCredential::SecretPost(secret.clone())
        }
        (None, Some(secret)) => ClientCredential::SecretBasic(secret.clone()),
        (None, None) => bail!(
            "--remote needs the agent's credential: --agent-key FILE (private_key_jwt) or \
             COUNTERSIGN_GATEWAY_AGENT_SECRET (a client secret)"
        ),
    };
    let prepared = countersign_server::gateway::connect(&config.gateway)
        .await?
        .context("the gateway is not enabled")?;
    let settings = RemoteSettings {
        issuer: url.to_owned(),
        agent: args.agent.clone(),
        credential,
        hold_timeout_secs: config.gateway.hold_timeout_secs,
    };
    let gateway = countersign_server::gateway::start_remote(&config.keys_dir, prepared, settings)
        .await
        .with_context(|| format!("connecting to {url} as agent {:?}", args.agent))?;
    tracing::info!(agent = %args.agent, countersign = url, "MCP gateway serving on stdio");
    gateway.serve_stdio(caller(&args.agent)).await?;
    gateway.stop();
    Ok(())
}

async fn replica(mut config: Config, args: &GatewayArgs) -> anyhow::Result<()> {
    let prepared = countersign_server::gateway::connect(&config.gateway)
        .await?
        .context("the gateway is not enabled")?;
    let declared = &config.authorization_details_types;
    let types = prepared.action_types(|t| declared.contains_key(t))?;
    config.declare_gateway_types(types);
    let state = server::open_state(config, Arc::new(SystemClock)).await?;
    countersign_server::policy::service::refresh(&state.policy, &state.store)
        .await
        .context("installing the active policy")?;
    match state.store.client(&args.agent).await? {
        Some(client) if client.enabled => {}
        Some(_) => bail!("agent {:?} is suspended or disabled", args.agent),
        None => bail!("no agent {:?} is registered", args.agent),
    }
    // Policy changes reach this replica as they reach servers (policy.reload_interval_ms).
    let (stop_refresh, refresh_stopped) = tokio::sync::watch::channel(false);
    let refresh = tokio::spawn(countersign_server::housekeeping::refresh_policy(
        state.policy.clone(),
        state.store.clone(),
        std::time::Duration::from_millis(state.config.policy.reload_interval_ms),
        refresh_stopped,
    ));
    let gateway = countersign_server::gateway::start(
        Arc::new(state.clone()),
        state.keys.dir(),
        &state.issuer,
        prepared,
    )?;
    tracing::info!(agent = %args.agent, "MCP gateway serving on stdio");
    gateway.serve_stdio(caller(&args.agent)).await?;
    gateway.stop();
    let _ = stop_refresh.send(true);
    let _ = refresh.await;
    state.store.close().await;
    Ok(())
}
