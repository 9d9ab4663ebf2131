//! What a command's failure looks like to the front end: `{kind, message}`, where `kind`
//! says what the human can do about it (the screens choose their words by it).

use countersign_wallet_core::{PasskeyError, WalletError};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandError {
    pub kind: &'static str,
    pub message: String,
}

impl CommandError {
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn locked() -> Self {
        Self::new("locked", "the wallet is locked; enter its passphrase")
    }
}

impl From<WalletError> for CommandError {
    fn from(e: WalletError) -> Self {
        let kind = match &e {
            WalletError::NotEnrolled => "not_enrolled",
            WalletError::Invalid(_) => "invalid",
            WalletError::Refused { .. } => "refused",
            WalletError::Network(_) => "network",
            // A request object or answer that does not verify: nothing of it is shown.
            WalletError::Protocol(_) => "unverified",
            WalletError::Expired => "expired",
            WalletError::AlreadyDecided => "already_decided",
            WalletError::Passkey(PasskeyError::Cancelled(_)) => "cancelled",
            WalletError::Storage(_) => "storage",
            WalletError::Passkey(_) | WalletError::Keystore(_) | WalletError::DeviceKey(_) => {
                "platform"
            }
        };
        Self::new(kind, e.to_string())
    }
}

impl From<tauri_plugin_countersign::Error> for CommandError {
    fn from(e: tauri_plugin_countersign::Error) -> Self {
        use tauri_plugin_countersign::Error;
        let kind = match &e {
            Error::Locked => "locked",
            Error::WrongPassphrase => "wrong_passphrase",
            Error::WeakPassphrase(_) => "weak_passphrase",
            Error::Corrupt(_) => "storage",
            Error::Platform(_) => "platform",
        };
        Self::new(kind, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_the_screens_act_on() {
        let kind = |e: WalletError| CommandError::from(e).kind;
        assert_eq!(kind(WalletError::Expired), "expired");
        assert_eq!(kind(WalletError::AlreadyDecided), "already_decided");
        assert_eq!(
            kind(WalletError::Protocol("bad signature".into())),
            "unverified"
        );
        assert_eq!(kind(WalletError::Network("down".into())), "network");
        assert_eq!(
            kind(WalletError::Passkey(PasskeyError::Cancelled("no".into()))),
            "cancelled"
        );
        assert_eq!(
            kind(WalletError::Passkey(PasskeyError::Failed("no".into()))),
            "platform"
        );
        let json = serde_json::to_value(CommandError::from(WalletError::NotEnrolled)).ok();
        assert_eq!(
            json,
            Some(
                serde_json::json!({"kind": "not_enrolled", "message": "this wallet is not enrolled"})
            )
        );
    }
}
