//! DPoP proofs (RFC 9449 §4.3): at the token endpoint, and presented to a tool and
//! forwarded with a credential's recorded use.

use countersign_jose::{UnverifiedJws, thumbprint};
use countersign_shared::dpop::normalize_htu;
use serde::Deserialize;

use crate::config::CibaConfig;
use crate::store::Store;
use crate::store::StoreError;

/// Longest accepted proof `jti`: it keys the replay cache, so an attacker's 1 MB `jti`
/// must not become a 1 MB cache key. RFC 9449 asks for 96 bits of randomness; 128
/// characters leave room for any encoding of that.
pub const MAX_JTI_LEN: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum DpopError {
    #[error("invalid DPoP proof: {0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Deserialize)]
struct ProofClaims {
    jti: Option<String>,
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<f64>,
    ath: Option<String>,
}

fn invalid(reason: impl Into<String>) -> DpopError {
    DpopError::Invalid(reason.into())
}

/// A proof whose signature, method, URL and age checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedProof {
    /// RFC 7638 thumbprint of the key that signed it.
    pub jkt: String,
    pub jti: String,
    /// Unix seconds.
    pub iat: i64,
    /// The access token hash it was made for, if any.
    pub ath: Option<String>,
}

/// The acceptance window for a proof's `iat`.
#[derive(Debug, Clone, Copy)]
pub struct ProofWindow {
    pub now: i64,
    pub skew: i64,
    pub max_age: i64,
}

/// Checks `proof` for a request with method `htm` to `htu` within `window`; records
/// nothing (the caller decides how a replay is refused).
pub fn check_proof(
    proof: &str,
    htm: &str,
    htu: &str,
    window: ProofWindow,
) -> Result<CheckedProof, DpopError> {
    let jws = UnverifiedJws::parse(proof).map_err(|e| invalid(e.to_string()))?;
    if jws.header.typ.as_deref() != Some("dpop+jwt") {
        return Err(invalid("typ must be dpop+jwt"));
    }
    let jwk = jws
        .header
        .jwk
        .as_ref()
        .ok_or_else(|| invalid("the header must carry the public jwk"))?;
    jws.verify_jwk(jwk).map_err(|e| invalid(e.to_string()))?;
    let jkt = thumbprint(jwk).map_err(|e| invalid(e.to_string()))?;
    let claims: ProofClaims = jws.insecure_claims().map_err(|e| invalid(e.to_string()))?;
    if claims.htm.as_deref() != Some(htm) {
        return Err(invalid(format!("htm must be {htm}")));
    }
    if claims.htu.as_deref().map(normalize_htu) != Some(normalize_htu(htu)) {
        return Err(invalid(format!("htu must be {htu}")));
    }
    // Float to integer saturates; every bound below is computed without overflow.
    let iat = claims.iat.ok_or_else(|| invalid("iat is required"))? as i64;
    if iat > window.now.saturating_add(window.skew)
        || iat < window.now.saturating_sub(window.max_age)
    {
        return Err(invalid("iat is outside the accepted window"));
    }
    let jti = claims
        .jti
        .filter(|j| !j.is_empty() && j.len() <= MAX_JTI_LEN)
        .ok_or_else(|| invalid(format!("jti is required, at most {MAX_JTI_LEN} characters")))?;
    Ok(CheckedProof {
        jkt,
        jti,
        iat,
        ath: claims.ath,
    })
}

impl ProofWindow {
    /// The configured acceptance window at `now_secs`.
    pub fn at(ciba: &CibaConfig, now_secs: i64) -> Self {
        Self {
            now: now_secs,
            skew: ciba.clock_skew_secs as i64,
            max_age: ciba.dpop_max_age_secs as i64,
        }
    }
}

/// Records a checked proof's `jti` (per key) and refuses it if it was seen before. Call
/// it only once the key is known to belong to someone (a client that authenticated, an
/// enrolled device, a live invitation): an anonymous caller's proofs must not fill the
/// replay cache.
pub async fn remember(
    store: &Store,
    w: ProofWindow,
    checked: &CheckedProof,
) -> Result<(), DpopError> {
    let fresh = store
        .remember_jti(
            &format!("dpop:{}", checked.jkt),
            &checked.jti,
            checked
                .iat
                .saturating_add(w.max_age)
                .saturating_add(w.skew)
                .saturating_mul(1000),
        )
        .await?;
    if fresh {
        Ok(())
    } else {
        Err(invalid("jti was already used (replay)"))
    }
}

/// Validates `proof` for a request with method `htm` to `htu`, refuses a replayed `jti`,
/// and returns the JWK thumbprint (`jkt`) the issued token must be bound to. For callers
/// already authenticated otherwise (the token endpoint's client).
pub async fn verify_proof(
    store: &Store,
    window: ProofWindow,
    proof: &str,
    htm: &str,
    htu: &str,
) -> Result<String, DpopError> {
    let checked = check_proof(proof, htm, htu, window)?;
    remember(store, window, &checked).await?;
    Ok(checked.jkt)
}
