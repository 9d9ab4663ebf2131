//! Storage for desktop wallets and tests: in memory, or a JSON file only its owner can
//! read (mode 0600 on Unix), rewritten atomically on every change. Not encrypted: on a
//! desktop the file's permissions are the protection, as for an SSH key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::platform::{SecureStorage, StorageError};

/// Replaces the file at `path` with `bytes` so that a crash leaves either the old or the
/// new content, never a torn file: written beside it, flushed, then renamed over it. The
/// file is readable by its owner only (mode 0600 on Unix) from its creation.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

/// Process memory only.
#[derive(Default)]
pub struct MemoryStorage {
    values: Mutex<BTreeMap<String, String>>,
}

impl MemoryStorage {
    /// A copy of everything stored (tests use it to restore an older state).
    pub fn snapshot(&self) -> BTreeMap<String, String> {
        self.values.lock().map(|v| v.clone()).unwrap_or_default()
    }

    pub fn from_snapshot(values: BTreeMap<String, String>) -> Self {
        Self {
            values: Mutex::new(values),
        }
    }
}

fn poisoned() -> StorageError {
    StorageError("storage lock poisoned".into())
}

impl SecureStorage for MemoryStorage {
    fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
        Ok(self
            .values
            .lock()
            .map_err(|_| poisoned())?
            .get(key)
            .cloned())
    }

    fn put(&self, key: &str, value: &str) -> Result<(), StorageError> {
        self.values
            .lock()
            .map_err(|_| poisoned())?
            .insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.values.lock().map_err(|_| poisoned())?.remove(key);
        Ok(())
    }
}

/// A JSON object in one file.
pub struct FileStorage {
    path: PathBuf,
    values: Mutex<BTreeMap<String, String>>,
}

impl FileStorage {
    /// Opens (or starts) the state file at `path`.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let values = match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                StorageError(format!(
                    "{} is not a wallet state file: {e}",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(StorageError(format!("reading {}: {e}", path.display()))),
        };
        Ok(Self {
            path: path.to_owned(),
            values: Mutex::new(values),
        })
    }

    fn write(&self, values: &BTreeMap<String, String>) -> Result<(), StorageError> {
        let text = serde_json::to_string_pretty(values).map_err(|e| StorageError(e.to_string()))?;
        write_private(&self.path, text.as_bytes())
            .map_err(|e| StorageError(format!("writing {}: {e}", self.path.display())))
    }

    fn update(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, String>),
    ) -> Result<(), StorageError> {
        let mut values = self.values.lock().map_err(|_| poisoned())?;
        let mut next = values.clone();
        change(&mut next);
        self.write(&next)?;
        *values = next;
        Ok(())
    }
}

impl SecureStorage for FileStorage {
    fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
        Ok(self
            .values
            .lock()
            .map_err(|_| poisoned())?
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_storage_persists_privately() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.json");
        let s = FileStorage::open(&path).unwrap();
        s.put("a", "1").unwrap();
        s.put("b", "2").unwrap();
        s.delete("a").unwrap();
        let again = FileStorage::open(&path).unwrap();
        assert_eq!(again.get("a").unwrap(), None);
        assert_eq!(again.get("b").unwrap().as_deref(), Some("2"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not json").unwrap();
        assert!(FileStorage::open(&path).is_err());
    }
}
