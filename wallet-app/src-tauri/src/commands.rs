//! The commands the screens invoke: thin adapters over wallet-core. Every call that may
//! reach the network or the platform (keystore, biometric, passkey sheet) runs on a
//! blocking thread: on a phone the plugin bridge blocks until the native side answers,
//! and doing that on the main thread would deadlock it.

use std::sync::Arc;

use countersign_shared::approval::DecisionKind;
use countersign_wallet_core::{DecisionEntry, EnrollOptions, Wallet};
use serde::Serialize;
use tauri::{AppHandle, Emitter, Runtime, State};
use tauri_plugin_countersign::CountersignExt;

use crate::AppState;
use crate::error::CommandError;
use crate::views::{EnrollmentPreview, PendingItem, RequestView, WalletStatus};

type Answer<T> = Result<T, CommandError>;

/// Runs `work` with the wallet on a blocking thread.
async fn blocking<T: Send + 'static>(
    wallet: Arc<Wallet>,
    work: impl FnOnce(&Wallet) -> Answer<T> + Send + 'static,
) -> Answer<T> {
    tauri::async_runtime::spawn_blocking(move || work(&wallet))
        .await
        .map_err(|e| CommandError::new("platform", format!("the wallet task failed: {e}")))?
}

fn status<R: Runtime>(app: &AppHandle<R>, wallet: Option<&Wallet>) -> Answer<WalletStatus> {
    let platform = app.countersign();
    let name = platform.platform_name();
    let passphrase_set = platform.needs_passphrase();
    Ok(match wallet {
        None => WalletStatus::locked(name, passphrase_set),
        Some(w) => WalletStatus::open(name, passphrase_set, w.enrollment()?),
    })
}

/// Where the app stands: locked, or open and enrolled (or not). Also hands over an
/// enrollment link the app was opened with, now that the screens listen.
#[tauri::command]
pub async fn wallet_status<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
) -> Answer<WalletStatus> {
    let wallet = state.wallet_if_open();
    let status = match wallet {
        Some(w) => {
            let app2 = app.clone();
            blocking(w, move |w| status(&app2, Some(w))).await?
        }
        None => status(&app, None)?,
    };
    if let Some(uri) = state.take_deep_link() {
        let _ = app.emit(crate::DEEP_LINK, serde_json::json!({ "uri": uri }));
    }
    Ok(status)
}

/// Opens the desktop wallet with its passphrase (creating the sealed state on first run).
#[tauri::command]
pub async fn unlock<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    passphrase: String,
) -> Answer<WalletStatus> {
    let app2 = app.clone();
    let wallet = tauri::async_runtime::spawn_blocking(move || {
        app2.countersign()
            .open(Some(&passphrase))
            .map(|p| Arc::new(Wallet::new(p)))
    })
    .await
    .map_err(|e| CommandError::new("platform", e.to_string()))??;
    state.set_wallet(wallet.clone());
    blocking(wallet, move |w| status(&app, Some(w))).await
}

/// Reads what an invitation offers from its server; no key is created yet.
#[tauri::command]
pub async fn enrollment_preview(
    state: State<'_, AppState>,
    uri: String,
) -> Answer<EnrollmentPreview> {
    blocking(state.wallet()?, move |w| {
        Ok(w.preview_enrollment(uri.trim())?.into())
    })
    .await
}

/// Enrolls this device for the previewed invitation: device key, passkey, push token.
#[tauri::command]
pub async fn enroll_confirm<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
) -> Answer<WalletStatus> {
    let app2 = app.clone();
    blocking(state.wallet()?, move |w| {
        let platform = app2.countersign();
        let push = platform.push_registration()?;
        w.confirm_enrollment(&EnrollOptions {
            platform: platform.platform_name().into(),
            name: Some(device_name()),
            push_channel: push.channel,
            push_token: push.token,
        })?;
        status(&app2, Some(w))
    })
    .await
}

/// A name for this device in the owner's device list.
fn device_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && h.chars().count() <= 60);
    match host {
        Some(h) => format!("Countersign on {h}"),
        None => "Countersign app".into(),
    }
}

#[tauri::command]
pub async fn enroll_cancel(state: State<'_, AppState>) -> Answer<()> {
    blocking(state.wallet()?, |w| Ok(w.cancel_enrollment()?)).await
}

/// An enrollment link from the camera (phones).
#[tauri::command]
pub async fn scan_invitation<R: Runtime>(app: AppHandle<R>) -> Answer<ScannedInvitation> {
    tauri::async_runtime::spawn_blocking(move || app.countersign().scan_invitation())
        .await
        .map_err(|e| CommandError::new("platform", e.to_string()))??
        .map(|uri| ScannedInvitation { uri })
        .ok_or_else(|| CommandError::new("cancelled", "scanning was cancelled"))
}

#[derive(Serialize)]
pub struct ScannedInvitation {
    uri: String,
}

#[tauri::command]
pub async fn pending_requests(state: State<'_, AppState>) -> Answer<Vec<PendingItem>> {
    blocking(state.wallet()?, |w| {
        Ok(w.pending()?.into_iter().map(PendingItem::from).collect())
    })
    .await
}

/// Fetches and verifies a request; only what verified is returned (and can be decided).
#[tauri::command]
pub async fn show_request(state: State<'_, AppState>, id: String) -> Answer<RequestView> {
    blocking(state.wallet()?, move |w| {
        let server = w
            .enrollment()?
            .map(|e| e.server)
            .ok_or(countersign_wallet_core::WalletError::NotEnrolled)?;
        Ok(RequestView::new(w.show(&id)?, server))
    })
    .await
}

#[derive(Serialize)]
pub struct Decided {
    request_id: String,
    status: String,
}

async fn decide(
    state: State<'_, AppState>,
    id: String,
    kind: DecisionKind,
    reason: Option<String>,
) -> Answer<Decided> {
    let reason = reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    blocking(state.wallet()?, move |w| {
        let recorded = w.decide(&id, kind, reason.as_deref())?;
        Ok(Decided {
            request_id: recorded.request_id,
            status: recorded.status,
        })
    })
    .await
}

/// Approves a shown request: the passkey (biometric) confirms, the device key signs.
#[tauri::command]
pub async fn approve_request(state: State<'_, AppState>, id: String) -> Answer<Decided> {
    decide(state, id, DecisionKind::Approve, None).await
}

/// Denies a shown request, with the owner's reason if they gave one.
#[tauri::command]
pub async fn deny_request(
    state: State<'_, AppState>,
    id: String,
    reason: Option<String>,
) -> Answer<Decided> {
    decide(state, id, DecisionKind::Deny, reason).await
}

#[tauri::command]
pub async fn decision_history(state: State<'_, AppState>) -> Answer<Vec<DecisionEntry>> {
    blocking(state.wallet()?, |w| Ok(w.history()?)).await
}

/// Removes this device on the server, then forgets it here; stops the live channel.
#[tauri::command]
pub async fn remove_device(state: State<'_, AppState>) -> Answer<()> {
    blocking(state.wallet()?, |w| Ok(w.remove_device()?)).await?;
    state.live.stop();
    Ok(())
}

/// Starts the live channel (idempotent); announces its state either way.
#[tauri::command]
pub async fn start_live<R: Runtime>(app: AppHandle<R>, state: State<'_, AppState>) -> Answer<()> {
    state.live.start(&app, state.wallet()?);
    Ok(())
}
