//! This deployment's own protected resources (the MCP gateway at `/mcp`, the AuthZEN API
//! at `/access/v1`) as OAuth resource servers: the access token a caller presents
//! (RFC 6750 `Bearer`, or RFC 9449 `DPoP` with its proof) checked for the resource it was
//! issued for, and the client it names still registered, enabled and under its rate.

use std::collections::HashMap;
use std::sync::Mutex;

use countersign_gateway::{PresentedToken, TokenRefused};

use super::keys::KeyRing;
use super::{dpop, resource_token};
use crate::limits::Limits;
use crate::store::Store;
use crate::store::clients::ClientRecord;

/// Most verified tokens remembered; past it the memory starts over.
const REMEMBERED: usize = 10_000;

/// Tokens whose signature and claims were checked, by SHA-256, with the resource they were
/// checked for: a caller presents the same token with every request, and an ECDSA
/// verification is most of the cost of checking it. Expiry, the DPoP proof and the
/// client's standing are still checked every time.
#[derive(Default)]
pub struct VerifiedTokens {
    by_digest: Mutex<HashMap<[u8; 32], (String, resource_token::ResourceToken)>>,
}

impl VerifiedTokens {
    fn get(&self, digest: &[u8; 32], resource: &str) -> Option<resource_token::ResourceToken> {
        let map = self.by_digest.lock().unwrap_or_else(|p| p.into_inner());
        map.get(digest)
            .filter(|(checked_for, _)| checked_for == resource)
            .map(|(_, claims)| claims.clone())
    }

    fn remember(&self, digest: [u8; 32], resource: &str, claims: resource_token::ResourceToken) {
        let mut map = self.by_digest.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= REMEMBERED {
            map.clear();
        }
        map.insert(digest, (resource.to_owned(), claims));
    }
}

/// What checking a presented access token works with, now.
pub struct Guarding<'a> {
    pub issuer: &'a str,
    pub keys: &'a KeyRing,
    pub store: &'a Store,
    pub verified_tokens: &'a VerifiedTokens,
    pub limits: &'a Limits,
    /// The acceptance window for DPoP proofs; its `now` and `skew` also bound the token.
    pub window: dpop::ProofWindow,
    pub now_ms: i64,
}

/// The client `token` was issued to for `resource`, if it may use it now.
pub async fn authenticate(
    guard: &Guarding<'_>,
    resource: &str,
    token: PresentedToken<'_>,
) -> Result<ClientRecord, TokenRefused> {
    let now_s = guard.window.now;
    let skew = guard.window.skew;
    let digest = countersign_jose::sha256(token.token.as_bytes());
    let claims = match guard.verified_tokens.get(&digest, resource) {
        Some(claims) if claims.expires_at_s.saturating_add(skew) > now_s => claims,
        _ => {
            let claims = resource_token::verify(
                token.token,
                &guard.keys.jwks(),
                guard.issuer,
                resource,
                now_s,
                skew,
            )
            .map_err(TokenRefused::InvalidToken)?;
            guard
                .verified_tokens
                .remember(digest, resource, claims.clone());
            claims
        }
    };
    match (&claims.jkt, token.scheme) {
        (Some(jkt), "DPoP") => {
            let proof = token
                .dpop_proof
                .ok_or_else(|| TokenRefused::InvalidDpopProof("a DPoP proof is required".into()))?;
            let checked = dpop::check_proof(proof, token.method, token.url, guard.window)
                .map_err(|e| TokenRefused::InvalidDpopProof(e.to_string()))?;
            if &checked.jkt != jkt {
                return Err(TokenRefused::InvalidDpopProof(
                    "the proof is not signed by the key the token is bound to".into(),
                ));
            }
            if checked.ath.as_deref() != Some(resource_token::ath(token.token).as_str()) {
                return Err(TokenRefused::InvalidDpopProof(
                    "the proof's ath is not this token's hash".into(),
                ));
            }
            dpop::remember(guard.store, guard.window, &checked)
                .await
                .map_err(|e| match e {
                    dpop::DpopError::Invalid(m) => TokenRefused::InvalidDpopProof(m),
                    dpop::DpopError::Store(s) => TokenRefused::Unavailable(s.to_string()),
                })?;
        }
        (Some(_), _) => {
            return Err(TokenRefused::InvalidToken(
                "this token is DPoP-bound: send it as Authorization: DPoP with a proof".into(),
            ));
        }
        (None, "Bearer") => {}
        (None, _) => {
            return Err(TokenRefused::InvalidToken(
                "this token is a bearer token: send it as Authorization: Bearer".into(),
            ));
        }
    }
    if let Err(crate::limits::RetryAfter(secs)) = guard
        .limits
        .per_client
        .check(&claims.client_id, guard.now_ms)
    {
        metrics::counter!("countersign_rate_limited_total", "limit" => "client").increment(1);
        return Err(TokenRefused::RateLimited(secs));
    }
    match guard.store.client(&claims.client_id).await {
        Ok(Some(client)) if client.enabled => Ok(client),
        Ok(_) => Err(TokenRefused::InvalidToken(
            "the client is not registered or is disabled".into(),
        )),
        Err(e) => Err(TokenRefused::Unavailable(e.to_string())),
    }
}
