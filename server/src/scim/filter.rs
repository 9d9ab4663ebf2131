//! SCIM filters (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2): parsing, and evaluation
//! over a resource as it is served (core attributes at the top, extension attributes
//! under their schema URN). Attribute names are case-insensitive; string comparisons
//! too, except for `id` and `externalId` (case-exact in RFC 7643).

use serde_json::Value;

use super::ScimError;

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
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
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

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Open,
    Close,
    OpenBracket,
    CloseBracket,
}

fn tokens(input: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            ' ' | '\t' => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Token::Open);
            }
            ')' => {
                chars.next();
                out.push(Token::Close);
            }
            '[' => {
                chars.next();
                out.push(Token::OpenBracket);
            }
            ']' => {
                chars.next();
                out.push(Token::CloseBracket);
            }
            '"' => {
                // A JSON string: find its closing quote, honouring escapes.
                let mut end = None;
                let mut escaped = false;
                for (j, d) in input[i + 1..].char_indices() {
                    match d {
                        _ if escaped => escaped = false,
                        '\\' => escaped = true,
                        '"' => {
                            end = Some(i + 1 + j);
                            break;
                        }
                        _ => {}
                    }
                }
                let end = end.ok_or("unterminated string")?;
                let s: String = serde_json::from_str(&input[i..=end])
                    .map_err(|e| format!("bad string: {e}"))?;
                out.push(Token::Str(s));
                while chars.peek().is_some_and(|&(k, _)| k <= end) {
                    chars.next();
                }
            }
            _ => {
                let mut word = String::new();
                while let Some(&(_, d)) = chars.peek() {
                    if d.is_whitespace() || "()[]\"".contains(d) {
                        break;
                    }
                    word.push(d);
                    chars.next();
                }
                out.push(Token::Word(word));
            }
        }
    }
    Ok(out)
}

fn attr_path(word: &str) -> Result<AttrPath, String> {
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '$')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
    };
    let (urn, rest) = match word.rfind(':') {
        Some(i) if word.to_ascii_lowercase().starts_with("urn:") => {
            (Some(word[..i].to_owned()), &word[i + 1..])
        }
        _ => (None, word),
    };
    let (attr, sub) = match rest.split_once('.') {
        Some((a, s)) => (a, Some(s)),
        None => (rest, None),
    };
    if !valid(attr) || sub.is_some_and(|s| !valid(s)) {
        return Err(format!("{word:?} is not an attribute path"));
    }
    Ok(AttrPath {
        urn,
        attr: attr.to_owned(),
        sub: sub.map(str::to_owned),
    })
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(k))
    }

    fn or(&mut self) -> Result<Filter, String> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.next();
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.next();
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, String> {
        if self.keyword("not") {
            self.next();
            if self.next() != Some(Token::Open) {
                return Err("expected ( after not".into());
            }
            let inner = self.or()?;
            if self.next() != Some(Token::Close) {
                return Err("expected )".into());
            }
            return Ok(Filter::Not(Box::new(inner)));
        }
        if self.peek() == Some(&Token::Open) {
            self.next();
            let inner = self.or()?;
            if self.next() != Some(Token::Close) {
                return Err("expected )".into());
            }
            return Ok(inner);
        }
        let Some(Token::Word(word)) = self.next() else {
            return Err("expected an attribute path".into());
        };
        let path = attr_path(&word)?;
        if self.peek() == Some(&Token::OpenBracket) {
            self.next();
            let inner = self.or()?;
            if self.next() != Some(Token::CloseBracket) {
                return Err("expected ]".into());
            }
            return Ok(Filter::ValuePath(path, Box::new(inner)));
        }
        let Some(Token::Word(op)) = self.next() else {
            return Err(format!("expected an operator after {word}"));
        };
        let op = match op.to_ascii_lowercase().as_str() {
            "pr" => return Ok(Filter::Present(path)),
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "co" => Op::Co,
            "sw" => Op::Sw,
            "ew" => Op::Ew,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            other => return Err(format!("unknown operator {other:?}")),
        };
        let value = match self.next() {
            Some(Token::Str(s)) => Value::String(s),
            Some(Token::Word(w)) => match w.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" => Value::Null,
                n => serde_json::from_str::<serde_json::Number>(n)
                    .map(Value::Number)
                    .map_err(|_| format!("{n:?} is not a value (strings are quoted)"))?,
            },
            _ => return Err(format!("expected a value after {word} {op:?}")),
        };
        Ok(Filter::Compare(path, op, value))
    }
}

/// Parses a `filter` query parameter; errors are `invalidFilter`.
pub fn parse(input: &str) -> Result<Filter, ScimError> {
    let bad = |reason: String| ScimError::invalid_filter(format!("filter {input:?}: {reason}"));
    let mut p = Parser {
        tokens: tokens(input).map_err(bad)?,
        at: 0,
    };
    let f = p.or().map_err(bad)?;
    if p.at != p.tokens.len() {
        return Err(bad("unexpected text after the expression".into()));
    }
    Ok(f)
}

/// Parses a PATCH `path`; errors are `invalidPath`.
pub fn parse_path(input: &str) -> Result<PatchPath, ScimError> {
    let bad = |reason: String| ScimError::invalid_path(format!("path {input:?}: {reason}"));
    let Some(open) = input.find('[') else {
        return Ok(PatchPath {
            attr: attr_path(input.trim()).map_err(bad)?,
            filter: None,
        });
    };
    let close = input.rfind(']').ok_or_else(|| bad("unclosed [".into()))?;
    let mut attr = attr_path(input[..open].trim()).map_err(bad)?;
    if attr.sub.is_some() {
        return Err(bad(
            "a value filter applies to an attribute, not a sub-attribute".into(),
        ));
    }
    let filter = parse(&input[open + 1..close]).map_err(|e| bad(e.detail))?;
    match input[close + 1..].trim() {
        "" => {}
        rest => match rest.strip_prefix('.') {
            Some(sub) if attr_path(sub).is_ok_and(|p| p.urn.is_none() && p.sub.is_none()) => {
                attr.sub = Some(sub.to_owned());
            }
            _ => return Err(bad(format!("unexpected {rest:?} after ]"))),
        },
    }
    Ok(PatchPath {
        attr,
        filter: Some(filter),
    })
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

/// Whether `resource` (or, inside a value path, one value of it) matches `filter`.
pub fn matches(filter: &Filter, resource: &Value) -> bool {
    match filter {
        Filter::And(a, b) => matches(a, resource) && matches(b, resource),
        Filter::Or(a, b) => matches(a, resource) || matches(b, resource),
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
    fn malformed_filters_are_invalid_filter() {
        for bad in [
            "",
            "userName",
            r#"userName eq"#,
            r#"userName zz "x""#,
            r#"userName eq "x" and"#,
            r#"userName eq "unterminated"#,
            r#"(userName eq "x""#,
            r#"userName eq bare"#,
            r#"emails[type eq "work""#,
            r#"1abc eq "x""#,
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.scim_type, Some("invalidFilter"), "{bad:?}");
        }
    }

    #[test]
    fn patch_paths() {
        let p = parse_path(r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!(p.attr.attr, "emails");
        assert_eq!(p.attr.sub.as_deref(), Some("value"));
        assert!(p.filter.is_some());
        let p = parse_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager")
            .unwrap();
        assert_eq!(
            p.attr.urn.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        );
        assert_eq!(p.attr.attr, "manager");
        assert_eq!(
            parse_path("name.givenName").unwrap().attr.sub.as_deref(),
            Some("givenName")
        );
        for bad in ["", "emails[", r#"emails[type eq "work"]x"#, "a b"] {
            assert_eq!(
                parse_path(bad).unwrap_err().scim_type,
                Some("invalidPath"),
                "{bad:?}"
            );
        }
    }
}
