//! DPoP proof validation at the token endpoint (RFC 9449 §4.3).

use countersign_jose::{UnverifiedJws, thumbprint};
use countersign_shared::dpop::normalize_htu;
use serde::Deserialize;

use crate::state::AppState;
use crate::store::StoreError;

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
}

fn invalid(reason: impl Into<String>) -> DpopError {
    DpopError::Invalid(reason.into())
}

/// Validates `proof` for a request with method `htm` to `htu` and returns the JWK
/// thumbprint (`jkt`) the issued token must be bound to.
pub async fn verify_proof(
    state: &AppState,
    proof: &str,
    htm: &str,
    htu: &str,
) -> Result<String, DpopError> {
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
    let now = state.clock.now_secs();
    let skew = state.config.ciba.clock_skew_secs as i64;
    let max_age = state.config.ciba.dpop_max_age_secs as i64;
    let iat = claims.iat.ok_or_else(|| invalid("iat is required"))? as i64;
    if iat > now + skew || iat < now - max_age {
        return Err(invalid("iat is outside the accepted window"));
    }
    let jti = claims
        .jti
        .filter(|j| !j.is_empty())
        .ok_or_else(|| invalid("jti is required"))?;
    let fresh = state
        .store
        .remember_jti(&format!("dpop:{jkt}"), &jti, (iat + max_age + skew) * 1000)
        .await?;
    if !fresh {
        return Err(invalid("jti was already used (replay)"));
    }
    Ok(jkt)
}
