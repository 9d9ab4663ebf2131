//! A P-256 public key parsed once, for verifying many signatures with it.

use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};

use crate::{JoseError, Jwk};

/// An ES256 verification key. With the `ring-verifier` feature, signatures are checked by
/// ring's assembly implementation; otherwise by the pure-Rust `p256` crate.
#[derive(Debug, Clone)]
pub struct VerifyKey {
    key: VerifyingKey,
    #[cfg(feature = "ring-verifier")]
    sec1: Vec<u8>,
}

impl VerifyKey {
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, JoseError> {
        Ok(Self::from_verifying_key(jwk.verifying_key()?))
    }

    pub fn from_verifying_key(key: VerifyingKey) -> Self {
        Self {
            #[cfg(feature = "ring-verifier")]
            sec1: key.to_encoded_point(false).as_bytes().to_vec(),
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
        let signature = Signature::from_slice(signature).map_err(|_| JoseError::BadSignature)?;
        self.key
            .verify(message, &signature)
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
}
