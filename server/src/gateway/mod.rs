//! The MCP gateway in this process (`[gateway]` in the configuration): the `countersign-
//! gateway` crate speaks MCP; this module answers what it asks (who an agent is, what
//! the policy decides, approvals and credentials) with the server's own services, and
//! issues the identity tokens agents present to it (`client_credentials`).

pub mod agent_keys;
pub mod authority;

use std::sync::Arc;

use countersign_gateway::{Gateway, GatewayConfig, Prepared, Resumption, http::MCP_PATH};
use countersign_shared::TokenResponse;

use crate::ciba::CibaError;
use crate::config::Config;
use crate::oidc::keys::{KeyError, load_or_create_secret};
use crate::oidc::resource_token;
use crate::state::AppState;
use crate::store::clients::ClientRecord;
use agent_keys::AgentKeys;
use authority::InProcess;

/// What the key sealing held calls' request state (MCP 2026-07-28) is derived for.
const REQUEST_STATE_KEY_LABEL: &str = "mcp request state v1";

/// The `grant_type` of RFC 6749 §4.4.
pub const CLIENT_CREDENTIALS_GRANT_TYPE: &str = "client_credentials";

/// The gateway's resource identifier (RFC 8707, RFC 9728): `{issuer}/mcp`.
pub fn resource(issuer: &str) -> String {
    format!("{}{MCP_PATH}", issuer.trim_end_matches('/'))
}

/// The `client_credentials` grant: an access token naming the agent, for the gateway
/// only (`resource`, RFC 8707), bound to the agent's DPoP key when it sent a proof.
pub fn client_credentials(
    state: &AppState,
    client: &ClientRecord,
    requested_resource: Option<&str>,
    dpop_jkt: Option<String>,
) -> Result<TokenResponse, CibaError> {
    if !client.enabled {
        return Err(CibaError::UnauthorizedClient(
            "the client is disabled".into(),
        ));
    }
    let resource = resource(&state.issuer);
    if !state.config.gateway.enabled {
        return Err(CibaError::InvalidTarget(
            "this server has no resource to issue client_credentials tokens for (the gateway is not enabled)".into(),
        ));
    }
    match requested_resource {
        None => {}
        Some(r) if r == resource => {}
        Some(other) => {
            return Err(CibaError::InvalidTarget(format!(
                "{other:?} is not a resource of this server; use {resource}"
            )));
        }
    }
    if dpop_jkt.is_none() && !client.bearer_only {
        return Err(CibaError::InvalidDpopProof(
            "a DPoP proof is required: this client's tokens are bound to its key".into(),
        ));
    }
    let ttl = state.config.tokens.access_token_ttl_secs;
    let token_type = if dpop_jkt.is_some() { "DPoP" } else { "Bearer" };
    let access_token = resource_token::issue(
        &state.keys.active(),
        &state.issuer,
        &client.client_id,
        &resource,
        dpop_jkt,
        state.clock.now_secs(),
        ttl,
    )
    .map_err(|e| CibaError::Credential(crate::credentials::CredentialError::Signing(e)))?;
    Ok(TokenResponse {
        access_token,
        token_type: token_type.into(),
        expires_in: ttl,
        id_token: None,
        issued_token_type: None,
        scope: None,
        authorization_details: None,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayStartError {
    #[error("gateway keys: {0}")]
    Keys(#[from] KeyError),
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

/// Serves the connected gateway with this server deciding.
pub fn start(
    state: &AppState,
    prepared: Prepared,
) -> Result<Gateway<InProcess>, GatewayStartError> {
    let secret = load_or_create_secret(state.keys.dir(), agent_keys::SECRET_FILE)?;
    let keys = Arc::new(AgentKeys::new(&secret));
    let resumption = Resumption::new(&keys.purpose_key(REQUEST_STATE_KEY_LABEL), &state.issuer);
    Ok(prepared.start(InProcess::new(state.clone(), keys), resumption))
}
