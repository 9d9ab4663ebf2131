//! `POST /v1/decisions`: a policy decision without a credential, for gateways (and
//! dry-runs). Authenticated like a client at the token endpoint; errors are OAuth error
//! JSON.

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use serde_json::{Map, Value};

use super::error::{Endpoint, OAuthResponse, ciba_error};
use super::form::OAuthForm;
use super::oauth::{authenticated, no_store};
use super::peer::PeerAddr;
use crate::flows::decide;
use crate::paths;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(paths::DECISIONS, post(decide))
}

/// Decides an action for the authenticated agent: `allow`, `step_up` (with who may
/// approve) or `deny`, with the determining policies and reasons. Recorded in the
/// decision trace unless `dry_run=true`.
#[utoipa::path(post, path = "/v1/decisions", tag = "oauth",
    request_body(content = super::oauth_forms::DecisionForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = crate::flows::decide::DecisionAnswer),
        (status = 400, description = "OAuth error", body = countersign_shared::OAuthError),
        (status = 401, description = "client authentication failed", body = countersign_shared::OAuthError),
        (status = 413, description = "body too large", body = countersign_shared::OAuthError),
        (status = 429, description = "rate limited: slow_down, with Retry-After", body = countersign_shared::OAuthError),
        (status = 503, description = "storage unavailable", body = countersign_shared::OAuthError)),
    security(("client_basic" = [])))]
pub(super) async fn decide(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    mut form: OAuthForm,
) -> Result<Response, OAuthResponse> {
    let client = authenticated(&state, &headers, &mut form, paths::DECISIONS).await?;
    let params: Map<String, Value> = form
        .0
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let answer = decide::decide(&state.deciding(), &client, &params, &peer)
        .await
        .map_err(|e| ciba_error(e, Endpoint::Other))?;
    Ok(no_store(answer))
}
