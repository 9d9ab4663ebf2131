//! The MCP servers behind the gateway: one client connection each, over Streamable HTTP
//! or to a stdio child process, with their tools listed once at start.
//!
//! A call may carry headers of its own (the credential and DPoP proof of an approved
//! call); the HTTP client adds them to that one request only. A stdio upstream has no
//! headers: it receives them in the call's `_meta` under [`CREDENTIAL_META`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::BoxStream;
use http::{HeaderName, HeaderValue};
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResult, ClientCapabilities,
    ClientJsonRpcMessage, ClientRequest, GetExtensions, Implementation, JsonObject,
    RequestMetaObject, ServerResult, Tool,
};
use rmcp::service::{PeerRequestOptions, RunningService};
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpClientTransportConfig, StreamableHttpError,
    StreamableHttpPostResponse, StreamableHttpResponseLimits,
};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};

use crate::config::{UpstreamConfig, secret_name};
use crate::secrets::Secrets;

/// The `_meta` key carrying an approved call's credential to a stdio upstream:
/// `{"authorization": "DPoP <token>", "dpop": "<proof>"}`.
pub const CREDENTIAL_META: &str = "io.countersign/credential";

/// The gateway's environment variables a stdio upstream inherits; everything else it
/// gets comes from its `env` configuration.
const INHERITED_ENV: [&str; 7] = ["PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR"];

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream {upstream}: cannot connect: {reason}")]
    Connect { upstream: String, reason: String },
    #[error("upstream {upstream}: {reason}")]
    Call { upstream: String, reason: String },
    #[error("upstream {upstream} answered with a JSON-RPC error {code}: {message}")]
    Refused {
        upstream: String,
        code: i32,
        message: String,
    },
    #[error("secret {0:?} is not set")]
    MissingSecret(String),
}

/// Headers for one request.
#[derive(Debug, Clone, Default)]
pub struct CallHeaders(pub Vec<(HeaderName, HeaderValue)>);

/// reqwest, adding a request's own [`CallHeaders`] to the transport's headers.
#[derive(Clone)]
struct PerCallHeaders(reqwest::Client);

fn with_call_headers(
    message: &ClientJsonRpcMessage,
    mut headers: HashMap<HeaderName, HeaderValue>,
) -> HashMap<HeaderName, HeaderValue> {
    if let ClientJsonRpcMessage::Request(request) = message
        && let Some(CallHeaders(extra)) = request.request.extensions().get::<CallHeaders>()
    {
        headers.extend(extra.iter().cloned());
    }
    headers
}

impl StreamableHttpClient for PerCallHeaders {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let headers = with_call_headers(&message, custom_headers);
        self.0
            .post_message(uri, message, session_id, auth_header, headers)
            .await
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let headers = with_call_headers(&message, custom_headers);
        self.0
            .post_message_with_max_sse_event_size(
                uri,
                message,
                session_id,
                auth_header,
                headers,
                max_sse_event_size,
            )
            .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let headers = with_call_headers(&message, custom_headers);
        self.0
            .post_message_with_response_limits(
                uri,
                message,
                session_id,
                auth_header,
                headers,
                limits,
            )
            .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        self.0
            .delete_session(uri, session_id, auth_header, custom_headers)
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<
        BoxStream<'static, Result<sse_stream::Sse, SseError>>,
        StreamableHttpError<Self::Error>,
    > {
        self.0
            .get_stream(uri, session_id, last_event_id, auth_header, custom_headers)
            .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<
        BoxStream<'static, Result<sse_stream::Sse, SseError>>,
        StreamableHttpError<Self::Error>,
    > {
        self.0
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await
    }
}

type Connection = RunningService<RoleClient, ClientIdentity>;

/// The gateway as an MCP client: it declares no capabilities (upstream requests for
/// sampling or elicitation are not relayed to agents).
#[derive(Clone)]
struct ClientIdentity(rmcp::model::ClientConfig);

impl rmcp::ClientHandler for ClientIdentity {
    fn get_info(&self) -> rmcp::model::ClientConfig {
        self.0.clone()
    }
}

/// One upstream: its connection and its tools.
pub struct Upstream {
    pub name: String,
    connection: Connection,
    /// The URL of an HTTP upstream (credentials go in headers); `None` for stdio.
    url: Option<String>,
    pub tools: Vec<Tool>,
}

impl Upstream {
    /// What an approved call's DPoP proof names as its target (`htu`): the upstream's URL,
    /// or `stdio://<upstream>` for a child process.
    pub fn credential_audience(&self) -> String {
        self.url
            .clone()
            .unwrap_or_else(|| format!("stdio://{}", self.name))
    }
}

/// Every upstream, by name.
pub struct Upstreams {
    by_name: BTreeMap<String, Upstream>,
    timeout: Duration,
}

fn client_identity() -> ClientIdentity {
    ClientIdentity(rmcp::model::ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("countersign-gateway", env!("CARGO_PKG_VERSION")),
    ))
}

fn resolve(value: &str, secrets: &Secrets) -> Result<String, UpstreamError> {
    match secret_name(value) {
        Some(name) => secrets
            .get(name)
            .map(|s| s.expose().to_owned())
            .ok_or_else(|| UpstreamError::MissingSecret(name.to_owned())),
        None => Ok(value.to_owned()),
    }
}

async fn connect(
    name: &str,
    config: &UpstreamConfig,
    secrets: &Secrets,
) -> Result<Connection, UpstreamError> {
    let failed = |reason: String| UpstreamError::Connect {
        upstream: name.to_owned(),
        reason,
    };
    if let Some(url) = &config.url {
        let mut headers = HashMap::new();
        for (header, value) in &config.headers {
            let value = resolve(value, secrets)?;
            let header =
                HeaderName::try_from(header.as_str()).map_err(|e| failed(e.to_string()))?;
            let mut value = HeaderValue::try_from(value).map_err(|e| failed(e.to_string()))?;
            value.set_sensitive(true);
            headers.insert(header, value);
        }
        // No redirects: an approved call's credential goes to the configured URL only.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| failed(e.to_string()))?;
        let transport = StreamableHttpClientTransport::with_client(
            PerCallHeaders(http),
            StreamableHttpClientTransportConfig::with_uri(url.as_str()).custom_headers(headers),
        );
        let connection = client_identity()
            .serve(transport)
            .await
            .map_err(|e| failed(e.to_string()))?;
        return Ok(connection);
    }
    let Some((program, args)) = config.command.as_deref().and_then(<[String]>::split_first) else {
        return Err(failed("no url and no command".into()));
    };
    let mut command = tokio::process::Command::new(program);
    // Not the gateway's environment: it holds every upstream's secrets and the server's
    // own settings. Only what a program needs to run, and what its configuration names.
    command.args(args).kill_on_drop(true).env_clear();
    for var in INHERITED_ENV {
        if let Some(value) = std::env::var_os(var) {
            command.env(var, value);
        }
    }
    for (var, value) in &config.env {
        command.env(var, resolve(value, secrets)?);
    }
    let child = TokioChildProcess::new(command).map_err(|e| failed(e.to_string()))?;
    let connection = client_identity()
        .serve(child)
        .await
        .map_err(|e| failed(e.to_string()))?;
    Ok(connection)
}

impl Upstreams {
    /// Connects to every upstream and lists its tools.
    pub async fn connect(
        configs: &BTreeMap<String, UpstreamConfig>,
        secrets: &Secrets,
        timeout: Duration,
    ) -> Result<Self, UpstreamError> {
        let mut by_name = BTreeMap::new();
        for (name, config) in configs {
            let connection = connect(name, config, secrets).await?;
            let tools = connection
                .list_all_tools()
                .await
                .map_err(|e| UpstreamError::Call {
                    upstream: name.clone(),
                    reason: format!("tools/list: {e}"),
                })?;
            tracing::info!(upstream = %name, tools = tools.len(), "connected to upstream MCP server");
            by_name.insert(
                name.clone(),
                Upstream {
                    name: name.clone(),
                    connection,
                    url: config.url.clone(),
                    tools,
                },
            );
        }
        Ok(Self { by_name, timeout })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Upstream> {
        self.by_name.values()
    }

    pub fn get(&self, name: &str) -> Option<&Upstream> {
        self.by_name.get(name)
    }

    /// Calls `tool` (its upstream's own name) with `arguments`, adding `credential`
    /// (`Authorization` and `DPoP` values) to this one request.
    pub async fn call(
        &self,
        upstream: &Upstream,
        tool: &str,
        arguments: JsonObject,
        credential: Option<(String, String)>,
    ) -> Result<CallToolResult, UpstreamError> {
        let failed = |reason: String| UpstreamError::Call {
            upstream: upstream.name.clone(),
            reason,
        };
        let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        let mut request = CallToolRequest::new(params);
        let mut options = PeerRequestOptions::with_timeout(self.timeout);
        if let Some((authorization, proof)) = credential {
            if upstream.url.is_some() {
                let header = |v: String| {
                    let mut value = HeaderValue::try_from(v)
                        .map_err(|e| failed(format!("credential header: {e}")))?;
                    value.set_sensitive(true);
                    Ok(value)
                };
                request.extensions.insert(CallHeaders(vec![
                    (http::header::AUTHORIZATION, header(authorization)?),
                    (HeaderName::from_static("dpop"), header(proof)?),
                ]));
            } else {
                let mut meta = RequestMetaObject::default();
                meta.0.0.insert(
                    CREDENTIAL_META.into(),
                    serde_json::json!({"authorization": authorization, "dpop": proof}),
                );
                options = options.with_meta(meta);
            }
        }
        let response = upstream
            .connection
            .send_request_with_option(ClientRequest::CallToolRequest(request), options)
            .await
            .map_err(|e| failed(e.to_string()))?
            .await_response()
            .await;
        match response {
            Ok(ServerResult::CallToolResult(result)) => Ok(result),
            Ok(_) => Err(failed(
                "answered tools/call with another kind of result".into(),
            )),
            Err(rmcp::ServiceError::McpError(error)) => Err(UpstreamError::Refused {
                upstream: upstream.name.clone(),
                code: error.code.0,
                message: error.message.into_owned(),
            }),
            Err(e) => Err(failed(e.to_string())),
        }
    }
}
