use countersign_jose::JoseError;

/// Why a presentation was refused. Every variant names a reason a tool owner can act on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("malformed credential: {0}")]
    Malformed(String),
    #[error("algorithm {0:?} is not allowed (only ES256)")]
    AlgorithmNotAllowed(String),
    #[error("wrong token type {0:?} (expected vc+jwt)")]
    WrongType(Option<String>),
    #[error("issuer {0:?} is not trusted")]
    UntrustedIssuer(Option<String>),
    #[error("no trusted key with kid {0:?}")]
    UnknownKey(Option<String>),
    #[error("signature does not verify")]
    BadSignature,
    #[error("expired at {exp} (now {now})")]
    Expired { exp: i64, now: i64 },
    #[error("not valid before {nbf} (now {now})")]
    NotYetValid { nbf: i64, now: i64 },
    #[error("action {requested:?} was not approved (approved: {approved:?})")]
    ActionMismatch {
        requested: String,
        approved: Vec<String>,
    },
    #[error("argument outside the approval: {field}: {reason}")]
    ArgumentOutsideApproval { field: String, reason: String },
    #[error("the credential is bound to a key (DPoP) but no proof was presented")]
    DpopMissing,
    #[error("invalid DPoP proof: {0}")]
    DpopInvalid(String),
    #[error("DPoP proof was already used (replay)")]
    DpopReplayed,
    #[error("DPoP proof is for method {found:?}, the call is {expected:?}")]
    DpopWrongMethod { expected: String, found: String },
    #[error("DPoP proof is for {found:?}, the call is to {expected:?}")]
    DpopWrongUrl { expected: String, found: String },
    #[error("DPoP proof's ath does not match the credential")]
    DpopWrongAth,
    #[error("DPoP proof is signed by a key other than the one the credential is bound to")]
    DpopKeyMismatch,
    #[error("the credential has been revoked")]
    Revoked,
    #[error(
        "the credential is not bound to a key (a bearer credential) and this verifier requires proof of possession"
    )]
    NotKeyBound,
    #[error("the credential was already used {max_uses} time(s), as often as it may be")]
    UseLimitReached { max_uses: u64 },
    #[error("the credential's uses cannot be counted: {0}")]
    UsageUnavailable(String),
    #[error("revocation status unavailable: {0}")]
    StatusUnavailable(String),
}

impl Rejection {
    /// A stable, machine-readable name for the reason (`bad_signature`, `revoked`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Malformed(_) => "malformed",
            Rejection::AlgorithmNotAllowed(_) => "algorithm_not_allowed",
            Rejection::WrongType(_) => "wrong_type",
            Rejection::UntrustedIssuer(_) => "untrusted_issuer",
            Rejection::UnknownKey(_) => "unknown_key",
            Rejection::BadSignature => "bad_signature",
            Rejection::Expired { .. } => "expired",
            Rejection::NotYetValid { .. } => "not_yet_valid",
            Rejection::ActionMismatch { .. } => "action_mismatch",
            Rejection::ArgumentOutsideApproval { .. } => "argument_outside_approval",
            Rejection::DpopMissing => "dpop_missing",
            Rejection::DpopInvalid(_) => "dpop_invalid",
            Rejection::DpopReplayed => "dpop_replayed",
            Rejection::DpopWrongMethod { .. } => "dpop_wrong_method",
            Rejection::DpopWrongUrl { .. } => "dpop_wrong_url",
            Rejection::DpopWrongAth => "dpop_wrong_ath",
            Rejection::DpopKeyMismatch => "dpop_key_mismatch",
            Rejection::Revoked => "revoked",
            Rejection::NotKeyBound => "not_key_bound",
            Rejection::UseLimitReached { .. } => "use_limit_reached",
            Rejection::UsageUnavailable(_) => "usage_unavailable",
            Rejection::StatusUnavailable(_) => "status_unavailable",
        }
    }
}

impl From<JoseError> for Rejection {
    fn from(e: JoseError) -> Self {
        match e {
            JoseError::UnsupportedAlgorithm(alg) => Rejection::AlgorithmNotAllowed(alg),
            JoseError::BadSignature => Rejection::BadSignature,
            JoseError::NoMatchingKey => Rejection::UnknownKey(None),
            other => Rejection::Malformed(other.to_string()),
        }
    }
}
