//! OAuth 2.0 error responses (RFC 6749 §5.2) with the codes CIBA, DPoP and RAR add, and
//! the grant types the token endpoint takes besides CIBA's.

use serde::{Deserialize, Serialize};

/// `grant_type` of a token exchange (RFC 8693 §2.1): renewing a credential.
pub const TOKEN_EXCHANGE_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// `grant_type` of RFC 6749 §4.4: an identity token for the gateway or the AuthZEN API.
pub const CLIENT_CREDENTIALS_GRANT_TYPE: &str = "client_credentials";

/// Every error code the server can answer on its OAuth endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OAuthErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    AccessDenied,
    /// CIBA Core §13.
    ExpiredLoginHintToken,
    UnknownUserId,
    MissingUserCode,
    InvalidUserCode,
    InvalidBindingMessage,
    /// CIBA Core §11 (token endpoint).
    AuthorizationPending,
    SlowDown,
    ExpiredToken,
    /// CIBA Core §10.3.2 (push mode error payload).
    TransactionFailed,
    /// RFC 9449 §5.
    InvalidDpopProof,
    /// RFC 9396 §5.
    InvalidAuthorizationDetails,
    /// RFC 7009 §2.2.1.
    UnsupportedTokenType,
    /// RFC 8693 §2.2.2.
    InvalidTarget,
    /// RFC 6749 §4.1.2.1, used when the service cannot answer for a moment.
    TemporarilyUnavailable,
    ServerError,
}

impl OAuthErrorCode {
    /// The wire spelling, e.g. `authorization_pending`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::ExpiredLoginHintToken => "expired_login_hint_token",
            Self::UnknownUserId => "unknown_user_id",
            Self::MissingUserCode => "missing_user_code",
            Self::InvalidUserCode => "invalid_user_code",
            Self::InvalidBindingMessage => "invalid_binding_message",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::TransactionFailed => "transaction_failed",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::InvalidAuthorizationDetails => "invalid_authorization_details",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::InvalidTarget => "invalid_target",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::ServerError => "server_error",
        }
    }
}

impl std::fmt::Display for OAuthErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JSON body of an OAuth error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OAuthError {
    pub error: OAuthErrorCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_spelling_matches_as_str() {
        for code in [
            OAuthErrorCode::InvalidRequest,
            OAuthErrorCode::ExpiredLoginHintToken,
            OAuthErrorCode::InvalidDpopProof,
            OAuthErrorCode::SlowDown,
            OAuthErrorCode::InvalidAuthorizationDetails,
        ] {
            let json = serde_json::to_value(code).unwrap_or_default();
            assert_eq!(json, serde_json::Value::String(code.as_str().to_owned()));
        }
    }
}
