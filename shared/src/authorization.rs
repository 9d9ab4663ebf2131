//! Whether a tool call fits what a human approved (RFC 9396 `authorization_details`).
//!
//! Each `authorization_details` type declares how a requested call is matched against the
//! approved entry. Deployments add their own types by implementing [`ActionMatcher`]; a
//! type without a matcher is matched exactly ([`ExactMatcher`]).

use serde_json::Value;

/// Why a call does not fit an approval, naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub field: String,
    pub reason: String,
}

impl Mismatch {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

pub trait ActionMatcher: Send + Sync {
    /// The `authorization_details` type this matcher understands.
    fn action_type(&self) -> &str;
    /// `Ok` when the `requested` call arguments are within the `approved` entry.
    fn check(&self, approved: &Value, requested: &Value) -> Result<(), Mismatch>;
}

fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.get(name).filter(|f| !f.is_null())
}

/// `purchase_order`: the same vendor and currency, an amount no larger than approved.
#[derive(Debug, Default, Clone, Copy)]
pub struct PurchaseOrderMatcher;

impl ActionMatcher for PurchaseOrderMatcher {
    fn action_type(&self) -> &str {
        "purchase_order"
    }

    fn check(&self, approved: &Value, requested: &Value) -> Result<(), Mismatch> {
        for name in ["vendor", "currency"] {
            let (a, r) = (field(approved, name), field(requested, name));
            if r.is_none() {
                return Err(Mismatch::new(name, "missing from the call"));
            }
            if a != r {
                return Err(Mismatch::new(
                    name,
                    format!("{} differs from the approved {}", show(r), show(a)),
                ));
            }
        }
        let amount = |v: &Value| field(v, "amount").and_then(Value::as_f64);
        match (amount(approved), amount(requested)) {
            (Some(a), Some(r)) if r <= a && r >= 0.0 => Ok(()),
            (Some(a), Some(r)) => Err(Mismatch::new(
                "amount",
                format!("{r} exceeds the approved {a}"),
            )),
            (_, None) => Err(Mismatch::new(
                "amount",
                "missing from the call or not a number",
            )),
            (None, Some(_)) => Err(Mismatch::new("amount", "the approval has no amount")),
        }
    }
}

/// Fallback for types without a matcher: every field of the call must equal the approved
/// one, and the call may not add fields the approval does not have.
#[derive(Debug, Clone)]
pub struct ExactMatcher(pub String);

impl ActionMatcher for ExactMatcher {
    fn action_type(&self) -> &str {
        &self.0
    }

    fn check(&self, approved: &Value, requested: &Value) -> Result<(), Mismatch> {
        let Some(call) = requested.as_object() else {
            return Err(Mismatch::new("arguments", "must be a JSON object"));
        };
        for (name, value) in call.iter().filter(|(k, _)| *k != "type") {
            match approved.get(name) {
                Some(a) if a == value => {}
                Some(a) => {
                    return Err(Mismatch::new(
                        name,
                        format!(
                            "{} differs from the approved {}",
                            show(Some(value)),
                            show(Some(a))
                        ),
                    ));
                }
                None => return Err(Mismatch::new(name, "was not part of the approval")),
            }
        }
        Ok(())
    }
}

fn show(v: Option<&Value>) -> String {
    v.map_or_else(|| "nothing".to_owned(), Value::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn purchase_order_allows_less_never_more_or_elsewhere() {
        let approved =
            json!({"type": "purchase_order", "vendor": "Acme", "amount": 1200, "currency": "USD"});
        let m = PurchaseOrderMatcher;
        assert!(
            m.check(
                &approved,
                &json!({"vendor": "Acme", "amount": 1200, "currency": "USD"})
            )
            .is_ok()
        );
        assert!(
            m.check(
                &approved,
                &json!({"vendor": "Acme", "amount": 99.5, "currency": "USD"})
            )
            .is_ok()
        );
        assert_eq!(
            m.check(
                &approved,
                &json!({"vendor": "Acme", "amount": 1500, "currency": "USD"})
            )
            .unwrap_err()
            .field,
            "amount"
        );
        assert_eq!(
            m.check(
                &approved,
                &json!({"vendor": "Evil", "amount": 1, "currency": "USD"})
            )
            .unwrap_err()
            .field,
            "vendor"
        );
        assert_eq!(
            m.check(
                &approved,
                &json!({"vendor": "Acme", "amount": 1, "currency": "EUR"})
            )
            .unwrap_err()
            .field,
            "currency"
        );
        assert_eq!(
            m.check(&approved, &json!({"vendor": "Acme", "currency": "USD"}))
                .unwrap_err()
                .field,
            "amount"
        );
        assert_eq!(
            m.check(
                &approved,
                &json!({"vendor": "Acme", "amount": -5, "currency": "USD"})
            )
            .unwrap_err()
            .field,
            "amount"
        );
    }

    #[test]
    fn exact_matcher_refuses_changed_or_added_fields() {
        let approved = json!({"type": "deploy", "service": "api", "environment": "staging"});
        let m = ExactMatcher("deploy".into());
        assert!(m.check(&approved, &json!({"service": "api"})).is_ok());
        assert_eq!(
            m.check(&approved, &json!({"environment": "production"}))
                .unwrap_err()
                .field,
            "environment"
        );
        assert_eq!(
            m.check(&approved, &json!({"force": true}))
                .unwrap_err()
                .field,
            "force"
        );
        assert!(m.check(&approved, &json!("api")).is_err());
    }
}
