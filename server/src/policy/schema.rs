//! The Countersign Cedar schema: the entities, actions and context every policy is
//! validated against. The entity and context part is fixed; the actions are the
//! deployment's `authorization_details` types, each a member of its class (an action
//! group: `read`, `write`, `destructive`, `external` or a custom one), plus
//! `authenticate` for a CIBA request that names no action.
//!
//! `countersign policy schema` prints it; `docs/policy/countersign.cedarschema` is the
//! schema of the default configuration, kept in step by a test.

use std::collections::{BTreeMap, BTreeSet};

use cedar_policy::Schema;
use serde_json::Value;

use super::facts::Principal;
use crate::config::{ACTION_CLASSES, PolicyConfig};

pub use crate::config::ARGUMENT_FIELDS;

/// The action of a request without `authorization_details`: a plain authentication.
pub const AUTHENTICATE: &str = "authenticate";

const ENTITIES_AND_CONTEXT: &str = r#"// Countersign policy schema (Cedar). Entities, context and actions of every decision.

// A group of humans (from the directory or SCIM); humans are `in` their groups.
entity Group = {
  name: String,
};

// A person: agent owner, approver, or the user a request names.
entity Human in [Group] = {
  email: String,
  name: String,
  department: String,
  title: String,
  role: String,
  // "active" or "inactive" (offboarded).
  employment_status: String,
  manager?: Human,
};

// An AI agent (an OAuth / CIBA client).
entity Agent = {
  name: String,
  owner: Human,
  department: String,
  // "low", "medium", "high" (free text).
  risk_tier: String,
  // "active" or "suspended".
  status: String,
};

// A tool or app the action is performed on (`unknown` when the request names none).
entity Tool = {
  risk_level: String,
  data_classification: String,
  category: String,
};

// When the decision is made, in the configured time zone.
type TimeFacts = {
  hour: Long,
  minute: Long,
  // "Mon" .. "Sun"; day_of_week 1 (Monday) .. 7 (Sunday).
  weekday: String,
  day_of_week: Long,
  timezone: String,
};

type NetworkFacts = {
  // The agent's address as text; write address rules as zones (policy.network_zones).
  source_ip?: String,
  // Names of the configured zones whose CIDR blocks contain source_ip.
  zones: Set<String>,
};

// Classification labels of the prompt, supplied by the gateway.
type PromptFacts = {
  labels: Set<String>,
};

// What the agent's task or session (task_id) did before this request.
type SessionFacts = {
  id?: String,
  // Data classifications of the tools read in this session.
  classifications: Set<String>,
  // Action classes performed in this session.
  classes: Set<String>,
  actions: Long,
};

// How this request compares with what this agent usually does for this action: the
// requested quantity and amount as a percentage of the agent's usual (95th percentile)
// for this action, e.g. `quantity_ratio_pct > 500` for "more than five times the usual".
// Present once the agent has enough history (policy.baseline_min_samples).
type AnomalyFacts = {
  samples: Long,
  rate_last_hour: Long,
  quantity_p95?: Long,
  quantity_ratio_pct?: Long,
  amount_p95?: Long,
  amount_ratio_pct?: Long,
};

type RequestFacts = {
  scope: String,
  binding_message?: String,
  task_id?: String,
};

"#;

/// The argument fields policies can read, with their Cedar types. `amount` is rounded up
/// to a whole number so a threshold is never undercut; `amount_cents` is exact to the cent.
const ARGUMENTS: &[(&str, &str, &str)] = &[
    // (field, JSON Schema type that makes it required when required, Cedar type)
    ("amount", "number", "Long"),
    ("amount_cents", "number", "Long"),
    ("currency", "string", "String"),
    ("vendor", "string", "String"),
    ("quantity", "number", "Long"),
    ("target", "string", "String"),
    ("environment", "string", "String"),
    ("classification", "string", "String"),
    // Who owns what is acted on (an email or subject), e.g. an AuthZEN resource's owner.
    ("owner", "string", "String"),
];

/// Whether `action`'s JSON Schema guarantees `field` (required, of a matching type).
fn guaranteed(schema: Option<&Value>, field: &str, json_type: &str) -> bool {
    let Some(schema) = schema else {
        return false;
    };
    let source = field.strip_suffix("_cents").unwrap_or(field);
    let required = schema
        .get("required")
        .and_then(Value::as_array)
        .is_some_and(|r| r.iter().any(|f| f.as_str() == Some(source)));
    let typed = schema
        .pointer(&format!("/properties/{source}/type"))
        .and_then(Value::as_str)
        .is_some_and(|t| t == json_type || (json_type == "number" && t == "integer"));
    required && typed
}

/// The argument fields that have a total over the request's entries.
const TOTALS: &[&str] = &["amount", "amount_cents", "quantity"];

/// The Cedar record types of `action`'s arguments, totals and context.
fn context_types(name: &str, schema: Option<&Value>) -> String {
    let optional = |field: &str, json_type: &str| {
        if guaranteed(schema, field, json_type) {
            ""
        } else {
            "?"
        }
    };
    let fields: Vec<String> = ARGUMENTS
        .iter()
        .map(|(field, json_type, cedar)| {
            format!("  {field}{}: {cedar},", optional(field, json_type))
        })
        .collect();
    let totals: Vec<String> = TOTALS
        .iter()
        .map(|field| format!("  {field}{}: Long,", optional(field, "number")))
        .collect();
    format!(
        "type {name}Arguments = {{\n{}\n}};\n\
         // What the request asks for in all, over its entries of this type: `entries`\n\
         // counts them; `amount` sums the amounts in this entry's currency (rounded up like\n\
         // arguments.amount, `amount_cents` exact); `quantity` sums the quantities. Limits\n\
         // written on totals cannot be passed under by splitting one order into entries.\n\
         type {name}Totals = {{\n  entries: Long,\n{}\n}};\n\
         type {name}Context = {{\n  arguments: {name}Arguments,\n  totals: {name}Totals,\n  \
         time: TimeFacts,\n  \
         network: NetworkFacts,\n  prompt: PromptFacts,\n  session: SessionFacts,\n  \
         anomaly: AnomalyFacts,\n  request: RequestFacts,\n  environment: String,\n}};\n",
        fields.join("\n"),
        totals.join("\n")
    )
}

/// A Cedar type name for an action: letters and digits, each `_`/`-` part capitalised.
fn type_name_of(action: &str) -> String {
    action
        .split(['_', '-'])
        .map(|part| {
            let mut c = part.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The schema text and the action hierarchy it declares.
#[derive(Debug, Clone)]
pub struct CountersignSchema {
    pub text: String,
    pub schema: Schema,
    /// Action -> its class.
    pub classes: BTreeMap<String, String>,
    /// The actions a human performs (`policy.human_actions`).
    pub human_actions: BTreeSet<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("the policy schema does not build: {0}")]
pub struct SchemaError(String);

/// Quotes `s` as a Cedar string literal (action names are identifiers already; this keeps
/// them safe regardless).
fn quoted(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

impl CountersignSchema {
    pub fn new(
        config: &PolicyConfig,
        detail_types: &BTreeMap<String, Value>,
    ) -> Result<Self, SchemaError> {
        let mut classes: BTreeMap<String, String> = detail_types
            .keys()
            .map(|t| (t.clone(), config.class_of(t).to_owned()))
            .collect();
        let groups: BTreeSet<&str> = ACTION_CLASSES
            .iter()
            .copied()
            .chain(classes.values().map(String::as_str))
            .collect();
        let mut text = ENTITIES_AND_CONTEXT.to_owned();
        text.push_str(
            "\n// Each action's arguments, from its authorization_details entry: a field is\n\
             // required when the type's JSON Schema requires it (so policies on that action\n\
             // read it directly), optional (test it with `has`) otherwise.\n",
        );
        text.push_str(&context_types("Authenticate", None));
        for action in classes.keys() {
            text.push_str(&context_types(
                &type_name_of(action),
                detail_types.get(action),
            ));
        }
        text.push_str("\n// Action classes (groups): `action in Action::\"external\"`.\n");
        for group in &groups {
            text.push_str(&format!("action {};\n", quoted(group)));
        }
        text.push_str(
            "\n// Actions: the accepted authorization_details types, and authenticate.\n",
        );
        let applies = |principal: &str, context: &str| {
            format!(
                "appliesTo {{ principal: [{principal}], resource: [Tool], context: {context}Context }}"
            )
        };
        text.push_str(&format!(
            "action {} {};\n",
            quoted(AUTHENTICATE),
            applies("Agent", "Authenticate")
        ));
        for (action, class) in &classes {
            let principal = if config.human_actions.contains(action) {
                "Human"
            } else {
                "Agent"
            };
            text.push_str(&format!(
                "action {} in [{}] {};\n",
                quoted(action),
                quoted(class),
                applies(principal, &type_name_of(action))
            ));
        }
        let (schema, _warnings) =
            Schema::from_cedarschema_str(&text).map_err(|e| SchemaError(e.to_string()))?;
        classes.insert(AUTHENTICATE.to_owned(), String::new());
        Ok(Self {
            text,
            schema,
            classes,
            human_actions: config.human_actions.clone(),
        })
    }

    /// Who performs `action`: a human (`policy.human_actions`) or an agent.
    pub fn principal_of(&self, action: &str) -> Principal {
        if self.human_actions.contains(action) {
            Principal::User
        } else {
            Principal::Agent
        }
    }

    /// Whether `action` is declared.
    pub fn knows(&self, action: &str) -> bool {
        self.classes.contains_key(action)
    }

    /// The class of a declared action (`""` for `authenticate`).
    pub fn class_of(&self, action: &str) -> &str {
        self.classes.get(action).map_or("", String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// `docs/policy/countersign.cedarschema` is the schema of the default configuration;
    /// regenerate it with `UPDATE_POLICY_SCHEMA=1 cargo test -p countersign-server schema`.
    #[test]
    fn settable_argument_fields_are_the_schemas_less_the_derived_one() {
        let schema: Vec<&str> = ARGUMENTS
            .iter()
            .map(|(field, _, _)| *field)
            .filter(|field| *field != "amount_cents")
            .collect();
        assert_eq!(schema, ARGUMENT_FIELDS);
    }

    #[test]
    fn committed_schema_matches_the_default_configuration() {
        let c = Config::default();
        let schema = CountersignSchema::new(&c.policy, &c.authorization_details_types).unwrap();
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/policy/countersign.cedarschema"
        );
        if std::env::var_os("UPDATE_POLICY_SCHEMA").is_some() {
            std::fs::write(path, &schema.text).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == schema.text,
            "docs/policy/countersign.cedarschema is out of date; run UPDATE_POLICY_SCHEMA=1 cargo test -p countersign-server schema"
        );
        assert_eq!(schema.class_of("purchase_order"), "external");
        // The purchase-order schema requires amount, currency and vendor.
        assert!(schema.text.contains("  amount: Long,"), "{}", schema.text);
        assert!(schema.text.contains("  quantity?: Long,"));
        assert_eq!(type_name_of("provision_servers"), "ProvisionServers");
    }
}
