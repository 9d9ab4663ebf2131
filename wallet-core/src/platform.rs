//! What the host platform implements. Keys are named by alias; private keys are never
//! returned.

use std::collections::HashMap;
use std::sync::Mutex;

use countersign_jose::{Jwk, SigningKeyPair};

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
    /// Creates (or replaces) the key `alias` and returns its public JWK.
    fn generate(&self, alias: &str) -> Result<Jwk, KeystoreError>;
    /// The public JWK of `alias`.
    fn public_key(&self, alias: &str) -> Result<Jwk, KeystoreError>;
    /// Signs `message` with ES256 and returns the JWS signature (`r || s`, 64 bytes).
    fn sign(&self, alias: &str, message: &[u8]) -> Result<Vec<u8>, KeystoreError>;
}

/// Keys held in process memory: for desktop development and tests only.
#[derive(Default)]
pub struct SoftwareKeystore {
    keys: Mutex<HashMap<String, SigningKeyPair>>,
}

impl SoftwareKeystore {
    fn with_key<T>(
        &self,
        alias: &str,
        f: impl FnOnce(&SigningKeyPair) -> T,
    ) -> Result<T, KeystoreError> {
        let keys = self
            .keys
            .lock()
            .map_err(|_| KeystoreError::Refused("keystore lock poisoned".into()))?;
        keys.get(alias)
            .map(f)
            .ok_or_else(|| KeystoreError::UnknownAlias(alias.to_owned()))
    }
}

impl Keystore for SoftwareKeystore {
    fn generate(&self, alias: &str) -> Result<Jwk, KeystoreError> {
        let pair = SigningKeyPair::generate();
        let jwk = pair.public_jwk();
        self.keys
            .lock()
            .map_err(|_| KeystoreError::Refused("keystore lock poisoned".into()))?
            .insert(alias.to_owned(), pair);
        Ok(jwk)
    }

    fn public_key(&self, alias: &str) -> Result<Jwk, KeystoreError> {
        self.with_key(alias, SigningKeyPair::public_jwk)
    }

    fn sign(&self, alias: &str, message: &[u8]) -> Result<Vec<u8>, KeystoreError> {
        self.with_key(alias, |k| k.sign_raw(message))
    }
}
