//! Parsing entry points, exposed for fuzzing (`server/fuzz`, `scripts/fuzz.sh`): each takes
//! any text and must return (an error is fine) without panicking, overflowing the stack or
//! allocating without bound. Each goes as far past the parser as it can without a
//! database, through the same functions the endpoints call.

use std::sync::OnceLock;

use countersign_jose::UnverifiedJws;
use serde_json::{Map, Value, json};

use crate::ciba::details::DetailSchemas;
use crate::ciba::request::BackchannelRequest;
use crate::oidc::jwt::{RegisteredClaims, check_times};
use crate::policy::facts::TotalsFacts;
use crate::scim::patch::{self, Operation, PatchRequest};
use crate::scim::schema::{self, ResourceKind};
use crate::scim::{self, filter};

/// A User as `/Users` serves it (what filters are matched against).
fn rendered_user() -> &'static Value {
    static USER: OnceLock<Value> = OnceLock::new();
    USER.get_or_init(|| {
        json!({
            "schemas": [schema::USER, schema::ENTERPRISE],
            "id": "u1",
            "externalId": "00u1",
            "userName": "alice@example.com",
            "name": {"givenName": "Alice", "familyName": "Liddell"},
            "active": true,
            "emails": [{"value": "alice@example.com", "type": "work", "primary": true},
                       {"value": "a@home.example", "type": "home"}],
            schema::ENTERPRISE: {"department": "Finance", "manager": {"value": "u2"}},
            "meta": {"resourceType": "User", "version": "W/\"3\""}
        })
    })
}

/// The same User as PATCH sees it (no `schemas`, `id` or `meta`).
fn patchable_user() -> Map<String, Value> {
    let mut doc = rendered_user().as_object().cloned().unwrap_or_default();
    for read_only in ["schemas", "id", "meta"] {
        doc.remove(read_only);
    }
    doc
}

fn patchable_group() -> Map<String, Value> {
    Map::from_iter([
        ("displayName".to_owned(), json!("treasury")),
        (
            "members".to_owned(),
            json!([{"value": "u1", "type": "User"}, {"value": "u2"}]),
        ),
    ])
}

/// Parses a `filter` and matches it against a User and its e-mails.
pub fn scim_filter(input: &str) -> bool {
    let Ok(f) = filter::parse(input) else {
        return false;
    };
    let user = rendered_user();
    let mut any = filter::matches(&f, user);
    if let Some(Value::Array(emails)) = user.get("emails") {
        any |= emails.iter().any(|e| filter::matches(&f, e));
    }
    any
}

/// `PATH` or `PATH\nVALUE`: parses the PATCH path, then adds, replaces and removes at it
/// (with VALUE when it is JSON) on a User and on a Group.
pub fn scim_patch_path(input: &str) -> bool {
    let (path, value) = input.split_once('\n').unwrap_or((input, ""));
    let parsed = filter::parse_path(path).is_ok();
    let value = serde_json::from_str(value)
        .unwrap_or_else(|_| json!({"value": "b@example.com", "type": "work"}));
    for op in ["add", "replace", "remove"] {
        let request = PatchRequest {
            schemas: vec![schema::PATCH_OP.to_owned()],
            operations: vec![Operation {
                op: op.to_owned(),
                path: Some(path.to_owned()),
                value: Some(value.clone()),
            }],
        };
        apply(ResourceKind::User, patchable_user(), &request);
        apply(ResourceKind::Group, patchable_group(), &request);
    }
    parsed
}

/// A SCIM request body, as `POST /Users` and `/Groups` (create), and as a PATCH body.
pub fn scim_body(input: &str) -> bool {
    let Ok(body) = serde_json::from_str::<Value>(input) else {
        return false;
    };
    let mut ok = false;
    for kind in [ResourceKind::User, ResourceKind::Group] {
        ok |= scim::normalize_body(kind, &body).is_ok();
    }
    if let Ok(request) = serde_json::from_value::<PatchRequest>(body) {
        apply(ResourceKind::User, patchable_user(), &request);
        apply(ResourceKind::Group, patchable_group(), &request);
    }
    ok
}

/// What `users::patch` does with a request short of storing it.
fn apply(kind: ResourceKind, mut doc: Map<String, Value>, request: &PatchRequest) {
    if patch::apply(kind, &mut doc, request).is_ok() {
        scim::take_external_id(&mut doc);
        let _ = scim::check_required(kind, &doc);
        let _ = serde_json::to_string(&doc);
    }
}

/// The `authorization_details` types a default configuration accepts, with their schemas.
fn rar_schemas() -> Option<&'static DetailSchemas> {
    static SCHEMAS: OnceLock<Option<DetailSchemas>> = OnceLock::new();
    SCHEMAS
        .get_or_init(|| {
            DetailSchemas::compile(&crate::config::Config::default().authorization_details_types)
                .ok()
        })
        .as_ref()
}

/// The request parameters as the endpoint reads them, then what it does with the
/// `authorization_details` before deciding: each entry checked against its type's schema
/// (as the endpoint does),
/// then read into the policy's facts (its arguments and totals).
fn backchannel(params: &Map<String, Value>) -> bool {
    let Ok(request) = BackchannelRequest::from_params(params) else {
        return false;
    };
    let Some(details) = request.authorization_details else {
        return true;
    };
    let valid = rar_schemas().is_some_and(|s| s.check(&details).is_ok());
    if valid {
        let _ = TotalsFacts::of_entries(&details);
        let _ = serde_json::to_string(&details);
    }
    valid
}

/// `authorization_details` as a form parameter; and the input as the whole parameter
/// object when it is one (a request object's claims).
pub fn authorization_details(input: &str) -> bool {
    let mut params = Map::from_iter([
        ("scope".to_owned(), json!("openid")),
        ("login_hint".to_owned(), json!("alice@example.com")),
    ]);
    params.insert("authorization_details".to_owned(), json!(input));
    let mut ok = backchannel(&params);
    if let Ok(Value::Object(params)) = serde_json::from_str::<Value>(input) {
        ok |= backchannel(&params);
    }
    ok
}

/// A signed request object: its header and claims as `signed_request_params` reads them
/// (the signature aside: no fuzzer forges one), then its claims as the parameters.
pub fn request_object(input: &str) -> bool {
    let Ok(jws) = UnverifiedJws::parse(input.trim()) else {
        return false;
    };
    let Ok(claims) = jws.insecure_claims::<Map<String, Value>>() else {
        return false;
    };
    if let Ok(registered) =
        serde_json::from_value::<RegisteredClaims>(Value::Object(claims.clone()))
    {
        let _ = check_times(&registered, 1_700_000_000, 30);
    }
    backchannel(&claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use countersign_jose::SigningKeyPair;

    #[test]
    fn each_entry_point_accepts_a_valid_input() {
        assert!(scim_filter(
            r#"emails[type eq "work"] and userName sw "alice""#
        ));
        assert!(scim_patch_path(
            "emails[type eq \"work\"].value\n\"c@example.com\""
        ));
        assert!(scim_body(
            r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bob"}"#
        ));
        let details =
            r#"[{"type": "purchase_order", "vendor": "Acme", "amount": 1, "currency": "USD"}]"#;
        assert!(authorization_details(details));
        let claims = json!({"iss": "agent", "aud": "https://as.example", "exp": 1, "nbf": 0,
            "iat": 0, "jti": "j", "scope": "openid", "login_hint": "alice",
            "authorization_details": serde_json::from_str::<Value>(details).unwrap()});
        let token = SigningKeyPair::generate().sign("JWT", &claims).unwrap();
        assert!(request_object(&token));
    }
}
