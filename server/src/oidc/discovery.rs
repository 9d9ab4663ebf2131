//! The OpenID Provider metadata document.

use countersign_shared::ciba::CIBA_GRANT_TYPE;
use countersign_shared::discovery::ProviderMetadata;

use crate::config::Config;
use crate::oidc::client_auth::AuthMethod;
use crate::paths;

/// Scope values every deployment accepts.
pub const BASE_SCOPES: [&str; 3] = ["openid", "profile", "email"];

/// `acr` the server reports for developer approvals (no human confirmation took place).
pub const ACR_DEV: &str = "urn:countersign:acr:dev-approval";
/// `acr` of a credential a policy allowed without asking anyone.
pub const ACR_POLICY: &str = "urn:countersign:acr:policy";
/// `acr` of a wallet approval: a passkey assertion with user verification and the device
/// key's signature.
pub const ACR_WALLET: &str = "urn:countersign:acr:passkey+device_key";

pub fn metadata(issuer: &str, config: &Config) -> ProviderMetadata {
    let endpoint = |path: &str| format!("{issuer}{path}");
    let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let auth_methods: Vec<String> = AuthMethod::ALL
        .iter()
        .map(|m| m.as_str().to_owned())
        .collect();
    let mut scopes = strings(&BASE_SCOPES);
    scopes.extend(config.ciba.extra_scopes.iter().cloned());
    ProviderMetadata {
        issuer: issuer.to_owned(),
        token_endpoint: endpoint(paths::TOKEN),
        jwks_uri: endpoint(paths::JWKS),
        backchannel_authentication_endpoint: endpoint(paths::BC_AUTHORIZE),
        introspection_endpoint: endpoint(paths::INTROSPECT),
        revocation_endpoint: endpoint(paths::REVOKE),
        scopes_supported: scopes,
        // Required by Discovery although a CIBA-only provider has no authorization
        // endpoint; `id_token` is the one response the provider does produce.
        response_types_supported: strings(&["id_token"]),
        subject_types_supported: strings(&["public"]),
        id_token_signing_alg_values_supported: strings(&["ES256"]),
        grant_types_supported: grant_types(),
        claims_supported: strings(&[
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "acr",
            "amr",
            "at_hash",
            "name",
            "email",
            countersign_shared::ciba::AUTH_REQ_ID_CLAIM,
        ]),
        token_endpoint_auth_methods_supported: auth_methods.clone(),
        token_endpoint_auth_signing_alg_values_supported: strings(&["ES256"]),
        introspection_endpoint_auth_methods_supported: auth_methods.clone(),
        revocation_endpoint_auth_methods_supported: auth_methods,
        backchannel_token_delivery_modes_supported: strings(&["poll", "ping", "push"]),
        backchannel_authentication_request_signing_alg_values_supported: strings(&["ES256"]),
        backchannel_user_code_parameter_supported: true,
        authorization_details_types_supported: config
            .authorization_details_types
            .keys()
            .cloned()
            .collect(),
        dpop_signing_alg_values_supported: strings(&["ES256"]),
        acr_values_supported: strings(&[ACR_WALLET, ACR_POLICY, ACR_DEV]),
    }
}

/// The grants: CIBA, renewal by token exchange, and clients' identity tokens for this
/// deployment's own resources (`client_credentials`: the AuthZEN API, the MCP gateway).
fn grant_types() -> Vec<String> {
    vec![
        CIBA_GRANT_TYPE.to_owned(),
        countersign_shared::oauth::TOKEN_EXCHANGE_GRANT_TYPE.to_owned(),
        countersign_shared::oauth::CLIENT_CREDENTIALS_GRANT_TYPE.to_owned(),
    ]
}
