//! DPoP proofs presented with a credential at a resource (RFC 9449 §4.3 and §7.1).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use countersign_jose::{UnverifiedJws, VerifyKey, b64url_encode, thumbprint};
use countersign_shared::dpop::normalize_htu;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::Rejection;

#[derive(Deserialize)]
struct ProofClaims {
    jti: Option<String>,
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<i64>,
    ath: Option<String>,
}

/// What the call looked like, to compare the proof with.
pub struct ProofContext<'a> {
    pub credential: &'a str,
    pub bound_jkt: &'a str,
    pub method: &'a str,
    pub url: &'a str,
    pub now: i64,
    pub max_age: i64,
    pub leeway: i64,
}

/// Checks everything about the proof except replay; returns its `jti` and expiry.
pub fn check(proof: &str, ctx: &ProofContext<'_>) -> Result<(String, i64), Rejection> {
    let invalid = |m: &str| Rejection::DpopInvalid(m.to_owned());
    let jws = UnverifiedJws::parse(proof).map_err(|e| Rejection::DpopInvalid(e.to_string()))?;
    if jws.header.typ.as_deref() != Some("dpop+jwt") {
        return Err(invalid("typ must be dpop+jwt"));
    }
    let jwk = jws
        .header
        .jwk
        .as_ref()
        .ok_or_else(|| invalid("the header must carry the public jwk"))?;
    let jkt = thumbprint(jwk).map_err(|e| Rejection::DpopInvalid(e.to_string()))?;
    if jkt != ctx.bound_jkt {
        return Err(Rejection::DpopKeyMismatch);
    }
    let key = VerifyKey::from_jwk(jwk).map_err(|e| Rejection::DpopInvalid(e.to_string()))?;
    jws.verify_key(&key)
        .map_err(|_| invalid("signature does not verify"))?;
    let claims: ProofClaims = jws
        .insecure_claims()
        .map_err(|e| Rejection::DpopInvalid(e.to_string()))?;
    let htm = claims.htm.unwrap_or_default();
    if htm != ctx.method {
        return Err(Rejection::DpopWrongMethod {
            expected: ctx.method.to_owned(),
            found: htm,
        });
    }
    let htu = claims.htu.unwrap_or_default();
    if normalize_htu(&htu) != normalize_htu(ctx.url) {
        return Err(Rejection::DpopWrongUrl {
            expected: ctx.url.to_owned(),
            found: htu,
        });
    }
    let ath = b64url_encode(Sha256::digest(ctx.credential.as_bytes()));
    if claims.ath.as_deref() != Some(ath.as_str()) {
        return Err(Rejection::DpopWrongAth);
    }
    let iat = claims.iat.ok_or_else(|| invalid("iat is required"))?;
    if iat > ctx.now + ctx.leeway || iat < ctx.now - ctx.max_age {
        return Err(invalid("iat is outside the accepted window"));
    }
    let jti = claims
        .jti
        .filter(|j| !j.is_empty())
        .ok_or_else(|| invalid("jti is required"))?;
    Ok((format!("{jkt}:{jti}"), iat + ctx.max_age + ctx.leeway))
}

/// Seen identifiers with their expiry, and the order they arrived in.
#[derive(Default)]
struct Seen {
    expiry: HashMap<String, i64>,
    order: VecDeque<(String, i64)>,
}

/// Remembers proof identifiers until they expire, in bounded memory: when full, the oldest
/// entries are forgotten first (a proof older than `max_age` is refused anyway).
pub struct ReplayCache {
    capacity: usize,
    inner: Mutex<Seen>,
}

impl ReplayCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(Seen::default()),
        }
    }

    /// Records `id` until `expires`; false when it was already recorded (a replay).
    pub fn first_use(&self, id: String, expires: i64, now: i64) -> bool {
        let Ok(mut guard) = self.inner.lock() else {
            return false;
        };
        let Seen {
            expiry: seen,
            order,
        } = &mut *guard;
        while let Some((old, exp)) = order.front() {
            if *exp >= now && seen.len() < self.capacity {
                break;
            }
            seen.remove(old);
            order.pop_front();
        }
        if seen.contains_key(&id) {
            return false;
        }
        seen.insert(id.clone(), expires);
        order.push_back((id, expires));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_cache_refuses_repeats_and_stays_bounded() {
        let cache = ReplayCache::new(3);
        assert!(cache.first_use("a".into(), 100, 0));
        assert!(!cache.first_use("a".into(), 100, 1));
        for id in ["b", "c", "d", "e"] {
            assert!(cache.first_use(id.into(), 100, 2));
        }
        let Seen {
            expiry: seen,
            order,
        } = &*cache.inner.lock().unwrap();
        assert!(seen.len() <= 3 && order.len() <= 3);
    }

    #[test]
    fn expired_entries_are_forgotten() {
        let cache = ReplayCache::new(10);
        assert!(cache.first_use("a".into(), 5, 0));
        assert!(
            cache.first_use("a".into(), 20, 6),
            "after expiry the id is forgotten (and refused by iat anyway)"
        );
    }
}
