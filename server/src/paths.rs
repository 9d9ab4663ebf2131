//! Paths of the protocol endpoints, relative to the issuer: named once for the router,
//! the discovery documents and the clients that build URLs.

pub const BC_AUTHORIZE: &str = "/bc-authorize";
pub const TOKEN: &str = "/token";
/// The AuthZEN Authorization API, and its OAuth resource identifier under the issuer.
pub const AUTHZEN_API: &str = "/access/v1";
pub const DECISIONS: &str = "/v1/decisions";
pub const GATEWAY_CALLS: &str = "/v1/gateway-calls";
pub const WITHDRAWALS: &str = "/v1/withdrawals";
pub const INTROSPECT: &str = "/introspect";
pub const REVOKE: &str = "/revoke";
pub const JWKS: &str = "/jwks.json";
pub const DISCOVERY: &str = "/.well-known/openid-configuration";
pub const DID_DOCUMENT: &str = "/.well-known/did.json";
pub const AUDIT_CHECKPOINT: &str = "/.well-known/countersign/audit-checkpoint";
pub const AUDIT_LOG_KEY: &str = "/.well-known/countersign/audit-log-key";
pub const ASSET_LINKS: &str = "/.well-known/assetlinks.json";
pub const APPLE_APP_SITE_ASSOCIATION: &str = "/.well-known/apple-app-site-association";
pub const STATUS_LISTS: &str = "/status-lists/{list_id}";
pub const CREDENTIAL_USES: &str = "/credentials/{id}/uses";
pub const WALLET_ENROLLMENTS: &str = "/wallet/v1/enrollments";
pub const WALLET_ENROLLMENT_COMPLETE: &str = "/wallet/v1/enrollments/complete";
pub const WALLET_REQUESTS: &str = "/wallet/v1/requests";
pub const WALLET_DEVICE_REMOVE: &str = "/wallet/v1/device/remove";

/// `scheme://host[:port]` of `url` (what browsers send as `Origin`).
pub fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// The MCP gateway's resource identifier (RFC 8707, RFC 9728): `{issuer}/mcp`.
pub fn gateway_resource(issuer: &str) -> String {
    format!(
        "{}{}",
        issuer.trim_end_matches('/'),
        countersign_gateway::http::MCP_PATH
    )
}

/// The AuthZEN API's resource identifier (RFC 8707): the `resource` of a
/// `client_credentials` token an enforcement point presents.
pub fn authzen_resource(issuer: &str) -> String {
    format!("{}{AUTHZEN_API}", issuer.trim_end_matches('/'))
}
