//! The configuration's fingerprint for the audit trail: each server start records
//! `config.loaded` with the SHA-256 of its effective configuration, secrets redacted, so a
//! configuration change between starts is visible in the trail without a secret ever
//! being written to it.
//!
//! A secret is replaced by a marker when set (so setting or removing one changes the
//! digest, rotating its value does not); a secret given as a file is recorded by its
//! path only.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Config;

/// What a set secret reads as in [`Config::redacted`].
pub const REDACTED: &str = "<redacted>";

/// The settings that hold secrets, as JSON pointers into the configuration
/// (`signals.transmitters[].poll_token` is handled per transmitter). A test fails when a
/// configured secret shows through, so a new secret setting must be added here.
const SECRET_POINTERS: &[&str] = &[
    "/admin_sso/client_secret",
    "/push/apns/key",
    "/push/fcm/service_account",
];

impl Config {
    /// The effective configuration as JSON, every secret replaced by [`REDACTED`] and the
    /// database URL without its password.
    pub fn redacted(&self) -> Result<Value, serde_json::Error> {
        let mut v = serde_json::to_value(self)?;
        if let Some(url) = v.get_mut("database_url") {
            *url = Value::String(redact_database_url(&self.database_url));
        }
        for pointer in SECRET_POINTERS {
            hide(&mut v, pointer);
        }
        if let Some(Value::Array(transmitters)) = v.pointer_mut("/signals/transmitters") {
            for t in transmitters {
                hide(t, "/poll_token");
            }
        }
        Ok(v)
    }

    /// SHA-256 (hex) of [`Config::redacted`] as canonical JSON (RFC 8785): equal for equal
    /// configurations, whatever order their sources gave the keys in.
    pub fn digest(&self) -> Result<String, serde_json::Error> {
        let canonical = serde_json_canonicalizer::to_vec(&self.redacted()?)?;
        Ok(crate::store::audit::hex(&Sha256::digest(&canonical)))
    }
}

fn hide(v: &mut Value, pointer: &str) {
    if let Some(slot) = v.pointer_mut(pointer)
        && !slot.is_null()
    {
        *slot = Value::String(REDACTED.into());
    }
}

/// `url` without the password of its user information or of a `password=` query
/// parameter (PostgreSQL accepts both), for printing and the trail.
pub fn redact_database_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match (base.find("://"), base.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &base[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            let hidden = if userinfo.contains(':') {
                format!(":{REDACTED}")
            } else {
                String::new()
            };
            format!(
                "{}{user}{hidden}@{}",
                &base[..scheme_end + 3],
                &base[at + 1..]
            )
        }
        _ => base.to_owned(),
    };
    match query {
        None => base,
        Some(q) => {
            let params: Vec<String> = q
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => {
                        format!("{k}={REDACTED}")
                    }
                    _ => p.to_owned(),
                })
                .collect();
            format!("{base}?{}", params.join("&"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AdminSsoConfig, ApnsConfig, FcmConfig, TransmitterConfig};

    const SECRET: &str = "s3cret-value-that-must-not-show";

    fn with_every_secret(secret: &str) -> Config {
        let mut c = Config {
            database_url: format!("postgres://cs:{secret}@db.example/cs?password={secret}"),
            ..Config::default()
        };
        c.admin_sso = AdminSsoConfig {
            client_secret: Some(secret.into()),
            ..AdminSsoConfig::default()
        };
        c.push.apns = Some(ApnsConfig {
            key_file: None,
            key: Some(secret.into()),
            key_id: "K".into(),
            team_id: "T".into(),
            topic: "app".into(),
            environment: "sandbox".into(),
            base_url: None,
            ca_file: None,
        });
        c.push.fcm = Some(FcmConfig {
            service_account_file: None,
            service_account: Some(secret.into()),
            project_id: None,
            base_url: None,
        });
        c.signals.transmitters = vec![TransmitterConfig {
            issuer: "https://idp.example".into(),
            poll_token: Some(secret.into()),
            ..TransmitterConfig::default()
        }];
        c
    }

    #[test]
    fn no_secret_shows_and_only_their_presence_counts() {
        let c = with_every_secret(SECRET);
        let text = c.redacted().unwrap().to_string();
        assert!(!text.contains(SECRET), "{text}");
        assert!(text.contains("postgres://cs:<redacted>@db.example/cs?password=<redacted>"));
        assert_eq!(
            c.digest().unwrap(),
            with_every_secret("another").digest().unwrap(),
            "rotating a secret's value is not a configuration change the trail can see"
        );
        assert_ne!(c.digest().unwrap(), Config::default().digest().unwrap());
    }

    #[test]
    fn the_digest_follows_every_other_setting() {
        let a = Config::default();
        let mut b = a.clone();
        assert_eq!(a.digest().unwrap(), b.digest().unwrap());
        b.ciba.poll_interval_secs += 1;
        assert_ne!(a.digest().unwrap(), b.digest().unwrap());
        assert_eq!(a.digest().unwrap().len(), 64);
    }

    #[test]
    fn database_urls_lose_only_their_passwords() {
        for (url, shown) in [
            ("sqlite://cs.db?mode=rwc", "sqlite://cs.db?mode=rwc"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("postgres://u:p@ss@h/db", "postgres://u:<redacted>@h/db"),
            (
                "postgresql://h/db?user=u&Password=p&sslmode=require",
                "postgresql://h/db?user=u&Password=<redacted>&sslmode=require",
            ),
        ] {
            assert_eq!(redact_database_url(url), shown);
        }
    }
}
