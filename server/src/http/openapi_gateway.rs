//! The MCP gateway's HTTP surface in the OpenAPI document: its RFC 9728 metadata, the
//! MCP endpoint, and the pages where an agent's user watches a held call's approval. The endpoint speaks MCP's Streamable HTTP transport (JSON-RPC 2.0; the
//! MCP specification is the authority); here are its statuses and its authentication.
//! Served by the `countersign-gateway` crate, so written as a modifier.

use utoipa::Modify;
use utoipa::openapi::path::{HttpMethod, OperationBuilder};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Required, ResponseBuilder};

pub const TAG: &str = "gateway";

pub struct GatewayPaths;

fn response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new().description(description).build()
}

fn object() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Object)
}

const NOT_ENABLED: &str = "the gateway is not enabled on this server";

impl Modify for GatewayPaths {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "agent_token",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
        let get_metadata = metadata_operation();
        openapi.paths.add_path_operation(
            "/.well-known/oauth-protected-resource/mcp",
            vec![HttpMethod::Get],
            get_metadata,
        );
        openapi.paths.add_path_operation(
            "/mcp",
            vec![HttpMethod::Post],
            mcp(
                "post",
                "Send MCP JSON-RPC messages (Streamable HTTP): tools/list, tools/call, ...",
            ),
        );
        openapi.paths.add_path_operation(
            "/mcp",
            vec![HttpMethod::Get],
            mcp("get", "Open the session's server-to-client event stream"),
        );
        openapi.paths.add_path_operation(
            "/mcp",
            vec![HttpMethod::Delete],
            mcp("delete", "End the MCP session"),
        );
        openapi.paths.add_path_operation(
            "/gateway/approvals/{handle}",
            vec![HttpMethod::Get],
            approval_page(),
        );
    }
}

/// The page a held call's URL elicitation (MCP 2026-07-28 `input_required`) links to.
fn approval_page() -> utoipa::openapi::path::Operation {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    let html = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "text/html",
                ContentBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                    .build(),
            )
            .build()
    };
    OperationBuilder::new()
        .tag(TAG)
        .operation_id(Some("gateway_approval_page"))
        .summary(Some("Watch a held MCP call's approval (an HTML page)"))
        .description(Some(
            "The URL a held call's `input_required` result elicits: what waits for \
             approval, for how many approvers, and the answer once given. `handle` is \
             signed by the gateway and expires with the approval request; the page is \
             read-only.",
        ))
        .parameter(
            ParameterBuilder::new()
                .name("handle")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
        )
        .response(
            "200",
            html("the approval: pending, approved, denied or expired"),
        )
        .response(
            "404",
            html(
                "the link was not made by this gateway, has expired, or the gateway is not enabled",
            ),
        )
        .response("503", html("the approval cannot be read now; reload"))
        .build()
}

/// `GET /.well-known/oauth-protected-resource/mcp`.
fn metadata_operation() -> utoipa::openapi::path::Operation {
    let strings = || ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::String));
    let metadata = object()
        .property("resource", ObjectBuilder::new().schema_type(Type::String))
        .property("authorization_servers", strings())
        .property("bearer_methods_supported", strings())
        .property("dpop_signing_alg_values_supported", strings())
        .property(
            "resource_name",
            ObjectBuilder::new().schema_type(Type::String),
        )
        .required("resource")
        .required("authorization_servers");
    OperationBuilder::new()
        .tag(TAG)
        .operation_id(Some("gateway_protected_resource_metadata"))
        .summary(Some(
            "The MCP gateway as an OAuth protected resource (RFC 9728)",
        ))
        .response(
            "200",
            ResponseBuilder::new()
                .description(
                    "the resource `{issuer}/mcp` and Countersign as its authorization server",
                )
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(metadata)).build(),
                )
                .build(),
        )
        .response("404", response(NOT_ENABLED))
        .build()
}

/// The MCP endpoint's operation for HTTP `method` (lower case).
fn mcp(method: &str, summary: &str) -> utoipa::openapi::path::Operation {
    let mut builder = OperationBuilder::new()
        .tag(TAG)
        .operation_id(Some(format!("gateway_mcp_{method}")))
        .summary(Some(summary.to_owned()))
        .security(SecurityRequirement::new("agent_token", Vec::<String>::new()))
        .response("200", response("a JSON-RPC response (application/json), or a stream of them (text/event-stream)"))
        .response("202", response("a notification or response was accepted"))
        .response("400", response("not a JSON-RPC message, or a missing or wrong header"))
        .response(
            "401",
            response("no valid agent token: `WWW-Authenticate: Bearer resource_metadata=...` (RFC 9728), with `error=\"invalid_token\"` for a bad one"),
        )
        .response("403", response("the Host or Origin header is not the gateway's"))
        .response("404", response("no such MCP session (or another agent's), or the gateway is not enabled"))
        .response("405", response("the method is not offered"))
        .response("406", response("the Accept header admits neither JSON nor an event stream"))
        .response("413", response("the body is too large"))
        .response("415", response("the body is not application/json"))
        .response("503", response("the token cannot be checked now; retry"));
    if method == "post" {
        builder = builder.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(object())).build(),
                )
                .build(),
        ));
    }
    builder.build()
}
