//! Developer approvals (`--dev-approvals`): approve or deny a pending request without a
//! phone. Only mounted when enabled, which the configuration allows on a loopback
//! listener only; and each call must come from loopback itself, directly: a request
//! carrying proxy forwarding headers came from somewhere else through a proxy on this
//! host, and is refused.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

use super::error::ProblemResponse;
use super::peer::TcpPeer;
use crate::approvals::{self, ApprovalMethod, DecisionInput};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dev/approvals/{auth_req_id}/approve", post(approve))
        .route("/dev/approvals/{auth_req_id}/deny", post(deny))
}

/// Who the decision is recorded as: never the human, whose confirmation did not happen.
const DEV_DECIDER: &str = "developer-mode";

fn developer(approved: bool) -> DecisionInput<'static> {
    DecisionInput {
        approved,
        decided_by: DEV_DECIDER,
        method: ApprovalMethod::Developer,
        approval_jws: None,
        device_jkt: None,
        reason: None,
    }
}

/// Headers a forwarding proxy adds.
const FORWARDING: &[&str] = &[
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
];

/// Refuses a caller that is not on loopback, or that came through a proxy.
fn local_only(peer: Option<SocketAddr>, headers: &HeaderMap) -> Result<(), ProblemResponse> {
    let loopback = peer.is_some_and(|p| p.ip().to_canonical().is_loopback());
    if !loopback || FORWARDING.iter().any(|h| headers.contains_key(*h)) {
        tracing::warn!(
            ?peer,
            "a developer approval from outside loopback was refused"
        );
        return Err(ProblemResponse::new(
            StatusCode::FORBIDDEN,
            "developer approvals are accepted only from loopback, not through a proxy",
        ));
    }
    Ok(())
}

#[utoipa::path(post, path = "/dev/approvals/{auth_req_id}/approve", tag = "dev",
    params(("auth_req_id" = String, Path)),
    responses((status = 204, description = "approved"), (status = 404, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = super::error::Problem, content_type = "application/problem+json", description = "not from loopback, or through a proxy"),
        (status = 409, body = super::error::Problem, content_type = "application/problem+json", description = "already decided or expired")))]
pub(super) async fn approve(
    State(state): State<AppState>,
    TcpPeer(peer): TcpPeer,
    headers: HeaderMap,
    Path(id): Path<crate::ids::AuthReqId>,
) -> Result<StatusCode, ProblemResponse> {
    local_only(peer, &headers)?;
    approvals::decide(&state.approvals, &id, developer(true)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/dev/approvals/{auth_req_id}/deny", tag = "dev",
    params(("auth_req_id" = String, Path)),
    responses((status = 204, description = "denied"), (status = 404, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = super::error::Problem, content_type = "application/problem+json", description = "not from loopback, or through a proxy"),
        (status = 409, body = super::error::Problem, content_type = "application/problem+json", description = "already decided or expired")))]
pub(super) async fn deny(
    State(state): State<AppState>,
    TcpPeer(peer): TcpPeer,
    headers: HeaderMap,
    Path(id): Path<crate::ids::AuthReqId>,
) -> Result<StatusCode, ProblemResponse> {
    local_only(peer, &headers)?;
    approvals::decide(&state.approvals, &id, developer(false)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_direct_loopback_callers() {
        let none = HeaderMap::new();
        let at = |a: &str| Some(a.parse::<SocketAddr>().unwrap());
        assert!(local_only(at("127.0.0.1:5000"), &none).is_ok());
        assert!(local_only(at("[::1]:5000"), &none).is_ok());
        assert!(local_only(at("[::ffff:127.0.0.1]:5000"), &none).is_ok());
        assert!(local_only(at("10.0.0.1:5000"), &none).is_err());
        assert!(local_only(at("[::ffff:10.0.0.1]:5000"), &none).is_err());
        assert!(local_only(None, &none).is_err());
        for h in FORWARDING {
            let mut proxied = HeaderMap::new();
            proxied.insert(*h, "203.0.113.9".parse().unwrap());
            assert!(local_only(at("127.0.0.1:5000"), &proxied).is_err(), "{h}");
        }
    }
}
