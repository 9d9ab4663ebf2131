//! Whether a tool call fits what a human approved (RFC 9396 `authorization_details`).
//!
//! Each `authorization_details` type declares how a requested call is matched against the
//! approved entry. Matching is complete: every field of the approved entry (but `type`)
//! constrains the call, and the call may carry no field the approval does not. A call that
//! omits an approved field, adds an unapproved one or changes one is refused, naming the
//! field. What a field's rule may relax is only *how* it compares ([`FieldRule`]): an
//! amount may be smaller than approved, never larger.
//!
//! Deployments add their own types by implementing [`ActionMatcher`] or configuring a
//! [`FieldMatcher`]; a type without a matcher is matched exactly ([`ExactMatcher`]).

use serde_json::{Map, Value};

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

/// How one approved field constrains the call's field of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldRule {
    /// The same JSON value.
    Equal,
    /// A number from 0 up to the approved one (an amount or a quantity).
    AtMost,
}

/// Matches a call field by field: each approved field under its rule (default
/// [`FieldRule::Equal`]), every approved field required in the call, no other field
/// allowed. `type` is the entry's type, not an argument, and is never compared.
#[derive(Debug, Clone)]
pub struct FieldMatcher {
    action_type: String,
    rules: Vec<(String, FieldRule)>,
}

impl FieldMatcher {
    /// Every field compared for equality.
    pub fn new(action_type: impl Into<String>) -> Self {
        Self {
            action_type: action_type.into(),
            rules: Vec::new(),
        }
    }

    /// Compares `field` under `rule` instead of for equality.
    pub fn rule(mut self, field: impl Into<String>, rule: FieldRule) -> Self {
        let field = field.into();
        self.rules.retain(|(f, _)| *f != field);
        self.rules.push((field, rule));
        self
    }

    fn rule_of(&self, field: &str) -> FieldRule {
        self.rules
            .iter()
            .find(|(f, _)| f == field)
            .map_or(FieldRule::Equal, |(_, r)| *r)
    }
}

impl ActionMatcher for FieldMatcher {
    fn action_type(&self) -> &str {
        &self.action_type
    }

    fn check(&self, approved: &Value, requested: &Value) -> Result<(), Mismatch> {
        let call = arguments_of(requested)?;
        let approval = approved
            .as_object()
            .ok_or_else(|| Mismatch::new("authorization_details", "is not a JSON object"))?;
        // The call's `type`, if it names one, must be this entry's.
        if let Some(t) = call.get("type")
            && Some(t) != approval.get("type")
        {
            return Err(Mismatch::new(
                "type",
                format!(
                    "{t} differs from the approved {}",
                    show(approval.get("type"))
                ),
            ));
        }
        // Every approved field, in a stable order, under its rule.
        let mut names: Vec<&String> = approval.keys().filter(|k| *k != "type").collect();
        names.sort();
        for name in names {
            let a = &approval[name.as_str()];
            let Some(r) = call.get(name.as_str()) else {
                return Err(Mismatch::new(
                    name.as_str(),
                    "was approved but is missing from the call",
                ));
            };
            compare(name, self.rule_of(name), a, r)?;
        }
        // Nothing the approver was not shown.
        let mut extra: Vec<&String> = call
            .keys()
            .filter(|k| *k != "type" && !approval.contains_key(k.as_str()))
            .collect();
        extra.sort();
        match extra.first() {
            Some(name) => Err(Mismatch::new(name.as_str(), "was not part of the approval")),
            None => Ok(()),
        }
    }
}

fn arguments_of(requested: &Value) -> Result<&Map<String, Value>, Mismatch> {
    requested
        .as_object()
        .ok_or_else(|| Mismatch::new("arguments", "must be a JSON object"))
}

fn compare(
    name: &str,
    rule: FieldRule,
    approved: &Value,
    requested: &Value,
) -> Result<(), Mismatch> {
    match rule {
        FieldRule::Equal if approved == requested => Ok(()),
        FieldRule::Equal => Err(Mismatch::new(
            name,
            format!(
                "{} differs from the approved {}",
                show(Some(requested)),
                show(Some(approved))
            ),
        )),
        FieldRule::AtMost => {
            let number = |v: &Value| v.as_f64().filter(|n| n.is_finite());
            match (number(approved), number(requested)) {
                (Some(a), Some(r)) if (0.0..=a).contains(&r) => Ok(()),
                (Some(a), Some(r)) if r < 0.0 => Err(Mismatch::new(
                    name,
                    format!("{r} is negative (approved up to {a})"),
                )),
                (Some(a), Some(r)) => {
                    Err(Mismatch::new(name, format!("{r} exceeds the approved {a}")))
                }
                (_, None) => Err(Mismatch::new(name, "is not a number")),
                (None, Some(_)) => Err(Mismatch::new(name, "the approval's value is not a number")),
            }
        }
    }
}

/// `purchase_order`: every approved field exactly (vendor, currency, and whatever else
/// the approver saw), an `amount` and `quantity` no larger than approved.
#[derive(Debug, Clone)]
pub struct PurchaseOrderMatcher(FieldMatcher);

impl Default for PurchaseOrderMatcher {
    fn default() -> Self {
        Self(
            FieldMatcher::new("purchase_order")
                .rule("amount", FieldRule::AtMost)
                .rule("quantity", FieldRule::AtMost),
        )
    }
}

impl ActionMatcher for PurchaseOrderMatcher {
    fn action_type(&self) -> &str {
        self.0.action_type()
    }

    fn check(&self, approved: &Value, requested: &Value) -> Result<(), Mismatch> {
        self.0.check(approved, requested)
    }
}

/// Fallback for types without a matcher: every approved field must be in the call with
/// the same value, and the call may not add fields the approval does not have.
#[derive(Debug, Clone)]
pub struct ExactMatcher(FieldMatcher);

impl ExactMatcher {
    pub fn new(action_type: impl Into<String>) -> Self {
        Self(FieldMatcher::new(action_type))
    }
}

impl ActionMatcher for ExactMatcher {
    fn action_type(&self) -> &str {
        self.0.action_type()
    }

    fn check(&self, approved: &Value, requested: &Value) -> Result<(), Mismatch> {
        self.0.check(approved, requested)
    }
}

fn show(v: Option<&Value>) -> String {
    v.map_or_else(|| "nothing".to_owned(), Value::to_string)
}

#[cfg(test)]
mod tests;
