//! The one place where domain errors become HTTP responses: OAuth error JSON on the
//! protocol endpoints, `application/problem+json` (RFC 9457) on the admin and developer
//! APIs. Every variant is mapped explicitly; internal detail is logged, never returned.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use countersign_shared::{OAuthError, OAuthErrorCode};
use serde::Serialize;
use utoipa::ToSchema;

use crate::approvals::ApprovalError;
use crate::ciba::CibaError;
use crate::credentials::CredentialError;
use crate::directory::DirectoryError;
use crate::oidc::client_auth::ClientAuthError;
use crate::policy::PolicyError;
use crate::store::StoreError;

/// An OAuth error response.
#[derive(Debug)]
pub struct OAuthResponse {
    pub status: StatusCode,
    pub code: OAuthErrorCode,
    pub description: String,
    /// Answer `invalid_client` with `WWW-Authenticate: Basic` (RFC 6749 §5.2).
    pub basic_challenge: bool,
    /// `Retry-After` seconds, for a rate limit.
    pub retry_after: Option<u64>,
}

impl OAuthResponse {
    pub fn new(status: StatusCode, code: OAuthErrorCode, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            basic_challenge: false,
            retry_after: None,
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            OAuthErrorCode::InvalidRequest,
            description,
        )
    }

    /// A storage failure, by what it is: the database unreachable or failing (503, retry),
    /// a conflict (409), or data that cannot be read back (500, logged: an operator must
    /// look).
    fn unavailable(err: &StoreError) -> Self {
        match err {
            StoreError::Conflict => Self::new(
                StatusCode::CONFLICT,
                OAuthErrorCode::InvalidRequest,
                "a conflicting change was made at the same time; retry",
            ),
            StoreError::Corrupt(_) | StoreError::Misuse(_) => Self::internal(err),
            StoreError::Database(_) | StoreError::Migrate(_) | StoreError::Uncertain(_) => {
                tracing::error!(error = %err, "storage failure while serving an OAuth request");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    OAuthErrorCode::TemporarilyUnavailable,
                    "the service is temporarily unavailable; retry later",
                )
            }
        }
    }

    /// A rate limit: 429 with `Retry-After`; at the token endpoint CIBA's own `slow_down`.
    pub fn rate_limited(endpoint: Endpoint, retry_after: u64, description: String) -> Self {
        let status = match endpoint {
            Endpoint::Token => StatusCode::BAD_REQUEST,
            Endpoint::BackchannelAuthentication | Endpoint::Other => StatusCode::TOO_MANY_REQUESTS,
        };
        Self {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(status, OAuthErrorCode::SlowDown, description)
        }
    }

    fn internal(err: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %err, "internal failure while serving an OAuth request");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            OAuthErrorCode::ServerError,
            "internal error",
        )
    }
}

impl IntoResponse for OAuthResponse {
    fn into_response(self) -> Response {
        if self.status.is_client_error() {
            tracing::info!(error = %self.code, description = %self.description, "OAuth request refused");
        }
        let body = OAuthError {
            error: self.code,
            error_description: Some(self.description),
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        let headers = resp.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if self.basic_challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"countersign\""),
            );
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// Which endpoint answers: `access_denied` is 403 at the backchannel endpoint (CIBA Core
/// §13) but 400 at the token endpoint (RFC 6749 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    BackchannelAuthentication,
    Token,
    Other,
}

pub fn client_auth_error(err: ClientAuthError) -> OAuthResponse {
    match err {
        ClientAuthError::InvalidClient { reason, basic } => OAuthResponse {
            basic_challenge: basic,
            ..OAuthResponse::new(
                StatusCode::UNAUTHORIZED,
                OAuthErrorCode::InvalidClient,
                reason,
            )
        },
        ClientAuthError::InvalidRequest(reason) => OAuthResponse::invalid_request(reason),
        ClientAuthError::Store(e) => OAuthResponse::unavailable(&e),
    }
}

pub fn store_error(err: StoreError) -> OAuthResponse {
    OAuthResponse::unavailable(&err)
}

pub fn ciba_error(err: CibaError, endpoint: Endpoint) -> OAuthResponse {
    use OAuthErrorCode as C;
    let bad = |code: C, d: String| OAuthResponse::new(StatusCode::BAD_REQUEST, code, d);
    let text = err.to_string();
    match err {
        CibaError::InvalidRequest(_) => bad(C::InvalidRequest, text),
        CibaError::InvalidScope(_) => bad(C::InvalidScope, text),
        CibaError::ExpiredLoginHintToken => bad(C::ExpiredLoginHintToken, text),
        CibaError::UnknownUserId => bad(C::UnknownUserId, text),
        CibaError::UnauthorizedClient(_) => bad(C::UnauthorizedClient, text),
        CibaError::MissingUserCode => bad(C::MissingUserCode, text),
        CibaError::InvalidUserCode => bad(C::InvalidUserCode, text),
        CibaError::InvalidBindingMessage(_) => bad(C::InvalidBindingMessage, text),
        CibaError::AccessDenied(_) => {
            let status = match endpoint {
                Endpoint::BackchannelAuthentication => StatusCode::FORBIDDEN,
                Endpoint::Token | Endpoint::Other => StatusCode::BAD_REQUEST,
            };
            OAuthResponse::new(status, C::AccessDenied, text)
        }
        CibaError::InvalidAuthorizationDetails(_) => bad(C::InvalidAuthorizationDetails, text),
        CibaError::AuthorizationPending => bad(C::AuthorizationPending, text),
        CibaError::SlowDown => bad(C::SlowDown, text),
        CibaError::RateLimited { retry_after, .. } => {
            OAuthResponse::rate_limited(endpoint, retry_after, text)
        }
        CibaError::ExpiredToken => bad(C::ExpiredToken, text),
        CibaError::InvalidGrant(_) => bad(C::InvalidGrant, text),
        CibaError::InvalidDpopProof(_) => bad(C::InvalidDpopProof, text),
        CibaError::InvalidTarget(_) => bad(C::InvalidTarget, text),
        CibaError::Client(e) => client_auth_error(e),
        CibaError::Store(e) => OAuthResponse::unavailable(&e),
        CibaError::Credential(CredentialError::Store(e)) => OAuthResponse::unavailable(&e),
        CibaError::Credential(
            e @ (CredentialError::Signing(_)
            | CredentialError::CorruptDetails
            | CredentialError::Encoding(_)),
        ) => OAuthResponse::internal(&e),
        CibaError::Policy(PolicyError::BadRequest(m)) => bad(C::InvalidAuthorizationDetails, m),
        CibaError::Policy(PolicyError::Store(e)) => OAuthResponse::unavailable(&e),
        CibaError::Policy(
            e @ (PolicyError::Invalid(_) | PolicyError::NotFound(_) | PolicyError::Corrupt(_)),
        ) => OAuthResponse::internal(&e),
    }
}

/// RFC 9457 problem details.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`: the status and title say what happened.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// A stable, machine-readable reason where clients act on it (`use_limit_reached`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
}

const PROBLEM_JSON: &str = "application/problem+json";

/// The answers any endpoint taking a JSON body may give before its handler runs (the
/// `ApiJson` extractor's refusals), for `#[utoipa::path(responses(...))]`: 400 malformed
/// JSON, 413 body too large, 415 not `application/json`, each a [`Problem`].
pub struct JsonBodyProblems;

impl utoipa::IntoResponses for JsonBodyProblems {
    fn responses()
    -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        [
            ("400", "malformed JSON"),
            ("413", "body too large"),
            ("415", "not application/json"),
        ]
        .into_iter()
        .map(|(status, description)| {
            let problem = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build();
            let response = ResponseBuilder::new()
                .description(description)
                .content(PROBLEM_JSON, problem)
                .build();
            (status.to_owned(), response.into())
        })
        .collect()
    }
}

#[derive(Debug)]
pub struct ProblemResponse {
    pub status: StatusCode,
    pub detail: String,
    /// `WWW-Authenticate` on a 401 (default: the admin API's bearer challenge).
    pub challenge: &'static str,
    /// The problem's stable `code`, if it has one.
    pub code: Option<&'static str>,
}

const ADMIN_CHALLENGE: &str = "Bearer realm=\"countersign-admin\"";
const WALLET_CHALLENGE: &str = "DPoP algs=\"ES256\"";

impl ProblemResponse {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            challenge: ADMIN_CHALLENGE,
            code: None,
        }
    }

    /// The same problem, with a stable `code` clients can act on.
    pub fn with_code(self, code: &'static str) -> Self {
        Self {
            code: Some(code),
            ..self
        }
    }
}

impl IntoResponse for ProblemResponse {
    fn into_response(self) -> Response {
        let body = Problem {
            kind: "about:blank",
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code,
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut resp = (self.status, json).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(self.challenge),
            );
        }
        resp
    }
}

impl From<DirectoryError> for ProblemResponse {
    fn from(err: DirectoryError) -> Self {
        let detail = err.to_string();
        match err {
            DirectoryError::Invalid(_) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail),
            DirectoryError::NotFound(_) => Self::new(StatusCode::NOT_FOUND, detail),
            DirectoryError::Conflict(_) => Self::new(StatusCode::CONFLICT, detail),
            DirectoryError::Store(e) => Self::from(e),
        }
    }
}

impl From<StoreError> for ProblemResponse {
    /// By what failed: unreachable or failing database 503 (retry), a conflicting write
    /// 409, data that cannot be read back 500 (logged: an operator must look).
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict => Self::new(
                StatusCode::CONFLICT,
                "a conflicting change was made at the same time; retry",
            ),
            StoreError::Corrupt(_) | StoreError::Misuse(_) => {
                tracing::error!(error = %err, "stored data cannot be used while serving an API request");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
            StoreError::Database(_) | StoreError::Migrate(_) | StoreError::Uncertain(_) => {
                tracing::error!(error = %err, "storage failure while serving an API request");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the service is temporarily unavailable; retry later",
                )
            }
        }
    }
}

impl From<crate::credentials::manage::ManageError> for ProblemResponse {
    fn from(err: crate::credentials::manage::ManageError) -> Self {
        use crate::credentials::manage::ManageError;
        let detail = err.to_string();
        match err {
            ManageError::Invalid(_) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail),
            ManageError::NotFound(_) => Self::new(StatusCode::NOT_FOUND, detail),
            ManageError::Store(e) => Self::from(e),
        }
    }
}

impl From<CredentialError> for ProblemResponse {
    fn from(err: CredentialError) -> Self {
        match err {
            CredentialError::Store(e) => Self::from(e),
            e @ (CredentialError::Signing(_)
            | CredentialError::CorruptDetails
            | CredentialError::Encoding(_)) => {
                tracing::error!(error = %e, "building a credential document failed");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }
}

impl From<ApprovalError> for ProblemResponse {
    fn from(err: ApprovalError) -> Self {
        let detail = err.to_string();
        match err {
            ApprovalError::NotFound | ApprovalError::Missing(_) => {
                Self::new(StatusCode::NOT_FOUND, detail)
            }
            ApprovalError::NotPending(ended) => {
                Self::new(StatusCode::CONFLICT, detail).with_code(match ended {
                    crate::approvals::Ended::Expired => "request_expired",
                    crate::approvals::Ended::Decided => "request_decided",
                })
            }
            ApprovalError::Conflict(_) => Self::new(StatusCode::CONFLICT, detail),
            ApprovalError::Unauthenticated(_) => Self {
                challenge: WALLET_CHALLENGE,
                ..Self::new(StatusCode::UNAUTHORIZED, detail)
            },
            ApprovalError::Forbidden(_) | ApprovalError::Invitation(_) => {
                Self::new(StatusCode::FORBIDDEN, detail)
            }
            ApprovalError::Invalid(_) | ApprovalError::Rejected(_) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
            }
            ApprovalError::Internal(_) => {
                tracing::error!(error = %detail, "approval processing failed");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
            ApprovalError::Store(e) | ApprovalError::Credential(CredentialError::Store(e)) => {
                Self::from(e)
            }
            ApprovalError::Credential(e) => Self::from(e),
        }
    }
}

impl From<crate::credentials::uses::UseError> for ProblemResponse {
    fn from(err: crate::credentials::uses::UseError) -> Self {
        use crate::credentials::uses::UseError;
        let detail = err.to_string();
        match err {
            UseError::InvalidToken(_) => Self {
                challenge: "DPoP algs=\"ES256\", error=\"invalid_token\"",
                ..Self::new(StatusCode::UNAUTHORIZED, detail)
            }
            .with_code("invalid_token"),
            UseError::InvalidProof(_) => Self {
                challenge: "DPoP algs=\"ES256\", error=\"invalid_dpop_proof\"",
                ..Self::new(StatusCode::UNAUTHORIZED, detail)
            }
            .with_code("invalid_dpop_proof"),
            UseError::InvalidRequest(_) => {
                Self::new(StatusCode::BAD_REQUEST, detail).with_code("invalid_request")
            }
            UseError::LimitReached { .. } => {
                Self::new(StatusCode::CONFLICT, detail).with_code("use_limit_reached")
            }
            UseError::Store(e) => Self::from(e),
        }
    }
}
