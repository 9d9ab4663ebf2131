//! The MCP gateway in this process (`[gateway]` in the configuration): the `countersign-
//! gateway` crate speaks MCP; this module answers what it asks (who an agent is, what
//! the policy decides, approvals and credentials) with the server's own services. The
//! identity tokens agents present to it come from `ciba::client_credentials`.

pub mod agent_keys;
pub mod authority;
pub mod calls;
pub mod remote;

use std::sync::Arc;

use countersign_gateway::{Gateway, GatewayConfig, Prepared, Resumption};

use crate::config::Config;
use crate::oidc::keys::{KeyError, load_or_create_secret};
use agent_keys::AgentKeys;
use authority::{InProcess, Services};

/// What the key sealing held calls' request state (MCP 2026-07-28) is derived for.
const REQUEST_STATE_KEY_LABEL: &str = "mcp request state v1";

#[derive(Debug, thiserror::Error)]
pub enum GatewayStartError {
    #[error("gateway keys: {0}")]
    Keys(#[from] KeyError),
    #[error("asking Countersign: {0}")]
    Remote(#[from] countersign_gateway::AuthorityError),
    #[error(transparent)]
    Gateway(#[from] countersign_gateway::GatewayError),
}

/// Connects to the gateway's upstreams when the configuration enables it.
pub async fn connect(config: &GatewayConfig) -> Result<Option<Prepared>, GatewayStartError> {
    if !config.enabled {
        return Ok(None);
    }
    Ok(Some(countersign_gateway::connect(config.clone()).await?))
}

/// `config` with the action types of the gateway's tools declared as a running server
/// declares them (policies name them as Cedar actions): the ones the mappings name and,
/// listing each upstream's tools, the default ones. For the CLI's policy commands.
pub async fn declare_tool_types(mut config: Config) -> Result<Config, GatewayStartError> {
    if let Some(prepared) = connect(&config.gateway).await? {
        let declared = &config.authorization_details_types;
        let types = prepared
            .action_types(|t| declared.contains_key(t))
            .map_err(countersign_gateway::GatewayError::Config)?;
        config.declare_gateway_types(types);
    }
    Ok(config)
}

/// Serves the connected gateway with Countersign on another machine deciding, over its
/// HTTP API as the agent `settings` names (a gateway beside its agent). The keys the
/// gateway holds for the agent are derived from a secret in `keys_dir`, created there the
/// first time, so held calls resume across restarts.
pub async fn start_remote(
    keys_dir: &std::path::Path,
    prepared: Prepared,
    settings: remote::RemoteSettings,
) -> Result<Gateway<remote::Remote>, GatewayStartError> {
    let secret = load_or_create_secret(keys_dir, agent_keys::SECRET_FILE)?;
    let keys = Arc::new(AgentKeys::new(&secret));
    let resumption = Resumption::without_pages(&keys.purpose_key(REQUEST_STATE_KEY_LABEL));
    let authority = remote::Remote::connect(settings, keys).await?;
    Ok(prepared.start(authority, resumption))
}

/// Serves the connected gateway with this server deciding. The agents' keys are derived
/// from a secret in `keys_dir`, so held calls resume across restarts.
pub fn start(
    services: Arc<dyn Services>,
    keys_dir: &std::path::Path,
    issuer: &str,
    prepared: Prepared,
) -> Result<Gateway<InProcess>, GatewayStartError> {
    let secret = load_or_create_secret(keys_dir, agent_keys::SECRET_FILE)?;
    let keys = Arc::new(AgentKeys::new(&secret));
    let resumption = Resumption::new(&keys.purpose_key(REQUEST_STATE_KEY_LABEL), issuer);
    Ok(prepared.start(InProcess::new(services, keys, issuer), resumption))
}
