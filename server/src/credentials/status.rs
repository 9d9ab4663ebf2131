//! Revocation through IETF OAuth Token Status Lists (draft-ietf-oauth-status-list).
//!
//! Every credential gets an entry `(list, idx)`. Indexes come from a per-list counter,
//! reserved from the database in blocks (one write per block, safe across replicas), and
//! are mapped through a keyed pseudo-random permutation of `[0, capacity)`, so they are
//! unique yet reveal nothing about issuance order. A published list is a signed
//! `statuslist+jwt` whose bit `idx` is 1 when that credential is revoked.

use std::io::Write as _;

use flate2::Compression;
use flate2::write::ZlibEncoder;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::credentials::{CredentialError, Issuing};
use crate::store::status_lists::ReservedBlock;
use crate::store::{Store, StoreError};

/// Entries per list: 2^17 bits is 16 KiB before compression.
pub const LIST_CAPACITY: i64 = 1 << 17;
/// Counter values reserved per database round trip.
const BLOCK: i64 = 256;

/// A keyed permutation of `[0, capacity)`: a 4-round Feistel network over the smallest
/// even bit width covering the domain, with cycle walking back into the domain.
pub fn permute(key: &[u8], capacity: i64, counter: i64) -> i64 {
    let bits = (64 - (capacity - 1).max(1).leading_zeros()).div_ceil(2) * 2;
    let half = bits / 2;
    let mask = (1u64 << half) - 1;
    let round = |r: u8, x: u64| -> u64 {
        let mut h = Sha256::new();
        h.update(key);
        h.update([r]);
        h.update(x.to_le_bytes());
        let d = h.finalize();
        u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]) & mask
    };
    let mut x = counter as u64;
    loop {
        let (mut l, mut r) = (x >> half, x & mask);
        for i in 0..4u8 {
            (l, r) = (r, l ^ round(i, r));
        }
        x = (l << half) | r;
        if (x as i64) < capacity {
            return x as i64;
        }
    }
}

struct Cursor {
    block: ReservedBlock,
    key: Vec<u8>,
    next: i64,
}

/// Hands out status list entries to this process.
#[derive(Default)]
pub struct StatusAllocator {
    cursor: Mutex<Option<Cursor>>,
    /// Entries allocated for a token that was then not issued, reused first.
    returned: std::sync::Mutex<Vec<(i64, i64)>>,
}

impl StatusAllocator {
    pub async fn allocate(&self, store: &Store, now_ms: i64) -> Result<(i64, i64), StoreError> {
        if let Some(entry) = self.returned.lock().ok().and_then(|mut r| r.pop()) {
            return Ok(entry);
        }
        let mut cursor = self.cursor.lock().await;
        if cursor.as_ref().is_none_or(|c| c.next >= c.block.end) {
            let fresh_key = countersign_jose::random_b64url(32);
            let block = store
                .reserve_status_block(BLOCK, LIST_CAPACITY, &fresh_key, now_ms)
                .await?;
            let key = countersign_jose::b64url_decode(&block.perm_key)
                .ok_or_else(|| StoreError::Corrupt(format!("status list {} key", block.list_id)))?;
            let next = block.start;
            *cursor = Some(Cursor { block, key, next });
        }
        let c = cursor
            .as_mut()
            .ok_or_else(|| StoreError::Corrupt("status allocator".into()))?;
        let idx = permute(&c.key, c.block.capacity, c.next);
        c.next += 1;
        Ok((c.block.list_id, idx))
    }

    /// Gives back an entry whose token was not issued after all (e.g. a poll that found the
    /// request still pending), so lists do not fill with unused entries.
    pub fn give_back(&self, entry: (i64, i64)) {
        if let Ok(mut returned) = self.returned.lock()
            && returned.len() < 4096
        {
            returned.push(entry);
        }
    }
}

pub fn list_uri(issuer: &str, list_id: i64) -> String {
    format!("{issuer}/status-lists/{list_id}")
}

/// Packs revoked indexes into the draft's byte array (1 bit per entry, entry `i` in bit
/// `i % 8` of byte `i / 8`, least significant first) and ZLIB-compresses it.
pub fn encode_bits(capacity: i64, revoked: &[i64]) -> Result<Vec<u8>, std::io::Error> {
    let mut bytes = vec![0u8; usize::try_from(capacity.max(0)).unwrap_or(0).div_ceil(8)];
    for &idx in revoked {
        if let Some(byte) = usize::try_from(idx).ok().and_then(|i| bytes.get_mut(i / 8)) {
            *byte |= 1 << (idx % 8);
        }
    }
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(&bytes)?;
    encoder.finish()
}

/// Signed status lists, kept until they change: a flood of fetches costs one primary-key
/// read each (the list's revision), not a scan of its revocations, a compression and a
/// signature.
#[derive(Debug, Default)]
pub struct StatusListCache {
    lists: std::sync::Mutex<std::collections::HashMap<i64, CachedList>>,
}

#[derive(Debug, Clone)]
struct CachedList {
    token: String,
    /// The list's revision it shows.
    revision: i64,
    /// When it was signed (Unix seconds): signed again once a `ttl` old, so its `exp`
    /// (ten `ttl`s after) is always far off.
    iat: i64,
}

/// Most lists cached (each is a few hundred bytes to a few KiB).
const CACHED_LISTS: usize = 1_024;

/// The signed list for `list_id`, from the cache while its revision has not moved.
pub async fn status_list(
    ctx: &Issuing<'_>,
    cache: &StatusListCache,
    list_id: i64,
) -> Result<Option<String>, CredentialError> {
    let Some(revision) = ctx.store.status_list_revision(list_id).await? else {
        return Ok(None);
    };
    let now = ctx.now_ms.div_euclid(1000);
    let ttl = ctx.tokens.status_list_ttl_secs as i64;
    if let Ok(lists) = cache.lists.lock()
        && let Some(c) = lists.get(&list_id)
        && c.revision == revision
        && now.saturating_sub(c.iat) < ttl.max(1)
    {
        return Ok(Some(c.token.clone()));
    }
    let Some(token) = status_list_token(ctx, list_id).await? else {
        return Ok(None);
    };
    if let Ok(mut lists) = cache.lists.lock() {
        if lists.len() >= CACHED_LISTS {
            lists.clear();
        }
        lists.insert(
            list_id,
            CachedList {
                token: token.clone(),
                revision,
                iat: now,
            },
        );
    }
    Ok(Some(token))
}

/// The signed `statuslist+jwt` for `list_id`, or `None` when there is no such list.
pub async fn status_list_token(
    ctx: &Issuing<'_>,
    list_id: i64,
) -> Result<Option<String>, CredentialError> {
    let Some(capacity) = ctx.store.status_list_capacity(list_id).await? else {
        return Ok(None);
    };
    let revoked = ctx.store.revoked_status_indexes(list_id).await?;
    let lst =
        encode_bits(capacity, &revoked).map_err(|e| CredentialError::Encoding(e.to_string()))?;
    let now = ctx.now_ms.div_euclid(1000);
    let ttl = ctx.tokens.status_list_ttl_secs as i64;
    let claims = json!({
        "sub": list_uri(ctx.issuer, list_id),
        "iss": ctx.issuer,
        "iat": now,
        "exp": now + 10 * ttl,
        "ttl": ttl,
        "status_list": { "bits": 1, "lst": countersign_jose::b64url_encode(lst) },
    });
    Ok(Some(ctx.keys.active().sign("statuslist+jwt", &claims)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::io::Read as _;

    #[test]
    fn permutation_is_a_bijection_that_hides_order() {
        for capacity in [8, 1000, 1 << 12] {
            let seen: HashSet<i64> = (0..capacity)
                .map(|c| permute(b"key", capacity, c))
                .collect();
            assert_eq!(seen.len() as i64, capacity, "capacity {capacity}");
            assert!(seen.iter().all(|i| (0..capacity).contains(i)));
        }
        let first: Vec<i64> = (0..8).map(|c| permute(b"key", LIST_CAPACITY, c)).collect();
        assert_ne!(
            first,
            (0..8).collect::<Vec<_>>(),
            "consecutive counters must not give consecutive indexes"
        );
        assert_ne!(
            permute(b"key", LIST_CAPACITY, 0),
            permute(b"other", LIST_CAPACITY, 0)
        );
    }

    #[test]
    fn bits_are_least_significant_first_and_zlib_compressed() {
        let packed = encode_bits(16, &[0, 3, 9]).unwrap();
        let mut bytes = Vec::new();
        flate2::read::ZlibDecoder::new(&packed[..])
            .read_to_end(&mut bytes)
            .unwrap();
        assert_eq!(bytes, vec![0b0000_1001, 0b0000_0010]);
    }
}
