//! What an update changed, field by field, as an event's detail records it.

use serde::Serialize;
use serde_json::{Map, Value, json};

/// The fields an update changed: `{FIELD: {"from": OLD, "to": NEW}}`, only those that
/// differ.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes(Map<String, Value>);

impl Changes {
    /// Notes `name` when `from` and `to` differ.
    pub fn field<T: Serialize + PartialEq + ?Sized>(
        &mut self,
        name: &str,
        from: &T,
        to: &T,
    ) -> &mut Self {
        if from != to {
            let as_json = |v: &T| serde_json::to_value(v).unwrap_or(Value::Null);
            self.0.insert(
                name.to_owned(),
                json!({ "from": as_json(from), "to": as_json(to) }),
            );
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The changed field names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.0.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// `{"changes": {...}}`, an event's detail.
    pub fn into_detail(self) -> Value {
        json!({ "changes": Value::Object(self.0) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_differing_fields_are_recorded_with_both_values() {
        let mut c = Changes::default();
        c.field("role", "buyer", "approver")
            .field("title", "Buyer", "Buyer")
            .field("manager", &Some("bob"), &None)
            .field("tools", &None, &Some(vec!["erp"]));
        assert_eq!(c.names(), ["manager", "role", "tools"]);
        assert_eq!(
            c.into_detail(),
            json!({"changes": {
                "role": {"from": "buyer", "to": "approver"},
                "manager": {"from": "bob", "to": null},
                "tools": {"from": null, "to": ["erp"]},
            }})
        );
        assert!(Changes::default().is_empty());
    }
}
