//! The server's signing keys: generated on first start, one JSON file per key in the keys
//! directory (directory 0700, files 0600). The newest unretired key signs; retired keys stay
//! in the JWKS until every token they signed has expired, so rotation never breaks a
//! verifier holding a cached token.
//!
//! Beside them, the audit log's Ed25519 key (`audit-log.ed25519`, PKCS#8): it signs the
//! log's checkpoints as signed notes, which auditors and witnesses verify with its
//! verifier key. It is not rotated with the credential keys: checkpoints held outside
//! the server must stay verifiable for as long as the log exists.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use countersign_jose::{JwkSet, SigningKeyPair, b64url_decode, b64url_encode};
use serde::{Deserialize, Serialize};

/// The audit log key's file in the keys directory.
pub const LOG_KEY_FILE: &str = "audit-log.ed25519";
/// The audit log's origin (its name in every checkpoint), fixed when the log is first
/// opened: a later change of `issuer` must not make the log's own checkpoints unverifiable.
pub const LOG_ORIGIN_FILE: &str = "audit-log.origin";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key store {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {0} is not a valid Countersign key")]
    Corrupt(PathBuf),
}

/// Reads the audit log key from `dir`, creating it (0600) on first start.
fn load_or_create_log_key(dir: &Path) -> Result<countersign_tlog::note::Pkcs8Key, KeyError> {
    let path = dir.join(LOG_KEY_FILE);
    let bytes = load_or_create_file(dir, LOG_KEY_FILE, || {
        countersign_tlog::note::generate_pkcs8()
            .map(|key| key.as_bytes().to_vec())
            .map_err(|_| KeyError::Corrupt(path.clone()))
    })?;
    Ok(countersign_tlog::note::Pkcs8Key::from_bytes(bytes))
}

/// Reads the 32-byte secret `name` from `dir`, creating it (0600, from the operating
/// system's randomness) on first use.
pub fn load_or_create_secret(dir: &Path, name: &str) -> Result<[u8; 32], KeyError> {
    let bytes = load_or_create_file(dir, name, || {
        let mut secret = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut secret);
        Ok(secret.to_vec())
    })?;
    bytes
        .try_into()
        .map_err(|_| KeyError::Corrupt(dir.join(name)))
}

/// The contents of `dir/name`, written first (atomically, 0600) from `generate` if the
/// file does not exist.
fn load_or_create_file(
    dir: &Path,
    name: &str,
    generate: impl FnOnce() -> Result<Vec<u8>, KeyError>,
) -> Result<Vec<u8>, KeyError> {
    let path = dir.join(name);
    match fs::read(&path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            ensure_dir(dir)?;
            let bytes = generate()?;
            let tmp = dir.join(format!(".{name}.tmp"));
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io(&tmp))?;
            file.write_all(&bytes).map_err(io(&tmp))?;
            file.sync_all().map_err(io(&tmp))?;
            fs::rename(&tmp, &path).map_err(io(&path))?;
            Ok(bytes)
        }
        Err(e) => Err(KeyError::Io { path, source: e }),
    }
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    created_at_ms: i64,
    retired_at_ms: Option<i64>,
    /// The P-256 private scalar, base64url.
    d: String,
}

struct Loaded {
    active: Arc<SigningKeyPair>,
    published: JwkSet,
    infos: Vec<KeyInfo>,
}

/// A published signing key as an operator sees it (no key material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub kid: String,
    /// The JWS algorithm it signs with.
    pub alg: &'static str,
    pub created_at_ms: i64,
    /// When a rotation retired it (`None`: it signs new tokens).
    pub retired_at_ms: Option<i64>,
    /// When a retired key leaves the JWKS (its last tokens have expired by then).
    pub published_until_ms: Option<i64>,
}

/// The keys in memory. Cheap to read on every request.
pub struct KeyRing {
    dir: PathBuf,
    loaded: RwLock<Loaded>,
    log_key: countersign_tlog::note::Pkcs8Key,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

fn read_keys(dir: &Path) -> Result<Vec<(PathBuf, StoredKey)>, KeyError> {
    let mut keys = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = fs::read_to_string(&path).map_err(io(&path))?;
        let key: StoredKey =
            serde_json::from_str(&text).map_err(|_| KeyError::Corrupt(path.clone()))?;
        keys.push((path, key));
    }
    keys.sort_by_key(|(_, k)| k.created_at_ms);
    Ok(keys)
}

fn write_key(dir: &Path, key: &StoredKey) -> Result<(), KeyError> {
    let path = dir.join(format!("{}.json", key.kid));
    let text = serde_json::to_string_pretty(key).map_err(|_| KeyError::Corrupt(path.clone()))?;
    let tmp = dir.join(format!(".{}.tmp", key.kid));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    file.write_all(text.as_bytes()).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, &path).map_err(io(&path))
}

fn ensure_dir(dir: &Path) -> Result<(), KeyError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))
}

fn new_key(now_ms: i64) -> StoredKey {
    let pair = SigningKeyPair::generate();
    StoredKey {
        kid: pair.kid().to_owned(),
        created_at_ms: now_ms,
        retired_at_ms: None,
        d: b64url_encode(pair.scalar_bytes()),
    }
}

impl KeyRing {
    /// Loads the keys in `dir`, creating the directory and a first key when there is none.
    /// `retention_ms` is how long a retired key stays published (the longest token life).
    pub fn load_or_create(dir: &Path, now_ms: i64, retention_ms: i64) -> Result<Self, KeyError> {
        ensure_dir(dir)?;
        let mut keys = read_keys(dir)?;
        if !keys.iter().any(|(_, k)| k.retired_at_ms.is_none()) {
            let key = new_key(now_ms);
            write_key(dir, &key)?;
            keys.push((dir.join(format!("{}.json", key.kid)), key));
        }
        let mut active = None;
        let mut published = JwkSet::default();
        let mut infos = Vec::new();
        for (path, key) in &keys {
            if key
                .retired_at_ms
                .is_some_and(|t| t.saturating_add(retention_ms) < now_ms)
            {
                continue;
            }
            let scalar = b64url_decode(&key.d).ok_or_else(|| KeyError::Corrupt(path.clone()))?;
            let pair = SigningKeyPair::from_scalar(key.kid.clone(), &scalar)
                .map_err(|_| KeyError::Corrupt(path.clone()))?;
            published.keys.push(pair.public_jwk());
            infos.push(KeyInfo {
                kid: key.kid.clone(),
                alg: countersign_jose::ES256,
                created_at_ms: key.created_at_ms,
                retired_at_ms: key.retired_at_ms,
                published_until_ms: key.retired_at_ms.map(|t| t.saturating_add(retention_ms)),
            });
            if key.retired_at_ms.is_none() {
                active = Some(pair);
            }
        }
        let active = active.ok_or_else(|| KeyError::Corrupt(dir.to_owned()))?;
        Ok(Self {
            dir: dir.to_owned(),
            loaded: RwLock::new(Loaded {
                active: Arc::new(active),
                published,
                infos,
            }),
            log_key: load_or_create_log_key(dir)?,
        })
    }

    /// The audit log's Ed25519 key (PKCS#8).
    pub fn log_key(&self) -> &countersign_tlog::note::Pkcs8Key {
        &self.log_key
    }

    /// The audit log's origin as recorded beside its key; `proposed` (derived from the
    /// issuer) is recorded and returned the first time.
    pub fn log_origin(&self, proposed: &str) -> Result<String, KeyError> {
        let path = self.dir.join(LOG_ORIGIN_FILE);
        match fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
            Ok(_) => Err(KeyError::Corrupt(path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let tmp = self.dir.join(format!(".{LOG_ORIGIN_FILE}.tmp"));
                let mut file = fs::File::create(&tmp).map_err(io(&tmp))?;
                file.write_all(format!("{proposed}\n").as_bytes())
                    .map_err(io(&tmp))?;
                file.sync_all().map_err(io(&tmp))?;
                fs::rename(&tmp, &path).map_err(io(&path))?;
                Ok(proposed.to_owned())
            }
            Err(e) => Err(KeyError::Io { path, source: e }),
        }
    }

    /// Creates a new signing key in `dir` and retires the others. A running server picks it
    /// up at its next start. Returns the new kid.
    pub fn rotate(dir: &Path, now_ms: i64) -> Result<String, KeyError> {
        ensure_dir(dir)?;
        for (_, mut key) in read_keys(dir)? {
            if key.retired_at_ms.is_none() {
                key.retired_at_ms = Some(now_ms);
                write_key(dir, &key)?;
            }
        }
        let key = new_key(now_ms);
        write_key(dir, &key)?;
        Ok(key.kid)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key that signs new tokens.
    pub fn active(&self) -> Arc<SigningKeyPair> {
        match self.loaded.read() {
            Ok(l) => l.active.clone(),
            Err(poisoned) => poisoned.into_inner().active.clone(),
        }
    }

    /// The published keys, oldest first: the active one and those retired but still
    /// published.
    pub fn key_infos(&self) -> Vec<KeyInfo> {
        match self.loaded.read() {
            Ok(l) => l.infos.clone(),
            Err(poisoned) => poisoned.into_inner().infos.clone(),
        }
    }

    /// Every key a verifier may meet in a live token.
    pub fn jwks(&self) -> JwkSet {
        match self.loaded.read() {
            Ok(l) => l.published.clone(),
            Err(poisoned) => poisoned.into_inner().published.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn first_start_creates_private_key_file_and_reload_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let ring = KeyRing::load_or_create(&keys, 1_000, 60_000).unwrap();
        let kid = ring.active().kid().to_owned();
        let file = keys.join(format!("{kid}.json"));
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(&keys).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let again = KeyRing::load_or_create(&keys, 2_000, 60_000).unwrap();
        assert_eq!(again.active().kid(), kid);
        assert_eq!(again.jwks().keys.len(), 1);
    }

    #[test]
    fn rotation_publishes_old_key_until_retention_ends() {
        let dir = tempfile::tempdir().unwrap();
        let first = KeyRing::load_or_create(dir.path(), 1_000, 60_000)
            .unwrap()
            .active()
            .kid()
            .to_owned();
        let second = KeyRing::rotate(dir.path(), 10_000).unwrap();
        let ring = KeyRing::load_or_create(dir.path(), 20_000, 60_000).unwrap();
        assert_eq!(ring.active().kid(), second);
        let kids: Vec<_> = ring.jwks().keys.into_iter().filter_map(|k| k.kid).collect();
        assert_eq!(kids, vec![first.clone(), second.clone()]);
        // What the console lists: the retiring key until its retention ends, then the
        // active one.
        assert_eq!(
            ring.key_infos(),
            [
                KeyInfo {
                    kid: first.clone(),
                    alg: "ES256",
                    created_at_ms: 1_000,
                    retired_at_ms: Some(10_000),
                    published_until_ms: Some(70_000),
                },
                KeyInfo {
                    kid: second.clone(),
                    alg: "ES256",
                    created_at_ms: 10_000,
                    retired_at_ms: None,
                    published_until_ms: None,
                },
            ]
        );
        let later = KeyRing::load_or_create(dir.path(), 70_001, 60_000).unwrap();
        let kids: Vec<_> = later
            .jwks()
            .keys
            .into_iter()
            .filter_map(|k| k.kid)
            .collect();
        assert_eq!(kids, vec![second]);
        assert_eq!(
            later.key_infos().len(),
            1,
            "a key past its retention is not listed"
        );
    }
}
