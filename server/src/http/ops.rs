//! Liveness, readiness, Prometheus metrics and the OpenAPI document.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::error::ProblemResponse;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/openapi.json", get(openapi))
}

/// The process-wide Prometheus recorder (the `metrics` facade is global by design).
fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ];
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("countersign_http_request_duration_seconds".into()),
                    &buckets,
                )
                .ok()?
                .install_recorder()
                .ok()
        })
        .as_ref()
}

/// Installs the recorder; called once at start-up so early requests are counted.
pub fn init_metrics() {
    if prometheus().is_none() {
        tracing::warn!("another metrics recorder is installed; /metrics will be empty");
    }
}

/// Counts requests and their latency by route template and status.
pub async fn track(req: Request, next: Next) -> Response {
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let start = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("countersign_http_requests_total", "endpoint" => endpoint.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("countersign_http_request_duration_seconds", "endpoint" => endpoint)
        .record(start.elapsed().as_secs_f64());
    resp
}

#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "the process is alive")))]
pub(super) async fn healthz() -> &'static str {
    "ok"
}

#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "the database answers"), (status = 503, body = super::error::Problem, content_type = "application/problem+json")))]
pub(super) async fn readyz(State(state): State<AppState>) -> Result<&'static str, ProblemResponse> {
    state.store.ping().await?;
    Ok("ready")
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    let now = state.now_ms();
    if let Ok(n) = state.store.count_pending_auth_requests(now).await {
        metrics::gauge!("countersign_ciba_pending_requests").set(n as f64);
    }
    if let Ok(n) = state.store.outbox_depth().await {
        metrics::gauge!("countersign_notification_outbox_depth").set(n as f64);
    }
    let body = prometheus()
        .map(PrometheusHandle::render)
        .unwrap_or_default();
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    resp
}

async fn openapi() -> Json<serde_json::Value> {
    Json(super::openapi::document())
}
