//! OpenID Connect Discovery 1.0 provider metadata, with the CIBA, RAR, DPoP,
//! introspection and revocation fields.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProviderMetadata {
    pub issuer: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub backchannel_authentication_endpoint: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub scopes_supported: Vec<String>,
    pub response_types_supported: Vec<String>,
    pub subject_types_supported: Vec<String>,
    pub id_token_signing_alg_values_supported: Vec<String>,
    pub grant_types_supported: Vec<String>,
    pub claims_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    pub backchannel_token_delivery_modes_supported: Vec<String>,
    pub backchannel_authentication_request_signing_alg_values_supported: Vec<String>,
    pub backchannel_user_code_parameter_supported: bool,
    pub authorization_details_types_supported: Vec<String>,
    pub dpop_signing_alg_values_supported: Vec<String>,
    pub acr_values_supported: Vec<String>,
}
