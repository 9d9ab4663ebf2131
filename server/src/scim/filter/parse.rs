//! The filter grammar (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2): a tokenizer and a
//! recursive-descent parser whose recursion is counted, so no input nests it deeper than
//! [`MAX_FILTER_DEPTH`] groups, and whose input is at most [`MAX_FILTER_BYTES`] long.

use serde_json::Value;

use super::{AttrPath, Filter, Op, PatchPath};
use crate::scim::ScimError;

/// Longest `filter` accepted, in bytes; RFC 7644 sets no bound. Identity providers send
/// filters of a few dozen bytes (`userName eq "..."`, `externalId eq "..."`,
/// `members[value eq "..."]`); 4 KiB still takes an `or` of some seventy ids. Every listed
/// resource is matched against the filter, so its length is also its cost per resource.
pub const MAX_FILTER_BYTES: usize = 4096;

/// Deepest nesting of parentheses, `not (...)` and value filters (`attr[...]`). Real
/// filters nest two or three deep; each level costs the parser three stack frames and
/// the parsed filter at most three nodes, so 16 keeps both far from any stack's end.
pub const MAX_FILTER_DEPTH: usize = 16;

/// Longest PATCH `path`: an attribute path around at most one value filter.
pub const MAX_PATH_BYTES: usize = MAX_FILTER_BYTES;

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
            // Any whitespace separates (RFC 7644 writes SP): the word arm below stops at
            // whitespace, so one it did not consume here would never be consumed.
            c if c.is_whitespace() => {
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

pub(super) fn attr_path(word: &str) -> Result<AttrPath, String> {
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
    /// Groups open around the current token.
    depth: usize,
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

    /// `a or b or c`, as one node (a chain of any length adds one level, not one each).
    fn or(&mut self) -> Result<Filter, String> {
        let first = self.and()?;
        if !self.keyword("or") {
            return Ok(first);
        }
        let mut terms = vec![first];
        while self.keyword("or") {
            self.next();
            terms.push(self.and()?);
        }
        Ok(Filter::Or(terms))
    }

    fn and(&mut self) -> Result<Filter, String> {
        let first = self.unary()?;
        if !self.keyword("and") {
            return Ok(first);
        }
        let mut terms = vec![first];
        while self.keyword("and") {
            self.next();
            terms.push(self.unary()?);
        }
        Ok(Filter::And(terms))
    }

    /// The expression inside a group just opened, up to its `close`: the one place the
    /// parser recurses, so the one place depth is counted.
    fn group(&mut self, close: Token, name: &str) -> Result<Filter, String> {
        self.depth += 1;
        if self.depth > MAX_FILTER_DEPTH {
            return Err(format!("nested deeper than {MAX_FILTER_DEPTH} levels"));
        }
        let inner = self.or()?;
        if self.next() != Some(close) {
            return Err(format!("expected {name}"));
        }
        self.depth -= 1;
        Ok(inner)
    }

    fn unary(&mut self) -> Result<Filter, String> {
        if self.keyword("not") {
            self.next();
            if self.next() != Some(Token::Open) {
                return Err("expected ( after not".into());
            }
            return Ok(Filter::Not(Box::new(self.group(Token::Close, ")")?)));
        }
        if self.peek() == Some(&Token::Open) {
            self.next();
            return self.group(Token::Close, ")");
        }
        let Some(Token::Word(word)) = self.next() else {
            return Err("expected an attribute path".into());
        };
        let path = attr_path(&word)?;
        if self.peek() == Some(&Token::OpenBracket) {
            self.next();
            let inner = self.group(Token::CloseBracket, "]")?;
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
    if input.len() > MAX_FILTER_BYTES {
        // Not echoed: it may be megabytes.
        return Err(ScimError::invalid_filter(format!(
            "the filter is longer than {MAX_FILTER_BYTES} bytes"
        )));
    }
    let bad = |reason: String| ScimError::invalid_filter(format!("filter {input:?}: {reason}"));
    let mut p = Parser {
        tokens: tokens(input).map_err(bad)?,
        at: 0,
        depth: 0,
    };
    let f = p.or().map_err(bad)?;
    if p.at != p.tokens.len() {
        return Err(bad("unexpected text after the expression".into()));
    }
    Ok(f)
}

/// Parses a PATCH `path`; errors are `invalidPath`.
pub fn parse_path(input: &str) -> Result<PatchPath, ScimError> {
    if input.len() > MAX_PATH_BYTES {
        return Err(ScimError::invalid_path(format!(
            "the path is longer than {MAX_PATH_BYTES} bytes"
        )));
    }
    let bad = |reason: String| ScimError::invalid_path(format!("path {input:?}: {reason}"));
    let Some(open) = input.find('[') else {
        return Ok(PatchPath {
            attr: attr_path(input.trim()).map_err(bad)?,
            filter: None,
        });
    };
    // The last `]` after the `[` (a `]` before it is not a closing bracket: slicing
    // between them would panic; found by fuzzing).
    let close = input[open..]
        .rfind(']')
        .map(|i| open + i)
        .ok_or_else(|| bad("unclosed [".into()))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closing_bracket_before_the_opening_one_is_an_invalid_path() {
        for path in ["emails]x[type eq \"work\"", "a]b[c", "]["] {
            let err = parse_path(path).unwrap_err();
            assert_eq!(err.scim_type, Some("invalidPath"), "{path}");
        }
        // The input the fuzzer found, with its invalid UTF-8 made lossy as the target does.
        let found = b"urn:ie:\x19\xfc\xff\xff\xff\xff\xff\xff\xff\xff.chemas\xc6]\"\x8b\x9a\x91\x8c\xd10:Us[r:manager";
        assert!(parse_path(&String::from_utf8_lossy(found)).is_err());
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

    /// Found by `scim_filter` (an out-of-memory): whitespace other than a space or a tab
    /// (here the `\n`) was neither skipped nor taken into a word, so the tokenizer pushed
    /// empty words forever. Over HTTP: `?filter=title%20pr%0A`.
    #[test]
    fn fuzz_any_whitespace_separates_tokens() {
        let found = b"email\x00\x00\x00Upe eq \"work\"\x04\x00\x00\x00\x00\x00\x00\x00\x00\x04\
            \x00\x00\x00\x00\x00\xff\xff\xff\xff\xff\x0a\x00\xff\xff\xff\xff\xff\xffue co \
            \"@example\"] or no\xb7t (title pr)";
        let err = parse(&String::from_utf8_lossy(found)).unwrap_err();
        assert_eq!(err.scim_type, Some("invalidFilter"));
        for ws in ["\n", "\r\n", "\u{a0}", "\u{2028}", "\u{3000}"] {
            let f = format!("title pr{ws}or{ws}userName eq \"x\"{ws}");
            assert!(parse(&f).is_ok(), "{f:?}");
        }
    }

    fn nested(open: &str, close: &str, depth: usize) -> String {
        format!(
            "{}userName eq \"x\"{}",
            open.repeat(depth),
            close.repeat(depth)
        )
    }

    #[test]
    fn nesting_is_limited_at_any_depth() {
        for (open, close) in [("(", ")"), ("not (", ")"), ("emails[", "]")] {
            assert!(
                parse(&nested(open, close, MAX_FILTER_DEPTH)).is_ok(),
                "{open}"
            );
            for depth in [MAX_FILTER_DEPTH + 1, 1_000, 100_000] {
                let err = parse(&nested(open, close, depth)).unwrap_err();
                assert_eq!(err.scim_type, Some("invalidFilter"), "{open} {depth}");
            }
        }
        // Mixed, and a group closed and reopened: depth is what is open at once.
        let mixed = format!(
            "{}{}",
            nested("not (", ")", 8),
            format!(" or {}", nested("(", ")", 8)).repeat(3)
        );
        assert!(parse(&mixed).is_ok());
        let err = parse(&nested("not (emails[(", ")])", 6)).unwrap_err();
        assert!(err.detail.contains("nested deeper"), "{}", err.detail);
    }

    #[test]
    fn length_is_limited_and_not_echoed() {
        let long = format!("userName eq \"{}\"", "x".repeat(MAX_FILTER_BYTES));
        let err = parse(&long).unwrap_err();
        assert_eq!(err.scim_type, Some("invalidFilter"));
        assert!(err.detail.len() < 100, "{}", err.detail);
        let err = parse_path(&format!("emails[{long}]")).unwrap_err();
        assert_eq!(err.scim_type, Some("invalidPath"));
        assert!(err.detail.len() < 100, "{}", err.detail);
    }

    #[test]
    fn chains_are_one_node_whatever_their_length() {
        let chain = vec![r#"title eq "x""#; 200].join(" or ");
        let Filter::Or(terms) = parse(&chain).unwrap() else {
            panic!("an or chain is one Or");
        };
        assert_eq!(terms.len(), 200);
        let chain = vec!["title pr"; 200].join(" and ");
        assert!(matches!(parse(&chain).unwrap(), Filter::And(t) if t.len() == 200));
        // Precedence: and binds tighter than or.
        assert_eq!(
            parse("a pr or b pr and c pr").unwrap(),
            Filter::Or(vec![
                parse("a pr").unwrap(),
                Filter::And(vec![parse("b pr").unwrap(), parse("c pr").unwrap()]),
            ])
        );
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
        for bad in [
            "",
            "emails[",
            r#"emails[type eq "work"]x"#,
            "a b",
            &format!("emails[{}]", nested("(", ")", MAX_FILTER_DEPTH + 1)),
        ] {
            assert_eq!(
                parse_path(bad).unwrap_err().scim_type,
                Some("invalidPath"),
                "{bad:?}"
            );
        }
    }
}
