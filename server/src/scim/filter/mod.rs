//! SCIM filters (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2): parsing, and evaluation
//! over a resource as it is served (core attributes at the top, extension attributes
//! under their schema URN). Attribute names are case-insensitive; string comparisons
//! too, except for `id` and `externalId` (case-exact in RFC 7643).
//!
//! Parsing bounds a filter's length and nesting ([`MAX_FILTER_BYTES`],
//! [`MAX_FILTER_DEPTH`]), and with them the depth of every recursion over a [`Filter`]
//! (evaluation, and the derived `Drop`, `Clone`, `PartialEq`).

mod parse;

use serde_json::Value;

pub use parse::{MAX_FILTER_BYTES, MAX_FILTER_DEPTH, MAX_PATH_BYTES, parse, parse_path};

/// `[urn:]attr[.sub]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URN when given (`urn:...:enterprise:2.0:User:department`).
    pub urn: Option<String>,
    pub attr: String,
    pub sub: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare(AttrPath, Op, Value),
    Present(AttrPath),
    /// `a and b and ...`: all of them (two or more).
    And(Vec<Filter>),
    /// `a or b or ...`: any of them (two or more).
    Or(Vec<Filter>),
    Not(Box<Filter>),
    /// `attr[filter]`: some value of the multi-valued `attr` matches `filter`.
    ValuePath(AttrPath, Box<Filter>),
}

/// A PATCH operation's target: `attrPath ["[" valFilter "]"] ["." subAttr]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
}

/// `key`'s value in `object`, matched case-insensitively.
pub fn get_ci<'a>(object: &'a Value, key: &str) -> Option<&'a Value> {
    object
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// The values `path` names in `resource` (several for multi-valued attributes).
fn values<'a>(resource: &'a Value, path: &AttrPath) -> Vec<&'a Value> {
    let container = match &path.urn {
        Some(urn) => match get_ci(resource, urn) {
            Some(c) => c,
            // A core attribute may be named with its own schema's URN.
            None if get_ci(resource, "schemas").is_some_and(|s| {
                s.as_array().is_some_and(|a| {
                    a.first()
                        .and_then(Value::as_str)
                        .is_some_and(|core| core.eq_ignore_ascii_case(urn))
                })
            }) =>
            {
                resource
            }
            None => return Vec::new(),
        },
        None => resource,
    };
    let Some(v) = get_ci(container, &path.attr) else {
        return Vec::new();
    };
    let items: Vec<&Value> = match v {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    items
        .into_iter()
        .filter_map(|item| match (&path.sub, item) {
            (Some(sub), item) => get_ci(item, sub),
            // A multi-valued complex attribute compares by its `value`.
            (None, Value::Object(_)) => get_ci(item, "value").or(Some(item)),
            (None, item) => Some(item),
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn case_exact(path: &AttrPath) -> bool {
    path.sub.is_none() && (path.attr == "id" || path.attr.eq_ignore_ascii_case("externalId"))
}

fn compare(actual: &Value, op: Op, expected: &Value, exact: bool) -> bool {
    use std::cmp::Ordering;
    let ordering = match (actual, expected) {
        (Value::String(a), Value::String(e)) => {
            let (a, e) = if exact {
                (a.clone(), e.clone())
            } else {
                (a.to_lowercase(), e.to_lowercase())
            };
            match op {
                Op::Co => return a.contains(&e),
                Op::Sw => return a.starts_with(&e),
                Op::Ew => return a.ends_with(&e),
                _ => a.cmp(&e),
            }
        }
        (Value::Number(a), Value::Number(e)) => match (a.as_f64(), e.as_f64()) {
            (Some(a), Some(e)) => a.partial_cmp(&e).unwrap_or(Ordering::Equal),
            _ => return false,
        },
        (Value::Bool(a), Value::Bool(e)) => match op {
            Op::Eq => return a == e,
            Op::Ne => return a != e,
            _ => return false,
        },
        _ => return op == Op::Ne,
    };
    match op {
        Op::Eq => ordering == Ordering::Equal,
        Op::Ne => ordering != Ordering::Equal,
        Op::Gt => ordering == Ordering::Greater,
        Op::Ge => ordering != Ordering::Less,
        Op::Lt => ordering == Ordering::Less,
        Op::Le => ordering != Ordering::Greater,
        Op::Co | Op::Sw | Op::Ew => false,
    }
}

/// Whether `resource` (or, inside a value path, one value of it) matches `filter`. Recurses
/// as deep as `filter` nests: a few levels for a parsed one.
pub fn matches(filter: &Filter, resource: &Value) -> bool {
    match filter {
        Filter::And(all) => all.iter().all(|f| matches(f, resource)),
        Filter::Or(any) => any.iter().any(|f| matches(f, resource)),
        Filter::Not(f) => !matches(f, resource),
        Filter::Present(path) => values(resource, path).iter().any(|v| match v {
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            _ => true,
        }),
        Filter::Compare(path, op, expected) => {
            let found = values(resource, path);
            if expected.is_null() {
                // `eq null` holds for an unassigned attribute.
                return match op {
                    Op::Eq => found.is_empty(),
                    Op::Ne => !found.is_empty(),
                    _ => false,
                };
            }
            let exact = case_exact(path);
            match op {
                Op::Ne => !found.iter().any(|v| compare(v, Op::Eq, expected, exact)),
                _ => found.iter().any(|v| compare(v, *op, expected, exact)),
            }
        }
        Filter::ValuePath(path, inner) => {
            let whole = AttrPath {
                sub: None,
                ..path.clone()
            };
            let container = match &whole.urn {
                Some(urn) => get_ci(resource, urn).unwrap_or(resource),
                None => resource,
            };
            match get_ci(container, &whole.attr) {
                Some(Value::Array(items)) => items.iter().any(|item| matches(inner, item)),
                Some(item @ Value::Object(_)) => matches(inner, item),
                _ => false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "u1",
            "userName": "Alice@Example.com",
            "name": {"givenName": "Alice", "familyName": "Liddell"},
            "active": true,
            "emails": [{"value": "alice@work.example", "type": "work"}, {"value": "a@home.example", "type": "home"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Finance"},
            "meta": {"lastModified": "2026-12-01T10:00:00Z"}
        })
    }

    fn check(filter: &str) -> bool {
        matches(&parse(filter).unwrap(), &user())
    }

    #[test]
    fn operators_logic_and_value_paths() {
        assert!(
            check(r#"userName eq "alice@example.com""#),
            "case-insensitive"
        );
        assert!(!check(r#"id eq "U1""#), "id is case-exact");
        assert!(check(
            r#"name.givenName sw "Al" and name.familyName co "dd""#
        ));
        assert!(check(r#"userName ew ".COM" or active eq false"#));
        assert!(check("title pr or emails pr"));
        assert!(!check("title pr"));
        assert!(check(r#"emails[type eq "work" and value co "@work"]"#));
        assert!(!check(r#"emails[type eq "other"]"#));
        assert!(check(r#"emails.value eq "a@home.example""#));
        assert!(check(r#"emails eq "a@home.example""#), "compares by value");
        assert!(check(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "finance""#
        ));
        assert!(check(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "alice""#
        ));
        assert!(check(
            r#"not (active eq false) and (userName eq "x" or active eq true)"#
        ));
        assert!(check(r#"meta.lastModified gt "2026-11-30T00:00:00Z""#));
        assert!(check("title eq null"));
        assert!(check(r#"userName ne "bob""#));
    }

    #[test]
    fn the_largest_filters_parse_and_evaluate_on_a_small_stack() {
        let n = MAX_FILTER_DEPTH - 1;
        let deep = format!(
            "{}emails[type eq \"work\"]{}",
            "not (".repeat(n),
            ")".repeat(n)
        );
        let chain = vec![r#"title eq "x""#; 250].join(" or ");
        assert!(chain.len() <= MAX_FILTER_BYTES);
        // A tenth of a runtime worker's stack.
        let run = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                (
                    matches(&parse(&deep).unwrap(), &user()),
                    matches(&parse(&chain).unwrap(), &user()),
                )
            })
            .unwrap();
        assert_eq!(run.join().unwrap(), (n.is_multiple_of(2), false));
    }
}
