//! What a gateway on another machine reports back (`docs/gateway.md`, "A gateway beside
//! the agent"): `POST /v1/gateway-calls`, what became of a call, and `POST
//! /v1/withdrawals`, an approval request the agent gave up on. Authenticated like a client
//! at the token endpoint, as the agent the gateway serves; errors are OAuth error JSON.

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::error::{Endpoint, OAuthResponse, ciba_error};
use super::form::OAuthForm;
use super::oauth::{authenticated, no_store};
use crate::ciba::CibaError;
use crate::gateway::calls;
use crate::paths;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::GATEWAY_CALLS, post(report_call))
        .route(paths::WITHDRAWALS, post(withdraw))
}

/// A report recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallRecorded {
    /// The trace event's kind, `gateway.call`.
    pub recorded: String,
}

/// The answer to a withdrawal.
#[derive(Debug, Serialize, ToSchema)]
pub struct Withdrawal {
    /// `true`: the request was pending and is withdrawn now; `false`: it was already
    /// answered, expired, withdrawn, or is not this agent's (nothing changed).
    pub withdrawn: bool,
}

fn params(form: OAuthForm) -> Map<String, Value> {
    form.0
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect()
}

/// Records in the decision trace what became of one of the authenticated agent's calls
/// (event `gateway.call`, the agent as actor), once it is durable. The `decision_id` and
/// `auth_req_id` it names must be the agent's own.
#[utoipa::path(post, path = "/v1/gateway-calls", tag = "oauth",
    request_body(content = super::oauth_forms::GatewayCallForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = CallRecorded),
        (status = 400, description = "OAuth error (invalid_request)", body = countersign_shared::OAuthError),
        (status = 401, description = "client authentication failed", body = countersign_shared::OAuthError),
        (status = 413, description = "body too large", body = countersign_shared::OAuthError),
        (status = 429, description = "rate limited: slow_down, with Retry-After", body = countersign_shared::OAuthError),
        (status = 503, description = "storage unavailable", body = countersign_shared::OAuthError)),
    security(("client_basic" = [])))]
pub(super) async fn report_call(
    State(state): State<AppState>,
    headers: HeaderMap,
    mut form: OAuthForm,
) -> Result<Response, OAuthResponse> {
    let client = authenticated(&state, &headers, &mut form, paths::GATEWAY_CALLS).await?;
    let params = params(form);
    let recorded = async {
        let report = calls::report_from(&state.store, &client.client_id, &params).await?;
        calls::record(&state.store, &report, state.now_ms(), true).await?;
        Ok::<_, CibaError>(())
    };
    recorded.await.map_err(|e| ciba_error(e, Endpoint::Other))?;
    Ok(no_store(CallRecorded {
        recorded: crate::audit::EventKind::GatewayCall.as_str().to_owned(),
    }))
}

/// Withdraws the authenticated agent's pending approval request `auth_req_id`: its
/// approvers are no longer asked, and it can no longer be collected at the token endpoint
/// (`access_denied`). Traced as `request.withdrawn`. Idempotent.
#[utoipa::path(post, path = "/v1/withdrawals", tag = "oauth",
    request_body(content = super::oauth_forms::WithdrawalForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = Withdrawal),
        (status = 400, description = "OAuth error (invalid_request)", body = countersign_shared::OAuthError),
        (status = 401, description = "client authentication failed", body = countersign_shared::OAuthError),
        (status = 413, description = "body too large", body = countersign_shared::OAuthError),
        (status = 429, description = "rate limited: slow_down, with Retry-After", body = countersign_shared::OAuthError),
        (status = 503, description = "storage unavailable", body = countersign_shared::OAuthError)),
    security(("client_basic" = [])))]
pub(super) async fn withdraw(
    State(state): State<AppState>,
    headers: HeaderMap,
    mut form: OAuthForm,
) -> Result<Response, OAuthResponse> {
    let client = authenticated(&state, &headers, &mut form, paths::WITHDRAWALS).await?;
    let params = params(form);
    let withdrawn = async {
        let auth_req_id = params
            .get("auth_req_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(crate::ids::AuthReqId::new)
            .ok_or_else(|| CibaError::InvalidRequest("auth_req_id is required".into()))?;
        let reason = calls::withdrawal_reason(&params)?;
        let now_ms = state.now_ms();
        Ok::<_, CibaError>(
            calls::withdraw(
                &state.store,
                &client.client_id,
                &auth_req_id,
                reason,
                now_ms,
            )
            .await?,
        )
    };
    let withdrawn = withdrawn
        .await
        .map_err(|e| ciba_error(e, Endpoint::Other))?;
    Ok(no_store(Withdrawal { withdrawn }))
}
