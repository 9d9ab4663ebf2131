//! Discovery document and JWKS.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::oidc::discovery::metadata;
use crate::state::{AppState, paths};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::DISCOVERY, get(discovery))
        .route(paths::JWKS, get(jwks))
}

#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "oauth",
    responses((status = 200, body = countersign_shared::discovery::ProviderMetadata)))]
pub(super) async fn discovery(
    State(state): State<AppState>,
) -> Json<countersign_shared::discovery::ProviderMetadata> {
    Json(metadata(&state))
}

#[utoipa::path(get, path = "/jwks.json", tag = "oauth",
    responses((status = 200, description = "RFC 7517 JWK Set", body = Object)))]
pub(super) async fn jwks(State(state): State<AppState>) -> Response {
    let mut resp = Json(state.keys.jwks()).into_response();
    // Short enough that a rotated-in key is seen well before the old one stops being used.
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}
