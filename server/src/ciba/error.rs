use crate::credentials::CredentialError;
use crate::oidc::client_auth::ClientAuthError;
use crate::oidc::dpop::DpopError;
use crate::store::StoreError;

/// Every way a backchannel authentication or token request (the CIBA grant, or a renewal
/// by token exchange) can fail. Each variant is
/// one protocol error of CIBA Core §13 / §11 (or RFC 9449 / RFC 9396); the HTTP edge maps
/// them one to one.
#[derive(Debug, thiserror::Error)]
pub enum CibaError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidScope(String),
    #[error("the login_hint_token has expired")]
    ExpiredLoginHintToken,
    #[error("no user matches the hint")]
    UnknownUserId,
    #[error("{0}")]
    UnauthorizedClient(String),
    #[error("a user_code is required")]
    MissingUserCode,
    #[error("the user_code is wrong")]
    InvalidUserCode,
    #[error("{0}")]
    InvalidBindingMessage(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    InvalidAuthorizationDetails(String),
    #[error("the user has not yet decided")]
    AuthorizationPending,
    #[error("polling too fast; wait the interval")]
    SlowDown,
    /// A rate limit or quota: wait `retry_after` seconds.
    #[error("{reason}")]
    RateLimited { retry_after: u64, reason: String },
    #[error("the auth_req_id has expired")]
    ExpiredToken,
    #[error("{0}")]
    InvalidGrant(String),
    #[error("{0}")]
    InvalidDpopProof(String),
    /// RFC 8693 (renewal): a target the exchange cannot issue for.
    #[error("{0}")]
    InvalidTarget(String),
    #[error(transparent)]
    Client(#[from] ClientAuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Credential(#[from] CredentialError),
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
}

impl From<DpopError> for CibaError {
    fn from(e: DpopError) -> Self {
        match e {
            DpopError::Invalid(reason) => CibaError::InvalidDpopProof(reason),
            DpopError::Store(s) => CibaError::Store(s),
        }
    }
}
