//! `countersign gateway`: the MCP gateway over stdin and stdout, for an agent that launches
//! its MCP servers as local processes. It is one more replica of the server (the same
//! database, keys and configuration) without an HTTP listener; the agent's identity comes
//! from the command line, since a pipe carries no token.

use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::Args;
use countersign_gateway::{AgentId, Caller};
use countersign_server::clock::SystemClock;
use countersign_server::config::Config;
use countersign_server::server;

#[derive(Args)]
pub struct GatewayArgs {
    /// The agent this gateway serves (its client id): every call is decided for it.
    #[arg(long, value_name = "CLIENT_ID", env = "COUNTERSIGN_GATEWAY_AGENT")]
    agent: String,
}

pub async fn gateway(mut config: Config, args: &GatewayArgs) -> anyhow::Result<()> {
    if !config.gateway.enabled {
        bail!("the configuration does not enable the gateway ([gateway] enabled = true)");
    }
    let prepared = countersign_server::gateway::connect(&config.gateway)
        .await?
        .context("the gateway is not enabled")?;
    let declared = &config.authorization_details_types;
    let types = prepared.action_types(|t| declared.contains_key(t))?;
    config.declare_gateway_types(types);
    let state = server::open_state(config, Arc::new(SystemClock)).await?;
    countersign_server::policy::service::refresh(&state)
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
        state.clone(),
        refresh_stopped,
    ));
    let gateway = countersign_server::gateway::start(&state, prepared)?;
    let caller = Caller {
        agent: AgentId(args.agent.clone()),
        // One process serves one agent's session.
        fallback_session: format!(
            "stdio:{}-{}",
            std::process::id(),
            countersign_jose::random_b64url(6)
        ),
        source_ip: None,
    };
    tracing::info!(agent = %args.agent, "MCP gateway serving on stdio");
    gateway.serve_stdio(caller).await?;
    gateway.stop();
    let _ = stop_refresh.send(true);
    let _ = refresh.await;
    state.store.close().await;
    Ok(())
}
