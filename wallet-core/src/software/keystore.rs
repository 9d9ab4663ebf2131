//! A keystore in software: P-256 keys kept in [`SecureStorage`] (so in the state file on
//! a desktop). For desktops, demos and tests only; it offers no attestation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use countersign_jose::{Jwk, SigningKeyPair, b64url_decode, b64url_encode};

use crate::platform::{Keystore, KeystoreError, SecureStorage};

pub struct SoftwareKeystore {
    storage: Arc<dyn SecureStorage>,
    /// Keys already read from storage (deriving the public key is an EC multiplication).
    loaded: Mutex<HashMap<String, Arc<SigningKeyPair>>>,
}

fn storage_key(alias: &str) -> String {
    format!("keystore/{alias}")
}

impl SoftwareKeystore {
    pub fn new(storage: Arc<dyn SecureStorage>) -> Self {
        Self {
            storage,
            loaded: Mutex::new(HashMap::new()),
        }
    }

    fn load(&self, alias: &str) -> Result<Arc<SigningKeyPair>, KeystoreError> {
        if let Some(pair) = self.loaded.lock().ok().and_then(|l| l.get(alias).cloned()) {
            return Ok(pair);
        }
        let pair = Arc::new(self.read(alias)?);
        if let Ok(mut loaded) = self.loaded.lock() {
            loaded.insert(alias.to_owned(), pair.clone());
        }
        Ok(pair)
    }

    fn read(&self, alias: &str) -> Result<SigningKeyPair, KeystoreError> {
        let refused = |e: String| KeystoreError::Refused(e);
        let scalar = self
            .storage
            .get(&storage_key(alias))
            .map_err(|e| refused(e.to_string()))?
            .ok_or_else(|| KeystoreError::UnknownAlias(alias.to_owned()))?;
        let bytes = b64url_decode(&scalar).ok_or_else(|| refused("corrupt key".into()))?;
        SigningKeyPair::from_scalar(alias.to_owned(), &bytes).map_err(|e| refused(e.to_string()))
    }
}

impl Keystore for SoftwareKeystore {
    fn generate(
        &self,
        alias: &str,
        _require_user_verification: bool,
    ) -> Result<Jwk, KeystoreError> {
        let pair = SigningKeyPair::generate();
        self.storage
            .put(&storage_key(alias), &b64url_encode(pair.scalar_bytes()))
            .map_err(|e| KeystoreError::Refused(e.to_string()))?;
        let jwk = pair.public_jwk();
        if let Ok(mut loaded) = self.loaded.lock() {
            loaded.insert(alias.to_owned(), Arc::new(pair));
        }
        Ok(jwk)
    }

    fn public_key(&self, alias: &str) -> Result<Jwk, KeystoreError> {
        Ok(self.load(alias)?.public_jwk())
    }

    fn sign(&self, alias: &str, message: &[u8]) -> Result<Vec<u8>, KeystoreError> {
        Ok(self.load(alias)?.sign_raw(message))
    }

    fn delete(&self, alias: &str) -> Result<(), KeystoreError> {
        if let Ok(mut loaded) = self.loaded.lock() {
            loaded.remove(alias);
        }
        self.storage
            .delete(&storage_key(alias))
            .map_err(|e| KeystoreError::Refused(e.to_string()))
    }
}
