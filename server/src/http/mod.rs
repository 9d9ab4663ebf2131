//! HTTP: each area returns its own router; this module merges them and adds the layers
//! every request goes through (request id, tracing, metrics, body limit).

pub mod admin;
mod admin_audit;
mod admin_credentials;
mod admin_devices;
mod admin_groups;
mod admin_offboarding;
mod admin_policies;
mod admin_sso;
mod app_links;
mod authzen;
pub mod console;
mod credential_uses;
pub mod decisions;
pub mod dev;
pub mod discovery;
pub mod error;
pub mod form;
mod gateway_reports;
pub mod oauth;
mod oauth_forms;
pub mod openapi;
mod openapi_gateway;
mod openapi_scim;
pub mod ops;
pub mod peer;
mod scim;
mod signals;
mod source_limit;
pub mod wallet;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, StatusCode};
use axum::middleware;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

use crate::state::AppState;
use error::ProblemResponse;

pub use admin_sso::{cookie, set_cookie};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(Clone, Copy, Default)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        countersign_jose::random_b64url(9)
            .parse()
            .ok()
            .map(RequestId::new)
    }
}

pub fn router(state: AppState) -> Router {
    let mut app = Router::new()
        .merge(oauth::router())
        .merge(decisions::router())
        .merge(gateway_reports::router())
        .merge(authzen::router())
        .merge(credential_uses::router())
        .merge(discovery::router())
        .merge(app_links::router())
        .merge(admin::router())
        .merge(admin_credentials::router())
        .merge(admin_audit::router())
        .merge(admin_devices::router())
        .merge(admin_offboarding::router())
        .merge(admin_groups::router())
        .merge(admin_policies::router())
        .merge(admin_sso::router())
        .merge(wallet::router())
        .merge(scim::router())
        .merge(signals::router())
        .merge(ops::router())
        .merge(crate::http::console::router(state.clone()));
    if state.config.dev_approvals {
        app = app.merge(dev::router());
    }
    let max_body = state.config.max_body_bytes;
    app.fallback(|| async { ProblemResponse::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            source_limit::limit_by_source,
        ))
        .route_layer(middleware::from_fn(ops::track))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get(REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
            }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, RandomRequestId))
        .with_state(state)
}
