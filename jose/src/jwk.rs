use p256::ecdsa::VerifyingKey;
use p256::elliptic_curve::sec1::{EncodedPoint, FromEncodedPoint};
use serde::{Deserialize, Serialize};

use crate::{JoseError, b64url_decode, b64url_encode};

/// A public JWK. Only EC P-256 keys are usable; other key types deserialize so that a JWKS
/// holding them can still be read, and are skipped when a key is looked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// RSA modulus and exponent (RFC 7518 §6.3.1), for the one place RSA keys are read:
    /// identity providers' Security Event Tokens (feature `rs256`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// Present only to detect (and refuse) private keys sent where a public key belongs.
    #[serde(default, skip_serializing)]
    pub d: Option<String>,
}

impl Jwk {
    /// The P-256 public key, after checking the point is on the curve.
    pub fn verifying_key(&self) -> Result<VerifyingKey, JoseError> {
        if self.d.is_some() {
            return Err(JoseError::PrivateKeyInJwk);
        }
        if self.kty != "EC" {
            return Err(JoseError::InvalidKey("kty must be EC"));
        }
        if self.crv.as_deref() != Some("P-256") {
            return Err(JoseError::InvalidKey("crv must be P-256"));
        }
        let coord = |c: &Option<String>, name: &'static str| -> Result<[u8; 32], JoseError> {
            let bytes = c
                .as_deref()
                .and_then(b64url_decode)
                .ok_or(JoseError::InvalidKey(name))?;
            bytes.try_into().map_err(|_| JoseError::InvalidKey(name))
        };
        let x = coord(&self.x, "x must be 32 base64url bytes")?;
        let y = coord(&self.y, "y must be 32 base64url bytes")?;
        let point =
            EncodedPoint::<p256::NistP256>::from_affine_coordinates(&x.into(), &y.into(), false);
        let public = Option::<p256::PublicKey>::from(p256::PublicKey::from_encoded_point(&point))
            .ok_or(JoseError::InvalidKey("point is not on the curve"))?;
        Ok(VerifyingKey::from(public))
    }

    /// The public JWK of a P-256 key.
    pub fn from_verifying_key(key: &VerifyingKey, kid: Option<String>) -> Self {
        let point = key.to_encoded_point(false);
        Jwk {
            kty: "EC".into(),
            crv: Some("P-256".into()),
            x: point.x().map(b64url_encode),
            y: point.y().map(b64url_encode),
            kid,
            alg: None,
            use_: None,
            n: None,
            e: None,
            d: None,
        }
    }
}

/// RFC 7638 JWK thumbprint (SHA-256, base64url) of an EC key: the hash of the required
/// members in lexicographic order with no whitespace. Only the key's shape is checked (a
/// point off the curve still has a thumbprint; no signature will ever verify with it).
pub fn thumbprint(jwk: &Jwk) -> Result<String, JoseError> {
    if jwk.d.is_some() {
        return Err(JoseError::PrivateKeyInJwk);
    }
    let coord_ok = |c: &Option<String>| {
        c.as_deref()
            .and_then(b64url_decode)
            .is_some_and(|b| b.len() == 32)
    };
    if jwk.kty != "EC"
        || jwk.crv.as_deref() != Some("P-256")
        || !coord_ok(&jwk.x)
        || !coord_ok(&jwk.y)
    {
        return Err(JoseError::InvalidKey("not an EC P-256 key"));
    }
    let canonical = format!(
        r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
        jwk.crv.as_deref().unwrap_or_default(),
        jwk.x.as_deref().unwrap_or_default(),
        jwk.y.as_deref().unwrap_or_default()
    );
    Ok(b64url_encode(crate::sha256(canonical.as_bytes())))
}

/// A JWK Set (RFC 7517 §5).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

impl JwkSet {
    /// Keys that may verify a token with this `kid`: the one with that kid, or every usable
    /// P-256 key when the token names none.
    pub fn candidates<'a>(&'a self, kid: Option<&'a str>) -> impl Iterator<Item = &'a Jwk> + 'a {
        self.candidates_of("EC", kid)
    }

    /// Usable signing keys of type `kty` with this `kid` (or all of that type without one).
    pub fn candidates_of<'a>(
        &'a self,
        kty: &'a str,
        kid: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Jwk> + 'a {
        self.keys.iter().filter(move |k| {
            k.kty == kty
                && k.use_.as_deref().is_none_or(|u| u == "sig")
                && match kid {
                    Some(kid) => k.kid.as_deref() == Some(kid),
                    None => true,
                }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_thumbprint_of_known_ec_key() {
        // RFC 7515 A.3 key; the thumbprint was computed independently with Python's
        // hashlib over the RFC 7638 canonical member order.
        let jwk: Jwk = serde_json::from_str(
            r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#,
        )
        .unwrap();
        assert_eq!(
            thumbprint(&jwk).as_deref(),
            Ok("oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U")
        );
    }

    #[test]
    fn rejects_private_and_off_curve_keys() {
        let mut jwk: Jwk = serde_json::from_str(
            r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}"#,
        )
        .unwrap();
        assert_eq!(jwk.verifying_key().err(), Some(JoseError::PrivateKeyInJwk));
        jwk.d = None;
        jwk.y = Some(b64url_encode([1u8; 32]));
        assert_eq!(
            jwk.verifying_key().err(),
            Some(JoseError::InvalidKey("point is not on the curve"))
        );
    }
}
