//! The form bodies of the protocol endpoints, for the OpenAPI document only: the handlers
//! read forms through [`super::form::OAuthForm`], which also refuses repeated parameters.
//! Client authentication parameters (`client_id`, `client_secret`, `client_assertion`,
//! `client_assertion_type`) may accompany any of them.

#![allow(dead_code)] // fields exist to be described, not read

use utoipa::ToSchema;

/// CIBA Core §7.1 backchannel authentication request.
#[derive(ToSchema)]
pub struct BackchannelAuthForm {
    /// Space-separated; must contain `openid`.
    #[schema(pattern = "(^| )openid( |$)")]
    scope: String,
    /// Subject or e-mail of the user (exactly one hint is allowed).
    login_hint: Option<String>,
    login_hint_token: Option<String>,
    id_token_hint: Option<String>,
    binding_message: Option<String>,
    user_code: Option<String>,
    /// Seconds, positive integer.
    requested_expiry: Option<String>,
    acr_values: Option<String>,
    /// Required in ping and push mode.
    client_notification_token: Option<String>,
    /// RFC 9396 JSON array, as a string.
    authorization_details: Option<String>,
    /// Countersign extension: the agent's task or session (at most 200 characters). A
    /// credential may only be renewed within the task it was approved for; policies see
    /// what the session did before (`context.session`).
    task_id: Option<String>,
    /// Countersign extension: space-separated classification labels of the prompt behind
    /// the request, supplied by the agent's gateway (`context.prompt.labels`).
    #[schema(pattern = "^[A-Za-z0-9._:\\- ]*$")]
    prompt_labels: Option<String>,
    /// Signed request object carrying all of the above.
    request: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
}

/// A decision request (`POST /v1/decisions`).
#[derive(ToSchema)]
pub struct DecisionForm {
    /// RFC 9396 JSON array, as a string; or give `action`.
    authorization_details: Option<String>,
    /// An `authorization_details` type, with `arguments`.
    action: Option<String>,
    /// JSON object: the action's fields (e.g. `{"vendor":"Acme","amount":120}`).
    arguments: Option<String>,
    /// The tool or app acted on (an id of `policy.tools`).
    resource: Option<String>,
    /// The human the action is for (default: the agent's owner).
    login_hint: Option<String>,
    task_id: Option<String>,
    #[schema(pattern = "^[A-Za-z0-9._:\\- ]*$")]
    prompt_labels: Option<String>,
    scope: Option<String>,
    /// `true`: decide without recording anything (empty or absent: `false`).
    #[schema(pattern = "^(true|false)?$")]
    dry_run: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
}

/// What became of a gateway call (`POST /v1/gateway-calls`).
#[derive(ToSchema)]
pub struct GatewayCallForm {
    /// The namespaced tool called (at most 256 bytes).
    #[schema(min_length = 1)]
    tool: String,
    #[schema(
        pattern = "^(awaiting_approval|forwarded|forwarded_tool_error|upstream_failed|stopped)$"
    )]
    outcome: String,
    /// The `decision_id` of the call's decision (`POST /v1/decisions`), the agent's own.
    decision_id: Option<String>,
    /// Required with `awaiting_approval`: the agent's approval request the call waits for.
    auth_req_id: Option<String>,
    /// The JSON-RPC id of the `tools/call`.
    mcp_request_id: Option<String>,
    /// The MCP session or task.
    session: Option<String>,
    /// Why it ended so (at most 1,000 bytes).
    reason: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
}

/// An approval request the agent gives up on (`POST /v1/withdrawals`).
#[derive(ToSchema)]
pub struct WithdrawalForm {
    /// The request's `auth_req_id` (from `POST /bc-authorize`).
    #[schema(min_length = 1)]
    auth_req_id: String,
    /// Why (recorded in the trace; at most 1,000 bytes).
    reason: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
}

/// A token request: the CIBA grant (CIBA Core §10.1, needs `auth_req_id`) or a renewal by
/// token exchange (RFC 8693, needs `subject_token`, `subject_token_type` and `task_id`).
#[derive(ToSchema)]
pub struct TokenRequestForm {
    #[schema(
        pattern = "^(urn:openid:params:grant-type:ciba|urn:ietf:params:oauth:grant-type:token-exchange|client_credentials)$"
    )]
    grant_type: String,
    /// `client_credentials` (with the MCP gateway enabled): the gateway's resource
    /// identifier, `{issuer}/mcp` (RFC 8707); another is `invalid_target`.
    resource: Option<String>,
    /// CIBA grant: the `auth_req_id` from the backchannel response.
    auth_req_id: Option<String>,
    /// Renewal: the live credential to renew.
    subject_token: Option<String>,
    /// Renewal: `urn:ietf:params:oauth:token-type:access_token`.
    subject_token_type: Option<String>,
    requested_token_type: Option<String>,
    /// Renewal: the task the credential was approved for.
    task_id: Option<String>,
    /// Renewal: if sent, exactly the approved `authorization_details`.
    authorization_details: Option<String>,
    scope: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
}

/// RFC 7662 introspection and RFC 7009 revocation request.
#[derive(ToSchema)]
pub struct TokenForm {
    token: String,
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
}
