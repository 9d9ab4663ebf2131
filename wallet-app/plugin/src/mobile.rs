//! The phone platforms: every wallet-core platform call becomes a native command of the
//! Swift or Kotlin plugin ([`crate::bridge`]). `run_mobile_plugin` blocks until the
//! native side answers (a biometric prompt may take a while), so the app calls wallet-core
//! off the main thread.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use countersign_jose::Jwk;
use countersign_wallet_core::platform::{KeystoreError, PasskeyError, StorageError};
use countersign_wallet_core::{Keystore, PasskeyAuthenticator, Platform, SecureStorage};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tauri::Runtime;
use tauri::plugin::{PluginHandle, mobile::PluginInvokeError};

use crate::bridge::{self, command};

/// The native plugin, shared by the three platform traits.
pub struct Native<R: Runtime>(pub PluginHandle<R>);

/// A failed native command: cancelled by the human, or failed with the platform's message.
enum Failure {
    Cancelled(String),
    Failed(String),
}

impl<R: Runtime> Native<R> {
    fn call<T: DeserializeOwned>(&self, name: &str, payload: impl Serialize) -> Result<T, Failure> {
        self.0
            .run_mobile_plugin::<T>(name, payload)
            .map_err(|e| match e {
                PluginInvokeError::InvokeRejected(r) => {
                    let message = r.message.unwrap_or_else(|| format!("{name} failed"));
                    if r.code.as_deref() == Some(bridge::NativeError::CANCELLED) {
                        Failure::Cancelled(message)
                    } else {
                        Failure::Failed(message)
                    }
                }
                other => Failure::Failed(format!("{name}: {other}")),
            })
    }

    /// The push registration (APNs or FCM token) for enrollment.
    pub fn register_push(&self) -> Result<bridge::PushRegistration, String> {
        self.call(command::REGISTER_PUSH, ()).map_err(|f| match f {
            Failure::Cancelled(m) | Failure::Failed(m) => m,
        })
    }

    /// An enrollment link from the camera; `Ok(None)` when the human cancelled.
    pub fn scan_invitation(&self) -> Result<Option<String>, String> {
        match self.call::<bridge::ScannedInvitation>(command::SCAN_INVITATION, ()) {
            Ok(s) => Ok(Some(s.uri)),
            Err(Failure::Cancelled(_)) => Ok(None),
            Err(Failure::Failed(m)) => Err(m),
        }
    }
}

fn keystore_error(f: Failure) -> KeystoreError {
    match f {
        Failure::Cancelled(m) => KeystoreError::Refused(format!("cancelled: {m}")),
        Failure::Failed(m) => KeystoreError::Refused(m),
    }
}

fn parse_jwk(text: &str) -> Result<Jwk, KeystoreError> {
    serde_json::from_str(text).map_err(|e| KeystoreError::Refused(format!("not a JWK: {e}")))
}

impl<R: Runtime> Keystore for Native<R> {
    fn generate(&self, alias: &str, require_user_verification: bool) -> Result<Jwk, KeystoreError> {
        let key: bridge::PublicJwk = self
            .call(
                command::GENERATE_KEY,
                bridge::GenerateKey {
                    alias: alias.to_owned(),
                    require_user_verification,
                },
            )
            .map_err(keystore_error)?;
        parse_jwk(&key.jwk)
    }

    fn public_key(&self, alias: &str) -> Result<Jwk, KeystoreError> {
        let key: bridge::PublicJwk = self
            .call(
                command::PUBLIC_KEY,
                bridge::KeyAlias {
                    alias: alias.to_owned(),
                },
            )
            .map_err(keystore_error)?;
        parse_jwk(&key.jwk)
    }

    fn sign(&self, alias: &str, message: &[u8]) -> Result<Vec<u8>, KeystoreError> {
        let signed: bridge::Signature = self
            .call(
                command::SIGN,
                bridge::Sign {
                    alias: alias.to_owned(),
                    message: URL_SAFE_NO_PAD.encode(message),
                    prompt: "Confirm with Countersign".into(),
                },
            )
            .map_err(keystore_error)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(&signed.signature)
            .map_err(|_| KeystoreError::Refused("the signature is not base64url".into()))?;
        if bytes.len() != 64 {
            return Err(KeystoreError::Refused(
                "the platform's signature is not raw r || s".into(),
            ));
        }
        Ok(bytes)
    }

    fn delete(&self, alias: &str) -> Result<(), KeystoreError> {
        self.call::<serde_json::Value>(
            command::DELETE_KEY,
            bridge::KeyAlias {
                alias: alias.to_owned(),
            },
        )
        .map(|_| ())
        .map_err(keystore_error)
    }

    fn attestation(&self, alias: &str) -> Option<String> {
        self.call::<bridge::Attestation>(
            command::ATTESTATION,
            bridge::KeyAlias {
                alias: alias.to_owned(),
            },
        )
        .ok()
        .and_then(|a| a.attestation)
    }
}

fn passkey_error(f: Failure) -> PasskeyError {
    match f {
        Failure::Cancelled(m) => PasskeyError::Cancelled(m),
        Failure::Failed(m) => PasskeyError::Failed(m),
    }
}

impl<R: Runtime> PasskeyAuthenticator for Native<R> {
    fn create(&self, options: &str) -> Result<String, PasskeyError> {
        self.call::<bridge::PasskeyResponse>(
            command::CREATE_PASSKEY,
            bridge::PasskeyOptions {
                options_json: options.to_owned(),
            },
        )
        .map(|r| r.response_json)
        .map_err(passkey_error)
    }

    fn get_assertion(&self, options: &str) -> Result<String, PasskeyError> {
        self.call::<bridge::PasskeyResponse>(
            command::GET_PASSKEY,
            bridge::PasskeyOptions {
                options_json: options.to_owned(),
            },
        )
        .map(|r| r.response_json)
        .map_err(passkey_error)
    }
}

fn storage_error(f: Failure) -> StorageError {
    match f {
        Failure::Cancelled(m) | Failure::Failed(m) => StorageError(m),
    }
}

impl<R: Runtime> SecureStorage for Native<R> {
    fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
        self.call::<bridge::StorageValue>(
            command::STORAGE_GET,
            bridge::StorageKey {
                key: key.to_owned(),
            },
        )
        .map(|v| v.value)
        .map_err(storage_error)
    }

    fn put(&self, key: &str, value: &str) -> Result<(), StorageError> {
        self.call::<serde_json::Value>(
            command::STORAGE_PUT,
            bridge::StoragePut {
                key: key.to_owned(),
                value: value.to_owned(),
            },
        )
        .map(|_| ())
        .map_err(storage_error)
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.call::<serde_json::Value>(
            command::STORAGE_DELETE,
            bridge::StorageKey {
                key: key.to_owned(),
            },
        )
        .map(|_| ())
        .map_err(storage_error)
    }
}

/// The wallet-core platform on the phone's secure hardware.
pub fn platform<R: Runtime>(native: Arc<Native<R>>) -> Platform {
    Platform {
        keystore: native.clone(),
        passkeys: native.clone(),
        storage: native,
    }
}
