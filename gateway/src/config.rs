//! The gateway's part of the server's typed configuration (`[gateway]`): the upstream MCP
//! servers, how each tool's calls map to an action, and where injected secrets come from.
//!
//! ```toml
//! [gateway]
//! enabled = true
//!
//! [gateway.upstreams.shop]
//! url = "https://shop.internal/mcp"            # Streamable HTTP, or:
//! # command = ["python3", "shop_server.py"]    # a stdio child process
//! headers = { "X-Api-Key" = "secret:shop_api_key" }
//!
//! [gateway.tools."shop.place_order"]
//! type = "purchase_order"
//! resource = "erp"
//! amount = "total"          # the argument holding the amount
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Separates an upstream's name from its tool's name in the names agents see
/// (`shop.place_order`): a character MCP allows in tool names and upstream names may not
/// contain.
pub const NAMESPACE_SEPARATOR: char = '.';

/// Largest number of upstreams; each is a connection (or a process) held open.
const MAX_UPSTREAMS: usize = 64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Serve MCP at `/mcp` on the server's listener.
    pub enabled: bool,
    /// The MCP servers behind the gateway, by name (the namespace of their tools).
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// Per-tool mapping of calls to actions, by namespaced tool name. Tools not listed
    /// map by default: type = the namespaced tool name, arguments verbatim.
    pub tools: BTreeMap<String, ToolMapping>,
    /// Where `secret:NAME` values come from: a TOML file of `NAME = "value"` lines
    /// (read at start, mode 0600 or stricter) and/or environment variables
    /// `COUNTERSIGN_SECRET_<NAME>`; the file wins.
    pub secrets_file: Option<PathBuf>,
    /// How long a call may be held for a human's approval before it ends with an error
    /// (at most the CIBA request's own expiry).
    pub hold_timeout_secs: u64,
    /// How often a held call sends `notifications/progress` (clients that reset their
    /// timeout on progress keep waiting).
    pub progress_interval_ms: u64,
    /// How long one retry of a held call (MCP 2026-07-28, with its request state) waits
    /// before it answers `input_required` again: shorter than clients' request timeouts
    /// (60 s in the official SDKs); the client retries until the hold ends.
    pub retry_hold_secs: u64,
    /// Timeout of one call to an upstream.
    pub upstream_timeout_ms: u64,
    /// How many held calls one agent may have waiting as tasks (MCP Tasks extension) at
    /// once; each asks a human. A call past it ends with a tool error, asking no one.
    pub max_held_tasks: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            upstreams: BTreeMap::new(),
            tools: BTreeMap::new(),
            secrets_file: None,
            hold_timeout_secs: 300,
            progress_interval_ms: 2_000,
            retry_hold_secs: 30,
            upstream_timeout_ms: 30_000,
            max_held_tasks: 16,
        }
    }
}

/// One upstream MCP server: exactly one of `url` (Streamable HTTP) and `command` (a stdio
/// child process).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    pub url: Option<String>,
    /// Program and arguments, started once and kept running.
    pub command: Option<Vec<String>>,
    /// Environment of the child process; values may be `secret:NAME`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Headers sent with every call to an HTTP upstream; values may be `secret:NAME`.
    /// Injected by the gateway, never visible to agents.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// How calls of one tool become an RFC 9396 `authorization_details` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolMapping {
    /// The entry's `type` (default: the namespaced tool name).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The tool id policies see as the resource (its risk level and data
    /// classification come from `policy.tools`).
    pub resource: Option<String>,
    /// The argument holding each fact policies read; by default the argument of the same
    /// name, when there is one.
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub vendor: Option<String>,
    pub quantity: Option<String>,
    pub target: Option<String>,
    pub environment: Option<String>,
    /// The data classification of what the tool handles, as a fixed value.
    pub classification: Option<String>,
}

/// A configuration value that is wrong, with the key that holds it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration key `{key}`: {reason}")]
pub struct InvalidKey {
    pub key: String,
    pub reason: String,
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> InvalidKey {
    InvalidKey {
        key: key.into(),
        reason: reason.into(),
    }
}

/// Whether `name` can be an upstream's name (the namespace of its tools).
pub fn is_upstream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Whether `kind` can be an `authorization_details` type the policies name as an action.
pub fn is_type_name(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= 64
        && kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The `secret:NAME` a value refers to, if it is one.
pub fn secret_name(value: &str) -> Option<&str> {
    value.strip_prefix("secret:")
}

impl GatewayConfig {
    /// Checks what can be checked before any upstream is reached.
    pub fn validate(&self) -> Result<(), InvalidKey> {
        if !self.enabled {
            return Ok(());
        }
        if self.upstreams.is_empty() {
            return Err(invalid(
                "gateway.upstreams",
                "the gateway needs at least one upstream",
            ));
        }
        if self.upstreams.len() > MAX_UPSTREAMS {
            return Err(invalid(
                "gateway.upstreams",
                format!("at most {MAX_UPSTREAMS} upstreams"),
            ));
        }
        for (name, upstream) in &self.upstreams {
            let key = format!("gateway.upstreams.{name}");
            if !is_upstream_name(name) {
                return Err(invalid(
                    key,
                    "an upstream's name is 1-32 of a-z, 0-9, '_' and '-' (it prefixes its tools' names)",
                ));
            }
            upstream.validate(&key)?;
        }
        for (tool, mapping) in &self.tools {
            let key = format!("gateway.tools.\"{tool}\"");
            let Some((upstream, name)) = tool.split_once(NAMESPACE_SEPARATOR) else {
                return Err(invalid(key, "name tools as <upstream>.<tool>"));
            };
            if name.is_empty() || !self.upstreams.contains_key(upstream) {
                return Err(invalid(
                    key,
                    format!("{upstream:?} is not one of gateway.upstreams"),
                ));
            }
            if let Some(kind) = &mapping.kind
                && !is_type_name(kind)
            {
                return Err(invalid(
                    format!("{key}.type"),
                    "must be 1-64 of A-Z, a-z, 0-9, '_' and '-' (policies name it as an action)",
                ));
            }
        }
        self.check_limits()
    }

    /// The holding and timing settings, each within its range.
    fn check_limits(&self) -> Result<(), InvalidKey> {
        if self.hold_timeout_secs == 0 {
            return Err(invalid("gateway.hold_timeout_secs", "must be at least 1"));
        }
        if !(100..=60_000).contains(&self.progress_interval_ms) {
            return Err(invalid(
                "gateway.progress_interval_ms",
                "must be between 100 and 60000",
            ));
        }
        if self.hold_timeout_secs > 86_400 {
            return Err(invalid(
                "gateway.hold_timeout_secs",
                "must be at most 86400",
            ));
        }
        if !(1..=300).contains(&self.retry_hold_secs) {
            return Err(invalid(
                "gateway.retry_hold_secs",
                "must be between 1 and 300",
            ));
        }
        if self.upstream_timeout_ms == 0 {
            return Err(invalid("gateway.upstream_timeout_ms", "must be at least 1"));
        }
        if !(1..=1_000).contains(&self.max_held_tasks) {
            return Err(invalid(
                "gateway.max_held_tasks",
                "must be between 1 and 1000",
            ));
        }
        Ok(())
    }

    /// The `authorization_details` types the tool mappings name.
    pub fn mapped_types(&self) -> Vec<String> {
        self.tools.values().filter_map(|m| m.kind.clone()).collect()
    }

    /// Every `secret:NAME` the configuration refers to, with the key that names it.
    pub fn secret_references(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (name, upstream) in &self.upstreams {
            for (kind, values) in [("headers", &upstream.headers), ("env", &upstream.env)] {
                for (var, value) in values {
                    if let Some(secret) = secret_name(value) {
                        out.push((
                            format!("gateway.upstreams.{name}.{kind}.{var}"),
                            secret.to_owned(),
                        ));
                    }
                }
            }
        }
        out
    }
}

impl UpstreamConfig {
    fn validate(&self, key: &str) -> Result<(), InvalidKey> {
        match (&self.url, &self.command) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(invalid(key, "set exactly one of url and command"));
            }
            (Some(url), None) => {
                let ok = (url.starts_with("https://") || url.starts_with("http://"))
                    && !url.contains('#')
                    && url.len() > "http://".len();
                if !ok {
                    return Err(invalid(
                        format!("{key}.url"),
                        format!("{url:?} is not an http(s) URL"),
                    ));
                }
                if !self.env.is_empty() {
                    return Err(invalid(
                        format!("{key}.env"),
                        "env is for command upstreams; an HTTP upstream takes headers",
                    ));
                }
            }
            (None, Some(command)) => {
                if command.first().is_none_or(|program| program.is_empty()) {
                    return Err(invalid(format!("{key}.command"), "names no program"));
                }
                if !self.headers.is_empty() {
                    return Err(invalid(
                        format!("{key}.headers"),
                        "headers are for url upstreams; a command upstream takes env",
                    ));
                }
            }
        }
        for (header, value) in &self.headers {
            let name_ok = !header.is_empty()
                && header
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
            let reserved = [
                "authorization",
                "dpop",
                "host",
                "content-length",
                "mcp-session-id",
            ]
            .contains(&header.to_ascii_lowercase().as_str());
            if !name_ok || reserved {
                return Err(invalid(
                    format!("{key}.headers"),
                    format!("{header:?} cannot be set (not a header name, or the gateway's own)"),
                ));
            }
            if value.bytes().any(|b| b.is_ascii_control()) {
                return Err(invalid(
                    format!("{key}.headers.{header}"),
                    "contains a control character",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled(upstreams: &[(&str, UpstreamConfig)]) -> GatewayConfig {
        GatewayConfig {
            enabled: true,
            upstreams: upstreams
                .iter()
                .map(|(n, u)| ((*n).to_owned(), u.clone()))
                .collect(),
            ..GatewayConfig::default()
        }
    }

    fn http(url: &str) -> UpstreamConfig {
        UpstreamConfig {
            url: Some(url.into()),
            command: None,
            env: BTreeMap::new(),
            headers: BTreeMap::new(),
        }
    }

    #[test]
    fn a_disabled_gateway_needs_nothing() {
        assert_eq!(GatewayConfig::default().validate(), Ok(()));
    }

    #[test]
    fn errors_name_the_key_that_is_wrong() {
        let key = |c: &GatewayConfig| c.validate().map_err(|e| e.key);
        assert_eq!(key(&enabled(&[])), Err("gateway.upstreams".into()));
        assert_eq!(
            key(&enabled(&[("Shop", http("http://x/mcp"))])),
            Err("gateway.upstreams.Shop".into())
        );
        assert_eq!(
            key(&enabled(&[("shop", http("ftp://x/mcp"))])),
            Err("gateway.upstreams.shop.url".into())
        );
        let mut both = http("http://x/mcp");
        both.command = Some(vec!["server".into()]);
        assert_eq!(
            key(&enabled(&[("shop", both)])),
            Err("gateway.upstreams.shop".into())
        );
        let mut no_program = http("http://x/mcp");
        no_program.url = None;
        no_program.command = Some(vec![String::new()]);
        assert_eq!(
            key(&enabled(&[("shop", no_program)])),
            Err("gateway.upstreams.shop.command".into())
        );
        let mut sneaky = http("http://x/mcp");
        sneaky
            .headers
            .insert("Authorization".into(), "Bearer x".into());
        assert_eq!(
            key(&enabled(&[("shop", sneaky)])),
            Err("gateway.upstreams.shop.headers".into())
        );
        let mut split = http("http://x/mcp");
        split
            .headers
            .insert("X-Key".into(), "a\r\nX-Evil: 1".into());
        assert_eq!(
            key(&enabled(&[("shop", split)])),
            Err("gateway.upstreams.shop.headers.X-Key".into())
        );
        let mut unknown_tool = enabled(&[("shop", http("http://x/mcp"))]);
        unknown_tool
            .tools
            .insert("crm.read".into(), ToolMapping::default());
        assert_eq!(key(&unknown_tool), Err("gateway.tools.\"crm.read\"".into()));
        let mut endless = enabled(&[("shop", http("http://x/mcp"))]);
        endless.retry_hold_secs = 0;
        assert_eq!(key(&endless), Err("gateway.retry_hold_secs".into()));
        let mut no_tasks = enabled(&[("shop", http("http://x/mcp"))]);
        no_tasks.max_held_tasks = 0;
        assert_eq!(key(&no_tasks), Err("gateway.max_held_tasks".into()));
    }

    #[test]
    fn secret_references_name_their_keys() {
        let mut upstream = http("http://x/mcp");
        upstream
            .headers
            .insert("X-Api-Key".into(), "secret:shop_key".into());
        upstream.headers.insert("X-Plain".into(), "visible".into());
        let config = enabled(&[("shop", upstream)]);
        assert_eq!(
            config.secret_references(),
            vec![(
                "gateway.upstreams.shop.headers.X-Api-Key".to_owned(),
                "shop_key".to_owned()
            )]
        );
    }
}
