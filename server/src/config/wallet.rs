//! Wallets: enrollment, the passkey (WebAuthn) relying party, and the wallet apps this
//! server's domain vouches for.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Wallets: enrollment and the passkey (WebAuthn) relying party.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WalletConfig {
    /// WebAuthn relying party ID: a domain the wallets' passkeys are bound to. Defaults to
    /// the issuer's host, or `localhost` when that is an IP address.
    pub rp_id: Option<String>,
    /// Origins accepted in passkey ceremonies (`clientDataJSON.origin`). Defaults to
    /// `https://<rp_id>` (`http://localhost` for `localhost`) and the
    /// `android:apk-key-hash:...` origin of each of `android_apps`' signing certificates.
    pub origins: Vec<String>,
    /// How long an enrollment invitation can be redeemed.
    pub invitation_ttl_secs: u64,
    /// How long a wallet has to answer a passkey challenge.
    pub ceremony_ttl_secs: u64,
    /// Android builds of the wallet app allowed to use this domain's passkeys: published
    /// in `/.well-known/assetlinks.json` (Digital Asset Links, `get_login_creds`).
    pub android_apps: Vec<AndroidApp>,
    /// iOS builds of the wallet app (`TEAMID.bundle.id`) allowed the same: published in
    /// `/.well-known/apple-app-site-association` (`webcredentials`).
    pub ios_app_ids: Vec<String>,
}

/// One Android build of the wallet app: its package and the SHA-256 fingerprints of the
/// certificates it is signed with (`AA:BB:...`, as `keytool -list -v` prints them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AndroidApp {
    pub package_name: String,
    pub sha256_cert_fingerprints: Vec<String>,
}

impl WalletConfig {
    /// The relying party ID actually used for `issuer`.
    pub fn rp_id(&self, issuer: &str) -> String {
        if let Some(id) = &self.rp_id {
            return id.clone();
        }
        let host = issuer
            .split_once("://")
            .map_or(issuer, |(_, rest)| rest)
            .split(['/', '?', '#'])
            .next()
            .unwrap_or_default();
        let host = match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        };
        let is_ip = host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok();
        if is_ip || host.is_empty() {
            "localhost".to_owned()
        } else {
            host.to_ascii_lowercase()
        }
    }

    /// The accepted origins actually used for `issuer`.
    pub fn origins(&self, issuer: &str) -> Vec<String> {
        if !self.origins.is_empty() {
            return self.origins.clone();
        }
        let rp_id = self.rp_id(issuer);
        let web = if rp_id == "localhost" {
            "http://localhost".to_owned()
        } else {
            format!("https://{rp_id}")
        };
        // Android's Credential Manager names the calling app, not a web origin.
        let apps = self
            .android_apps
            .iter()
            .flat_map(|a| &a.sha256_cert_fingerprints)
            .filter_map(|f| fingerprint_bytes(f))
            .map(|digest| {
                format!(
                    "android:apk-key-hash:{}",
                    countersign_jose::b64url_encode(digest)
                )
            });
        std::iter::once(web).chain(apps).collect()
    }

    pub(super) fn validate(&self, issuer: &str) -> Result<(), ConfigError> {
        let rp_id = self.rp_id(issuer);
        let domain_ok = !rp_id.is_empty()
            && rp_id.len() <= 253
            && rp_id.split('.').all(|l| {
                !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !domain_ok {
            return Err(ConfigError::Invalid {
                key: "wallet.rp_id",
                reason: format!("{rp_id:?} is not a domain name"),
            });
        }
        for app in &self.android_apps {
            if !is_android_package(&app.package_name) {
                return Err(ConfigError::Invalid {
                    key: "wallet.android_apps",
                    reason: format!("{:?} is not an Android package name", app.package_name),
                });
            }
            if app.sha256_cert_fingerprints.is_empty() {
                return Err(ConfigError::Invalid {
                    key: "wallet.android_apps",
                    reason: format!("{} names no signing certificate", app.package_name),
                });
            }
            if let Some(bad) = app
                .sha256_cert_fingerprints
                .iter()
                .find(|f| fingerprint_bytes(f).is_none())
            {
                return Err(ConfigError::Invalid {
                    key: "wallet.android_apps",
                    reason: format!(
                        "{bad:?} is not a SHA-256 fingerprint (32 hex bytes joined by ':')"
                    ),
                });
            }
        }
        if let Some(bad) = self.ios_app_ids.iter().find(|id| !is_ios_app_id(id)) {
            return Err(ConfigError::Invalid {
                key: "wallet.ios_app_ids",
                reason: format!("{bad:?} is not TEAMID.bundle.id (a 10-character team ID)"),
            });
        }
        Ok(())
    }
}

/// The 32 bytes of a fingerprint written `AA:BB:...` (either case), or `None`.
fn fingerprint_bytes(fingerprint: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let mut parts = fingerprint.split(':');
    for byte in &mut out {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// Android's rule: at least two dot-separated segments, each a letter then letters,
/// digits or underscores.
fn is_android_package(name: &str) -> bool {
    let segments: Vec<&str> = name.split('.').collect();
    segments.len() >= 2
        && segments.iter().all(|s| {
            s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// `TEAMID.bundle.id`: a 10-character alphanumeric team ID, then a bundle ID.
fn is_ios_app_id(id: &str) -> bool {
    let Some((team, bundle)) = id.split_once('.') else {
        return false;
    };
    team.len() == 10
        && team.bytes().all(|b| b.is_ascii_alphanumeric())
        && !bundle.is_empty()
        && bundle
            .split('.')
            .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

impl Default for WalletConfig {
    fn default() -> Self {
        Self {
            rp_id: None,
            origins: Vec::new(),
            invitation_ttl_secs: 900,
            ceremony_ttl_secs: 300,
            android_apps: Vec::new(),
            ios_app_ids: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FINGERPRINT: &str = "14:6D:E9:83:C5:73:06:50:D8:EE:B9:95:2F:34:FC:64:16:A0:83:42:E6:1D:BE:A8:8A:04:96:B2:3F:CF:44:E5";

    #[test]
    fn android_apps_add_their_apk_key_hash_origin() {
        let config = WalletConfig {
            android_apps: vec![AndroidApp {
                package_name: "app.countersign.wallet".into(),
                sha256_cert_fingerprints: vec![FINGERPRINT.into()],
            }],
            ..WalletConfig::default()
        };
        assert_eq!(
            config.origins("https://auth.example.com"),
            [
                "https://auth.example.com",
                // The same bytes, base64url without padding.
                "android:apk-key-hash:FG3pg8VzBlDY7rmVLzT8ZBagg0LmHb6oigSWsj_PROU",
            ]
        );
        assert!(config.validate("https://auth.example.com").is_ok());
    }

    #[test]
    fn malformed_app_associations_name_their_key() {
        let bad = |c: WalletConfig| match c.validate("https://auth.example.com") {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("{other:?}"),
        };
        let app = |name: &str, fp: &str| WalletConfig {
            android_apps: vec![AndroidApp {
                package_name: name.into(),
                sha256_cert_fingerprints: vec![fp.into()],
            }],
            ..WalletConfig::default()
        };
        assert_eq!(bad(app("wallet", FINGERPRINT)), "wallet.android_apps");
        assert_eq!(bad(app("app.1wallet", FINGERPRINT)), "wallet.android_apps");
        assert_eq!(bad(app("app.wallet", "14:6D")), "wallet.android_apps");
        assert_eq!(
            bad(app("app.wallet", &format!("{FINGERPRINT}:00"))),
            "wallet.android_apps"
        );
        assert_eq!(
            bad(app("app.wallet", &FINGERPRINT.replace(':', ""))),
            "wallet.android_apps"
        );
        for id in [
            "app.countersign.wallet",
            "ABCDE.app.wallet",
            "ABCDE12345.",
            "ABCDE12345.a..b",
        ] {
            let config = WalletConfig {
                ios_app_ids: vec![id.into()],
                ..WalletConfig::default()
            };
            assert_eq!(bad(config), "wallet.ios_app_ids", "{id}");
        }
        let fine = WalletConfig {
            ios_app_ids: vec!["ABCDE12345.app.countersign.wallet".into()],
            ..WalletConfig::default()
        };
        assert!(fine.validate("https://auth.example.com").is_ok());
    }
}
