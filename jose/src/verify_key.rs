//! A P-256 public key parsed once, for verifying many signatures with it.

use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};

use crate::{JoseError, Jwk, b64url_decode};

/// An ES256 verification key. With the `ring-verifier` feature, signatures are checked by
/// ring's assembly implementation (which validates the point itself, so building the key
/// does no curve arithmetic); otherwise by the pure-Rust `p256` crate.
#[derive(Debug, Clone)]
pub struct VerifyKey {
    /// Uncompressed SEC1 point `04 || x || y`.
    sec1: Vec<u8>,
    #[cfg(not(feature = "ring-verifier"))]
    key: VerifyingKey,
}

/// `04 || x || y` from a P-256 JWK, checking only its shape.
fn sec1_from_jwk(jwk: &Jwk) -> Result<Vec<u8>, JoseError> {
    if jwk.d.is_some() {
        return Err(JoseError::PrivateKeyInJwk);
    }
    if jwk.kty != "EC" || jwk.crv.as_deref() != Some("P-256") {
        return Err(JoseError::InvalidKey("not an EC P-256 key"));
    }
    let coord = |c: &Option<String>| {
        c.as_deref()
            .and_then(b64url_decode)
            .filter(|b| b.len() == 32)
    };
    let (Some(x), Some(y)) = (coord(&jwk.x), coord(&jwk.y)) else {
        return Err(JoseError::InvalidKey("x and y must be 32 base64url bytes"));
    };
    let mut sec1 = Vec::with_capacity(65);
    sec1.push(4);
    sec1.extend_from_slice(&x);
    sec1.extend_from_slice(&y);
    Ok(sec1)
}

impl VerifyKey {
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, JoseError> {
        #[cfg(feature = "ring-verifier")]
        {
            Ok(Self {
                sec1: sec1_from_jwk(jwk)?,
            })
        }
        #[cfg(not(feature = "ring-verifier"))]
        {
            let sec1 = sec1_from_jwk(jwk)?;
            Ok(Self {
                sec1,
                key: jwk.verifying_key()?,
            })
        }
    }

    pub fn from_verifying_key(key: VerifyingKey) -> Self {
        Self {
            sec1: key.to_encoded_point(false).as_bytes().to_vec(),
            #[cfg(not(feature = "ring-verifier"))]
            key,
        }
    }

    /// Checks an ES256 signature (`r || s`, 64 bytes) over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), JoseError> {
        #[cfg(feature = "ring-verifier")]
        {
            ring::signature::UnparsedPublicKey::new(
                &ring::signature::ECDSA_P256_SHA256_FIXED,
                &self.sec1,
            )
            .verify(message, signature)
            .map_err(|_| JoseError::BadSignature)
        }
        #[cfg(not(feature = "ring-verifier"))]
        {
            let signature =
                Signature::from_slice(signature).map_err(|_| JoseError::BadSignature)?;
            self.key
                .verify(message, &signature)
                .map_err(|_| JoseError::BadSignature)
        }
    }

    /// Always the pure-Rust check, whatever the features (for cross-checking backends).
    pub fn verify_with_p256(&self, message: &[u8], signature: &[u8]) -> Result<(), JoseError> {
        let key = VerifyingKey::from_sec1_bytes(&self.sec1)
            .map_err(|_| JoseError::InvalidKey("point is not on the curve"))?;
        let signature = Signature::from_slice(signature).map_err(|_| JoseError::BadSignature)?;
        key.verify(message, &signature)
            .map_err(|_| JoseError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SigningKeyPair;

    #[test]
    fn both_backends_accept_good_and_refuse_bad_signatures() {
        let pair = SigningKeyPair::generate();
        let key = VerifyKey::from_jwk(&pair.public_jwk()).unwrap();
        let sig = pair.sign_raw(b"message");
        key.verify(b"message", &sig).unwrap();
        key.verify_with_p256(b"message", &sig).unwrap();
        assert_eq!(key.verify(b"massage", &sig), Err(JoseError::BadSignature));
        assert_eq!(
            key.verify_with_p256(b"massage", &sig),
            Err(JoseError::BadSignature)
        );
        assert_eq!(
            key.verify(b"message", &sig[..63]),
            Err(JoseError::BadSignature)
        );
    }

    #[test]
    fn a_point_off_the_curve_never_verifies() {
        let pair = SigningKeyPair::generate();
        let mut jwk = pair.public_jwk();
        jwk.y = Some(crate::b64url_encode([1u8; 32]));
        let sig = pair.sign_raw(b"message");
        // Refused when the key is built (p256) or when it is used (ring).
        if let Ok(key) = VerifyKey::from_jwk(&jwk) {
            assert!(key.verify(b"message", &sig).is_err());
            assert!(key.verify_with_p256(b"message", &sig).is_err());
        }
    }
}
