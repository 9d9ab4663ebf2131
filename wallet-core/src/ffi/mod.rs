//! The uniffi layer: what Swift, Kotlin and Python see. A thin adapter over
//! [`crate::wallet::Wallet`]: the platform implements [`FfiKeystore`], [`FfiPasskeys`] and
//! [`FfiStorage`] (or uses the software ones through [`WalletHandle::software`]), and
//! every error becomes one small [`FfiError`] a caller can act on.
//!
//! Complex values cross as JSON text (`authorization_details`, risk signals) so the
//! bindings stay stable when those grow.

use std::sync::Arc;

use countersign_jose::Jwk;
use countersign_shared::approval::DecisionKind;

use crate::WalletError;
use crate::platform::{
    Keystore, KeystoreError, PasskeyAuthenticator, PasskeyError, SecureStorage, StorageError,
};
use crate::software::{self, FileStorage};
use crate::wallet::{EnrollOptions, Platform, Wallet};

/// What went wrong, in terms a wallet UI can act on.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum FfiError {
    /// Enroll first.
    #[error("not enrolled")]
    NotEnrolled,
    /// The server refused (HTTP status and its reason).
    #[error("refused ({status}): {message}")]
    Refused { status: u16, message: String },
    /// The server could not be reached; retry later.
    #[error("network: {message}")]
    Network { message: String },
    /// Something did not verify (server signature, transaction hash); do not show it.
    #[error("untrusted: {message}")]
    Untrusted { message: String },
    /// The platform's keystore, passkey or storage failed, or the human cancelled.
    #[error("platform: {message}")]
    Platform { message: String },
    #[error("invalid: {message}")]
    Invalid { message: String },
    /// The request expired before the decision reached the server; nothing was recorded.
    #[error("the request expired")]
    Expired,
    /// Someone decided the request first; this decision was not recorded.
    #[error("the request was already decided")]
    AlreadyDecided,
}

impl From<WalletError> for FfiError {
    fn from(e: WalletError) -> Self {
        match e {
            WalletError::NotEnrolled => FfiError::NotEnrolled,
            WalletError::Refused { status, detail } => FfiError::Refused {
                status,
                message: detail,
            },
            WalletError::Network(message) => FfiError::Network { message },
            WalletError::Protocol(message) => FfiError::Untrusted { message },
            WalletError::Invalid(message) => FfiError::Invalid { message },
            WalletError::Expired => FfiError::Expired,
            WalletError::AlreadyDecided => FfiError::AlreadyDecided,
            e @ (WalletError::Keystore(_)
            | WalletError::Passkey(_)
            | WalletError::Storage(_)
            | WalletError::DeviceKey(_)) => FfiError::Platform {
                message: e.to_string(),
            },
        }
    }
}

/// The platform's answer when one of its operations fails.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum PlatformError {
    #[error("{message}")]
    Failed { message: String },
    /// The human cancelled the biometric prompt.
    #[error("cancelled: {message}")]
    Cancelled { message: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for PlatformError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        PlatformError::Failed { message: e.reason }
    }
}

/// The platform keystore (Secure Enclave, Android Keystore/StrongBox).
#[uniffi::export(with_foreign)]
pub trait FfiKeystore: Send + Sync {
    /// Creates key `alias` (P-256) and returns its public JWK as JSON.
    fn generate(
        &self,
        alias: String,
        require_user_verification: bool,
    ) -> Result<String, PlatformError>;
    /// The public JWK (JSON) of `alias`.
    fn public_key(&self, alias: String) -> Result<String, PlatformError>;
    /// ES256 signature over `message`: raw `r || s`, 64 bytes.
    fn sign(&self, alias: String, message: Vec<u8>) -> Result<Vec<u8>, PlatformError>;
    /// Destroys key `alias`; no error if there is none.
    fn delete(&self, alias: String) -> Result<(), PlatformError>;
    /// Key attestation, if the platform has one.
    fn attestation(&self, alias: String) -> Option<String>;
}

/// The platform's passkey API, in WebAuthn JSON.
#[uniffi::export(with_foreign)]
pub trait FfiPasskeys: Send + Sync {
    fn create(&self, options_json: String) -> Result<String, PlatformError>;
    fn get_assertion(&self, options_json: String) -> Result<String, PlatformError>;
}

/// The platform's secure storage (Keychain, EncryptedSharedPreferences).
#[uniffi::export(with_foreign)]
pub trait FfiStorage: Send + Sync {
    fn get(&self, key: String) -> Result<Option<String>, PlatformError>;
    fn put(&self, key: String, value: String) -> Result<(), PlatformError>;
    fn delete(&self, key: String) -> Result<(), PlatformError>;
}

struct KeystoreAdapter(Arc<dyn FfiKeystore>);
struct PasskeysAdapter(Arc<dyn FfiPasskeys>);
struct StorageAdapter(Arc<dyn FfiStorage>);

fn parse_jwk(json: &str) -> Result<Jwk, KeystoreError> {
    serde_json::from_str(json).map_err(|e| KeystoreError::Refused(format!("not a JWK: {e}")))
}

impl Keystore for KeystoreAdapter {
    fn generate(&self, alias: &str, require_user_verification: bool) -> Result<Jwk, KeystoreError> {
        let jwk = self
            .0
            .generate(alias.to_owned(), require_user_verification)
            .map_err(|e| KeystoreError::Refused(e.to_string()))?;
        parse_jwk(&jwk)
    }

    fn public_key(&self, alias: &str) -> Result<Jwk, KeystoreError> {
        let jwk = self
            .0
            .public_key(alias.to_owned())
            .map_err(|e| KeystoreError::Refused(e.to_string()))?;
        parse_jwk(&jwk)
    }

    fn sign(&self, alias: &str, message: &[u8]) -> Result<Vec<u8>, KeystoreError> {
        self.0
            .sign(alias.to_owned(), message.to_vec())
            .map_err(|e| KeystoreError::Refused(e.to_string()))
    }

    fn delete(&self, alias: &str) -> Result<(), KeystoreError> {
        self.0
            .delete(alias.to_owned())
            .map_err(|e| KeystoreError::Refused(e.to_string()))
    }

    fn attestation(&self, alias: &str) -> Option<String> {
        self.0.attestation(alias.to_owned())
    }
}

fn passkey_error(e: PlatformError) -> PasskeyError {
    match e {
        PlatformError::Cancelled { message } => PasskeyError::Cancelled(message),
        PlatformError::Failed { message } => PasskeyError::Failed(message),
    }
}

impl PasskeyAuthenticator for PasskeysAdapter {
    fn create(&self, options: &str) -> Result<String, PasskeyError> {
        self.0.create(options.to_owned()).map_err(passkey_error)
    }

    fn get_assertion(&self, options: &str) -> Result<String, PasskeyError> {
        self.0
            .get_assertion(options.to_owned())
            .map_err(passkey_error)
    }
}

impl SecureStorage for StorageAdapter {
    fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
        self.0
            .get(key.to_owned())
            .map_err(|e| StorageError(e.to_string()))
    }

    fn put(&self, key: &str, value: &str) -> Result<(), StorageError> {
        self.0
            .put(key.to_owned(), value.to_owned())
            .map_err(|e| StorageError(e.to_string()))
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.0
            .delete(key.to_owned())
            .map_err(|e| StorageError(e.to_string()))
    }
}

/// Platform and push details for enrollment.
#[derive(Debug, Clone, uniffi::Record)]
pub struct EnrollmentRequest {
    /// `ios`, `android` or `desktop`.
    pub platform: String,
    pub name: Option<String>,
    /// `apns`, `fcm`, `live` or `none`.
    pub push_channel: String,
    pub push_token: Option<String>,
}

#[derive(Debug, Clone, uniffi::Record)]
pub struct EnrollmentInfo {
    pub server: String,
    pub device_id: String,
    pub subject: String,
    pub name: String,
}

#[derive(Debug, Clone, uniffi::Record)]
pub struct PendingItem {
    pub id: String,
    pub agent: String,
    pub action: Option<String>,
    /// Unix seconds.
    pub requested_at: i64,
    pub expires_at: i64,
}

/// A request as the human sees it, verified by the wallet.
#[derive(Debug, Clone, uniffi::Record)]
pub struct RequestView {
    pub request_id: String,
    pub agent_name: String,
    pub agent_id: String,
    pub agent_owner: String,
    pub action: Option<String>,
    /// RFC 9396 `authorization_details` as JSON text.
    pub authorization_details_json: Option<String>,
    pub binding_message: Option<String>,
    pub task_id: Option<String>,
    /// How long the credential is valid once approved.
    pub credential_validity_secs: u64,
    /// Unix seconds: decide before this.
    pub expires_at: i64,
    pub policy_reason: Option<String>,
    /// Risk signals as a JSON array.
    pub risk_signals_json: String,
    /// What the approval will be bound to.
    pub transaction_hash: String,
}

/// A wallet, for one human on one device.
#[derive(uniffi::Object)]
pub struct WalletHandle {
    wallet: Wallet,
}

#[uniffi::export]
impl WalletHandle {
    /// A wallet on the platform's keystore, passkeys and secure storage.
    #[uniffi::constructor]
    pub fn new(
        keystore: Arc<dyn FfiKeystore>,
        passkeys: Arc<dyn FfiPasskeys>,
        storage: Arc<dyn FfiStorage>,
    ) -> Arc<Self> {
        let platform = Platform {
            keystore: Arc::new(KeystoreAdapter(keystore)),
            passkeys: Arc::new(PasskeysAdapter(passkeys)),
            storage: Arc::new(StorageAdapter(storage)),
        };
        Arc::new(Self {
            wallet: Wallet::new(platform),
        })
    }

    /// A wallet in software, with its keys and passkey in `state_file` (created with
    /// mode 0600): for desktops, demos and tests.
    #[uniffi::constructor]
    pub fn software(state_file: String) -> Result<Arc<Self>, FfiError> {
        let storage = FileStorage::open(std::path::Path::new(&state_file)).map_err(|e| {
            FfiError::Platform {
                message: e.to_string(),
            }
        })?;
        Ok(Arc::new(Self {
            wallet: Wallet::new(software::platform(Arc::new(storage))),
        }))
    }

    pub fn enrollment(&self) -> Result<Option<EnrollmentInfo>, FfiError> {
        Ok(self.wallet.enrollment()?.map(|e| EnrollmentInfo {
            server: e.server,
            device_id: e.device_id,
            subject: e.subject,
            name: e.name,
        }))
    }

    /// Redeems a `countersign://enroll?...` invitation.
    pub fn enroll(
        &self,
        uri: String,
        request: EnrollmentRequest,
    ) -> Result<EnrollmentInfo, FfiError> {
        let options = EnrollOptions {
            platform: request.platform,
            name: request.name,
            push_channel: request.push_channel,
            push_token: request.push_token,
        };
        let e = self.wallet.enroll(&uri, &options)?;
        Ok(EnrollmentInfo {
            server: e.server,
            device_id: e.device_id,
            subject: e.subject,
            name: e.name,
        })
    }

    pub fn pending_requests(&self) -> Result<Vec<PendingItem>, FfiError> {
        Ok(self
            .wallet
            .pending()?
            .into_iter()
            .map(|p| PendingItem {
                id: p.id,
                agent: p.agent,
                action: p.action,
                requested_at: p.requested_at,
                expires_at: p.expires_at,
            })
            .collect())
    }

    /// Fetches and verifies a request; only a request shown this way can be decided.
    pub fn show(&self, request_id: String) -> Result<RequestView, FfiError> {
        let shown = self.wallet.show(&request_id)?;
        let t = shown.transaction;
        Ok(RequestView {
            request_id: t.request_id,
            agent_name: t.agent.name,
            agent_id: t.agent.client_id,
            agent_owner: t.agent.owner,
            action: t.action,
            authorization_details_json: t.authorization_details.map(|d| d.to_string()),
            binding_message: t.binding_message,
            task_id: t.task_id,
            credential_validity_secs: t.credential_validity_secs,
            expires_at: t.expires_at,
            policy_reason: t.policy_reason,
            risk_signals_json: serde_json::Value::Array(t.risk_signals).to_string(),
            transaction_hash: shown.transaction_hash,
        })
    }

    /// Approves a shown request (the platform asks for the biometric). Returns the status
    /// the server recorded.
    pub fn approve(&self, request_id: String) -> Result<String, FfiError> {
        Ok(self
            .wallet
            .decide(&request_id, DecisionKind::Approve, None)?
            .status)
    }

    /// Denies a shown request, with the human's reason if they gave one.
    pub fn deny(&self, request_id: String, reason: Option<String>) -> Result<String, FfiError> {
        Ok(self
            .wallet
            .decide(&request_id, DecisionKind::Deny, reason.as_deref())?
            .status)
    }
}
