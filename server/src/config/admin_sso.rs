//! Single sign-on for human admins against the enterprise identity provider (OpenID
//! Connect, authorization code with PKCE). Off unless `admin_sso.issuer` is set.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSsoConfig {
    /// The provider's issuer URL; its `/.well-known/openid-configuration` is discovered.
    pub issuer: Option<String>,
    pub client_id: String,
    /// The client secret (`client_secret_basic` at the token endpoint), inline (e.g. from
    /// `COUNTERSIGN_ADMIN_SSO__CLIENT_SECRET`) ...
    pub client_secret: Option<String>,
    /// ... or read from this file at start-up.
    pub client_secret_file: Option<PathBuf>,
    /// E-mail addresses (from the ID token's verified `email`) that may administer this
    /// server. Compared case-insensitively.
    pub admins: Vec<String>,
    /// IdP groups whose members may administer this server, read from the ID token's
    /// `groups_claim`. Everyone neither listed in `admins` nor in one of these is refused.
    pub admin_groups: Vec<String>,
    /// IdP groups whose members (not admins) sign in to the console as operators:
    /// the approvals queue, suspend and resume, revoke, offboard.
    pub operator_groups: Vec<String>,
    /// IdP groups whose members (neither admins nor operators) sign in read-only.
    pub viewer_groups: Vec<String>,
    /// The ID token claim that lists the person's groups (default `groups`).
    pub groups_claim: Option<String>,
    /// Scopes requested besides `openid` (default `email`; Okta wants `groups` too for
    /// the groups claim).
    pub scopes: Vec<String>,
    /// How long an admin session lasts (default 8 hours).
    pub session_ttl_secs: u64,
}

impl AdminSsoConfig {
    pub const DEFAULT_SESSION_TTL_SECS: u64 = 8 * 3600;

    pub fn enabled(&self) -> bool {
        self.issuer.is_some()
    }

    pub fn session_ttl_secs(&self) -> u64 {
        if self.session_ttl_secs == 0 {
            Self::DEFAULT_SESSION_TTL_SECS
        } else {
            self.session_ttl_secs
        }
    }

    /// The client secret, from the inline value or the file.
    pub fn client_secret(&self) -> Result<Option<String>, ConfigError> {
        super::inline_or_file(
            self.client_secret.as_ref(),
            self.client_secret_file.as_ref(),
            "admin_sso.client_secret_file",
        )
    }

    /// Whether the person with this `verified_email` (`None` when the IdP did not verify
    /// it) and these IdP `groups` may administer.
    pub fn is_admin(&self, verified_email: Option<&str>, groups: &[String]) -> bool {
        verified_email
            .is_some_and(|email| self.admins.iter().any(|a| a.eq_ignore_ascii_case(email)))
            || groups.iter().any(|g| self.admin_groups.contains(g))
    }

    pub fn groups_claim(&self) -> &str {
        self.groups_claim.as_deref().unwrap_or("groups")
    }

    /// The scopes to request besides `openid`.
    pub fn scopes(&self) -> Vec<String> {
        if self.scopes.is_empty() {
            vec!["email".into()]
        } else {
            self.scopes.clone()
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let Some(issuer) = &self.issuer else {
            return Ok(());
        };
        let invalid = |key: &'static str, reason: &str| ConfigError::Invalid {
            key,
            reason: reason.to_owned(),
        };
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            return Err(invalid("admin_sso.issuer", "must be an http(s) URL"));
        }
        if self.client_id.trim().is_empty() {
            return Err(invalid(
                "admin_sso.client_id",
                "must be set with admin_sso.issuer",
            ));
        }
        if self.client_secret.is_some() && self.client_secret_file.is_some() {
            return Err(invalid(
                "admin_sso.client_secret",
                "set client_secret or client_secret_file, not both",
            ));
        }
        if self.client_secret()?.is_none() {
            return Err(invalid(
                "admin_sso.client_secret",
                "set client_secret or client_secret_file",
            ));
        }
        if self.admins.is_empty() && self.admin_groups.is_empty() {
            return Err(invalid(
                "admin_sso.admins",
                "name at least one admin e-mail address or admin group, or nobody could sign in",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configured() -> AdminSsoConfig {
        AdminSsoConfig {
            issuer: Some("https://login.example.com".into()),
            client_id: "countersign".into(),
            client_secret: Some("s3cret".into()),
            admins: vec!["ada@example.com".into()],
            ..Default::default()
        }
    }

    fn key_of(config: &AdminSsoConfig) -> Option<&'static str> {
        match config.validate() {
            Ok(()) => None,
            Err(ConfigError::Invalid { key, .. }) => Some(key),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn validation_names_the_key_to_fix() {
        assert_eq!(key_of(&configured()), None);
        assert_eq!(key_of(&AdminSsoConfig::default()), None, "off is valid");
        let mut c = configured();
        c.admins.clear();
        assert_eq!(key_of(&c), Some("admin_sso.admins"));
        let mut c = configured();
        c.client_secret = None;
        assert_eq!(key_of(&c), Some("admin_sso.client_secret"));
        let mut c = configured();
        c.client_secret_file = Some("/nonexistent/secret".into());
        assert_eq!(key_of(&c), Some("admin_sso.client_secret"), "not both");
        c.client_secret = None;
        assert_eq!(key_of(&c), Some("admin_sso.client_secret_file"));
        let mut c = configured();
        c.issuer = Some("login.example.com".into());
        assert_eq!(key_of(&c), Some("admin_sso.issuer"));
        let mut c = configured();
        c.client_id = " ".into();
        assert_eq!(key_of(&c), Some("admin_sso.client_id"));
    }
}
