//! Client authentication at the token, backchannel, introspection and revocation endpoints:
//! `client_secret_basic`, `client_secret_post` (RFC 6749 §2.3.1) and `private_key_jwt`
//! (RFC 7523 / OpenID Connect Core §9) with audience checks and `jti` replay protection.

use countersign_jose::{JwkSet, UnverifiedJws};

use crate::config::CibaConfig;
use crate::oidc::jwt::{RegisteredClaims, check_times};
use crate::secrets::verify_secret;
use crate::store::Store;
use crate::store::StoreError;
use crate::store::clients::ClientRecord;

pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The three client authentication methods Countersign registers agents with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 3] = [
        Self::ClientSecretBasic,
        Self::ClientSecretPost,
        Self::PrivateKeyJwt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// What the request offered as client credentials, already split out of the header and
/// form by the HTTP layer.
#[derive(Debug, Default, Clone)]
pub struct ClientCredentials {
    /// `Authorization: Basic` user and password, form-urlencoding already undone.
    pub basic: Option<(String, String)>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub assertion_type: Option<String>,
    pub assertion: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientAuthError {
    /// RFC 6749 `invalid_client`; `basic` tells the edge to answer with
    /// `WWW-Authenticate: Basic`.
    #[error("client authentication failed: {reason}")]
    InvalidClient { reason: String, basic: bool },
    #[error("{0}")]
    InvalidRequest(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(reason: impl Into<String>, basic: bool) -> ClientAuthError {
    ClientAuthError::InvalidClient {
        reason: reason.into(),
        basic,
    }
}

/// What authenticating a client works with, at one moment.
pub struct Authenticating<'a> {
    pub store: &'a Store,
    pub issuer: &'a str,
    pub ciba: &'a CibaConfig,
    pub now_secs: i64,
}

/// Authenticates the client of a request to `endpoint_url` and returns its registration.
pub async fn authenticate(
    ctx: &Authenticating<'_>,
    creds: &ClientCredentials,
    endpoint_url: &str,
) -> Result<ClientRecord, ClientAuthError> {
    let offered = usize::from(creds.basic.is_some())
        + usize::from(creds.client_secret.is_some())
        + usize::from(creds.assertion.is_some());
    if offered > 1 {
        return Err(ClientAuthError::InvalidRequest(
            "more than one client authentication method was used".into(),
        ));
    }
    if let Some((id, secret)) = &creds.basic {
        if creds
            .client_id
            .as_ref()
            .is_some_and(|form_id| form_id != id)
        {
            return Err(ClientAuthError::InvalidRequest(
                "client_id in the body differs from the Basic credentials".into(),
            ));
        }
        return by_secret(ctx.store, id, secret, AuthMethod::ClientSecretBasic).await;
    }
    if let Some(secret) = &creds.client_secret {
        let id = creds.client_id.as_deref().ok_or_else(|| {
            ClientAuthError::InvalidRequest("client_secret without client_id".into())
        })?;
        return by_secret(ctx.store, id, secret, AuthMethod::ClientSecretPost).await;
    }
    if let Some(assertion) = &creds.assertion {
        if creds.assertion_type.as_deref() != Some(JWT_BEARER_ASSERTION) {
            return Err(invalid(
                format!("client_assertion_type must be {JWT_BEARER_ASSERTION}"),
                false,
            ));
        }
        return by_assertion(ctx, creds.client_id.as_deref(), assertion, endpoint_url).await;
    }
    Err(invalid("no client authentication was provided", false))
}

async fn by_secret(
    store: &Store,
    client_id: &str,
    secret: &str,
    method: AuthMethod,
) -> Result<ClientRecord, ClientAuthError> {
    let basic = method == AuthMethod::ClientSecretBasic;
    let client = store
        .client(client_id)
        .await?
        .ok_or_else(|| invalid("unknown client or wrong secret", basic))?;
    let hash_ok = client
        .secret_hash
        .as_deref()
        .is_some_and(|h| verify_secret(secret, h));
    if !hash_ok {
        return Err(invalid("unknown client or wrong secret", basic));
    }
    if client.auth_method != method.as_str() {
        return Err(invalid(
            format!(
                "the client is registered for {}, not {}",
                client.auth_method,
                method.as_str()
            ),
            basic,
        ));
    }
    Ok(client)
}

/// The client's registered JWK Set, if it has one.
pub fn client_jwks(client: &ClientRecord) -> Option<JwkSet> {
    client
        .jwks
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
}

async fn by_assertion(
    ctx: &Authenticating<'_>,
    form_client_id: Option<&str>,
    assertion: &str,
    endpoint_url: &str,
) -> Result<ClientRecord, ClientAuthError> {
    let jws = UnverifiedJws::parse(assertion)
        .map_err(|e| invalid(format!("client_assertion: {e}"), false))?;
    let unverified: RegisteredClaims = jws
        .insecure_claims()
        .map_err(|e| invalid(format!("client_assertion: {e}"), false))?;
    let client_id = unverified
        .iss
        .clone()
        .ok_or_else(|| invalid("client_assertion: iss is required", false))?;
    if form_client_id.is_some_and(|id| id != client_id) {
        return Err(invalid(
            "client_assertion iss differs from client_id",
            false,
        ));
    }
    let client = ctx
        .store
        .client(&client_id)
        .await?
        .ok_or_else(|| invalid("client_assertion: unknown client", false))?;
    if client.auth_method != AuthMethod::PrivateKeyJwt.as_str() {
        return Err(invalid(
            format!(
                "the client is registered for {}, not private_key_jwt",
                client.auth_method
            ),
            false,
        ));
    }
    let jwks =
        client_jwks(&client).ok_or_else(|| invalid("the client has no usable JWKS", false))?;
    let claims: RegisteredClaims = jws
        .verify_with_set(&jwks)
        .map_err(|e| invalid(format!("client_assertion: {e}"), false))?;
    let (exp, jti) = check_assertion_claims(ctx, claims, &client_id, endpoint_url)?;
    let ciba = ctx.ciba;
    let fresh = ctx
        .store
        .remember_jti(
            &format!("client_assertion:{client_id}"),
            &jti,
            exp.saturating_add(ciba.clock_skew_secs as i64)
                .saturating_mul(1000),
        )
        .await?;
    if !fresh {
        return Err(invalid(
            "client_assertion: jti was already used (replay)",
            false,
        ));
    }
    Ok(client)
}

/// The claims of a verified client assertion (RFC 7523 §3): `sub` is the client, `aud`
/// this server (its issuer, the token endpoint or the endpoint called), within its times
/// and the longest lifetime allowed, with a `jti`. Returns `exp` (s) and the `jti`.
fn check_assertion_claims(
    ctx: &Authenticating<'_>,
    claims: RegisteredClaims,
    client_id: &str,
    endpoint_url: &str,
) -> Result<(i64, String), ClientAuthError> {
    if claims.sub.as_deref() != Some(client_id) {
        return Err(invalid(
            "client_assertion: sub must equal iss (the client_id)",
            false,
        ));
    }
    let aud_ok = claims.aud.as_ref().is_some_and(|aud| {
        aud.contains(ctx.issuer)
            || aud.contains(endpoint_url)
            || aud.contains(&format!("{}{}", ctx.issuer, crate::paths::TOKEN))
    });
    if !aud_ok {
        return Err(invalid(
            format!(
                "client_assertion: aud must contain the issuer {} or the endpoint URL",
                ctx.issuer
            ),
            false,
        ));
    }
    let ciba = ctx.ciba;
    let now_s = ctx.now_secs;
    check_times(&claims, now_s, ciba.clock_skew_secs as i64)
        .map_err(|e| invalid(format!("client_assertion: {e}"), false))?;
    // Float to integer saturates, and so does every sum below: an assertion with an
    // absurd exp or iat is refused, never wrapped around into an accepted one.
    let exp = claims.exp.unwrap_or_default() as i64;
    let issued = claims.iat.map_or(now_s, |iat| iat as i64);
    let max_lifetime = ciba.max_assertion_lifetime_secs as i64;
    if exp.saturating_sub(issued) > max_lifetime
        || exp.saturating_sub(now_s) > max_lifetime.saturating_add(ciba.clock_skew_secs as i64)
    {
        return Err(invalid(
            format!(
                "client_assertion: lifetime exceeds {} seconds",
                ciba.max_assertion_lifetime_secs
            ),
            false,
        ));
    }
    let jti = claims
        .jti
        .filter(|j| !j.is_empty() && j.len() <= crate::oidc::dpop::MAX_JTI_LEN)
        .ok_or_else(|| {
            invalid(
                format!(
                    "client_assertion: jti is required, at most {} characters",
                    crate::oidc::dpop::MAX_JTI_LEN
                ),
                false,
            )
        })?;
    Ok((exp, jti))
}
