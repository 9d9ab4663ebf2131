//! RS256 verification (RSASSA-PKCS1-v1_5 with SHA-256, RFC 7518 §3.3) with ring, for
//! tokens a caller explicitly accepts RS256 for. Keys shorter than 2048 bits are refused
//! (ring's `RSA_PKCS1_2048_8192_SHA256`).

use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use serde::de::DeserializeOwned;

use crate::{JoseError, Jwk, JwkSet, UnverifiedJws, b64url_decode};

fn components(jwk: &Jwk) -> Result<(Vec<u8>, Vec<u8>), JoseError> {
    if jwk.d.is_some() {
        return Err(JoseError::PrivateKeyInJwk);
    }
    if jwk.alg.as_deref().is_some_and(|a| a != crate::RS256) {
        return Err(JoseError::InvalidKey("the key is for another algorithm"));
    }
    let n = jwk
        .n
        .as_deref()
        .and_then(b64url_decode)
        .ok_or(JoseError::InvalidKey("RSA key without a valid n"))?;
    let e = jwk
        .e
        .as_deref()
        .and_then(b64url_decode)
        .ok_or(JoseError::InvalidKey("RSA key without a valid e"))?;
    Ok((n, e))
}

impl UnverifiedJws {
    /// Verifies an RS256 token against the RSA keys of `set` (the one its `kid` names, or
    /// each) and returns its claims.
    pub(crate) fn verify_rs256_with_set<T: DeserializeOwned>(
        &self,
        set: &JwkSet,
    ) -> Result<T, JoseError> {
        let mut tried = false;
        for jwk in set.candidates_of("RSA", self.header.kid.as_deref()) {
            let Ok((n, e)) = components(jwk) else {
                continue;
            };
            tried = true;
            let key = RsaPublicKeyComponents { n: &n, e: &e };
            if key
                .verify(
                    &RSA_PKCS1_2048_8192_SHA256,
                    self.signing_input(),
                    self.signature(),
                )
                .is_ok()
            {
                return self.insecure_claims();
            }
        }
        Err(if tried {
            JoseError::BadSignature
        } else {
            JoseError::NoMatchingKey
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{ES256, JoseError, JwkSet, RS256, SigningKeyPair, UnverifiedJws};

    #[test]
    fn rs256_is_refused_unless_asked_for_and_never_checked_with_an_ec_key() {
        let token = format!(
            "{}.{}.{}",
            crate::b64url_encode(br#"{"alg":"RS256","typ":"secevent+jwt"}"#),
            crate::b64url_encode(br#"{"iss":"x"}"#),
            crate::b64url_encode(b"sig")
        );
        assert_eq!(
            UnverifiedJws::parse(&token).err(),
            Some(JoseError::UnsupportedAlgorithm(RS256.into()))
        );
        assert_eq!(
            UnverifiedJws::parse_accepting(&token, &[ES256]).err(),
            Some(JoseError::UnsupportedAlgorithm(RS256.into()))
        );
        let jws = UnverifiedJws::parse_accepting(&token, &[ES256, RS256]).unwrap();
        // An EC-only set has no key for it, and an EC key cannot check it.
        let ec = SigningKeyPair::generate();
        let set = JwkSet {
            keys: vec![ec.public_jwk()],
        };
        assert_eq!(
            jws.verify_with_set::<serde_json::Value>(&set).err(),
            Some(JoseError::NoMatchingKey)
        );
        assert!(matches!(
            jws.verify_jwk(&ec.public_jwk()),
            Err(JoseError::UnsupportedAlgorithm(_))
        ));
    }
}
