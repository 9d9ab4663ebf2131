//! AuthZEN request bodies, read by hand so that each malformation gets the answer the
//! specification (and its certification scenario) expects: a missing or mistyped
//! required member is a `400 Bad Request`, unknown members are ignored, and in a batch an
//! item that cannot be read is denied on its own without failing the others.

use serde_json::{Map, Value};

/// The request cannot be read; the text is the 400 answer's body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

/// A subject or a resource (`type`, `id`, `properties`).
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    pub kind: String,
    pub id: String,
    pub properties: Map<String, Value>,
}

/// An action (`name`, `properties`).
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRef {
    pub name: String,
    pub properties: Map<String, Value>,
}

/// One access evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub subject: Entity,
    pub action: ActionRef,
    pub resource: Entity,
    pub context: Map<String, Value>,
}

/// `options.evaluations_semantic` of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Semantic {
    ExecuteAll,
    DenyOnFirstDeny,
    PermitOnFirstPermit,
}

impl Semantic {
    /// Whether evaluation stops after an item with this decision.
    pub fn stops_after(self, decision: bool) -> bool {
        match self {
            Self::ExecuteAll => false,
            Self::DenyOnFirstDeny => !decision,
            Self::PermitOnFirstPermit => decision,
        }
    }
}

/// What `POST /access/v1/evaluations` asks.
#[derive(Debug, Clone, PartialEq)]
pub enum Evaluations {
    /// No `evaluations` (or an empty array): a single evaluation, answered as one.
    Single(Box<Evaluation>),
    /// The items, each read on its own with the top-level members as defaults.
    Batch {
        items: Vec<Result<Evaluation, Malformed>>,
        semantic: Semantic,
    },
}

fn malformed(text: impl Into<String>) -> Malformed {
    Malformed(text.into())
}

fn object<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>, Malformed> {
    value
        .as_object()
        .ok_or_else(|| malformed(format!("{what} must be a JSON object")))
}

fn properties(entity: &Map<String, Value>, what: &str) -> Result<Map<String, Value>, Malformed> {
    match entity.get("properties") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map.clone()),
        Some(_) => Err(malformed(format!(
            "{what}.properties must be a JSON object"
        ))),
    }
}

fn text(entity: &Map<String, Value>, what: &str, member: &str) -> Result<String, Malformed> {
    match entity.get(member) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(malformed(format!("{what}.{member} must not be empty"))),
        Some(_) => Err(malformed(format!("{what}.{member} must be a string"))),
        None => Err(malformed(format!("{what}.{member} is required"))),
    }
}

/// A subject or resource. Without `needs_id` (the entity a search looks for) an `id` is
/// ignored, and may be absent.
pub fn entity(value: Option<&Value>, what: &str, needs_id: bool) -> Result<Entity, Malformed> {
    let value = value.ok_or_else(|| malformed(format!("{what} is required")))?;
    let map = object(value, what)?;
    Ok(Entity {
        kind: text(map, what, "type")?,
        id: if needs_id {
            text(map, what, "id")?
        } else {
            String::new()
        },
        properties: properties(map, what)?,
    })
}

pub fn action(value: Option<&Value>) -> Result<ActionRef, Malformed> {
    let value = value.ok_or_else(|| malformed("action is required"))?;
    let map = object(value, "action")?;
    Ok(ActionRef {
        name: text(map, "action", "name")?,
        properties: properties(map, "action")?,
    })
}

pub fn context(value: Option<&Value>) -> Result<Map<String, Value>, Malformed> {
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map.clone()),
        Some(_) => Err(malformed("context must be a JSON object")),
    }
}

/// The body of `POST /access/v1/evaluation`.
pub fn evaluation(body: &Value) -> Result<Evaluation, Malformed> {
    let body = object(body, "the request body")?;
    read(|member| body.get(member))
}

fn read<'a>(member: impl Fn(&str) -> Option<&'a Value>) -> Result<Evaluation, Malformed> {
    Ok(Evaluation {
        subject: entity(member("subject"), "subject", true)?,
        action: action(member("action"))?,
        resource: entity(member("resource"), "resource", true)?,
        context: context(member("context"))?,
    })
}

/// The body of `POST /access/v1/evaluations`: the top-level `subject`, `action`,
/// `resource` and `context` are defaults that an item's own member replaces whole (no
/// merging of their fields).
pub fn evaluations(body: &Value, max_items: usize) -> Result<Evaluations, Malformed> {
    let top = object(body, "the request body")?;
    let semantic = semantic(top.get("options"))?;
    let items = match top.get("evaluations") {
        None | Some(Value::Null) => {
            return evaluation(body).map(|e| Evaluations::Single(Box::new(e)));
        }
        Some(Value::Array(items)) if items.is_empty() => {
            return evaluation(body).map(|e| Evaluations::Single(Box::new(e)));
        }
        Some(Value::Array(items)) => items,
        Some(_) => return Err(malformed("evaluations must be an array")),
    };
    if items.len() > max_items {
        return Err(malformed(format!(
            "at most {max_items} evaluations may be sent at once"
        )));
    }
    // Defaults that are present must be readable themselves: a malformed default is the
    // whole request's fault, not an item's.
    for (member, needs) in [
        ("subject", "entity"),
        ("resource", "entity"),
        ("action", "action"),
    ] {
        if let Some(value) = top.get(member) {
            match needs {
                "entity" => entity(Some(value), member, true).map(|_| ())?,
                _ => action(Some(value)).map(|_| ())?,
            }
        }
    }
    context(top.get("context"))?;
    let items = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let item = item
                .as_object()
                .ok_or_else(|| malformed(format!("evaluations[{i}] must be a JSON object")))?;
            read(|member| item.get(member).or_else(|| top.get(member)))
                .map_err(|e| malformed(format!("evaluations[{i}]: {e}")))
        })
        .collect();
    Ok(Evaluations::Batch { items, semantic })
}

fn semantic(options: Option<&Value>) -> Result<Semantic, Malformed> {
    let Some(options) = options.filter(|o| !o.is_null()) else {
        return Ok(Semantic::ExecuteAll);
    };
    let options = object(options, "options")?;
    match options.get("evaluations_semantic") {
        None | Some(Value::Null) => Ok(Semantic::ExecuteAll),
        Some(Value::String(s)) => match s.as_str() {
            "execute_all" => Ok(Semantic::ExecuteAll),
            "deny_on_first_deny" => Ok(Semantic::DenyOnFirstDeny),
            "permit_on_first_permit" => Ok(Semantic::PermitOnFirstPermit),
            other => Err(malformed(format!(
                "options.evaluations_semantic {other:?} is not execute_all, deny_on_first_deny or permit_on_first_permit"
            ))),
        },
        Some(_) => Err(malformed("options.evaluations_semantic must be a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order() -> Value {
        json!({
            "subject": {"type": "user", "id": "alice"},
            "action": {"name": "can_read"},
            "resource": {"type": "todo", "id": "1", "properties": {"ownerID": "a@x"}},
        })
    }

    #[test]
    fn a_single_evaluation_reads_its_members_and_ignores_unknown_ones() {
        let mut body = order();
        body["foo"] = json!("bar");
        let e = evaluation(&body).unwrap();
        assert_eq!(e.subject.kind, "user");
        assert_eq!(e.resource.properties["ownerID"], "a@x");
        assert!(e.context.is_empty());
    }

    #[test]
    fn each_malformation_is_named() {
        let cases = [
            (json!("text"), "the request body must be a JSON object"),
            (
                json!({"action": {"name": "x"}, "resource": {"type": "t", "id": "1"}}),
                "subject is required",
            ),
            (
                json!({"subject": "alice", "action": {"name": "x"}, "resource": {"type": "t", "id": "1"}}),
                "subject must be a JSON object",
            ),
            (
                json!({"subject": {"type": "user"}, "action": {"name": "x"}, "resource": {"type": "t", "id": "1"}}),
                "subject.id is required",
            ),
            (
                json!({"subject": {"type": "user", "id": "a"}, "action": {"name": 123}, "resource": {"type": "t", "id": "1"}}),
                "action.name must be a string",
            ),
            (
                json!({"subject": {"type": "user", "id": "a"}, "action": {"name": "x"}, "resource": {"type": "t", "id": "1", "properties": []}}),
                "resource.properties must be a JSON object",
            ),
            (
                json!({"subject": {"type": "user", "id": "a"}, "action": {"name": "x"}, "resource": {"type": "t", "id": "1"}, "context": 5}),
                "context must be a JSON object",
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(evaluation(&body), Err(Malformed(expected.into())), "{body}");
        }
    }

    #[test]
    fn batch_items_replace_defaults_whole_and_fail_alone() {
        let body = json!({
            "subject": {"type": "user", "id": "alice"},
            "action": {"name": "can_update"},
            "context": {"a": 1},
            "options": {"evaluations_semantic": "deny_on_first_deny"},
            "evaluations": [
                {"resource": {"type": "todo", "id": "1"}},
                {"resource": {"type": "todo", "id": "2"}, "context": {"b": 2}},
                {"action": {"name": 5}, "resource": {"type": "todo", "id": "3"}},
                {},
                "nonsense",
            ]
        });
        let Ok(Evaluations::Batch { items, semantic }) = evaluations(&body, 10) else {
            panic!("a batch");
        };
        assert_eq!(semantic, Semantic::DenyOnFirstDeny);
        assert_eq!(items.len(), 5);
        let first = items[0].as_ref().unwrap();
        assert_eq!(first.subject.id, "alice");
        assert_eq!(first.context, json!({"a": 1}).as_object().unwrap().clone());
        let second = items[1].as_ref().unwrap();
        assert_eq!(
            second.context,
            json!({"b": 2}).as_object().unwrap().clone(),
            "replaced, not merged"
        );
        assert!(
            items[2]
                .as_ref()
                .unwrap_err()
                .0
                .contains("evaluations[2]: action.name")
        );
        assert!(
            items[3]
                .as_ref()
                .unwrap_err()
                .0
                .contains("resource is required")
        );
        assert!(items[4].is_err());
    }

    #[test]
    fn an_empty_batch_is_a_single_evaluation_and_limits_hold() {
        let mut body = order();
        body["evaluations"] = json!([]);
        assert!(matches!(evaluations(&body, 10), Ok(Evaluations::Single(_))));
        body["evaluations"] = json!([{}, {}, {}]);
        assert!(evaluations(&body, 2).is_err());
        body["options"] = json!({"evaluations_semantic": "first_come"});
        assert!(evaluations(&body, 10).is_err());
        let mut bad_default = order();
        bad_default["subject"] = json!({"type": "user"});
        bad_default["evaluations"] = json!([{"subject": {"type": "user", "id": "b"}}]);
        assert!(
            evaluations(&bad_default, 10).is_err(),
            "a malformed default fails the request"
        );
    }

    #[test]
    fn semantics_stop_where_they_say() {
        assert!(!Semantic::ExecuteAll.stops_after(false));
        assert!(Semantic::DenyOnFirstDeny.stops_after(false));
        assert!(!Semantic::DenyOnFirstDeny.stops_after(true));
        assert!(Semantic::PermitOnFirstPermit.stops_after(true));
    }
}
