//! The `client_credentials` grant (RFC 6749 §4.4) for this deployment's own protected
//! resources: the MCP gateway (`{issuer}/mcp`, when enabled) and the AuthZEN API
//! (`{issuer}/access/v1`). The token names the client and nothing more (authority comes
//! per call), for one resource only (RFC 8707), bound to the client's DPoP key when the
//! request carried a proof.

use countersign_shared::TokenResponse;

use super::CibaError;
use crate::oidc::keys::KeyRing;
use crate::oidc::resource_token;
use crate::store::clients::ClientRecord;

/// What issuing tokens for this deployment's resources works with, now.
pub struct Minting<'a> {
    pub issuer: &'a str,
    pub keys: &'a KeyRing,
    /// `tokens.access_token_ttl_secs`.
    pub ttl_secs: u64,
    /// `gateway.enabled`: the MCP gateway is a resource (and the default one).
    pub gateway_enabled: bool,
    pub now_secs: i64,
}

/// The resources a `client_credentials` token may be for, the default first.
fn resources(minting: &Minting<'_>) -> Vec<String> {
    let mut resources = Vec::new();
    if minting.gateway_enabled {
        resources.push(crate::paths::gateway_resource(minting.issuer));
    }
    resources.push(crate::paths::authzen_resource(minting.issuer));
    resources
}

/// An access token naming `client`, for `requested_resource` (default: the gateway when
/// it is enabled, else the AuthZEN API).
pub fn issue(
    minting: &Minting<'_>,
    client: &ClientRecord,
    requested_resource: Option<&str>,
    dpop_jkt: Option<String>,
) -> Result<TokenResponse, CibaError> {
    if !client.enabled {
        return Err(CibaError::UnauthorizedClient(
            "the client is disabled".into(),
        ));
    }
    let resources = resources(minting);
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
    let ttl = minting.ttl_secs;
    let token_type = if dpop_jkt.is_some() { "DPoP" } else { "Bearer" };
    let access_token = resource_token::issue(
        &minting.keys.active(),
        minting.issuer,
        &client.client_id,
        &resource,
        dpop_jkt,
        minting.now_secs,
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
