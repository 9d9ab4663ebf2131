//! Handlers of the OAuth / CIBA endpoints. Thin: read the request, call the domain, map the
//! error.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use countersign_shared::OAuthErrorCode;
use countersign_shared::ciba::CIBA_GRANT_TYPE;
use countersign_shared::oauth::{CLIENT_CREDENTIALS_GRANT_TYPE, TOKEN_EXCHANGE_GRANT_TYPE};
use serde::Serialize;
use serde_json::{Map, Value};

use super::error::{Endpoint, OAuthResponse, ciba_error, client_auth_error, store_error};
use super::form::OAuthForm;
use super::peer::PeerAddr;
use crate::ciba;
use crate::credentials;
use crate::limits::RetryAfter;
use crate::oidc::{client_auth, dpop};
use crate::paths;
use crate::state::AppState;
use crate::store::clients::ClientRecord;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::BC_AUTHORIZE, post(bc_authorize))
        .route(paths::TOKEN, post(token))
        .route(paths::INTROSPECT, post(introspect))
        .route(paths::REVOKE, post(revoke))
}

/// JSON with `Cache-Control: no-store`, as every token-bearing response must be.
pub(super) fn no_store<T: Serialize>(body: T) -> Response {
    let mut resp = Json(body).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

pub(super) async fn authenticated(
    state: &AppState,
    headers: &HeaderMap,
    form: &mut OAuthForm,
    path: &str,
) -> Result<ClientRecord, OAuthResponse> {
    let creds = form.take_credentials(headers)?;
    let client = client_auth::authenticate(&state.authenticating(), &creds, &state.endpoint(path))
        .await
        .map_err(client_auth_error)?;
    if let Err(RetryAfter(secs)) = state
        .limits
        .per_client
        .check(&client.client_id, state.now_ms())
    {
        metrics::counter!("countersign_rate_limited_total", "limit" => "client").increment(1);
        let endpoint = match path {
            paths::TOKEN => Endpoint::Token,
            paths::BC_AUTHORIZE => Endpoint::BackchannelAuthentication,
            _ => Endpoint::Other,
        };
        return Err(OAuthResponse::rate_limited(
            endpoint,
            secs,
            format!(
                "client {} is over its rate limit (rate_limits.per_client_per_sec); retry in {secs} s",
                client.client_id
            ),
        ));
    }
    Ok(client)
}

#[utoipa::path(post, path = "/bc-authorize", tag = "oauth",
    request_body(content = super::oauth_forms::BackchannelAuthForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = countersign_shared::BackchannelAuthResponse),
        (status = 403, description = "access_denied", body = countersign_shared::OAuthError),
        (status = 400, description = "OAuth error", body = countersign_shared::OAuthError),
        (status = 401, description = "client authentication failed", body = countersign_shared::OAuthError),
        (status = 413, description = "body too large", body = countersign_shared::OAuthError),
        (status = 429, description = "rate limited: slow_down, with Retry-After", body = countersign_shared::OAuthError),
        (status = 503, description = "storage unavailable", body = countersign_shared::OAuthError)),
    security(("client_basic" = [])))]
pub(super) async fn bc_authorize(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    mut form: OAuthForm,
) -> Result<Response, OAuthResponse> {
    let client = authenticated(&state, &headers, &mut form, paths::BC_AUTHORIZE).await?;
    let params: Map<String, Value> = form
        .0
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let response =
        ciba::authorize::backchannel_authorize(&state.authorizing(), &client, params, &peer)
            .await
            .map_err(|e| ciba_error(e, Endpoint::BackchannelAuthentication))?;
    Ok(no_store(response))
}

#[utoipa::path(post, path = "/token", tag = "oauth",
    request_body(content = super::oauth_forms::TokenRequestForm, content_type = "application/x-www-form-urlencoded"),
    params(("DPoP" = Option<String>, Header, description = "RFC 9449 proof")),
    responses((status = 200, body = countersign_shared::TokenResponse),
        (status = 400, description = "OAuth error", body = countersign_shared::OAuthError),
        (status = 401, description = "client authentication failed", body = countersign_shared::OAuthError),
        (status = 413, description = "body too large", body = countersign_shared::OAuthError),
        (status = 503, description = "storage unavailable", body = countersign_shared::OAuthError)),
    security(("client_basic" = [])))]
pub(super) async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    mut form: OAuthForm,
) -> Result<Response, OAuthResponse> {
    let client = authenticated(&state, &headers, &mut form, paths::TOKEN).await?;
    let grant_type = form.0.get("grant_type").map(String::as_str);
    if !matches!(
        grant_type,
        Some(CIBA_GRANT_TYPE | TOKEN_EXCHANGE_GRANT_TYPE | CLIENT_CREDENTIALS_GRANT_TYPE)
    ) {
        return Err(match grant_type {
            Some(other) => OAuthResponse::new(
                StatusCode::BAD_REQUEST,
                OAuthErrorCode::UnsupportedGrantType,
                format!(
                    "grant_type {other:?} is not supported; use {CIBA_GRANT_TYPE} (or {TOKEN_EXCHANGE_GRANT_TYPE} to renew, {CLIENT_CREDENTIALS_GRANT_TYPE} for the MCP gateway and the AuthZEN API)"
                ),
            ),
            None => OAuthResponse::invalid_request("grant_type is required"),
        });
    }
    let jkt = dpop_thumbprint(&state, &headers).await?;
    let response = if grant_type == Some(CLIENT_CREDENTIALS_GRANT_TYPE) {
        let resource = form.0.get("resource").map(String::as_str);
        crate::ciba::client_credentials::issue(&state.minting(), &client, resource, jkt)
    } else if grant_type == Some(TOKEN_EXCHANGE_GRANT_TYPE) {
        let params: Map<String, Value> = form
            .0
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        crate::ciba::renewal::renew(&state.issuing(), &client, &params, jkt).await
    } else {
        let auth_req_id = form
            .0
            .get("auth_req_id")
            .filter(|v| !v.is_empty())
            .map(|id| crate::ids::AuthReqId::new(id.as_str()))
            .ok_or_else(|| OAuthResponse::invalid_request("auth_req_id is required"))?;
        ciba::token::exchange(&state.issuing(), &client, &auth_req_id, jkt).await
    };
    Ok(no_store(
        response.map_err(|e| ciba_error(e, Endpoint::Token))?,
    ))
}

/// Verifies the request's DPoP proof (RFC 9449 §4.3), if any, and returns its key's
/// thumbprint.
async fn dpop_thumbprint(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<String>, OAuthResponse> {
    let mut proofs = headers.get_all("dpop").iter();
    match (proofs.next(), proofs.next()) {
        (None, _) => Ok(None),
        (Some(_), Some(_)) => Err(OAuthResponse::new(
            StatusCode::BAD_REQUEST,
            OAuthErrorCode::InvalidDpopProof,
            "more than one DPoP header",
        )),
        (Some(proof), None) => {
            let proof = proof.to_str().map_err(|_| {
                OAuthResponse::new(
                    StatusCode::BAD_REQUEST,
                    OAuthErrorCode::InvalidDpopProof,
                    "DPoP header is not ASCII",
                )
            })?;
            let jkt = dpop::verify_proof(
                &state.store,
                state.dpop_window(),
                proof,
                "POST",
                &state.endpoint(paths::TOKEN),
            )
            .await
            .map_err(|e| ciba_error(e.into(), Endpoint::Token))?;
            Ok(Some(jkt))
        }
    }
}

#[utoipa::path(post, path = "/introspect", tag = "oauth",
    request_body(content = super::oauth_forms::TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = crate::credentials::Introspection),
        (status = 400, description = "OAuth error", body = countersign_shared::OAuthError),
        (status = 401, description = "client authentication failed", body = countersign_shared::OAuthError),
        (status = 413, description = "body too large", body = countersign_shared::OAuthError),
        (status = 429, description = "rate limited: slow_down, with Retry-After", body = countersign_shared::OAuthError),
        (status = 503, description = "storage unavailable", body = countersign_shared::OAuthError)),
    security(("client_basic" = [])))]
pub(super) async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    mut form: OAuthForm,
) -> Result<Response, OAuthResponse> {
    let client = authenticated(&state, &headers, &mut form, paths::INTROSPECT).await?;
    let token = form
        .0
        .get("token")
        .ok_or_else(|| OAuthResponse::invalid_request("token is required"))?;
    let answer = credentials::introspect(&state.issuing(), &client, token)
        .await
        .map_err(store_error)?;
    Ok(no_store(answer))
}

#[utoipa::path(post, path = "/revoke", tag = "oauth",
    request_body(content = super::oauth_forms::TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "revoked, or not a token of this client"),
        (status = 400, description = "OAuth error", body = countersign_shared::OAuthError),
        (status = 401, description = "client authentication failed", body = countersign_shared::OAuthError),
        (status = 413, description = "body too large", body = countersign_shared::OAuthError),
        (status = 429, description = "rate limited: slow_down, with Retry-After", body = countersign_shared::OAuthError),
        (status = 503, description = "storage unavailable", body = countersign_shared::OAuthError)),
    security(("client_basic" = [])))]
pub(super) async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    mut form: OAuthForm,
) -> Result<Response, OAuthResponse> {
    let client = authenticated(&state, &headers, &mut form, paths::REVOKE).await?;
    let token = form
        .0
        .get("token")
        .ok_or_else(|| OAuthResponse::invalid_request("token is required"))?;
    credentials::revoke(&state.issuing(), &client, token)
        .await
        .map_err(store_error)?;
    Ok(StatusCode::OK.into_response())
}
