//! Online use counting: a tool running on several hosts records each accepted call at
//! the issuer (`POST /credentials/{id}/uses`), so a single-use credential spent on one
//! host is spent on all. The call is authenticated the way the tool received it: the
//! credential itself (signed by this server, live) and, for a key-bound credential, the
//! agent's DPoP proof for the tool's call, made for this credential (`ath`). The proof
//! identifies the use: the same proof reported twice is one use.

use countersign_jose::{UnverifiedJws, b64url_encode, sha256};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::Issuing;
use crate::config::CibaConfig;
use crate::oidc::dpop::{self, ProofWindow};
use crate::store::StoreError;
use crate::store::credential_uses::UseRecorded;

/// The tool's call the use was for (the proof's `htm` and `htu`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UseReport {
    #[schema(max_length = 16)]
    pub htm: String,
    #[schema(max_length = 2048)]
    pub htu: String,
}

/// A recorded use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UseCounted {
    /// Which use this was (1 for the first).
    pub uses: i64,
    /// How many the credential allows: a count or `"unlimited"`.
    #[schema(value_type = Object)]
    pub max_uses: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum UseError {
    /// Not a live credential of this server (unknown, forged, revoked or expired).
    #[error("{0}")]
    InvalidToken(String),
    #[error("{0}")]
    InvalidProof(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("the credential was already used {max_uses} time(s), as often as it may be")]
    LimitReached { max_uses: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Deserialize)]
struct CredentialClaims {
    jti: Option<String>,
    iss: Option<String>,
    cnf: Option<Cnf>,
}

#[derive(Deserialize)]
struct Cnf {
    jkt: Option<String>,
}

/// The presented credential and proof, as the tool received them.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    /// The `jti` the URL names.
    pub id: &'a str,
    pub credential: &'a str,
    pub proof: Option<&'a str>,
}

/// Records one use of the presented credential for `report`'s call.
pub async fn record_use(
    ctx: &Issuing<'_>,
    ciba: &CibaConfig,
    presented: Presented<'_>,
    report: &UseReport,
) -> Result<UseCounted, UseError> {
    if report.htm.is_empty() || report.htm.len() > 16 || report.htu.len() > 2048 {
        return Err(UseError::InvalidRequest(
            "htm (at most 16 characters) and htu (at most 2048) name the tool's call".into(),
        ));
    }
    let invalid = |m: &str| UseError::InvalidToken(m.to_owned());
    let (jti, bound) = credential_of(ctx, presented)?;
    let use_key = match bound {
        Some(jkt) => {
            let window = ProofWindow {
                now: ctx.now_ms.div_euclid(1000),
                skew: ciba.clock_skew_secs as i64,
                max_age: ciba.dpop_max_age_secs as i64,
            };
            proved_use(presented, report, &jkt, window)?
        }
        // A bearer credential (its agent was registered bearer-only): every report is a
        // use of its own.
        None => format!("bearer:{}", countersign_jose::random_b64url(16)),
    };
    match ctx
        .store
        .record_credential_use(&jti, &use_key, ctx.now_ms)
        .await?
    {
        UseRecorded::Counted { n, max_uses } | UseRecorded::Repeated { n, max_uses } => {
            Ok(UseCounted {
                uses: n,
                max_uses: super::vc::max_uses_claim(crate::store::auth_requests::MaxUses(max_uses)),
            })
        }
        UseRecorded::LimitReached { max_uses } => Err(UseError::LimitReached { max_uses }),
        UseRecorded::NotLive => Err(invalid(
            "the credential is revoked, expired or unknown to this server",
        )),
    }
}

/// The presented credential's `jti` and bound key, once it is shown to be one of ours
/// with the id the URL names.
fn credential_of(
    ctx: &Issuing<'_>,
    presented: Presented<'_>,
) -> Result<(String, Option<String>), UseError> {
    let invalid = |m: &str| UseError::InvalidToken(m.to_owned());
    let jws = UnverifiedJws::parse(presented.credential)
        .map_err(|_| invalid("not a credential of this server"))?;
    if jws.header.typ.as_deref() != Some("vc+jwt") {
        return Err(invalid("not a credential of this server"));
    }
    let claims: CredentialClaims = jws
        .verify_with_set(&ctx.keys.jwks())
        .map_err(|_| invalid("not a credential of this server"))?;
    if claims.iss.as_deref() != Some(ctx.issuer) {
        return Err(invalid("not a credential of this server"));
    }
    let jti = claims
        .jti
        .ok_or_else(|| invalid("the credential has no jti"))?;
    if jti != presented.id {
        return Err(UseError::InvalidRequest(
            "the URL names another credential than the one presented".into(),
        ));
    }
    Ok((jti, claims.cnf.and_then(|c| c.jkt)))
}

/// The use a DPoP-bound credential's forwarded proof names (one per proof), once the
/// proof is shown to be by its key, for this call and this credential.
fn proved_use(
    presented: Presented<'_>,
    report: &UseReport,
    jkt: &str,
    window: ProofWindow,
) -> Result<String, UseError> {
    let proof = presented.proof.ok_or_else(|| {
        UseError::InvalidProof(
            "the credential is DPoP-bound: forward the DPoP proof the tool received".into(),
        )
    })?;
    let checked = dpop::check_proof(proof, &report.htm, &report.htu, window)
        .map_err(|e| UseError::InvalidProof(e.to_string()))?;
    if checked.jkt != jkt {
        return Err(UseError::InvalidProof(
            "the proof is signed by another key than the credential is bound to".into(),
        ));
    }
    let ath = b64url_encode(sha256(presented.credential.as_bytes()));
    if checked.ath.as_deref() != Some(ath.as_str()) {
        return Err(UseError::InvalidProof(
            "the proof's ath is not this credential's hash".into(),
        ));
    }
    Ok(format!("dpop:{}", checked.jti))
}
