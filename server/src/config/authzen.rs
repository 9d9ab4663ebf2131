//! The AuthZEN Authorization API (`/access/v1`, docs/authzen.md): how its subjects,
//! resources and actions reach the policies, and its limits.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthzenConfig {
    /// AuthZEN resource and action property names read as the policies' argument fields
    /// (`context.arguments`), e.g. `ownerID = "owner"`. A property named like an argument
    /// field (`amount`, `owner`...) is read as it is.
    pub property_fields: BTreeMap<String, String>,
    /// Most evaluations in one `POST /access/v1/evaluations`.
    pub max_batch: usize,
    /// Most results in one search page (a request's `page.limit` is capped to it; it is
    /// also the default).
    pub max_page: usize,
}

impl Default for AuthzenConfig {
    fn default() -> Self {
        Self {
            property_fields: BTreeMap::new(),
            max_batch: 1000,
            max_page: 100,
        }
    }
}

impl AuthzenConfig {
    /// `fields`: the argument fields policies can read.
    pub(super) fn validate(&self, fields: &[&str]) -> Result<(), ConfigError> {
        if let Some((property, field)) = self
            .property_fields
            .iter()
            .find(|(_, field)| !fields.contains(&field.as_str()))
        {
            return Err(ConfigError::Invalid {
                key: "authzen.property_fields",
                reason: format!(
                    "{property:?} maps to {field:?}, which is not an argument field ({})",
                    fields.join(", ")
                ),
            });
        }
        if self.max_batch == 0 || self.max_page == 0 {
            return Err(ConfigError::Invalid {
                key: "authzen",
                reason: "max_batch and max_page must be at least 1".into(),
            });
        }
        Ok(())
    }
}
