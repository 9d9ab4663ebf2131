//! The per-source-address rate limit of endpoints a caller reaches before any
//! authentication: what an anonymous flood hits first.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ProblemResponse;
use super::peer::client_address;
use crate::limits::RetryAfter;
use crate::state::AppState;

/// Paths (prefixes) served before the caller proves who they are.
const UNAUTHENTICATED: &[&str] = &[
    "/wallet/v1/enrollments",
    "/credentials/",
    "/ssf/",
    "/admin/sso/",
    "/console/sign-in",
];

pub async fn limit_by_source(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if !UNAUTHENTICATED.iter().any(|p| path.starts_with(p)) {
        return next.run(req).await;
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let proxies: Vec<ipnet::IpNet> = state
        .config
        .trusted_proxies
        .iter()
        .filter_map(|p| p.parse().ok())
        .collect();
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let key = client_address(peer, &forwarded, &proxies)
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    match state.limits.per_source.check(&key, state.now_ms()) {
        Ok(()) => next.run(req).await,
        Err(RetryAfter(secs)) => {
            metrics::counter!("countersign_rate_limited_total", "limit" => "source").increment(1);
            let mut resp = ProblemResponse::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many requests from {key}; retry in {secs} s"),
            )
            .with_code("rate_limited")
            .into_response();
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            resp
        }
    }
}
