//! A desktop notification when a request arrives while the app runs: phones get a push
//! from the server instead. On Linux it is the freedesktop.org Desktop Notifications
//! protocol (`org.freedesktop.Notifications.Notify` on the session bus), which every
//! desktop's notification daemon serves; elsewhere there is none yet.
//!
//! The text names nothing of the request. What a request asks is shown only after its
//! server signature verified, on the request screen; a notification is read before that,
//! and often on a locked screen.

/// The notification's title and body.
pub const SUMMARY: &str = "Approval requested";
pub const BODY: &str = "An agent asks for your approval. Open Countersign to see the request.";

/// Sends the desktop notifications of one app run.
#[derive(Debug, Default)]
pub struct Notifier {
    /// The daemon's id of the notification shown last: a newer request replaces it rather
    /// than stacking one notification per request.
    #[cfg(target_os = "linux")]
    shown: std::sync::atomic::AtomicU32,
}

impl Notifier {
    /// Shows that a request waits. Errors are for the log only: a desktop without a
    /// notification daemon still has the live inbox.
    #[cfg(target_os = "linux")]
    pub fn request_arrived(&self) -> Result<(), String> {
        use std::collections::HashMap;
        use std::sync::atomic::Ordering;
        use std::time::Duration;

        use dbus::arg::{RefArg, Variant};

        let bus = dbus::blocking::Connection::new_session().map_err(|e| e.to_string())?;
        let daemon = bus.with_proxy(
            "org.freedesktop.Notifications",
            "/org/freedesktop/Notifications",
            Duration::from_secs(5),
        );
        let mut hints: HashMap<&str, Variant<Box<dyn RefArg>>> = HashMap::new();
        // Normal urgency; the category the specification has for this kind of message.
        hints.insert("urgency", Variant(Box::new(1u8)));
        hints.insert("category", Variant(Box::new("im.received".to_owned())));
        hints.insert(
            "desktop-entry",
            Variant(Box::new("app.countersign.wallet".to_owned())),
        );
        let replaces = self.shown.load(Ordering::SeqCst);
        let (id,): (u32,) = daemon
            .method_call(
                "org.freedesktop.Notifications",
                "Notify",
                (
                    "Countersign",
                    replaces,
                    "",
                    SUMMARY,
                    BODY,
                    Vec::<String>::new(),
                    hints,
                    -1i32,
                ),
            )
            .map_err(|e| e.to_string())?;
        self.shown.store(id, Ordering::SeqCst);
        Ok(())
    }

    #[cfg(not(target_os = "linux"))]
    pub fn request_arrived(&self) -> Result<(), String> {
        Err("desktop notifications are not built for this system yet".into())
    }
}
