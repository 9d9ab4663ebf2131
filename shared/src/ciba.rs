//! OpenID CIBA Core 1.0 messages.

use serde::{Deserialize, Serialize};

/// `grant_type` value of the CIBA token request (CIBA Core §10.1).
pub const CIBA_GRANT_TYPE: &str = "urn:openid:params:grant-type:ciba";

/// The ID token claim that carries the `auth_req_id` in push mode (CIBA Core §10.3.1).
pub const AUTH_REQ_ID_CLAIM: &str = "urn:openid:params:jwt:claim:auth_req_id";

/// How the client learns that the authentication finished (CIBA Core §5); poll unless
/// the client registered otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryMode {
    #[default]
    Poll,
    Ping,
    Push,
}

impl DeliveryMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Poll => "poll",
            Self::Ping => "ping",
            Self::Push => "push",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "poll" => Some(Self::Poll),
            "ping" => Some(Self::Ping),
            "push" => Some(Self::Push),
            _ => None,
        }
    }
}

/// Successful answer of the backchannel authentication endpoint (CIBA Core §7.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackchannelAuthResponse {
    pub auth_req_id: String,
    pub expires_in: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<u64>,
}

/// Successful token response (RFC 6749 §5.1, CIBA Core §11, RFC 9396 §7, RFC 8693 §2.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    /// Present in CIBA responses; absent from renewals (token exchange).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// RFC 8693 §2.2.1: set on token-exchange (renewal) responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<Object>>))]
    pub authorization_details: Option<serde_json::Value>,
}

/// Body of a ping-mode callback (CIBA Core §10.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingNotification {
    pub auth_req_id: String,
}

/// Body of a push-mode callback: the token response plus the `auth_req_id`
/// (CIBA Core §10.3.1), or an error (§10.3.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PushNotification {
    Token {
        auth_req_id: String,
        #[serde(flatten)]
        token: TokenResponse,
    },
    Error {
        auth_req_id: String,
        error: crate::OAuthErrorCode,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_description: Option<String>,
    },
}
