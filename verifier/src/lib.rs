//! Offline verification of Countersign credentials, for tools and gateways.
//!
//! A credential is a W3C Verifiable Credential secured as a JWT (`typ: vc+jwt`, ES256).
//! The verifier checks the signature against the issuer's JWKS (fetched and cached by the
//! caller), the issuer and the validity window, and returns who approved, the approved
//! `authorization_details` and the DPoP key binding so the tool can check the call fits
//! what was approved. No async, no network, no allocation-heavy dependencies.

use countersign_jose::{JoseError, JwkSet, UnverifiedJws};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum VerifyError {
    #[error("token rejected: {0}")]
    Jose(#[from] JoseError),
    #[error("token type must be vc+jwt, got {0:?}")]
    WrongType(Option<String>),
    #[error("issued by {found:?}, expected {expected:?}")]
    WrongIssuer {
        expected: String,
        found: Option<String>,
    },
    #[error("expired at {exp} (now {now})")]
    Expired { exp: i64, now: i64 },
    #[error("not valid before {nbf} (now {now})")]
    NotYetValid { nbf: i64, now: i64 },
    #[error("required claim {0} is missing")]
    MissingClaim(&'static str),
}

#[derive(Debug, Deserialize)]
struct Claims {
    iss: Option<String>,
    client_id: Option<String>,
    exp: Option<i64>,
    nbf: Option<i64>,
    jti: Option<String>,
    #[serde(default, rename = "credentialSubject")]
    subject: Option<CredentialSubject>,
    #[serde(default)]
    evidence: Vec<Evidence>,
    #[serde(default)]
    cnf: Option<Confirmation>,
}

#[derive(Debug, Deserialize)]
struct CredentialSubject {
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    authorization_details: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Evidence {
    approver: Option<Approver>,
}

#[derive(Debug, Deserialize)]
struct Approver {
    subject: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Confirmation {
    jkt: Option<String>,
}

/// What a verified credential says.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    /// The human whose approval the credential records.
    pub subject: String,
    /// The agent (OAuth client) holding it.
    pub client_id: String,
    pub token_id: String,
    pub expires_at: i64,
    pub scope: String,
    /// RFC 9396 details exactly as approved.
    pub authorization_details: Option<Value>,
    /// RFC 9449 thumbprint of the key the holder must prove possession of, when bound.
    pub dpop_jkt: Option<String>,
}

/// Verifies credentials of one issuer with its key set.
#[derive(Debug, Clone)]
pub struct Verifier {
    issuer: String,
    keys: JwkSet,
    /// Tolerated clock difference, seconds.
    pub leeway_secs: i64,
}

impl Verifier {
    pub fn new(issuer: impl Into<String>, keys: JwkSet) -> Self {
        Self {
            issuer: issuer.into(),
            keys,
            leeway_secs: 30,
        }
    }

    /// Verifies `token` at Unix time `now` (seconds).
    pub fn verify(&self, token: &str, now: i64) -> Result<VerifiedToken, VerifyError> {
        let jws = UnverifiedJws::parse(token)?;
        if jws.header.typ.as_deref() != Some("vc+jwt") {
            return Err(VerifyError::WrongType(jws.header.typ.clone()));
        }
        let claims: Claims = jws.verify_with_set(&self.keys)?;
        if claims.iss.as_deref() != Some(self.issuer.as_str()) {
            return Err(VerifyError::WrongIssuer {
                expected: self.issuer.clone(),
                found: claims.iss,
            });
        }
        let exp = claims.exp.ok_or(VerifyError::MissingClaim("exp"))?;
        if exp + self.leeway_secs <= now {
            return Err(VerifyError::Expired { exp, now });
        }
        if let Some(nbf) = claims.nbf.filter(|nbf| nbf - self.leeway_secs > now) {
            return Err(VerifyError::NotYetValid { nbf, now });
        }
        let approver = claims
            .evidence
            .into_iter()
            .find_map(|e| e.approver.and_then(|a| a.subject));
        let subject = claims
            .subject
            .ok_or(VerifyError::MissingClaim("credentialSubject"))?;
        Ok(VerifiedToken {
            subject: approver.ok_or(VerifyError::MissingClaim("evidence.approver"))?,
            client_id: claims
                .client_id
                .ok_or(VerifyError::MissingClaim("client_id"))?,
            token_id: claims.jti.ok_or(VerifyError::MissingClaim("jti"))?,
            expires_at: exp,
            scope: subject.scope.unwrap_or_default(),
            authorization_details: subject.authorization_details,
            dpop_jkt: claims.cnf.and_then(|c| c.jkt),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use countersign_jose::SigningKeyPair;
    use serde_json::json;

    fn token(key: &SigningKeyPair, typ: &str, claims: Value) -> String {
        key.sign(typ, &claims).unwrap()
    }

    fn claims() -> Value {
        json!({"iss": "https://as.example", "sub": "agent", "client_id": "agent", "jti": "j", "exp": 1_000,
            "credentialSubject": {"scope": "openid", "authorization_details": [{"type": "purchase_order", "amount": 1200}]},
            "evidence": [{"approver": {"subject": "alice"}}], "cnf": {"jkt": "abc"}})
    }

    #[test]
    fn accepts_a_valid_credential_and_reports_what_was_approved() {
        let key = SigningKeyPair::generate();
        let v = Verifier::new(
            "https://as.example",
            JwkSet {
                keys: vec![key.public_jwk()],
            },
        );
        let ok = v.verify(&token(&key, "vc+jwt", claims()), 900).unwrap();
        assert_eq!(
            (ok.subject.as_str(), ok.client_id.as_str()),
            ("alice", "agent")
        );
        assert_eq!(ok.dpop_jkt.as_deref(), Some("abc"));
        assert_eq!(ok.authorization_details.unwrap()[0]["amount"], 1200);
    }

    #[test]
    fn rejects_expired_foreign_mistyped_and_forged_credentials() {
        let key = SigningKeyPair::generate();
        let v = Verifier::new(
            "https://as.example",
            JwkSet {
                keys: vec![key.public_jwk()],
            },
        );
        assert_eq!(
            v.verify(&token(&key, "vc+jwt", claims()), 1_030),
            Err(VerifyError::Expired {
                exp: 1_000,
                now: 1_030
            })
        );
        assert!(matches!(
            v.verify(&token(&key, "at+jwt", claims()), 0),
            Err(VerifyError::WrongType(_))
        ));
        let mut other_iss = claims();
        other_iss["iss"] = json!("https://evil.example");
        assert!(matches!(
            v.verify(&token(&key, "vc+jwt", other_iss), 0),
            Err(VerifyError::WrongIssuer { .. })
        ));
        let stranger = SigningKeyPair::generate();
        assert!(matches!(
            v.verify(&token(&stranger, "vc+jwt", claims()), 0),
            Err(VerifyError::Jose(_))
        ));
    }
}
