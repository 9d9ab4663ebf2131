//! Configuration of the policy engine: what the deployment's actions are (and their class),
//! its tools, network zones, time zone, and how baselines learn.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// The built-in action classes. A deployment may declare more (any identifier).
pub const ACTION_CLASSES: &[&str] = &["read", "write", "destructive", "external"];

/// The argument fields a request can set: the policy schema's arguments (`policy::schema::ARGUMENTS`) less `amount_cents`, which is
/// derived from `amount` (a test keeps the two lists in step).
pub const ARGUMENT_FIELDS: &[&str] = &[
    "amount",
    "currency",
    "vendor",
    "quantity",
    "target",
    "environment",
    "classification",
    "owner",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// IANA time zone for `context.time` (hour, weekday), e.g. `Europe/Berlin`.
    pub time_zone: String,
    /// The deployment's environment (`context.environment`), e.g. `production`.
    pub environment: String,
    /// Each `authorization_details` type's class: `read`, `write`, `destructive`,
    /// `external`, or a custom class. In Cedar the type is an action and its class an
    /// action group (`action in Action::"external"`). Types not listed are `write`.
    pub actions: BTreeMap<String, String>,
    /// The actions a human performs rather than an agent: their Cedar principal is the
    /// `Human` a request names (an AuthZEN subject of type `user`, docs/authzen.md), not
    /// an `Agent`. Each must be one of `authorization_details_types`.
    pub human_actions: BTreeSet<String>,
    /// Tools and apps agents act on (Cedar resources), by id.
    pub tools: BTreeMap<String, ToolConfig>,
    /// Named network zones (`context.network.zones`): CIDR blocks per name.
    pub network_zones: BTreeMap<String, Vec<String>>,
    /// Samples an agent needs for an action before anomaly ratios are given to policies.
    pub baseline_min_samples: u32,
    /// How far back baselines look.
    pub baseline_window_secs: u64,
    /// How long a replica reuses a baseline it loaded before reading it again (its own
    /// decisions update it at once).
    pub baseline_refresh_ms: u64,
    /// How often a server checks whether another replica or the CLI activated a policy
    /// version.
    pub reload_interval_ms: u64,
    /// The longest credential validity a policy's `@validity` may grant.
    pub max_validity_secs: u64,
}

/// A tool or app agents act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolConfig {
    /// `low`, `medium`, `high`, `critical` (free text; policies compare it).
    #[serde(default = "unknown")]
    pub risk_level: String,
    /// e.g. `public`, `internal`, `confidential`, `restricted`.
    #[serde(default = "unknown")]
    pub data_classification: String,
    /// e.g. `erp`, `crm`, `email`, `infrastructure`.
    #[serde(default = "unknown")]
    pub category: String,
    /// RFC 9396 `locations` that name this tool in a request.
    #[serde(default)]
    pub locations: Vec<String>,
}

fn unknown() -> String {
    "unknown".into()
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            time_zone: "UTC".into(),
            environment: "development".into(),
            actions: BTreeMap::from([("purchase_order".to_owned(), "external".to_owned())]),
            human_actions: BTreeSet::new(),
            tools: BTreeMap::new(),
            network_zones: BTreeMap::new(),
            baseline_min_samples: 5,
            baseline_window_secs: 30 * 86_400,
            baseline_refresh_ms: 60_000,
            reload_interval_ms: 1_000,
            max_validity_secs: 86_400,
        }
    }
}

impl PolicyConfig {
    /// The class of `action` (an `authorization_details` type).
    pub fn class_of(&self, action: &str) -> &str {
        self.actions.get(action).map_or("write", String::as_str)
    }

    pub(super) fn validate(
        &self,
        detail_types: &BTreeMap<String, serde_json::Value>,
    ) -> Result<(), ConfigError> {
        if jiff::tz::TimeZone::get(&self.time_zone).is_err() {
            return Err(ConfigError::Invalid {
                key: "policy.time_zone",
                reason: format!("{:?} is not an IANA time zone", self.time_zone),
            });
        }
        let ident = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        for (action, class) in &self.actions {
            if !detail_types.contains_key(action) {
                return Err(ConfigError::Invalid {
                    key: "policy.actions",
                    reason: format!("{action:?} is not one of authorization_details_types"),
                });
            }
            if !ident(class) || detail_types.contains_key(class) {
                return Err(ConfigError::Invalid {
                    key: "policy.actions",
                    reason: format!(
                        "the class {class:?} of {action:?} must be an identifier that is not also an action"
                    ),
                });
            }
        }
        if let Some(action) = self
            .human_actions
            .iter()
            .find(|a| !detail_types.contains_key(*a))
        {
            return Err(ConfigError::Invalid {
                key: "policy.human_actions",
                reason: format!("{action:?} is not one of authorization_details_types"),
            });
        }
        for name in detail_types.keys() {
            if !ident(name) || ACTION_CLASSES.contains(&name.as_str()) || name == "authenticate" {
                return Err(ConfigError::Invalid {
                    key: "authorization_details_types",
                    reason: format!(
                        "{name:?} cannot name a policy action (letters, digits, _ and -; not a class name)"
                    ),
                });
            }
        }
        for (zone, blocks) in &self.network_zones {
            for block in blocks {
                if block.parse::<ipnet::IpNet>().is_err() {
                    return Err(ConfigError::Invalid {
                        key: "policy.network_zones",
                        reason: format!("{block:?} in zone {zone:?} is not a CIDR block"),
                    });
                }
            }
        }
        if self.max_validity_secs == 0 || self.reload_interval_ms == 0 {
            return Err(ConfigError::Invalid {
                key: "policy",
                reason: "max_validity_secs and reload_interval_ms must be at least 1".into(),
            });
        }
        Ok(())
    }
}
