//! PATCH (RFC 7644 §3.5.2) over a resource's attribute document (core attributes at the
//! top, extension attributes under their URN). Accepts both flavours identity providers
//! send: Okta's (`{"op":"replace","value":{"active":false}}`, no path) and Entra ID's
//! (`{"op":"Replace","path":"active","value":"False"}`, capitalized ops, booleans as
//! strings, `emails[type eq "work"].value` paths that create the element they filter on).

use serde::Deserialize;
use serde_json::{Map, Value};

use super::ScimError;
use super::filter::{self, AttrPath, Filter, Op, PatchPath};
use super::schema::{self, Attr, Kind, Mutability, ResourceKind};

#[derive(Debug, Deserialize)]
pub struct PatchRequest {
    #[serde(default)]
    pub schemas: Vec<String>,
    #[serde(rename = "Operations", alias = "operations")]
    pub operations: Vec<Operation>,
}

#[derive(Debug, Deserialize)]
pub struct Operation {
    pub op: String,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub value: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Add,
    Remove,
    Replace,
}

/// Applies `request` to `doc`, in order; all or nothing (the caller keeps the original
/// on error).
pub fn apply(
    kind: ResourceKind,
    doc: &mut Map<String, Value>,
    request: &PatchRequest,
) -> Result<(), ScimError> {
    if !request
        .schemas
        .iter()
        .any(|s| s.eq_ignore_ascii_case(schema::PATCH_OP))
    {
        return Err(ScimError::invalid_syntax(format!(
            "a PATCH body must name the schema {}",
            schema::PATCH_OP
        )));
    }
    if request.operations.is_empty() {
        return Err(ScimError::invalid_syntax("Operations is empty".into()));
    }
    for op in &request.operations {
        let verb = match op.op.to_ascii_lowercase().as_str() {
            "add" => Verb::Add,
            "remove" => Verb::Remove,
            "replace" => Verb::Replace,
            other => {
                return Err(ScimError::invalid_syntax(format!(
                    "op must be add, remove or replace, not {other:?}"
                )));
            }
        };
        match (&op.path, verb) {
            (None, Verb::Remove) => {
                return Err(ScimError::no_target("remove needs a path".into()));
            }
            (None, _) => {
                let Some(Value::Object(fields)) = &op.value else {
                    return Err(ScimError::invalid_value(
                        "without a path, value must be an object of attributes".into(),
                    ));
                };
                apply_fields(kind, doc, verb, fields)?;
            }
            (Some(path), _) => apply_path(kind, doc, verb, path, op.value.as_ref())?,
        }
    }
    Ok(())
}

/// `{"attr": value, "urn:...:Ext": {...}, "urn:...:Ext:attr": value}` at the top.
fn apply_fields(
    kind: ResourceKind,
    doc: &mut Map<String, Value>,
    verb: Verb,
    fields: &Map<String, Value>,
) -> Result<(), ScimError> {
    for (key, value) in fields {
        if let Some(ext) = extension(kind, key) {
            let Value::Object(inner) = value else {
                return Err(ScimError::invalid_value(format!("{key} must be an object")));
            };
            // Some clients send an extension object with its own `schemas`.
            for (attr, v) in inner
                .iter()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("schemas"))
            {
                apply_path(kind, doc, verb, &format!("{ext}:{attr}"), Some(v))?;
            }
        } else {
            apply_path(kind, doc, verb, key, Some(value))?;
        }
    }
    Ok(())
}

fn extension(kind: ResourceKind, urn: &str) -> Option<&'static str> {
    kind.extensions()
        .iter()
        .copied()
        .find(|e| e.eq_ignore_ascii_case(urn))
}

/// Where `path` points: the container's key (an extension URN, or none for core) and the
/// attribute's definition.
fn resolve(
    kind: ResourceKind,
    path: &AttrPath,
) -> Result<(Option<&'static str>, &'static Attr), ScimError> {
    let (container, attrs) = match &path.urn {
        None => (None, schema::attrs_of(kind.core())),
        Some(urn) if urn.eq_ignore_ascii_case(kind.core()) => (None, schema::attrs_of(kind.core())),
        Some(urn) => match extension(kind, urn) {
            Some(ext) => (Some(ext), schema::attrs_of(ext)),
            None => {
                return Err(ScimError::invalid_path(format!("unknown schema {urn:?}")));
            }
        },
    };
    let attr = if container.is_none() && path.attr.eq_ignore_ascii_case(schema::EXTERNAL_ID.name) {
        &schema::EXTERNAL_ID
    } else {
        attrs
            .and_then(|attrs| schema::find(attrs, &path.attr))
            .ok_or_else(|| ScimError::invalid_path(format!("no attribute {:?}", path.attr)))?
    };
    if attr.mutability == Mutability::ReadOnly {
        return Err(ScimError::mutability(format!("{} is read-only", attr.name)));
    }
    Ok((container, attr))
}

fn apply_path(
    kind: ResourceKind,
    doc: &mut Map<String, Value>,
    verb: Verb,
    raw: &str,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    if let Some(ext) = extension(kind, raw.trim()) {
        // The whole extension.
        return match (verb, value) {
            (Verb::Remove, _) => {
                doc.remove(ext);
                Ok(())
            }
            (_, Some(Value::Object(fields))) => apply_fields(
                kind,
                doc,
                verb,
                &Map::from_iter([(ext.to_owned(), Value::Object(fields.clone()))]),
            ),
            _ => Err(ScimError::invalid_value(format!("{ext} must be an object"))),
        };
    }
    let PatchPath { attr: path, filter } = filter::parse_path(raw)?;
    let (container, attr) = resolve(kind, &path)?;
    let sub = match &path.sub {
        Some(name) => Some(
            schema::find(attr.sub, name)
                .ok_or_else(|| ScimError::invalid_path(format!("no sub-attribute {raw:?}")))?,
        ),
        None => None,
    };
    if sub.is_some_and(|s| s.mutability == Mutability::ReadOnly) {
        return Err(ScimError::mutability(format!("{raw} is read-only")));
    }
    let target = match container {
        Some(ext) => {
            let entry = doc
                .entry(ext.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            match entry {
                Value::Object(m) => m,
                _ => return Err(ScimError::invalid_value(format!("{ext} must be an object"))),
            }
        }
        None => doc,
    };
    let normalized = match (verb, value) {
        (Verb::Remove, _) => None,
        (_, None) => return Err(ScimError::invalid_value(format!("{} needs a value", raw))),
        (_, Some(v)) => match sub {
            Some(s) => schema::normalize_value(s, v, raw)?,
            // A value for the elements the filter selects: one element's worth.
            None if filter.is_some() => schema::normalize_element(attr, v, raw)?,
            None => schema::normalize_value(attr, v, attr.name)?,
        },
    };
    match filter {
        None => apply_plain(target, attr, sub, verb, normalized),
        Some(f) => apply_filtered(target, attr, sub, verb, &f, normalized, raw),
    }?;
    if container.is_some_and(|ext| {
        doc.get(ext)
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty)
    }) {
        doc.remove(container.unwrap_or_default());
    }
    Ok(())
}

fn apply_plain(
    target: &mut Map<String, Value>,
    attr: &Attr,
    sub: Option<&Attr>,
    verb: Verb,
    value: Option<Value>,
) -> Result<(), ScimError> {
    match (sub, verb, value) {
        (None, Verb::Remove, _) => {
            target.remove(attr.name);
        }
        (None, _, None) => {
            target.remove(attr.name);
        }
        (None, Verb::Add, Some(Value::Array(new))) if attr.multi => {
            let list = target
                .entry(attr.name.to_owned())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(items) = list {
                for v in new {
                    if !items.contains(&v) {
                        items.push(v);
                    }
                }
            }
        }
        (None, _, Some(Value::Object(fields))) if attr.kind == Kind::Complex && !attr.multi => {
            let entry = target
                .entry(attr.name.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            match entry {
                Value::Object(m) => m.extend(fields),
                other => *other = Value::Object(fields),
            }
        }
        (None, _, Some(v)) => {
            target.insert(attr.name.to_owned(), v);
        }
        (Some(sub), verb, value) => {
            let Some(existing) = target.get_mut(attr.name) else {
                if let (Verb::Add | Verb::Replace, Some(v)) = (verb, value) {
                    let element = Map::from_iter([(sub.name.to_owned(), v)]);
                    let element = Value::Object(element);
                    target.insert(
                        attr.name.to_owned(),
                        if attr.multi {
                            Value::Array(vec![element])
                        } else {
                            element
                        },
                    );
                }
                return Ok(());
            };
            let elements: Vec<&mut Value> = match existing {
                Value::Array(items) => items.iter_mut().collect(),
                one => vec![one],
            };
            for element in elements {
                set_sub(element, sub, verb, value.clone());
            }
            prune(target, attr);
        }
    }
    Ok(())
}

fn set_sub(element: &mut Value, sub: &Attr, verb: Verb, value: Option<Value>) {
    if let Value::Object(m) = element {
        match (verb, value) {
            (Verb::Remove, _) | (_, None) => {
                m.remove(sub.name);
            }
            (_, Some(v)) => {
                m.insert(sub.name.to_owned(), v);
            }
        }
    }
}

/// Drops `attr` when removals left it (or its elements) empty.
fn prune(target: &mut Map<String, Value>, attr: &Attr) {
    let empty = match target.get_mut(attr.name) {
        Some(Value::Array(items)) => {
            items.retain(|v| !v.as_object().is_some_and(Map::is_empty));
            items.is_empty()
        }
        Some(Value::Object(m)) => m.is_empty(),
        _ => false,
    };
    if empty {
        target.remove(attr.name);
    }
}

fn apply_filtered(
    target: &mut Map<String, Value>,
    attr: &Attr,
    sub: Option<&Attr>,
    verb: Verb,
    filter: &Filter,
    value: Option<Value>,
    raw: &str,
) -> Result<(), ScimError> {
    if !(attr.multi && attr.kind == Kind::Complex) {
        return Err(ScimError::invalid_path(format!(
            "{raw}: a value filter needs a multi-valued complex attribute"
        )));
    }
    let items = match target.get_mut(attr.name) {
        Some(Value::Array(items)) => items,
        _ => {
            target.insert(attr.name.to_owned(), Value::Array(Vec::new()));
            match target.get_mut(attr.name) {
                Some(Value::Array(items)) => items,
                _ => return Ok(()),
            }
        }
    };
    let hits: Vec<usize> = (0..items.len())
        .filter(|&i| filter::matches(filter, &items[i]))
        .collect();
    match (verb, sub) {
        (Verb::Remove, None) => {
            let mut i = 0;
            items.retain(|_| {
                let keep = !hits.contains(&i);
                i += 1;
                keep
            });
        }
        (Verb::Remove, Some(sub)) => {
            for &i in &hits {
                set_sub(&mut items[i], sub, Verb::Remove, None);
            }
        }
        (_, _) if hits.is_empty() => {
            items.push(described_element(attr, sub, filter, value, raw)?);
        }
        (_, Some(sub)) => {
            for &i in &hits {
                set_sub(&mut items[i], sub, verb, value.clone());
            }
        }
        (_, None) => {
            for &i in &hits {
                match (&mut items[i], &value) {
                    (Value::Object(m), Some(Value::Object(fields))) => {
                        m.extend(fields.clone());
                    }
                    (slot, Some(v)) => *slot = v.clone(),
                    (_, None) => {}
                }
            }
        }
    }
    prune(target, attr);
    Ok(())
}

/// The element an equality filter describes, created when a patch adds to (or replaces
/// in) a filtered path no element matches: Entra ID adds `emails[type eq "work"].value`
/// to a user with no work e-mail.
fn described_element(
    attr: &Attr,
    sub: Option<&Attr>,
    filter: &Filter,
    value: Option<Value>,
    raw: &str,
) -> Result<Value, ScimError> {
    let Filter::Compare(
        AttrPath {
            attr: key,
            sub: None,
            urn: None,
        },
        Op::Eq,
        Value::String(v),
    ) = filter
    else {
        return Err(ScimError::no_target(format!("{raw} matches no value")));
    };
    let key_attr = schema::find(attr.sub, key)
        .ok_or_else(|| ScimError::invalid_path(format!("{raw}: no sub-attribute {key:?}")))?;
    let mut element = Map::from_iter([(key_attr.name.to_owned(), Value::String(v.clone()))]);
    match (sub, value) {
        (Some(sub), Some(v)) => {
            element.insert(sub.name.to_owned(), v);
        }
        (None, Some(Value::Object(fields))) => element.extend(fields),
        _ => {}
    }
    Ok(Value::Object(element))
}
