//! A tool call as the action policies decide: one RFC 9396 `authorization_details` entry
//! carrying the call's arguments verbatim (what the gateway will forward, and what an
//! approval signs) and, beside them, the facts policies read (amount, vendor, ...).

use serde_json::{Map, Value};

use crate::config::ToolMapping;

/// Largest serialized arguments the gateway puts before a policy and a human. Bigger
/// calls are refused rather than shown truncated.
pub const MAX_ARGUMENTS_BYTES: usize = 16 * 1024;

/// The entry's member holding the call's arguments.
pub const ARGUMENTS: &str = "arguments";

/// What a call asks to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// The `authorization_details` entry.
    pub detail: Value,
    /// The tool id policies see as the resource.
    pub resource: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("the arguments are {0} bytes; at most {MAX_ARGUMENTS_BYTES} can be decided")]
    TooLarge(usize),
    #[error("argument {name:?} is mapped to {fact} but is not a {expected}")]
    WrongType {
        name: String,
        fact: &'static str,
        expected: &'static str,
    },
}

/// Maps a call of `tool` (namespaced) with `arguments`.
pub fn action(
    tool: &str,
    arguments: &Map<String, Value>,
    mapping: Option<&ToolMapping>,
) -> Result<Action, MappingError> {
    let size = serde_json::to_vec(arguments).map_or(usize::MAX, |b| b.len());
    if size > MAX_ARGUMENTS_BYTES {
        return Err(MappingError::TooLarge(size));
    }
    let default = ToolMapping::default();
    let mapping = mapping.unwrap_or(&default);
    let kind = mapping.kind.clone().unwrap_or_else(|| default_type(tool));
    let mut detail = Map::new();
    detail.insert("type".into(), Value::String(kind));
    let numbers = [("amount", &mapping.amount), ("quantity", &mapping.quantity)];
    for (fact, argument) in numbers {
        if let Some(value) = fact_value(arguments, fact, argument.as_deref(), "number")? {
            detail.insert(fact.into(), value);
        }
    }
    let texts = [
        ("currency", &mapping.currency),
        ("vendor", &mapping.vendor),
        ("target", &mapping.target),
        ("environment", &mapping.environment),
    ];
    for (fact, argument) in texts {
        if let Some(value) = fact_value(arguments, fact, argument.as_deref(), "string")? {
            detail.insert(fact.into(), value);
        }
    }
    if let Some(classification) = &mapping.classification {
        detail.insert(
            "classification".into(),
            Value::String(classification.clone()),
        );
    }
    if let Some(tool) = &mapping.resource {
        // Policies read the tool (its risk and data classification) from here.
        detail.insert("tool".into(), Value::String(tool.clone()));
    }
    detail.insert(ARGUMENTS.into(), Value::Object(arguments.clone()));
    Ok(Action {
        detail: Value::Object(detail),
        resource: mapping.resource.clone(),
    })
}

/// The `authorization_details` type of a tool's calls when its mapping names none: the
/// namespaced tool name as an identifier (`shop.place_order` is `shop_place_order`), so
/// policies can name it as a Cedar action.
pub fn default_type(tool: &str) -> String {
    tool.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The type of `tool`'s calls under `mapping`.
pub fn type_of(tool: &str, mapping: Option<&ToolMapping>) -> String {
    mapping
        .and_then(|m| m.kind.clone())
        .unwrap_or_else(|| default_type(tool))
}

/// The value of the argument mapped to `fact`: the one the mapping names (which must have
/// the fact's type), else the argument of the fact's own name (a number fact's must be a
/// number; a text fact's is ignored unless it is text).
fn fact_value(
    arguments: &Map<String, Value>,
    fact: &'static str,
    named: Option<&str>,
    expected: &'static str,
) -> Result<Option<Value>, MappingError> {
    let fits = |v: &Value| match expected {
        "number" => v.as_f64().is_some_and(f64::is_finite),
        _ => v.as_str().is_some_and(|s| !s.is_empty()),
    };
    match named {
        Some(name) => match arguments.get(name) {
            None => Ok(None),
            Some(v) if fits(v) => Ok(Some(v.clone())),
            Some(_) => Err(MappingError::WrongType {
                name: name.to_owned(),
                fact,
                expected,
            }),
        },
        // An amount or quantity sent as text is refused, not ignored: the policy would see
        // no amount, and an upstream may well read the text as a number.
        None => match arguments.get(fact) {
            Some(v) if fits(v) => Ok(Some(v.clone())),
            Some(_) if expected == "number" => Err(MappingError::WrongType {
                name: fact.to_owned(),
                fact,
                expected,
            }),
            _ => Ok(None),
        },
    }
}

/// The arguments an approved entry carries: what the gateway forwards.
pub fn approved_arguments(detail: &Value) -> Option<&Map<String, Value>> {
    detail.get(ARGUMENTS).and_then(Value::as_object)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn args(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn by_default_the_type_is_the_tool_and_facts_come_from_same_named_arguments() {
        let call = args(json!({"vendor": "Acme", "amount": 120, "note": "x", "target": 5}));
        let action = action("shop.place_order", &call, None).unwrap();
        assert_eq!(
            action.detail,
            json!({"type": "shop_place_order", "vendor": "Acme", "amount": 120,
                   "arguments": {"vendor": "Acme", "amount": 120, "note": "x", "target": 5}})
        );
        assert_eq!(action.resource, None);
    }

    #[test]
    fn a_mapping_names_the_type_the_resource_and_the_arguments_of_each_fact() {
        let call = args(json!({"supplier": "Acme", "total": 1200.5, "ccy": "EUR"}));
        let mapping = ToolMapping {
            kind: Some("purchase_order".into()),
            resource: Some("erp".into()),
            amount: Some("total".into()),
            currency: Some("ccy".into()),
            vendor: Some("supplier".into()),
            classification: Some("internal".into()),
            ..ToolMapping::default()
        };
        let action = action("shop.order", &call, Some(&mapping)).unwrap();
        assert_eq!(
            action.detail,
            json!({"type": "purchase_order", "amount": 1200.5, "currency": "EUR",
                   "vendor": "Acme", "classification": "internal", "tool": "erp",
                   "arguments": {"supplier": "Acme", "total": 1200.5, "ccy": "EUR"}})
        );
        assert_eq!(action.resource.as_deref(), Some("erp"));
    }

    #[test]
    fn a_mapped_argument_of_the_wrong_type_is_refused_not_ignored() {
        // An amount sent as text must not slip past an amount rule.
        let call = args(json!({"total": "1200"}));
        let mapping = ToolMapping {
            amount: Some("total".into()),
            ..ToolMapping::default()
        };
        assert_eq!(
            action("shop.order", &call, Some(&mapping)),
            Err(MappingError::WrongType {
                name: "total".into(),
                fact: "amount",
                expected: "number"
            })
        );
    }

    #[test]
    fn an_amount_sent_as_text_is_refused_even_without_a_mapping() {
        let call = args(json!({"amount": "5000", "vendor": "Acme"}));
        assert!(matches!(
            action("shop.order", &call, None),
            Err(MappingError::WrongType { fact: "amount", .. })
        ));
    }

    #[test]
    fn an_argument_named_type_cannot_change_the_action() {
        let call = args(json!({"type": "read_catalog", "amount": 5}));
        let action = action("shop.order", &call, None).unwrap();
        assert_eq!(action.detail["type"], "shop_order");
        assert_eq!(action.detail["arguments"]["type"], "read_catalog");
    }

    #[test]
    fn oversized_arguments_are_refused() {
        let call = args(json!({"blob": "x".repeat(MAX_ARGUMENTS_BYTES)}));
        assert!(matches!(
            action("shop.order", &call, None),
            Err(MappingError::TooLarge(_))
        ));
    }

    #[test]
    fn the_approved_arguments_are_read_back_from_the_entry() {
        let call = args(json!({"vendor": "Acme"}));
        let action = action("shop.order", &call, None).unwrap();
        assert_eq!(approved_arguments(&action.detail), Some(&call));
    }
}
