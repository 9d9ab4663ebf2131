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
#[cfg(feature = "rs256")]
mod rsa;
mod verify_key;

pub use b64::{b64url_decode, b64url_encode, random_b64url};
pub use hash::sha256;
pub use jwk::{Jwk, JwkSet, thumbprint};
pub use jws::{Header, SigningKeyPair, UnverifiedJws, sha256_half_b64url};
pub use verify_key::VerifyKey;

/// The only signature algorithm Countersign issues, and the only one it accepts unless a
/// caller asks for more ([`UnverifiedJws::parse_accepting`]).
pub const ES256: &str = "ES256";
/// RSASSA-PKCS1-v1_5 with SHA-256: accepted only where a caller asks for it (Security
/// Event Tokens from identity providers, which sign with RSA), with feature `rs256`.
pub const RS256: &str = "RS256";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JoseError {
    #[error("not a compact JWS (expected three base64url segments)")]
    Malformed,
    #[error("invalid base64url in {0}")]
    Base64(&'static str),
    #[error("invalid JSON in {0}: {1}")]
    Json(&'static str, String),
    #[error("algorithm {0:?} is not accepted here")]
    UnsupportedAlgorithm(String),
    #[error("critical header parameters are not understood: {0:?}")]
    UnsupportedCritical(Vec<String>),
    #[error("JWK is not a usable public key: {0}")]
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
