//! Signed checkpoints of the audit chain. The chain alone shows an edited, inserted,
//! reordered or deleted event, but someone who can write the database could cut off the
//! newest events and rewrite the head row to match. A checkpoint is the server's signed
//! statement "event `seq` has hash `h`", taken periodically; `audit verify` checks every
//! checkpoint it can (signed by a key the server still publishes) against the trail.

use countersign_jose::{JwkSet, UnverifiedJws};
use serde::{Deserialize, Serialize};

use crate::state::AppState;
use crate::store::audit::CheckpointRecord;
use crate::store::{Store, StoreError};

pub const CHECKPOINT_TYP: &str = "audit-checkpoint+jwt";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointClaims {
    pub iss: String,
    pub seq: i64,
    pub hash: String,
    pub iat: i64,
}

/// Signs the current head if it moved since the last checkpoint; returns the checkpoint's
/// sequence number when one was written.
pub async fn sign_head(state: &AppState) -> Result<Option<i64>, StoreError> {
    let head = state.store.audit_head().await?;
    if head.seq == 0 {
        return Ok(None);
    }
    let latest = state.store.audit_checkpoints().await?.last().map(|c| c.seq);
    if latest.is_some_and(|seq| seq >= head.seq) {
        return Ok(None);
    }
    let claims = CheckpointClaims {
        iss: state.issuer.to_string(),
        seq: head.seq,
        hash: head.hash.clone(),
        iat: state.clock.now_secs(),
    };
    let jws = state
        .keys
        .active()
        .sign(CHECKPOINT_TYP, &claims)
        .map_err(|e| StoreError::Corrupt(format!("signing an audit checkpoint: {e}")))?;
    state
        .store
        .insert_audit_checkpoint(&CheckpointRecord {
            seq: head.seq,
            hash: head.hash,
            at: state.now_ms(),
            jws,
        })
        .await?;
    Ok(Some(head.seq))
}

/// What checking the checkpoints found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointCheck {
    pub verified: i64,
    /// Signed by a key the server no longer publishes.
    pub unverifiable: i64,
    /// The first checkpoint the trail contradicts, and why.
    pub broken: Option<(i64, String)>,
}

/// Checks every checkpoint against `hash_at` (the trail's hash of event `seq`, `None` when
/// the trail has no such event), with the signatures checked against `jwks`.
pub async fn check(
    store: &Store,
    jwks: &JwkSet,
    hash_at: impl Fn(i64) -> Option<String>,
) -> Result<CheckpointCheck, StoreError> {
    let mut out = CheckpointCheck::default();
    for c in store.audit_checkpoints().await? {
        let Ok(jws) = UnverifiedJws::parse(&c.jws) else {
            out.broken
                .get_or_insert((c.seq, "a checkpoint is not a JWS".into()));
            continue;
        };
        let known = jws
            .header
            .kid
            .as_ref()
            .is_some_and(|kid| jwks.keys.iter().any(|k| k.kid.as_ref() == Some(kid)));
        if !known {
            out.unverifiable += 1;
            continue;
        }
        let claims: CheckpointClaims = match jws.verify_with_set(jwks) {
            Ok(claims) => claims,
            Err(e) => {
                out.broken
                    .get_or_insert((c.seq, format!("checkpoint {}'s signature: {e}", c.seq)));
                continue;
            }
        };
        if claims.seq != c.seq || claims.hash != c.hash {
            out.broken.get_or_insert((
                c.seq,
                format!("checkpoint {} was altered after signing", c.seq),
            ));
            continue;
        }
        match hash_at(c.seq) {
            Some(h) if h == claims.hash => out.verified += 1,
            Some(_) => {
                out.broken.get_or_insert((
                    c.seq,
                    format!("event {} differs from the signed checkpoint", c.seq),
                ));
            }
            None => {
                out.broken.get_or_insert((
                    c.seq,
                    format!(
                        "event {} was signed in a checkpoint but is no longer in the trail",
                        c.seq
                    ),
                ));
            }
        }
    }
    Ok(out)
}
