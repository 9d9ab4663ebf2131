//! Discovery document, JWKS, the issuer's `did:web` document, the published Token
//! Status Lists, and the audit log's newest signed checkpoint and verifier key.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::oidc::discovery::metadata;
use crate::paths;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::DISCOVERY, get(discovery))
        .route(paths::JWKS, get(jwks))
        .route(paths::DID_DOCUMENT, get(did_document))
        .route(paths::STATUS_LISTS, get(status_list))
        .route(paths::AUDIT_CHECKPOINT, get(audit_checkpoint))
        .route(paths::AUDIT_LOG_KEY, get(audit_log_key))
}

fn text(body: String) -> Response {
    let mut resp = body.into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// The audit log's newest signed checkpoint (c2sp.org/tlog-checkpoint as a signed note,
/// with any witness cosignatures). Copy it anywhere: `countersign audit verify
/// --checkpoint` proves the trail still extends it.
#[utoipa::path(get, path = "/.well-known/countersign/audit-checkpoint", tag = "oauth",
    responses((status = 200, description = "signed note", content_type = "text/plain", body = String),
        (status = 404, description = "no checkpoint signed yet", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "storage unavailable", body = super::error::Problem, content_type = "application/problem+json")))]
pub(super) async fn audit_checkpoint(
    State(state): State<AppState>,
) -> Result<Response, super::error::ProblemResponse> {
    match state.store.latest_log_checkpoint().await? {
        Some(c) => Ok(text(c.note)),
        None => Err(super::error::ProblemResponse::new(
            StatusCode::NOT_FOUND,
            "no audit checkpoint has been signed yet",
        )),
    }
}

/// The audit log's verifier key (c2sp.org/signed-note `<name>+<hash>+<key>`).
#[utoipa::path(get, path = "/.well-known/countersign/audit-log-key", tag = "oauth",
    responses((status = 200, description = "verifier key", content_type = "text/plain", body = String)))]
pub(super) async fn audit_log_key(State(state): State<AppState>) -> Response {
    text(format!("{}\n", state.audit_log.verifier()))
}

#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "oauth",
    responses((status = 200, body = countersign_shared::discovery::ProviderMetadata)))]
pub(super) async fn discovery(
    State(state): State<AppState>,
) -> Json<countersign_shared::discovery::ProviderMetadata> {
    Json(metadata(&state.issuer, &state.config))
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

/// `did:web` identifier of an issuer URL (`https://auth.example.com:8443/x` →
/// `did:web:auth.example.com%3A8443:x`).
pub fn did_web(issuer: &str) -> String {
    let rest = issuer.split_once("://").map_or(issuer, |(_, r)| r);
    let mut parts = rest.split('/').filter(|p| !p.is_empty());
    let host = parts.next().unwrap_or_default().replace(':', "%3A");
    std::iter::once(format!("did:web:{host}"))
        .chain(parts.map(str::to_owned))
        .collect::<Vec<_>>()
        .join(":")
}

/// The issuer's DID document, so DID-based verifiers can resolve the signing keys of
/// issued credentials (`kid` → `did:web:...#kid`).
#[utoipa::path(get, path = "/.well-known/did.json", tag = "oauth",
    responses((status = 200, description = "DID document of the issuer (did:web)", body = Object)))]
pub(super) async fn did_document(State(state): State<AppState>) -> Json<serde_json::Value> {
    let did = did_web(&state.issuer);
    let keys = state.keys.jwks().keys;
    let methods: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| {
            serde_json::json!({
                "id": format!("{did}#{}", k.kid.as_deref().unwrap_or_default()),
                "type": "JsonWebKey2020",
                "controller": did,
                "publicKeyJwk": k,
            })
        })
        .collect();
    let refs: Vec<serde_json::Value> = methods.iter().map(|m| m["id"].clone()).collect();
    Json(serde_json::json!({
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/suites/jws-2020/v1"],
        "id": did,
        "verificationMethod": methods,
        "assertionMethod": refs,
    }))
}

/// A Token Status List (draft-ietf-oauth-status-list) as a signed `statuslist+jwt`, with
/// caching allowed for its `ttl`.
#[utoipa::path(get, path = "/status-lists/{list_id}", tag = "oauth",
    params(("list_id" = i64, Path)),
    responses((status = 200, description = "statuslist+jwt", body = String, content_type = "application/statuslist+jwt"),
        (status = 404, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 503, body = super::error::Problem, content_type = "application/problem+json")))]
pub(super) async fn status_list(
    State(state): State<AppState>,
    Path(list_id): Path<String>,
) -> Result<Response, super::error::ProblemResponse> {
    let not_found =
        || super::error::ProblemResponse::new(StatusCode::NOT_FOUND, "no such status list");
    let list_id: i64 = list_id.parse().map_err(|_| not_found())?;
    let token =
        crate::credentials::status::status_list(&state.issuing(), &state.status_lists, list_id)
            .await
            .map_err(super::error::ProblemResponse::from)?
            .ok_or_else(not_found)?;
    let mut resp = token.into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/statuslist+jwt"),
    );
    let max_age = format!(
        "public, max-age={}",
        state.config.tokens.status_list_ttl_secs
    );
    if let Ok(value) = HeaderValue::from_str(&max_age) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::did_web;

    #[test]
    fn did_web_encodes_port_and_path() {
        assert_eq!(
            did_web("https://auth.example.com"),
            "did:web:auth.example.com"
        );
        assert_eq!(did_web("http://127.0.0.1:8080"), "did:web:127.0.0.1%3A8080");
        assert_eq!(
            did_web("https://example.com:8443/tenants/acme"),
            "did:web:example.com%3A8443:tenants:acme"
        );
    }
}
