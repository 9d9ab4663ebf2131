//! The live channel while the app runs: a thread listening on the server's event stream
//! (wallet-core's [`Wallet::watch`]) that tells the screens of each new request
//! (`wallet://request`), of missed events (`wallet://resync`) and of the connection's
//! state (`wallet://live`). A dropped connection is retried with a growing pause (1 s
//! to 30 s), announcing a resync after each reconnection since events may have been
//! missed. A request that arrives while the window is not in front also shows a desktop
//! notification. When the app is closed, push notifications take over (on phones).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use countersign_wallet_core::{LiveEvent, Wallet};
use serde_json::json;
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tauri_plugin_countersign::CountersignExt;

pub const REQUEST: &str = "wallet://request";
pub const RESYNC: &str = "wallet://resync";
pub const LIVE: &str = "wallet://live";

/// The listener thread's shared state.
pub struct Live {
    connected: AtomicBool,
    /// Bumped to stop the current listener (removal, lock): a thread whose generation is
    /// no longer current stops at its next event or reconnection.
    generation: AtomicU64,
    /// The generation of the running listener, or [`IDLE`].
    running: AtomicU64,
}

const IDLE: u64 = u64::MAX;

impl Default for Live {
    fn default() -> Self {
        Self {
            connected: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            running: AtomicU64::new(IDLE),
        }
    }
}

impl Live {
    /// Starts the listener unless one runs; always announces the current state, so a
    /// reloaded screen learns it.
    pub fn start<R: Runtime>(self: &Arc<Self>, app: &AppHandle<R>, wallet: Arc<Wallet>) {
        let _ = app.emit(
            LIVE,
            json!({ "connected": self.connected.load(Ordering::SeqCst) }),
        );
        // A stopped listener may still be blocked reading its old stream: a new one starts
        // beside it rather than waiting for it.
        let generation = self.generation.load(Ordering::SeqCst);
        if self.running.swap(generation, Ordering::SeqCst) == generation {
            return;
        }
        let live = self.clone();
        let app = app.clone();
        std::thread::spawn(move || live.run(&app, &wallet, generation));
    }

    /// Stops the listener (at its next event or reconnection attempt).
    pub fn stop(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn current(&self, generation: u64) -> bool {
        self.generation.load(Ordering::SeqCst) == generation
    }

    fn set_connected<R: Runtime>(&self, app: &AppHandle<R>, connected: bool) {
        if self.connected.swap(connected, Ordering::SeqCst) != connected {
            let _ = app.emit(LIVE, json!({ "connected": connected }));
        }
    }

    fn run<R: Runtime>(&self, app: &AppHandle<R>, wallet: &Wallet, generation: u64) {
        let mut pause = Duration::from_secs(1);
        let mut reconnecting = false;
        while self.current(generation) {
            let result = wallet.watch(|event| {
                if !self.current(generation) {
                    return false;
                }
                match event {
                    LiveEvent::Ready => {
                        self.set_connected(app, true);
                        pause = Duration::from_secs(1);
                        if reconnecting {
                            let _ = app.emit(RESYNC, ());
                        }
                    }
                    LiveEvent::Request { request_id } => {
                        let _ = app.emit(REQUEST, json!({ "request_id": request_id }));
                        if !in_front(app)
                            && let Err(e) = app.countersign().request_arrived()
                        {
                            eprintln!("countersign wallet app: no notification: {e}");
                        }
                    }
                    LiveEvent::Resync => {
                        let _ = app.emit(RESYNC, ());
                    }
                }
                true
            });
            if !self.current(generation) {
                break;
            }
            self.set_connected(app, false);
            if result.is_ok() {
                break;
            }
            reconnecting = true;
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(30));
        }
        let _ = self
            .running
            .compare_exchange(generation, IDLE, Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// Whether the owner is looking at the app: its main window visible and focused.
fn in_front<R: Runtime>(app: &AppHandle<R>) -> bool {
    app.get_webview_window("main").is_some_and(|w| {
        w.is_visible().unwrap_or(false)
            && !w.is_minimized().unwrap_or(false)
            && w.is_focused().unwrap_or(false)
    })
}
