//! The wallet apps this server's domain vouches for, in the two formats the phones fetch:
//! Android's Digital Asset Links (`/.well-known/assetlinks.json`) and Apple's app-site
//! association (`/.well-known/apple-app-site-association`). With them, the apps may use
//! the relying party's passkeys (`get_login_creds`, `webcredentials`): Credential Manager
//! and ASAuthorization refuse an RP ID whose domain does not name the app. (Invitations
//! open the app through its own `countersign://` scheme, so no link is claimed.) Both come from `wallet.android_apps` / `wallet.ios_app_ids`;
//! a server that names no app answers 404 (nothing to associate, not an empty promise).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::error::ProblemResponse;
use crate::config::AndroidApp;
use crate::paths;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::ASSET_LINKS, get(asset_links))
        .route(
            paths::APPLE_APP_SITE_ASSOCIATION,
            get(apple_app_site_association),
        )
}

/// Digital Asset Links statements: each Android build may use this domain's passkeys.
pub fn asset_statements(apps: &[AndroidApp]) -> Value {
    Value::Array(
        apps.iter()
            .map(|app| {
                json!({
                    "relation": ["delegate_permission/common.get_login_creds"],
                    "target": {
                        "namespace": "android_app",
                        "package_name": app.package_name,
                        "sha256_cert_fingerprints": app.sha256_cert_fingerprints
                            .iter()
                            .map(|f| f.to_ascii_uppercase())
                            .collect::<Vec<_>>(),
                    },
                })
            })
            .collect(),
    )
}

/// The app-site association: each iOS build may use this domain's passkeys.
pub fn app_site_association(app_ids: &[String]) -> Value {
    json!({ "webcredentials": { "apps": app_ids } })
}

fn served(document: Value) -> Response {
    let mut resp = Json(document).into_response();
    // Phones and their vendors' caches fetch these on install; a changed certificate
    // should reach them within the hour.
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    resp
}

fn nothing_to_associate(platform: &str) -> ProblemResponse {
    ProblemResponse::new(
        StatusCode::NOT_FOUND,
        format!("this server names no {platform} wallet app (wallet configuration)"),
    )
}

/// Digital Asset Links for the Android wallet app (`wallet.android_apps`).
#[utoipa::path(get, path = "/.well-known/assetlinks.json", tag = "wallet",
    responses((status = 200, description = "Digital Asset Links statements", body = Object),
        (status = 404, description = "no Android app configured", body = super::error::Problem, content_type = "application/problem+json")))]
pub(super) async fn asset_links(
    State(state): State<AppState>,
) -> Result<Response, ProblemResponse> {
    let apps = &state.config.wallet.android_apps;
    if apps.is_empty() {
        return Err(nothing_to_associate("Android"));
    }
    Ok(served(asset_statements(apps)))
}

/// Apple app-site association for the iOS wallet app (`wallet.ios_app_ids`).
#[utoipa::path(get, path = "/.well-known/apple-app-site-association", tag = "wallet",
    responses((status = 200, description = "apple-app-site-association", body = Object),
        (status = 404, description = "no iOS app configured", body = super::error::Problem, content_type = "application/problem+json")))]
pub(super) async fn apple_app_site_association(
    State(state): State<AppState>,
) -> Result<Response, ProblemResponse> {
    let ids = &state.config.wallet.ios_app_ids;
    if ids.is_empty() {
        return Err(nothing_to_associate("iOS"));
    }
    Ok(served(app_site_association(ids)))
}
