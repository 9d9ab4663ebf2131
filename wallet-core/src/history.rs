//! The wallet's own record of its human's decisions: each with the exact approval it
//! signed (the evidence the server keeps too), so the human can show what they approved
//! and when without asking the server. Kept in secure storage, newest first, bounded.

use serde::{Deserialize, Serialize};

use crate::WalletError;
use crate::platform::SecureStorage;

const HISTORY_KEY: &str = "history";
/// Decisions kept; older ones are dropped (the server's trail keeps them all).
pub const HISTORY_LIMIT: usize = 500;

/// One decision this wallet sent and the server recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionEntry {
    pub request_id: String,
    /// `approve` or `deny`.
    pub decision: String,
    /// Unix seconds.
    pub decided_at: i64,
    /// The agent's display name.
    pub agent: String,
    pub action: Option<String>,
    pub binding_message: Option<String>,
    /// Why the human denied, when they said.
    pub reason: Option<String>,
    /// The hash of the transaction shown and signed.
    pub transaction_hash: String,
    /// The approval as signed by the device key (compact JWS).
    pub evidence: String,
    /// RFC 7638 thumbprint of the device key that signed it.
    pub device_jkt: String,
}

pub(crate) fn load(storage: &dyn SecureStorage) -> Result<Vec<DecisionEntry>, WalletError> {
    match storage.get(HISTORY_KEY)? {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| WalletError::Invalid(format!("stored history is corrupt: {e}"))),
    }
}

/// Puts `entry` first and drops what exceeds [`HISTORY_LIMIT`].
pub(crate) fn record(storage: &dyn SecureStorage, entry: DecisionEntry) -> Result<(), WalletError> {
    let mut entries = load(storage)?;
    entries.retain(|e| e.request_id != entry.request_id);
    entries.insert(0, entry);
    entries.truncate(HISTORY_LIMIT);
    let text = serde_json::to_string(&entries).map_err(|e| WalletError::Invalid(e.to_string()))?;
    Ok(storage.put(HISTORY_KEY, &text)?)
}

pub(crate) fn clear(storage: &dyn SecureStorage) -> Result<(), WalletError> {
    Ok(storage.delete(HISTORY_KEY)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::software::MemoryStorage;

    fn entry(id: &str) -> DecisionEntry {
        DecisionEntry {
            request_id: id.into(),
            decision: "approve".into(),
            decided_at: 1,
            agent: "Agent".into(),
            action: None,
            binding_message: None,
            reason: None,
            transaction_hash: "h".into(),
            evidence: "e".into(),
            device_jkt: "k".into(),
        }
    }

    #[test]
    fn newest_first_one_per_request_and_bounded() {
        let storage = MemoryStorage::default();
        for i in 0..HISTORY_LIMIT + 3 {
            record(&storage, entry(&format!("r{i}"))).unwrap();
        }
        record(&storage, entry("r5")).unwrap();
        let all = load(&storage).unwrap();
        assert_eq!(all.len(), HISTORY_LIMIT);
        assert_eq!(all[0].request_id, "r5");
        assert_eq!(all[1].request_id, format!("r{}", HISTORY_LIMIT + 2));
        assert_eq!(all.iter().filter(|e| e.request_id == "r5").count(), 1);
        clear(&storage).unwrap();
        assert!(load(&storage).unwrap().is_empty());
    }
}
