use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{ES256, JoseError, Jwk, JwkSet, b64url_decode, b64url_encode};

/// The protected header of a compact JWS, limited to the members Countersign reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwk: Option<Jwk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crit: Option<Vec<String>>,
}

/// A P-256 key pair that signs compact JWS with ES256.
pub struct SigningKeyPair {
    kid: String,
    key: SigningKey,
    #[cfg(feature = "ring-signer")]
    fast: Option<ring::signature::EcdsaKeyPair>,
}

impl std::fmt::Debug for SigningKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyPair")
            .field("kid", &self.kid)
            .field("key", &"***")
            .finish()
    }
}

impl SigningKeyPair {
    /// A fresh key from the operating system's randomness; the kid is its thumbprint.
    pub fn generate() -> Self {
        let key = SigningKey::random(&mut rand_core::OsRng);
        Self::with_thumbprint_kid(key)
    }

    /// Rebuilds a key from its 32-byte private scalar.
    pub fn from_scalar(kid: String, scalar: &[u8]) -> Result<Self, JoseError> {
        let key = SigningKey::from_slice(scalar).map_err(|_| JoseError::KeyMaterial)?;
        Ok(Self::assemble(kid, key))
    }

    fn with_thumbprint_kid(key: SigningKey) -> Self {
        let jwk = Jwk::from_verifying_key(key.verifying_key(), None);
        // A freshly generated key always yields a valid JWK, so the thumbprint cannot fail;
        // fall back to a random kid rather than panic if that ever changes.
        let kid = crate::thumbprint(&jwk).unwrap_or_else(|_| crate::random_b64url(16));
        Self::assemble(kid, key)
    }

    fn assemble(kid: String, key: SigningKey) -> Self {
        #[cfg(feature = "ring-signer")]
        let fast = {
            let public = key.verifying_key().to_encoded_point(false);
            ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
                &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &key.to_bytes(),
                public.as_bytes(),
                &ring::rand::SystemRandom::new(),
            )
            .ok()
        };
        Self {
            kid,
            key,
            #[cfg(feature = "ring-signer")]
            fast,
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The private scalar, for storing the key. Callers must keep it secret.
    pub fn scalar_bytes(&self) -> Vec<u8> {
        self.key.to_bytes().to_vec()
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        self.key.verifying_key()
    }

    /// The public JWK with `kid`, `alg` and `use` filled in, as published in a JWKS.
    pub fn public_jwk(&self) -> Jwk {
        let mut jwk = Jwk::from_verifying_key(self.key.verifying_key(), Some(self.kid.clone()));
        jwk.alg = Some(ES256.into());
        jwk.use_ = Some("sig".into());
        jwk
    }

    /// Raw ES256 signature (`r || s`) over `message`, as a platform keystore returns it.
    pub fn sign_raw(&self, message: &[u8]) -> Vec<u8> {
        #[cfg(feature = "ring-signer")]
        if let Some(fast) = &self.fast
            && let Ok(signature) = fast.sign(&ring::rand::SystemRandom::new(), message)
        {
            return signature.as_ref().to_vec();
        }
        let signature: Signature = self.key.sign(message);
        signature.to_bytes().to_vec()
    }

    /// Signs `claims` with a header carrying `alg: ES256`, this key's `kid` and `typ`.
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, JoseError> {
        let header = Header {
            alg: ES256.into(),
            typ: Some(typ.into()),
            kid: Some(self.kid.clone()),
            ..Header::default()
        };
        self.sign_with_header(&header, claims)
    }

    /// Signs with a caller-built header (e.g. one embedding `jwk` for DPoP proofs).
    /// The header's `alg` is forced to ES256.
    pub fn sign_with_header<T: Serialize>(
        &self,
        header: &Header,
        claims: &T,
    ) -> Result<String, JoseError> {
        let mut header = header.clone();
        header.alg = ES256.into();
        let header_json =
            serde_json::to_vec(&header).map_err(|e| JoseError::Json("header", e.to_string()))?;
        let claims_json =
            serde_json::to_vec(claims).map_err(|e| JoseError::Json("payload", e.to_string()))?;
        let signing_input = format!(
            "{}.{}",
            b64url_encode(header_json),
            b64url_encode(claims_json)
        );
        let signature = self.sign_raw(signing_input.as_bytes());
        Ok(format!("{signing_input}.{}", b64url_encode(signature)))
    }
}

/// A compact JWS whose structure and header were checked but whose signature was not yet.
#[derive(Debug, Clone)]
pub struct UnverifiedJws {
    pub header: Header,
    payload: Vec<u8>,
    signing_input: String,
    signature: Vec<u8>,
}

impl UnverifiedJws {
    /// Splits and decodes a compact JWS. Refuses any algorithm but ES256 and any `crit`
    /// header before a key is even looked at.
    pub fn parse(token: &str) -> Result<Self, JoseError> {
        Self::parse_accepting(token, &[ES256])
    }

    /// [`Self::parse`], accepting the algorithms in `algs` (of ES256 and, with feature
    /// `rs256`, RS256) instead. The key a token then verifies with must be of the type its
    /// algorithm names, so an RSA key can never check an ES256 token or the reverse.
    pub fn parse_accepting(token: &str, algs: &[&str]) -> Result<Self, JoseError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JoseError::Malformed);
        };
        let header_bytes = b64url_decode(h).ok_or(JoseError::Base64("header"))?;
        let header: Header = serde_json::from_slice(&header_bytes)
            .map_err(|e| JoseError::Json("header", e.to_string()))?;
        let supported =
            header.alg == ES256 || (cfg!(feature = "rs256") && header.alg == crate::RS256);
        if !supported || !algs.contains(&header.alg.as_str()) {
            return Err(JoseError::UnsupportedAlgorithm(header.alg));
        }
        if let Some(crit) = header.crit {
            return Err(JoseError::UnsupportedCritical(crit));
        }
        let payload = b64url_decode(p).ok_or(JoseError::Base64("payload"))?;
        let signature = b64url_decode(s).ok_or(JoseError::Base64("signature"))?;
        Ok(Self {
            header,
            payload,
            signing_input: format!("{h}.{p}"),
            signature,
        })
    }

    /// The payload decoded as JSON, without any signature check. Only for choosing which
    /// key to verify with (e.g. reading `iss`).
    pub fn insecure_claims<T: DeserializeOwned>(&self) -> Result<T, JoseError> {
        serde_json::from_slice(&self.payload).map_err(|e| JoseError::Json("payload", e.to_string()))
    }

    pub fn verify(&self, key: &VerifyingKey) -> Result<(), JoseError> {
        if self.header.alg != ES256 {
            return Err(JoseError::UnsupportedAlgorithm(self.header.alg.clone()));
        }
        let signature =
            Signature::from_slice(&self.signature).map_err(|_| JoseError::BadSignature)?;
        key.verify(self.signing_input.as_bytes(), &signature)
            .map_err(|_| JoseError::BadSignature)
    }

    /// Verifies with a key parsed beforehand (the fast path for repeated verification).
    pub fn verify_key(&self, key: &crate::VerifyKey) -> Result<(), JoseError> {
        if self.header.alg != ES256 {
            return Err(JoseError::UnsupportedAlgorithm(self.header.alg.clone()));
        }
        key.verify(self.signing_input.as_bytes(), &self.signature)
    }

    /// The bytes the signature covers (`header.payload`).
    pub fn signing_input(&self) -> &[u8] {
        self.signing_input.as_bytes()
    }

    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    pub fn verify_jwk(&self, jwk: &Jwk) -> Result<(), JoseError> {
        self.verify(&jwk.verifying_key()?)
    }

    /// Verifies against the key of `set` named by the header `kid` (or any key when the
    /// token has none) and returns the claims.
    pub fn verify_with_set<T: DeserializeOwned>(&self, set: &JwkSet) -> Result<T, JoseError> {
        #[cfg(feature = "rs256")]
        if self.header.alg == crate::RS256 {
            return self.verify_rs256_with_set(set);
        }
        let mut tried = false;
        for jwk in set.candidates(self.header.kid.as_deref()) {
            let Ok(key) = jwk.verifying_key() else {
                continue;
            };
            tried = true;
            if self.verify(&key).is_ok() {
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

/// Left half of the SHA-256 of `value`, base64url: the `at_hash` / `rt_hash` of OpenID
/// Connect Core §3.1.3.6 for ES256.
pub fn sha256_half_b64url(value: &str) -> String {
    let digest = crate::sha256(value.as_bytes());
    b64url_encode(&digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sign_then_verify_roundtrip_and_tamper_detection() {
        let key = SigningKeyPair::generate();
        let token = key.sign("JWT", &json!({"sub": "alice"})).unwrap();
        let jws = UnverifiedJws::parse(&token).unwrap();
        assert_eq!(jws.header.kid.as_deref(), Some(key.kid()));
        let set = JwkSet {
            keys: vec![key.public_jwk()],
        };
        let claims: serde_json::Value = jws.verify_with_set(&set).unwrap();
        assert_eq!(claims["sub"], "alice");

        // Flip one payload character: the signature must no longer verify.
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = b64url_encode(br#"{"sub":"mallory"}"#);
        let forged = UnverifiedJws::parse(&parts.join(".")).unwrap();
        assert_eq!(
            forged.verify_with_set::<serde_json::Value>(&set).err(),
            Some(JoseError::BadSignature)
        );
        let other = JwkSet {
            keys: vec![SigningKeyPair::generate().public_jwk()],
        };
        assert_eq!(
            jws.verify_with_set::<serde_json::Value>(&other).err(),
            Some(JoseError::NoMatchingKey)
        );
    }

    /// With `ring-signer`, signatures come from ring and are verified here by p256: the two
    /// implementations must agree (run `cargo test -p countersign-jose --all-features`).
    #[test]
    fn signatures_verify_with_the_independent_p256_verifier() {
        for _ in 0..20 {
            let key = SigningKeyPair::generate();
            let message = crate::random_b64url(40);
            let raw = key.sign_raw(message.as_bytes());
            let signature = Signature::from_slice(&raw).unwrap();
            key.verifying_key()
                .verify(message.as_bytes(), &signature)
                .unwrap();
        }
    }

    #[test]
    fn refuses_none_hmac_and_crit() {
        let none = format!(
            "{}.{}.",
            b64url_encode(br#"{"alg":"none"}"#),
            b64url_encode(b"{}")
        );
        assert_eq!(
            UnverifiedJws::parse(&none).err(),
            Some(JoseError::UnsupportedAlgorithm("none".into()))
        );
        let hs = format!(
            "{}.{}.c2ln",
            b64url_encode(br#"{"alg":"HS256"}"#),
            b64url_encode(b"{}")
        );
        assert_eq!(
            UnverifiedJws::parse(&hs).err(),
            Some(JoseError::UnsupportedAlgorithm("HS256".into()))
        );
        let crit = format!(
            "{}.{}.c2ln",
            b64url_encode(br#"{"alg":"ES256","crit":["exp"]}"#),
            b64url_encode(b"{}")
        );
        assert!(matches!(
            UnverifiedJws::parse(&crit),
            Err(JoseError::UnsupportedCritical(_))
        ));
        assert_eq!(
            UnverifiedJws::parse("a.b").err(),
            Some(JoseError::Malformed)
        );
        assert_eq!(
            UnverifiedJws::parse("a.b.c.d").err(),
            Some(JoseError::Malformed)
        );
    }

    #[test]
    fn at_hash_matches_openid_example() {
        // Expected value computed independently with Python's hashlib (SHA-256, left 16
        // bytes, unpadded base64url).
        assert_eq!(
            sha256_half_b64url("jHkWEdUXMU1BwAsC4vtUsZwnNtgPqUMgbUbb5lNakmo"),
            "5Ebj-dHoE6cAMSEcsB-B4g"
        );
    }
}
