//! Single sign-on for human admins: Countersign is an OpenID Connect relying party of the
//! enterprise IdP (authorization code flow with PKCE S256, `state` and `nonce`), using the
//! `openidconnect` crate. A successful sign-in by a configured admin becomes an admin
//! session: an admin-scoped API key that expires with the session, handed to the browser
//! as an `HttpOnly` cookie, so every admin endpoint accepts it exactly as it accepts a key.
//!
//! The login's secrets (state, nonce, PKCE verifier) travel in a short-lived cookie of
//! their own rather than in server memory, so the callback may land on any replica.

use std::time::{Duration, Instant};

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope as OidcScope, TokenResponse as _,
};
use serde_json::json;
use subtle::ConstantTimeEq as _;
use tokio::sync::Mutex;

use crate::admin::{self, Role, Scope};
use crate::audit::{self, EventKind, NewEvent};
use crate::config::AdminSsoConfig;
use crate::secrets::Secret;
use crate::store::{Store, StoreError};

/// Where the IdP sends the browser back, relative to the issuer.
pub const CALLBACK_PATH: &str = "/admin/sso/callback";
/// How long a started login may take.
pub const LOGIN_TTL_SECS: u64 = 600;
/// Discovery metadata (and the IdP's keys) are fetched again after this.
const METADATA_TTL: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    #[error("single sign-on is not configured (admin_sso.issuer)")]
    NotConfigured,
    /// The browser came back without the login cookie, or with another login's `state`.
    #[error("this sign-in was not started here, or it expired: {0}")]
    BadState(&'static str),
    /// The IdP answered the authorization request with an error.
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
    /// Discovery or the token endpoint failed.
    #[error("the identity provider could not be reached or answered badly: {0}")]
    Provider(String),
    /// The ID token did not verify (signature, issuer, audience, expiry, nonce).
    #[error("the ID token does not verify: {0}")]
    IdToken(String),
    #[error("{0} is not an administrator of this server")]
    NotAnAdmin(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The relying party: configuration, an HTTP client that never follows redirects (as
/// the crate advises against SSRF), and the IdP's discovered metadata.
pub struct AdminSso {
    config: AdminSsoConfig,
    issuer: IssuerUrl,
    client_secret: String,
    redirect: RedirectUrl,
    http: reqwest::Client,
    metadata: Mutex<Option<(Instant, CoreProviderMetadata)>>,
}

/// A started login: send the browser to `authorize_url` with `cookie` set.
pub struct StartedLogin {
    pub authorize_url: String,
    pub cookie: String,
}

/// Who the provider says signed in.
struct Identity {
    email: String,
    /// The provider verified `email` (`email_verified: true`).
    verified: bool,
    subject: String,
    groups: Vec<String>,
}

/// A finished login.
pub struct AdminSession {
    pub email: String,
    /// The IdP's `sub` for this admin.
    pub subject: String,
    /// The session's admin key, for the session cookie; shown to nobody else.
    pub secret: Secret,
    /// The console role the IdP's groups give (admins: `admin`).
    pub role: admin::Role,
    pub expires_at_ms: i64,
}

impl AdminSso {
    /// The relying party for `config`, or `None` when SSO is off. `server_issuer` is this
    /// server's issuer URL; the callback is under it.
    pub fn new(config: &AdminSsoConfig, server_issuer: &str) -> Result<Option<Self>, String> {
        let Some(issuer) = &config.issuer else {
            return Ok(None);
        };
        let issuer =
            IssuerUrl::new(issuer.clone()).map_err(|e| format!("admin_sso.issuer: {e}"))?;
        let redirect = RedirectUrl::new(format!("{server_issuer}{CALLBACK_PATH}"))
            .map_err(|e| format!("issuer: {e}"))?;
        let client_secret = config
            .client_secret()
            .map_err(|e| e.to_string())?
            .ok_or("admin_sso.client_secret is not set")?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("admin_sso: HTTP client: {e}"))?;
        Ok(Some(Self {
            config: config.clone(),
            issuer,
            client_secret,
            redirect,
            http,
            metadata: Mutex::new(None),
        }))
    }

    async fn metadata(&self, refresh: bool) -> Result<CoreProviderMetadata, SsoError> {
        let mut cached = self.metadata.lock().await;
        if let Some((at, metadata)) = cached.as_ref()
            && !refresh
            && at.elapsed() < METADATA_TTL
        {
            return Ok(metadata.clone());
        }
        let metadata = CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| SsoError::Provider(error_chain(&e)))?;
        *cached = Some((Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    fn client(
        &self,
        metadata: CoreProviderMetadata,
    ) -> openidconnect::core::CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    > {
        CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(self.client_secret.clone())),
        )
        .set_redirect_uri(self.redirect.clone())
    }

    /// Starts a sign-in: the IdP's authorization URL and the cookie that remembers it.
    /// `login_hint` (OpenID Connect Core §3.1.2.1) is passed on to the IdP.
    pub async fn start(&self, login_hint: Option<&str>) -> Result<StartedLogin, SsoError> {
        let client = self.client(self.metadata(false).await?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scopes(self.config.scopes().into_iter().map(OidcScope::new))
            .set_pkce_challenge(challenge);
        if let Some(hint) = login_hint {
            request = request.add_extra_param("login_hint", hint.to_owned());
        }
        let (url, state, nonce) = request.url();
        // All three are URL-safe base64, so '.' separates them unambiguously.
        let cookie = format!(
            "{}.{}.{}",
            state.secret(),
            nonce.secret(),
            verifier.secret()
        );
        Ok(StartedLogin {
            authorize_url: url.to_string(),
            cookie,
        })
    }

    /// Finishes a sign-in from the callback's `code` and `state` and the login cookie;
    /// opens an admin session for a configured admin, audited.
    pub async fn finish(
        &self,
        store: &Store,
        now_ms: i64,
        code: &str,
        state: &str,
        cookie: Option<&str>,
    ) -> Result<AdminSession, SsoError> {
        let cookie = cookie.ok_or(SsoError::BadState("no sign-in cookie"))?;
        let mut parts = cookie.splitn(3, '.');
        let (Some(expected_state), Some(nonce), Some(verifier)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(SsoError::BadState("malformed sign-in cookie"));
        };
        if !bool::from(expected_state.as_bytes().ct_eq(state.as_bytes())) {
            return Err(SsoError::BadState("state does not match"));
        }
        let Identity {
            email,
            verified,
            subject,
            groups,
        } = self.identify(code, nonce, verifier).await?;
        let Some(role) = role_of(&self.config, verified.then_some(email.as_str()), &groups) else {
            return Err(SsoError::NotAnAdmin(if verified {
                email
            } else {
                format!("{email} (email not verified by the IdP)")
            }));
        };
        let ttl_ms = i64::try_from(self.config.session_ttl_secs())
            .unwrap_or(i64::MAX)
            .saturating_mul(1000);
        let expires_at_ms = now_ms.saturating_add(ttl_ms);
        // The session's key and the sign-in's event are one write.
        let mut tx = store.begin().await?;
        let key = admin::create_key_in(
            store,
            &mut tx,
            &format!("sso session: {email}"),
            Scope::Admin,
            role,
            Some(expires_at_ms),
            now_ms,
        )
        .await?;
        let event = NewEvent {
            actor: &format!("admin:{email}"),
            kind: EventKind::AdminSignedIn,
            subject: &Scope::Admin.subject(&key.id),
            detail: json!({
                "method": "sso",
                "role": role,
                "email": email,
                "groups": groups,
                "idp": self.issuer.as_str(),
                "idp_subject": subject,
                "expires_at": expires_at_ms,
            }),
        };
        audit::record(store, &mut tx, now_ms, event).await?;
        tx.commit().await?;
        Ok(AdminSession {
            email,
            subject,
            role,
            secret: key.secret,
            expires_at_ms,
        })
    }

    /// Redeems `code` (with the PKCE `verifier`) at the provider and reads who signed in
    /// from the ID token, checked against `nonce`.
    async fn identify(
        &self,
        code: &str,
        nonce: &str,
        verifier: &str,
    ) -> Result<Identity, SsoError> {
        let metadata = self.metadata(false).await?;
        let client = self.client(metadata);
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| SsoError::Provider(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|e| SsoError::Provider(error_chain(&e)))?;
        let id_token = token
            .id_token()
            .ok_or_else(|| SsoError::IdToken("the token response has no id_token".into()))?;
        let nonce = Nonce::new(nonce.to_owned());
        let claims = match id_token.claims(&client.id_token_verifier(), &nonce) {
            Ok(claims) => claims.clone(),
            // The IdP may have rotated its keys since discovery: fetch them once more.
            Err(first) => {
                let client = self.client(self.metadata(true).await?);
                id_token
                    .claims(&client.id_token_verifier(), &nonce)
                    .map_err(|_| SsoError::IdToken(first.to_string()))?
                    .clone()
            }
        };
        let email = claims
            .email()
            .map(|e| e.as_str().to_owned())
            .ok_or_else(|| SsoError::IdToken("the ID token carries no email".into()))?;
        // An address is only an identity when the IdP says it verified it: an absent
        // email_verified is not a yes (anyone may type an admin's address into a
        // self-service profile). Group membership is the IdP's own statement.
        let verified = claims.email_verified() == Some(true);
        let groups = groups_in(&id_token.to_string(), self.config.groups_claim());
        Ok(Identity {
            email,
            verified,
            subject: claims.subject().as_str().to_owned(),
            groups,
        })
    }
}

/// Ends the session whose key is `presented` (sign-out), recording `admin.signed_out`
/// with the session as its actor; false if it was not live.
pub async fn end_session(store: &Store, presented: &str, now_ms: i64) -> Result<bool, StoreError> {
    let mut tx = store.begin().await?;
    let Some(id) = store
        .revoke_admin_key_by_hash(&mut tx, &crate::secrets::hash_secret(presented), now_ms)
        .await?
    else {
        return Ok(false);
    };
    let session = Scope::Admin.subject(&id);
    let event = NewEvent {
        actor: &session,
        kind: EventKind::AdminSignedOut,
        subject: &session,
        detail: json!({}),
    };
    audit::record(store, &mut tx, now_ms, event).await?;
    tx.commit().await?;
    Ok(true)
}
/// The console role of the person with this `verified_email` and these `groups`: the
/// highest their groups (or the admin list) give, `None` when they are none.
pub fn role_of(
    config: &AdminSsoConfig,
    verified_email: Option<&str>,
    groups: &[String],
) -> Option<Role> {
    if config.is_admin(verified_email, groups) {
        Some(Role::Admin)
    } else if groups.iter().any(|g| config.operator_groups.contains(g)) {
        Some(Role::Operator)
    } else if groups.iter().any(|g| config.viewer_groups.contains(g)) {
        Some(Role::Viewer)
    } else {
        None
    }
}

/// The string values of claim `claim` in a compact JWT whose signature was verified
/// already (the core claims type of `openidconnect` has no place for groups).
fn groups_in(verified_jwt: &str, claim: &str) -> Vec<String> {
    verified_jwt
        .split('.')
        .nth(1)
        .and_then(countersign_jose::b64url_decode)
        .and_then(|payload| serde_json::from_slice::<serde_json::Value>(&payload).ok())
        .and_then(|claims| claims.get(claim).cloned())
        .and_then(|v| match v {
            serde_json::Value::Array(items) => Some(
                items
                    .into_iter()
                    .filter_map(|g| g.as_str().map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
        .unwrap_or_default()
}

/// `e` and its sources, for messages that say what actually failed.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admins_match_case_insensitively_and_nobody_else() {
        let config = AdminSsoConfig {
            admins: vec!["Ada@Example.com".into()],
            ..Default::default()
        };
        assert!(config.is_admin(Some("ada@example.com"), &[]));
        assert!(!config.is_admin(Some("eve@example.com"), &[]));
        assert!(!config.is_admin(Some(""), &[]));
        // An address the IdP did not verify is no identity.
        assert!(!config.is_admin(None, &[]));
        let by_group = AdminSsoConfig {
            admin_groups: vec!["countersign-admins".into()],
            ..Default::default()
        };
        assert!(by_group.is_admin(Some("eve@example.com"), &["countersign-admins".into()]));
        assert!(by_group.is_admin(None, &["countersign-admins".into()]));
        assert!(!by_group.is_admin(Some("eve@example.com"), &["Countersign-Admins".into()]));
        let roles = AdminSsoConfig {
            operator_groups: vec!["soc".into()],
            viewer_groups: vec!["audit".into()],
            ..by_group.clone()
        };
        let role = |groups: &[&str]| {
            let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
            role_of(&roles, Some("eve@example.com"), &groups)
        };
        assert_eq!(role(&["audit"]), Some(admin::Role::Viewer));
        assert_eq!(role(&["audit", "soc"]), Some(admin::Role::Operator));
        assert_eq!(
            role(&["soc", "countersign-admins"]),
            Some(admin::Role::Admin)
        );
        assert_eq!(role(&["sales"]), None, "no group, no role");
    }

    #[test]
    fn groups_are_read_from_the_token_payload() {
        let payload = countersign_jose::b64url_encode(br#"{"groups":["a","b",3],"roles":"x"}"#);
        let jwt = format!("h.{payload}.s");
        assert_eq!(groups_in(&jwt, "groups"), ["a", "b"]);
        assert!(groups_in(&jwt, "roles").is_empty(), "not an array");
        assert!(groups_in("garbage", "groups").is_empty());
    }

    #[test]
    fn off_without_an_issuer() {
        assert!(
            AdminSso::new(&AdminSsoConfig::default(), "https://cs.example")
                .unwrap()
                .is_none()
        );
    }
}
