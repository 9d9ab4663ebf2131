//! Shared Signals: the transmitters (identity providers) whose Security Event Tokens the
//! server accepts at `POST /ssf/events` (RFC 8935 push delivery).

use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalsConfig {
    pub transmitters: Vec<TransmitterConfig>,
    /// The oldest `iat` accepted (and how long a SET's `jti` is remembered).
    pub max_age_secs: u64,
    /// How long to wait between polls of a transmitter that had nothing (RFC 8936).
    pub poll_interval_secs: u64,
}

/// One transmitter: its `iss`, its keys, and the `aud` its SETs must carry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransmitterConfig {
    pub issuer: String,
    /// Its JWK Set, fetched (and fetched again for an unknown `kid`, at most once a
    /// minute).
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// Or its JWK Set inline (JSON text).
    #[serde(default)]
    pub jwks: Option<String>,
    /// Expected `aud` (default: this server's issuer URL).
    #[serde(default)]
    pub audience: Option<String>,
    /// Also poll this transmitter for SETs (RFC 8936 poll delivery) at this endpoint.
    #[serde(default)]
    pub poll_url: Option<String>,
    /// The bearer token the poll endpoint requires, inline ...
    #[serde(default)]
    pub poll_token: Option<String>,
    /// ... or read from this file at start-up.
    #[serde(default)]
    pub poll_token_file: Option<std::path::PathBuf>,
}

impl TransmitterConfig {
    /// The poll endpoint's bearer token, if any.
    pub fn poll_token(&self) -> Result<Option<String>, ConfigError> {
        super::inline_or_file(
            self.poll_token.as_ref(),
            self.poll_token_file.as_ref(),
            "signals.transmitters[].poll_token_file",
        )
    }
}

impl SignalsConfig {
    pub const DEFAULT_MAX_AGE_SECS: u64 = 24 * 3600;
    pub const DEFAULT_POLL_INTERVAL_SECS: u64 = 30;

    pub fn poll_interval_secs(&self) -> u64 {
        if self.poll_interval_secs == 0 {
            Self::DEFAULT_POLL_INTERVAL_SECS
        } else {
            self.poll_interval_secs
        }
    }

    pub fn max_age_secs(&self) -> u64 {
        if self.max_age_secs == 0 {
            Self::DEFAULT_MAX_AGE_SECS
        } else {
            self.max_age_secs
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            key: "signals.transmitters",
            reason,
        };
        for (i, t) in self.transmitters.iter().enumerate() {
            if t.issuer.trim().is_empty() {
                return Err(invalid(format!("[{i}].issuer must not be empty")));
            }
            match (&t.jwks_uri, &t.jwks) {
                (Some(uri), None) if uri.starts_with("https://") || uri.starts_with("http://") => {}
                (Some(_), None) => {
                    return Err(invalid(format!("[{i}].jwks_uri must be an http(s) URL")));
                }
                (None, Some(jwks)) => {
                    serde_json::from_str::<countersign_jose::JwkSet>(jwks)
                        .map_err(|e| invalid(format!("[{i}].jwks is not a JWK Set: {e}")))?;
                }
                _ => {
                    return Err(invalid(format!(
                        "[{i}]: give exactly one of jwks_uri and jwks"
                    )));
                }
            }
            if let Some(url) = &t.poll_url
                && !(url.starts_with("https://") || url.starts_with("http://"))
            {
                return Err(invalid(format!("[{i}].poll_url must be an http(s) URL")));
            }
            if t.poll_token.is_some() && t.poll_token_file.is_some() {
                return Err(invalid(format!(
                    "[{i}]: give poll_token or poll_token_file, not both"
                )));
            }
            t.poll_token()?;
        }
        Ok(())
    }
}
