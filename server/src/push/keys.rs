//! Reading push credentials: Apple's `.p8` key (PKCS#8 P-256) and a Google service
//! account's RSA key (PKCS#8), and signing the JWTs both services want.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use countersign_jose::{Header, SigningKeyPair, b64url_encode};
use p256::pkcs8::DecodePrivateKey as _;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde::Serialize;

/// The DER inside a PEM block labelled `label` (e.g. `PRIVATE KEY`).
pub fn pem_der(pem: &str, label: &str) -> Result<Vec<u8>, String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem
        .find(&begin)
        .ok_or_else(|| format!("no `{begin}` block"))?
        + begin.len();
    let stop = pem[start..]
        .find(&end)
        .ok_or_else(|| format!("no `{end}` line"))?
        + start;
    let body: String = pem[start..stop].split_whitespace().collect();
    STANDARD
        .decode(body)
        .map_err(|e| format!("the PEM body is not base64: {e}"))
}

/// An ES256 signing key from a PKCS#8 PEM (an APNs `.p8` file).
pub fn ec_key(pem: &str, kid: &str) -> Result<SigningKeyPair, String> {
    let der = pem_der(pem, "PRIVATE KEY")?;
    let key = p256::SecretKey::from_pkcs8_der(&der)
        .map_err(|e| format!("not a PKCS#8 P-256 private key: {e}"))?;
    SigningKeyPair::from_scalar(kid.to_owned(), &key.to_bytes())
        .map_err(|e| format!("unusable key: {e}"))
}

/// A compact ES256 JWS with just `alg` and `kid` in the header (what APNs expects).
pub fn es256_jwt<T: Serialize>(key: &SigningKeyPair, claims: &T) -> Result<String, String> {
    let header = Header {
        kid: Some(key.kid().to_owned()),
        ..Header::default()
    };
    key.sign_with_header(&header, claims)
        .map_err(|e| e.to_string())
}

/// An RS256 signer (a service account's key).
pub struct RsaSigner {
    key: RsaKeyPair,
    rng: SystemRandom,
}

impl RsaSigner {
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let der = pem_der(pem, "PRIVATE KEY")?;
        let key = RsaKeyPair::from_pkcs8(&der)
            .map_err(|e| format!("not a PKCS#8 RSA private key: {e}"))?;
        Ok(Self {
            key,
            rng: SystemRandom::new(),
        })
    }

    /// A compact RS256 JWS with `typ: JWT` and `kid`.
    pub fn jwt<T: Serialize>(&self, kid: Option<&str>, claims: &T) -> Result<String, String> {
        let mut header = serde_json::json!({ "alg": "RS256", "typ": "JWT" });
        if let Some(kid) = kid {
            header["kid"] = kid.into();
        }
        let payload = serde_json::to_vec(claims).map_err(|e| e.to_string())?;
        let input = format!(
            "{}.{}",
            b64url_encode(header.to_string()),
            b64url_encode(payload)
        );
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &self.rng,
                input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| "RSA signing failed".to_owned())?;
        Ok(format!("{input}.{}", b64url_encode(signature)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_are_read_and_bad_ones_named() {
        let pem = "junk\n-----BEGIN PRIVATE KEY-----\nAAEC\nAw==\n-----END PRIVATE KEY-----\n";
        assert_eq!(pem_der(pem, "PRIVATE KEY").unwrap(), vec![0, 1, 2, 3]);
        assert!(
            pem_der(pem, "EC PRIVATE KEY")
                .unwrap_err()
                .contains("BEGIN EC PRIVATE KEY")
        );
        assert!(ec_key(pem, "k").unwrap_err().contains("PKCS#8"));
        assert!(RsaSigner::from_pem(pem).is_err());
    }
}
