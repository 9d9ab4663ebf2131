//! The `client_credentials` grant (RFC 6749 §4.4) for this deployment's own protected
//! resources: the MCP gateway (`{issuer}/mcp`, when enabled) and the AuthZEN API
//! (`{issuer}/access/v1`). The token names the client and nothing more (authority comes
//! per call), for one resource only (RFC 8707), bound to the client's DPoP key when the
//! request carried a proof.

use countersign_shared::TokenResponse;

use super::resource_token;
use crate::ciba::CibaError;
use crate::state::AppState;
use crate::store::clients::ClientRecord;

/// The `grant_type` of RFC 6749 §4.4.
pub const CLIENT_CREDENTIALS_GRANT_TYPE: &str = "client_credentials";

/// The resources a `client_credentials` token may be for, the default first.
fn resources(state: &AppState) -> Vec<String> {
    let mut resources = Vec::new();
    if state.config.gateway.enabled {
        resources.push(crate::gateway::resource(&state.issuer));
    }
    resources.push(crate::authzen::resource(&state.issuer));
    resources
}

/// An access token naming `client`, for `requested_resource` (default: the gateway when
/// it is enabled, else the AuthZEN API).
pub fn issue(
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
    let resources = resources(state);
    let resource = match requested_resource {
        None => resources[0].clone(),
        Some(r) if resources.iter().any(|known| known == r) => r.to_owned(),
        Some(other) => {
            return Err(CibaError::InvalidTarget(format!(
                "{other:?} is not a resource of this server; use one of {}",
                resources.join(", ")
            )));
        }
    };
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
