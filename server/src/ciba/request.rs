//! The parameters of a backchannel authentication request (CIBA Core §7.1), read either
//! from the form or from the claims of a signed request object (§7.1.1). Both arrive here
//! as one JSON object so the two paths validate identically.

use serde_json::{Map, Value};

use super::CibaError;

/// Parameters a signed request object replaces; sending any of them beside `request` is an
/// error (CIBA Core §7.1.1).
pub const AUTHENTICATION_PARAMS: [&str; 12] = [
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
];

/// At most this many `prompt_labels`, each at most [`MAX_LABEL_CHARS`] characters.
pub const MAX_PROMPT_LABELS: usize = 32;
pub const MAX_LABEL_CHARS: usize = 64;

/// Longest accepted `task_id` (a Countersign extension parameter naming the agent's task or
/// session, within which a credential may be renewed).
pub const MAX_TASK_ID_CHARS: usize = 200;

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
        let scope = string(params, "scope")?
            .ok_or_else(|| CibaError::InvalidScope("scope is required".into()))?;
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
        })
    }
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
            || t.trim().is_empty())
    {
        return Err(bad(format!(
            "task_id must be 1-{MAX_TASK_ID_CHARS} characters of printable text"
        )));
    }
    Ok(task)
}

fn parse_details(value: Value) -> Result<Vec<Value>, CibaError> {
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
        assert!(matches!(
            parse(json!({"login_hint": "a"})),
            Err(CibaError::InvalidScope(_))
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
}
