//! DPoP proofs presented with a credential at a resource (RFC 9449 §4.3 and §7.1).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use countersign_jose::{UnverifiedJws, VerifyKey, thumbprint};
use countersign_shared::dpop::normalize_htu;
use serde::Deserialize;

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
    /// The `ath` the proof must carry: base64url SHA-256 of the credential.
    pub ath: &'a str,
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
    if claims.ath.as_deref() != Some(ctx.ath) {
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
    /// The latest expiry among entries forgotten before they expired. Any proof expiring
    /// no later than this might be one of them, so it is refused as too old.
    floor: i64,
}

/// The outcome of recording a proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    First,
    Replayed,
    /// Older than what the bounded cache can still vouch for.
    TooOld,
}

/// Remembers proof identifiers until they expire, in bounded memory. When full it forgets
/// the oldest entry and raises a floor below which proofs are refused, so a forgotten proof
/// can never be replayed: bounded memory narrows the accepted window instead of weakening
/// replay protection.
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

    /// Records `id` until `expires`.
    pub fn first_use(&self, id: String, expires: i64, now: i64) -> Use {
        let Ok(mut guard) = self.inner.lock() else {
            return Use::TooOld;
        };
        let seen = &mut *guard;
        while let Some((_, exp)) = seen.order.front() {
            let expired = *exp < now;
            if !expired && seen.expiry.len() < self.capacity {
                break;
            }
            if let Some((old, exp)) = seen.order.pop_front() {
                if !expired {
                    seen.floor = seen.floor.max(exp);
                }
                seen.expiry.remove(&old);
            }
        }
        if seen.expiry.contains_key(&id) {
            return Use::Replayed;
        }
        if expires <= seen.floor {
            return Use::TooOld;
        }
        seen.expiry.insert(id.clone(), expires);
        seen.order.push_back((id, expires));
        Use::First
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_cache_refuses_repeats_and_stays_bounded() {
        let cache = ReplayCache::new(3);
        assert_eq!(cache.first_use("a".into(), 100, 0), Use::First);
        assert_eq!(cache.first_use("a".into(), 100, 1), Use::Replayed);
        for (id, exp) in [("b", 101), ("c", 102), ("d", 103), ("e", 104)] {
            assert_eq!(cache.first_use(id.into(), exp, 2), Use::First);
        }
        let seen = cache.inner.lock().unwrap();
        assert!(seen.expiry.len() <= 3 && seen.order.len() <= 3);
    }

    #[test]
    fn a_proof_forgotten_for_lack_of_room_cannot_be_replayed() {
        let cache = ReplayCache::new(2);
        assert_eq!(cache.first_use("a".into(), 100, 0), Use::First);
        assert_eq!(cache.first_use("b".into(), 101, 0), Use::First);
        assert_eq!(cache.first_use("c".into(), 102, 0), Use::First); // forgets "a" early
        assert_eq!(
            cache.first_use("a".into(), 100, 0),
            Use::TooOld,
            "a replay of the forgotten proof"
        );
        assert_eq!(
            cache.first_use("x".into(), 100, 0),
            Use::TooOld,
            "as old as the forgotten one"
        );
        assert_eq!(
            cache.first_use("y".into(), 150, 0),
            Use::First,
            "newer proofs are fine"
        );
    }

    #[test]
    fn expired_entries_are_forgotten_without_raising_the_floor() {
        let cache = ReplayCache::new(10);
        assert_eq!(cache.first_use("a".into(), 5, 0), Use::First);
        assert_eq!(cache.first_use("b".into(), 20, 6), Use::First);
        assert_eq!(cache.inner.lock().unwrap().floor, 0);
    }
}
