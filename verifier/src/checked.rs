//! Credentials whose signature and contents were already checked, so that a tool seeing
//! the same credential again (an agent makes several calls with one approval, each with a
//! fresh DPoP proof) skips the credential's parse and signature verification. Everything
//! that depends on the call or the time (validity window, approved action, DPoP proof,
//! revocation status) is still checked on every call.
//!
//! Entries are keyed by the SHA-256 of the credential (which the DPoP `ath` check needs
//! anyway) and remember the issuer key set they were verified against: after a key
//! refresh the credential is verified again, so a key the issuer withdrew stops counting
//! at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::{IssuerKeys, StatusRef, Verdict};

/// What a credential states, once its signature verified.
pub(crate) struct Checked {
    /// The key set of the issuer the signature verified against.
    pub keys: Arc<IssuerKeys>,
    pub issuer: String,
    /// The credential's `jti`, by which its uses are counted.
    pub jti: String,
    pub exp: i64,
    pub nbf: Option<i64>,
    pub status: Option<StatusRef>,
    /// The verdict to return when the call passes (it holds the approved
    /// `authorization_details` and the bound key too).
    pub verdict: Verdict,
}

/// A bounded map from credential hash to its checked contents.
pub(crate) struct CredentialCache {
    capacity: usize,
    entries: Mutex<HashMap<[u8; 32], Arc<Checked>>>,
}

impl CredentialCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, hash: &[u8; 32]) -> Option<Arc<Checked>> {
        if self.capacity == 0 {
            return None;
        }
        self.entries.lock().ok()?.get(hash).cloned()
    }

    /// Remembers `checked`; when full, first forgets expired entries, then everything
    /// (a cache miss only costs one more signature check).
    pub fn insert(&self, hash: [u8; 32], checked: Arc<Checked>, now: i64) {
        if self.capacity == 0 {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= self.capacity {
            entries.retain(|_, c| c.exp > now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(hash, checked);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(exp: i64) -> Arc<Checked> {
        Arc::new(Checked {
            keys: Arc::new(Vec::new()),
            issuer: "i".into(),
            jti: "j".into(),
            exp,
            nbf: None,
            status: None,
            verdict: Verdict {
                credential_id: "c".into(),
                agent: "a".into(),
                agent_key: None,
                approver: Some("h".into()),
                approver_name: None,
                approval_method: None,
                policy: None,
                authorization_details: vec![],
                expires_at: exp,
                max_uses: Some(1),
                use_number: None,
            },
        })
    }

    #[test]
    fn stays_bounded_dropping_expired_entries_first() {
        let cache = CredentialCache::new(3);
        cache.insert([1; 32], entry(10), 0);
        cache.insert([2; 32], entry(100), 0);
        cache.insert([3; 32], entry(100), 0);
        cache.insert([4; 32], entry(100), 50); // full: the expired [1] goes
        assert_eq!(cache.len(), 3);
        assert!(cache.get(&[1; 32]).is_none());
        assert!(cache.get(&[2; 32]).is_some());
        cache.insert([5; 32], entry(100), 50); // full of live entries: start over
        assert_eq!(cache.len(), 1);
        assert!(cache.get(&[5; 32]).is_some());

        let off = CredentialCache::new(0);
        off.insert([1; 32], entry(10), 0);
        assert!(off.get(&[1; 32]).is_none());
    }
}
