//! The accepted `authorization_details` types (RFC 9396) and the check of a request's
//! entries against their JSON Schemas, compiled once from the configuration.

use std::collections::BTreeMap;

use serde_json::Value;

use super::CibaError;

/// A compiled JSON Schema per accepted `authorization_details` type.
pub struct DetailSchemas(BTreeMap<String, jsonschema::Validator>);

impl DetailSchemas {
    /// Compiles `types` (type name to JSON Schema); the error names the configuration key.
    pub fn compile<'a>(
        types: impl IntoIterator<Item = (&'a String, &'a Value)>,
    ) -> Result<Self, String> {
        let mut schemas = BTreeMap::new();
        for (name, schema) in types {
            let validator = jsonschema::validator_for(schema)
                .map_err(|e| format!("authorization_details_types.{name}: {e}"))?;
            schemas.insert(name.clone(), validator);
        }
        Ok(Self(schemas))
    }

    /// Checks every entry against its type's JSON Schema and returns the array as stored
    /// (JSON text).
    pub fn check(&self, items: &[Value]) -> Result<String, CibaError> {
        for (i, item) in items.iter().enumerate() {
            let kind = item.get("type").and_then(Value::as_str).ok_or_else(|| {
                CibaError::InvalidAuthorizationDetails(format!("entry {i} has no string type"))
            })?;
            let schema = self.0.get(kind).ok_or_else(|| {
                CibaError::InvalidAuthorizationDetails(format!("type {kind:?} is not supported"))
            })?;
            if let Some(error) = schema.iter_errors(item).next() {
                return Err(CibaError::InvalidAuthorizationDetails(format!(
                    "entry {i} ({kind}): {error} at {}",
                    error.instance_path()
                )));
            }
        }
        serde_json::to_string(items)
            .map_err(|e| CibaError::InvalidAuthorizationDetails(e.to_string()))
    }
}
