//! Access tokens for this deployment's own protected resources (the MCP gateway): RFC 9068
//! JWTs (`typ: at+jwt`) that say who the agent is and nothing more. Authority comes per
//! call (a decision, an approval), never from this token. Issued with the
//! `client_credentials` grant, DPoP-bound (`cnf.jkt`) when the request carried a proof.

use countersign_jose::{
    JwkSet, SigningKeyPair, UnverifiedJws, b64url_encode, random_b64url, sha256,
};
use serde::{Deserialize, Serialize};

use super::jwt::{Audience, RegisteredClaims, check_times};

/// The JWT `typ` (RFC 9068 §2.1).
pub const TYP: &str = "at+jwt";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Confirmation {
    jkt: String,
}

#[derive(Debug, Clone, Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    client_id: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cnf: Option<Confirmation>,
}

/// Signs a token naming `client_id` for `resource`, valid `ttl_secs` from `now_s`.
pub fn issue(
    key: &SigningKeyPair,
    issuer: &str,
    client_id: &str,
    resource: &str,
    jkt: Option<String>,
    now_s: i64,
    ttl_secs: u64,
) -> Result<String, countersign_jose::JoseError> {
    let claims = Claims {
        iss: issuer,
        sub: client_id,
        client_id,
        aud: resource,
        iat: now_s,
        exp: now_s.saturating_add(i64::try_from(ttl_secs).unwrap_or(i64::MAX)),
        jti: random_b64url(16),
        cnf: jkt.map(|jkt| Confirmation { jkt }),
    };
    key.sign(TYP, &claims)
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceToken {
    pub client_id: String,
    /// The key the token is bound to (RFC 9449), if any.
    pub jkt: Option<String>,
    /// `exp`, Unix seconds.
    pub expires_at_s: i64,
}

#[derive(Debug, Deserialize)]
struct Received {
    #[serde(flatten)]
    registered: RegisteredClaims,
    client_id: Option<String>,
    cnf: Option<Confirmation>,
}

/// Checks `token`: signed by one of `keys`, issued by `issuer` for `resource`, in date.
/// The reason is for the `error_description` of a 401 (RFC 6750 §3.1).
pub fn verify(
    token: &str,
    keys: &JwkSet,
    issuer: &str,
    resource: &str,
    now_s: i64,
    skew_s: i64,
) -> Result<ResourceToken, String> {
    let jws = UnverifiedJws::parse(token).map_err(|_| "not a JWT this server issued".to_owned())?;
    if jws.header.typ.as_deref() != Some(TYP) {
        return Err(format!("typ must be {TYP}"));
    }
    let claims: Received = jws
        .verify_with_set(keys)
        .map_err(|_| "the signature does not verify with this server's keys".to_owned())?;
    let c = &claims.registered;
    if c.iss.as_deref() != Some(issuer) {
        return Err("issued by another server".into());
    }
    if !c
        .aud
        .as_ref()
        .is_some_and(|a: &Audience| a.contains(resource))
    {
        return Err(format!(
            "not issued for {resource} (request it with resource={resource})"
        ));
    }
    check_times(c, now_s, skew_s)?;
    let client_id = claims
        .client_id
        .filter(|id| c.sub.as_deref() == Some(id.as_str()))
        .ok_or("names no client")?;
    Ok(ResourceToken {
        client_id,
        jkt: claims.cnf.map(|c| c.jkt),
        // check_times required it.
        expires_at_s: c.exp.map_or(0, |e| e as i64),
    })
}

/// The `ath` a DPoP proof made for `token` carries (RFC 9449 §4.2).
pub fn ath(token: &str) -> String {
    b64url_encode(sha256(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "https://cs.example";
    const RES: &str = "https://cs.example/mcp";

    fn set(key: &SigningKeyPair) -> JwkSet {
        JwkSet {
            keys: vec![key.public_jwk()],
        }
    }

    #[test]
    fn a_token_names_the_client_and_its_key_for_the_resource_only() {
        let key = SigningKeyPair::generate();
        let token = issue(&key, ISS, "agent-1", RES, Some("jkt1".into()), 1000, 300).unwrap();
        assert_eq!(
            verify(&token, &set(&key), ISS, RES, 1000, 30),
            Ok(ResourceToken {
                client_id: "agent-1".into(),
                jkt: Some("jkt1".into()),
                expires_at_s: 1300,
            })
        );
        assert!(
            verify(
                &token,
                &set(&key),
                ISS,
                "https://cs.example/other",
                1000,
                30
            )
            .is_err()
        );
        assert!(verify(&token, &set(&key), "https://evil.example", RES, 1000, 30).is_err());
        // Expired (beyond the skew), and signed by another key.
        assert!(verify(&token, &set(&key), ISS, RES, 1000 + 300 + 31, 30).is_err());
        let other = SigningKeyPair::generate();
        assert!(verify(&token, &set(&other), ISS, RES, 1000, 30).is_err());
    }

    #[test]
    fn other_tokens_of_this_server_are_not_resource_tokens() {
        // Same key, another typ (a credential, an ID token): refused.
        let key = SigningKeyPair::generate();
        let claims = serde_json::json!({"iss": ISS, "sub": "agent-1", "client_id": "agent-1",
            "aud": RES, "exp": 2000, "iat": 1000});
        let vc = key.sign("vc+jwt", &claims).unwrap();
        assert_eq!(
            verify(&vc, &set(&key), ISS, RES, 1000, 30),
            Err("typ must be at+jwt".into())
        );
    }
}
