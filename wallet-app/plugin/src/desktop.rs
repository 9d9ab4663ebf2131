//! The desktop platform: wallet-core's software keystore and passkey authenticator over a
//! state file sealed at rest. The key that seals it is derived from the owner's
//! passphrase with Argon2id (a fresh salt per file); every write re-seals the whole state
//! with XChaCha20-Poly1305 under a fresh nonce and replaces the file atomically (mode
//! 0600). Without the passphrase the file reveals nothing, not even which server it
//! enrolled with. A desktop has no secure element: this is the honest fallback the
//! mobile platforms improve on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use countersign_wallet_core::platform::StorageError;
use countersign_wallet_core::{Platform, SecureStorage, software};
use serde::{Deserialize, Serialize};

use crate::Error;

/// The sealed file: the KDF's parameters and salt, the nonce, and the ciphertext of the
/// JSON state (key to value). All binary fields base64url.
#[derive(Serialize, Deserialize)]
struct Sealed {
    version: u32,
    kdf: String,
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
    salt: String,
    nonce: String,
    ciphertext: String,
}

const VERSION: u32 = 1;
/// Argon2id as OWASP recommends for interactive logins (19 MiB, 2 passes, 1 lane).
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;
/// Shortest passphrase accepted when creating a wallet.
pub const MIN_PASSPHRASE: usize = 8;

fn random<const N: usize>() -> Result<[u8; N], Error> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|e| Error::Platform(format!("no randomness: {e}")))?;
    Ok(bytes)
}

fn derive(passphrase: &str, salt: &[u8], m: u32, t: u32, p: u32) -> Result<Key, Error> {
    let params = Params::new(m, t, p, Some(32))
        .map_err(|e| Error::Platform(format!("key derivation parameters: {e}")))?;
    let mut key = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut key)
        .map_err(|e| Error::Platform(format!("key derivation: {e}")))?;
    Ok(Key::from(key))
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Result<Vec<u8>, Error> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| Error::Corrupt("a field is not base64url".into()))
}

/// Secure storage in one sealed file.
pub struct SealedFileStorage {
    path: PathBuf,
    key: Key,
    salt: Vec<u8>,
    values: Mutex<BTreeMap<String, String>>,
}

impl SealedFileStorage {
    /// Whether a sealed state file exists at `path` (then [`Self::open`] needs its
    /// passphrase; otherwise [`Self::create`] starts one).
    pub fn exists(path: &Path) -> bool {
        path.exists()
    }

    /// Starts a new, empty state at `path`, sealed under `passphrase`.
    pub fn create(path: &Path, passphrase: &str) -> Result<Self, Error> {
        if passphrase.chars().count() < MIN_PASSPHRASE {
            return Err(Error::WeakPassphrase(MIN_PASSPHRASE));
        }
        let salt = random::<16>()?.to_vec();
        let storage = Self {
            path: path.to_owned(),
            key: derive(passphrase, &salt, MEMORY_KIB, ITERATIONS, PARALLELISM)?,
            salt,
            values: Mutex::new(BTreeMap::new()),
        };
        storage.write(&BTreeMap::new())?;
        Ok(storage)
    }

    /// Opens the state at `path` with `passphrase`; a wrong passphrase (or a changed
    /// file: the two cannot be told apart) is [`Error::WrongPassphrase`].
    pub fn open(path: &Path, passphrase: &str) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Platform(format!("reading {}: {e}", path.display())))?;
        let sealed: Sealed = serde_json::from_str(&text)
            .map_err(|e| Error::Corrupt(format!("not a sealed wallet state: {e}")))?;
        if sealed.version != VERSION || sealed.kdf != "argon2id" {
            return Err(Error::Corrupt(format!(
                "unknown state format {} {}",
                sealed.version, sealed.kdf
            )));
        }
        let salt = unb64(&sealed.salt)?;
        let key = derive(
            passphrase,
            &salt,
            sealed.memory_kib,
            sealed.iterations,
            sealed.parallelism,
        )?;
        let nonce = unb64(&sealed.nonce)?;
        if nonce.len() != 24 {
            return Err(Error::Corrupt("the nonce is not 24 bytes".into()));
        }
        let plain = XChaCha20Poly1305::new(&key)
            .decrypt(XNonce::from_slice(&nonce), &unb64(&sealed.ciphertext)?[..])
            .map_err(|_| Error::WrongPassphrase)?;
        let values = serde_json::from_slice(&plain)
            .map_err(|e| Error::Corrupt(format!("the opened state is not JSON: {e}")))?;
        Ok(Self {
            path: path.to_owned(),
            key,
            salt,
            values: Mutex::new(values),
        })
    }

    fn write(&self, values: &BTreeMap<String, String>) -> Result<(), Error> {
        let plain = serde_json::to_vec(values).map_err(|e| Error::Platform(e.to_string()))?;
        let nonce = random::<24>()?;
        let ciphertext = XChaCha20Poly1305::new(&self.key)
            .encrypt(XNonce::from_slice(&nonce), &plain[..])
            .map_err(|_| Error::Platform("sealing the state failed".into()))?;
        let sealed = Sealed {
            version: VERSION,
            kdf: "argon2id".into(),
            memory_kib: MEMORY_KIB,
            iterations: ITERATIONS,
            parallelism: PARALLELISM,
            salt: b64(&self.salt),
            nonce: b64(&nonce),
            ciphertext: b64(&ciphertext),
        };
        let text = serde_json::to_string(&sealed).map_err(|e| Error::Platform(e.to_string()))?;
        let io =
            |e: std::io::Error| Error::Platform(format!("writing {}: {e}", self.path.display()));
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        countersign_wallet_core::software::write_private(&self.path, text.as_bytes()).map_err(io)
    }

    fn update(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, String>),
    ) -> Result<(), StorageError> {
        let mut values = self
            .values
            .lock()
            .map_err(|_| StorageError("state lock poisoned".into()))?;
        let mut next = values.clone();
        change(&mut next);
        self.write(&next).map_err(|e| StorageError(e.to_string()))?;
        *values = next;
        Ok(())
    }
}

impl SecureStorage for SealedFileStorage {
    fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
        Ok(self
            .values
            .lock()
            .map_err(|_| StorageError("state lock poisoned".into()))?
            .get(key)
            .cloned())
    }

    fn put(&self, key: &str, value: &str) -> Result<(), StorageError> {
        self.update(|v| {
            v.insert(key.to_owned(), value.to_owned());
        })
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.update(|v| {
            v.remove(key);
        })
    }
}

/// The desktop platform over the sealed state at `path`: opened with `passphrase` if it
/// exists, created with it otherwise.
pub fn unlock(path: &Path, passphrase: &str) -> Result<Platform, Error> {
    let storage = if SealedFileStorage::exists(path) {
        SealedFileStorage::open(path, passphrase)?
    } else {
        SealedFileStorage::create(path, passphrase)?
    };
    Ok(software::platform(Arc::new(storage)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sealed_state_reopens_only_with_its_passphrase_and_hides_its_contents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.sealed");
        assert!(matches!(
            SealedFileStorage::create(&path, "short"),
            Err(Error::WeakPassphrase(8))
        ));
        let s = SealedFileStorage::create(&path, "correct horse").unwrap();
        s.put("enrollment", "https://countersign.example").unwrap();
        s.put("gone", "1").unwrap();
        s.delete("gone").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("countersign.example"), "sealed: {text}");
        assert!(!text.contains("enrollment"));
        let again = SealedFileStorage::open(&path, "correct horse").unwrap();
        assert_eq!(
            again.get("enrollment").unwrap().as_deref(),
            Some("https://countersign.example")
        );
        assert_eq!(again.get("gone").unwrap(), None);
        assert!(matches!(
            SealedFileStorage::open(&path, "wrong horse"),
            Err(Error::WrongPassphrase)
        ));
        // A flipped bit of ciphertext is caught by the AEAD, not read as other state.
        let mut sealed: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut ct = unb64(sealed["ciphertext"].as_str().unwrap()).unwrap();
        ct[0] ^= 1;
        sealed["ciphertext"] = b64(&ct).into();
        std::fs::write(&path, sealed.to_string()).unwrap();
        assert!(matches!(
            SealedFileStorage::open(&path, "correct horse"),
            Err(Error::WrongPassphrase)
        ));
        std::fs::write(&path, "{}").unwrap();
        assert!(matches!(
            SealedFileStorage::open(&path, "correct horse"),
            Err(Error::Corrupt(_))
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let fresh = dir.path().join("fresh.sealed");
            SealedFileStorage::create(&fresh, "correct horse").unwrap();
            let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn each_write_uses_a_fresh_nonce() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.sealed");
        let s = SealedFileStorage::create(&path, "correct horse").unwrap();
        s.put("k", "v").unwrap();
        let first: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        s.put("k", "v").unwrap();
        let second: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_ne!(first["nonce"], second["nonce"]);
        assert_eq!(first["salt"], second["salt"]);
    }
}
