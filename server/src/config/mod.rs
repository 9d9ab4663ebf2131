//! The one typed configuration of a Countersign server.
//!
//! Sources, later ones winning: built-in defaults (they work on a laptop), an optional TOML
//! file, environment variables `COUNTERSIGN_<KEY>` (nested keys joined with `__`, e.g.
//! `COUNTERSIGN_CIBA__POLL_INTERVAL_SECS=2`), then command-line flags. Unknown keys are
//! errors, and validation names the offending key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

mod admin_sso;
mod audit;
mod authzen;
mod digest;
mod limits;
mod load;
mod offboarding;
mod policy;
mod push;
mod signals;
mod wallet;
pub use admin_sso::AdminSsoConfig;
pub use audit::{AuditConfig, CheckpointSink};
pub use authzen::AuthzenConfig;
pub use digest::{REDACTED, redact_database_url};
pub use limits::RateLimitConfig;
pub use offboarding::{AgentFate, OffboardingConfig};
pub use policy::{ACTION_CLASSES, ARGUMENT_FIELDS, PolicyConfig, ToolConfig};
pub use push::{ApnsConfig, FcmConfig, PushAlert, PushConfig};
pub use signals::{SignalsConfig, TransmitterConfig};
pub use wallet::{AndroidApp, WalletConfig};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Socket address the HTTP server binds.
    pub listen: SocketAddr,
    /// `sqlite://PATH?mode=rwc` (embedded default) or `postgres://...`.
    pub database_url: String,
    /// The issuer identifier (a URL, no query or fragment). Defaults to `http://{listen}`.
    pub issuer: Option<String>,
    /// Directory holding the signing keys (files are created with mode 0600).
    pub keys_dir: PathBuf,
    /// Developer approvals (`/dev/approvals/...`); only allowed on a loopback listener.
    pub dev_approvals: bool,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Maximum number of pooled database connections.
    pub database_max_connections: u32,
    /// How long clients and humans read from the database are reused. Changes made through
    /// this server apply at once; changes made by another replica or the CLI within this.
    pub directory_cache_ttl_ms: u64,
    /// Log output: `text` or `json`.
    pub log_format: LogFormat,
    /// Reverse proxies (CIDR blocks) whose `X-Forwarded-For` names the client's address
    /// (`context.network.source_ip`). Without any, the connection's peer address is used.
    pub trusted_proxies: Vec<String>,
    pub ciba: CibaConfig,
    pub tokens: TokenConfig,
    pub notifications: NotificationConfig,
    pub wallet: WalletConfig,
    pub push: PushConfig,
    pub policy: PolicyConfig,
    pub audit: AuditConfig,
    pub signals: SignalsConfig,
    pub offboarding: OffboardingConfig,
    pub admin_sso: AdminSsoConfig,
    pub rate_limits: RateLimitConfig,
    /// The AuthZEN Authorization API (`/access/v1`).
    pub authzen: AuthzenConfig,
    /// The MCP gateway (`/mcp`): upstream MCP servers and how their tools' calls map to
    /// actions.
    pub gateway: countersign_gateway::GatewayConfig,
    /// RFC 9396 `authorization_details` types this deployment accepts, each with the JSON
    /// Schema its objects must satisfy.
    pub authorization_details_types: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CibaConfig {
    /// Lifetime of an authentication request when the client sends no `requested_expiry`.
    pub default_expiry_secs: u64,
    /// Upper bound for `requested_expiry`.
    pub max_expiry_secs: u64,
    /// Initial polling interval returned to poll and ping clients.
    pub poll_interval_secs: u64,
    /// Longest accepted `binding_message`, in characters.
    pub binding_message_max_chars: usize,
    /// Accepted clock skew for client assertions, signed requests and DPoP proofs.
    pub clock_skew_secs: u64,
    /// Longest accepted lifetime (`exp - iat`/`nbf`) of a client assertion.
    pub max_assertion_lifetime_secs: u64,
    /// How old a DPoP proof's `iat` may be.
    pub dpop_max_age_secs: u64,
    /// Extra scope values accepted besides `openid`, `profile` and `email`.
    pub extra_scopes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// Validity of an issued credential (`validUntil - validFrom`).
    pub access_token_ttl_secs: u64,
    pub id_token_ttl_secs: u64,
    /// `ttl` of published status lists: how long verifiers may cache one, and so the
    /// longest a revocation can go unseen.
    pub status_list_ttl_secs: u64,
    /// Renewal policy: for each `authorization_details` type that may be renewed without
    /// a fresh approval, how many seconds after the human's approval renewal stays
    /// possible (same task, same details). Types not listed (by default all, including
    /// `purchase_order`: every financial transaction needs its own approval) are never
    /// renewed.
    pub renewal_windows_secs: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationConfig {
    /// First retry delay for a failed ping/push delivery; doubles on each attempt.
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// Timeout of one delivery attempt.
    pub request_timeout_ms: u64,
    /// How often the worker looks for due deliveries when nothing wakes it.
    pub poll_interval_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "sqlite://countersign.db?mode=rwc".into(),
            issuer: None,
            keys_dir: PathBuf::from("countersign-keys"),
            dev_approvals: false,
            max_body_bytes: 64 * 1024,
            database_max_connections: 8,
            directory_cache_ttl_ms: 1000,
            log_format: LogFormat::Text,
            trusted_proxies: Vec::new(),
            ciba: CibaConfig::default(),
            tokens: TokenConfig::default(),
            notifications: NotificationConfig::default(),
            wallet: WalletConfig::default(),
            push: PushConfig::default(),
            policy: PolicyConfig::default(),
            audit: AuditConfig::default(),
            signals: SignalsConfig::default(),
            offboarding: OffboardingConfig::default(),
            admin_sso: AdminSsoConfig::default(),
            rate_limits: RateLimitConfig::default(),
            authzen: AuthzenConfig::default(),
            gateway: countersign_gateway::GatewayConfig::default(),
            authorization_details_types: default_authorization_details_types(),
        }
    }
}

impl Default for CibaConfig {
    fn default() -> Self {
        Self {
            default_expiry_secs: 300,
            max_expiry_secs: 3600,
            poll_interval_secs: 5,
            binding_message_max_chars: 128,
            clock_skew_secs: 30,
            max_assertion_lifetime_secs: 600,
            dpop_max_age_secs: 120,
            extra_scopes: Vec::new(),
        }
    }
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            access_token_ttl_secs: 900,
            id_token_ttl_secs: 300,
            status_list_ttl_secs: 10,
            renewal_windows_secs: BTreeMap::new(),
        }
    }
}

impl Default for NotificationConfig {
    fn default() -> Self {
        Self {
            initial_backoff_ms: 500,
            max_backoff_ms: 30_000,
            request_timeout_ms: 5_000,
            poll_interval_ms: 1_000,
        }
    }
}

/// The schema of a tool's calls behind the MCP gateway when the deployment declares none:
/// the gateway checks the arguments against the tool's own input schema.
fn gateway_tool_schema(kind: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "required": ["type", "arguments"],
        "properties": {
            "type": {"const": kind},
            "arguments": {"type": "object"}
        }
    })
}

/// Adds the types of tools behind the gateway that `types` does not declare yet.
fn declare(
    types: &mut BTreeMap<String, serde_json::Value>,
    tool_types: impl IntoIterator<Item = String>,
) {
    for kind in tool_types {
        if let std::collections::btree_map::Entry::Vacant(entry) = types.entry(kind) {
            let schema = gateway_tool_schema(entry.key());
            entry.insert(schema);
        }
    }
}

impl Config {
    /// Declares the `authorization_details` types of the gateway's tools that
    /// `authorization_details_types` does not (the ones its mapping names; at start, also
    /// the default types of the tools its upstreams list).
    pub fn declare_gateway_types(&mut self, tool_types: impl IntoIterator<Item = String>) {
        if self.gateway.enabled {
            let mapped = self.gateway.mapped_types();
            declare(
                &mut self.authorization_details_types,
                mapped.into_iter().chain(tool_types),
            );
        }
    }
}

/// The purchase-order type of the brief's procurement example, so a fresh server accepts
/// the documented flow without configuration.
fn default_authorization_details_types() -> BTreeMap<String, serde_json::Value> {
    let purchase_order = serde_json::json!({
        "type": "object",
        "required": ["type", "vendor", "amount", "currency"],
        "properties": {
            "type": {"const": "purchase_order"},
            "vendor": {"type": "string", "minLength": 1, "maxLength": 200},
            "amount": {"type": "number", "exclusiveMinimum": 0},
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "locations": {"type": "array", "items": {"type": "string"}},
            "actions": {"type": "array", "items": {"type": "string"}}
        }
    });
    BTreeMap::from([("purchase_order".to_owned(), purchase_order)])
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Parse(String),
    #[error("invalid configuration key `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
    /// A key whose name is built from the configuration (`gateway.upstreams.shop.url`).
    #[error(transparent)]
    InvalidAt(#[from] countersign_gateway::InvalidKey),
}

impl Config {
    /// The issuer identifier actually used.
    pub fn issuer(&self) -> String {
        match &self.issuer {
            Some(issuer) => issuer.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let issuer = self.issuer();
        self.validate_addresses(&issuer)?;
        self.validate_lifetimes()?;
        self.wallet.validate(&issuer)?;
        self.validate_renewal_windows()?;
        let mut detail_types = self.authorization_details_types.clone();
        declare(&mut detail_types, self.gateway.mapped_types());
        self.policy.validate(&detail_types)?;
        self.signals.validate()?;
        self.audit.validate()?;
        self.rate_limits.validate()?;
        self.admin_sso.validate()?;
        self.gateway.validate()?;
        self.authzen.validate(ARGUMENT_FIELDS)?;
        self.validate_rest()
    }

    /// The issuer, the database URL, and developer approvals only on loopback.
    fn validate_addresses(&self, issuer: &str) -> Result<(), ConfigError> {
        let scheme_ok = issuer.starts_with("https://") || issuer.starts_with("http://");
        if !scheme_ok || issuer.contains(['?', '#']) {
            return Err(ConfigError::Invalid {
                key: "issuer",
                reason: format!("{issuer:?} must be an http(s) URL without query or fragment"),
            });
        }
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid {
                key: "database_url",
                reason: "must start with sqlite:, postgres:// or postgresql://".into(),
            });
        }
        if self.dev_approvals && !self.listen.ip().is_loopback() {
            return Err(ConfigError::Invalid {
                key: "dev_approvals",
                reason: format!(
                    "developer approvals are only allowed on a loopback listener, not {}",
                    self.listen
                ),
            });
        }
        Ok(())
    }

    /// Expiries, intervals, token lifetimes and the body limit.
    fn validate_lifetimes(&self) -> Result<(), ConfigError> {
        if self.ciba.default_expiry_secs == 0
            || self.ciba.default_expiry_secs > self.ciba.max_expiry_secs
        {
            return Err(ConfigError::Invalid {
                key: "ciba.default_expiry_secs",
                reason: "must be between 1 and ciba.max_expiry_secs".into(),
            });
        }
        if self.ciba.poll_interval_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "ciba.poll_interval_secs",
                reason: "must be at least 1".into(),
            });
        }
        if self.tokens.access_token_ttl_secs == 0
            || self.tokens.id_token_ttl_secs == 0
            || self.tokens.status_list_ttl_secs == 0
        {
            return Err(ConfigError::Invalid {
                key: "tokens",
                reason: "token lifetimes must be at least 1 second".into(),
            });
        }
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid {
                key: "max_body_bytes",
                reason: "must be at least 1024".into(),
            });
        }
        if self.wallet.invitation_ttl_secs == 0 || self.wallet.ceremony_ttl_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "wallet",
                reason: "invitation and ceremony lifetimes must be at least 1 second".into(),
            });
        }
        Ok(())
    }

    fn validate_renewal_windows(&self) -> Result<(), ConfigError> {
        for (name, window) in &self.tokens.renewal_windows_secs {
            if !self.authorization_details_types.contains_key(name) {
                return Err(ConfigError::Invalid {
                    key: "tokens.renewal_windows_secs",
                    reason: format!("{name:?} is not one of authorization_details_types"),
                });
            }
            if *window == 0 {
                return Err(ConfigError::Invalid {
                    key: "tokens.renewal_windows_secs",
                    reason: format!("the window for {name:?} must be at least 1 second"),
                });
            }
        }
        Ok(())
    }

    /// Checkpoints, trusted proxies, and the `authorization_details` schemas.
    fn validate_rest(&self) -> Result<(), ConfigError> {
        if self.audit.checkpoint_interval_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "audit.checkpoint_interval_secs",
                reason: "must be at least 1".into(),
            });
        }
        if let Some(bad) = self
            .trusted_proxies
            .iter()
            .find(|p| p.parse::<ipnet::IpNet>().is_err())
        {
            return Err(ConfigError::Invalid {
                key: "trusted_proxies",
                reason: format!("{bad:?} is not a CIDR block"),
            });
        }
        for (name, schema) in &self.authorization_details_types {
            if jsonschema::validator_for(schema).is_err() {
                return Err(ConfigError::Invalid {
                    key: "authorization_details_types",
                    reason: format!("the schema for {name:?} is not a valid JSON Schema"),
                });
            }
        }
        Ok(())
    }
}

/// A secret given inline (e.g. from an environment variable) or as a file to read (its
/// content trimmed); `file_key` names the file setting in the error.
fn inline_or_file(
    inline: Option<&String>,
    file: Option<&PathBuf>,
    file_key: &'static str,
) -> Result<Option<String>, ConfigError> {
    if let Some(value) = inline {
        return Ok(Some(value.clone()));
    }
    match file {
        Some(path) => std::fs::read_to_string(path)
            .map(|s| Some(s.trim().to_owned()))
            .map_err(|e| ConfigError::Invalid {
                key: file_key,
                reason: format!("cannot read {}: {e}", path.display()),
            }),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_work_on_a_laptop() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.issuer(), "http://127.0.0.1:8080");
        assert!(c.database_url.starts_with("sqlite:"));
        assert!(c.authorization_details_types.contains_key("purchase_order"));
    }

    #[test]
    fn env_overrides_nested_keys_with_types() {
        let c = Config::load(
            None,
            env(&[
                ("COUNTERSIGN_LISTEN", "127.0.0.1:9999"),
                ("COUNTERSIGN_CIBA__POLL_INTERVAL_SECS", "2"),
                ("COUNTERSIGN_ISSUER", "https://auth.example.com/"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.ciba.poll_interval_secs, 2);
        assert_eq!(c.issuer(), "https://auth.example.com");
    }

    #[test]
    fn the_wallet_s_variable_is_not_the_server_s_concern() {
        let c = Config::load(
            None,
            env(&[
                ("COUNTERSIGN_WALLET_STATE", "/tmp/wallet.json"),
                ("COUNTERSIGN_WALLET__INVITATION_TTL_SECS", "60"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.wallet.invitation_ttl_secs, 60,
            "the server's own wallet keys still apply"
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let err = Config::load(None, env(&[("COUNTERSIGN_NO_SUCH_KEY", "1")])).unwrap_err();
        assert!(err.to_string().contains("no_such_key"), "{err}");
        let err = Config::load(
            None,
            env(&[
                ("COUNTERSIGN_LISTEN", "0.0.0.0:8080"),
                ("COUNTERSIGN_DEV_APPROVALS", "true"),
            ]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("`dev_approvals`"), "{err}");
        let err = Config::load(None, env(&[("COUNTERSIGN_ISSUER", "ftp://x")])).unwrap_err();
        assert!(err.to_string().contains("`issuer`"), "{err}");
        let err = Config::load(
            None,
            env(&[(
                "COUNTERSIGN_TOKENS__RENEWAL_WINDOWS_SECS",
                "{ deploy = 60 }",
            )]),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("`tokens.renewal_windows_secs`"),
            "{err}"
        );
        let ok = Config::load(
            None,
            env(&[(
                "COUNTERSIGN_TOKENS__RENEWAL_WINDOWS_SECS",
                "{ purchase_order = 60 }",
            )]),
        )
        .unwrap();
        assert_eq!(ok.tokens.renewal_windows_secs["purchase_order"], 60);
    }

    #[test]
    fn the_relying_party_follows_the_issuer_unless_configured() {
        let w = WalletConfig::default();
        assert_eq!(
            w.rp_id("https://Auth.Example.com:8443/x"),
            "auth.example.com"
        );
        assert_eq!(
            w.origins("https://auth.example.com"),
            ["https://auth.example.com"]
        );
        assert_eq!(w.rp_id("http://127.0.0.1:8080"), "localhost");
        assert_eq!(w.origins("http://127.0.0.1:8080"), ["http://localhost"]);
        let err =
            Config::load(None, env(&[("COUNTERSIGN_WALLET__RP_ID", "not a domain")])).unwrap_err();
        assert!(err.to_string().contains("`wallet.rp_id`"), "{err}");
    }

    #[test]
    fn file_overlays_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "dev_approvals = true\n[tokens]\naccess_token_ttl_secs = 60\n",
        )
        .unwrap();
        let c = Config::load(Some(&path), env(&[])).unwrap();
        assert!(c.dev_approvals);
        assert_eq!(c.tokens.access_token_ttl_secs, 60);
        assert_eq!(c.tokens.id_token_ttl_secs, 300);
    }
}
