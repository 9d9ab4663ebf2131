//! The wallet's device key: JWS signing through the platform keystore.

use std::sync::Arc;

use countersign_jose::{ES256, Header, Jwk, b64url_encode, thumbprint};
use serde::Serialize;

use crate::platform::{Keystore, KeystoreError};

#[derive(Debug, thiserror::Error)]
pub enum DeviceKeyError {
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    #[error("the keystore returned a malformed signature ({0} bytes)")]
    MalformedSignature(usize),
    #[error("cannot encode: {0}")]
    Encoding(String),
}

pub struct DeviceKey {
    keystore: Arc<dyn Keystore>,
    alias: String,
}

impl DeviceKey {
    pub fn new(keystore: Arc<dyn Keystore>, alias: impl Into<String>) -> Self {
        Self {
            keystore,
            alias: alias.into(),
        }
    }

    pub fn public_jwk(&self) -> Result<Jwk, DeviceKeyError> {
        Ok(self.keystore.public_key(&self.alias)?)
    }

    /// RFC 7638 thumbprint, the device key's identity on the server.
    pub fn thumbprint(&self) -> Result<String, DeviceKeyError> {
        thumbprint(&self.public_jwk()?).map_err(|e| DeviceKeyError::Encoding(e.to_string()))
    }

    /// An RFC 9449-shaped proof for one API call (`htm`, `htu`, `iat`, single-use `jti`),
    /// which is how the wallet authenticates: it holds no bearer secret.
    pub fn proof(&self, method: &str, url: &str) -> Result<String, DeviceKeyError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.sign_jws(
            countersign_shared::approval::WALLET_PROOF_TYP,
            &serde_json::json!({
                "jti": countersign_jose::random_b64url(16),
                "htm": method,
                "htu": url,
                "iat": now,
            }),
        )
    }

    /// A compact JWS over `claims` with `typ` and the public key in the header.
    pub fn sign_jws<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, DeviceKeyError> {
        let header = Header {
            alg: ES256.into(),
            typ: Some(typ.into()),
            jwk: Some(self.public_jwk()?),
            ..Header::default()
        };
        let enc = |v: Result<Vec<u8>, serde_json::Error>| {
            v.map(b64url_encode)
                .map_err(|e| DeviceKeyError::Encoding(e.to_string()))
        };
        let input = format!(
            "{}.{}",
            enc(serde_json::to_vec(&header))?,
            enc(serde_json::to_vec(claims))?
        );
        let signature = self.keystore.sign(&self.alias, input.as_bytes())?;
        // Platforms return raw r||s; anything else (e.g. DER) must be normalised first.
        if signature.len() != 64 {
            return Err(DeviceKeyError::MalformedSignature(signature.len()));
        }
        Ok(format!("{input}.{}", b64url_encode(signature)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::software::{MemoryStorage, SoftwareKeystore};
    use countersign_jose::UnverifiedJws;

    #[test]
    fn jws_signed_through_the_keystore_verifies_with_the_published_key() {
        let store = Arc::new(SoftwareKeystore::new(Arc::new(MemoryStorage::default())));
        let jwk = store.generate("device", true).unwrap();
        let key = DeviceKey::new(store, "device");
        let jws = key
            .sign_jws(
                "countersign-approval+jwt",
                &serde_json::json!({"approve": true}),
            )
            .unwrap();
        let parsed = UnverifiedJws::parse(&jws).unwrap();
        parsed.verify_jwk(&jwk).unwrap();
        assert_eq!(parsed.header.jwk.as_ref(), Some(&jwk));
        assert_eq!(key.thumbprint().unwrap(), thumbprint(&jwk).unwrap());
        let missing = DeviceKey::new(
            Arc::new(SoftwareKeystore::new(Arc::new(MemoryStorage::default()))),
            "nope",
        );
        assert!(matches!(
            missing.sign_jws("x", &()),
            Err(DeviceKeyError::Keystore(KeystoreError::UnknownAlias(_)))
        ));
    }
}
