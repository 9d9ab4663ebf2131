//! The Countersign wallet app: the screens (Svelte, in `../ui`) over wallet-core, with the
//! platform from `tauri-plugin-countersign` (secure hardware on phones, a sealed state
//! file on desktops). Commands are in [`commands`]; the live channel in [`live`].

mod commands;
mod error;
mod live;
mod views;

use std::sync::{Arc, Mutex, RwLock};

use countersign_shared::approval::ENROLL_URI_PREFIX;
use countersign_wallet_core::Wallet;
use tauri::Manager;
use tauri_plugin_countersign::CountersignExt;

use crate::error::CommandError;

/// The event that hands an enrollment link to the screens.
pub const DEEP_LINK: &str = "wallet://deep-link";

/// What the commands share.
#[derive(Default)]
pub struct AppState {
    /// The wallet, once its platform is open (at once on phones; after the passphrase on
    /// desktops).
    wallet: RwLock<Option<Arc<Wallet>>>,
    live: Arc<live::Live>,
    /// An enrollment link the app was started with, until the screens take it.
    deep_link: Mutex<Option<String>>,
}

impl AppState {
    fn wallet_if_open(&self) -> Option<Arc<Wallet>> {
        self.wallet.read().ok().and_then(|w| w.clone())
    }

    fn wallet(&self) -> Result<Arc<Wallet>, CommandError> {
        self.wallet_if_open().ok_or_else(CommandError::locked)
    }

    fn set_wallet(&self, wallet: Arc<Wallet>) {
        // A new wallet (unlocked again) gets its own listener.
        self.live.stop();
        if let Ok(mut w) = self.wallet.write() {
            *w = Some(wallet);
        }
    }

    fn take_deep_link(&self) -> Option<String> {
        self.deep_link.lock().ok().and_then(|mut l| l.take())
    }
}

/// An enrollment link among the program's arguments (how desktops open
/// `countersign://enroll?...` links registered for the app).
fn deep_link_argument() -> Option<String> {
    std::env::args()
        .skip(1)
        .find(|a| a.starts_with(ENROLL_URI_PREFIX))
}

pub fn run() {
    let result = tauri::Builder::default()
        .plugin(tauri_plugin_countersign::init())
        .manage(AppState::default())
        .setup(|app| {
            let state = app.state::<AppState>();
            if let Ok(mut link) = state.deep_link.lock() {
                *link = deep_link_argument();
            }
            // Phones open their platform at once: the biometric guards each key use.
            if app.countersign().needs_passphrase().is_none() {
                let platform = app.countersign().open(None)?;
                state.set_wallet(Arc::new(Wallet::new(platform)));
            }
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::wallet_status,
            commands::unlock,
            commands::enrollment_preview,
            commands::enroll_confirm,
            commands::enroll_cancel,
            commands::scan_invitation,
            commands::pending_requests,
            commands::show_request,
            commands::approve_request,
            commands::deny_request,
            commands::decision_history,
            commands::remove_device,
            commands::start_live,
        ])
        .run(tauri::generate_context!());
    if let Err(e) = result {
        eprintln!("countersign wallet app: {e}");
        std::process::exit(1);
    }
}

#[cfg(mobile)]
#[tauri::mobile_entry_point]
fn mobile_main() {
    run();
}
