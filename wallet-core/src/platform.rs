//! What the host platform implements for the wallet. On a phone: the keystore is the
//! Secure Enclave or Android Keystore/StrongBox (keys by alias, private keys never leave
//! it), passkeys come from the platform's WebAuthn API (ASAuthorization, Credential
//! Manager), storage is the Keychain or EncryptedSharedPreferences. The [`crate::software`]
//! module implements all three for desktops and tests.

use countersign_jose::Jwk;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeystoreError {
    #[error("no key with alias {0:?}")]
    UnknownAlias(String),
    #[error("the keystore refused: {0}")]
    Refused(String),
}

/// A P-256 keystore. Implementations on phones are hardware-backed and may require user
/// presence for `sign`.
pub trait Keystore: Send + Sync {
    /// Creates (or replaces) the key `alias` and returns its public JWK. With
    /// `require_user_verification`, the platform gates every use behind the device's
    /// biometric or passcode where it can.
    fn generate(&self, alias: &str, require_user_verification: bool) -> Result<Jwk, KeystoreError>;
    /// The public JWK of `alias`.
    fn public_key(&self, alias: &str) -> Result<Jwk, KeystoreError>;
    /// Signs `message` with ES256 and returns the JWS signature (`r || s`, 64 bytes).
    fn sign(&self, alias: &str, message: &[u8]) -> Result<Vec<u8>, KeystoreError>;
    /// Destroys key `alias` (removing a device); no error if there is none.
    fn delete(&self, alias: &str) -> Result<(), KeystoreError>;
    /// Key attestation the platform offers for `alias` (Android key attestation chain,
    /// Apple App Attest), opaque to the wallet; `None` where there is none.
    fn attestation(&self, _alias: &str) -> Option<String> {
        None
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasskeyError {
    /// The human cancelled or failed the biometric.
    #[error("the passkey ceremony was cancelled: {0}")]
    Cancelled(String),
    #[error("the passkey ceremony failed: {0}")]
    Failed(String),
}

/// The platform's passkey (WebAuthn) authenticator, speaking WebAuthn JSON both ways.
pub trait PasskeyAuthenticator: Send + Sync {
    /// Creates a passkey from `PublicKeyCredentialCreationOptionsJSON`; returns the
    /// `RegistrationResponseJSON`.
    fn create(&self, options: &str) -> Result<String, PasskeyError>;
    /// Asserts with a passkey from `PublicKeyCredentialRequestOptionsJSON` (user
    /// verification as the options require); returns the `AuthenticationResponseJSON`.
    fn get_assertion(&self, options: &str) -> Result<String, PasskeyError>;
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("secure storage failed: {0}")]
pub struct StorageError(pub String);

/// Small secrets and state that survive restarts, encrypted at rest by the platform.
pub trait SecureStorage: Send + Sync {
    fn get(&self, key: &str) -> Result<Option<String>, StorageError>;
    fn put(&self, key: &str, value: &str) -> Result<(), StorageError>;
    fn delete(&self, key: &str) -> Result<(), StorageError>;
}
