//! The gateway as an MCP server: `tools/list` shows each upstream's tools under its
//! namespace, filtered per agent; `tools/call` is decided, then forwarded, refused, or
//! held for a human's approval (see [`crate::hold`]).

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, ContentBlock,
    GetTaskParams, GetTaskResult, Implementation, JsonObject, ListToolsResult,
    PaginatedRequestParams, ResultType, ServerCapabilities, ServerConfig, Tool, UpdateTaskParams,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};

use crate::authority::{AgentId, Authority, AuthorityError, Call, Fate, Verdict};
use crate::config::{GatewayConfig, NAMESPACE_SEPARATOR};
use crate::hold;
use crate::mapping;
use crate::resume::Resumption;
use crate::tasks::HeldTasks;
use crate::upstream::{UpstreamError, Upstreams};

/// Who a request comes from, put in the HTTP request's extensions by the gateway's
/// authentication layer (or fixed, over stdio).
#[derive(Debug, Clone)]
pub struct Caller {
    pub agent: AgentId,
    /// The session the call belongs to when the transport has none of its own (the
    /// access token's id over HTTP, the process over stdio).
    pub fallback_session: String,
    pub source_ip: Option<std::net::IpAddr>,
}

/// What every connection of the gateway shares.
pub struct Shared<A> {
    pub authority: A,
    pub upstreams: Upstreams,
    pub config: GatewayConfig,
    /// Seals the request state of calls held for 2026-07-28 clients.
    pub resumption: Resumption,
    /// Cancelled when the gateway stops: held calls end (unforwarded) and sessions close.
    pub stopping: tokio_util::sync::CancellationToken,
    /// The `tools/call`s under way (and held calls' tasks), so that a stopping gateway
    /// lets each finish what it owes the trace (a withdrawal, the record of its fate)
    /// before the process exits.
    pub calls: tokio_util::task::TaskTracker,
    /// Held calls answered as tasks (the MCP Tasks extension).
    pub tasks: HeldTasks,
}

/// One MCP server endpoint of the gateway (cheap to clone: one per session or request).
pub struct GatewayService<A> {
    shared: Arc<Shared<A>>,
    /// The caller of every request on this endpoint (stdio); over HTTP, each request's.
    fixed_caller: Option<Caller>,
}

impl<A> Clone for GatewayService<A> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            fixed_caller: self.fixed_caller.clone(),
        }
    }
}

impl<A: Authority> GatewayService<A> {
    /// A `tools/call`: decided, then forwarded, held or refused (or, with request state,
    /// a held call resumed).
    async fn decide_and_run(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = self.caller(&ctx)?;
        let name = request.name.to_string();
        let unknown = || ErrorData::invalid_params(format!("unknown tool: {name}"), None);
        let (upstream_name, tool) = name.split_once(NAMESPACE_SEPARATOR).ok_or_else(unknown)?;
        let upstream = self
            .shared
            .upstreams
            .get(upstream_name)
            .ok_or_else(unknown)?;
        if !upstream.tools.iter().any(|t| t.name == tool) {
            return Err(unknown());
        }
        let arguments = request.arguments.clone().unwrap_or_default();
        let action = match mapping::action(&name, &arguments, self.shared.config.tools.get(&name)) {
            Ok(action) => action,
            Err(e) => return Err(ErrorData::invalid_params(e.to_string(), None)),
        };
        let call = Call {
            agent: caller.agent.clone(),
            tool: name.clone(),
            action,
            session: Some(Self::session(&ctx, &caller)),
            mcp_request_id: request_id_text(&ctx),
            source_ip: caller.source_ip,
        };
        if let Some(sealed) = request.request_state.as_deref() {
            // A retry of a held call: the same approval, never a new decision.
            let resumed = hold::Resumed {
                call: &call,
                arguments: &arguments,
                sealed,
                responses: request.input_responses.as_ref(),
            };
            return hold::resume(&self.shared, upstream, tool, resumed, &ctx).await;
        }
        let authority = &self.shared.authority;
        let verdict = authority.decide(&call).await.map_err(|e| unavailable(&e))?;
        match verdict {
            Verdict::Allow { decision_id } => {
                let result = self
                    .shared
                    .upstreams
                    .call(upstream, tool, arguments, None)
                    .await;
                finish(authority, &call, Some(&decision_id), result).await
            }
            Verdict::Deny {
                decision_id,
                reasons,
            } => {
                let reason = if reasons.is_empty() {
                    "denied by policy".to_owned()
                } else {
                    format!("denied by policy: {}", reasons.join("; "))
                };
                record(
                    authority,
                    &call,
                    Some(&decision_id),
                    &Fate::Stopped {
                        reason: reason.clone(),
                    },
                )
                .await?;
                Ok(tool_error(reason))
            }
            Verdict::StepUp {
                decision_id,
                approvers,
                ..
            } => {
                let held = hold::Held {
                    call: &call,
                    arguments: &arguments,
                    decision_id: &decision_id,
                    approvers: &approvers,
                };
                hold::run(&self.shared, upstream, tool, held, &ctx).await
            }
        }
    }

    /// An endpoint whose requests say who they come from (HTTP).
    pub fn new(shared: Arc<Shared<A>>) -> Self {
        Self {
            shared,
            fixed_caller: None,
        }
    }

    /// An endpoint serving one agent (stdio).
    pub fn for_agent(shared: Arc<Shared<A>>, caller: Caller) -> Self {
        Self {
            shared,
            fixed_caller: Some(caller),
        }
    }

    fn caller(&self, ctx: &RequestContext<RoleServer>) -> Result<Caller, ErrorData> {
        if let Some(caller) = &self.fixed_caller {
            return Ok(caller.clone());
        }
        ctx.extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Caller>())
            .cloned()
            // The authentication layer refuses unauthenticated requests before they get
            // here; this is the answer if it is ever missing.
            .ok_or_else(|| ErrorData::invalid_request("the request is not authenticated", None))
    }

    fn session(ctx: &RequestContext<RoleServer>, caller: &Caller) -> String {
        ctx.extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.headers.get("mcp-session-id"))
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .map_or_else(|| caller.fallback_session.clone(), |s| format!("mcp:{s}"))
    }
}

/// A tool error the agent reads (and its model can act on).
pub(crate) fn tool_error(text: impl Into<String>) -> CallToolResponse {
    CallToolResult::error(vec![ContentBlock::text(text.into())]).into()
}

fn unavailable(e: &AuthorityError) -> ErrorData {
    match e {
        AuthorityError::Invalid(m) => ErrorData::invalid_params(m.clone(), None),
        AuthorityError::Unauthorized(m) => ErrorData::invalid_request(m.clone(), None),
        AuthorityError::Unavailable(m) => {
            tracing::error!(error = %m, "the gateway's authority is unavailable");
            ErrorData::internal_error("Countersign could not decide the call now; retry", None)
        }
    }
}

impl<A: Authority> ServerHandler for GatewayService<A> {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tasks()
                .build(),
        )
        .with_server_info(Implementation::new(
            "countersign-gateway",
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(
            "Tools of several MCP servers, governed by Countersign: each call is \
                 allowed, denied with the policy's reason, or held until a human approves it.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let caller = self.caller(&ctx)?;
        let mut tools = Vec::new();
        for upstream in self.shared.upstreams.iter() {
            for tool in &upstream.tools {
                let name = format!("{}{NAMESPACE_SEPARATOR}{}", upstream.name, tool.name);
                let action = mapping::action(
                    &name,
                    &JsonObject::new(),
                    self.shared.config.tools.get(&name),
                )
                .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
                let offered = self
                    .shared
                    .authority
                    .may_offer(&caller.agent, &name, &action)
                    .await
                    .map_err(|e| unavailable(&e))?;
                if offered {
                    let mut tool: Tool = tool.clone();
                    tool.name = name.into();
                    tools.push(tool);
                }
            }
        }
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.shared
            .calls
            .track_future(self.decide_and_run(request, ctx))
            .await
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        let caller = self.caller(&ctx)?;
        let task = self.shared.tasks.get(&caller.agent, &request.task_id)?;
        Ok(GetTaskResult::new(task))
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let caller = self.caller(&ctx)?;
        self.shared.tasks.cancel(&caller.agent, &request.task_id)
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let caller = self.caller(&ctx)?;
        self.shared.tasks.update(&caller.agent, &request.task_id)
    }
}

/// The JSON-RPC id of the request, as the trace keeps it: at most 128 characters (ids
/// are the agent's choice).
fn request_id_text(ctx: &RequestContext<RoleServer>) -> String {
    let text = match serde_json::to_value(&ctx.id) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    };
    text.chars().take(128).collect()
}

pub(crate) async fn record<A: Authority>(
    authority: &A,
    call: &Call,
    decision_id: Option<&str>,
    fate: &Fate,
) -> Result<(), ErrorData> {
    // A call answered `input_required` is counted once, when it ends.
    if !matches!(fate, Fate::AwaitingApproval { .. }) {
        metrics::counter!("countersign_gateway_calls_total", "outcome" => fate.outcome())
            .increment(1);
    }
    authority
        .record(call, decision_id, fate)
        .await
        .map_err(|e| unavailable(&e))
}

/// Records what the upstream answered and returns it to the agent unchanged.
pub(crate) async fn finish<A: Authority>(
    authority: &A,
    call: &Call,
    decision_id: Option<&str>,
    result: Result<CallToolResult, UpstreamError>,
) -> Result<CallToolResponse, ErrorData> {
    match result {
        Ok(mut result) => {
            // Reached over a session of an earlier revision, the upstream's result has no
            // `resultType`, which 2026-07-28 clients require (rmcp strips it again for
            // older ones): it is a complete result.
            result.result_type = Some(ResultType::COMPLETE);
            let fate = Fate::Forwarded {
                is_error: result.is_error.unwrap_or(false),
            };
            // The upstream has acted: its answer goes to the agent even if the trace
            // cannot take the fate now (an error would invite the agent to call again).
            if let Err(e) = authority.record(call, decision_id, &fate).await {
                tracing::error!(tool = %call.tool, error = %e, "a forwarded call's fate was not traced");
            }
            Ok(result.into())
        }
        Err(e) => {
            let reason = e.to_string();
            tracing::warn!(tool = %call.tool, error = %reason, "upstream call failed");
            record(
                authority,
                call,
                decision_id,
                &Fate::UpstreamFailed {
                    reason: reason.clone(),
                },
            )
            .await?;
            Ok(tool_error(format!(
                "the tool could not be reached or did not answer ({})",
                call.tool
            )))
        }
    }
}
