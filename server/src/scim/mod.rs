//! SCIM 2.0 service provider (RFC 7643, RFC 7644): the identity provider provisions
//! humans (Users, with the enterprise extension) and groups, and deprovisions them, which
//! offboards the human ([`crate::directory::offboarding`]). This module knows nothing of
//! HTTP; `http::scim` maps requests and [`ScimError`]s onto the wire.

pub mod filter;
pub mod groups;
pub mod patch;
pub mod schema;
pub mod users;

use serde_json::{Map, Value, json};

use crate::directory::DirectoryError;
use crate::store::StoreError;
use crate::store::scim::ScimRecord;
use schema::ResourceKind;

/// Most resources one list response holds (`count` is capped to it).
pub const MAX_RESULTS: usize = 200;

/// An error as RFC 7644 §3.12 defines it: HTTP status, `scimType`, detail.
#[derive(Debug)]
pub struct ScimError {
    pub status: u16,
    pub scim_type: Option<&'static str>,
    pub detail: String,
}

impl ScimError {
    fn new(status: u16, scim_type: Option<&'static str>, detail: String) -> Self {
        Self {
            status,
            scim_type,
            detail,
        }
    }

    pub fn invalid_filter(detail: String) -> Self {
        Self::new(400, Some("invalidFilter"), detail)
    }

    pub fn invalid_path(detail: String) -> Self {
        Self::new(400, Some("invalidPath"), detail)
    }

    pub fn invalid_syntax(detail: String) -> Self {
        Self::new(400, Some("invalidSyntax"), detail)
    }

    pub fn invalid_value(detail: String) -> Self {
        Self::new(400, Some("invalidValue"), detail)
    }

    pub fn no_target(detail: String) -> Self {
        Self::new(400, Some("noTarget"), detail)
    }

    pub fn mutability(detail: String) -> Self {
        Self::new(400, Some("mutability"), detail)
    }

    pub fn uniqueness(detail: String) -> Self {
        Self::new(409, Some("uniqueness"), detail)
    }

    /// A request body over the server's limit (RFC 7644 §3.12: 413, no `scimType`).
    pub fn too_large(detail: String) -> Self {
        Self::new(413, None, detail)
    }

    pub fn not_found(detail: String) -> Self {
        Self::new(404, None, detail)
    }

    /// `If-Match` named another version.
    pub fn precondition_failed(detail: String) -> Self {
        Self::new(412, None, detail)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, None, "a valid SCIM bearer token is required".into())
    }

    /// The JSON body (`urn:ietf:params:scim:api:messages:2.0:Error`).
    pub fn body(&self) -> Value {
        let mut v = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            v["scimType"] = json!(t);
        }
        v
    }
}

impl From<StoreError> for ScimError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => Self::uniqueness("a resource with this name exists".into()),
            other => {
                tracing::error!(error = %other, "SCIM storage error");
                Self::new(500, None, "storage error".into())
            }
        }
    }
}

impl From<DirectoryError> for ScimError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::Invalid(d) => Self::invalid_value(d),
            DirectoryError::NotFound(d) => Self::not_found(d),
            DirectoryError::Conflict(d) => Self::uniqueness(d),
            DirectoryError::Store(s) => s.into(),
        }
    }
}

/// What a list (GET with query, or POST `.search`) asks for.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub filter: Option<String>,
    /// 1-based.
    pub start_index: Option<i64>,
    pub count: Option<i64>,
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
}

/// `meta.version` of a stored version.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// A stored resource as served: `schemas`, `id`, `externalId`, its attributes, `meta`.
pub fn render(kind: ResourceKind, base: &str, r: &ScimRecord) -> Value {
    let mut out = Map::new();
    let doc: Map<String, Value> = serde_json::from_str(&r.doc).unwrap_or_default();
    let mut schemas = vec![json!(kind.core())];
    for ext in kind.extensions() {
        if doc.contains_key(*ext) {
            schemas.push(json!(ext));
        }
    }
    out.insert("schemas".into(), Value::Array(schemas));
    out.insert("id".into(), json!(r.id));
    if let Some(x) = &r.external_id {
        out.insert("externalId".into(), json!(x));
    }
    out.extend(doc);
    out.insert(
        "meta".into(),
        json!({
            "resourceType": kind.name(),
            "created": rfc3339(r.created_at),
            "lastModified": rfc3339(r.updated_at),
            "location": format!("{base}{}/{}", kind.endpoint(), r.id),
            "version": etag(r.version),
        }),
    );
    Value::Object(out)
}

fn names(list: Option<&str>) -> Vec<String> {
    list.map(|l| {
        l.split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

/// Applies `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5) to a rendered
/// resource; `id` and `schemas` are always returned.
pub fn project(resource: Value, attributes: Option<&str>, excluded: Option<&str>) -> Value {
    let (only, except) = (names(attributes), names(excluded));
    let Value::Object(fields) = resource else {
        return resource;
    };
    // `urn:...:User:userName` names userName; `name.givenName` keeps `name` whole.
    let top = |n: &str| -> String {
        let n = n.rsplit_once(':').map_or(n, |(urn, a)| {
            if schema::attrs_of(urn).is_some() {
                a
            } else {
                n
            }
        });
        n.split('.').next().unwrap_or(n).to_owned()
    };
    let only: Vec<String> = only.iter().map(|n| top(n)).collect();
    let except: Vec<String> = except.iter().map(|n| top(n)).collect();
    let keep = |key: &str, value: &Value| -> bool {
        let k = key.to_ascii_lowercase();
        if k == "id" || k == "schemas" {
            return true;
        }
        if schema::attrs_of(key).is_some() {
            // An extension: kept when any of its attributes are asked for.
            let inner: Vec<String> = value
                .as_object()
                .map(|m| m.keys().map(|k| k.to_ascii_lowercase()).collect())
                .unwrap_or_default();
            return if !only.is_empty() {
                only.iter().any(|o| o == &k || inner.contains(o))
            } else {
                !except.contains(&k)
            };
        }
        if !only.is_empty() {
            return only.contains(&k);
        }
        !except.contains(&k)
    };
    let mut out = Map::new();
    for (key, value) in fields {
        if keep(&key, &value) {
            out.insert(key, value);
        }
    }
    Value::Object(out)
}

/// Runs `query` over `resources` (rendered): filter, then the page, then projection.
pub fn list_response(resources: Vec<Value>, query: &ListQuery) -> Result<Value, ScimError> {
    let filter = match query.filter.as_deref().map(str::trim) {
        Some(f) if !f.is_empty() => Some(filter::parse(f)?),
        _ => None,
    };
    let matching: Vec<Value> = resources
        .into_iter()
        .filter(|r| filter.as_ref().is_none_or(|f| filter::matches(f, r)))
        .collect();
    let total = matching.len();
    // RFC 7644 §3.4.2.4: startIndex below 1 is 1; a negative count is 0.
    let start = usize::try_from(query.start_index.unwrap_or(1).max(1)).unwrap_or(1);
    let count = usize::try_from(query.count.unwrap_or(MAX_RESULTS as i64).max(0))
        .unwrap_or(0)
        .min(MAX_RESULTS);
    let page: Vec<Value> = matching
        .into_iter()
        .skip(start - 1)
        .take(count)
        .map(|r| {
            project(
                r,
                query.attributes.as_deref(),
                query.excluded_attributes.as_deref(),
            )
        })
        .collect();
    Ok(json!({
        "schemas": [schema::LIST_RESPONSE],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": page.len(),
        "Resources": page,
    }))
}

/// Splits a request body into its `externalId` and its normalized attributes (core at
/// the top, extensions under their URN), refusing what the schemas do not define.
pub fn normalize_body(
    kind: ResourceKind,
    body: &Value,
) -> Result<(Option<String>, Map<String, Value>), ScimError> {
    let Value::Object(fields) = body else {
        return Err(ScimError::invalid_syntax(
            "the body must be a JSON object".into(),
        ));
    };
    let schemas: Vec<&str> = match filter::get_ci(body, "schemas") {
        Some(Value::Array(s)) => s.iter().filter_map(Value::as_str).collect(),
        _ => {
            return Err(ScimError::invalid_syntax(
                "schemas must list the resource's schema URNs".into(),
            ));
        }
    };
    if !schemas.iter().any(|s| s.eq_ignore_ascii_case(kind.core())) {
        return Err(ScimError::invalid_syntax(format!(
            "schemas must include {}",
            kind.core()
        )));
    }
    let core_attrs = schema::attrs_of(kind.core()).unwrap_or_default();
    let mut external_id = None;
    let mut core = Map::new();
    let mut out = Map::new();
    for (key, value) in fields {
        let k = key.to_ascii_lowercase();
        match k.as_str() {
            // Read-only or assigned by the server: ignored on input (RFC 7643 §3.1).
            "schemas" | "id" | "meta" => continue,
            "externalid" => {
                external_id = match value {
                    Value::String(s) if !s.is_empty() => Some(s.clone()),
                    Value::Null => None,
                    _ => {
                        return Err(ScimError::invalid_value(
                            "externalId must be a string".into(),
                        ));
                    }
                };
                continue;
            }
            _ => {}
        }
        if let Some(ext) = kind
            .extensions()
            .iter()
            .find(|e| e.eq_ignore_ascii_case(key))
        {
            let Value::Object(inner) = value else {
                return Err(ScimError::invalid_syntax(format!(
                    "{ext} must be an object"
                )));
            };
            let mut normalized = Map::new();
            schema::normalize_fields(
                schema::attrs_of(ext).unwrap_or_default(),
                inner,
                &mut normalized,
                &format!("{ext}:"),
            )?;
            if !normalized.is_empty() {
                out.insert((*ext).to_owned(), Value::Object(normalized));
            }
        } else {
            core.insert(key.clone(), value.clone());
        }
    }
    schema::normalize_fields(core_attrs, &core, &mut out, "")?;
    check_required(kind, &out)?;
    Ok((external_id, out))
}

/// The stored document with `externalId` beside the core attributes, as PATCH paths see
/// it.
pub fn patchable(record: &ScimRecord) -> Map<String, Value> {
    let mut doc: Map<String, Value> = serde_json::from_str(&record.doc).unwrap_or_default();
    if let Some(x) = &record.external_id {
        doc.insert(schema::EXTERNAL_ID.name.to_owned(), json!(x));
    }
    doc
}

/// Takes `externalId` back out of a patched document.
pub fn take_external_id(doc: &mut Map<String, Value>) -> Option<String> {
    match doc.remove(schema::EXTERNAL_ID.name) {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

/// Refuses a document without its required attributes (after a PATCH, too).
pub fn check_required(kind: ResourceKind, doc: &Map<String, Value>) -> Result<(), ScimError> {
    for a in schema::attrs_of(kind.core())
        .unwrap_or_default()
        .iter()
        .filter(|a| a.required)
    {
        if doc
            .get(a.name)
            .and_then(Value::as_str)
            .is_none_or(|s| s.trim().is_empty())
        {
            return Err(ScimError::invalid_value(format!("{} is required", a.name)));
        }
    }
    Ok(())
}
