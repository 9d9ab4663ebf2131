//! The keys the gateway holds for agents: an approved call's credential is DPoP-bound to
//! the gateway's key for that agent, so only the gateway can use it, and only with the
//! upstream it proves it to. Each agent's key is derived from one secret in the keys
//! directory, so every replica with the same directory (`serve`, `countersign gateway`)
//! and every restart holds the same key for an agent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use countersign_jose::{
    Header, Jwk, SigningKeyPair, b64url_encode, random_b64url, sha256, thumbprint,
};
use ring::hmac;
use serde_json::json;

/// The secret's file in the keys directory.
pub const SECRET_FILE: &str = "gateway-agent-keys.secret";

pub struct AgentKeys {
    secret: hmac::Key,
    derived: Mutex<HashMap<String, Arc<(SigningKeyPair, String)>>>,
}

impl AgentKeys {
    pub fn new(secret: &[u8; 32]) -> Self {
        Self {
            secret: hmac::Key::new(hmac::HMAC_SHA256, secret),
            derived: Mutex::default(),
        }
    }

    /// The agent's key and its RFC 7638 thumbprint.
    pub fn key(&self, client_id: &str) -> Result<Arc<(SigningKeyPair, String)>, String> {
        let mut derived = self.derived.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(key) = derived.get(client_id) {
            return Ok(key.clone());
        }
        // A P-256 scalar from HMAC(secret, label || client id || counter); the counter moves
        // on in the (2^-32) case that the output is not a valid scalar.
        for counter in 0u8..8 {
            let mut input = b"countersign gateway dpop key v1\0".to_vec();
            input.extend_from_slice(client_id.as_bytes());
            input.push(0);
            input.push(counter);
            let scalar = hmac::sign(&self.secret, &input);
            let Ok(pair) = SigningKeyPair::from_scalar(String::new(), scalar.as_ref()) else {
                continue;
            };
            let jkt = thumbprint(&pair.public_jwk()).map_err(|e| e.to_string())?;
            let key = Arc::new((pair, jkt));
            derived.insert(client_id.to_owned(), key.clone());
            return Ok(key);
        }
        Err("no valid key could be derived".into())
    }

    /// A 32-byte key for another purpose of the gateway's, derived from the same secret
    /// (so every replica holds it too) under a label naming that purpose.
    pub fn purpose_key(&self, label: &str) -> [u8; 32] {
        let mut input = b"countersign gateway purpose\0".to_vec();
        input.extend_from_slice(label.as_bytes());
        let tag = hmac::sign(&self.secret, &input);
        let mut key = [0u8; 32];
        key.copy_from_slice(&tag.as_ref()[..32]);
        key
    }

    /// A DPoP proof (RFC 9449 §4) by the agent's key for `method url`; for a request
    /// carrying `access_token`, with its hash (`ath`, §7), else for the token endpoint.
    pub fn proof(
        &self,
        client_id: &str,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        now_s: i64,
    ) -> Result<String, String> {
        let key = self.key(client_id)?;
        let public = key.0.public_jwk();
        let header = Header {
            typ: Some("dpop+jwt".into()),
            jwk: Some(Jwk {
                kid: None,
                alg: None,
                use_: None,
                ..public
            }),
            ..Header::default()
        };
        let mut claims = json!({
            "jti": random_b64url(16),
            "htm": method,
            "htu": url,
            "iat": now_s,
        });
        if let Some(token) = access_token {
            claims["ath"] = b64url_encode(sha256(token.as_bytes())).into();
        }
        key.0
            .sign_with_header(&header, &claims)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::dpop::{ProofWindow, check_proof};

    #[test]
    fn each_agent_has_its_own_key_and_the_same_one_after_a_restart() {
        let secret = [7u8; 32];
        let keys = AgentKeys::new(&secret);
        let a = keys.key("agent-a").unwrap().1.clone();
        let b = keys.key("agent-b").unwrap().1.clone();
        assert_ne!(a, b);
        assert_eq!(AgentKeys::new(&secret).key("agent-a").unwrap().1, a);
        assert_ne!(AgentKeys::new(&[8u8; 32]).key("agent-a").unwrap().1, a);
    }

    #[test]
    fn purpose_keys_are_stable_and_apart() {
        let keys = AgentKeys::new(&[7u8; 32]);
        let state = keys.purpose_key("request state");
        assert_eq!(
            AgentKeys::new(&[7u8; 32]).purpose_key("request state"),
            state
        );
        assert_ne!(keys.purpose_key("other"), state);
        assert_ne!(
            AgentKeys::new(&[8u8; 32]).purpose_key("request state"),
            state
        );
    }

    #[test]
    fn proofs_verify_as_the_server_checks_them() {
        let keys = AgentKeys::new(&[1u8; 32]);
        let proof = keys
            .proof(
                "agent-a",
                "POST",
                "https://tool.example/mcp",
                Some("token"),
                1000,
            )
            .unwrap();
        let window = ProofWindow {
            now: 1000,
            skew: 30,
            max_age: 120,
        };
        let checked = check_proof(&proof, "POST", "https://tool.example/mcp", window).unwrap();
        assert_eq!(checked.jkt, keys.key("agent-a").unwrap().1);
        assert_eq!(
            checked.ath.as_deref(),
            Some(b64url_encode(sha256(b"token")).as_str())
        );
        let for_token = keys
            .proof("agent-a", "POST", "https://cs.example/token", None, 1000)
            .unwrap();
        let window = ProofWindow {
            now: 1000,
            skew: 30,
            max_age: 120,
        };
        let checked = check_proof(&for_token, "POST", "https://cs.example/token", window).unwrap();
        assert_eq!(checked.ath, None);
    }
}
