//! The SCIM 2.0 endpoints (`/scim/v2`) in the OpenAPI document. Their resources are
//! defined by RFC 7643 and served by `/scim/v2/Schemas` (the authority a SCIM client
//! reads); here they are described as SCIM JSON objects, with the operations, parameters
//! and status codes RFC 7644 gives them. Written as a modifier because the handlers are
//! generated per resource type.

use utoipa::Modify;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Required, ResponseBuilder};

pub const TAG: &str = "scim";
const SCIM_JSON: &str = "application/scim+json";

pub struct ScimPaths;

/// What one operation takes and answers.
struct Op {
    method: HttpMethod,
    path: String,
    id: String,
    summary: String,
    body: bool,
    /// Success status and what it carries.
    ok: (&'static str, &'static str),
    /// Other statuses RFC 7644 §3.12 gives this operation (401 is added to all).
    errors: &'static [(&'static str, &'static str)],
    list: bool,
}

const NOT_FOUND: (&str, &str) = ("404", "no such resource");
const BAD: (&str, &str) = (
    "400",
    "invalidSyntax, invalidValue, invalidFilter, invalidPath, noTarget, mutability, ...",
);
const CONFLICT: (&str, &str) = ("409", "uniqueness: userName or displayName is taken");
const PRECONDITION: (&str, &str) = ("412", "If-Match names another version");

fn ops() -> Vec<Op> {
    let mut ops = discovery_ops();
    for (resource, plural) in [("User", "Users"), ("Group", "Groups")] {
        ops.extend(resource_ops(resource, plural));
    }
    ops
}

/// The discovery endpoints (RFC 7644 §4) and the search across resource types.
fn discovery_ops() -> Vec<Op> {
    vec![
        Op {
            method: HttpMethod::Get,
            path: "/scim/v2/ServiceProviderConfig".into(),
            id: "scim_service_provider_config".into(),
            summary: "What this service provider supports (RFC 7644 §4)".into(),
            body: false,
            ok: ("200", "the ServiceProviderConfig"),
            errors: &[],
            list: false,
        },
        Op {
            method: HttpMethod::Get,
            path: "/scim/v2/ResourceTypes".into(),
            id: "scim_resource_types".into(),
            summary: "User and Group".into(),
            body: false,
            ok: ("200", "a ListResponse of ResourceType"),
            errors: &[],
            list: false,
        },
        Op {
            method: HttpMethod::Get,
            path: "/scim/v2/ResourceTypes/{id}".into(),
            id: "scim_resource_type".into(),
            summary: "One resource type".into(),
            body: false,
            ok: ("200", "the ResourceType"),
            errors: &[NOT_FOUND],
            list: false,
        },
        Op {
            method: HttpMethod::Get,
            path: "/scim/v2/Schemas".into(),
            id: "scim_schemas".into(),
            summary: "The User, enterprise User extension and Group schemas (RFC 7643 §7)".into(),
            body: false,
            ok: ("200", "a ListResponse of Schema"),
            errors: &[],
            list: false,
        },
        Op {
            method: HttpMethod::Get,
            path: "/scim/v2/Schemas/{id}".into(),
            id: "scim_schema".into(),
            summary: "One schema, by URN".into(),
            body: false,
            ok: ("200", "the Schema"),
            errors: &[NOT_FOUND],
            list: false,
        },
        Op {
            method: HttpMethod::Post,
            path: "/scim/v2/.search".into(),
            id: "scim_search_all".into(),
            summary: "Search across resource types (RFC 7644 §3.4.3)".into(),
            body: true,
            ok: ("200", "a ListResponse"),
            errors: &[BAD],
            list: false,
        },
    ]
}

/// A resource type's collection and item endpoints.
fn resource_ops(resource: &str, plural: &str) -> [Op; 7] {
    let collection = format!("/scim/v2/{plural}");
    let item = format!("/scim/v2/{plural}/{{id}}");
    let lower = resource.to_ascii_lowercase();
    [
        Op {
            method: HttpMethod::Get,
            path: collection.clone(),
            id: format!("scim_list_{lower}s"),
            summary: format!("List or filter {plural} (RFC 7644 §3.4.2)"),
            body: false,
            ok: ("200", "a ListResponse"),
            errors: &[BAD],
            list: true,
        },
        Op {
            method: HttpMethod::Post,
            path: collection.clone(),
            id: format!("scim_create_{lower}"),
            summary: format!("Provision a {resource} (RFC 7644 §3.3)"),
            body: true,
            ok: ("201", "the created resource, with Location and ETag"),
            errors: &[BAD, CONFLICT],
            list: false,
        },
        Op {
            method: HttpMethod::Post,
            path: format!("/scim/v2/{plural}/.search"),
            id: format!("scim_search_{lower}s"),
            summary: format!("Search {plural} with a SearchRequest body"),
            body: true,
            ok: ("200", "a ListResponse"),
            errors: &[BAD],
            list: false,
        },
        Op {
            method: HttpMethod::Get,
            path: item.clone(),
            id: format!("scim_get_{lower}"),
            summary: format!("One {resource}"),
            body: false,
            ok: ("200", "the resource, with ETag"),
            errors: &[NOT_FOUND],
            list: false,
        },
        Op {
            method: HttpMethod::Put,
            path: item.clone(),
            id: format!("scim_replace_{lower}"),
            summary: format!("Replace a {resource} (RFC 7644 §3.5.1)"),
            body: true,
            ok: ("200", "the replaced resource"),
            errors: &[BAD, NOT_FOUND, CONFLICT, PRECONDITION],
            list: false,
        },
        Op {
            method: HttpMethod::Patch,
            path: item.clone(),
            id: format!("scim_patch_{lower}"),
            summary: format!(
                "Modify a {resource} with a PatchOp (RFC 7644 §3.5.2; Okta and Entra ID forms)"
            ),
            body: true,
            ok: ("200", "the modified resource"),
            errors: &[BAD, NOT_FOUND, CONFLICT, PRECONDITION],
            list: false,
        },
        Op {
            method: HttpMethod::Delete,
            path: item.clone(),
            id: format!("scim_delete_{lower}"),
            summary: format!("Deprovision a {resource} (a User's human is offboarded)"),
            body: false,
            ok: ("204", "deleted"),
            errors: &[NOT_FOUND, PRECONDITION],
            list: false,
        },
    ]
}

fn scim_content(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            SCIM_JSON,
            ContentBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::Object)))
                .build(),
        )
        .build()
}

fn query(name: &str, description: &str, integer: bool) -> utoipa::openapi::path::Parameter {
    let schema =
        ObjectBuilder::new().schema_type(if integer { Type::Integer } else { Type::String });
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

impl Modify for ScimPaths {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "scim_token",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
        for op in ops() {
            let mut builder = OperationBuilder::new()
                .tag(TAG)
                .operation_id(Some(op.id.clone()))
                .summary(Some(op.summary.clone()))
                .security(SecurityRequirement::new("scim_token", Vec::<String>::new()))
                .response(op.ok.0, scim_content(op.ok.1))
                .response(
                    "401",
                    scim_content("missing, unknown or expired SCIM token"),
                );
            for (status, description) in op.errors {
                builder = builder.response(*status, scim_content(description));
            }
            if op.body {
                builder = builder.response(
                    "413",
                    scim_content("the body is larger than the server's max_body_bytes"),
                );
            }
            if op.path.ends_with("{id}") {
                builder = builder.parameter(
                    ParameterBuilder::new()
                        .name("id")
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True)
                        .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
                );
            }
            if op.list {
                builder = builder
                    .parameter(query("filter", "RFC 7644 §3.4.2.2 filter (eq, ne, co, sw, ew, pr, gt, ge, lt, le, and, or, not)", false))
                    .parameter(query("startIndex", "1-based index of the first result", true))
                    .parameter(query("count", "page size", true))
                    .parameter(query("attributes", "attributes to return", false))
                    .parameter(query("excludedAttributes", "attributes to leave out", false));
            }
            if op.body {
                builder = builder.request_body(Some(
                    RequestBodyBuilder::new()
                        .required(Some(Required::True))
                        .content(
                            SCIM_JSON,
                            ContentBuilder::new()
                                .schema(Some(ObjectBuilder::new().schema_type(Type::Object)))
                                .build(),
                        )
                        .build(),
                ));
            }
            openapi
                .paths
                .add_path_operation(&op.path, vec![op.method], builder.build());
        }
    }
}
