//! Countersign's one JOSE implementation.
//!
//! Deliberately narrow: compact JWS signed with ES256 (ECDSA P-256 / SHA-256), P-256 public
//! JWKs, and RFC 7638 thumbprints. Everything else (`none`, HMAC, RSA, unknown `crit`
//! extensions, JWE) is refused with an error that says why, so a caller can never be talked
//! into a weaker algorithm by a token header.

mod b64;
mod hash;
mod jwk;
mod jws;
mod verify_key;

pub use b64::{b64url_decode, b64url_encode, random_b64url};
pub use hash::sha256;
pub use jwk::{Jwk, JwkSet, thumbprint};
pub use jws::{Header, SigningKeyPair, UnverifiedJws, sha256_half_b64url};
pub use verify_key::VerifyKey;

/// The only signature algorithm Countersign issues or accepts.
pub const ES256: &str = "ES256";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JoseError {
    #[error("not a compact JWS (expected three base64url segments)")]
    Malformed,
    #[error("invalid base64url in {0}")]
    Base64(&'static str),
    #[error("invalid JSON in {0}: {1}")]
    Json(&'static str, String),
    #[error("algorithm {0:?} is not accepted (only ES256)")]
    UnsupportedAlgorithm(String),
    #[error("critical header parameters are not understood: {0:?}")]
    UnsupportedCritical(Vec<String>),
    #[error("JWK is not a P-256 EC public key: {0}")]
    InvalidKey(&'static str),
    #[error("JWK must not contain private key material")]
    PrivateKeyInJwk,
    #[error("signature does not verify")]
    BadSignature,
    #[error("no key in the set matches the token")]
    NoMatchingKey,
    #[error("key material could not be read")]
    KeyMaterial,
}
