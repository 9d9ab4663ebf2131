//! The parameters of a backchannel authentication request (CIBA Core §7.1), read either
//! from the form or from the claims of a signed request object (§7.1.1). Both arrive here
//! as one JSON object so the two paths validate identically.

use serde_json::{Map, Value};

use super::CibaError;

/// Parameters a signed request object replaces; sending any of them beside `request` is an
/// error (CIBA Core §7.1.1).
pub const AUTHENTICATION_PARAMS: [&str; 13] = [
    "scope",
    "client_notification_token",
    "acr_values",
    "login_hint_token",
    "id_token_hint",
    "login_hint",
    "binding_message",
    "user_code",
    "requested_expiry",
    "authorization_details",
    "task_id",
    "prompt_labels",
    "dpop_jkt",
];

/// At most this many `prompt_labels`, each at most [`MAX_LABEL_CHARS`] characters.
pub const MAX_PROMPT_LABELS: usize = 32;
pub const MAX_LABEL_CHARS: usize = 64;

/// Longest accepted `task_id` (a Countersign extension parameter naming the agent's task or
/// session, within which a credential may be renewed).
pub const MAX_TASK_ID_CHARS: usize = 200;

/// Limits on `authorization_details`, which is parsed, validated, evaluated, stored, shown
/// on a phone and carried in the credential: entries, nesting and size. Real actions need
/// a handful of flat entries; the limits are far above that and far below harm.
pub const MAX_DETAIL_ENTRIES: usize = 64;
pub const MAX_DETAIL_DEPTH: usize = 8;
pub const MAX_DETAIL_BYTES: usize = 16 * 1024;

/// Which of the three mutually exclusive hints identified the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    LoginHint(String),
    LoginHintToken(String),
    IdTokenHint(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct BackchannelRequest {
    pub scopes: Vec<String>,
    pub hint: Hint,
    pub binding_message: Option<String>,
    pub user_code: Option<String>,
    pub requested_expiry: Option<u64>,
    pub acr_values: Option<String>,
    pub client_notification_token: Option<String>,
    /// RFC 9396 array, parsed but not yet checked against the configured types.
    pub authorization_details: Option<Vec<Value>>,
    pub task_id: Option<String>,
    /// Classification labels of the prompt behind the request, space-delimited (a
    /// Countersign extension, supplied by the agent's gateway; `context.prompt.labels`).
    pub prompt_labels: Vec<String>,
    /// RFC 9449 §10: the thumbprint of the DPoP key the credential must be bound to, for
    /// clients whose token never passes a DPoP proof at the token endpoint (push mode).
    pub dpop_jkt: Option<String>,
}

fn bad(msg: impl Into<String>) -> CibaError {
    CibaError::InvalidRequest(msg.into())
}

fn string(params: &Map<String, Value>, name: &str) -> Result<Option<String>, CibaError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(format!("{name} must be a string"))),
    }
}

impl BackchannelRequest {
    pub fn from_params(params: &Map<String, Value>) -> Result<Self, CibaError> {
        // A missing required parameter is invalid_request (RFC 6749 §5.2); invalid_scope is
        // for a scope that is present but wrong.
        let scope = string(params, "scope")?.ok_or_else(|| bad("scope is required"))?;
        let scopes: Vec<String> = scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();

        let hints = [
            string(params, "login_hint")?.map(Hint::LoginHint),
            string(params, "login_hint_token")?.map(Hint::LoginHintToken),
            string(params, "id_token_hint")?.map(Hint::IdTokenHint),
        ];
        let mut given = hints.into_iter().flatten();
        let hint = match (given.next(), given.next()) {
            (Some(h), None) => h,
            (None, _) => {
                return Err(bad(
                    "one of login_hint, login_hint_token or id_token_hint is required",
                ));
            }
            (Some(_), Some(_)) => {
                return Err(bad(
                    "only one of login_hint, login_hint_token or id_token_hint may be sent",
                ));
            }
        };

        let requested_expiry = match params.get("requested_expiry") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(
                n.as_u64()
                    .filter(|v| *v > 0)
                    .ok_or_else(|| bad("requested_expiry must be a positive integer"))?,
            ),
            Some(Value::String(s)) => Some(
                s.parse::<u64>()
                    .ok()
                    .filter(|v| *v > 0 && s.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| bad("requested_expiry must be a positive integer"))?,
            ),
            Some(_) => return Err(bad("requested_expiry must be a positive integer")),
        };

        let authorization_details = match params.get("authorization_details") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.len() > MAX_DETAIL_BYTES => {
                return Err(CibaError::InvalidAuthorizationDetails(format!(
                    "longer than {MAX_DETAIL_BYTES} bytes"
                )));
            }
            Some(Value::String(s)) => {
                Some(parse_details(serde_json::from_str(s).map_err(|e| {
                    CibaError::InvalidAuthorizationDetails(format!("not valid JSON: {e}"))
                })?)?)
            }
            Some(other) => Some(parse_details(other.clone())?),
        };

        Ok(Self {
            scopes,
            hint,
            binding_message: string(params, "binding_message")?,
            user_code: string(params, "user_code")?,
            requested_expiry,
            acr_values: string(params, "acr_values")?,
            client_notification_token: string(params, "client_notification_token")?,
            authorization_details,
            task_id: task_id(params)?,
            prompt_labels: prompt_labels(params)?,
            dpop_jkt: dpop_jkt(params)?,
        })
    }
}

/// `dpop_jkt`: an RFC 7638 SHA-256 JWK thumbprint, base64url without padding (43 chars).
pub fn dpop_jkt(params: &Map<String, Value>) -> Result<Option<String>, CibaError> {
    let jkt = string(params, "dpop_jkt")?;
    if let Some(j) = &jkt
        && (j.len() != 43
            || !j
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        return Err(bad(
            "dpop_jkt must be a JWK SHA-256 thumbprint (RFC 7638), base64url encoded",
        ));
    }
    Ok(jkt)
}

/// `prompt_labels`: space-delimited labels of letters, digits and `. _ : -`.
pub fn prompt_labels(params: &Map<String, Value>) -> Result<Vec<String>, CibaError> {
    let Some(text) = string(params, "prompt_labels")? else {
        return Ok(Vec::new());
    };
    let mut labels: Vec<String> = text
        .split(' ')
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let ok = labels.len() <= MAX_PROMPT_LABELS
        && labels.iter().all(|l| {
            l.len() <= MAX_LABEL_CHARS
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
        });
    if !ok {
        return Err(bad(format!(
            "prompt_labels must be at most {MAX_PROMPT_LABELS} space-separated labels of letters, digits and . _ : - (each at most {MAX_LABEL_CHARS})"
        )));
    }
    labels.sort();
    labels.dedup();
    Ok(labels)
}

/// `task_id`: printable text on one line, at most [`MAX_TASK_ID_CHARS`] characters.
pub fn task_id(params: &Map<String, Value>) -> Result<Option<String>, CibaError> {
    let task = string(params, "task_id")?;
    if let Some(t) = &task
        && (t.chars().count() > MAX_TASK_ID_CHARS
            || t.chars().any(char::is_control)
            || countersign_shared::text::deceptive(t).is_some()
            || t.trim().is_empty())
    {
        return Err(bad(format!(
            "task_id must be 1-{MAX_TASK_ID_CHARS} characters of printable text"
        )));
    }
    Ok(task)
}

fn parse_details(value: Value) -> Result<Vec<Value>, CibaError> {
    let invalid = |m: String| Err(CibaError::InvalidAuthorizationDetails(m));
    if let Value::Array(items) = &value {
        if items.len() > MAX_DETAIL_ENTRIES {
            return invalid(format!("more than {MAX_DETAIL_ENTRIES} entries"));
        }
        if depth(&value) > MAX_DETAIL_DEPTH + 1 {
            return invalid(format!(
                "an entry is nested deeper than {MAX_DETAIL_DEPTH} levels"
            ));
        }
        if let Some((path, c)) = deceptive_text(&value) {
            return invalid(format!(
                "{path} contains U+{:04X}, an invisible or direction-changing character that could make what the approver sees differ from what is approved",
                u32::from(c)
            ));
        }
    }
    match value {
        Value::Array(items) if !items.is_empty() => Ok(items),
        Value::Array(_) => Err(CibaError::InvalidAuthorizationDetails(
            "must not be empty".into(),
        )),
        _ => Err(CibaError::InvalidAuthorizationDetails(
            "must be a JSON array".into(),
        )),
    }
}

/// How deeply `v` nests (a scalar is 0). Iterative: the input is attacker-controlled and
/// already parsed within serde_json's own recursion limit, but this must not recurse either.
fn depth(v: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(v, 0usize)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, d + 1))),
            Value::Object(map) => stack.extend(map.values().map(|i| (i, d + 1))),
            _ => {}
        }
    }
    deepest
}

/// The first string (key or value) in `v` with a character that hides or reorders text,
/// and where it is.
fn deceptive_text(v: &Value) -> Option<(String, char)> {
    let mut stack = vec![(v, String::from("authorization_details"))];
    while let Some((v, path)) = stack.pop() {
        match v {
            Value::String(s) => {
                if let Some(c) = countersign_shared::text::deceptive(s) {
                    return Some((path, c));
                }
            }
            Value::Array(items) => stack.extend(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| (item, format!("{path}[{i}]"))),
            ),
            Value::Object(map) => {
                for (k, item) in map {
                    if let Some(c) = countersign_shared::text::deceptive(k) {
                        return Some((path, c));
                    }
                    stack.push((item, format!("{path}.{k}")));
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<BackchannelRequest, CibaError> {
        BackchannelRequest::from_params(v.as_object().unwrap())
    }

    #[test]
    fn form_strings_and_signed_request_json_parse_alike() {
        let form = parse(
            json!({"scope": "openid email", "login_hint": "alice", "requested_expiry": "120",
            "authorization_details": "[{\"type\":\"purchase_order\"}]"}),
        )
        .unwrap();
        let signed = parse(
            json!({"scope": "openid email", "login_hint": "alice", "requested_expiry": 120,
            "authorization_details": [{"type": "purchase_order"}]}),
        )
        .unwrap();
        assert_eq!(form, signed);
        assert_eq!(form.scopes, vec!["openid", "email"]);
    }

    #[test]
    fn hint_rules_and_bad_values() {
        assert!(matches!(
            parse(json!({"scope": "openid"})),
            Err(CibaError::InvalidRequest(_))
        ));
        assert!(matches!(
            parse(json!({"scope": "openid", "login_hint": "a", "id_token_hint": "b"})),
            Err(CibaError::InvalidRequest(_))
        ));
        // A missing scope is a missing parameter (RFC 6749 §5.2), not a wrong scope.
        assert!(matches!(
            parse(json!({"login_hint": "a"})),
            Err(CibaError::InvalidRequest(_))
        ));
        for bad in ["0", "-1", "1.5", "x", "+5"] {
            assert!(
                matches!(
                    parse(json!({"scope": "openid", "login_hint": "a", "requested_expiry": bad})),
                    Err(CibaError::InvalidRequest(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            parse(json!({"scope": "openid", "login_hint": "a", "authorization_details": "{}"})),
            Err(CibaError::InvalidAuthorizationDetails(_))
        ));
        for bad in ["a\nb", " ", &"t".repeat(201)] {
            assert!(
                matches!(
                    parse(json!({"scope": "openid", "login_hint": "a", "task_id": bad})),
                    Err(CibaError::InvalidRequest(_))
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse(json!({"scope": "openid", "login_hint": "a", "task_id": "TICKET-7"}))
                .unwrap()
                .task_id
                .as_deref(),
            Some("TICKET-7")
        );
        assert!(matches!(
            parse(json!({"scope": "openid", "login_hint": "a", "authorization_details": "[oops"})),
            Err(CibaError::InvalidAuthorizationDetails(_))
        ));
        assert_eq!(
            parse(
                json!({"scope": "openid", "login_hint": "a", "prompt_labels": "pii  finance pii"})
            )
            .unwrap()
            .prompt_labels,
            ["finance", "pii"]
        );
        for bad in ["a\tb", "ünicode", &"x".repeat(65)] {
            assert!(
                matches!(
                    parse(json!({"scope": "openid", "login_hint": "a", "prompt_labels": bad})),
                    Err(CibaError::InvalidRequest(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn authorization_details_are_bounded_and_plain() {
        let details = |v: Value| {
            parse(
                json!({"scope": "openid", "login_hint": "a", "authorization_details": v.to_string()}),
            )
        };
        let mut nested = json!("deep");
        for _ in 0..MAX_DETAIL_DEPTH {
            nested = json!([nested]);
        }
        assert!(details(json!([{"type": "t", "x": nested.clone()}])).is_err());
        let mut ok = json!("ok");
        for _ in 0..MAX_DETAIL_DEPTH - 1 {
            ok = json!([ok]);
        }
        assert!(details(json!([{"type": "t", "x": ok}])).is_ok());
        // Far past serde_json's own recursion limit: an error, not a stack overflow.
        let bomb = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(
            parse(json!({"scope": "openid", "login_hint": "a", "authorization_details": bomb})),
            Err(CibaError::InvalidAuthorizationDetails(_))
        ));
        let many = Value::Array(vec![json!({"type": "t"}); MAX_DETAIL_ENTRIES + 1]);
        assert!(details(many).is_err());
        let long = json!([{"type": "t", "x": "y".repeat(MAX_DETAIL_BYTES)}]);
        assert!(details(long).is_err());
        for sneaky in [
            "Acme\u{202E}",
            "Ac\u{200B}me",
            "\u{2066}Acme\u{2069}",
            "\u{FEFF}",
        ] {
            let r = details(json!([{"type": "purchase_order", "vendor": sneaky}]));
            assert!(
                matches!(&r, Err(CibaError::InvalidAuthorizationDetails(m)) if m.contains("vendor")),
                "{sneaky:?}: {r:?}"
            );
        }
        assert!(details(json!([{"type": "purchase_order", "vendor": "Café Ünïcode ✓"}])).is_ok());
    }

    #[test]
    fn dpop_jkt_is_a_thumbprint() {
        let jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
        let r = parse(json!({"scope": "openid", "login_hint": "a", "dpop_jkt": jkt})).unwrap();
        assert_eq!(r.dpop_jkt.as_deref(), Some(jkt));
        for bad in ["short", &format!("{jkt}="), &jkt.replace('-', "+")] {
            assert!(
                parse(json!({"scope": "openid", "login_hint": "a", "dpop_jkt": bad})).is_err(),
                "{bad}"
            );
        }
    }
}
