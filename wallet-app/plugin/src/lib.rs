//! The wallet app's platform plugin. wallet-core asks its host for a keystore, a passkey
//! authenticator and secure storage ([`countersign_wallet_core::platform`]); this plugin
//! gives it the phone's secure hardware on iOS and Android (through the Swift and Kotlin
//! plugins in `ios/` and `android/`, over the messages in [`bridge`]) and, on desktops,
//! the software implementations over a passphrase-sealed state file ([`desktop`]).

pub mod bridge;
#[cfg(desktop)]
pub mod desktop;
#[cfg(mobile)]
pub mod mobile;
#[cfg(desktop)]
pub mod notify;
#[cfg(target_os = "linux")]
pub mod scheme;

use std::path::PathBuf;

use countersign_wallet_core::Platform;
use tauri::plugin::{Builder, TauriPlugin};
use tauri::{Manager, Runtime};

/// Why the platform could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The desktop state is sealed and needs its passphrase first.
    #[error("the wallet is locked; enter its passphrase")]
    Locked,
    #[error("that passphrase does not open this wallet")]
    WrongPassphrase,
    #[error("choose a passphrase of at least {0} characters")]
    WeakPassphrase(usize),
    #[error("the wallet's state file is damaged: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Platform(String),
}

/// Where the platform comes from on this device.
pub enum Countersign<R: Runtime> {
    /// A desktop: the sealed state file, opened with the owner's passphrase, and the
    /// notifications it shows while the app runs.
    Desktop {
        state_file: PathBuf,
        #[cfg(desktop)]
        notifier: notify::Notifier,
    },
    #[cfg(mobile)]
    Mobile(std::sync::Arc<mobile::Native<R>>),
    #[doc(hidden)]
    _Runtime(std::marker::PhantomData<fn() -> R>),
}

impl<R: Runtime> Countersign<R> {
    /// `ios`, `android` or `desktop`: what enrollment tells the server.
    pub fn platform_name(&self) -> &'static str {
        if cfg!(target_os = "ios") {
            "ios"
        } else if cfg!(target_os = "android") {
            "android"
        } else {
            "desktop"
        }
    }

    /// Whether opening the platform needs a passphrase (desktops), and whether one was
    /// chosen already (a state file exists).
    pub fn needs_passphrase(&self) -> Option<bool> {
        match self {
            Countersign::Desktop { state_file, .. } => Some(state_file.exists()),
            _ => None,
        }
    }

    /// The platform: on a desktop, opened (or created) with `passphrase`; on a phone,
    /// its secure hardware (no passphrase: the biometric guards each key use).
    pub fn open(&self, passphrase: Option<&str>) -> Result<Platform, Error> {
        match self {
            #[cfg(desktop)]
            Countersign::Desktop { state_file, .. } => {
                desktop::unlock(state_file, passphrase.ok_or(Error::Locked)?)
            }
            #[cfg(not(desktop))]
            Countersign::Desktop { .. } => Err(Error::Platform("no desktop here".into())),
            #[cfg(mobile)]
            Countersign::Mobile(native) => {
                let _ = passphrase;
                Ok(mobile::platform(native.clone()))
            }
            Countersign::_Runtime(_) => Err(Error::Platform("no platform".into())),
        }
    }

    /// The push channel and token to enroll with: the phone's APNs or FCM registration;
    /// a desktop has none and listens on the live channel while it runs.
    pub fn push_registration(&self) -> Result<bridge::PushRegistration, Error> {
        match self {
            #[cfg(mobile)]
            Countersign::Mobile(native) => native.register_push().map_err(Error::Platform),
            _ => Ok(bridge::PushRegistration {
                channel: "live".into(),
                token: None,
            }),
        }
    }

    /// Tells the owner a request waits while the app is in the background: a desktop
    /// notification (phones are told by the server's push instead).
    pub fn request_arrived(&self) -> Result<(), Error> {
        match self {
            #[cfg(desktop)]
            Countersign::Desktop { notifier, .. } => {
                notifier.request_arrived().map_err(Error::Platform)
            }
            _ => Ok(()),
        }
    }

    /// An enrollment link from the camera (phones); `None` when cancelled.
    pub fn scan_invitation(&self) -> Result<Option<String>, Error> {
        match self {
            #[cfg(mobile)]
            Countersign::Mobile(native) => native.scan_invitation().map_err(Error::Platform),
            _ => Err(Error::Platform(
                "this device has no camera scanner; paste the invitation link".into(),
            )),
        }
    }
}

/// Access to the plugin's [`Countersign`] from the app.
pub trait CountersignExt<R: Runtime> {
    fn countersign(&self) -> &Countersign<R>;
}

impl<R: Runtime, T: Manager<R>> CountersignExt<R> for T {
    fn countersign(&self) -> &Countersign<R> {
        self.state::<Countersign<R>>().inner()
    }
}

/// The plugin. On a desktop the state lives in the app's data directory (or
/// `COUNTERSIGN_WALLET_STATE`, for tests and portable installs).
pub fn init<R: Runtime>() -> TauriPlugin<R> {
    Builder::new("countersign")
        .setup(|app, _api| {
            #[cfg(mobile)]
            {
                #[cfg(target_os = "android")]
                let handle =
                    _api.register_android_plugin("app.countersign.plugin", "CountersignPlugin")?;
                #[cfg(target_os = "ios")]
                let handle = _api.register_ios_plugin(init_plugin_countersign)?;
                app.manage(Countersign::<R>::Mobile(std::sync::Arc::new(
                    mobile::Native(handle),
                )));
            }
            #[cfg(desktop)]
            {
                let state_file = match std::env::var_os("COUNTERSIGN_WALLET_STATE") {
                    Some(path) => PathBuf::from(path),
                    None => app.path().app_data_dir()?.join("wallet.sealed"),
                };
                #[cfg(target_os = "linux")]
                register_link_handler();
                app.manage(Countersign::<R>::Desktop {
                    state_file,
                    notifier: notify::Notifier::default(),
                });
            }
            Ok(())
        })
        .build()
}

/// Makes this program the handler of `countersign://` links ([`scheme`]); a failure only
/// costs the owner pasting the link, so it is reported and the app goes on.
#[cfg(target_os = "linux")]
fn register_link_handler() {
    let registered = std::env::current_exe().and_then(|program| {
        let at = scheme::Locations::from_env()
            .ok_or_else(|| std::io::Error::other("no home directory"))?;
        scheme::register(&program, &at)
    });
    match registered {
        Ok(scheme::Registered::Default) => {}
        Ok(scheme::Registered::OtherDefault(other)) => eprintln!(
            "countersign wallet app: countersign:// links open {other}, as mimeapps.list says"
        ),
        Err(e) => eprintln!("countersign wallet app: cannot register countersign:// links: {e}"),
    }
}

#[cfg(target_os = "ios")]
tauri::ios_plugin_binding!(init_plugin_countersign);
