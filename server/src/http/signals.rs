//! `POST /ssf/events`: Security Event Token push delivery (RFC 8935) from the configured
//! Shared Signals transmitters. 202 when accepted; 400 with RFC 8935's error JSON
//! otherwise; 503 when storage failed (the transmitter retries).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::signals::{self, SetError};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/ssf/events", post(receive))
}

/// RFC 8935 §2.3 error response.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SetErrorBody {
    /// `invalid_request`, `invalid_key`, `invalid_issuer` or `invalid_audience`.
    pub err: String,
    pub description: String,
}

fn error(status: StatusCode, err: &str, description: String) -> Response {
    let body = SetErrorBody {
        err: err.to_owned(),
        description,
    };
    (status, axum::Json(body)).into_response()
}

/// Receives one SET (`application/secevent+jwt`, signed by a configured transmitter).
#[utoipa::path(post, path = "/ssf/events", tag = "signals",
    request_body(content = String, content_type = "application/secevent+jwt",
        description = "A Security Event Token (RFC 8417)"),
    responses((status = 202, description = "accepted"),
        (status = 400, description = "refused (RFC 8935 §2.3)", body = SetErrorBody),
        (status = 413, description = "body too large"),
        (status = 503, description = "storage unavailable; retry", body = SetErrorBody),
        (status = 429, description = "too many requests from this address (Retry-After)", body = super::error::Problem, content_type = "application/problem+json")))]
pub(super) async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if content_type.as_deref() != Some("application/secevent+jwt") {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/secevent+jwt".into(),
        );
    }
    let Ok(token) = std::str::from_utf8(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body is not text".into(),
        );
    };
    match signals::receive(&state.signal_receiver(), token).await {
        Ok(_) => {
            state.outbox_wake.notify_one();
            StatusCode::ACCEPTED.into_response()
        }
        Err(SetError::Store(e)) => {
            tracing::error!(error = %e, "storing a security event failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "invalid_request",
                "storage unavailable; retry".into(),
            )
        }
        Err(e) => {
            tracing::warn!(err = e.code(), reason = %e, "security event token refused");
            error(StatusCode::BAD_REQUEST, e.code(), e.to_string())
        }
    }
}
