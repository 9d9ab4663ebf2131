//! The schemas Countersign serves (RFC 7643): core User with the enterprise extension, and
//! core Group, limited to the attributes it stores and serves back. One definition drives
//! both what `/Schemas` publishes and how request bodies are checked and normalized, so
//! the two cannot disagree.

use serde_json::{Map, Value, json};

use super::ScimError;

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Boolean,
    Complex,
    Reference,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadWrite,
    ReadOnly,
    Immutable,
}

/// One attribute of a schema.
#[derive(Debug)]
pub struct Attr {
    pub name: &'static str,
    pub kind: Kind,
    pub multi: bool,
    pub required: bool,
    pub mutability: Mutability,
    pub case_exact: bool,
    pub unique: bool,
    pub canonical: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub sub: &'static [Attr],
    pub description: &'static str,
}

const fn attr(name: &'static str, kind: Kind, description: &'static str) -> Attr {
    Attr {
        name,
        kind,
        multi: false,
        required: false,
        mutability: Mutability::ReadWrite,
        case_exact: false,
        unique: false,
        canonical: &[],
        reference_types: &[],
        sub: &[],
        description,
    }
}

const NAME_SUB: &[Attr] = &[
    attr(
        "formatted",
        Kind::String,
        "The full name, formatted for display.",
    ),
    attr("familyName", Kind::String, "The family name."),
    attr("givenName", Kind::String, "The given name."),
];

const EMAIL_SUB: &[Attr] = &[
    attr("value", Kind::String, "The e-mail address."),
    Attr {
        canonical: &["work", "home", "other"],
        ..attr("type", Kind::String, "What the address is for.")
    },
    attr("primary", Kind::Boolean, "The preferred address."),
];

pub const USER_ATTRS: &[Attr] = &[
    Attr {
        required: true,
        unique: true,
        ..attr(
            "userName",
            Kind::String,
            "Unique identifier of the user, as the identity provider knows it.",
        )
    },
    Attr {
        sub: NAME_SUB,
        ..attr("name", Kind::Complex, "The user's name.")
    },
    attr(
        "displayName",
        Kind::String,
        "The name shown to approvers and in the audit trail.",
    ),
    attr("title", Kind::String, "Job title (policies read it)."),
    attr(
        "active",
        Kind::Boolean,
        "false offboards the user: credentials revoked, agents suspended.",
    ),
    Attr {
        multi: true,
        sub: EMAIL_SUB,
        ..attr(
            "emails",
            Kind::Complex,
            "E-mail addresses; the primary one is used.",
        )
    },
];

const MANAGER_SUB: &[Attr] = &[
    attr("value", Kind::String, "The id of the manager's User."),
    Attr {
        reference_types: &["User"],
        ..attr("$ref", Kind::Reference, "The manager's User.")
    },
    Attr {
        mutability: Mutability::ReadOnly,
        ..attr("displayName", Kind::String, "The manager's display name.")
    },
];

pub const ENTERPRISE_ATTRS: &[Attr] = &[
    attr("department", Kind::String, "Department (policies read it)."),
    Attr {
        sub: MANAGER_SUB,
        ..attr(
            "manager",
            Kind::Complex,
            "The user's manager (approvals routed to \"manager\").",
        )
    },
];

const MEMBER_SUB: &[Attr] = &[
    Attr {
        mutability: Mutability::Immutable,
        ..attr("value", Kind::String, "The id of the member User.")
    },
    Attr {
        reference_types: &["User"],
        mutability: Mutability::Immutable,
        ..attr("$ref", Kind::Reference, "The member User.")
    },
    Attr {
        canonical: &["User"],
        mutability: Mutability::Immutable,
        ..attr("type", Kind::String, "The member's resource type.")
    },
    Attr {
        mutability: Mutability::ReadOnly,
        ..attr("display", Kind::String, "The member's display name.")
    },
];

pub const GROUP_ATTRS: &[Attr] = &[
    Attr {
        required: true,
        ..attr(
            "displayName",
            Kind::String,
            "The group's name (approvals routed to \"group:NAME\").",
        )
    },
    Attr {
        multi: true,
        sub: MEMBER_SUB,
        ..attr("members", Kind::Complex, "Members of the group (Users).")
    },
];

/// The common attribute every resource has besides its schema's (RFC 7643 §3.1); the
/// identity provider's own id for the resource. In a PATCH document it sits beside the
/// core attributes.
pub const EXTERNAL_ID: Attr = Attr {
    case_exact: true,
    ..attr(
        "externalId",
        Kind::String,
        "The identity provider's id for the resource.",
    )
};

/// The attributes of schema `urn` (core or extension).
pub fn attrs_of(urn: &str) -> Option<&'static [Attr]> {
    match urn {
        u if u.eq_ignore_ascii_case(USER) => Some(USER_ATTRS),
        u if u.eq_ignore_ascii_case(ENTERPRISE) => Some(ENTERPRISE_ATTRS),
        u if u.eq_ignore_ascii_case(GROUP) => Some(GROUP_ATTRS),
        _ => None,
    }
}

pub fn find<'a>(attrs: &'a [Attr], name: &str) -> Option<&'a Attr> {
    attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

/// A resource type: its core schema and the extensions it may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    User,
    Group,
}

impl ResourceKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::Group => "Group",
        }
    }

    pub fn endpoint(self) -> &'static str {
        match self {
            Self::User => "/Users",
            Self::Group => "/Groups",
        }
    }

    pub fn core(self) -> &'static str {
        match self {
            Self::User => USER,
            Self::Group => GROUP,
        }
    }

    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            Self::User => &[ENTERPRISE],
            Self::Group => &[],
        }
    }
}

/// Checks `value` against `a` and returns it normalized: booleans sent as strings
/// ("True", as Entra ID sends them) become booleans, sub-attribute names take their
/// schema spelling, a single value for a multi-valued attribute becomes a list, read-only
/// sub-attributes and nulls are dropped. `None`: unassigned.
pub fn normalize_value(a: &Attr, value: &Value, path: &str) -> Result<Option<Value>, ScimError> {
    if value.is_null() {
        return Ok(None);
    }
    if a.multi {
        let items: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        let mut out = Vec::new();
        for item in items {
            if let Some(v) = normalize_single(a, item, path)? {
                out.push(v);
            }
        }
        return Ok((!out.is_empty()).then_some(Value::Array(out)));
    }
    normalize_single(a, value, path)
}

/// One element of multi-valued `a` (or `a`'s value when single-valued), normalized.
pub fn normalize_element(a: &Attr, value: &Value, path: &str) -> Result<Option<Value>, ScimError> {
    normalize_single(a, value, path)
}

fn normalize_single(a: &Attr, value: &Value, path: &str) -> Result<Option<Value>, ScimError> {
    let wrong = |expected: &str| {
        ScimError::invalid_value(format!("{path} must be {expected}, not {value}"))
    };
    Ok(Some(match (a.kind, value) {
        (_, Value::Null) => return Ok(None),
        (Kind::String | Kind::Reference, Value::String(s)) => {
            if s.chars().count() > 1024 || s.contains(char::is_control) {
                return Err(ScimError::invalid_value(format!(
                    "{path} must be at most 1024 characters of text"
                )));
            }
            Value::String(s.clone())
        }
        (Kind::String | Kind::Reference, _) => return Err(wrong("a string")),
        (Kind::Boolean, Value::Bool(b)) => Value::Bool(*b),
        (Kind::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
        (Kind::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
        (Kind::Boolean, _) => return Err(wrong("a boolean")),
        // A complex attribute given by its value alone (Entra ID's manager: "id").
        (Kind::Complex, Value::String(s)) if find(a.sub, "value").is_some() => {
            json!({ "value": s })
        }
        (Kind::Complex, Value::Object(fields)) => {
            let mut out = Map::new();
            for (key, v) in fields {
                let Some(sub) = find(a.sub, key) else {
                    return Err(ScimError::invalid_syntax(format!(
                        "{path} has no sub-attribute {key:?}"
                    )));
                };
                if sub.mutability == Mutability::ReadOnly {
                    continue;
                }
                if let Some(v) = normalize_single(sub, v, &format!("{path}.{}", sub.name))? {
                    out.insert(sub.name.to_owned(), v);
                }
            }
            if out.is_empty() {
                return Ok(None);
            }
            Value::Object(out)
        }
        (Kind::Complex, _) => return Err(wrong("an object")),
    }))
}

/// Normalizes the attributes of one schema (`fields`) into `out`: names in schema
/// spelling, read-only ones ignored, unknown ones refused.
pub fn normalize_fields(
    attrs: &[Attr],
    fields: &Map<String, Value>,
    out: &mut Map<String, Value>,
    prefix: &str,
) -> Result<(), ScimError> {
    for (key, value) in fields {
        if key.eq_ignore_ascii_case("schemas") {
            // An extension object may name its own schema; the resource's list rules.
            continue;
        }
        let Some(a) = find(attrs, key) else {
            return Err(ScimError::invalid_syntax(format!(
                "{prefix}{key:?} is not an attribute of this resource"
            )));
        };
        if a.mutability == Mutability::ReadOnly {
            continue;
        }
        match normalize_value(a, value, a.name)? {
            Some(v) => {
                out.insert(a.name.to_owned(), v);
            }
            None => {
                out.remove(a.name);
            }
        }
    }
    Ok(())
}

fn attr_json(a: &Attr) -> Value {
    let kind = match a.kind {
        Kind::String => "string",
        Kind::Boolean => "boolean",
        Kind::Complex => "complex",
        Kind::Reference => "reference",
    };
    let mutability = match a.mutability {
        Mutability::ReadWrite => "readWrite",
        Mutability::ReadOnly => "readOnly",
        Mutability::Immutable => "immutable",
    };
    let mut v = json!({
        "name": a.name,
        "type": kind,
        "multiValued": a.multi,
        "description": a.description,
        "required": a.required,
        "caseExact": a.case_exact,
        "mutability": mutability,
        "returned": "default",
        "uniqueness": if a.unique { "server" } else { "none" },
    });
    if !a.canonical.is_empty() {
        v["canonicalValues"] = json!(a.canonical);
    }
    if !a.reference_types.is_empty() {
        v["referenceTypes"] = json!(a.reference_types);
    }
    if !a.sub.is_empty() {
        v["subAttributes"] = Value::Array(a.sub.iter().map(attr_json).collect());
    }
    v
}

/// Every schema `/Schemas` publishes, with their `meta.location` under `base`.
pub fn schemas(base: &str) -> Vec<Value> {
    [
        (USER, "User", "User Account", USER_ATTRS),
        (
            ENTERPRISE,
            "EnterpriseUser",
            "Enterprise User",
            ENTERPRISE_ATTRS,
        ),
        (GROUP, "Group", "Group", GROUP_ATTRS),
    ]
    .into_iter()
    .map(|(id, name, description, attrs)| {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": id,
            "name": name,
            "description": description,
            "attributes": attrs.iter().map(attr_json).collect::<Vec<_>>(),
            "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{id}")},
        })
    })
    .collect()
}

/// The resource types `/ResourceTypes` publishes.
pub fn resource_types(base: &str) -> Vec<Value> {
    [ResourceKind::User, ResourceKind::Group]
        .into_iter()
        .map(|kind| {
            let extensions: Vec<Value> = kind
                .extensions()
                .iter()
                .map(|urn| json!({"schema": urn, "required": false}))
                .collect();
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
                "id": kind.name(),
                "name": kind.name(),
                "endpoint": kind.endpoint(),
                "description": format!("{}s provisioned by the identity provider", kind.name()),
                "schema": kind.core(),
                "schemaExtensions": extensions,
                "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{}", kind.name())},
            })
        })
        .collect()
}

/// `/ServiceProviderConfig`: what this server supports.
pub fn service_provider_config(base: &str, max_results: usize) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": max_results},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A SCIM token created with `countersign scim-token create`",
            "primary": true,
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")},
    })
}
