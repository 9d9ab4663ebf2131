//! What a credential states, as the verifier reads it from the JWT's claims (the VC data
//! model's `credentialSubject`, `evidence`, the key binding and the status reference).

use serde::Deserialize;
use serde_json::Value;

use crate::Rejection;

#[derive(Deserialize)]
pub(crate) struct Claims {
    pub(crate) iss: Option<String>,
    pub(crate) id: Option<String>,
    pub(crate) jti: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) exp: Option<i64>,
    pub(crate) nbf: Option<i64>,
    #[serde(rename = "credentialSubject")]
    pub(crate) subject: Option<Subject>,
    #[serde(default)]
    pub(crate) evidence: Vec<Evidence>,
    pub(crate) cnf: Option<Cnf>,
    pub(crate) status: Option<StatusClaim>,
    #[serde(default)]
    pub(crate) max_uses: Option<Value>,
}

/// The credential's `max_uses`: a count from 1, or `"unlimited"` (`None`). A credential
/// that does not say may be used once: the strictest reading.
pub(crate) fn max_uses_of(claim: Option<&Value>) -> Result<Option<u64>, Rejection> {
    match claim {
        None | Some(Value::Null) => Ok(Some(1)),
        Some(Value::String(s)) if s == "unlimited" => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => Ok(Some(n)),
            _ => Err(Rejection::Malformed(
                "max_uses must be a count from 1 or \"unlimited\"".into(),
            )),
        },
    }
}

#[derive(Deserialize)]
pub(crate) struct Subject {
    #[serde(default)]
    pub(crate) authorization_details: Option<Vec<Value>>,
}

#[derive(Deserialize)]
pub(crate) struct Evidence {
    pub(crate) approver: Option<Approver>,
    pub(crate) method: Option<String>,
    pub(crate) policy: Option<Value>,
}

#[derive(Deserialize)]
pub(crate) struct Approver {
    pub(crate) subject: Option<String>,
    pub(crate) name: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct Cnf {
    pub(crate) jkt: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct StatusClaim {
    pub(crate) status_list: Option<StatusRef>,
}

#[derive(Deserialize)]
pub(crate) struct StatusRef {
    pub(crate) idx: u64,
    pub(crate) uri: String,
}
