//! `POST /credentials/{id}/uses`: a tool records one accepted use of a credential (for
//! tools on several hosts; see `credentials::uses`). Errors are problem documents with a
//! stable `code`.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::post;

use super::admin::ApiJson;
use super::error::ProblemResponse;
use super::oauth::no_store;
use crate::credentials::uses::{self, Presented, UseReport};
use crate::paths;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(paths::CREDENTIAL_USES, post(record_use))
}

/// The credential from `Authorization: DPoP <credential>` (or `Bearer` for a bearer-only
/// agent's), and the one `DPoP` proof header, if any.
fn presented(headers: &HeaderMap) -> Result<(&str, Option<&str>), ProblemResponse> {
    let bad = |m: &str| {
        ProblemResponse::new(axum::http::StatusCode::BAD_REQUEST, m).with_code("invalid_request")
    };
    let mut authorizations = headers.get_all(header::AUTHORIZATION).iter();
    let authorization = match (authorizations.next(), authorizations.next()) {
        (Some(a), None) => a
            .to_str()
            .map_err(|_| bad("the Authorization header is not ASCII"))?,
        // No credential at all: the caller is unauthenticated (RFC 6750 §3.1).
        (None, _) => {
            return Err(ProblemResponse::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "send the credential as Authorization: DPoP <credential>",
            )
            .with_code("invalid_token"));
        }
        _ => return Err(bad("send the credential in one Authorization header")),
    };
    let credential = authorization
        .strip_prefix("DPoP ")
        .or_else(|| authorization.strip_prefix("Bearer "))
        .ok_or_else(|| bad("Authorization must be DPoP <credential> (or Bearer)"))?;
    let mut proofs = headers.get_all("dpop").iter();
    let proof = match (proofs.next(), proofs.next()) {
        (None, _) => None,
        (Some(p), None) => Some(
            p.to_str()
                .map_err(|_| bad("the DPoP header is not ASCII"))?,
        ),
        (Some(_), Some(_)) => return Err(bad("more than one DPoP header")),
    };
    Ok((credential.trim(), proof))
}

/// Records one use of the credential for the tool's call `htm` `htu`. The same DPoP proof
/// reported again is the same use (answered with its number, not counted twice).
#[utoipa::path(post, path = "/credentials/{id}/uses", tag = "credentials",
    params(("id" = String, Path, description = "the credential's jti"),
        ("DPoP" = Option<String>, Header, description = "the agent's proof, as the tool received it")),
    request_body = crate::credentials::uses::UseReport,
    responses((status = 200, body = crate::credentials::uses::UseCounted),
        (status = 400, description = "malformed report", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "not a live credential of this server, or a bad proof (code invalid_token / invalid_dpop_proof)", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "every allowed use is spent (code use_limit_reached)", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "body too large", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "the report is not {htm, htu}", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "too many requests from this address (Retry-After)", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "not application/json", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "storage unavailable", body = super::error::Problem, content_type = "application/problem+json")),
    security(("dpop_credential" = [])))]
pub(super) async fn record_use(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(report): ApiJson<UseReport>,
) -> Result<Response, ProblemResponse> {
    let (credential, proof) = presented(&headers)?;
    let presented = Presented {
        id: &id,
        credential,
        proof,
    };
    let counted =
        uses::record_use(&state.issuing(), &state.config.ciba, presented, &report).await?;
    Ok(no_store(counted))
}
